"""Random (seeded) binary networks and images, for tests and benchmarks."""

from dataclasses import replace
from math import prod

import numpy as np

from model.bits import pack_bits
from model.golden import layer_preactivations, max_pool
from model.layers import Conv, Dense, MaxPool, layer_shapes
from model.modelfile import BinaryLayer, BinaryModel, ConvLayer, InputEncoding, MaxPoolLayer


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


def random_conv_model(input_shape, specs, *, input_bits=8, seed=0, extreme_thresholds=0.0, input_threshold=128,
                      calibration_images=32):
    """A valid model of the architecture ``specs`` (:mod:`model.layers`) over images of
    ``input_shape`` (``(H, W)`` or ``(H, W, C)`` before a convolution, ``(n,)`` before a fully
    connected layer), with random weights and thresholds.

    Each hidden threshold is the pre-activation of its output (neuron or channel) at a random
    position of one of ``calibration_images`` random images, plus 0 or 1, so that outputs
    usually fire for some inputs and not for others; a fraction ``extreme_thresholds`` of them is set to
    the ends of the allowed range (``-bound``: always fires, ``bound + 1``: never fires).
    Raises :class:`ModelFileError` for an architecture that does not fit ``input_shape``.
    """
    rng = np.random.default_rng(seed)
    input_shape = tuple(input_shape)
    encoding = InputEncoding(input_bits, prod(input_shape), input_shape, None if input_bits == 8 else input_threshold)
    feeding = (encoding.size,) if isinstance(specs[0], Dense) or encoding.map_shape is None else encoding.map_shape
    shapes = layer_shapes(feeding, specs)
    x = rng.integers(0, 256, (calibration_images, encoding.size), dtype=np.uint8)
    layers = []
    for k, (spec, in_shape) in enumerate(zip(specs, [feeding] + shapes)):
        if isinstance(spec, MaxPool):
            layers.append(MaxPoolLayer(in_shape))
            x = max_pool(layers[-1], x)
            continue
        if isinstance(spec, Conv):
            layer = ConvLayer(in_shape, spec.kernel, spec.channels, None, None)
        else:
            layer = BinaryLayer(prod(in_shape), spec.units, None, None)
        rows = layer.weights_shape[0]
        layer = replace(layer, weights=pack_bits(rng.integers(0, 2, size=(rows, layer.fan_in))))
        if k < len(specs) - 1:
            partial = BinaryModel(encoding, (*layers, layer))
            y = layer_preactivations(partial, k, x).reshape(-1, rows)   # a row per image and position
            values = y[rng.integers(0, len(y), rows), np.arange(rows)] + rng.integers(0, 2, rows)
            bound = partial.preactivation_bound(k)
            extreme = rng.random(rows) < extreme_thresholds
            values[extreme] = rng.choice([-bound, bound + 1], size=int(extreme.sum()))
            layer = replace(layer, thresholds=values.astype(np.int32))
            x = pack_bits((y >= layer.thresholds).reshape(len(x), -1))
        layers.append(layer)
    return BinaryModel(encoding, tuple(layers)).validate()


def random_images(count, size, *, seed=0):
    """``(count, size)`` uint8 pixels, uniform over 0..255."""
    return np.random.default_rng(seed).integers(0, 256, size=(count, size), dtype=np.uint8)
