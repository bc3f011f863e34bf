"""Random binary models with awkward shapes, and a plain {-1,+1} matrix-multiply reference."""

import numpy as np

from model.bits import pack_bits, unpack_signs
from model.modelfile import BinaryLayer, BinaryModel, InputEncoding


def random_model(rng, sizes, input_bits=8, input_threshold=128, extreme_thresholds=False):
    """A random valid model with layer sizes ``sizes`` (input first).

    Thresholds are drawn near the middle of each neuron's reachable range so that both outcomes
    occur; with ``extreme_thresholds`` some neurons get the always-on / always-off extremes.
    """
    enc = InputEncoding(input_bits, sizes[0], (sizes[0],), input_threshold if input_bits == 1 else None)
    layers = []
    for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights = pack_bits(rng.integers(0, 2, (fan_out, fan_in)))
        thresholds = None
        if k < len(sizes) - 2:
            x_max = enc.max_value if k == 0 else 1
            spread = max(1, int(np.sqrt(fan_in)) * x_max)
            centre = fan_in * x_max // 2 if (k == 0 and input_bits == 8) else 0
            thresholds = rng.integers(-spread, spread + 1, fan_out) + centre * rng.integers(-1, 2, fan_out)
            bound = fan_in * x_max
            if extreme_thresholds:
                pick = rng.integers(0, 4, fan_out)
                thresholds = np.where(pick == 0, -bound, np.where(pick == 1, bound + 1, thresholds))
            thresholds = np.clip(thresholds, -bound, bound + 1).astype(np.int32)
        layers.append(BinaryLayer(fan_in, fan_out, weights, thresholds))
    return BinaryModel(enc, tuple(layers)).validate()


def reference_infer(model, images):
    """Plain integer matrix products over {-1,+1}: returns ``(hidden, scores)``.

    ``hidden[k]`` is the -1/+1 output of hidden layer ``k``; ``scores`` are int64.
    """
    if model.input.bits == 8:
        x = images.astype(np.int64)
    else:
        x = np.where(images >= model.input.threshold, 1, -1).astype(np.int64)
    hidden = []
    for layer in model.layers:
        y = x @ unpack_signs(layer.weights, layer.fan_in).astype(np.int64).T
        if layer.thresholds is None:
            return hidden, y
        x = np.where(y >= layer.thresholds, 1, -1).astype(np.int64)
        hidden.append(x)
    raise AssertionError("model without an output layer")
