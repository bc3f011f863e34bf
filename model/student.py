"""The student: the float binary network that training fits, its passes, and its evaluation mode.

The float network (the *student*) is built so that :mod:`model.fold` can turn it, in evaluation
mode, into the integer model of :mod:`model.modelfile` without changing a single prediction.

Student network
---------------
Layers are :mod:`model.layers` descriptions: convolutions and 2 x 2 max-pools, then fully
connected layers, with the shapes and the channels-innermost order defined there.

Input ``x``: for 8-bit input the raw pixel values as floats; for 1-bit input +1 where
``pixel >= threshold`` and -1 elsewhere; a map ``(H, W, C)`` before a convolution, a vector before a
fully connected layer.

Hidden layer ``k`` (a fully connected layer but the last, or a convolution): ``z = rows @
sign(W_k).T``, ``rows`` being the whole input (fully connected) or one ``kernel x kernel x C_in``
window per output pixel (a convolution, :func:`model.layers.windows`), is the integer
pre-activation of the model file (float32 holds it exactly because every partial sum stays below
2**24, see :func:`model.arch.fit_arch`); ``a = z / s_k`` with ``s_0`` the data set's ``max_value``
for 8-bit input and ``s_k = 1`` otherwise; ``h = gamma * (a - mean) / sqrt(var + BN_EPS) + beta``
(:data:`model.ops.BN_EPS`) per output (neuron, or channel over all pixels: batch statistics in
training; in evaluation the training set's statistics, recomputed after every epoch by
:func:`recalibrate_batchnorm`, see :func:`model.ops.hidden_fires`); the output is ``sign(h)`` with
sign(0) = +1.

Max-pool (directly after a convolution): the model file's pool is the OR of the +1 bits of each
2 x 2 window of the convolution's outputs, i.e. their maximum. As sign is non-decreasing, that is
``sign(max h)`` over the window, which is how training computes it: the gradient takes the sign's
surrogate derivative at the window's largest ``h`` and goes to that one position (the first of
equal largest values, in the order of :func:`model.layers.pool_quarters`), as in a float max-pool.

Output layer: ``logits = exp(log_alpha) * z``, one learned positive scale and no bias, so the
class (the argmax, ties to the lowest index) is the argmax of the integer ``z``.

Gradients: the activations' sign passes the gradient through a surrogate derivative, ``grad``
(:func:`model.ops.sign_gradient`). The weights' sign uses the plain straight-through estimator on
latent real weights, which :func:`clip_weights` clips to [-1, 1] after every optimiser step.

Evaluation mode: each hidden output is :func:`model.ops.hidden_fires` of its integer ``z``. That is monotone
in ``z``, so it equals one integer comparison per output, ``row_sign * z >= t``, whose
``(row_sign, t)`` :func:`firing_thresholds` finds by bisection over every integer ``z`` the
model file allows; evaluation computes the comparison (exact, and far cheaper than batch norm in
float64 on every pixel of a map), and :mod:`model.fold` stores it.

Contract: :func:`init_binary_network` draws from the ``rng`` it is given and from nothing else;
:func:`binary_loss_and_grads` is one training-mode pass (batch statistics) and changes nothing;
:func:`evaluate_binary` and :func:`recalibrate_batchnorm` give the same results for any thread pool
(or none). The optimiser and the loop that call them are :mod:`model.train`'s.
"""

import math
from dataclasses import dataclass, field
from functools import cached_property
from math import prod

import numpy as np

from .arch import layer_fan_in
from .bits import pack_bits
from .errors import TrainingError
from .layers import Conv, MaxPool, arch_string, layer_shapes, pool_quarters, windows, windows_adjoint
from .ops import (GRADS, batchnorm_backward, batchnorm_forward, binary_weights, classification_loss, hidden_fires,
                  max_pool_backward, max_pool_forward, plus_minus, sign_activation, sign_gradient)

# Evaluation takes images in chunks whose largest layer holds about this many values.
_CHUNK_VALUES = 1 << 23
# Recalibration keeps up to this many bytes of one layer's pre-activations between its two passes.
_KEPT_PREACTIVATION_BYTES = 1 << 31


@dataclass
class BinaryNetwork:
    """The trainable float binary network described in the module docstring.

    ``specs`` are the layers (:mod:`model.layers`), ``input_shape`` what the first one reads:
    ``(H, W, C)`` before a convolution, ``(n,)`` before a fully connected layer. ``params`` holds
    the trained arrays of layer ``k``: ``w{k}`` latent weights ``(rows, fan_in)`` float32 (a row
    per neuron or output channel; a convolution's in ``(ky, kx, c)`` order), ``gamma{k}``/``beta{k}``
    of hidden layers, and ``log_alpha`` (shape ``(1,)``) of the output layer. ``stats`` holds the
    ``mean{k}``/``var{k}`` (float64) used in evaluation mode. A max-pool has none of them.
    """

    input_shape: tuple
    specs: tuple
    input_bits: int
    input_scale: int
    input_threshold: int | None
    grad: str
    params: dict
    stats: dict = field(default_factory=dict)

    @cached_property
    def shapes(self):
        """``shapes[k]`` is layer ``k``'s input shape, ``shapes[k + 1]`` its output shape."""
        return [tuple(self.input_shape), *layer_shapes(self.input_shape, self.specs, error=TrainingError)]

    @property
    def arch(self):
        """The architecture as text (:func:`model.layers.arch_string`), as the folded model states it."""
        return arch_string(self.input_shape, self.specs)

    @property
    def hidden(self):
        """Indices of the hidden layers with weights (convolutions, fully connected layers but the last)."""
        return [k for k, spec in enumerate(self.specs[:-1]) if not isinstance(spec, MaxPool)]

    @property
    def output(self):
        """Index of the output layer."""
        return len(self.specs) - 1

    def fan_in(self, k):
        """Inputs of one output of layer ``k`` (a layer with weights): the length of its weight rows."""
        return layer_fan_in(self.specs[k], self.shapes[k])

    def layer_scale(self, k):
        """``s_k``: the float pre-activation of hidden layer ``k`` is ``z / s_k``."""
        return self.input_scale if k == 0 and self.input_bits == 8 else 1

    def preactivation_bound(self, k):
        """Largest ``|z|`` of layer ``k`` for any input the model file allows (8-bit pixels up to
        255), as :meth:`model.modelfile.BinaryModel.preactivation_bound` states it."""
        return self.fan_in(k) * (255 if k == 0 and self.input_bits == 8 else 1)

    def fires(self, k, z):
        """Evaluation mode of hidden layer ``k`` on integer pre-activations ``z`` (``(..., rows)``):
        :func:`hidden_fires` with the layer's statistics and parameters."""
        return hidden_fires(z, self.layer_scale(k), self.stats[f"mean{k}"], self.stats[f"var{k}"],
                            self.params[f"gamma{k}"], self.params[f"beta{k}"])

    def encode(self, pixels):
        """The first layer's float input ``(B, *input_shape)`` for raw ``pixels`` (see the module docstring)."""
        x = pixels.astype(np.float32) if self.input_bits == 8 else plus_minus(pixels >= self.input_threshold)
        return x.reshape(len(pixels), *self.input_shape)

    def rows(self, k, x):
        """Layer ``k``'s input ``x`` (``(B, *shapes[k])``) as rows of ``fan_in(k)`` values: one per
        image for a fully connected layer, one per image and output pixel for a convolution."""
        spec = self.specs[k]
        return windows(x, spec.kernel) if isinstance(spec, Conv) else x.reshape(len(x), -1)

    @property
    def images_per_chunk(self):
        """How many images evaluation takes at once (about :data:`_CHUNK_VALUES` values in the largest layer)."""
        largest = max(prod(self.shapes[k + 1][:-1]) * max(self.fan_in(k), self.shapes[k + 1][-1])
                      for k in [*self.hidden, self.output])
        return max(1, _CHUNK_VALUES // largest)


def init_binary_network(input_shape, specs, input_bits, max_value, grad, rng, input_threshold=None):
    """A fresh :class:`BinaryNetwork` of ``specs`` reading ``input_shape``, with Glorot-uniform latent
    weights (fan-out: the number of rows).

    ``input_threshold`` applies to 1-bit input and defaults to ``ceil(max_value / 2)``.
    """
    if grad not in GRADS:
        raise TrainingError(f"unknown gradient {grad!r} (choose from {', '.join(GRADS)})")
    if input_bits not in (1, 8):
        raise TrainingError(f"input bits must be 1 or 8, not {input_bits}")
    if input_bits == 8 and input_threshold is not None:
        raise TrainingError("an input threshold applies only to 1-bit input")
    if input_bits == 1:
        if input_threshold is None:
            input_threshold = -(-max_value // 2)
        # 0 makes every pixel +1, above the largest pixel every pixel -1: the input says nothing
        if not 1 <= input_threshold <= max_value:
            raise TrainingError(f"input threshold must lie in 1..{max_value} for this data set (pixels are "
                                f"0..{max_value}; another value makes every input the same), not {input_threshold}")
    net = BinaryNetwork(tuple(input_shape), tuple(specs), input_bits, max_value, input_threshold, grad, {}, {})
    for k in [*net.hidden, net.output]:
        fan_in, rows = net.fan_in(k), net.shapes[k + 1][-1]
        limit = math.sqrt(6 / (fan_in + rows))
        net.params[f"w{k}"] = rng.uniform(-limit, limit, (rows, fan_in)).astype(np.float32)
        if k != net.output:
            net.params[f"gamma{k}"] = np.ones(rows, np.float32)
            net.params[f"beta{k}"] = np.zeros(rows, np.float32)
            net.stats[f"mean{k}"] = np.zeros(rows)
            net.stats[f"var{k}"] = np.ones(rows)
    # Random +-1 dot products over fan_in inputs have a spread of about sqrt(fan_in).
    net.params["log_alpha"] = np.array([-0.5 * math.log(net.fan_in(net.output))], np.float32)
    return net


def binary_loss_and_grads(net, pixels, labels, teacher_logits=None, distillation=None):
    """One training-mode pass (batch statistics): ``(loss, logits, grads)``."""
    x = net.encode(pixels)
    caches = {}
    for k in net.hidden:
        rows, w_bin = net.rows(k, x), binary_weights(net.params[f"w{k}"])
        a = rows @ w_bin.T
        if net.layer_scale(k) != 1:   # x / 1 == x: no pass over a map for nothing
            a /= np.float32(net.layer_scale(k))
        h, _, _, bn_cache = batchnorm_forward(a, net.params[f"gamma{k}"], net.params[f"beta{k}"])
        h = h.reshape(len(x), *net.shapes[k + 1])
        pool = None   # (positions, shape before pooling) when a max-pool follows
        if isinstance(net.specs[k + 1], MaxPool):
            pooled, positions = max_pool_forward(h)
            h, pool = pooled, (positions, h.shape)
        caches[k] = (rows, w_bin, h, bn_cache, pool, x.shape)
        x = sign_activation(h)
    last = net.output
    rows, w_bin = net.rows(last, x), binary_weights(net.params[f"w{last}"])
    z = rows @ w_bin.T
    alpha = np.exp(net.params["log_alpha"])
    logits = alpha * z
    loss, dlogits = classification_loss(logits, labels, teacher_logits, distillation)

    grads = {"log_alpha": np.array([(dlogits * logits).sum()], np.float32)}
    dz = dlogits * alpha
    grads[f"w{last}"] = dz.T @ rows
    d_rows = dz @ w_bin
    for k in reversed(net.hidden):
        rows, w_bin, h, bn_cache, pool, x_shape = caches[k]
        dh = d_rows.reshape(h.shape) * sign_gradient(h, net.grad)
        if pool is not None:
            dh = max_pool_backward(dh, *pool)
        da, grads[f"gamma{k}"], grads[f"beta{k}"] = batchnorm_backward(dh.reshape(len(rows), -1), bn_cache)
        dz = da / np.float32(net.layer_scale(k)) if net.layer_scale(k) != 1 else da
        # Straight-through on the weights' sign: latent weights stay in [-1, 1] (clip_weights),
        # where the clipped estimator passes the gradient unchanged.
        grads[f"w{k}"] = dz.T @ rows
        if k:
            d_rows = dz @ w_bin
            if isinstance(net.specs[k], Conv):
                d_rows = windows_adjoint(d_rows, x_shape, net.specs[k].kernel)
    return loss, logits, grads


def clip_weights(net):
    """Clip the latent weights to [-1, 1] (after every optimiser step)."""
    for k in [*net.hidden, net.output]:
        np.clip(net.params[f"w{k}"], -1, 1, out=net.params[f"w{k}"])


def _smallest_firing(fires, count, bound):
    """Per output, the smallest integer ``t`` in ``[-bound, bound]`` with ``fires(t)`` true, or
    ``bound + 1`` if there is none.

    ``fires`` maps an int64 vector (one value per output, ``count`` outputs) to bools and must be
    non-decreasing in each output's value.
    """
    low = np.full(count, -bound, np.int64)
    high = np.full(count, bound + 1, np.int64)
    while np.any(low < high):
        middle = (low + high) // 2
        on = fires(middle)
        high = np.where(on & (low < high), middle, high)
        low = np.where(~on & (low < high), middle + 1, low)
    return low


def firing_thresholds(net, k):
    """``(row_signs, thresholds)`` of hidden layer ``k`` in evaluation mode: output ``j`` fires
    (:func:`hidden_fires`) iff ``row_signs[j] * z_j >= thresholds[j]``, for every integer ``z_j`` in
    ``[-bound, bound]`` (:meth:`BinaryNetwork.preactivation_bound`).

    ``row_signs`` is -1 where ``gamma < 0`` (there firing falls as ``z`` grows) and +1 elsewhere,
    int64; ``thresholds`` is int32 in ``[-bound, bound + 1]``: ``-bound`` for an output that
    always fires, ``bound + 1`` for one that never does. Found by bisection on
    :func:`hidden_fires` itself, not by its closed form (float rounding could put that one off).
    """
    row_signs = np.where(net.params[f"gamma{k}"] < 0, -1, 1).astype(np.int64)
    thresholds = _smallest_firing(lambda z: net.fires(k, row_signs * z), len(row_signs), net.preactivation_bound(k))
    return row_signs, thresholds.astype(np.int32)


def _evaluate_layers(net, layers, x, thresholds, z=None):
    """Evaluation mode of ``layers`` (consecutive indices, no output layer) on their float input ``x``:
    one bool array per layer, ``(B, *out_shape)``, True where the output is +1. ``thresholds`` maps
    each hidden layer to its :func:`firing_thresholds`. ``z``, if given, holds the first layer's integer
    pre-activations (``(rows, outputs)``, :meth:`BinaryNetwork.rows`' rows), computed already."""
    outputs = []
    for k in layers:
        if isinstance(net.specs[k], MaxPool):
            q0, q1, q2, q3 = pool_quarters(outputs[-1])
            fires = q0 | q1 | q2 | q3
        elif z is not None:
            row_signs, t = thresholds[k]
            fires = (z * row_signs >= t).reshape(len(x), *net.shapes[k + 1])
            z = None
        else:
            row_signs, t = thresholds[k]
            # row_signs * z from weight rows times their signs: z, row signs and thresholds are
            # integers below 2**24, so float32 computes and compares them exactly
            signed_w = binary_weights(net.params[f"w{k}"]) * row_signs[:, None].astype(np.float32)
            fires = (net.rows(k, x) @ signed_w.T >= t.astype(np.float32)).reshape(len(x), *net.shapes[k + 1])
        outputs.append(fires)
        x = plus_minus(fires)
    return outputs


@dataclass
class EvaluatedBatch:
    """Evaluation-mode results for ``B`` images: ``activations[k]`` are the packed outputs of layer ``k``
    for every layer but the last, as :class:`model.golden.Inference` holds them (``(B, ceil(n/8))``
    uint8, maps flattened channels innermost); ``scores`` the output layer's integer ``z`` (``(B,
    classes)`` int64), ``logits`` float64."""

    activations: list
    scores: np.ndarray
    logits: np.ndarray

    @property
    def classes(self):
        return np.argmax(self.scores, axis=1)


def pool_map(pool, function, items):
    """``[function(item) for item in items]``, computed by the thread pool ``pool`` if there is one."""
    return list(map(function, items)) if pool is None else list(pool.map(function, items))


def evaluate_binary(net, pixels, pool=None):
    """Run ``net`` in evaluation mode (batch norm with ``net.stats``) on raw ``pixels``, in chunks
    (computed by the thread pool ``pool`` if given)."""
    thresholds = {k: firing_thresholds(net, k) for k in net.hidden}
    w_out = binary_weights(net.params[f"w{net.output}"])

    def run(chunk):
        x = net.encode(chunk)
        outputs = _evaluate_layers(net, range(net.output), x, thresholds)
        x = plus_minus(outputs[-1]) if outputs else x
        return ([pack_bits(fires.reshape(len(x), -1)) for fires in outputs],
                (net.rows(net.output, x) @ w_out.T).astype(np.int64))

    step = net.images_per_chunk
    results = pool_map(pool, run, [pixels[start:start + step] for start in range(0, max(1, len(pixels)), step)])
    activations = [result[0] for result in results]
    scores = np.concatenate([result[1] for result in results])
    logits = float(np.exp(np.float64(net.params["log_alpha"][0]))) * scores
    return EvaluatedBatch([np.concatenate(layer) for layer in zip(*activations)], scores, logits)


def recalibrate_batchnorm(net, pixels, pool=None):
    """Set the evaluation statistics to the exact mean and variance of each hidden layer's ``a`` over
    ``pixels`` (and over every pixel of a convolution's map, per channel); chunks of images are
    computed by the thread pool ``pool`` if given.

    Layer by layer: layer ``k`` sees the outputs of the layers before it in evaluation mode with
    their new statistics. Exact population statistics give steadier thresholds than a running
    average of the last few batches would. The sums are of integers, exact in float64 whatever
    their order, so the statistics do not depend on how the images are chunked.
    """
    step = net.images_per_chunk
    # each chunk's input of the next hidden layer: raw pixels first, then bools (True = +1)
    chunks = [pixels[start:start + step] for start in range(0, len(pixels), step)]
    for k in net.hidden:
        w_bin = binary_weights(net.params[f"w{k}"])
        # the pre-activations the sums pass computes, kept (as the narrowest integers that hold them) for
        # the chunks that fit _KEPT_PREACTIVATION_BYTES, so the pass that applies the thresholds needs
        # no second product
        kind = np.int16 if net.preactivation_bound(k) <= np.iinfo(np.int16).max else np.int32
        chunk_bytes = step * prod(net.shapes[k + 1]) * np.dtype(kind).itemsize
        kept = _KEPT_PREACTIVATION_BYTES // chunk_bytes

        def sums_pass(index, chunk):
            sums, sums_sq, z = _preactivation_sums(net.rows(k, _hidden_input(net, k, chunk)), w_bin)
            return sums, sums_sq, None if z is None or index >= kept else z.astype(kind)

        total = total_sq = 0.0
        preactivations = []
        for sums, sums_sq, z in pool_map(pool, lambda item: sums_pass(*item), enumerate(chunks)):
            total = total + sums
            total_sq = total_sq + sums_sq
            preactivations.append(z)
        count, scale = len(pixels) * prod(net.shapes[k + 1][:-1]), net.layer_scale(k)
        mean_z = total / count
        net.stats[f"mean{k}"] = mean_z / scale
        net.stats[f"var{k}"] = np.maximum(total_sq / count - mean_z * mean_z, 0) / scale ** 2
        block = range(k, next((j for j in net.hidden if j > k), net.output))   # k and the pools after it
        thresholds = {k: firing_thresholds(net, k)}
        chunks = pool_map(pool, lambda item: _evaluate_layers(net, block, _hidden_input(net, k, item[0]), thresholds,
                                                              item[1])[-1], zip(chunks, preactivations))


def _preactivation_sums(rows, w_bin):
    """``(sum z, sum z**2, z)`` over ``rows`` per output, ``z = rows @ w_bin.T``, the sums float64 and
    exact, ``z`` float32 (None where the Gram matrix, below, gives the sums).

    ``rows`` and ``w_bin`` hold integers, so every partial sum is an integer (below 2**53 for the
    pre-activations :func:`model.arch.fit_arch` allows): the sums are exact whatever their order. For rows no
    longer than the number of outputs (a first convolution over pixels) they come from the rows' sums
    and Gram matrix, ``sum z**2 = w G w``, far cheaper than ``z`` itself in float64.
    """
    if rows.shape[1] <= w_bin.shape[0]:
        r, w = rows.astype(np.float64), w_bin.astype(np.float64)
        gram = r.T @ r
        return r.sum(axis=0) @ w.T, ((w @ gram) * w).sum(axis=1), None
    z = rows @ w_bin.T   # float32, exact (fit_arch)
    return z.sum(axis=0, dtype=np.float64), np.einsum("ij,ij->j", z, z, dtype=np.float64), z


def _hidden_input(net, k, chunk):
    """Hidden layer ``k``'s float input from a chunk of raw pixels (``k == 0``) or of the bool
    outputs (True = +1) of the layer before it."""
    return net.encode(chunk) if k == 0 else plus_minus(chunk)
