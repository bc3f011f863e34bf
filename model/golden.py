"""The golden model: bit-exact integer inference on packed bits, vectorised over a batch.

Everything the hardware produces is compared with :func:`infer`. It works the way the hardware
does, on packed bits (:mod:`model.bits`), and follows the semantics in :mod:`model.modelfile`:

* {-1,+1} inputs: ``y = n - 2 * popcount(x XOR w)`` (the XNOR-popcount ``p`` gives ``y = 2p - n``);
* 8-bit inputs, bit-serially over the planes ``b = 0..7`` of the pixels:
  ``y = sum_b 2**b * (popcount(plane_b AND w) - popcount(plane_b AND NOT w))``.

Pad bits are 0 in both operands, so they add nothing to either formula.
"""

from dataclasses import dataclass

import numpy as np

from .bits import pack_bits

# Keep the (batch, neurons, words) temporaries near this many bytes.
_CHUNK_BYTES = 32 << 20


@dataclass
class Inference:
    """Result of :func:`infer` on a batch of ``B`` images.

    ``activations[k]`` is ``(B, ceil(fan_out/8))`` uint8, the packed output bits of hidden layer
    ``k`` (the input of layer ``k + 1``); ``scores`` is ``(B, classes)`` int64; ``classes`` is
    ``(B,)``, the argmax of the scores with ties to the lowest index.
    """

    activations: list
    scores: np.ndarray
    classes: np.ndarray


def _as_words(packed):
    """View packed rows as little-endian uint64 words (zero-extended), preserving the bit order."""
    rows, nbytes = packed.shape
    words = -(-nbytes // 8)
    out = np.zeros((rows, words * 8), dtype=np.uint8)
    out[:, :nbytes] = packed
    return out.view("<u8")


def _popcount_pairs(x_words, w_words, op):
    """``out[b, j] = sum over words of popcount(op(x[b], w[j]))``, computed in bounded chunks."""
    batch, nwords = x_words.shape
    neurons = w_words.shape[0]
    out = np.empty((batch, neurons), dtype=np.int64)
    step = max(1, _CHUNK_BYTES // max(1, neurons * nwords * 8))
    for start in range(0, batch, step):
        x = x_words[start:start + step, None, :]
        out[start:start + step] = np.bitwise_count(op(x, w_words[None, :, :])).sum(axis=2, dtype=np.int64)
    return out


def _mask_words(n):
    """Words with ones at the ``n`` valid bit positions (to complement weights without pad bits)."""
    return _as_words(pack_bits(np.ones((1, n), dtype=np.uint8)))[0]


def layer_preactivations(model, index, inputs):
    """Integer pre-activations ``y`` (``(B, fan_out)`` int64) of layer ``index``.

    ``inputs`` are the raw pixels (``(B, size)`` uint8) for layer 0 and the packed activations of
    the previous layer otherwise.
    """
    layer = model.layers[index]
    w = _as_words(layer.weights)
    if index == 0 and model.input.bits == 8:
        not_w = ~w & _mask_words(layer.fan_in)
        y = np.zeros((inputs.shape[0], layer.fan_out), dtype=np.int64)
        for plane in range(8):
            p = _as_words(pack_bits((inputs >> plane) & 1))
            y += (_popcount_pairs(p, w, np.bitwise_and) - _popcount_pairs(p, not_w, np.bitwise_and)) << plane
        return y
    if index == 0:
        inputs = pack_bits(inputs >= model.input.threshold)
    return layer.fan_in - 2 * _popcount_pairs(_as_words(inputs), w, np.bitwise_xor)


def infer(model, images):
    """Run ``images`` (``(B, input.size)`` uint8) through ``model``; see :class:`Inference`."""
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != model.input.size:
        raise ValueError(f"images must have shape (B, {model.input.size}), not {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, not {images.dtype}")
    x, activations = images, []
    for k, layer in enumerate(model.layers):
        y = layer_preactivations(model, k, x)
        if layer.thresholds is None:
            return Inference(activations, y, np.argmax(y, axis=1))
        x = pack_bits(y >= layer.thresholds[None, :])
        activations.append(x)
    raise AssertionError("the last layer has thresholds")  # validate() excludes this

