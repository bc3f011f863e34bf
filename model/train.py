"""Training binary networks in NumPy: the float network, its gradients, Adam, and distillation.

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
2**24, see :func:`fit_arch`); ``a = z / s_k`` with ``s_0`` the data set's ``max_value`` for 8-bit
input and ``s_k = 1`` otherwise; ``h = gamma * (a - mean) / sqrt(var + BN_EPS) + beta`` per output
(neuron, or channel over all pixels: batch statistics in training; in evaluation the training set's
statistics, recomputed after every epoch by :func:`recalibrate_batchnorm`, see :func:`hidden_fires`);
the output is ``sign(h)`` with sign(0) = +1.

Max-pool (directly after a convolution): the model file's pool is the OR of the +1 bits of each
2 x 2 window of the convolution's outputs, i.e. their maximum. As sign is non-decreasing, that is
``sign(max h)`` over the window, which is how training computes it: the gradient takes the sign's
surrogate derivative at the window's largest ``h`` and goes to that one position (the first of
equal largest values, in the order of :func:`model.layers.pool_quarters`), as in a float max-pool.

Output layer: ``logits = exp(log_alpha) * z``, one learned positive scale and no bias, so the
class (the argmax, ties to the lowest index) is the argmax of the integer ``z``.

Gradients: the activations' sign passes the gradient through the straight-through estimator with
clipping (``1`` where ``|h| <= 1``, ``grad="ste"``) or the ApproxSign derivative
(``2 - 2|h|`` where ``|h| <= 1``, ``grad="approxsign"``). The weights' sign uses the plain
straight-through estimator on latent real weights, which are clipped to [-1, 1] after every step.

Evaluation mode: each hidden output is :func:`hidden_fires` of its integer ``z``. That is monotone
in ``z``, so it equals one integer comparison per output, ``row_sign * z >= t``, whose
``(row_sign, t)`` :func:`firing_thresholds` finds by bisection over every integer ``z`` the
model file allows; evaluation computes the comparison (exact, and far cheaper than batch norm in
float64 on every pixel of a map), and :mod:`model.fold` stores it.

Teacher
-------
A full-precision MLP (ReLU hidden layers with biases, input ``pixel / max_value``) trained with
cross-entropy. The student then learns from ``(1 - w) * CE(labels) + w * T**2 * KL(teacher_T ||
student_T)`` where ``_T`` is the softmax at temperature ``T``. Teachers are saved in the format
of :mod:`model.teacherfile`.

Augmentation: random whole-pixel shifts and, optionally, horizontal mirror images of the training
images (:class:`TrainSettings`), for the student and the teacher alike.

Ghost batches: a batch may be split into consecutive parts, each with its own batch norm statistics
(:class:`TrainSettings`' ``ghost_batches``). Python threads compute the parts at once (NumPy releases
the interpreter lock in its loops and BLAS calls), and the evaluation passes' chunks of images too;
BLAS itself stays on one thread (:mod:`model`).

Every random choice (initialisation, validation split, batch order, augmentation) comes from
``np.random.default_rng(seed)``; the same seed gives the same network, whatever the number of threads.
"""

import math
import os
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cached_property
from math import prod

import numpy as np
from tqdm import tqdm

from .bits import pack_bits, sign_bits
from .datasets import stratified_split
from .errors import TrainingError
from .layers import Conv, Dense, MaxPool, arch_string, layer_shapes, pool_quarters, windows, windows_adjoint

BN_EPS = 1e-5
GRADS = ("ste", "approxsign")
# Largest |z| a float32 matmul of integer-valued operands reproduces exactly.
FLOAT32_EXACT = 1 << 24


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (student or teacher).

    ``lr`` is Adam's initial learning rate, decayed to 0 along a half cosine over all steps.
    ``max_shift`` > 0 translates each training image by a random whole number of pixels in
    ``[-max_shift, max_shift]`` along both axes (zero fill) every time it is used; ``flip`` mirrors
    it left to right with probability 1/2 (for data sets whose classes a mirror image keeps).
    ``ghost_batches`` > 1 splits every batch into that many consecutive parts of nearly equal size
    (:func:`ghost_parts`), each with its own batch norm statistics ("ghost" batch norm); the step's
    loss and gradient are the parts' means weighted by their sizes, summed in part order. The parts
    are independent, so threads compute them at once (:func:`train_binary`'s ``threads``), and the
    trained network does not depend on how many threads there are.
    """

    epochs: int
    batch_size: int
    lr: float
    max_shift: int = 0
    flip: bool = False
    ghost_batches: int = 1

    def check(self):
        if self.epochs < 1:
            raise TrainingError(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise TrainingError(f"batch size must be at least 1, not {self.batch_size}")
        if not 0 < self.lr < float("inf"):
            raise TrainingError(f"learning rate must be a positive finite number, not {self.lr}")
        if self.max_shift < 0:
            raise TrainingError(f"shift must be non-negative, not {self.max_shift}")
        if not 1 <= self.ghost_batches <= self.batch_size:
            raise TrainingError(f"ghost batches must lie in 1..{self.batch_size} (the batch size), "
                                f"not {self.ghost_batches}")
        return self


@dataclass(frozen=True)
class Distillation:
    """How the student learns from a teacher: temperature ``T`` and weight ``w`` of the KL term."""

    temperature: float = 1.0
    weight: float = 0.5

    def check(self):
        if not self.temperature > 0:
            raise TrainingError(f"temperature must be positive, not {self.temperature}")
        if not 0 <= self.weight <= 1:
            raise TrainingError(f"distillation weight must lie in [0, 1], not {self.weight}")
        return self


# ----------------------------------------------------------------------------------------------
# Architecture strings

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
    fan_ins = [_fan_in(spec, shape) for spec, shape in zip(specs, [input_shape, *shapes])
               if not isinstance(spec, MaxPool)]
    largest = max(n * (dataset.max_value if (k == 0 and input_bits == 8) else 1) for k, n in enumerate(fan_ins))
    if largest >= FLOAT32_EXACT:
        raise TrainingError(f"--arch {text}: pre-activations up to {largest} are too wide "
                            f"to train exactly (limit {FLOAT32_EXACT - 1})")
    return input_shape, specs


def _fan_in(spec, in_shape):
    """Inputs of one output of a layer with weights: its window (a convolution) or its whole input."""
    return spec.kernel * spec.kernel * in_shape[2] if isinstance(spec, Conv) else prod(in_shape)


# ----------------------------------------------------------------------------------------------
# Layers: forward and backward passes as pure functions


def binary_weights(latent):
    """The {-1,+1} weights (float32) of latent real weights, sign(0) = +1 as in :mod:`model.bits`."""
    return sign_bits(latent).astype(np.float32) * 2 - 1


def plus_minus(fires):
    """Bools as float32 values, +1 where True and -1 where False."""
    values = fires.astype(np.float32)
    values *= 2
    values -= 1
    return values


def sign_activation(h):
    """Forward sign with sign(0) = +1, as float32 values -1/+1."""
    return plus_minus(h >= 0)


def sign_gradient(h, grad):
    """Surrogate derivative of sign at ``h``: STE with clipping or ApproxSign (see module doc)."""
    if grad == "ste":
        return (np.abs(h) <= 1).astype(h.dtype)
    if grad == "approxsign":
        slope = np.abs(h)   # 2 - 2|h|, at least 0, in place
        slope *= -2
        slope += 2
        return np.maximum(slope, 0, out=slope)
    raise TrainingError(f"unknown gradient {grad!r} (choose from {', '.join(GRADS)})")


def batchnorm_forward(a, gamma, beta):
    """Training-mode batch norm over axis 0; returns ``(h, mean, var, cache)``."""
    mean = a.mean(axis=0)
    # in place: a convolution's a holds a value per image, pixel and channel. The variance is the mean
    # of the squared deviations, summed by einsum without a squared copy of the map.
    normalised = a - mean
    var = np.einsum("ij,ij->j", normalised, normalised)
    var /= len(a)
    inv_std = 1 / np.sqrt(var + BN_EPS)
    normalised *= inv_std
    h = normalised * gamma
    h += beta
    return h, mean, var, (normalised, inv_std, gamma)


def batchnorm_backward(dh, cache):
    """Gradients ``(da, dgamma, dbeta)`` of :func:`batchnorm_forward`."""
    normalised, inv_std, gamma = cache
    n = dh.shape[0]
    dgamma = np.einsum("ij,ij->j", dh, normalised)
    dbeta = dh.sum(axis=0)
    # gamma * inv_std * (dh - dbeta / n - normalised * dgamma / n): the textbook form with the sums over
    # dh * gamma written as gamma times dbeta and dgamma; three passes over the map, in place
    da = normalised * (dgamma / n)
    np.subtract(dh, da, out=da)
    da -= dbeta / n
    da *= gamma * inv_std
    return da, dgamma, dbeta


def hidden_fires(z, scale, mean, var, gamma, beta):
    """Evaluation-mode batch norm and sign of integer pre-activations ``z``: True where the output is +1.

    Computed in float64. This is the one definition of the float network's evaluation mode; both
    its forward pass and the folding (:mod:`model.fold`) compute it through
    :func:`firing_thresholds`, so both agree on every input. For each output the result is
    monotone in ``z`` (non-decreasing if ``gamma > 0``, non-increasing if ``gamma < 0``, constant if
    ``gamma == 0``), because every float operation in it is monotone.
    """
    a = np.asarray(z, dtype=np.float64) / scale
    return (a - mean) * (np.asarray(gamma, np.float64) / np.sqrt(var + BN_EPS)) + beta >= 0


def log_softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def classification_loss(logits, labels, teacher_logits=None, distillation=None):
    """Mean loss over the batch and its gradient with respect to ``logits``.

    Cross-entropy with ``labels``; with ``teacher_logits``, mixed with the distillation term
    ``T**2 * KL(softmax(teacher/T) || softmax(logits/T))`` by ``distillation.weight``.
    """
    n = len(labels)
    log_p = log_softmax(logits)
    ce = -log_p[np.arange(n), labels].mean()
    d_ce = np.exp(log_p)
    d_ce[np.arange(n), labels] -= 1
    d_ce /= n
    if teacher_logits is None:
        return float(ce), d_ce
    t, w = distillation.temperature, distillation.weight
    log_q = log_softmax(logits / t)
    log_p_teacher = log_softmax(teacher_logits / t)
    p_teacher = np.exp(log_p_teacher)
    kl = (p_teacher * (log_p_teacher - log_q)).sum(axis=1).mean()
    d_kl = t * (np.exp(log_q) - p_teacher) / n
    return float((1 - w) * ce + w * t * t * kl), ((1 - w) * d_ce + w * d_kl).astype(logits.dtype)


def max_pool_forward(h):
    """Training-mode 2 x 2 max-pool of ``(B, H, W, C)`` maps: ``(pooled, positions)``, ``pooled`` the
    largest value of each window and ``positions`` (int8, 0..3, :func:`model.layers.pool_quarters`'
    order) where the first of them sits."""
    q0, q1, q2, q3 = pool_quarters(h)
    pooled = np.maximum(np.maximum(q0, q1), np.maximum(q2, q3))
    positions = np.full(pooled.shape, 3, np.int8)
    for q, values in reversed(list(enumerate((q0, q1, q2)))):
        np.copyto(positions, np.int8(q), where=values == pooled)
    return pooled, positions


def max_pool_backward(d_pooled, positions, shape):
    """The gradient of :func:`max_pool_forward`: ``d_pooled`` at each window's ``positions``, 0 elsewhere."""
    d = np.zeros(shape, d_pooled.dtype)
    for q, view in enumerate(pool_quarters(d)):
        view[...] = d_pooled * (positions == q)
    return d


# ----------------------------------------------------------------------------------------------
# The student: a binary network

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
        return _fan_in(self.specs[k], self.shapes[k])

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


def _map(pool, function, items):
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
    results = _map(pool, run, [pixels[start:start + step] for start in range(0, max(1, len(pixels)), step)])
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
        for sums, sums_sq, z in _map(pool, lambda item: sums_pass(*item), enumerate(chunks)):
            total = total + sums
            total_sq = total_sq + sums_sq
            preactivations.append(z)
        count, scale = len(pixels) * prod(net.shapes[k + 1][:-1]), net.layer_scale(k)
        mean_z = total / count
        net.stats[f"mean{k}"] = mean_z / scale
        net.stats[f"var{k}"] = np.maximum(total_sq / count - mean_z * mean_z, 0) / scale ** 2
        block = range(k, next((j for j in net.hidden if j > k), net.output))   # k and the pools after it
        thresholds = {k: firing_thresholds(net, k)}
        chunks = _map(pool, lambda item: _evaluate_layers(net, block, _hidden_input(net, k, item[0]), thresholds,
                                                          item[1])[-1], zip(chunks, preactivations))


def _preactivation_sums(rows, w_bin):
    """``(sum z, sum z**2, z)`` over ``rows`` per output, ``z = rows @ w_bin.T``, the sums float64 and
    exact, ``z`` float32 (None where the Gram matrix, below, gives the sums).

    ``rows`` and ``w_bin`` hold integers, so every partial sum is an integer (below 2**53 for the
    pre-activations :func:`fit_arch` allows): the sums are exact whatever their order. For rows no
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


# ----------------------------------------------------------------------------------------------
# The teacher: a full-precision MLP


@dataclass
class TeacherNetwork:
    """A ReLU MLP; ``params`` holds ``w{k}`` ``(fan_out, fan_in)`` and ``b{k}`` float32.

    ``stats`` stays empty (no batch norm); it is there so that both network kinds snapshot alike.
    """

    arch: tuple
    input_scale: int
    params: dict
    stats: dict = field(default_factory=dict)

    def encode(self, pixels):
        return pixels.astype(np.float32) / np.float32(self.input_scale)


def init_teacher(arch, max_value, rng):
    """A fresh :class:`TeacherNetwork` with He-normal weights and zero biases."""
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(arch[:-1], arch[1:])):
        params[f"w{k}"] = (rng.standard_normal((fan_out, fan_in)) * math.sqrt(2 / fan_in)).astype(np.float32)
        params[f"b{k}"] = np.zeros(fan_out, np.float32)
    return TeacherNetwork(tuple(arch), max_value, params)


def _teacher_forward(teacher, pixels):
    """``(layer_inputs, logits)``: the input of every layer (kept for the backward pass) and the logits."""
    x = teacher.encode(pixels)
    inputs = []
    last = len(teacher.arch) - 2
    for k in range(last):
        inputs.append(x)
        x = np.maximum(x @ teacher.params[f"w{k}"].T + teacher.params[f"b{k}"], 0)
    inputs.append(x)
    return inputs, x @ teacher.params[f"w{last}"].T + teacher.params[f"b{last}"]


def teacher_logits(teacher, pixels):
    return _teacher_forward(teacher, pixels)[1]


def teacher_loss_and_grads(teacher, pixels, labels, _teacher_logits=None, _distillation=None):
    """One training pass of the teacher (cross-entropy only): ``(loss, logits, grads)``.

    The last two parameters keep the signature the training loop shares with the student; a
    teacher learns from the labels alone.
    """
    inputs, logits = _teacher_forward(teacher, pixels)
    last = len(teacher.arch) - 2
    loss, dy = classification_loss(logits, labels)
    grads = {}
    for k in reversed(range(last + 1)):
        grads[f"w{k}"] = dy.T @ inputs[k]
        grads[f"b{k}"] = dy.sum(axis=0)
        if k:
            dy = (dy @ teacher.params[f"w{k}"]) * (inputs[k] > 0)
    return loss, logits, grads


# ----------------------------------------------------------------------------------------------
# Optimiser and training loop


class Adam:
    """Adam over a dict of float32 arrays, updated in place."""

    def __init__(self, params, beta1=0.9, beta2=0.999, eps=1e-8):
        self._m = {k: np.zeros_like(v) for k, v in params.items()}
        self._v = {k: np.zeros_like(v) for k, v in params.items()}
        self._beta1, self._beta2, self._eps = beta1, beta2, eps
        self._steps = 0

    def step(self, params, grads, lr):
        self._steps += 1
        b1, b2 = self._beta1, self._beta2
        corrected_lr = lr * math.sqrt(1 - b2 ** self._steps) / (1 - b1 ** self._steps)
        for name, g in grads.items():
            m, v = self._m[name], self._v[name]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            params[name] -= (corrected_lr * m / (np.sqrt(v) + self._eps)).astype(params[name].dtype)


def cosine_lr(lr, step, total_steps):
    """Learning rate at ``step`` of ``total_steps``: a half cosine from ``lr`` down to 0."""
    return lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))


def random_offsets(count, max_shift, rng):
    """``(dy, dx)``: ``count`` random whole-pixel offsets in ``[-max_shift, max_shift]`` each."""
    return rng.integers(-max_shift, max_shift + 1, count), rng.integers(-max_shift, max_shift + 1, count)


def translate(images, shape, dy, dx):
    """Move flattened ``shape`` images by ``dy`` rows and ``dx`` columns each (per image), filling with 0."""
    n = len(images)
    h, w = shape
    p = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    padded = np.zeros((n, h + 2 * p, w + 2 * p), images.dtype)
    padded[:, p:p + h, p:p + w] = images.reshape(n, h, w)
    out = np.empty((n, h, w), images.dtype)
    for oy in np.unique(dy):
        for ox in np.unique(dx):
            sel = (dy == oy) & (dx == ox)
            out[sel] = padded[sel, p - oy:p - oy + h, p - ox:p - ox + w]
    return out.reshape(n, h * w)


def mirror(images, shape, flips):
    """Flattened ``shape`` images with those where ``flips`` is True mirrored left to right."""
    n, (h, w) = len(images), shape
    grid = images.reshape(n, h, w)
    return np.where(flips[:, None, None], grid[:, :, ::-1], grid).reshape(n, h * w)


def augment(images, shape, settings, rng):
    """``(images, variants)``: ``images`` (flattened ``shape``) moved and mirrored at random as
    ``settings`` ask (:class:`TrainSettings`), and the index of each image's variant, the table
    row of :func:`_teacher_table`. Draws the offsets (and the mirror choices, only if asked) from ``rng``."""
    dy, dx = random_offsets(len(images), settings.max_shift, rng)
    if settings.max_shift:
        images = translate(images, shape, dy, dx)
    side = 2 * settings.max_shift + 1
    variants = (dy + settings.max_shift) * side + (dx + settings.max_shift)
    if settings.flip:
        flips = rng.integers(0, 2, len(images)).astype(bool)
        images = mirror(images, shape, flips)
        variants = variants + flips * side * side
    return images, variants


def _teacher_table(teacher, images, shape, settings, chunk=2048):
    """The teacher's logits for every training image in every variant :func:`augment` can make,
    ``(variants, n, classes)``.

    Computed once, so that distillation costs no teacher pass per batch; indexed by
    :func:`augment`'s variant index.
    """
    n, shift, side = len(images), settings.max_shift, 2 * settings.max_shift + 1
    offsets = [(oy, ox) for oy in range(-shift, shift + 1) for ox in range(-shift, shift + 1)]
    table = np.empty(((2 if settings.flip else 1) * side * side, n, teacher.arch[-1]), np.float32)
    for variant in range(len(table)):
        (oy, ox), flip = offsets[variant % len(offsets)], variant >= len(offsets)
        for start in range(0, n, chunk):
            part = images[start:start + chunk]
            moved = translate(part, shape, np.full(len(part), oy), np.full(len(part), ox))
            mirrored = mirror(moved, shape, np.full(len(part), flip))
            table[variant, start:start + chunk] = teacher_logits(teacher, mirrored)
    return table


@dataclass
class EpochRecord:
    """Per-epoch figures: training loss/accuracy (on the batches as seen), validation loss/accuracy."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass
class FitResult:
    """The network of the best validation epoch, with the history of all epochs and the time taken."""

    network: object
    history: list
    best_epoch: int
    seconds: float

    @property
    def val_accuracy(self):
        return self.history[self.best_epoch - 1].val_accuracy


@dataclass(frozen=True)
class _Trainee:
    """What the loop needs to know about a network kind."""

    loss_and_grads: object  # (net, pixels, labels, teacher_logits, distillation) -> (loss, logits, grads)
    eval_logits: object     # (net, pixels, thread pool or None) -> logits
    after_step: object      # (net) -> None
    after_epoch: object     # (net, training pixels, thread pool or None) -> None, before the validation pass


_BINARY = _Trainee(binary_loss_and_grads, lambda net, x, pool: evaluate_binary(net, x, pool).logits, clip_weights,
                   recalibrate_batchnorm)
_TEACHER = _Trainee(teacher_loss_and_grads, lambda net, x, pool: teacher_logits(net, x), lambda net: None,
                    lambda net, x, pool: None)


def _snapshot(net):
    return {k: v.copy() for k, v in net.params.items()}, {k: v.copy() for k, v in net.stats.items()}


def _restore(net, snapshot):
    net.params, net.stats = snapshot


def ghost_parts(count, parts):
    """The ghost batches of a batch of ``count`` images (:class:`TrainSettings`): ``min(parts, count)``
    consecutive slices whose sizes differ by at most one, the larger first."""
    parts = min(parts, count)
    size, larger = divmod(count, parts)
    bounds = np.cumsum([0] + [size + 1] * larger + [size] * (parts - larger))
    return [slice(int(start), int(stop)) for start, stop in zip(bounds[:-1], bounds[1:])]


def default_threads():
    """The threads training uses by default: the processors this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _ghost_step(trainee, net, batch, labels, soft, distillation, parts, pool):
    """``(loss, logits, grads)`` of one step whose batch is split into ``parts`` ghost batches,
    computed by ``pool`` (None: one after the other); the loss and each gradient are the parts'
    weighted by their share of the batch and summed in part order."""
    def part(piece):
        # np.errstate is per thread: a worker sets its own (overflow is reported by the loss, see _fit)
        with np.errstate(over="ignore", invalid="ignore"):
            return trainee.loss_and_grads(net, batch[piece], labels[piece], None if soft is None else soft[piece],
                                          distillation)

    pieces = ghost_parts(len(labels), parts)
    results = _map(pool, part, pieces)
    if len(results) == 1:
        return results[0]
    shares = [(piece.stop - piece.start) / len(labels) for piece in pieces]
    loss = sum(share * result[0] for share, result in zip(shares, results))
    grads = {}
    for name in results[0][2]:
        total = results[0][2][name] * np.float32(shares[0])
        for share, result in zip(shares[1:], results[1:]):
            total += result[2][name] * np.float32(share)
        grads[name] = total
    return loss, np.concatenate([result[1] for result in results]), grads


# A run without progress bars prints a status line at most this often (within an epoch too).
_STATUS_SECONDS = 30


def _fit(net, trainee, data, settings, rng, *, teacher=None, distillation=None, desc="train", progress=True,
         threads=None):
    """Train ``net`` in place with Adam and keep the epoch with the best validation accuracy
    (the latest of equally good epochs).

    ``data`` is ``(train_images, train_labels, val_images, val_labels, image_shape)``. ``threads``
    (default :func:`default_threads`) compute a step's ghost batches, and the chunks of the
    evaluation passes, at once; the result is the same for any number.
    """
    threads = default_threads() if threads is None else threads
    if threads < 1:
        raise TrainingError(f"threads must be at least 1, not {threads}")
    with ThreadPoolExecutor(threads) if threads > 1 else nullcontext() as pool:
        return _fit_loop(net, trainee, data, settings, rng, teacher, distillation, desc, progress, pool)


def _fit_loop(net, trainee, data, settings, rng, teacher, distillation, desc, progress, pool):
    """:func:`_fit`'s loop, ghost batches computed by ``pool`` (None: in this thread)."""
    images, labels, val_images, val_labels, shape = data
    start = time.perf_counter()
    n = len(images)
    steps_per_epoch = -(-n // settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    adam = Adam(net.params)
    history, best, best_epoch, step = [], None, 0, 0
    soft_table = _teacher_table(teacher, images, shape, settings) if teacher is not None else None
    # bars on a terminal only (None: tqdm asks whether stderr is one), never into a redirected log
    bars = None if progress else True
    # without bars (stderr is not a terminal), a long run says how far it is, a line at most every _STATUS_SECONDS
    status_lines, last_status = progress and not sys.stderr.isatty(), start
    epochs = tqdm(range(1, settings.epochs + 1), desc=desc, unit="epoch", disable=bars, leave=False)
    for epoch in epochs:
        order = rng.permutation(n)
        loss_sum = correct = 0.0
        batches = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", unit="batch", disable=bars,
                       leave=False)
        for b in batches:
            idx = order[b * settings.batch_size:(b + 1) * settings.batch_size]
            batch, variants = augment(images[idx], shape, settings, rng)
            soft = soft_table[variants, idx] if teacher is not None else None
            # a learning rate too high for the network overflows: the loss says so below, as one error
            loss, logits, grads = _ghost_step(trainee, net, batch, labels[idx], soft, distillation,
                                              settings.ghost_batches, pool)
            if not np.isfinite(loss):
                raise TrainingError(f"the training loss became {loss} in epoch {epoch}: the learning rate "
                                    f"({settings.lr}) is too high for this network")
            with np.errstate(over="ignore", invalid="ignore"):
                adam.step(net.params, grads, cosine_lr(settings.lr, step, total_steps))
                trainee.after_step(net)
            step += 1
            loss_sum += loss * len(idx)
            correct += np.count_nonzero(np.argmax(logits, axis=1) == labels[idx])
            now = time.perf_counter()
            if status_lines and now - last_status >= _STATUS_SECONDS and b + 1 < steps_per_epoch:
                # an epoch longer than the status period (a big network) says how far it is too
                print(f"{desc}: epoch {epoch} of {settings.epochs}, batch {b + 1} of {steps_per_epoch}, "
                      f"{now - start:.0f} s in (about {(now - start) / step * steps_per_epoch:.0f} s an epoch)",
                      file=sys.stderr, flush=True)
                last_status = now
        with np.errstate(over="ignore", invalid="ignore"):
            trainee.after_epoch(net, images, pool)
            val_logits = trainee.eval_logits(net, val_images, pool)
            val_loss, _ = classification_loss(val_logits, val_labels)
        if not np.isfinite(val_loss) or not all(np.isfinite(p).all() for p in net.params.values()):
            raise TrainingError(f"the network diverged in epoch {epoch} (validation loss {val_loss}): the "
                                f"learning rate ({settings.lr}) is too high for this network")
        val_accuracy = float(np.mean(np.argmax(val_logits, axis=1) == val_labels))
        history.append(EpochRecord(epoch, loss_sum / n, float(correct / n), val_loss, val_accuracy))
        epochs.set_postfix(loss=f"{loss_sum / n:.3f}", val_acc=f"{val_accuracy:.4f}")
        now = time.perf_counter()
        if status_lines and now - last_status >= _STATUS_SECONDS:
            print(f"{desc}: epoch {epoch} of {settings.epochs}, training loss {loss_sum / n:.4f}, validation accuracy "
                  f"{val_accuracy:.2%}, {now - start:.0f} s in", file=sys.stderr, flush=True)
            last_status = now
        if best is None or val_accuracy >= history[best_epoch - 1].val_accuracy:
            best, best_epoch = _snapshot(net), epoch
    _restore(net, best)
    return FitResult(net, history, best_epoch, time.perf_counter() - start)


def split_validation(dataset, fraction, seed):
    """``(train_images, train_labels, val_images, val_labels, shape)``: a stratified, seeded hold-out."""
    if not 0 < fraction < 1:
        raise TrainingError(f"validation fraction must lie strictly between 0 and 1, not {fraction}")
    keep, held = stratified_split(dataset.train_labels, fraction, seed)
    if len(held) == 0 or len(keep) == 0:
        raise TrainingError(f"validation fraction {fraction} leaves {len(keep)} training and {len(held)} "
                            f"validation images of {dataset.name}")
    return (dataset.train_images[keep], dataset.train_labels[keep],
            dataset.train_images[held], dataset.train_labels[held], dataset.shape)


def train_teacher(data, arch, max_value, settings, rng, progress=True, threads=None):
    """Train a :class:`TeacherNetwork` of ``arch`` on ``data`` (see :func:`split_validation`)."""
    teacher = init_teacher(arch, max_value, rng)
    return _fit(teacher, _TEACHER, data, settings.check(), rng, desc="teacher", progress=progress, threads=threads)


def train_binary(data, net, settings, rng, *, teacher=None, distillation=None, progress=True, threads=None):
    """Train the :class:`BinaryNetwork` ``net``, distilling from ``teacher`` when given; ``threads``
    as :func:`_fit` takes them."""
    if teacher is not None:
        distillation = (distillation or Distillation()).check()
    return _fit(net, _BINARY, data, settings.check(), rng, teacher=teacher, distillation=distillation,
                desc="student", progress=progress, threads=threads)


def accuracy(predicted, labels):
    return float(np.mean(predicted == labels))
