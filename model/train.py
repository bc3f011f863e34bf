"""Training binary networks in NumPy: the float network, its gradients, Adam, and distillation.

The float network (the *student*) is built so that :mod:`model.fold` can turn it, in evaluation
mode, into the integer model of :mod:`model.modelfile` without changing a single prediction.

Student network
---------------
Input ``x``: for 8-bit input the raw pixel values as floats; for 1-bit input +1 where
``pixel >= threshold`` and -1 elsewhere.

Hidden layer ``k``: ``z = x @ sign(W_k).T`` is the integer pre-activation of the model file (float32
holds it exactly because every partial sum stays below 2**24, see :func:`check_arch`);
``a = z / s_k`` with ``s_0`` the data set's ``max_value`` for 8-bit input and ``s_k = 1`` otherwise;
``h = gamma * (a - mean) / sqrt(var + BN_EPS) + beta`` (batch statistics in training; in
evaluation the training set's statistics, recomputed after every epoch by
:func:`recalibrate_batchnorm`, see :func:`hidden_fires`); the output is ``sign(h)`` with sign(0) = +1.

Output layer: ``logits = exp(log_alpha) * z``, one learned positive scale and no bias, so the
class (the argmax, ties to the lowest index) is the argmax of the integer ``z``.

Gradients: the activations' sign passes the gradient through the straight-through estimator with
clipping (``1`` where ``|h| <= 1``, ``grad="ste"``) or the ApproxSign derivative
(``2 - 2|h|`` where ``|h| <= 1``, ``grad="approxsign"``). The weights' sign uses the plain
straight-through estimator on latent real weights, which are clipped to [-1, 1] after every step.

Teacher
-------
A full-precision MLP (ReLU hidden layers with biases, input ``pixel / max_value``) trained with
cross-entropy. The student then learns from ``(1 - w) * CE(labels) + w * T**2 * KL(teacher_T ||
student_T)`` where ``_T`` is the softmax at temperature ``T``. Teachers are saved as ``.npz``
files, see :func:`save_teacher`.

Every random choice (initialisation, validation split, batch order, augmentation) comes from
``np.random.default_rng(seed)``; the same seed gives the same network.
"""

import math
import os
import time
import zipfile
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from .bits import sign_bits
from .datasets import stratified_split
from .errors import TeacherFileError, TrainingError

BN_EPS = 1e-5
GRADS = ("ste", "approxsign")
# Largest |z| a float32 matmul of integer-valued operands reproduces exactly.
FLOAT32_EXACT = 1 << 24
TEACHER_FORMAT = "bnn-teacher"
TEACHER_VERSION = 1


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters of one training run (student or teacher).

    ``lr`` is Adam's initial learning rate, decayed to 0 along a half cosine over all steps.
    ``max_shift`` > 0 translates each training image by a random whole number of pixels in
    ``[-max_shift, max_shift]`` along both axes (zero fill) every time it is used.
    """

    epochs: int
    batch_size: int
    lr: float
    max_shift: int = 0

    def check(self):
        if self.epochs < 1:
            raise TrainingError(f"epochs must be at least 1, not {self.epochs}")
        if self.batch_size < 1:
            raise TrainingError(f"batch size must be at least 1, not {self.batch_size}")
        if not 0 < self.lr < float("inf"):
            raise TrainingError(f"learning rate must be a positive finite number, not {self.lr}")
        if self.max_shift < 0:
            raise TrainingError(f"shift must be non-negative, not {self.max_shift}")
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


def parse_arch(text):
    """``"784-256-10"`` to ``(784, 256, 10)``; raise :class:`TrainingError` on anything else."""
    parts = str(text).split("-")
    if len(parts) < 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise TrainingError(f"--arch {text!r}: expected layer sizes joined by '-', e.g. 784-256-256-10")
    sizes = tuple(int(p) for p in parts)
    if min(sizes) < 1:
        raise TrainingError(f"--arch {text!r}: every layer needs at least one neuron")
    if sizes[-1] < 2:
        raise TrainingError(f"--arch {text!r}: the output layer needs at least 2 classes")
    return sizes


def arch_name(arch):
    return "-".join(str(n) for n in arch)


def check_arch(arch, dataset, input_bits):
    """Check that ``arch`` fits ``dataset`` (input size, class count) and float32 exactness."""
    if arch[0] != dataset.input_size:
        raise TrainingError(f"--arch {arch_name(arch)} starts with {arch[0]} inputs but {dataset.name} "
                            f"images have {dataset.input_size} pixels")
    if arch[-1] != dataset.classes:
        raise TrainingError(f"--arch {arch_name(arch)} ends with {arch[-1]} outputs but {dataset.name} "
                            f"has {dataset.classes} classes")
    largest = max(n * (dataset.max_value if (k == 0 and input_bits == 8) else 1) for k, n in enumerate(arch[:-1]))
    if largest >= FLOAT32_EXACT:
        raise TrainingError(f"--arch {arch_name(arch)}: pre-activations up to {largest} are too wide "
                            f"to train exactly (limit {FLOAT32_EXACT - 1})")


# ----------------------------------------------------------------------------------------------
# Layers: forward and backward passes as pure functions


def binary_weights(latent):
    """The {-1,+1} weights (float32) of latent real weights, sign(0) = +1 as in :mod:`model.bits`."""
    return sign_bits(latent).astype(np.float32) * 2 - 1


def sign_activation(h):
    """Forward sign with sign(0) = +1, as float32 values -1/+1."""
    return np.where(h >= 0, np.float32(1), np.float32(-1))


def sign_gradient(h, grad):
    """Surrogate derivative of sign at ``h``: STE with clipping or ApproxSign (see module doc)."""
    if grad == "ste":
        return (np.abs(h) <= 1).astype(h.dtype)
    if grad == "approxsign":
        return np.maximum(0, 2 - 2 * np.abs(h)).astype(h.dtype)
    raise TrainingError(f"unknown gradient {grad!r} (choose from {', '.join(GRADS)})")


def batchnorm_forward(a, gamma, beta):
    """Training-mode batch norm over axis 0; returns ``(h, mean, var, cache)``."""
    mean = a.mean(axis=0)
    var = a.var(axis=0)
    inv_std = 1 / np.sqrt(var + BN_EPS)
    normalised = (a - mean) * inv_std
    return gamma * normalised + beta, mean, var, (normalised, inv_std, gamma)


def batchnorm_backward(dh, cache):
    """Gradients ``(da, dgamma, dbeta)`` of :func:`batchnorm_forward`."""
    normalised, inv_std, gamma = cache
    n = dh.shape[0]
    dgamma = (dh * normalised).sum(axis=0)
    dbeta = dh.sum(axis=0)
    dnorm = dh * gamma
    da = inv_std / n * (n * dnorm - dnorm.sum(axis=0) - normalised * (dnorm * normalised).sum(axis=0))
    return da, dgamma, dbeta


def hidden_fires(z, scale, mean, var, gamma, beta):
    """Evaluation-mode batch norm and sign of integer pre-activations ``z``: True where the output is +1.

    Computed in float64. This is the one definition both the float network in evaluation mode and
    the folding (:mod:`model.fold`) use, so both agree on every input. For each neuron the result is
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


# ----------------------------------------------------------------------------------------------
# The student: a binary network


@dataclass
class BinaryNetwork:
    """The trainable float binary network described in the module docstring.

    ``params`` holds the trained arrays: ``w{k}`` latent weights ``(fan_out, fan_in)`` float32,
    ``gamma{k}``/``beta{k}`` of hidden layers, and ``log_alpha`` (shape ``(1,)``) of the output
    layer. ``stats`` holds the ``mean{k}``/``var{k}`` (float64) used in evaluation mode.
    """

    arch: tuple
    input_bits: int
    input_scale: int
    input_threshold: int | None
    grad: str
    params: dict
    stats: dict = field(default_factory=dict)

    @property
    def hidden_layers(self):
        return len(self.arch) - 2

    def layer_scale(self, k):
        """``s_k``: the float pre-activation of hidden layer ``k`` is ``z / s_k``."""
        return self.input_scale if k == 0 and self.input_bits == 8 else 1

    def encode(self, pixels):
        """The first layer's float input for raw ``pixels`` (see the module docstring)."""
        if self.input_bits == 8:
            return pixels.astype(np.float32)
        return np.where(pixels >= self.input_threshold, np.float32(1), np.float32(-1))


def init_binary_network(arch, input_bits, max_value, grad, rng, input_threshold=None):
    """A fresh :class:`BinaryNetwork` with Glorot-uniform latent weights.

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
    params, stats = {}, {}
    for k, (fan_in, fan_out) in enumerate(zip(arch[:-1], arch[1:])):
        limit = math.sqrt(6 / (fan_in + fan_out))
        params[f"w{k}"] = rng.uniform(-limit, limit, (fan_out, fan_in)).astype(np.float32)
        if k < len(arch) - 2:
            params[f"gamma{k}"] = np.ones(fan_out, np.float32)
            params[f"beta{k}"] = np.zeros(fan_out, np.float32)
            stats[f"mean{k}"] = np.zeros(fan_out)
            stats[f"var{k}"] = np.ones(fan_out)
    # Random +-1 dot products over fan_in inputs have a spread of about sqrt(fan_in).
    params["log_alpha"] = np.array([-0.5 * math.log(arch[-2])], np.float32)
    return BinaryNetwork(tuple(arch), input_bits, max_value, input_threshold, grad, params, stats)


def binary_loss_and_grads(net, pixels, labels, teacher_logits=None, distillation=None):
    """One training-mode pass (batch statistics): ``(loss, logits, grads)``."""
    x = net.encode(pixels)
    caches = []
    for k in range(net.hidden_layers):
        w_bin = binary_weights(net.params[f"w{k}"])
        a = (x @ w_bin.T) / np.float32(net.layer_scale(k))
        h, _, _, bn_cache = batchnorm_forward(a, net.params[f"gamma{k}"], net.params[f"beta{k}"])
        caches.append((x, w_bin, h, bn_cache))
        x = sign_activation(h)
    last = net.hidden_layers
    w_bin = binary_weights(net.params[f"w{last}"])
    z = x @ w_bin.T
    alpha = np.exp(net.params["log_alpha"])
    logits = alpha * z
    loss, dlogits = classification_loss(logits, labels, teacher_logits, distillation)

    grads = {"log_alpha": np.array([(dlogits * logits).sum()], np.float32)}
    dz = dlogits * alpha
    grads[f"w{last}"] = dz.T @ x
    dx = dz @ w_bin
    for k in reversed(range(last)):
        x_in, w_bin, h, bn_cache = caches[k]
        dh = dx * sign_gradient(h, net.grad)
        da, grads[f"gamma{k}"], grads[f"beta{k}"] = batchnorm_backward(dh, bn_cache)
        dz = da / np.float32(net.layer_scale(k))
        # Straight-through on the weights' sign: latent weights stay in [-1, 1] (clip_weights),
        # where the clipped estimator passes the gradient unchanged.
        grads[f"w{k}"] = dz.T @ x_in
        if k:
            dx = dz @ w_bin
    return loss, logits, grads


def clip_weights(net):
    """Clip the latent weights to [-1, 1] (after every optimiser step)."""
    for k in range(len(net.arch) - 1):
        np.clip(net.params[f"w{k}"], -1, 1, out=net.params[f"w{k}"])


@dataclass
class EvaluatedBatch:
    """Evaluation-mode results for ``B`` images: ``hidden[k]`` is ``(B, n_k)`` bool (True = +1),
    ``scores`` the output layer's integer ``z`` (``(B, classes)`` int64), ``logits`` float64."""

    hidden: list
    scores: np.ndarray
    logits: np.ndarray

    @property
    def classes(self):
        return np.argmax(self.scores, axis=1)


def integer_preactivations(x, latent):
    """``x @ sign(latent).T`` as int64 (exact: operands are integers and sums stay below 2**24)."""
    return (x @ binary_weights(latent).T).astype(np.int64)


def evaluate_binary(net, pixels):
    """Run ``net`` in evaluation mode (batch norm with ``net.stats``) on raw ``pixels``."""
    x, hidden = net.encode(pixels), []
    for k in range(net.hidden_layers):
        z = integer_preactivations(x, net.params[f"w{k}"])
        fires = hidden_fires(z, net.layer_scale(k), net.stats[f"mean{k}"], net.stats[f"var{k}"],
                             net.params[f"gamma{k}"], net.params[f"beta{k}"])
        hidden.append(fires)
        x = np.where(fires, np.float32(1), np.float32(-1))
    scores = integer_preactivations(x, net.params[f"w{net.hidden_layers}"])
    logits = float(np.exp(np.float64(net.params["log_alpha"][0]))) * scores
    return EvaluatedBatch(hidden, scores, logits)


def _layer_inputs(net, k, chunks, previous):
    """Hidden layer ``k``'s float input, chunk by chunk: encoded pixels for ``k == 0``, else the
    previous layer's outputs (``previous``, bool per chunk) as -1/+1."""
    for j, pixels in enumerate(chunks):
        yield net.encode(pixels) if k == 0 else np.where(previous[j], np.float32(1), np.float32(-1))


def recalibrate_batchnorm(net, pixels, chunk=4096):
    """Set the evaluation statistics to the exact mean and variance of each hidden layer's ``a`` over ``pixels``.

    Layer by layer: layer ``k`` sees the outputs of layers ``0..k-1`` in evaluation mode with their
    new statistics. Exact population statistics give steadier thresholds than a running average
    of the last few batches would.
    """
    chunks = [pixels[i:i + chunk] for i in range(0, len(pixels), chunk)]
    previous = None
    for k in range(net.hidden_layers):
        latent, scale = net.params[f"w{k}"], net.layer_scale(k)
        total = total_sq = 0.0
        for x in _layer_inputs(net, k, chunks, previous):
            z = integer_preactivations(x, latent).astype(np.float64)
            total = total + z.sum(axis=0)
            total_sq = total_sq + (z * z).sum(axis=0)
        mean_z = total / len(pixels)
        net.stats[f"mean{k}"] = mean_z / scale
        net.stats[f"var{k}"] = np.maximum(total_sq / len(pixels) - mean_z * mean_z, 0) / scale ** 2
        bn = (scale, net.stats[f"mean{k}"], net.stats[f"var{k}"], net.params[f"gamma{k}"], net.params[f"beta{k}"])
        previous = [hidden_fires(integer_preactivations(x, latent), *bn)
                    for x in _layer_inputs(net, k, chunks, previous)]


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


def save_teacher(teacher, path):
    """Write ``teacher`` as an uncompressed ``.npz``.

    Entries: ``format`` (the string ``"bnn-teacher"``), ``version`` (1), ``arch`` (int64 layer
    sizes), ``input_scale`` (the pixel divisor, the data set's ``max_value``), and per layer ``k``
    ``w{k}`` ``(fan_out, fan_in)`` and ``b{k}`` ``(fan_out,)`` float32.
    """
    arrays = {"format": np.array(TEACHER_FORMAT), "version": np.array(TEACHER_VERSION),
              "arch": np.array(teacher.arch, np.int64), "input_scale": np.array(teacher.input_scale)}
    arrays.update(teacher.params)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _teacher_entry(archive, name, path):
    if name not in archive.files:
        raise TeacherFileError(f"{path}: teacher file lacks the '{name}' entry")
    return archive[name]


def _read_teacher(archive, path):
    fmt = _teacher_entry(archive, "format", path)
    if fmt.shape != () or str(fmt) != TEACHER_FORMAT:
        raise TeacherFileError(f"{path}: not a teacher file (format {fmt!r})")
    version = _teacher_entry(archive, "version", path)
    if version.shape != () or int(version) != TEACHER_VERSION:
        raise TeacherFileError(f"{path}: teacher format version {version} is not supported "
                               f"(this tool reads version {TEACHER_VERSION})")
    arch = _teacher_entry(archive, "arch", path)
    if arch.ndim != 1 or len(arch) < 2 or arch.dtype.kind not in "iu" or arch.min() < 1:
        raise TeacherFileError(f"{path}: teacher arch must be at least two positive sizes, not {arch.tolist()}")
    scale = _teacher_entry(archive, "input_scale", path)
    if scale.shape != () or scale.dtype.kind not in "iu" or int(scale) < 1:
        raise TeacherFileError(f"{path}: teacher input_scale must be a positive integer, not {scale!r}")
    arch = tuple(int(n) for n in arch)
    params = {}
    for k, (fan_in, fan_out) in enumerate(zip(arch[:-1], arch[1:])):
        for name, shape in ((f"w{k}", (fan_out, fan_in)), (f"b{k}", (fan_out,))):
            value = _teacher_entry(archive, name, path)
            if value.shape != shape or value.dtype.kind != "f":
                raise TeacherFileError(f"{path}: teacher {name} must be float of shape {shape}, "
                                       f"not {value.dtype} {value.shape}")
            if not np.all(np.isfinite(value)):
                raise TeacherFileError(f"{path}: teacher {name} holds non-finite values")
            params[name] = value.astype(np.float32)
    return TeacherNetwork(arch, int(scale), params)


def load_teacher(path):
    """Read and validate a teacher saved by :func:`save_teacher`; :class:`TeacherFileError` if bad."""
    if not os.path.isfile(path):
        raise TeacherFileError(f"{path}: no such teacher file")
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile)
    try:
        archive = np.load(path, allow_pickle=False)
    except unreadable as e:
        raise TeacherFileError(f"{path}: not a teacher file ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise TeacherFileError(f"{path}: not a teacher file (a single .npy array, not an .npz archive)")
    with archive:
        try:
            return _read_teacher(archive, path)
        except unreadable as e:
            raise TeacherFileError(f"{path}: damaged teacher file ({e})") from None


def check_teacher(teacher, dataset):
    """Check that ``teacher`` takes ``dataset``'s images and predicts its classes."""
    if teacher.arch[0] != dataset.input_size or teacher.arch[-1] != dataset.classes:
        raise TeacherFileError(f"teacher {arch_name(teacher.arch)} does not fit {dataset.name} "
                               f"({dataset.input_size} inputs, {dataset.classes} classes)")
    if teacher.input_scale != dataset.max_value:
        raise TeacherFileError(f"teacher was trained on pixels up to {teacher.input_scale} but "
                               f"{dataset.name} pixels reach {dataset.max_value}")


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


def _offset_index(dy, dx, max_shift):
    side = 2 * max_shift + 1
    return (dy + max_shift) * side + (dx + max_shift)


def _teacher_table(teacher, images, shape, max_shift, chunk=2048):
    """The teacher's logits for every training image at every offset, ``(offsets, n, classes)``.

    Computed once, so that distillation costs no teacher pass per batch; indexed by
    :func:`_offset_index`.
    """
    n, side = len(images), 2 * max_shift + 1
    table = np.empty((side * side, n, teacher.arch[-1]), np.float32)
    for oy in range(-max_shift, max_shift + 1):
        for ox in range(-max_shift, max_shift + 1):
            row = table[_offset_index(oy, ox, max_shift)]
            for start in range(0, n, chunk):
                part = images[start:start + chunk]
                shifted = translate(part, shape, np.full(len(part), oy), np.full(len(part), ox))
                row[start:start + chunk] = teacher_logits(teacher, shifted)
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
    eval_logits: object     # (net, pixels) -> logits
    after_step: object      # (net) -> None
    after_epoch: object     # (net, training pixels) -> None, before the validation pass


_BINARY = _Trainee(binary_loss_and_grads, lambda net, x: evaluate_binary(net, x).logits, clip_weights,
                   recalibrate_batchnorm)
_TEACHER = _Trainee(teacher_loss_and_grads, teacher_logits, lambda net: None, lambda net, x: None)


def _snapshot(net):
    return {k: v.copy() for k, v in net.params.items()}, {k: v.copy() for k, v in net.stats.items()}


def _restore(net, snapshot):
    net.params, net.stats = snapshot


def _fit(net, trainee, data, settings, rng, *, teacher=None, distillation=None, desc="train", progress=True):
    """Train ``net`` in place with Adam and keep the epoch with the best validation accuracy
    (the latest of equally good epochs).

    ``data`` is ``(train_images, train_labels, val_images, val_labels, image_shape)``.
    """
    images, labels, val_images, val_labels, shape = data
    start = time.perf_counter()
    n = len(images)
    steps_per_epoch = -(-n // settings.batch_size)
    total_steps = settings.epochs * steps_per_epoch
    adam = Adam(net.params)
    history, best, best_epoch, step = [], None, 0, 0
    soft_table = _teacher_table(teacher, images, shape, settings.max_shift) if teacher is not None else None
    # bars on a terminal only (None: tqdm asks whether stderr is one), never into a redirected log
    bars = None if progress else True
    epochs = tqdm(range(1, settings.epochs + 1), desc=desc, unit="epoch", disable=bars, leave=False)
    for epoch in epochs:
        order = rng.permutation(n)
        loss_sum = correct = 0.0
        batches = tqdm(range(steps_per_epoch), desc=f"epoch {epoch}", unit="batch", disable=bars,
                       leave=False)
        for b in batches:
            idx = order[b * settings.batch_size:(b + 1) * settings.batch_size]
            dy, dx = random_offsets(len(idx), settings.max_shift, rng)
            batch = translate(images[idx], shape, dy, dx) if settings.max_shift else images[idx]
            soft = soft_table[_offset_index(dy, dx, settings.max_shift), idx] if teacher is not None else None
            # a learning rate too high for the network overflows: the loss says so below, as one error
            with np.errstate(over="ignore", invalid="ignore"):
                loss, logits, grads = trainee.loss_and_grads(net, batch, labels[idx], soft, distillation)
            if not np.isfinite(loss):
                raise TrainingError(f"the training loss became {loss} in epoch {epoch}: the learning rate "
                                    f"({settings.lr}) is too high for this network")
            with np.errstate(over="ignore", invalid="ignore"):
                adam.step(net.params, grads, cosine_lr(settings.lr, step, total_steps))
                trainee.after_step(net)
            step += 1
            loss_sum += loss * len(idx)
            correct += np.count_nonzero(np.argmax(logits, axis=1) == labels[idx])
        with np.errstate(over="ignore", invalid="ignore"):
            trainee.after_epoch(net, images)
            val_logits = trainee.eval_logits(net, val_images)
            val_loss, _ = classification_loss(val_logits, val_labels)
        if not np.isfinite(val_loss) or not all(np.isfinite(p).all() for p in net.params.values()):
            raise TrainingError(f"the network diverged in epoch {epoch} (validation loss {val_loss}): the "
                                f"learning rate ({settings.lr}) is too high for this network")
        val_accuracy = float(np.mean(np.argmax(val_logits, axis=1) == val_labels))
        history.append(EpochRecord(epoch, loss_sum / n, float(correct / n), val_loss, val_accuracy))
        epochs.set_postfix(loss=f"{loss_sum / n:.3f}", val_acc=f"{val_accuracy:.4f}")
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


def train_teacher(data, arch, max_value, settings, rng, progress=True):
    """Train a :class:`TeacherNetwork` of ``arch`` on ``data`` (see :func:`split_validation`)."""
    teacher = init_teacher(arch, max_value, rng)
    return _fit(teacher, _TEACHER, data, settings.check(), rng, desc="teacher", progress=progress)


def train_binary(data, net, settings, rng, *, teacher=None, distillation=None, progress=True):
    """Train the :class:`BinaryNetwork` ``net``, distilling from ``teacher`` when given."""
    if teacher is not None:
        distillation = (distillation or Distillation()).check()
    return _fit(net, _BINARY, data, settings.check(), rng, teacher=teacher, distillation=distillation,
                desc="student", progress=progress)


def accuracy(predicted, labels):
    return float(np.mean(predicted == labels))
