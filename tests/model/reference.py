"""A plain {-1,+1} matrix-multiply reference of the model semantics, for cross-checking the golden model."""

import numpy as np

from model.bits import unpack_signs


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
