"""Deliberately naive implementations for the tests of :mod:`crossent.testing` and of
``crossent accuracy --impl`` (``tests/_naive_impl.py:naive_cross_entropy``).

Each is the formula of a textbook, evaluated in the input's precision with NumPy, with the
error a careful implementation avoids:

``naive_logsumexp``
    ``log(sum(exp(x)))`` without the max shift: overflows to inf for logits above ~709
    (float64), and loses small terms.
``naive_cross_entropy``
    ``-log(softmax(x)[y])`` with a max-shifted softmax: a confident row's ``p_y`` rounds to 1
    and the loss to 0 (its exact value is about ``(K-1) e^-d``, down to 1e-300).
``dropped_shift_cross_entropy``
    ``lse - x_y`` in float64 with ``lse = m + log(sum(exp(x - m)))`` rounded first: the
    rounding error of ``m + log S`` is dropped instead of carried into the difference, so the
    loss is right for moderate values and wrong in every digit when it is tiny next to
    ``|m|`` (a confident row: ``log(1 + 1e-20)`` is 0; an offset of 1e300: ``log S`` is
    absorbed by ``m``).
``naive_softmax``
    ``exp(x) / sum(exp(x))`` without the shift (inf/inf = nan for large logits).

All take crossent's signatures (NumPy in and out; ``axis`` moved last; ``weight``,
``ignore_index`` and ``label_smoothing`` supported where a case needs them, so that the
measurement sees the numerics and not missing options).
"""

from __future__ import annotations

import numpy as np


def naive_logsumexp(x, axis=-1):
    x = np.asarray(x)
    with np.errstate(over="ignore", divide="ignore"):
        return np.log(np.sum(np.exp(x), axis=axis)).astype(x.dtype)


def naive_softmax(x, axis=-1):
    x = np.asarray(x)
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(x)
        return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


def _targets(x, target, ignore_index, label_smoothing):
    """(rows with the class axis last, per-row target distribution, kept mask)."""
    c = x.shape[-1]
    t = np.asarray(target)
    if t.dtype.kind == "f":
        probs = t.reshape(-1, c).astype(np.float64)
        keep = np.ones(probs.shape[0], dtype=bool)
    else:
        flat = t.reshape(-1)
        keep = flat != ignore_index
        probs = np.zeros((flat.size, c))
        probs[np.flatnonzero(keep), flat[keep]] = 1.0
    if label_smoothing:
        probs = (1.0 - label_smoothing) * probs + label_smoothing / c
    return probs, keep


def _loss(log_p_rows, x, target, axis, weight, ignore_index, reduction, label_smoothing,
          dtype):
    c = x.shape[-1]
    t = np.asarray(target)
    if t.dtype.kind == "f":
        t = np.moveaxis(t, axis, -1)
    probs, keep = _targets(x, t, ignore_index, label_smoothing)
    w = np.ones(c) if weight is None else np.asarray(weight, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        per = -np.sum(np.where(probs > 0, probs * w * log_p_rows, 0.0), axis=-1)
    per = np.where(keep, per, 0.0)
    items = x.shape[:-1]
    if reduction == "none":
        return per.reshape(items).astype(dtype)
    if reduction == "sum":
        return dtype.type(per.sum())
    if t.dtype.kind == "f":
        return dtype.type(per.sum() / per.size)
    flat = t.reshape(-1)
    denom = np.sum(np.where(keep, w[np.where(keep, flat, 0)], 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return dtype.type(per.sum() / denom)


def naive_cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                        reduction="mean", label_smoothing=0.0):
    """``-log(softmax(x))`` with the softmax rounded first, in the input's precision."""
    x = np.moveaxis(np.asarray(logits), axis, -1)
    dt = x.dtype
    with np.errstate(all="ignore"):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        p = e / np.sum(e, axis=-1, keepdims=True)  # rounded in the input's precision
        log_p = np.log(p).astype(np.float64).reshape(-1, x.shape[-1])
    return _loss(log_p, x, target, axis, weight, ignore_index, reduction, label_smoothing, dt)


def dropped_shift_cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                                reduction="mean", label_smoothing=0.0):
    """``lse(x) - x`` in float64 with ``lse`` rounded before the difference."""
    x = np.moveaxis(np.asarray(logits), axis, -1)
    dt = x.dtype
    x64 = x.astype(np.float64).reshape(-1, x.shape[-1])
    with np.errstate(all="ignore"):
        m = np.max(x64, axis=-1, keepdims=True)
        lse = m + np.log(np.sum(np.exp(x64 - m), axis=-1, keepdims=True))
        log_p = x64 - lse
    return _loss(log_p, x, target, axis, weight, ignore_index, reduction, label_smoothing, dt)
