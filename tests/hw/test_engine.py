"""Whole-engine tests: every class and score equals the golden model's, under back-pressure."""

import numpy as np
import pytest

from layout.compiler import compile_model
from layout.params import CAPACITY_KEYS
from model.golden import infer
from model.random_models import random_images, random_model
from tests.hw.engine_support import check_engine


CASES = [
    # sizes, input bits, P, S, tree stages, pixels per beat
    ([20, 7, 9, 3], 8, 2, 4, 0, None),
    ([13, 1, 5, 2], 1, 1, 8, 0, 2),     # a single-neuron layer, then fan-in 1
    ([1, 3, 2], 8, 1, 1, 0, None),      # fan-in 1 from the input, S = 1
    ([37, 17, 10], 1, 4, 16, 2, 4),
    ([30, 12, 11], 8, 3, 6, 1, 3),
    ([64, 16, 10], 8, 8, 32, 0, 8),
    ([9, 2], 8, 2, 2, 3, 1),            # a single (output) layer
    ([5, 3], 1, 1, 1, 0, 1),            # a single layer on binarized pixels, S = 1
    ([3, 4, 2], 1, 2, 8, 0, 4),         # fewer pixels than one beat
]


@pytest.mark.parametrize("sizes, input_bits, pe, simd, stages, per_beat", CASES)
def test_engine_matches_golden_model(simulate, sizes, input_bits, pe, simd, stages, per_beat):
    seed = sum(sizes) + pe * simd
    model = random_model(sizes, input_bits=input_bits, seed=seed, input_threshold=100)
    images = random_images(4, sizes[0], seed=seed)
    check_engine(simulate, model, images, pe=pe, simd=simd, tree_stages=stages,
                 pixels_per_beat=per_beat)


@pytest.mark.parametrize("input_bits", [8, 1])
def test_extreme_thresholds_and_pixels(simulate, input_bits):
    model = random_model([11, 6, 5, 3], input_bits=input_bits, seed=5, extreme_thresholds=0.6,
                         input_threshold=255)
    images = np.array([[0] * 11, [255] * 11, [255, 0] * 5 + [254]], dtype=np.uint8)
    check_engine(simulate, model, images, pe=2, simd=4)


def test_argmax_ties_go_to_the_lowest_class(simulate):
    # an output layer with fan-in 2 has scores in {-2, 0, 2}: 7 classes tie often
    model = random_model([6, 2, 7], input_bits=8, seed=1)
    images = random_images(6, 6, seed=1)
    golden = infer(model, images)
    assert all(np.sum(s == s.max()) > 1 for s in golden.scores)
    check_engine(simulate, model, images, pe=2, simd=2)


@pytest.mark.parametrize("sizes, pe, simd", [([3, 3, 17], 2, 2), ([33, 7], 2, 6)])
@pytest.mark.parametrize("threshold", [0, 1, 256])
def test_pad_lanes_stay_zero_whatever_the_input_threshold(simulate, sizes, pe, simd, threshold):
    # an input size that is not a multiple of S: with threshold 0 every pixel is +1, the pad lanes must not be
    model = random_model(sizes, input_bits=1, seed=threshold + pe, input_threshold=threshold)
    check_engine(simulate, model, random_images(4, sizes[0], seed=3), pe=pe, simd=simd)


def test_input_threshold_of_256_never_fires(simulate):
    model = random_model([5, 4, 2], input_bits=1, seed=3, input_threshold=256)
    check_engine(simulate, model, np.full((2, 5), 255, dtype=np.uint8), pe=2, simd=4)


def test_a_smaller_network_runs_on_the_hardware_of_a_bigger_one(simulate):
    big = compile_model(random_model([40, 12, 9, 6], seed=11), pe=2, simd=8, pixels_per_beat=4)
    capacity = {key: getattr(big.params, key) for key in CAPACITY_KEYS}
    small = random_model([27, 5, 3], seed=12)
    assert compile_model(small, pe=2, simd=8, pixels_per_beat=4, capacity=capacity).params == big.params
    check_engine(simulate, small, random_images(3, 27, seed=12), pe=2, simd=8, pixels_per_beat=4,
                 capacity=capacity)
