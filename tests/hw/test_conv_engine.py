"""Convolutional networks on the engine: every class and score equals the golden model's under
random back-pressure, and the cycles per frame and latency equal the compiler's formula."""

import numpy as np
import pytest

from layout.compiler import choose_folding, compile_model
from layout.params import CAPACITY_KEYS, CompileError
from model.bits import pack_bits
from model.golden import infer
from model.layers import Conv, Dense, MaxPool
from model.modelfile import BinaryLayer, BinaryModel, ConvLayer, InputEncoding
from model.random_models import random_conv_model, random_images
from tests.hw.engine_support import check_engine

CASES = [
    # image shape, layers, input bits, P, S, tree stages
    ((5, 5), [Conv(2, 3), Dense(3)], 1, 2, 4, 0),
    ((7, 7), [Conv(3, 3), MaxPool(), Dense(3)], 8, 2, 4, 1),                 # pool after 5 x 5
    ((6, 5, 3), [Conv(5, 1), MaxPool(), Dense(4)], 1, 2, 8, 0),              # K = 1, C_in = 3, odd width
    ((5, 6, 17), [Conv(3, 3), MaxPool(), Dense(2)], 8, 1, 16, 0),            # C_in = 17, pool after 3 x 4
    ((5, 5, 17), [Conv(3, 1), Dense(2)], 1, 2, 4, 0),                        # a window row of 5 slices
    ((9, 8), [Conv(5, 3), Conv(6, 3), MaxPool(), Dense(5), Dense(3)], 1, 4, 8, 2),  # C_out 5: pad channels
    ((12, 12), [Conv(4, 3), MaxPool(), Conv(8, 3), MaxPool(), Dense(10)], 8, 4, 16, 0),
]


def _case_id(case):
    shape, specs, bits, pe, simd, stages = case
    return f"{'x'.join(map(str, shape))}-{'-'.join(map(str, specs))}-{bits}bit-{pe}x{simd}-d{stages}"


@pytest.mark.parametrize("shape, specs, input_bits, pe, simd, stages", CASES, ids=map(_case_id, CASES))
def test_conv_engine_matches_golden_model_under_back_pressure(simulate, shape, specs, input_bits, pe, simd, stages):
    seed = sum(shape) + pe * simd
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=seed, input_threshold=100)
    images = random_images(3, model.input.size, seed=seed)
    check_engine(simulate, model, images, pe=pe, simd=simd, tree_stages=stages)


@pytest.mark.parametrize("shape, specs, input_bits, pe, simd, stages", CASES[1:4], ids=map(_case_id, CASES[1:4]))
def test_conv_cycles_equal_the_formula(engine_run, shape, specs, input_bits, pe, simd, stages):
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=3)
    run = engine_run(model, random_images(3, model.input.size, seed=4), pe=pe, simd=simd, tree_stages=stages)
    compiled = run.compiled
    assert run.mismatches == 0
    assert run.intervals == [compiled.cycles_per_frame] * 2
    assert run.latency == compiled.latency


def test_extreme_thresholds_and_pixels_in_a_conv_net(simulate):
    model = random_conv_model((6, 6, 2), [Conv(3, 2), MaxPool(), Dense(3)], input_bits=8, seed=5,
                              extreme_thresholds=0.6)
    images = np.array([[0] * 72, [255] * 72, [255, 0] * 36], dtype=np.uint8)
    check_engine(simulate, model, images, pe=2, simd=8)


def test_a_one_pixel_conv_net_reads_both_input_banks(simulate):
    """An image and maps of one word each: the input and activation addresses keep their bank bit in
    place when the word index has no bits (odd frames used to read bank 0 as if their pixel were 0)."""
    encoding = InputEncoding(8, 1, (1, 1), None)
    conv = ConvLayer((1, 1, 1), 1, 1, pack_bits(np.array([[1]])), np.array([1], dtype=np.int32))
    model = BinaryModel(encoding, (conv, BinaryLayer(1, 2, pack_bits(np.array([[1], [0]])), None))).validate()
    images = np.array([[0], [255]] * 4, dtype=np.uint8)
    assert infer(model, images).classes.tolist() == [1, 0] * 4
    check_engine(simulate, model, images, pe=1, simd=8)


@pytest.mark.parametrize("shape, specs, input_bits, pe, simd", [
    ((2, 2), [Conv(4, 2), Dense(3), Dense(17)], 8, 2, 4),     # failed on every frame
    ((1, 1), [Conv(9, 1), Dense(2)], 8, 8, 16),
    ((1, 1), [Conv(9, 1), Dense(2)], 1, 4, 16),
    ((3, 3, 2), [Conv(2, 2), MaxPool(), Dense(3)], 1, 2, 32),
])
def test_one_word_memories(simulate, shape, specs, input_bits, pe, simd):
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=11, input_threshold=100)
    compiled = compile_model(model, pe=pe, simd=simd)
    assert compiled.params.input_words == compiled.params.act_words == 1
    check_engine(simulate, model, random_images(6, model.input.size, seed=11), pe=pe, simd=simd)


def test_cycle_formula_and_ideal():
    # 12 x 12, c4k3-p (10 x 10 -> 5 x 5), c8k3 (5 x 5 x 4 -> 3 x 3), 10 classes; 8-bit input, 4 x 16
    model = random_conv_model((12, 12), [Conv(4, 3), MaxPool(), Conv(8, 3), Dense(10)], seed=1)
    dense = 3 * ((9 * 8 + 15) // 16)   # 72 stored values: 5 slices, 3 groups
    ideal = 100 * 1 * 1 * 8 + 9 * 2 * 3 + dense   # ceil(9 / 16) = 1 and ceil(36 / 16) = 3 slices
    # each window row sliced alone
    compiled = compile_model(model, pe=4, simd=16, capacity={"gather_rows": 1})
    conv1 = 100 * 1 * 3 * 1 * 8        # positions x groups x window rows x slices per row x planes
    conv2 = 9 * 2 * 3 * 1              # a window row of 3 x 4 channels is one slice
    assert compiled.cycles_per_frame == conv1 + conv2 + dense + 3 * compiled.params.layer_gap
    assert compiled.ideal_cycles == ideal
    # by default the first convolution's 3 rows of 3 pixels share a slice; the second's rows fill
    # one slice each either way
    compiled = compile_model(model, pe=4, simd=16)
    assert compiled.params.gather_rows == 3
    assert compiled.cycles_per_frame == ideal + 3 * compiled.params.layer_gap


GATHER_CASES = [
    # image shape, layers, input bits, P, S, gather rows, the first convolution's words per window
    ((7, 7), [Conv(3, 3), MaxPool(), Dense(3)], 8, 2, 8, 3, 2),          # 3 rows of 3 in slice 0
    ((6, 7, 3), [Conv(2, 3), Dense(3)], 1, 2, 8, 3, 4),                  # rows of 9: 27 = 8 + 8 + 8 + 3
    ((5, 6, 17), [Conv(3, 3), MaxPool(), Dense(2)], 8, 1, 16, 2, 10),    # rows of 51: ceil(153 / 16)
    ((9, 8), [Conv(5, 3), Conv(6, 3), MaxPool(), Dense(5), Dense(3)], 1, 4, 8, 2, 3),  # needs 3: rows alone
    ((8, 8, 2), [Conv(4, 5), Dense(3)], 8, 2, 32, 5, 2),                 # K = 5: 5 rows of 10, 4 in slice 0
]


@pytest.mark.parametrize("shape, specs, input_bits, pe, simd, gather, words", GATHER_CASES,
                         ids=[f"{_case_id(c[:5] + (0,))}-g{c[5]}" for c in GATHER_CASES])
def test_slices_gathered_from_several_window_rows(engine_run, shape, specs, input_bits, pe, simd, gather, words):
    model = random_conv_model(shape, specs, input_bits=input_bits, seed=7, input_threshold=100)
    run = engine_run(model, random_images(3, model.input.size, seed=8), pe=pe, simd=simd,
                     capacity={"gather_rows": gather})
    compiled = run.compiled
    assert run.mismatches == 0
    assert compiled.params.gather_rows == gather
    assert compiled.image.descriptors[0].window_words == words
    assert run.intervals == [compiled.cycles_per_frame] * 2
    assert run.latency == compiled.latency


def test_a_conv_net_needs_s_a_power_of_two():
    model = random_conv_model((6, 6), [Conv(2, 3), MaxPool(), Dense(3)])
    with pytest.raises(CompileError, match="6x6-c2k3-p-3.* needs S a power of two, not 6"):
        compile_model(model, pe=2, simd=6)


def test_a_conv_net_that_does_not_fit_is_refused_with_both_numbers():
    model = random_conv_model((8, 8), [Conv(4, 3), Dense(3)], input_bits=1)   # a 6 x 6 x 4 map: 9 words of 16
    with pytest.raises(CompileError, match="the model needs 9 activation words but the engine has 8"):
        compile_model(model, pe=2, simd=16, capacity={"act_words": 8})
    with pytest.raises(CompileError, match="the model needs 4 input words but the engine has 3"):
        compile_model(model, pe=2, simd=16, capacity={"input_words": 3})


def test_a_conv_net_runs_on_the_hardware_of_a_bigger_one(simulate):
    big = compile_model(random_conv_model((9, 9), [Conv(6, 3), MaxPool(), Dense(4)], seed=2), pe=2, simd=8)
    capacity = {key: getattr(big.params, key) for key in CAPACITY_KEYS}
    small = random_conv_model((7, 6), [Conv(3, 2), MaxPool(), Dense(3)], seed=3)
    assert compile_model(small, pe=2, simd=8, capacity=capacity).params == big.params
    check_engine(simulate, small, random_images(3, 42, seed=3), pe=2, simd=8, capacity=capacity)


def test_choose_folding_times_a_cnn_with_the_gather_rows_asked():
    model = random_conv_model((12, 12), [Conv(4, 3), MaxPool(), Conv(8, 3), Dense(10)], seed=1)
    chosen = {}
    for gather in (None, 1):
        pe, simd = chosen[gather] = choose_folding(model, max_cycles=2500, gather_rows=gather)
        capacity = None if gather is None else {"gather_rows": gather}
        assert compile_model(model, pe=pe, simd=simd, capacity=capacity).cycles_per_frame <= 2500
    # each window row sliced alone, the 1-channel first layer needs more lanes for the same cycles (4 x 16, not 4 x 8)
    assert chosen[1][0] * chosen[1][1] > chosen[None][0] * chosen[None][1]
