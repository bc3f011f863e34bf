"""Runs through the back-end-neutral description: golden results and the cycle formula."""

import numpy as np
import pytest

from layout.compiler import compile_model
from model.golden import infer
from model.random_models import random_images, random_model
from sim.amaranth_backend import run_amaranth
from sim.engine_run import mismatched_frames
from sim.stimulus import frame_beats, make_run_spec


@pytest.mark.parametrize("sizes, input_bits, pe, simd, stages, per_beat", [
    ([20, 7, 9, 3], 8, 2, 4, 0, None),
    ([20, 7, 9, 3], 8, 2, 4, 2, None),
    ([33, 10, 4], 1, 2, 8, 1, None),
    ([64, 16, 16, 16, 10], 8, 4, 16, 0, None),
    ([20, 7, 3], 8, 2, 16, 0, 2),      # the frame ends in the middle of a word
    ([21, 7, 3], 1, 2, 16, 0, 4),
])
def test_measured_cycles_equal_the_formula(engine_run, sizes, input_bits, pe, simd, stages, per_beat):
    model = random_model(sizes, input_bits=input_bits, seed=2)
    run = engine_run(model, random_images(4, sizes[0], seed=2), pe=pe, simd=simd, tree_stages=stages,
                     pixels_per_beat=per_beat)
    compiled = run.compiled
    assert run.mismatches == 0
    overhead = compiled.cycles_per_frame - compiled.ideal_cycles
    assert overhead == (len(sizes) - 1) * (3 + stages)  # per layer: memory latency 2, PE stages, write 1
    assert run.intervals == [compiled.cycles_per_frame] * 3
    assert run.latency == compiled.latency


def test_formula_counts_groups_slices_and_planes():
    model = random_model([784, 64, 64, 64, 10], seed=0)
    compiled = compile_model(model, pe=16, simd=64)
    assert compiled.ideal_cycles == 4 * 13 * 8 + 4 * 1 + 4 * 1 + 1 * 1 == 425
    assert compiled.cycles_per_frame == 425 + 4 * 3


@pytest.mark.parametrize("sizes, pe, simd", [([9, 5], 1, 16), ([6, 2, 32], 4, 8)])
def test_a_short_frame_waits_for_the_argmax(engine_run, sizes, pe, simd):
    # the output layer may start only once the previous result is taken, argmax_latency cycles
    # after its last score; with no hidden layer (or a short one) to overlap, that is a stall
    model = random_model(sizes, input_bits=1, seed=5)
    run = engine_run(model, random_images(4, sizes[0], seed=5), pe=pe, simd=simd)
    compiled = run.compiled
    hidden = compiled.compute_cycles - compiled.image.descriptors[-1].cycles - compiled.params.layer_gap
    stall = compiled.params.argmax_latency + 1 - hidden
    assert stall > 0 and compiled.cycles_per_frame == compiled.compute_cycles + stall
    assert run.mismatches == 0
    assert run.intervals == [compiled.cycles_per_frame] * 3
    assert run.latency == compiled.latency


def test_results_survive_gaps_and_back_pressure(engine_run):
    model = random_model([25, 9, 5], input_bits=8, seed=4)
    run = engine_run(model, random_images(6, 25, seed=4), pe=2, simd=8, seed=7,
                     input_gaps=0.5, output_stalls=0.6)
    assert run.mismatches == 0
    assert run.intervals != [run.compiled.cycles_per_frame] * 5  # the stalls did hold results back


def test_a_run_is_reproducible_cycle_for_cycle():
    model = random_model([12, 6, 3], input_bits=1, seed=8)
    compiled = compile_model(model, pe=2, simd=4)
    spec = make_run_spec(compiled, random_images(3, 12, seed=8), seed=3, input_gaps=0.4, output_stalls=0.4)
    assert spec == make_run_spec(compiled, random_images(3, 12, seed=8), seed=3, input_gaps=0.4, output_stalls=0.4)
    first, second = run_amaranth(compiled, spec), run_amaranth(compiled, spec)
    assert first.outputs == second.outputs and first.input_cycles == second.input_cycles
    assert len(first.outputs) == 3 and len(first.input_cycles) == len(spec.beats)


def test_mismatches_are_detected():
    model = random_model([12, 6, 3], input_bits=8, seed=8)
    golden = infer(model, random_images(3, 12, seed=8))
    scores = golden.scores.copy()
    assert mismatched_frames(golden, golden.classes, scores) == []
    scores[1, 2] += 1
    classes = golden.classes.copy()
    classes[2] = (classes[2] + 1) % 3
    assert mismatched_frames(golden, classes, scores) == [1, 2]


def test_frame_beats_pad_the_last_beat_with_zeros():
    assert frame_beats(np.array([1, 2, 3], dtype=np.uint8), 2) == [0x0201, 0x03]
    assert frame_beats(np.array([255], dtype=np.uint8), 4) == [0xff]
