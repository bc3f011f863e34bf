"""Folding is exact: the integer model agrees with the float network in evaluation mode everywhere."""

import math

import numpy as np
import pytest

from model import train
from model.bits import unpack_bits
from model.datasets import load_dataset
from model.fold import fold, fold_hidden_layer
from model.golden import infer


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _trained(digits, input_bits, grad, arch=(64, 48, 32, 10), epochs=4, seed=1):
    rng = np.random.default_rng(seed)
    net = train.init_binary_network(arch, input_bits, digits.max_value, grad, rng)
    data = train.split_validation(digits, 0.1, seed)
    train.train_binary(data, net, train.TrainSettings(epochs, 64, 1e-2), rng, progress=False)
    return net


def _assert_same_everywhere(net, model, images):
    float_run = train.evaluate_binary(net, images)
    golden = infer(model, images)
    for k, (packed, fires) in enumerate(zip(golden.activations, float_run.hidden)):
        assert np.array_equal(unpack_bits(packed, fires.shape[1]).astype(bool), fires), f"hidden layer {k}"
    assert np.array_equal(golden.scores, float_run.scores)
    assert np.array_equal(golden.classes, float_run.classes)
    assert np.array_equal(golden.classes, np.argmax(float_run.logits, axis=1))


def _with_unusual_neurons(net, rng):
    """Make some batch-norm scales negative and some zero (with either sign of beta)."""
    for k in range(net.hidden_layers):
        gamma, beta = net.params[f"gamma{k}"], net.params[f"beta{k}"]
        n = len(gamma)
        flipped = rng.choice(n, n // 3, replace=False)
        gamma[flipped] = -np.abs(gamma[flipped])
        gamma[:4] = 0
        beta[:4] = [0.5, -0.5, 0.0, -1e-3]
    return net


@pytest.mark.parametrize("input_bits", [8, 1])
@pytest.mark.parametrize("grad", ["ste", "approxsign"])
def test_folded_model_matches_float_network_on_every_test_image(digits, input_bits, grad):
    net = _trained(digits, input_bits, grad)
    model = fold(net, digits.shape)
    assert model.arch == "64-48-32-10" and model.input.bits == input_bits
    _assert_same_everywhere(net, model, digits.test_images)
    # The folded model is the trained one, not a degenerate one.
    assert train.accuracy(infer(model, digits.test_images).classes, digits.test_labels) > 0.7


@pytest.mark.parametrize("input_bits", [8, 1])
def test_negative_and_zero_scales_fold_exactly(digits, input_bits):
    net = _with_unusual_neurons(_trained(digits, input_bits, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    _assert_same_everywhere(net, model, np.concatenate([digits.test_images, digits.train_images]))
    # Random images over the full 0..255 range reach pre-activations the digits never do.
    noise = np.random.default_rng(6).integers(0, 256, (300, 64), dtype=np.uint8)
    _assert_same_everywhere(net, model, noise)


def test_constant_neurons_get_extreme_thresholds(digits):
    net = _with_unusual_neurons(_trained(digits, 8, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    for k in range(net.hidden_layers):
        bound = model.preactivation_bound(k)
        assert model.layers[k].thresholds[:4].tolist() == [-bound, bound + 1, -bound, bound + 1]


def test_negative_scale_negates_the_weight_row(digits):
    net = _with_unusual_neurons(_trained(digits, 1, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    for k in range(net.hidden_layers):
        stored = unpack_bits(model.layers[k].weights, net.arch[k]).astype(int) * 2 - 1
        trained = train.binary_weights(net.params[f"w{k}"]).astype(int)
        negative = net.params[f"gamma{k}"] < 0
        assert negative.any()
        assert np.array_equal(stored[negative], -trained[negative])
        assert np.array_equal(stored[~negative], trained[~negative])


@pytest.mark.parametrize("input_bits", [8, 1])
def test_threshold_holds_for_every_integer_preactivation(digits, input_bits):
    """Exhaustively: neuron fires (float, evaluation mode) iff the stored comparison holds."""
    net = _with_unusual_neurons(_trained(digits, input_bits, "ste"), np.random.default_rng(7))
    model = fold(net, digits.shape)
    for k in range(net.hidden_layers):
        bound = model.preactivation_bound(k)
        row_signs, thresholds = fold_hidden_layer(net, k, bound)
        y = np.arange(-bound, bound + 1)[:, None]
        args = (net.layer_scale(k), net.stats[f"mean{k}"], net.stats[f"var{k}"],
                net.params[f"gamma{k}"], net.params[f"beta{k}"])
        fires = train.hidden_fires(y, *args)
        assert np.array_equal(fires, row_signs * y >= thresholds)
        assert np.array_equal(thresholds, model.layers[k].thresholds)


def test_thresholds_agree_with_the_closed_form(digits):
    """``t = ceil(c)`` with ``c = s * (mean - beta * sqrt(var + eps) / gamma)`` (negated where gamma < 0)."""
    net = _trained(digits, 8, "ste")
    model = fold(net, digits.shape)
    for k in range(net.hidden_layers):
        gamma = net.params[f"gamma{k}"].astype(np.float64)
        sigma = np.sqrt(net.stats[f"var{k}"] + train.BN_EPS)
        c = net.layer_scale(k) * (net.stats[f"mean{k}"] - net.params[f"beta{k}"] * sigma / gamma)
        bound = model.preactivation_bound(k)
        expected = np.where(gamma > 0, np.ceil(c), np.floor(c) * -1).clip(-bound, bound + 1)
        assert np.array_equal(model.layers[k].thresholds, expected.astype(np.int32))


def test_output_layer_keeps_argmax_ties_to_lowest_index():
    """Equal integer scores stay equal after the positive scale, so ties go to the lowest class."""
    scores = np.array([[3, 7, 7, -1]])
    logits = math.exp(-1.7) * scores
    assert np.argmax(logits, axis=1)[0] == np.argmax(scores, axis=1)[0] == 1
