"""The sigmoid (binary) cross-entropy with logits, ``softplus`` and ``log_sigmoid``: validated,
flattened, dispatched to :mod:`crossent.kernels.binary`. Semantics follow
``torch.nn.functional.binary_cross_entropy_with_logits``."""

from __future__ import annotations

import numpy as np

from . import _rounding
from ._partial import SCALE_BITS, partial_of
from ._validate import as_float_array, binary_inputs, cast_result, parallel_guard, scalar_if_0d
from .kernels import binary as _k

__all__ = ["binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_value_and_grad",
           "log_sigmoid", "softplus"]


def _flat(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


def _run(logits, target, weight, pos_weight, reduction, grad):
    v = binary_inputs(logits, target, weight, pos_weight, reduction)
    a = v.logits
    dt = a.dtype
    x, t, w, pw = _flat(a), _flat(v.target), _flat(v.weight), _flat(v.pos_weight)
    odd = dt != np.float64 and v.reduction == "none"  # a narrow output rounds once more
    losses = np.empty(x.size)
    g = None
    if _rounding.correct(dt):
        _correctly_rounded("binary_cross_entropy_with_logits", losses, x,
                           lambda: _k.bce_rows_cr(x, t, w, pw, _k.BCE_CR_REL_ERR, losses),
                           lambda i: _reference().binary_cross_entropy_with_logits(
                               x[i], t[i], weight=w[i], pos_weight=pw[i], reduction="none"))
        if grad:
            n = x.size if v.reduction == "mean" else 1
            g = np.empty(x.size)
            _correctly_rounded(
                "binary_cross_entropy_with_logits_value_and_grad", g, x,
                lambda: _k.bce_grad_rows_cr(x, t, w, pw, float(n), _k.BCE_GRAD_CR_ERR, g),
                lambda i: _reference().binary_cross_entropy_with_logits_value_and_grad(
                    x[i], t[i], weight=w[i], pos_weight=pw[i], reduction="none",
                    grad_divisor=n)[1])
            g = g.reshape(a.shape)
    elif grad:
        g = np.empty(x.size)
        scale = float(x.size) if v.reduction == "mean" else 1.0
        if x.size:
            with parallel_guard():
                _k.bce_grad_rows(x, t, w, pw, scale, odd, losses, g)
        g = cast_result(g.reshape(a.shape), dt)
    elif x.size:
        with parallel_guard():
            _k.bce_rows(x, t, w, pw, odd, losses)
    if v.reduction == "none":
        loss = scalar_if_0d(cast_result(losses.reshape(a.shape), dt))
    else:
        part = partial_of(losses, x.size << SCALE_BITS, dt, "count")
        loss = part if v.reduction == "partial" else (
            part.sum() if v.reduction == "sum" else part.mean())
    return loss, g


def _reference():
    from . import reference  # the correctly rounded path's slow path only

    return reference


def _correctly_rounded(name, out, x, kernel, oracle):
    """The correctly rounded float64 path (``crossent._rounding``): the kernel leaves nan
    where its error bound cannot decide the rounding (and where the value is nan), the
    oracle recomputes those elements."""
    if x.size:
        with parallel_guard():
            kernel()
    idx = np.flatnonzero(np.isnan(out))
    _rounding.count(name, x.size, idx.size)
    if idx.size:
        out[idx] = np.asarray(oracle(idx), dtype=np.float64).reshape(-1)


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None,
                                     reduction="mean"):
    r"""Sigmoid cross-entropy between logits and targets in [0, 1], accurate to a few ulp.

    Parameters
    ----------
    logits : array_like
        Logits :math:`x` of any shape (float16, bfloat16, float32 or float64; integers become float64).
    target : array_like
        Targets :math:`t \in [0, 1]` (soft targets allowed), the shape of ``logits``.
    weight : array_like, optional
        Per-element weights :math:`w \ge 0`, broadcastable to the shape of ``logits``.
    pos_weight : array_like, optional
        Weights :math:`p \ge 0` of the positive term, broadcast over the last axis (shape
        ``(C,)`` for logits ``(..., C)``), as PyTorch.
    reduction : {'mean', 'sum', 'none', 'partial'}, optional
        ``'mean'`` divides the sum by the number of elements (not by the weights, as
        PyTorch); sums and means are exact sums of the per-element values rounded once;
        ``'partial'`` returns the exact sums as a :class:`crossent.Partial`.

    Returns
    -------
    ndarray, numpy scalar or Partial
        The loss in the dtype of ``logits``.

    Notes
    -----
    With :math:`\operatorname{softplus}(x) = \log(1 + e^x)`,

    .. math:: \ell = w\,[\,p\,t\,\operatorname{softplus}(-x) + (1 - t)\operatorname{softplus}(x)\,],

    which equals PyTorch's :math:`(1-t)x + (1 + (p-1)t)\operatorname{softplus}(-x)` but is a
    sum of two non-negative terms: for :math:`t = 1`, :math:`x = 40` it gives
    :math:`4.2\cdot10^{-18}` where the subtraction gives 0. ``softplus`` is
    :math:`\max(x, 0) + \operatorname{log1p}(e^{-|x|})` with the log in double-double.
    Infinite logits give the limits (0 or +inf) when a coefficient is 0: a term whose
    coefficient is 0 contributes 0. Accuracy (``crossent._bounds``): within 3 ulp in
    float64, 1 ulp and correctly rounded in practice in float32/float16; in the rounding mode
    ``"correct"`` (:func:`crossent.rounding`) every float64 per-element value is correctly
    rounded (a sum or mean is their exact sum, rounded once).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.binary_cross_entropy_with_logits(np.array([40.0]), np.array([1.0])))
    4.248354255291589e-18
    """
    return _run(logits, target, weight, pos_weight, reduction, False)[0]


def binary_cross_entropy_with_logits_value_and_grad(logits, target, *, weight=None,
                                                    pos_weight=None, reduction="mean"):
    r"""The loss of :func:`binary_cross_entropy_with_logits` and its gradient in the logits.

    Returns
    -------
    loss : ndarray, numpy scalar or Partial
        As :func:`binary_cross_entropy_with_logits`.
    dlogits : ndarray
        The gradient of the reduced loss (of the sum for ``'none'`` and ``'partial'``), the
        shape and dtype of ``logits``.

    Notes
    -----
    .. math:: \frac{\partial\ell}{\partial x} = w\,[(1 - t)\,\sigma(x) - p\,t\,\sigma(-x)]
              \quad(= \sigma(x) - t \text{ for } w = p = 1),

    with :math:`\sigma(\pm x)` from one :math:`e^{-|x|}` (no cancellation) and the
    difference formed by one FMA, divided by the number of elements for ``'mean'``.
    Normwise bound: :math:`|\hat g - g| \le 9` ulp of :math:`\max(w(1-t)\sigma(x), w\,p\,t\,\sigma(-x))`
    in float64.
    In the rounding mode ``"correct"`` (:func:`crossent.rounding`) every float64 gradient
    element is correctly rounded (the mean's divisor exact).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(
    ...     np.array([0.0]), np.array([1.0]))
    >>> float(loss), g.tolist()
    (0.6931471805599453, [-0.5])
    """
    return _run(logits, target, weight, pos_weight, reduction, True)


def _elementwise(x, sign):
    a = as_float_array(x, "x")
    xs = _flat(a)
    out = np.empty(xs.size)
    if _rounding.correct(a.dtype):
        name = "softplus" if sign > 0 else "log_sigmoid"
        _correctly_rounded(name, out, xs,
                           lambda: _k.softplus_rows_cr(xs, sign, _k.BCE_CR_REL_ERR, out),
                           lambda i: getattr(_reference(), name)(xs[i]))
    elif xs.size:
        with parallel_guard():
            _k.softplus_rows(xs, sign, a.dtype != np.float64, out)
    return scalar_if_0d(cast_result(out.reshape(a.shape), a.dtype))


def softplus(x):
    r"""``log(1 + exp(x))`` elementwise, within 3 ulp in float64 (1 ulp in float32/float16).

    Notes
    -----
    :math:`\operatorname{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|})`, the
    log in double-double: ``softplus(-40) = 4.248354255291589e-18``, ``softplus(1e300) = 1e300``.
    In the rounding mode ``"correct"`` (:func:`crossent.rounding`) float64 results are
    correctly rounded.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.softplus(-40.0))
    4.248354255291589e-18
    """
    return _elementwise(x, 1.0)


def log_sigmoid(x):
    r"""``log(sigmoid(x)) = -softplus(-x)`` elementwise, within 3 ulp in float64 (1 ulp in
    float32/float16).

    Notes
    -----
    :math:`\log\sigma(x) = -\operatorname{softplus}(-x) = -\max(-x, 0) - \operatorname{log1p}(e^{-|x|})`,
    evaluated as :func:`softplus`; ``log_sigmoid(inf) = 0``, ``log_sigmoid(-inf) = -inf``.
    In the rounding mode ``"correct"`` float64 results are correctly rounded.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.log_sigmoid(40.0))
    -4.248354255291589e-18
    """
    return _elementwise(x, -1.0)
