"""Layer descriptions: a network's architecture without its weights, and the rules its shapes follow.

The command line's ``--arch`` parser, training, the model file and the random models all describe
layers with these types, and check shapes with :func:`layer_shapes`, the one definition of them.

Shapes
------
A feature map is a tuple ``(height, width, channels)``, stored and flattened with channels
innermost: value ``(y, x, c)`` is element ``(y * width + x) * channels + c``. A vector (the output
of a fully connected layer) is a tuple ``(n,)``. The image a network reads is a map (a
single-channel image has 1 channel) when its first layer is a convolution, a vector otherwise.

Layers, in the order a network may hold them (convolutions and max-pools first, then fully
connected layers; the last layer, the output layer, is fully connected):

* :class:`Conv`: binary 2-D convolution, ``kernel`` x ``kernel``, stride 1, no padding ("valid"):
  a ``(H, W, C)`` map becomes ``(H - kernel + 1, W - kernel + 1, channels)``.
* :class:`MaxPool`: 2 x 2 max-pool, stride 2, directly after a convolution; an odd last row or
  column is dropped: ``(H, W, C)`` becomes ``(H // 2, W // 2, C)``.
* :class:`Dense`: fully connected, ``units`` outputs; a map before it is flattened (order above).
"""

from dataclasses import dataclass

import numpy as np

from .errors import ModelFileError


@dataclass(frozen=True)
class Conv:
    """Binary 2-D convolution with ``channels`` output channels and a ``kernel`` x ``kernel`` window."""

    channels: int
    kernel: int

    def __str__(self):
        return f"c{self.channels}k{self.kernel}"


@dataclass(frozen=True)
class MaxPool:
    """2 x 2 max-pool with stride 2 (an odd last row or column is dropped)."""

    def __str__(self):
        return "p"


@dataclass(frozen=True)
class Dense:
    """Fully connected layer with ``units`` outputs."""

    units: int

    def __str__(self):
        return str(self.units)


def arch_string(input_shape, specs):
    """The architecture as text: the input, then each layer's ``str``, joined by ``-``.

    The input is its size for a vector and ``HxW`` or ``HxWxC`` (channels shown when not 1) for a
    map: ``"64-256-10"``, ``"28x28-c32k3-p-c64k3-p-256-10"``. Its inverse is :func:`model.arch.parse_arch`.
    """
    if len(input_shape) == 1:
        first = str(input_shape[0])
    else:
        first = "x".join(str(n) for n in (input_shape if input_shape[2] != 1 else input_shape[:2]))
    return "-".join([first] + [str(spec) for spec in specs])


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def layer_shapes(input_shape, specs, error=ModelFileError):
    """The output shape of each layer of ``specs`` applied to an input of ``input_shape``.

    ``input_shape`` is ``(H, W, C)`` when ``specs`` starts with a convolution, ``(n,)`` otherwise.
    Returns one tuple per layer (see the module's documentation). Raises ``error`` (the model file's
    :class:`ModelFileError` by default; the command line passes its own) with a one-line message
    naming the layer and quoting the bad values, for: a size that is not a positive integer, a
    convolution or max-pool after a fully connected layer, a max-pool not directly after a
    convolution, a kernel larger than its map, a max-pool of a map less than 2 pixels high or
    wide, an input that is not a map before a convolution, no layers, or a last layer that is not
    fully connected.
    """
    if not specs:
        raise error("a model needs at least one layer")
    shape, shapes = tuple(input_shape), []
    for k, spec in enumerate(specs):
        where = f"layer {k} ({spec})"
        if isinstance(spec, Dense):
            if not _is_count(spec.units):
                raise error(f"layer {k}: fan-out must be at least 1, not {spec.units}")
            shape = (spec.units,)
        elif not isinstance(spec, (Conv, MaxPool)):
            raise error(f"layer {k}: unknown kind of layer {spec!r}")
        elif len(shape) != 3:
            what = "the input" if k == 0 else "a fully connected layer"
            raise error(f"{where}: needs a feature map, but {what} gives a vector of {shape[0]} values")
        elif isinstance(spec, Conv):
            if not (_is_count(spec.channels) and _is_count(spec.kernel)):
                raise error(f"{where}: channels and kernel must be positive integers")
            height, width, _ = shape
            if spec.kernel > min(height, width):
                raise error(f"{where}: kernel {spec.kernel} x {spec.kernel} is larger than "
                            f"the {height} x {width} map feeding it")
            shape = (height - spec.kernel + 1, width - spec.kernel + 1, spec.channels)
        else:   # MaxPool
            if k == 0 or not isinstance(specs[k - 1], Conv):
                raise error(f"{where}: a 2 x 2 max-pool must follow a convolution")
            height, width, channels = shape
            if min(height, width) < 2:
                raise error(f"{where}: a 2 x 2 max-pool needs a map of at least 2 x 2, not {height} x {width}")
            shape = (height // 2, width // 2, channels)
        shapes.append(shape)
    if not isinstance(specs[-1], Dense):
        raise error(f"the last layer ({specs[-1]}) must be fully connected: it gives the class scores")
    return shapes


def windows(maps, kernel):
    """The ``kernel`` x ``kernel`` windows of ``(B, H, W, C)`` maps at every valid position ("im2col").

    Returns ``(B * H' * W', kernel * kernel * C)``, ``H' = H - kernel + 1`` and ``W' = W - kernel + 1``:
    one row per image, output row and output column (in that order), each the window whose
    top-left corner is at that position, in ``(ky, kx, c)`` order (``c`` innermost): the order of a
    convolution's weights. A copy, of ``maps``' dtype.
    """
    view = np.lib.stride_tricks.sliding_window_view(maps, (kernel, kernel), axis=(1, 2))
    # view is (B, H', W', C, ky, kx): put c innermost
    return view.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kernel * kernel * maps.shape[3])


def windows_adjoint(rows, shape, kernel):
    """The adjoint of :func:`windows` ("col2im"): ``(B, H, W, C)`` maps of ``shape`` in which every
    value is the sum of the entries of ``rows`` that :func:`windows` would have read from it.

    ``rows`` is ``(B * H' * W', kernel * kernel * C)`` as :func:`windows` returns; the sums are
    taken in a fixed order (kernel position by kernel position), in ``rows``' dtype.
    """
    batch, height, width, channels = shape
    out_h, out_w = height - kernel + 1, width - kernel + 1
    parts = rows.reshape(batch, out_h, out_w, kernel, kernel, channels)
    maps = np.zeros(shape, rows.dtype)
    for ky in range(kernel):
        for kx in range(kernel):
            maps[:, ky:ky + out_h, kx:kx + out_w] += parts[:, :, :, ky, kx]
    return maps


def pool_quarters(maps):
    """The 2 x 2, stride 2 windows of ``(B, H, W, C)`` maps as four strided views of ``maps``, each
    ``(B, H // 2, W // 2, C)``: the window values at row and column offsets ``(0, 0), (0, 1),
    (1, 0), (1, 1)``, in that order; an odd last row or column is in none of them. Writing to a
    view writes to ``maps``."""
    out_h, out_w = maps.shape[1] // 2, maps.shape[2] // 2
    return [maps[:, dy:2 * out_h:2, dx:2 * out_w:2] for dy in (0, 1) for dx in (0, 1)]
