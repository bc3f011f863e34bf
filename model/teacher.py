"""The teacher: a full-precision MLP that the student can learn from (distillation).

A full-precision MLP (ReLU hidden layers with biases, input ``pixel / max_value``) trained with
cross-entropy. The student then learns from ``(1 - w) * CE(labels) + w * T**2 * KL(teacher_T ||
student_T)`` where ``_T`` is the softmax at temperature ``T``. Teachers are saved in the format
of :mod:`model.teacherfile`.

Contract: :func:`init_teacher` draws from the ``rng`` it is given and from nothing else;
:func:`teacher_loss_and_grads` has the signature of :func:`model.student.binary_loss_and_grads`, so
the training loop (:mod:`model.train`) takes both network kinds alike.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from .ops import classification_loss


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
