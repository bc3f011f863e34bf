"""`bnn sim`: the report, the JSON, the VCD and the one-line errors."""

import json

import numpy as np
import pytest

from bnn.cli import main
from model.datasets import load_dataset
from model.golden import infer
from model.layers import Conv, Dense, MaxPool
from model.modelfile import save_model
from model.random_models import random_conv_model


def test_sim_json_reports_exact_results_and_cycles(digits_model, capsys):
    model, path = digits_model
    assert main(["sim", "--model", path, "--count", "3", "--pe", "4", "--simd", "16", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_dataset("digits")
    expected = np.mean(infer(model, data.test_images[:3]).classes == data.test_labels[:3])
    assert report["mismatches"] == 0 and report["frames"] == 3 and report["accuracy"] == expected
    cycles = report["cycles_per_frame"]
    assert cycles["measured"] == cycles["analytic"] == cycles["ideal"] + 2 * 3  # 2 layers x (3 + 0 stages)
    assert report["latency"]["measured"] == report["latency"]["analytic"]


def test_sim_summary_and_vcd(digits_model, tmp_path, capsys):
    _, path = digits_model
    vcd = tmp_path / "run.vcd"
    assert main(["sim", "--model", path, "--count", "1", "--pe", "2", "--simd", "8", "--vcd", str(vcd),
                 "--input-gaps", "0.5", "--output-stalls", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "0 mismatches" in out and "cycles per frame" in out
    assert vcd.stat().st_size > 0


@pytest.mark.parametrize("argv, message", [
    (["--pe", "3", "--simd", "8"], "simd (8) must be a multiple of pe (3)"),
    (["--pe", "2", "--simd", "8", "--pixels-per-beat", "3"], "pixels_per_beat (3) must divide simd (8)"),
])
def test_sim_errors_are_one_line(digits_model, capsys, argv, message):
    _, path = digits_model
    assert main(["sim", "--model", path, "--count", "1"] + argv) == 1
    err = capsys.readouterr().err
    assert message in err and err.startswith("bnn sim: error:") and err.count("\n") == 1


def test_sim_rejects_a_missing_model(tmp_path, capsys):
    assert main(["sim", "--model", str(tmp_path / "nope.bnn")]) == 1
    assert "no such model file" in capsys.readouterr().err


def test_sim_refuses_a_model_bigger_than_the_engine(digits_model, capsys):
    _, path = digits_model
    argv = ["sim", "--model", path, "--count", "1", "--pe", "4", "--simd", "16", "--memory", "weight_depth=10"]
    assert main(argv) == 1
    assert "the model needs 15 weight words but the engine has 10" in capsys.readouterr().err


def test_sim_chooses_p_and_s_for_a_cycle_target(digits_model, capsys):
    _, path = digits_model
    assert main(["sim", "--model", path, "--count", "2", "--max-cycles", "40", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cycles_per_frame"]["analytic"] <= 40 and report["mismatches"] == 0
    assert main(["sim", "--model", path, "--max-cycles", "40", "--pe", "4"]) == 1
    assert "give either --max-cycles or --pe/--simd" in capsys.readouterr().err


@pytest.fixture
def digits_conv_model(tmp_path):
    """A small random 8-bit convolutional model for the 8 x 8 digits images, and its file's path."""
    model = random_conv_model((8, 8), [Conv(4, 3), MaxPool(), Dense(10)], input_bits=8, seed=7)
    model.metadata["dataset"] = "digits"
    path = tmp_path / "conv.bnn"
    save_model(model, path)
    return model, str(path)


@pytest.mark.parametrize("backend", ["amaranth", pytest.param("cxxrtl", marks=pytest.mark.needs_cxx)])
def test_sim_runs_a_conv_model_on_both_back_ends(digits_conv_model, backend, capsys):
    model, path = digits_conv_model
    argv = ["sim", "--model", path, "--count", "3", "--pe", "4", "--simd", "16", "--backend", backend]
    assert main(argv + ["--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    data = load_dataset("digits")
    expected = np.mean(infer(model, data.test_images[:3]).classes == data.test_labels[:3])
    assert report["mismatches"] == 0 and report["frames"] == 3 and report["accuracy"] == expected
    assert report["arch"] == "8x8-c4k3-p-10"
    cycles = report["cycles_per_frame"]
    # 6 x 6 outputs pooled to 3 x 3: 36 positions x 1 group x 1 slice (the 3 window rows of 3 pixels
    # gathered into one) x 8 planes, then 36 stored values (9 pixels x 4 channels) in 3 slices for
    # 3 groups; 2 layers x (4 + 0 stages)
    assert report["gather_rows"] == 3
    assert cycles["measured"] == cycles["analytic"] == 36 * 8 + 3 * 3 + 2 * 4
    assert report["latency"]["measured"] == report["latency"]["analytic"]
    # each window row sliced alone: 3 slices per window
    assert main(argv + ["--gather-rows", "1"]) == 0
    out = capsys.readouterr().out
    assert "8x8-c4k3-p-10" in out and "0 mismatches" in out and "measured 881, analytic 881" in out
    assert "slices gathered from up to 1 window row" in out


@pytest.mark.needs_cxx
def test_sim_folds_and_sizes_a_conv_model(digits_conv_model, capsys):
    _, path = digits_conv_model
    argv = ["sim", "--model", path, "--count", "2", "--backend", "cxxrtl"]
    assert main(argv + ["--max-cycles", "900", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cycles_per_frame"]["measured"] == report["cycles_per_frame"]["analytic"] <= 900
    assert report["mismatches"] == 0
    assert main(argv + ["--pe", "4", "--simd", "16", "--memory", "act_words=10", "--memory", "weight_depth=100",
                        "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["mismatches"] == 0
    assert main(argv + ["--pe", "4", "--simd", "16", "--memory", "act_words=2"]) == 1
    assert "the model needs 3 activation words but the engine has 2" in capsys.readouterr().err
    assert main(argv + ["--pe", "4", "--simd", "12"]) == 1
    assert "(8x8-c4k3-p-10) needs S a power of two, not 12" in capsys.readouterr().err
