"""The softmax cross-entropy loss and its fused gradient: validated, reshaped, dispatched to
:mod:`crossent.kernels.softmax`. Semantics follow ``torch.nn.functional.cross_entropy``."""

from __future__ import annotations

import functools
import numbers

import numpy as np

from ._partial import SCALE_BITS, exact_label_weight_sum, partial_of, round_ratio
from ._validate import as_float_array, compute_dtype, normalize_axis, parallel_guard, to_rows
from .kernels import softmax as _k

__all__ = ["cross_entropy", "cross_entropy_value_and_grad"]

_REDUCTIONS = ("none", "mean", "sum", "partial")


class _Problem:
    """Validated inputs of one call, as C-contiguous ``(rows, C)`` arrays."""

    def __init__(self, logits, target, axis, weight, ignore_index, reduction, label_smoothing):
        a = as_float_array(logits, "logits")
        if a.ndim == 0:
            raise ValueError("logits must have at least one dimension (the class axis), got a 0-d array")
        ax = normalize_axis(axis, a.ndim, "axis")
        C = a.shape[ax]
        if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
            raise TypeError(f"label_smoothing must be a real number, got {label_smoothing!r}")
        eps = float(label_smoothing)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
        if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
            raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}")
        if not -(2**63) <= int(ignore_index) < 2**63:  # the kernels compare it as an int64
            raise ValueError(f"ignore_index must fit in an int64, got {int(ignore_index)}")
        self.dtype = a.dtype
        # a narrow output is rounded from float64: the per-item losses are rounded to odd
        # first (only for reduction='none': a sum is rounded from its double-double)
        self.odd = a.dtype != np.float64 and reduction == "none"
        # float32/float16 inputs: the kernels' fast path (short exp, no error terms), which is
        # accurate to about 2**-45 relative: enough for a narrow output
        self.fast = a.dtype != np.float64
        self.axis = ax
        self.C = C
        self.eps = eps
        self.reduction = reduction
        self.ignore_index = int(ignore_index)
        self.batch_shape = a.shape[:ax] + a.shape[ax + 1:]
        self.x = to_rows(a.astype(compute_dtype(a.dtype), copy=False), ax)
        self.logits = a

        # weight: per-class, finite, non-negative
        if weight is None:
            self.weight = np.ones(1, dtype=np.float64)
            self.has_weight = False
        else:
            w = as_float_array(weight, "weight").astype(np.float64)
            if w.shape != (C,):
                raise ValueError(f"weight must have shape ({C},) (one entry per class), got {w.shape}")
            bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
            if bad.size:
                raise ValueError(f"weight must be finite and non-negative; weight[{bad[0]}] = {w[bad[0]]}")
            self.weight = np.ascontiguousarray(w)
            self.has_weight = True

        t = target if isinstance(target, np.ndarray) else np.asarray(target)
        if t.dtype.kind in "iu":
            self.labels_mode = True
            if t.shape != self.batch_shape:
                raise ValueError(
                    f"target holds class indices, so its shape must be logits.shape without axis "
                    f"{ax}: expected {self.batch_shape}, got {t.shape}"
                )
            flat = t.reshape(-1)
            if flat.dtype == np.uint64 and flat.size and flat.max() > np.iinfo(np.int64).max:
                i = int(np.argmax(flat))
                raise ValueError(f"target[{i}] = {flat[i]} is not a class index in [0, {C})")
            lab = flat.astype(np.int64)
            bad = np.flatnonzero(((lab < 0) | (lab >= C)) & (lab != self.ignore_index))
            if bad.size:
                i = int(bad[0])
                where = ", ".join(str(int(j)) for j in np.unravel_index(i, t.shape))
                raise ValueError(
                    f"target[{where}] = {lab[i]} is not "
                    f"a class index in [0, {C}) nor ignore_index={self.ignore_index}"
                )
            self.target = np.ascontiguousarray(lab)
        elif t.dtype.kind == "f":
            self.labels_mode = False
            tf = as_float_array(t, "target")
            if tf.shape != a.shape:
                hint = (
                    "; class indices need an integer dtype" if tf.shape == self.batch_shape else ""
                )
                raise ValueError(
                    f"target has dtype {t.dtype}, so it holds probabilities and must have the shape of "
                    f"logits {a.shape}, got {tf.shape}{hint}"
                )
            bad = np.flatnonzero(~(np.isfinite(tf) & (tf >= 0)).reshape(-1))
            if bad.size:
                i = np.unravel_index(int(bad[0]), tf.shape)
                where = ", ".join(str(int(j)) for j in i)
                raise ValueError(f"target probabilities must be finite and non-negative; target[{where}] = {tf[i]}")
            self.target = to_rows(tf.astype(np.float64), ax)
        else:
            raise TypeError(
                f"target must hold integer class indices or float probabilities, got dtype {t.dtype}"
            )

    # -- helpers -------------------------------------------------------------------------
    @functools.cached_property
    def weight_total(self) -> int:
        """The exact divisor of the mean, in units of 2**-1074: the sum of weight[y_n] over the
        non-ignored items (class indices) or the number of items (probabilities)."""
        if not self.labels_mode:
            return self.x.shape[0] << SCALE_BITS
        return exact_label_weight_sum(self.target, self.weight, self.has_weight, self.ignore_index)

    @functools.cached_property
    def denominator(self) -> float:
        """The divisor of the mean (1 for the other reductions), the exact one rounded once."""
        if self.reduction != "mean":
            return 1.0
        return float(round_ratio(self.weight_total, 1 << SCALE_BITS, np.float64))

    def reduce(self, losses: np.ndarray):
        """Reduce float64 per-row losses: exact sums (order-independent), rounded once."""
        dt = self.dtype
        if self.reduction == "none":
            return losses.reshape(self.batch_shape).astype(dt)
        weight = 0 if self.reduction == "sum" else self.weight_total
        part = partial_of(losses, weight, dt, "weight" if self.labels_mode else "count")
        if self.reduction == "partial":
            return part
        return part.sum() if self.reduction == "sum" else part.mean()


def _losses(p: _Problem) -> np.ndarray:
    out = np.empty(p.x.shape[0], dtype=np.float64)
    if p.x.shape[0] == 0:
        return out
    if p.labels_mode:
        with parallel_guard():
            _k.cross_entropy_labels_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index, p.eps,
                                         p.odd, p.fast, out)
    else:
        with parallel_guard():
            _k.cross_entropy_probs_rows(p.x, p.target, p.weight, p.has_weight, p.eps, p.odd, p.fast,
                                        out)
    return out


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    r"""Softmax cross-entropy between logits and a target, accurate to a few ulp.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities, shape ``(N, d1, ..., C)`` with the classes on
        ``axis`` (float16, float32 or float64; integers become float64).
    target : array_like
        Either integer class indices with the shape of ``logits`` without ``axis``, or float
        probabilities with the shape of ``logits``.
    axis : int, optional
        The class axis (default: the last).
    weight : array_like, optional
        Per-class weights, shape ``(C,)``, finite and non-negative.
    ignore_index : int, optional
        Class-index targets equal to this value contribute nothing (default -100).
    reduction : {'mean', 'sum', 'none', 'partial'}, optional
        ``'mean'`` divides the weighted sum by :math:`\sum_n w_{y_n}` over non-ignored items
        (class indices) or by the number of items (probabilities); all items ignored gives
        nan, as PyTorch. ``'sum'`` and ``'mean'`` are computed from exact sums of the
        per-item values (and of the weights), rounded once: the bits do not depend on the
        row order, the thread count or the batch split. ``'partial'`` returns those exact
        sums as a :class:`crossent.Partial`, to be added to the partials of other batches.
    label_smoothing : float, optional
        :math:`\varepsilon \in [0, 1]`: the target becomes
        :math:`(1-\varepsilon)\,t + \varepsilon / C`.

    Returns
    -------
    ndarray, numpy scalar or Partial
        The loss in the dtype of ``logits``: per item for ``'none'``, a scalar for ``'sum'``
        and ``'mean'``, a :class:`crossent.Partial` for ``'partial'``.

    Notes
    -----
    For one item with logits :math:`z`, :math:`m = \max_i z_i` and
    :math:`s = \sum_i e^{z_i - m} - 1`,

    .. math:: -\log\sigma(z)_y = (m - z_y) + \operatorname{log1p}(s),

    a sum of two non-negative terms: nothing cancels, so a confident prediction whose true
    loss is 1e-20 gets 1e-20 (PyTorch, JAX and SciPy return 0). With soft targets
    :math:`a_c = w_c t_c`, the loss :math:`\sum_c a_c(-\log\sigma(z)_c)` is a sum of
    non-negative terms, summed in double-double. The mean and sum are the exact sum of the
    float64 per-item losses (divided by the exact sum of the weights) rounded once
    (``docs/reductions.md``): their error is that of the per-item losses plus one rounding.

    Accuracy (``crossent._bounds``): per-item loss and mean/sum within 3 ulp in float64;
    within 1 ulp and correctly rounded in practice in float32/float16 (computed in
    float64 inside). -inf logits mask classes; a target class whose logit is -inf gives
    +inf; a row with nan or +inf, or with only -inf, gives nan.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> logits = np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    >>> crossent.cross_entropy(logits, np.array([0, 2]), reduction="none").tolist()
    [3.8574996959278356e-22, 0.4076059644443803]
    """
    p = _Problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing)
    return p.reduce(_losses(p))


def cross_entropy_value_and_grad(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                                 reduction="mean", label_smoothing=0.0, out=None):
    r"""The loss of :func:`cross_entropy` and its gradient in the logits, in one pass.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, reduction, label_smoothing
        As for :func:`cross_entropy`.
    out : ndarray, optional
        Where to write the gradient: the shape and dtype of ``logits``, writeable. It may
        be ``logits`` itself (in place).

    Returns
    -------
    loss : ndarray, numpy scalar or Partial
        As :func:`cross_entropy`.
    dlogits : ndarray
        The gradient of the reduced loss (of the sum of the per-item losses for
        ``reduction='none'`` and ``'partial'``: divide it by the total weight of all the
        batches for the gradient of their mean) with respect to ``logits``; ``out`` if given.

    Notes
    -----
    .. math:: \frac{\partial}{\partial z_i} \sum_c a_c\,(-\log\sigma(z)_c) = A\,\sigma(z)_i - a_i,
              \qquad A = \sum_c a_c,

    divided by the mean's denominator (the exact sum of the weights, rounded once). For
    one-hot targets the entry at the label is computed as :math:`-w_y (S - e^{z_y - m}) / S`
    (no cancellation, even when :math:`\sigma(z)_y \approx 1`). Accuracy: float64 entries
    within 4 ulp for one-hot targets; with soft targets :math:`A\sigma_i - a_i` cancels
    where they are close, and the error is a few ulp of :math:`A\sigma_i` and of :math:`a_i`.
    Ignored items get a zero gradient row. Memory: only the gradient is allocated (none
    when ``out`` is given and the class axis is last and contiguous).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> loss, g = crossent.cross_entropy_value_and_grad(np.array([[0.0, 0.0]]), np.array([1]))
    >>> float(loss), g.tolist()
    (0.6931471805599453, [[0.5, -0.5]])
    """
    p = _Problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing)
    a = p.logits
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
        # the byte order of out may differ (a big-endian out gets the values through a cast)
        if out.shape != a.shape or out.dtype.newbyteorder("=") != a.dtype:
            raise ValueError(
                f"out must have the shape and dtype of logits {a.shape} {a.dtype}, got {out.shape} {out.dtype}"
            )
        if not out.flags.writeable:
            raise ValueError("out must be writeable")
    # write straight into out when it can hold the (rows, C) layout; else into a buffer
    direct = (
        out is not None
        and p.axis == a.ndim - 1
        and out.flags.c_contiguous
        and out.dtype != np.float16
        and out.dtype.isnative
    )
    if direct:
        grad = out.reshape(p.x.shape)  # may alias p.x (in place): the kernel allows it
    else:
        work = np.float64 if a.dtype == np.float16 else a.dtype
        grad = np.empty(p.x.shape, dtype=work)
    losses = np.empty(p.x.shape[0], dtype=np.float64)
    den = p.denominator
    if p.x.shape[0]:
        if p.labels_mode:
            with parallel_guard():
                _k.cross_entropy_labels_grad_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index,
                                                  p.eps, den, p.odd, p.fast, losses, grad)
        else:
            with parallel_guard():
                _k.cross_entropy_probs_grad_rows(p.x, p.target, p.weight, p.has_weight, p.eps, den,
                                                 p.odd, p.fast, losses, grad)
    loss = p.reduce(losses)
    if direct:
        return loss, out
    moved = np.moveaxis(a, p.axis, -1).shape
    g = np.moveaxis(grad.reshape(moved), -1, p.axis)
    if out is None:
        return loss, g.astype(a.dtype, copy=False)
    out[...] = g.astype(a.dtype, copy=False)  # float64 -> float16 rounds once (NumPy's cast)
    return loss, out
