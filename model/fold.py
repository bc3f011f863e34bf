"""Folding: a trained :class:`model.train.BinaryNetwork` in evaluation mode to a :class:`BinaryModel`.

Each hidden neuron's batch norm and sign become one integer threshold on its integer
pre-activation ``y`` (see :mod:`model.modelfile`): the neuron fires iff ``y >= t``.

* ``gamma > 0``: the neuron fires iff ``y >= c`` with ``c = s * (mean - beta * sqrt(var + eps) / gamma)``
  in real numbers; as ``y`` is an integer that is ``y >= ceil(c)``.
* ``gamma < 0``: the comparison turns into ``y <= c``; negating the neuron's weight row negates
  ``y``, so the stored comparison is again ``>=``. The neuron's output, and hence the next layer,
  is unchanged.
* ``gamma == 0``: the neuron is constant and gets an extreme threshold: ``-bound`` (always on) or
  ``bound + 1`` (always off), ``bound`` being :meth:`BinaryModel.preactivation_bound`.

Rather than trusting ``ceil(c)`` (float rounding can put it one off when ``c`` is close to an
integer), each threshold is found by bisection over the integers in ``[-bound, bound + 1]`` on
:func:`model.train.hidden_fires`, the very comparison the float network makes in evaluation mode.
That comparison is monotone in ``y``, so the folded model agrees with the float network on every
possible input, not only on the test images.

The output layer ``logits = alpha * y`` with ``alpha > 0`` has the argmax of ``y``, so it keeps
its weights and gets no thresholds.
"""

import numpy as np

from .bits import pack_signs
from .modelfile import BinaryLayer, BinaryModel, InputEncoding
from .train import binary_weights, hidden_fires


def _smallest_firing(fires, count, bound):
    """Per neuron, the smallest integer ``t`` in ``[-bound, bound]`` with ``fires(t)`` true, or
    ``bound + 1`` if there is none.

    ``fires`` maps an int64 vector (one value per neuron, ``count`` neurons) to bools and must be
    non-decreasing in each neuron's value.
    """
    low = np.full(count, -bound, np.int64)
    high = np.full(count, bound + 1, np.int64)
    while np.any(low < high):
        middle = (low + high) // 2
        on = fires(middle)
        high = np.where(on & (low < high), middle, high)
        low = np.where(~on & (low < high), middle + 1, low)
    return low


def fold_hidden_layer(net, k, bound):
    """``(row_signs, thresholds)`` of hidden layer ``k``: +1/-1 per neuron (-1 where the weight row
    is negated because ``gamma < 0``) and the int32 thresholds on the stored row's ``y``."""
    gamma = net.params[f"gamma{k}"]
    row_signs = np.where(gamma < 0, -1, 1).astype(np.int64)
    args = (net.layer_scale(k), net.stats[f"mean{k}"], net.stats[f"var{k}"], gamma, net.params[f"beta{k}"])
    thresholds = _smallest_firing(lambda y: hidden_fires(row_signs * y, *args), len(gamma), bound)
    return row_signs, thresholds.astype(np.int32)


def fold(net, shape):
    """The integer :class:`BinaryModel` equivalent to ``net`` in evaluation mode, without metadata.

    ``shape`` is the image shape recorded in the model's input encoding.
    """
    encoding = InputEncoding(net.input_bits, net.arch[0], tuple(shape),
                             net.input_threshold if net.input_bits == 1 else None)
    sizes = list(zip(net.arch[:-1], net.arch[1:]))
    # Only fan-ins and the input encoding matter for the pre-activation bounds.
    skeleton = BinaryModel(encoding, tuple(BinaryLayer(fan_in, fan_out, None, None) for fan_in, fan_out in sizes))
    layers = []
    for k, (fan_in, fan_out) in enumerate(sizes):
        signs = binary_weights(net.params[f"w{k}"])
        thresholds = None
        if k < net.hidden_layers:
            row_signs, thresholds = fold_hidden_layer(net, k, skeleton.preactivation_bound(k))
            signs = signs * row_signs[:, None]
        layers.append(BinaryLayer(fan_in, fan_out, pack_signs(signs), thresholds))
    return BinaryModel(encoding, tuple(layers)).validate()
