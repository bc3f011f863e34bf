"""Architecture strings: ``--arch`` text to :mod:`model.layers` descriptions, and the checks that
fit them to a data set.

:func:`parse_arch` is the inverse of :func:`model.layers.arch_string`: for every input shape and
layers that :func:`model.layers.layer_shapes` accepts, ``parse_arch(arch_string(shape, specs))``
gives back ``(shape, specs)`` (a one-channel map's shape as ``(H, W, 1)``). :func:`fit_arch` checks
a parsed architecture against a data set and against what training computes exactly in float32;
:func:`layer_fan_in` is the fan-in it (and the student network) counts. Errors are
:class:`model.errors.TrainingError` with a one-line reason. Nothing here trains or imports the
trainer: a command or bench that only reads an architecture imports this module alone.
"""

import re
from math import prod

from .errors import TrainingError
from .layers import Conv, Dense, MaxPool, arch_string, layer_shapes

# Largest |z| a float32 matmul of integer-valued operands reproduces exactly.
FLOAT32_EXACT = 1 << 24

ARCH_SYNTAX = ("layer sizes joined by '-', the input first, e.g. 784-256-256-10; cNkK is a convolution "
               "of N channels and K x K kernels and p a 2 x 2 max-pool, e.g. c32k3-p-c64k3-p-256-10")
_CONV = re.compile(r"c([0-9]+)k([0-9]+)")
_SHAPE = re.compile(r"([0-9]+)x([0-9]+)(?:x([0-9]+))?")


def _layer_spec(token):
    """The :mod:`model.layers` description of one ``--arch`` token, or None if it names no layer."""
    if token == "p":
        return MaxPool()
    if token.isascii() and token.isdigit():
        return Dense(int(token))
    conv = _CONV.fullmatch(token)
    return Conv(int(conv[1]), int(conv[2])) if conv else None


def parse_arch(text):
    """An ``--arch`` string to ``(input_shape, specs)``: the input's shape and the layers'
    :mod:`model.layers` descriptions.

    Tokens joined by ``-``: ``N`` a fully connected layer of ``N`` neurons, ``cNkK`` a convolution
    of ``N`` output channels with ``K`` x ``K`` kernels, ``p`` a 2 x 2 max-pool. The first token is
    the input: ``N`` values (``"784-256-10"``, ``input_shape`` ``(784,)``) or an image ``HxW`` or
    ``HxWxC`` (``(H, W, 1)`` or ``(H, W, C)``); before a convolution it may be left out
    (``"c32k3-p-256-10"``, ``input_shape`` None: the data set's image). Raises
    :class:`TrainingError` on anything else; whether the layers fit each other and a data set is
    :func:`fit_arch`'s check.
    """
    tokens = str(text).split("-")
    shape = _SHAPE.fullmatch(tokens[0])
    if shape:
        input_shape = (int(shape[1]), int(shape[2]), int(shape[3] or 1))
    elif isinstance(_layer_spec(tokens[0]), Dense):
        input_shape = (int(tokens[0]),)
    else:
        input_shape, tokens = None, [""] + tokens
    specs = tuple(_layer_spec(token) for token in tokens[1:])
    if not specs or None in specs:
        raise TrainingError(f"--arch {text!r}: expected {ARCH_SYNTAX}")
    if min(input_shape or (1,)) < 1 or min((s.units for s in specs if isinstance(s, Dense)), default=1) < 1:
        raise TrainingError(f"--arch {text!r}: every layer needs at least one neuron")
    if isinstance(specs[-1], Dense) and specs[-1].units < 2:
        raise TrainingError(f"--arch {text!r}: the output layer needs at least 2 classes")
    return input_shape, specs


def arch_name(arch):
    """Layer sizes (input first) of a fully connected network as text: ``(64, 256, 10)`` to ``"64-256-10"``."""
    return "-".join(str(n) for n in arch)


def fit_arch(text, dataset, input_bits):
    """``(input_shape, specs)`` of the ``--arch`` string ``text`` for ``dataset`` (see :func:`parse_arch`).

    ``input_shape`` is the data set's image as a map ``(H, W, C)`` before a convolution and its
    pixel count ``(n,)`` before a fully connected layer. Raises :class:`TrainingError` with a
    one-line reason if the input does not match the data set's images, the layers do not fit each
    other (:func:`model.layers.layer_shapes`), the output layer does not have one neuron per class,
    or a pre-activation could be too wide to train exactly in float32.
    """
    input_shape, specs = parse_arch(text)
    image = tuple(dataset.shape) if len(dataset.shape) == 3 else (*dataset.shape, 1)
    if isinstance(specs[0], Dense):
        if prod(input_shape) != dataset.input_size:
            raise TrainingError(f"--arch {text}: starts with {prod(input_shape)} inputs but {dataset.name} "
                                f"images have {dataset.input_size} pixels")
        input_shape = (dataset.input_size,)
    elif input_shape is None:
        input_shape = image
    elif len(input_shape) == 3 and input_shape != image:   # a vector before a convolution: layer_shapes says so
        raise TrainingError(f"--arch {text}: reads {arch_string(input_shape, [])} images but {dataset.name} "
                            f"images are {arch_string(image, [])}")
    shapes = layer_shapes(input_shape, specs, error=lambda message: TrainingError(f"--arch {text}: {message}"))
    if specs[-1].units != dataset.classes:
        raise TrainingError(f"--arch {text}: ends with {specs[-1].units} outputs but {dataset.name} "
                            f"has {dataset.classes} classes")
    fan_ins = [layer_fan_in(spec, shape) for spec, shape in zip(specs, [input_shape, *shapes])
               if not isinstance(spec, MaxPool)]
    largest = max(n * (dataset.max_value if (k == 0 and input_bits == 8) else 1) for k, n in enumerate(fan_ins))
    if largest >= FLOAT32_EXACT:
        raise TrainingError(f"--arch {text}: pre-activations up to {largest} are too wide "
                            f"to train exactly (limit {FLOAT32_EXACT - 1})")
    return input_shape, specs


def layer_fan_in(spec, in_shape):
    """Inputs of one output of a layer with weights: its window (a convolution) or its whole input."""
    return spec.kernel * spec.kernel * in_shape[2] if isinstance(spec, Conv) else prod(in_shape)
