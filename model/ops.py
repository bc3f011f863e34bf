"""Layer operations of the float networks: forward and backward passes as pure functions.

Each function takes NumPy arrays and returns new ones (or writes only into arrays it made); none
keeps state or draws random numbers, so the student (:mod:`model.student`), the teacher
(:mod:`model.teacher`) and the training loop (:mod:`model.train`) compute the same values from
the same inputs wherever they call them. Training arrays are float32; :func:`hidden_fires`, the
evaluation mode, computes in float64.

Signs: sign(0) = +1 for weights (:func:`binary_weights`, as :mod:`model.bits`) and activations
(:func:`sign_activation`). The activations' sign passes the gradient through the straight-through
estimator with clipping (``1`` where ``|h| <= 1``, ``grad="ste"``) or the ApproxSign derivative
(``2 - 2|h|`` where ``|h| <= 1``, ``grad="approxsign"``), :data:`GRADS`. Batch norm
(:func:`batchnorm_forward`) uses :data:`BN_EPS`. A 2 x 2 max-pool (:func:`max_pool_forward`) sends
the gradient to the first of each window's largest values, in :func:`model.layers.pool_quarters`'
order. :func:`classification_loss` is the mean cross-entropy, mixed with the distillation term
when given a teacher's logits.
"""

import numpy as np

from .bits import sign_bits
from .errors import TrainingError
from .layers import pool_quarters

BN_EPS = 1e-5
GRADS = ("ste", "approxsign")


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
    """Surrogate derivative of sign at ``h``: STE with clipping or ApproxSign (see the module docstring)."""
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
    :func:`model.student.firing_thresholds`, so both agree on every input. For each output the result is
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
