"""Folding is exact: the integer model agrees with the float network in evaluation mode everywhere."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model import train
from model.bits import unpack_bits, unpack_signs
from model.datasets import load_dataset
from model.fold import fold
from model.golden import infer
from model.layers import Dense
from model.ops import BN_EPS, binary_weights, hidden_fires
from model.pipeline import threshold_mismatches
from model.student import evaluate_binary, firing_thresholds, init_binary_network
from tests.model.fold_support import assert_same_everywhere


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _trained(digits, input_bits, grad, arch=(64, 48, 32, 10), epochs=4, seed=1):
    rng = np.random.default_rng(seed)
    net = init_binary_network((arch[0],), tuple(map(Dense, arch[1:])), input_bits, digits.max_value, grad, rng)
    data = train.split_validation(digits, 0.1, seed)
    train.train_binary(data, net, train.TrainSettings(epochs, 64, 1e-2), rng, progress=False)
    return net


def _with_unusual_neurons(net, rng):
    """Make some batch-norm scales negative and some zero (with either sign of beta)."""
    for k in net.hidden:
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
    assert_same_everywhere(net, model, digits.test_images)
    # The folded model is the trained one, not a degenerate one.
    assert train.accuracy(infer(model, digits.test_images).classes, digits.test_labels) > 0.7


@pytest.mark.parametrize("input_bits", [8, 1])
def test_negative_and_zero_scales_fold_exactly(digits, input_bits):
    net = _with_unusual_neurons(_trained(digits, input_bits, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    assert_same_everywhere(net, model, np.concatenate([digits.test_images, digits.train_images]))
    # Random images over the full 0..255 range reach pre-activations the digits never do.
    noise = np.random.default_rng(6).integers(0, 256, (300, 64), dtype=np.uint8)
    assert_same_everywhere(net, model, noise)


def test_constant_neurons_get_extreme_thresholds(digits):
    net = _with_unusual_neurons(_trained(digits, 8, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    for k in net.hidden:
        bound = model.preactivation_bound(k)
        assert model.layers[k].thresholds[:4].tolist() == [-bound, bound + 1, -bound, bound + 1]


def test_negative_scale_negates_the_weight_row(digits):
    net = _with_unusual_neurons(_trained(digits, 1, "ste"), np.random.default_rng(5))
    model = fold(net, digits.shape)
    for k in net.hidden:
        stored = unpack_bits(model.layers[k].weights, net.fan_in(k)).astype(int) * 2 - 1
        trained = binary_weights(net.params[f"w{k}"]).astype(int)
        negative = net.params[f"gamma{k}"] < 0
        assert negative.any()
        assert np.array_equal(stored[negative], -trained[negative])
        assert np.array_equal(stored[~negative], trained[~negative])


def _assert_exact_for_every_preactivation(net, model):
    """Exhaustively, for each hidden neuron and every integer pre-activation ``y`` of the trained
    weight row: the float network fires (evaluation mode) iff the folded neuron does. The folded
    neuron sees ``row_sign * y`` (its stored row is the trained one times ``row_sign``, +1 or -1)
    and fires iff that is >= its threshold."""
    for k in net.hidden:
        stored = unpack_signs(model.layers[k].weights, net.fan_in(k)).astype(np.int64)
        trained = binary_weights(net.params[f"w{k}"]).astype(np.int64)
        row_signs = stored[:, 0] * trained[:, 0]
        assert np.array_equal(stored, trained * row_signs[:, None])
        bound = model.preactivation_bound(k)
        y = np.arange(-bound, bound + 1)[:, None]
        fires = hidden_fires(y, net.layer_scale(k), net.stats[f"mean{k}"], net.stats[f"var{k}"],
                                   net.params[f"gamma{k}"], net.params[f"beta{k}"])
        assert np.array_equal(fires, row_signs * y >= model.layers[k].thresholds), f"hidden layer {k}"
    assert threshold_mismatches(net) == 0


@pytest.mark.parametrize("input_bits", [8, 1])
def test_threshold_holds_for_every_integer_preactivation(digits, input_bits):
    net = _with_unusual_neurons(_trained(digits, input_bits, "ste"), np.random.default_rng(7))
    model = fold(net, digits.shape)
    _assert_exact_for_every_preactivation(net, model)
    for k in net.hidden:
        assert net.preactivation_bound(k) == model.preactivation_bound(k)
        _, thresholds = firing_thresholds(net, k)
        assert np.array_equal(thresholds, model.layers[k].thresholds)


def test_thresholds_agree_with_the_closed_form(digits):
    """``t = ceil(c)`` with ``c = s * (mean - beta * sqrt(var + eps) / gamma)`` (negated where gamma < 0)."""
    net = _trained(digits, 8, "ste")
    model = fold(net, digits.shape)
    for k in net.hidden:
        gamma = net.params[f"gamma{k}"].astype(np.float64)
        sigma = np.sqrt(net.stats[f"var{k}"] + BN_EPS)
        c = net.layer_scale(k) * (net.stats[f"mean{k}"] - net.params[f"beta{k}"] * sigma / gamma)
        bound = model.preactivation_bound(k)
        expected = np.where(gamma > 0, np.ceil(c), np.floor(c) * -1).clip(-bound, bound + 1)
        assert np.array_equal(model.layers[k].thresholds, expected.astype(np.int32))


def test_tied_scores_give_the_lowest_class_in_the_float_network_and_the_folded_model(digits):
    """Identical output rows tie every class: both sides pick class 0, the float network's logits too."""
    net = _trained(digits, 8, "ste", epochs=1)
    last = f"w{net.output}"
    net.params[last][:] = net.params[last][0]
    model = fold(net, digits.shape)
    float_run = evaluate_binary(net, digits.test_images)
    assert np.all(float_run.scores == float_run.scores[:, :1])
    assert np.all(float_run.classes == 0) and np.all(np.argmax(float_run.logits, axis=1) == 0)
    assert np.all(infer(model, digits.test_images).classes == 0)


@st.composite
def float_networks(draw):
    """A small :class:`model.student.BinaryNetwork` in evaluation mode with arbitrary parameters: latent
    weights, batch-norm scales of either sign or zero, and many neurons whose threshold falls on,
    or within rounding of, an integer pre-activation."""
    arch = draw(st.lists(st.integers(1, 10), min_size=2, max_size=4))
    arch.append(draw(st.integers(2, 6)))
    input_bits = draw(st.sampled_from([8, 1]))
    max_value = draw(st.sampled_from([1, 16, 255]))
    threshold = draw(st.integers(1, max_value)) if input_bits == 1 else None
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    net = init_binary_network((arch[0],), tuple(map(Dense, arch[1:])), input_bits, max_value, "ste", rng,
                                    threshold)
    for k in [*net.hidden, net.output]:
        net.params[f"w{k}"] = rng.uniform(-1, 1, net.params[f"w{k}"].shape).astype(np.float32)
    for k in net.hidden:
        n = arch[k + 1]
        gamma = rng.normal(0, 1, n) * rng.choice([0, 1], n, p=[0.2, 0.8])
        beta = rng.normal(0, 1, n)
        var = rng.exponential(arch[k], n) * rng.choice([0, 1], n, p=[0.1, 0.9])
        scale = net.layer_scale(k)
        # The mean that puts the threshold at c: gamma * (c / s - mean) / sqrt(var + eps) + beta = 0.
        offsets = rng.choice([0, 0, 1e-12, -1e-12, 1e-7, -1e-7, 0.5], n)
        c = rng.integers(-arch[k] * scale, arch[k] * scale + 1, n) + offsets
        mean = np.where(gamma != 0, c / scale + beta * np.sqrt(var + BN_EPS) / np.where(gamma != 0, gamma, 1),
                        rng.normal(0, arch[k], n))
        net.params[f"gamma{k}"] = gamma.astype(np.float32)
        net.params[f"beta{k}"] = beta.astype(np.float32)
        net.stats[f"mean{k}"], net.stats[f"var{k}"] = mean, var
    net.params["log_alpha"] = np.array([rng.normal(0, 2)], np.float32)
    shape = draw(st.sampled_from([(arch[0],), (1, arch[0])]))
    return net, shape


@settings(max_examples=80, deadline=None)
@given(network=float_networks(), data=st.data())
def test_folding_random_float_networks_is_exact(network, data):
    net, shape = network
    model = fold(net, shape)
    assert model.arch == net.arch and model.input.shape == shape
    # every pixel value the model accepts, not only the data set's range (0..input_scale)
    pixels = st.one_of(st.integers(0, 255), st.sampled_from([0, 1, net.input_scale, 255]))
    size = net.input_shape[0]
    images = np.array(data.draw(st.lists(st.lists(pixels, min_size=size, max_size=size),
                                         min_size=1, max_size=8)), np.uint8)
    assert_same_everywhere(net, model, images)
    _assert_exact_for_every_preactivation(net, model)
