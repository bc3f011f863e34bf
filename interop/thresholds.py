"""Thresholds read off qonnx's own arithmetic: an activation's two levels, and the smallest integer
pre-activation that it binarizes to the higher one.

The nodes from a layer's ``MatMul``/``Conv`` to its activation act per output and each is monotone
(in float32 too: rounding is monotone), so each output's activation is a monotone function of the
integer pre-activation ``y``; :func:`smallest_firing` finds where it switches by bisection, with
``fires`` running the nodes with qonnx on exact values of ``y``. A pre-activation exactly at the
switch fires as qonnx makes it fire (``BipolarQuant`` maps 0 to +1, ``MultiThreshold`` fires at
equality): the engine's ``y >= t``.
"""

import numpy as np

from .graph import refuse, run_nodes

_BIG = np.float32(1e30)   # beyond every threshold, still finite after a scale


def activation_levels(node, constants, channel_shape, opsets):
    """``(low, high)``: the output of the activation ``node`` far below and far above every threshold,
    the same for every channel (one value per channel of ``channel_shape``); refuses otherwise."""
    extremes = np.stack([np.full(channel_shape, -_BIG), np.full(channel_shape, _BIG)])
    low, high = run_nodes([node], constants, node.input[0], extremes, node.output[0], opsets)
    if not (np.all(low == low.flat[0]) and np.all(high == high.flat[0])) or not low.flat[0] < high.flat[0]:
        raise refuse(node, "its two output levels differ between channels")
    return float(low.flat[0]), float(high.flat[0])


def smallest_firing(fires, outputs, bound, node):
    """``(flips, thresholds)`` for ``outputs`` outputs whose pre-activations lie in ``[-bound, bound]``.

    ``fires(y)`` takes integer pre-activations ``(rows, outputs)`` and returns booleans of the same
    shape: where each output is at its higher level. An output that fires for ``-bound`` but not for
    ``bound`` decreases: its flip is -1 (its weight row is to be negated) and it is searched on
    ``-y``. The threshold is the smallest ``t`` in ``[-bound, bound + 1]`` with ``fires(flip * t)``
    (``bound + 1``: never), checked at ``t - 1`` and ``t``; refuses ``node`` if that check fails (an
    activation that is not monotone).
    """
    ends = fires(np.array([[-bound] * outputs, [bound] * outputs]))
    flips = np.where(ends[0] & ~ends[1], -1, 1)
    low, high = np.full(outputs, -bound), np.full(outputs, bound + 1)
    while np.any(low < high):
        middle = (low + high) // 2
        up = fires((flips * middle)[None])[0]
        searching = low < high   # a found threshold stays put, whatever fires says at it
        low, high = np.where(searching & ~up, middle + 1, low), np.where(searching & up, middle, high)
    below, at = fires(np.stack([flips * np.maximum(low - 1, -bound), flips * np.minimum(low, bound)]))
    if np.any(below & (low > -bound)) or np.any(~at & (low <= bound)):
        raise refuse(node, "its output is not monotone in the pre-activation")
    return flips, low.astype(np.int32)
