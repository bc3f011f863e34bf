"""Folding: a trained :class:`model.student.BinaryNetwork` in evaluation mode to a :class:`BinaryModel`.

Each hidden output's batch norm and sign become one integer threshold on its integer
pre-activation ``y`` (see :mod:`model.modelfile`): the output fires iff ``y >= t``. An output is a
neuron of a fully connected layer or a channel of a convolution (one threshold for all of its
pixels, as batch norm has one scale and shift per channel).

* ``gamma > 0``: the output fires iff ``y >= c`` with ``c = s * (mean - beta * sqrt(var + eps) / gamma)``
  in real numbers; as ``y`` is an integer that is ``y >= ceil(c)``.
* ``gamma < 0``: the comparison turns into ``y <= c``; negating the output's weight row (a
  neuron's weights, a channel's kernel) negates ``y``, so the stored comparison is again ``>=``.
  The output, and hence the next layer, is unchanged.
* ``gamma == 0``: the output is constant and gets an extreme threshold: ``-bound`` (always on) or
  ``bound + 1`` (always off), ``bound`` being :meth:`BinaryModel.preactivation_bound`.

The thresholds are :func:`model.student.firing_thresholds`, found by bisection over the integers on
:func:`model.ops.hidden_fires`, the comparison that defines the float network's evaluation mode;
that comparison is monotone in ``y``, so the folded model agrees with the float network on every
possible input, not only on the test images. Max-pools and the order of every value (windows,
maps flattened channels innermost) carry over unchanged.

The output layer ``logits = alpha * y`` with ``alpha > 0`` has the argmax of ``y``, so it keeps
its weights and gets no thresholds.
"""

from math import prod

from .bits import pack_signs
from .layers import Conv, MaxPool
from .modelfile import BinaryLayer, BinaryModel, ConvLayer, InputEncoding, MaxPoolLayer
from .ops import binary_weights
from .student import firing_thresholds


def fold(net, shape):
    """The integer :class:`BinaryModel` equivalent to ``net`` in evaluation mode, without metadata.

    ``shape`` is the image shape recorded in the model's input encoding: before a convolution it
    must be ``net.input_shape`` (``(H, W)`` for one channel, or ``(H, W, C)``); before a fully
    connected layer any shape of ``net.input_shape[0]`` pixels.
    """
    encoding = InputEncoding(net.input_bits, prod(net.input_shape), tuple(shape),
                             net.input_threshold if net.input_bits == 1 else None)
    layers = []
    for k, spec in enumerate(net.specs):
        in_shape = net.shapes[k]
        if isinstance(spec, MaxPool):
            layers.append(MaxPoolLayer(in_shape))
            continue
        signs = binary_weights(net.params[f"w{k}"])
        thresholds = None
        if k != net.output:
            row_signs, thresholds = firing_thresholds(net, k)
            signs = signs * row_signs[:, None]
        if isinstance(spec, Conv):
            layers.append(ConvLayer(in_shape, spec.kernel, spec.channels, pack_signs(signs), thresholds))
        else:
            layers.append(BinaryLayer(prod(in_shape), spec.units, pack_signs(signs), thresholds))
    return BinaryModel(encoding, tuple(layers)).validate()
