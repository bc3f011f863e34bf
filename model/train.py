"""Training in NumPy: the settings of a run, Adam, augmentation, and the fit loop for the student
(:mod:`model.student`) and the teacher (:mod:`model.teacher`), with distillation.

:func:`train_binary` and :func:`train_teacher` train a network on the ``data`` of
:func:`split_validation` with :class:`TrainSettings` and return a :class:`FitResult`: the network
of the best validation epoch. Architecture strings are :mod:`model.arch`'s, the layer operations
:mod:`model.ops`'.

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
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from .datasets import stratified_split
from .errors import TrainingError
from .ops import classification_loss
from .student import binary_loss_and_grads, clip_weights, evaluate_binary, pool_map, recalibrate_batchnorm
from .teacher import init_teacher, teacher_logits, teacher_loss_and_grads


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
    results = pool_map(pool, part, pieces)
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
    """Train a :class:`model.teacher.TeacherNetwork` of ``arch`` on ``data`` (see :func:`split_validation`)."""
    teacher = init_teacher(arch, max_value, rng)
    return _fit(teacher, _TEACHER, data, settings.check(), rng, desc="teacher", progress=progress, threads=threads)


def train_binary(data, net, settings, rng, *, teacher=None, distillation=None, progress=True, threads=None):
    """Train the :class:`model.student.BinaryNetwork` ``net``, distilling from ``teacher`` when given; ``threads``
    as :func:`_fit` takes them."""
    if teacher is not None:
        distillation = (distillation or Distillation()).check()
    return _fit(net, _BINARY, data, settings.check(), rng, teacher=teacher, distillation=distillation,
                desc="student", progress=progress, threads=threads)


def accuracy(predicted, labels):
    return float(np.mean(predicted == labels))
