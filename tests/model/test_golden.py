import numpy as np
import pytest

from model.bits import unpack_signs
from model.golden import infer

from model.random_models import random_model

from .reference import reference_infer

SHAPES = [
    [1, 1, 2],            # fan-in 1, a single hidden neuron
    [7, 3, 2],            # fan-in below a byte
    [9, 65, 1, 3],        # fan-in just over a byte, 65 = one over a 64-bit word, one-neuron layer
    [63, 33, 129, 10],
    [200, 64, 7],
]


@pytest.mark.parametrize("sizes", SHAPES)
@pytest.mark.parametrize("input_bits", [8, 1])
@pytest.mark.parametrize("extreme", [False, True])
def test_golden_matches_matrix_reference(sizes, input_bits, extreme):
    rng = np.random.default_rng([len(sizes), sizes[0], input_bits, extreme])
    model = random_model(sizes, input_bits=input_bits, seed=int(rng.integers(1 << 30)),
                         extreme_thresholds=0.5 if extreme else 0.0)
    images = rng.integers(0, 256, (257, sizes[0]), dtype=np.uint8)
    result = infer(model, images)
    hidden, scores = reference_infer(model, images)
    np.testing.assert_array_equal(result.scores, scores)
    for k, layer in enumerate(model.layers[:-1]):
        np.testing.assert_array_equal(unpack_signs(result.activations[k], layer.fan_out), hidden[k])
    np.testing.assert_array_equal(result.classes, np.argmax(scores, axis=1))


def test_hidden_layers_fire_both_ways():
    """Guard the reference test against degenerate random models (all neurons stuck)."""
    rng = np.random.default_rng(5)
    model = random_model([63, 33, 129, 10], seed=5)
    images = rng.integers(0, 256, (300, 63), dtype=np.uint8)
    for k, act in enumerate(reference_infer(model, images)[0]):
        assert 0.05 < np.mean(act > 0) < 0.95, k


def test_extreme_thresholds_are_constant_neurons():
    rng = np.random.default_rng(3)
    model = random_model([20, 40, 3], seed=3, extreme_thresholds=0.5)
    images = rng.integers(0, 256, (100, 20), dtype=np.uint8)
    hidden = unpack_signs(infer(model, images).activations[0], 40)
    t = model.layers[0].thresholds
    bound = model.preactivation_bound(0)
    assert np.all(hidden[:, t == -bound] == 1)
    assert np.all(hidden[:, t == bound + 1] == -1)
    assert np.any(t == -bound) and np.any(t == bound + 1)


def test_argmax_ties_go_to_lowest_index():
    rng = np.random.default_rng(0)
    model = random_model([16, 8, 4])
    # Identical output rows give identical scores for every class: a full tie.
    last = model.layers[-1]
    last.weights[:] = last.weights[0]
    images = rng.integers(0, 256, (50, 16), dtype=np.uint8)
    result = infer(model, images)
    assert np.all(result.scores == result.scores[:, :1])
    assert np.all(result.classes == 0)
    # Classes 1 and 3 always tie; whenever they lead, the lower index must win.
    last.weights[3] = last.weights[1]
    last.weights[0] = ~last.weights[1] & 0xFF
    result = infer(model, images)
    tied = result.scores[:, 1] == result.scores[:, 3]
    assert np.all(tied)
    assert not np.any(result.classes == 3)


def test_rejects_wrong_image_shape_and_dtype():
    model = random_model([10, 4, 2])
    with pytest.raises(ValueError, match=r"shape \(B, 10\)"):
        infer(model, np.zeros((3, 11), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        infer(model, np.zeros((3, 10), np.int32))
