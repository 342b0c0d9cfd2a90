"""Divergences between the softmax distributions of two sets of logits: validated, reshaped,
dispatched to :mod:`crossent.kernels.divergence`, reduced over rows by the exact accumulator."""

from __future__ import annotations

import numpy as np

import math

from . import _rounding
from ._partial import SCALE_BITS, partial_of
from ._validate import (
    cast_result,
    check_beta,
    divergence_inputs,
    entropy_logits_inputs,
    parallel_guard,
    scalar_if_0d,
    to_rows,
)
from .kernels import divergence as _k

__all__ = ["entropy_logits", "entropy_logits_value_and_grad", "js_divergence_logits",
           "js_divergence_logits_value_and_grad", "kl_divergence_logits",
           "kl_divergence_logits_value_and_grad"]


def _prepare(p_logits, q_logits, axis, reduction, mask, f32=False):
    """``(dtype, x, y, axis, batch_shape, keep)``: the rows ``(N, C)`` in float64 (or, with
    ``f32``, float32 inputs as they are: the gradient kernel reads them directly). No copy
    where the input is already such rows (the kernels only read them)."""
    p, q, ax, batch_shape, keep = divergence_inputs(p_logits, q_logits, axis, reduction, mask)
    kt = np.float32 if f32 and p.dtype == np.float32 else np.float64
    x = to_rows(p.astype(kt, copy=False), ax)
    y = to_rows(q.astype(kt, copy=False), ax)
    return p.dtype, x, y, ax, batch_shape, keep


def _reduce(values, keep, reduction, dtype, batch_shape):
    """Per-row float64 values to the reduction: 'none' rounds each (dropped rows are 0), the
    others go through the exact sum of the kept rows, rounded once."""
    if reduction == "none":
        return scalar_if_0d(cast_result(values.reshape(batch_shape), dtype))
    kept = values[keep]
    part = partial_of(kept, int(kept.size) << SCALE_BITS, dtype, "count")
    if reduction == "partial":
        return part
    return part.sum() if reduction == "sum" else part.mean()


def _kl_correct(x, y, keep, out):
    """The correctly rounded float64 rows (``crossent._rounding``): the kernel leaves nan
    where its bound cannot decide the rounding (and on the rows whose value is nan), the
    oracle recomputes those rows."""
    if x.shape[0]:
        with parallel_guard():
            _k.kl_divergence_logits_rows_cr(x, y, keep,
                                            _rounding.kl_relative_bound(x.shape[1]), out)
    idx = np.flatnonzero(np.isnan(out))
    _rounding.count("kl_divergence_logits", int(keep.sum()), idx.size)
    if idx.size:
        from . import reference  # the slow path only

        out[idx] = np.asarray(reference.kl_divergence_logits(x[idx], y[idx], reduction="none"),
                              dtype=np.float64)


def _grad_correct(which, x, y, beta, keep, reduction, out, gx, gy):
    """The correctly rounded float64 value and gradients of ``kl`` or ``js``: the kernel's
    rows, and the oracle's for the rows where the rounding test cannot decide the value or
    an entry."""
    nk = float(max(int(keep.sum()) if reduction == "mean" else 1, 1))
    slow = np.zeros(x.shape[0], dtype=np.uint8)
    rho = _rounding.kl_relative_bound(x.shape[1])
    if x.shape[0]:
        with parallel_guard():
            if which == "kl":
                _k.kl_divergence_logits_grad_rows_cr(x, y, keep, rho, nk, out, gx, gy, slow)
            else:
                _k.js_divergence_logits_grad_rows_cr(x, y, beta, keep, rho, nk, out, gx, gy, slow)
    name = f"{which}_divergence_logits_value_and_grad"
    idx = np.flatnonzero(slow)
    _rounding.count(name, int(keep.sum()), idx.size)
    if idx.size:
        from . import reference  # the slow path only

        # the rows alone ('none'), their gradients divided by the whole batch's nk
        kw = {"beta": beta} if which == "js" else {}
        v, gp, gq = getattr(reference, name)(x[idx], y[idx], reduction="none",
                                             grad_divisor=int(nk), **kw)
        out[idx] = v
        gx[idx] = gp
        gy[idx] = gq


def _js_correct(x, y, beta, keep, out):
    """:func:`_kl_correct` for ``js_divergence_logits``."""
    if x.shape[0]:
        with parallel_guard():
            _k.js_divergence_logits_rows_cr(x, y, beta, keep,
                                            _rounding.kl_relative_bound(x.shape[1]), out)
    idx = np.flatnonzero(np.isnan(out))
    _rounding.count("js_divergence_logits", int(keep.sum()), idx.size)
    if idx.size:
        from . import reference  # the slow path only

        out[idx] = np.asarray(reference.js_divergence_logits(x[idx], y[idx], beta=beta,
                                                             reduction="none"),
                              dtype=np.float64)


def kl_divergence_logits(p_logits, q_logits, *, axis=-1, reduction="mean", mask=None):
    r"""Kullback–Leibler divergence :math:`\mathrm{KL}(P \,\|\, Q)` between
    :math:`P = \mathrm{softmax}(p)` and :math:`Q = \mathrm{softmax}(q)`, per row.

    Parameters
    ----------
    p_logits, q_logits : array_like
        Logits of the same shape (float16, bfloat16, float32 or float64; integers become
        float64), the
        classes on ``axis``. ``-inf`` is a masked class: it contributes nothing where it is
        masked in ``p_logits`` (:math:`0 \log 0 = 0`), and a class masked in ``q_logits``
        only makes the divergence ``+inf``.
    axis : int, optional
        The class axis (default: the last).
    reduction : {'mean', 'sum', 'none', 'partial'}, optional
        Over rows: ``'mean'`` divides the sum by the number of kept rows (nan when none is
        kept); the sums are exact, rounded once (:doc:`reductions`). ``'none'`` returns
        one value per row (0 for dropped rows).
    mask : array_like of bool, optional
        The batch shape (``p_logits.shape`` without ``axis``): rows where it is False are
        dropped (padding).

    Returns
    -------
    ndarray, numpy scalar or Partial
        In the dtype of the inputs.

    Notes
    -----
    With :math:`d_i = p_i - q_i` and :math:`\delta_i = \log P_i - \log Q_i`,

    .. math:: \mathrm{KL} = \sum_i P_i\,\varphi(\delta_i), \qquad
              \varphi(t) = t + e^{-t} - 1 \ge 0,

    (equal to :math:`\sum_i P_i \delta_i` because :math:`\sum_i Q_i = 1`): every term is
    non-negative, so the value is never negative and is exactly 0 for equal rows (or rows
    that differ by a constant). :math:`\delta_i = d_i - c` with
    :math:`c = \mathrm{lse}(p) - \mathrm{lse}(q) = d_k + \log(Q_k/P_k)` (:math:`k` the largest
    :math:`p_k`) from the row statistics in double-double, and for rows closer than
    :math:`2^{-20}` (or :math:`2^{-12}` where the KL is below :math:`2^{-40}`) from
    :math:`Q_k/P_k - 1 = \sum_i Q_i \operatorname{expm1}(d_i - d_k)`: never
    the rounded difference of the two logsumexps (``docs/divergences.md``).

    Accuracy: within 3 ulp in float64 for rows of up to 2**21 classes (a derived worst-case
    budget of 2.76 ulp; measured at most 0.83), 1 ulp (99.9% correctly rounded) in float32,
    bfloat16 and float16, for any gap between the rows
    (``BOUNDS["kl_divergence_logits"]``); float64 results (per row, and the exact sums of those
    for ``'mean'``, ``'sum'`` and ``'partial'``) are correctly rounded in the rounding mode
    ``"correct"`` (:func:`crossent.rounding`).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> p = np.array([[1.0, 2.0, 3.0]])
    >>> float(crossent.kl_divergence_logits(p, p))
    0.0
    """
    dt, x, y, ax, batch_shape, keep = _prepare(p_logits, q_logits, axis, reduction, mask)
    out = np.empty(x.shape[0], dtype=np.float64)
    if _rounding.correct(dt):
        _kl_correct(x, y, keep, out)
    elif x.shape[0]:
        odd = dt != np.float64 and reduction == "none"
        with parallel_guard():
            _k.kl_divergence_logits_rows(x, y, keep, odd, dt != np.float64, out)
    return _reduce(out, keep, reduction, dt, batch_shape)


def kl_divergence_logits_value_and_grad(p_logits, q_logits, *, axis=-1, reduction="mean",
                                        mask=None):
    r""":func:`kl_divergence_logits` and its gradients in both arguments, fused.

    Parameters
    ----------
    p_logits, q_logits, axis, reduction, mask
        As :func:`kl_divergence_logits`.

    Returns
    -------
    value : ndarray, numpy scalar or Partial
    grad_p, grad_q : ndarray
        The gradients of the reduced value (of the sum of the rows for ``'none'`` and
        ``'partial'``), in the shape and dtype of the inputs; 0 for dropped rows, nan for rows
        whose value is not finite.

    Notes
    -----
    .. math:: \frac{\partial\,\mathrm{KL}}{\partial p_j} = P_j(\delta_j - \mathrm{KL}),
              \qquad
              \frac{\partial\,\mathrm{KL}}{\partial q_j} = Q_j - P_j,

    scaled by :math:`1/N_{kept}` for ``'mean'`` (``proofs/10_logit_divergences.py``). The value
    is that of :func:`kl_divergence_logits` (within 3 ulp in float64); the gradient entries are
    within :math:`8u` (absolute, :math:`u = 2^{-53}`) of the exact ones in float64 for rows
    with :math:`\mathrm{KL} \le 1`, :math:`8u\,\mathrm{KL}` beyond (an entry carries about
    :math:`u P_j(|\delta_j| + \mathrm{KL})`); rounded once to a narrow format (tested, not a
    table row). In the rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64
    value and every gradient entry are correctly rounded.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> p = np.array([[0.0, 1.0]])
    >>> v, gp, gq = crossent.kl_divergence_logits_value_and_grad(p, p)
    >>> float(v), gp.tolist(), gq.tolist()
    (0.0, [[0.0, 0.0]], [[0.0, 0.0]])
    """
    dt, x, y, ax, batch_shape, keep = _prepare(p_logits, q_logits, axis, reduction, mask,
                                               f32=True)
    scale = _grad_scale(keep, reduction)
    out = np.empty(x.shape[0], dtype=np.float64)
    gx = np.empty_like(x)
    gy = np.empty_like(y)
    if _rounding.correct(dt):
        _grad_correct("kl", x, y, 0.5, keep, reduction, out, gx, gy)
    elif x.shape[0]:
        with parallel_guard():
            _k.kl_divergence_logits_grad_rows(x, y, keep, dt != np.float64, scale, out, gx, gy)
    return (_reduce(out, keep, reduction, dt, batch_shape), _grad_back(gx, np.shape(p_logits), ax, dt),
            _grad_back(gy, np.shape(p_logits), ax, dt))


def _grad_scale(keep, reduction):
    """The gradient's factor: 1 over the kept rows for 'mean' (nan when none is kept), else 1."""
    if reduction != "mean":
        return 1.0
    n_kept = int(keep.sum())
    return 1.0 / n_kept if n_kept else np.nan


def _grad_back(g, shape, ax, dt):
    """Rows ``(N, C)`` back to ``shape`` (the class axis at ``ax``), rounded once to ``dt``."""
    moved = shape[:ax] + shape[ax + 1:] + (shape[ax],)
    return cast_result(np.moveaxis(g.reshape(moved), -1, ax), dt)


def js_divergence_logits(p_logits, q_logits, *, beta=0.5, axis=-1, reduction="mean", mask=None):
    r"""Generalized Jensen–Shannon divergence between :math:`P = \mathrm{softmax}(p)` and
    :math:`Q = \mathrm{softmax}(q)`, per row.

    Parameters
    ----------
    p_logits, q_logits : array_like
        Logits of the same shape (float16, bfloat16, float32 or float64; integers become
        float64), the classes on ``axis``. ``-inf`` is a masked class; a class masked in one
        row only is allowed (the divergence stays finite).
    beta : float, optional
        The weight :math:`\beta \in [0, 1]` of :math:`P` in the mixture (default 0.5, the
        symmetric Jensen–Shannon divergence). 0 and 1 give exactly 0.
    axis, reduction, mask
        As :func:`kl_divergence_logits`.

    Returns
    -------
    ndarray, numpy scalar or Partial
        In the dtype of the inputs.

    Notes
    -----
    .. math:: \mathrm{JSD}_\beta = \beta\,\mathrm{KL}(P \,\|\, M)
              + (1 - \beta)\,\mathrm{KL}(Q \,\|\, M), \qquad M = \beta P + (1 - \beta) Q,

    with :math:`0 \le \mathrm{JSD}_\beta \le h(\beta)` (the binary entropy, in nats;
    ``proofs/10_logit_divergences.py``). Both KLs are sums of the non-negative terms
    :math:`P_i\,\varphi(-s_i)` and :math:`Q_i\,\varphi(-r_i)` with
    :math:`s_i = \log(M_i/P_i) = \operatorname{log1p}((1-\beta)\operatorname{expm1}(-\delta_i))`,
    :math:`r_i = \log(M_i/Q_i) = \operatorname{log1p}(\beta\operatorname{expm1}(\delta_i))` and
    :math:`\delta_i = \log P_i - \log Q_i` as in :func:`kl_divergence_logits`: never negative,
    exactly 0 for equal rows, accurate when :math:`p \approx q`.

    Accuracy: within 3 ulp in float64 (derived: 2.02 ulp; measured at most 0.70), 1 ulp
    (99.9% correctly rounded) in float32, bfloat16 and float16
    (``BOUNDS["js_divergence_logits"]``). float64 evaluates every term in double-double, at
    2.2 to 2.7 times the cost of the float64 terms the narrow formats use. float64 results
    (per row, and the exact sums of those for ``'mean'``, ``'sum'`` and ``'partial'``) are
    correctly rounded in the rounding mode ``"correct"`` (:func:`crossent.rounding`).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> p = np.array([[1.0, 2.0, 3.0]])
    >>> float(crossent.js_divergence_logits(p, p + 5.0))
    0.0
    """
    b = check_beta(beta)
    dt, x, y, ax, batch_shape, keep = _prepare(p_logits, q_logits, axis, reduction, mask)
    out = np.empty(x.shape[0], dtype=np.float64)
    if _rounding.correct(dt):
        _js_correct(x, y, b, keep, out)
    elif x.shape[0]:
        odd = dt != np.float64 and reduction == "none"
        with parallel_guard():
            _k.js_divergence_logits_rows(x, y, b, keep, odd, dt == np.float64, out)
    return _reduce(out, keep, reduction, dt, batch_shape)


def js_divergence_logits_value_and_grad(p_logits, q_logits, *, beta=0.5, axis=-1,
                                        reduction="mean", mask=None):
    r""":func:`js_divergence_logits` and its gradients in both arguments, fused.

    Parameters
    ----------
    p_logits, q_logits, beta, axis, reduction, mask
        As :func:`js_divergence_logits`.

    Returns
    -------
    value : ndarray, numpy scalar or Partial
    grad_p, grad_q : ndarray
        The gradients of the reduced value (of the sum of the rows for ``'none'`` and
        ``'partial'``), in the shape and dtype of the inputs; 0 for dropped rows, nan for nan
        rows.

    Notes
    -----
    .. math:: \frac{\partial\,\mathrm{JSD}_\beta}{\partial p_j}
              = \beta P_j\,\bigl(\log\tfrac{P_j}{M_j} - \mathrm{KL}(P \,\|\, M)\bigr),
              \qquad
              \frac{\partial\,\mathrm{JSD}_\beta}{\partial q_j}
              = (1 - \beta) Q_j\,\bigl(\log\tfrac{Q_j}{M_j} - \mathrm{KL}(Q \,\|\, M)\bigr),

    scaled by :math:`1/N_{kept}` for ``'mean'`` (``proofs/10_logit_divergences.py``); each
    sums to 0 over the classes. The value is that of :func:`js_divergence_logits` (within
    3 ulp in float64); the gradient entries are within :math:`8u` (absolute) of the exact ones
    in float64 (tested). In the rounding mode ``"correct"`` (:func:`crossent.rounding`) the
    float64 value and every gradient entry are correctly rounded.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> p = np.array([[0.0, 1.0]])
    >>> v, gp, gq = crossent.js_divergence_logits_value_and_grad(p, p, beta=0.3)
    >>> float(v), float(abs(gp).max()), float(abs(gq).max())
    (0.0, 0.0, 0.0)
    """
    b = check_beta(beta)
    dt, x, y, ax, batch_shape, keep = _prepare(p_logits, q_logits, axis, reduction, mask)
    scale = _grad_scale(keep, reduction)
    out = np.empty(x.shape[0], dtype=np.float64)
    gx = np.empty_like(x)
    gy = np.empty_like(y)
    if _rounding.correct(dt):
        _grad_correct("js", x, y, b, keep, reduction, out, gx, gy)
    elif x.shape[0]:
        with parallel_guard():
            _k.js_divergence_logits_grad_rows(x, y, b, keep, dt == np.float64, scale, out, gx,
                                                 gy)
    return (_reduce(out, keep, reduction, dt, batch_shape), _grad_back(gx, np.shape(p_logits), ax, dt),
            _grad_back(gy, np.shape(p_logits), ax, dt))


def _entropy_prepare(logits, axis, base):
    a, ax, batch_shape, b = entropy_logits_inputs(logits, axis, base)
    lnb = 1.0 if b is None else math.log(b)
    return a.dtype, to_rows(a.astype(np.float64), ax), ax, batch_shape, lnb, a.shape


def _entropy_correct(x, base, out, g=None):
    """The correctly rounded float64 value (``crossent._rounding``; also the float64 default):
    the kernel leaves nan where its bound cannot decide the rounding (and on the rows whose
    value is nan), the oracle recomputes those rows. With ``g``, the same pass also writes the
    gradient in working precision (``entropy_logits_value_grad_rows``)."""
    from .pmf import _log_base

    lnh, lnl = _log_base(base)  # ln b as a double-double (mpmath)
    slow = np.zeros(x.shape[0], dtype=np.bool_)
    if x.shape[0]:
        eb = _rounding.entropy_relative_bound(x.shape[1])
        with parallel_guard():
            if g is None:
                _k.entropy_logits_rows_cr(x, lnh, lnl, eb, out, slow)
            else:
                _k.entropy_logits_value_grad_rows(x, lnh, lnl, eb, out, g, slow)
    _entropy_slow(x, base, out, slow, "entropy_logits")


def _entropy_slow(x, base, out, slow, name):
    """The oracle's values for the rows the kernel marked undecided (``slow``; special rows
    are nan and not marked)."""
    idx = np.flatnonzero(slow)
    _rounding.count(name, x.shape[0], idx.size)
    if idx.size:
        from . import reference  # the slow path only

        out[idx] = np.asarray(reference.entropy_logits(x[idx], base=base), dtype=np.float64)


def _entropy_grad_correct(x, base, out, g):
    """:func:`_entropy_correct` with the gradient: the kernel marks the rows whose value or
    any gradient entry it cannot decide (an absolute bound per entry: ``-log P_j - H``
    cancels), the oracle recomputes them."""
    from .pmf import _log_base

    lnh, lnl = _log_base(base)
    N, C = x.shape
    slow = np.zeros(N, dtype=np.uint8)
    if N:
        rb, eb = _rounding.relative_bound(C), _rounding.entropy_relative_bound(C)
        gcr = (3.0 * rb + 2.0**-98, eb + 2.0 * rb + 2.0**-98)
        with parallel_guard():
            _k.entropy_logits_grad_rows_cr(x, lnh, lnl, eb, gcr, out, g, slow)
    idx = np.flatnonzero(slow)
    _rounding.count("entropy_logits_value_and_grad", N, idx.size)
    if idx.size:
        from . import reference  # the slow path only

        v, gs = reference.entropy_logits_value_and_grad(x[idx], base=base)
        out[idx] = v
        g[idx] = gs


def entropy_logits(logits, *, axis=-1, base=None):
    r"""Entropy :math:`H(\mathrm{softmax}(x))` of each row's softmax (no reduction).

    Parameters
    ----------
    logits : array_like
        float16, bfloat16, float32 or float64 (integers become float64), the classes on ``axis``;
        ``-inf`` is a masked class (:math:`0 \log 0 = 0`).
    axis : int, optional
        The class axis (default: the last).
    base : float, optional
        Logarithm base (None: nats); any positive number other than 1.

    Returns
    -------
    ndarray or numpy scalar
        The batch shape, in the dtype of ``logits``; nan for a row with nan or +inf or with
        no finite entry.

    Notes
    -----
    .. math:: H = \sum_i P_i\,(-\log P_i), \qquad -\log P_i = (m - x_i) + \log S

    (:math:`m = \max_i x_i`, :math:`S = \sum_i e^{x_i - m}`): every term is non-negative, so
    the value is never negative and is exactly 0 for a row with one finite entry.

    Accuracy: float64 results are correctly rounded, in every rounding mode (the fast
    kernel's worst-case budget, 7 ulp with a base, is above the 3 ulp the family promises, and
    the correctly rounded path costs about 1.4-1.9 times as much); 1 ulp (99.9% correctly
    rounded) in float32, bfloat16 and float16 (``BOUNDS["entropy_logits"]``).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> float(crossent.entropy_logits(np.zeros(4), base=2))
    2.0
    """
    dt, x, ax, batch_shape, lnb, _shape = _entropy_prepare(logits, axis, base)
    out = np.empty(x.shape[0], dtype=np.float64)
    if dt == np.float64:  # correctly rounded in either mode (see Notes)
        _entropy_correct(x, base, out)
    elif x.shape[0]:
        with parallel_guard():
            _k.entropy_logits_rows(x, lnb, True, out)
    return scalar_if_0d(cast_result(out.reshape(batch_shape), dt))


def entropy_logits_value_and_grad(logits, *, axis=-1, base=None):
    r""":func:`entropy_logits` and its gradient (of the sum of the rows), fused.

    Returns
    -------
    value : ndarray or numpy scalar
    grad : ndarray
        The shape and dtype of ``logits``; nan rows where the value is nan.

    Notes
    -----
    .. math:: \frac{\partial H}{\partial x_j} = P_j\,(-\log P_j - H)

    (divided by :math:`\ln b` with a base; ``proofs/10_logit_divergences.py``). The value is
    that of :func:`entropy_logits` (correctly rounded in float64: 0.5 ulp); the gradient
    entries are within :math:`8u \max(1, H)` of the exact ones in float64 (tested). In the
    rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64 gradient is correctly
    rounded too (not by default: where ``-log P_j`` is close to ``H`` its rounding test needs
    the oracle for whole rows, 35 times slower at 32000 classes).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> h, g = crossent.entropy_logits_value_and_grad(np.zeros(4), base=2)
    >>> float(h), g.tolist()
    (2.0, [0.0, 0.0, 0.0, 0.0])
    """
    dt, x, ax, batch_shape, lnb, shape = _entropy_prepare(logits, axis, base)
    out = np.empty(x.shape[0], dtype=np.float64)
    g = np.empty_like(x)
    if _rounding.correct(dt):
        _entropy_grad_correct(x, base, out, g)
    elif dt == np.float64:  # the value of entropy_logits, correctly rounded
        _entropy_correct(x, base, out, g)
    elif x.shape[0]:
        with parallel_guard():
            _k.entropy_logits_grad_rows(x, lnb, out, g)
    return scalar_if_0d(cast_result(out.reshape(batch_shape), dt)), _grad_back(g, shape, ax, dt)
