"""The compiler's memory images, descriptors and refusals."""

import pytest

from hw.link import LinkCore
from layout.compiler import choose_folding, compile_model
from layout.params import CompileError
from model.bits import unpack_bits
from model.layers import Conv, Dense, MaxPool
from model.random_models import random_conv_model, random_model


def signed(value, width):
    return value - (1 << width) if value >> (width - 1) else value


@pytest.mark.parametrize("pe, simd", [(1, 1), (2, 4), (3, 9), (4, 16)])
def test_weight_and_start_images_follow_the_sequencer_order(pe, simd):
    model = random_model([21, 7, 5, 3], input_bits=8, seed=pe + simd)
    compiled = compile_model(model, pe=pe, simd=simd)
    params, image = compiled.params, compiled.image
    addr = taddr = 0
    for k, (layer, d) in enumerate(zip(model.layers, image.descriptors)):
        bits = unpack_bits(layer.weights, layer.fan_in)
        assert d.slices == -(-layer.fan_in // simd) and d.groups == -(-layer.fan_out // pe)
        for g in range(d.groups):
            for s in range(d.slices):
                word = image.weight_words[addr]
                for p in range(pe):
                    for lane in range(simd):
                        j, i = g * pe + p, s * simd + lane
                        want = bits[j, i] if j < layer.fan_out and i < layer.fan_in else 0
                        assert (word >> (p * simd + lane)) & 1 == want
                addr += 1
            word = image.start_words[taddr]
            width = params.start_width
            lanes = simd * d.slices
            for p in range(pe):
                got = signed((word >> (p * width)) & ((1 << width) - 1), width)
                j = g * pe + p
                ones = int(bits[j].sum()) if j < layer.fan_out else 0
                # XNOR: the bias that cancels the pad lanes; bit-serial: 255 * (ones(w) - lanes)
                bias = 255 * (ones - lanes) if d.bit_serial else -(2 * lanes - layer.fan_in)
                if layer.thresholds is None:
                    assert got == bias
                elif j < layer.fan_out:
                    assert got == bias - layer.thresholds[j]
                else:  # pad neuron: a threshold no pre-activation reaches
                    assert got == bias - model.preactivation_bound(k) - 1
            taddr += 1
    assert addr == len(image.weight_words) == params.weight_depth
    assert taddr == len(image.start_words) == params.start_depth


def test_xnor_start_cancels_the_pad_lanes():
    model = random_model([10, 5, 2], input_bits=1, seed=0)
    compiled = compile_model(model, pe=2, simd=8)
    width = compiled.params.start_width
    output_start = signed(compiled.image.start_words[-1] & ((1 << width) - 1), width)
    # 5 inputs in 1 word of 8: 3 pad lanes that always match and add 2 each
    assert output_start == -(2 * 8 - 5)


def test_accumulator_holds_every_partial_sum_and_score():
    model = random_model([784, 8, 2], input_bits=8, seed=2, extreme_thresholds=1.0)
    assert {-784 * 255, 784 * 255 + 1} == set(model.layers[0].thresholds.tolist())
    params = compile_model(model, pe=2, simd=8).params
    bound, lanes = 784 * 255, 8 * 98
    # a layer-0 start is 255 * (ones(w) - lanes) - threshold, its terms add up to 255 * lanes
    assert 1 << (params.start_width - 1) >= 255 * lanes + bound + 1
    assert (1 << (params.acc_width - 1)) - 1 >= 255 * lanes + bound


@pytest.mark.parametrize("kwargs, message", [
    ({"pe": 3, "simd": 4}, r"simd \(4\) must be a multiple of pe \(3\)"),
    ({"pe": 0, "simd": 4}, "pe must be a positive integer, not 0"),
    ({"pe": 2, "simd": 8, "pixels_per_beat": 3}, r"pixels_per_beat \(3\) must divide simd \(8\)"),
    ({"pe": 2, "simd": 8, "tree_stages": -1}, "tree_stages must be an integer in 0..16"),
    ({"pe": 2, "simd": 8, "capacity": {"weight_depth": 10}}, "needs 49 weight words but the engine has 10"),
    ({"pe": 2, "simd": 8, "capacity": {"max_layers": 1}}, "needs 2 layers but the engine has 1"),
    ({"pe": 2, "simd": 8, "capacity": {"banana": 1}}, "unknown capacity keys"),
    ({"pe": 2, "simd": 8, "capacity": {"gather_rows": 9}}, "capacity gather_rows must be an integer in 1..8, not 9"),
    ({"pe": 2, "simd": 8, "capacity": {"gather_rows": 2}},
     "gather_rows applies to an engine with convolutions, not to one for 70-9-3"),
])
def test_refusals_name_the_numbers(kwargs, message):
    model = random_model([70, 9, 3], seed=0)
    with pytest.raises(CompileError, match=message):
        compile_model(model, **kwargs)


def test_a_model_fits_a_bigger_engine():
    model = random_model([70, 9, 3], seed=0)
    compiled = compile_model(model, pe=2, simd=8, capacity={"weight_depth": 64, "act_words": 4})
    assert compiled.params.weight_depth == 64 and compiled.params.act_words == 4
    assert len(compiled.image.weight_words) == 49  # 5 groups x 9 slices + 2 x 2


def test_choose_folding_takes_the_fewest_lanes_that_meet_the_target():
    model = random_model([784, 64, 64, 64, 10], seed=0)
    pe, simd = choose_folding(model, max_cycles=437)
    assert (pe, simd) == (32, 32)  # 1024 lanes, 422 cycles: fewer than 16 x 64's 437
    assert compile_model(model, pe=pe, simd=simd).cycles_per_frame == 422
    for smaller in [(16, 32), (8, 64), (4, 128), (2, 256), (1, 512)]:
        assert compile_model(model, pe=smaller[0], simd=smaller[1]).cycles_per_frame > 437


def test_choose_folding_refuses_an_unreachable_target():
    model = random_model([784, 64, 64, 64, 10], seed=0)
    with pytest.raises(CompileError, match=r"no P x S of at most 64 lanes reaches 100 cycles per frame; "
                                           r"the fastest, 4 x 16, needs 6424"):
        choose_folding(model, max_cycles=100, max_lanes=64)


def test_a_convolutional_model_builds_a_conv_engine_and_a_dense_one_does_not():
    assert compile_model(random_conv_model((6, 6), [Conv(2, 3), MaxPool(), Dense(3)]), pe=2, simd=4).params.conv
    assert not compile_model(random_model([36, 3]), pe=2, simd=4).params.conv


def test_the_link_refuses_an_engine_whose_classes_do_not_fit_a_byte():
    compiled = compile_model(random_model([8, 300]), pe=4, simd=8)
    with pytest.raises(CompileError, match="at most 256 scores, not 300"):
        LinkCore(compiled, clock_hz=12_000_000, baud=115_200)
