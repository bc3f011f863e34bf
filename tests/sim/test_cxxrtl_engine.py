"""The engine on both back ends: the same run description gives the same transfers on the same cycles.

Builds go to the user's compile cache: they are keyed by content, so reruns of the suite reuse them.
"""

import dataclasses
import json

import numpy as np
import pytest

from bnn.cli import main
from layout.compiler import compile_model
from model.golden import infer
from model.layers import Conv, Dense, MaxPool
from model.random_models import random_conv_model, random_images, random_model
from sim.amaranth_backend import SimulationTimeout, run_amaranth
from sim.cxxrtl_backend import build_engine, run_cxxrtl
from sim.stimulus import decode_result, make_run_spec


CASES = [
    # sizes, input bits, P, S, tree stages, pixels per beat, input gaps, output stalls
    ([20, 7, 9, 3], 8, 2, 4, 0, None, 0.0, 0.0),
    ([20, 7, 9, 3], 8, 2, 4, 1, None, 0.5, 0.7),
    ([33, 10, 4], 1, 2, 8, 2, 4, 0.3, 0.9),
    ([30, 12, 11], 8, 3, 6, 0, 3, 0.8, 0.2),
    ([70, 16, 10], 8, 4, 16, 1, 2, 0.4, 0.5),
]


def _check_back_ends_agree(model, compiled, images, seed, gaps, stalls):
    """Both back ends under the same back-pressure: the same cycles and outputs, the golden answers."""
    spec = make_run_spec(compiled, images, seed=seed, input_gaps=gaps, output_stalls=stalls)
    expected = run_amaranth(compiled, spec)
    got = run_cxxrtl(compiled, spec)
    assert got.input_cycles == expected.input_cycles
    assert got.outputs == expected.outputs
    golden = infer(model, images)
    decoded = [decode_result(payload, compiled.params) for _, payload in got.outputs]
    assert [cls for cls, _ in decoded] == golden.classes.tolist()
    assert [scores[:model.classes] for _, scores in decoded] == golden.scores.tolist()


@pytest.mark.parametrize("sizes, input_bits, pe, simd, stages, per_beat, gaps, stalls", CASES)
@pytest.mark.needs_cxx
def test_back_ends_agree_cycle_for_cycle(sizes, input_bits, pe, simd, stages, per_beat,
                                         gaps, stalls):
    seed = sum(sizes) + pe * simd + stages
    model = random_model(sizes, input_bits=input_bits, seed=seed, extreme_thresholds=0.1)
    images = random_images(5, sizes[0], seed=seed)
    compiled = compile_model(model, pe=pe, simd=simd, tree_stages=stages, pixels_per_beat=per_beat)
    _check_back_ends_agree(model, compiled, images, seed, gaps, stalls)


CONV_CASES = [
    # image shape, layers, input bits, P, S, tree stages, input gaps, output stalls
    ((7, 7), [Conv(3, 3), MaxPool(), Dense(3)], 8, 2, 4, 1, 0.5, 0.7),
    ((9, 8, 2), [Conv(5, 3), Conv(6, 3), MaxPool(), Dense(5), Dense(3)], 1, 4, 8, 2, 0.3, 0.4),
]


@pytest.mark.parametrize("shape, specs, input_bits, pe, simd, stages, gaps, stalls", CONV_CASES)
@pytest.mark.needs_cxx
def test_back_ends_agree_cycle_for_cycle_on_conv_nets(shape, specs, input_bits, pe, simd, stages, gaps, stalls):
    seed = sum(shape) + pe * simd + stages
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=seed, input_threshold=100)
    images = random_images(3, model.input.size, seed=seed)
    compiled = compile_model(model, pe=pe, simd=simd, tree_stages=stages)
    _check_back_ends_agree(model, compiled, images, seed, gaps, stalls)


@pytest.mark.needs_cxx
def test_back_pressure_moves_the_cycles():
    """Guards the agreement test: stalls and gaps change the recorded cycles, so it compares timing."""
    model = random_model([20, 7, 3], seed=1)
    compiled = compile_model(model, pe=1, simd=4)
    images = random_images(3, 20, seed=1)
    free = run_cxxrtl(compiled, make_run_spec(compiled, images))
    stalled = run_cxxrtl(compiled, make_run_spec(compiled, images, seed=2, input_gaps=0.5, output_stalls=0.5))
    assert [p for _, p in free.outputs] == [p for _, p in stalled.outputs]
    assert [c for c, _ in free.outputs] != [c for c, _ in stalled.outputs]
    assert free.input_cycles != stalled.input_cycles


@pytest.mark.needs_cxx
def test_consumer_never_ready_times_out():
    model = random_model([9, 2], seed=3)
    compiled = compile_model(model, pe=2, simd=2)
    spec = make_run_spec(compiled, random_images(2, 9, seed=3))
    spec = dataclasses.replace(spec, ready_pattern=(0,), max_cycles=500)
    with pytest.raises(SimulationTimeout, match="0 of 2 results after 500 cycles"):
        run_cxxrtl(compiled, spec)


@pytest.mark.needs_cxx
def test_vcd_of_a_frame_range(tmp_path):
    model = random_model([20, 7, 3], seed=1)
    compiled = compile_model(model, pe=1, simd=4)
    spec = make_run_spec(compiled, random_images(4, 20, seed=4))
    path = tmp_path / "frames.vcd"
    record = run_cxxrtl(compiled, spec, vcd_path=path, vcd_frames=(1, 3))
    assert record.outputs == run_cxxrtl(compiled, spec).outputs
    times = [int(line[1:]) for line in path.read_text().splitlines() if line.startswith("#")]
    beats = len(spec.beats) // spec.frames
    first_cycle = record.input_cycles[beats - 1] + 1
    last_cycle = record.outputs[2][0]
    assert times == list(range(2 * first_cycle, 2 * last_cycle + 2))
    assert "results__payload" in path.read_text()


@pytest.mark.needs_cxx
def test_second_build_comes_from_the_cache(tmp_path):
    compiled = compile_model(random_model([20, 7, 3], seed=5), pe=1, simd=4)
    first = build_engine(compiled, cache=tmp_path)
    again = build_engine(compiled, cache=tmp_path)
    retrained = build_engine(compile_model(random_model([20, 7, 3], seed=6), pe=1, simd=4), cache=tmp_path)
    assert first.built and not again.built and retrained.built
    assert again.library == first.library != retrained.library
    # the engine's memory writes are skipped on idle cycles (a speed-up, exact by construction)
    assert "if (!bnn_mask_is_zero(" in (first.library.parent / "design.cc").read_text()


def test_bad_vcd_range_is_refused(tmp_path):
    compiled = compile_model(random_model([9, 2], seed=3), pe=2, simd=2)
    spec = make_run_spec(compiled, random_images(2, 9, seed=3))
    with pytest.raises(ValueError, match="VCD frame range"):
        run_cxxrtl(compiled, spec, vcd_path=tmp_path / "x.vcd", vcd_frames=(1, 5))
    assert not np.any([p.suffix == ".vcd" for p in tmp_path.iterdir()])


def sim_json(path, capsys, *argv):
    assert main(["sim", "--model", path, "--count", "4", "--pe", "2", "--simd", "8", "--json",
                 "--input-gaps", "0.3", "--output-stalls", "0.4", *argv]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.needs_cxx
def test_bnn_sim_back_ends_report_the_same_run(digits_model_file, capsys):
    fast = sim_json(digits_model_file, capsys, "--backend", "cxxrtl")
    slow = sim_json(digits_model_file, capsys, "--backend", "amaranth")
    assert fast["backend"] == "cxxrtl" and slow["backend"] == "amaranth"
    assert fast["mismatches"] == slow["mismatches"] == 0
    timing = ("cycles_per_frame", "latency", "simulated_cycles", "correct")
    assert [fast[k] for k in timing] == [slow[k] for k in timing]


@pytest.mark.needs_cxx
def test_bnn_sim_defaults_to_cxxrtl_and_says_so(digits_model_file, capsys, monkeypatch):
    assert main(["sim", "--model", digits_model_file, "--count", "2", "--pe", "2", "--simd", "8"]) == 0
    assert "(cxxrtl back end" in capsys.readouterr().out
    monkeypatch.setenv("CXX", "no-such-compiler-bnn")
    assert main(["sim", "--model", digits_model_file, "--count", "1", "--pe", "2", "--simd", "8"]) == 0
    assert "(amaranth back end)" in capsys.readouterr().out


def test_bnn_sim_cxxrtl_without_compiler_names_what_to_install(digits_model_file, capsys, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-bnn")
    assert main(["sim", "--model", digits_model_file, "--count", "1", "--backend", "cxxrtl"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bnn sim: error: no C++ compiler found") and "apt-get install g++" in err
    assert err.count("\n") == 1


@pytest.mark.needs_cxx
def test_bnn_sim_vcd_of_a_frame_range(digits_model_file, tmp_path, capsys):
    vcd = tmp_path / "two.vcd"
    assert main(["sim", "--model", digits_model_file, "--count", "4", "--pe", "2", "--simd", "8",
                 "--backend", "cxxrtl", "--vcd", str(vcd), "--vcd-frames", "1:3"]) == 0
    assert "0 mismatches" in capsys.readouterr().out
    assert "results__payload" in vcd.read_text()


@pytest.mark.parametrize("argv, message", [
    (["--vcd-frames", "1:3", "--backend", "amaranth", "--vcd", "x.vcd"], "needs --vcd and the cxxrtl back end"),
    (["--vcd-frames", "1:3", "--backend", "cxxrtl"], "needs --vcd and the cxxrtl back end"),
    (["--vcd-frames", "0:9", "--backend", "cxxrtl", "--vcd", "x.vcd"], "goes past the 4 frames"),
])
def test_bnn_sim_vcd_frame_errors_are_one_line(digits_model_file, capsys, argv, message):
    assert main(["sim", "--model", digits_model_file, "--count", "4", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("bnn sim: error:") and err.count("\n") == 1
