"""The golden model: bit-exact integer inference, vectorised over a batch.

Everything the hardware produces is compared with :func:`infer`. It follows the semantics in
:mod:`model.modelfile`: a layer with weights takes dot products of rows of its input values with
its weight rows, in integers only:

* {-1,+1} inputs, on packed bits (:mod:`model.bits`): ``y = n - 2 * popcount(x XOR w)`` (the
  XNOR-popcount ``p`` gives ``y = 2p - n``); pad bits are 0 in both operands, so they add nothing;
* 8-bit pixels: ``y = sum_i x_i * w_i``.

Sums are taken in the narrowest of int16, int32 and int64 that holds the largest ``|y|`` (``n``,
or ``255 * n`` for pixels), so no partial sum can overflow; scores are returned as int64.

A fully connected layer has one row per image: its whole input. A convolution has one row per
image and output pixel: the ``kernel x kernel x C_in`` window under that pixel, in the
``(ky, kx, c)`` order of its weights ("im2col"). A 2 x 2 max-pool ORs the bits of each window.
"""

from dataclasses import dataclass
from math import prod

import numpy as np

from .bits import pack_bits, unpack_bits, unpack_signs
from .layers import windows
from .modelfile import ConvLayer, MaxPoolLayer

# Images go through the network in chunks whose largest temporaries take about this many bytes.
_CHUNK_BYTES = 32 << 20


@dataclass
class Inference:
    """Result of :func:`infer` on a batch of ``B`` images.

    ``activations[k]`` is ``(B, ceil(n/8))`` uint8, the packed output bits of layer ``k`` (the
    input of layer ``k + 1``) for every layer but the last, ``n`` being the number of its outputs
    (``prod(out_shape)``: a fully connected layer's ``fan_out``; a convolution's or max-pool's
    map, flattened channels innermost, :mod:`model.layers`). ``scores`` is ``(B, classes)`` int64;
    ``classes`` is ``(B,)``, the argmax of the scores with ties to the lowest index.
    """

    activations: list
    scores: np.ndarray
    classes: np.ndarray


def _as_words(packed):
    """View packed rows as little-endian words (zero-extended), preserving the bit order.

    A row of up to 8 bytes becomes one word of the narrowest of 8, 16, 32 and 64 bits that holds
    it (less memory to stream through when rows are short); a longer row, 64-bit words.
    """
    rows, nbytes = packed.shape
    size = min(8, 1 << max(0, nbytes - 1).bit_length())
    out = np.zeros((rows, -(-nbytes // size) * size), dtype=np.uint8)
    out[:, :nbytes] = packed
    return out.view(f"<u{size}")


def _int_type(bound):
    """The narrowest of int16, int32 and int64 that holds every integer in ``[-bound, bound]``."""
    return next(t for t in (np.int16, np.int32, np.int64) if bound <= np.iinfo(t).max)


def _xnor_preactivations(rows, weights, fan_in, dtype):
    """``y[r, j] = fan_in - 2 * popcount(rows[r] XOR weights[j])``: ``(R, J)`` of ``dtype`` (which
    holds ``fan_in``) from packed rows of {-1,+1} values and packed weight rows, both
    ``ceil(fan_in/8)`` bytes wide."""
    x, w = _as_words(rows), _as_words(weights)
    y = np.full((len(x), len(w)), fan_in, dtype=dtype)
    for word in range(x.shape[1]):   # y stays in [-fan_in, fan_in] throughout
        y -= 2 * np.bitwise_count(x[:, word, None] ^ w[None, :, word])
    return y


def _pixel_preactivations(pixels, weights, fan_in, dtype):
    """``y[r, j] = sum_i pixels[r, i] * w[j, i]``: ``(R, J)`` of ``dtype`` (which holds
    ``255 * fan_in``, so no partial sum overflows) from ``(R, fan_in)`` 0..255 pixel values and
    packed weight rows."""
    signs = unpack_signs(weights, fan_in).T.astype(dtype, order="C")
    return np.einsum("ri,ij->rj", pixels.astype(dtype), signs)


def _layer_input(model, index, inputs):
    """Layer ``index``'s input, one row of values per image: 0..255 pixels before an 8-bit first
    layer, else bits 0/1 (1 for +1)."""
    if index > 0:
        return unpack_bits(inputs, prod(model.layers[index - 1].out_shape))
    if model.input.bits == 1:
        return (inputs >= model.input.threshold).astype(np.uint8)
    return inputs


def layer_preactivations(model, index, inputs):
    """Integer pre-activations ``y`` of layer ``index``, a layer with weights.

    ``inputs`` are the raw pixels (``(B, size)`` uint8) for layer 0 and the packed activations of
    the previous layer otherwise. Returns ``(B, *out_shape)``: ``(B, fan_out)`` for a fully
    connected layer, ``(B, H', W', out_channels)`` for a convolution, in the narrowest of int16,
    int32 and int64 that holds every pre-activation and every threshold of the layer
    (``[-bound, bound + 1]``, :meth:`BinaryModel.preactivation_bound`).
    """
    layer = model.layers[index]
    dtype = _int_type(model.preactivation_bound(index) + 1)
    x = _layer_input(model, index, inputs)
    if isinstance(layer, ConvLayer):
        x = windows(x.reshape(len(x), *layer.in_shape), layer.kernel)
    if index == 0 and model.input.bits == 8:
        y = _pixel_preactivations(x, layer.weights, layer.fan_in, dtype)
    else:
        y = _xnor_preactivations(pack_bits(x), layer.weights, layer.fan_in, dtype)
    return y.reshape(len(inputs), *layer.out_shape)


def max_pool(layer, inputs):
    """A :class:`MaxPoolLayer` on packed activations ``(B, ceil(H*W*C/8))``: +1 (bit 1) where any
    of a 2 x 2 window is +1, the odd last row or column dropped; returns the packed output."""
    height, width, channels = layer.in_shape
    out_h, out_w, _ = layer.out_shape
    bits = unpack_bits(inputs, height * width * channels).reshape(len(inputs), height, width, channels)
    bits = bits[:, :2 * out_h, :2 * out_w]
    pooled = bits[:, 0::2, 0::2] | bits[:, 0::2, 1::2] | bits[:, 1::2, 0::2] | bits[:, 1::2, 1::2]
    return pack_bits(pooled.reshape(len(inputs), prod(layer.out_shape)))


def _bytes_per_image(model):
    """About the most memory one image takes in a layer: its rows of inputs (up to 8 bytes per
    value) and, per output, its pre-activation and the XOR temporaries (16 bytes)."""
    return max(prod(layer.out_shape[:-1]) * (8 * layer.fan_in + 16 * layer.out_shape[-1])
               for layer in model.layers if not isinstance(layer, MaxPoolLayer))


def _infer_chunk(model, images):
    """``(activations, scores)`` of :func:`infer` for one chunk of images."""
    x, activations = images, []
    for k, layer in enumerate(model.layers):
        if isinstance(layer, MaxPoolLayer):
            x = max_pool(layer, x)
        else:
            y = layer_preactivations(model, k, x)
            if layer.thresholds is None:
                return activations, y.astype(np.int64)
            # the thresholds fit y's type (layer_preactivations), so the comparison stays in it
            x = pack_bits((y >= layer.thresholds.astype(y.dtype)).reshape(len(y), prod(layer.out_shape)))
        activations.append(x)
    raise AssertionError("the last layer has thresholds")  # validate() excludes this


def infer(model, images):
    """Run ``images`` (``(B, input.size)`` uint8, each flattened channels innermost) through
    ``model``; see :class:`Inference`."""
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != model.input.size:
        raise ValueError(f"images must have shape (B, {model.input.size}), not {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, not {images.dtype}")
    step = max(1, _CHUNK_BYTES // _bytes_per_image(model))
    chunks = [_infer_chunk(model, images[start:start + step]) for start in range(0, max(1, len(images)), step)]
    activations = [np.concatenate(layer_bits) for layer_bits in zip(*(bits for bits, _ in chunks))]
    scores = np.concatenate([scores for _, scores in chunks])
    return Inference(activations, scores, np.argmax(scores, axis=1))
