"""Random (seeded) binary networks and images, for tests and benchmarks."""

import numpy as np

from model.bits import pack_bits
from model.modelfile import BinaryLayer, BinaryModel, InputEncoding


def random_model(sizes, *, input_bits=8, seed=0, extreme_thresholds=0.0, input_threshold=128):
    """A valid model with layer sizes ``sizes`` (input size first), random weights and thresholds.

    Thresholds are drawn near the spread of the pre-activations of random inputs, so that
    activations are mixed; a fraction ``extreme_thresholds`` of them is set to the ends of the
    allowed range (``-bound``: always fires, ``bound + 1``: never fires).
    """
    rng = np.random.default_rng(seed)
    scale = 255 if input_bits == 8 else 1
    encoding = InputEncoding(input_bits, sizes[0], (sizes[0],), None if input_bits == 8 else input_threshold)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights = pack_bits(rng.integers(0, 2, size=(fan_out, fan_in)))
        thresholds = None
        if k < len(sizes) - 2:
            bound = fan_in * (scale if k == 0 else 1)
            spread = (scale if k == 0 else 1) * np.sqrt(fan_in)
            values = np.clip(np.round(rng.normal(0, spread, fan_out)), -bound, bound + 1)
            extreme = rng.random(fan_out) < extreme_thresholds
            values[extreme] = rng.choice([-bound, bound + 1], size=int(extreme.sum()))
            thresholds = values.astype(np.int32)
        layers.append(BinaryLayer(fan_in, fan_out, weights, thresholds))
    return BinaryModel(encoding, tuple(layers)).validate()


def random_images(count, size, *, seed=0):
    """``(count, size)`` uint8 pixels, uniform over 0..255."""
    return np.random.default_rng(seed).integers(0, 256, size=(count, size), dtype=np.uint8)
