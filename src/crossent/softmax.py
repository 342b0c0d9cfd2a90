"""logsumexp, log_softmax and softmax: validated, reshaped, dispatched to
:mod:`crossent.kernels.softmax`."""

from __future__ import annotations

import numpy as np

from . import _rounding
from ._validate import (as_float_array, cast_result, compute_dtype, parallel_guard, reduction_axes,
                        scalar_if_0d, scale_factors, to_rows, work_dtype)
from .kernels import short as _ks
from .kernels import softmax as _k

__all__ = ["logsumexp", "log_softmax", "softmax"]


_COMMON_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))  # native byte order
_NO_ROWS = np.empty(0, dtype=np.intp)
_NO_ROWS.flags.writeable = False


def _common_rows(x, axis):
    """``x`` itself when the call is the common one, else ``None`` (then the generic
    validation runs): a 2-D C-contiguous, aligned, writeable float32/float64 ndarray with at
    least one row and one column, reduced over its last axis (an int ``-1`` or ``1``). Such
    an ``x`` is already the kernels' ``(rows, C)`` layout and dtype."""
    if (type(x) is not np.ndarray or x.ndim != 2 or type(axis) is not int or axis not in (-1, 1)
            or x.dtype not in _COMMON_DTYPES):
        return None
    f = x.flags
    if not (f.c_contiguous and f.aligned and f.writeable) or x.shape[0] == 0 or x.shape[1] == 0:
        return None
    return x


def _prepare(x, axis):
    a = as_float_array(x, "x")
    ax = reduction_axes(axis, a.shape, "axis")
    m = ax.merged(a.astype(compute_dtype(a.dtype), copy=False))
    return a, ax, to_rows(m, m.ndim - 1)


def _posinf_rows(rows, res):
    """Indices of the rows whose result ``res`` (one value per row) is nan because of a +inf
    and not of a nan: the kernels give nan for both; SciPy's rule tells them apart. Only the
    nan results are looked at, so rows without specials cost one comparison each."""
    nan = res != res
    if not np.count_nonzero(nan):
        return _NO_ROWS
    cand = np.flatnonzero(nan)
    r = rows[cand]
    return cand[np.isposinf(r).any(axis=1) & ~np.isnan(r).any(axis=1)]


def _set_posinf(rows, out):
    """logsumexp's rows holding a +inf and no nan: +inf (as SciPy and NumPy), not nan."""
    idx = _posinf_rows(rows, out)
    if idx.size:
        out[idx] = np.inf


def _short(kind, rows, out, narrow, wide):
    """The short-row kernel (rows of at most ``SHORT_MAX_C`` classes: the measured
    crossover); its special rows (nan, +inf, every entry -inf) are redone by the wide kernel
    ``wide``. ``out`` is ``(rows, C)``, or ``(rows, 1)`` for logsumexp."""
    stat = np.empty(rows.shape[0], dtype=np.uint8)
    parallel = _ks.is_parallel(*rows.shape)
    with parallel_guard(parallel):
        _ks.softmax_family_short(rows, kind, out, narrow, narrow, stat, parallel)
    if np.count_nonzero(stat):  # (cheaper than stat.any() on a few rows)
        idx = np.flatnonzero(stat)
        o = np.empty((idx.size,) + out.shape[1:], dtype=out.dtype)
        with parallel_guard():
            wide(rows[idx], o if kind != _ks.LOGSUMEXP else o[:, 0], narrow, narrow)
        out[idx] = o


def _correctly_rounded(kernel, name, rows, out):
    """The correctly rounded path of a float64 batch kernel (``crossent._rounding``): the
    kernel marks the rows whose rounding it cannot decide, and the oracle recomputes them.
    ``out`` is ``(rows,)`` for logsumexp, else ``(rows, C)``."""
    from . import reference

    slow = np.zeros(rows.shape[0], dtype=np.uint8)
    with parallel_guard():
        kernel(rows, out, False, False, _rounding.relative_bound(rows.shape[1]), slow)
    idx = np.flatnonzero(slow)
    _rounding.count(name, rows.shape[0], idx.size)
    if idx.size:
        out[idx] = getattr(reference, name)(rows[idx], axis=-1)


def _rowwise(kernel, x, axis, log):
    rows = _common_rows(x, axis)
    if rows is None:
        a, ax, rows = _prepare(x, axis)
        work = work_dtype(a.dtype)  # float16 and bfloat16 round once, at the end
    else:  # the common call: already the rows, in their dtype (the steps below, bitwise)
        a, ax, work = rows, None, rows.dtype
    out = np.empty(rows.shape, dtype=work)
    if rows.size:
        narrow = a.dtype != np.float64  # round to odd, then once more; the short exp suffices
        if _rounding.correct(a.dtype):
            _correctly_rounded(kernel, "log_softmax" if log else "softmax", rows, out)
        elif _ks.is_short(rows.shape[1], narrow, True):
            kind = _ks.LOG_SOFTMAX if log else _ks.SOFTMAX
            _short(kind, rows, out, narrow, kernel)
        else:
            with parallel_guard():
                kernel(rows, out, narrow, narrow)
        if log:  # a row holding +inf and no nan: -inf at the finite and -inf entries, nan at +inf
            for n in _posinf_rows(rows, out[:, 0]):
                out[n] = np.where(np.isposinf(rows[n]), np.nan, -np.inf)
    if ax is None:
        return out
    return scalar_if_0d(cast_result(ax.unmerged(out), a.dtype))


def logsumexp(x, axis=-1, keepdims=False, *, b=None, return_sign=False):
    r"""Logarithm of the sum of exponentials along ``axis``, accurately.

    Parameters
    ----------
    x : array_like
        Real input, float16, bfloat16, float32 or float64 (integers are converted to float64).
        A 0-d input is one element (as in SciPy).
    axis : int, tuple of int or None, optional
        The axis or axes to reduce (default: the last); ``None`` reduces every axis.
    keepdims : bool, optional
        Keep the reduced axes with length 1.
    b : array_like, optional
        Scale factors, real, finite and broadcastable with ``x`` (as SciPy's ``b``): the
        result is :math:`\log|\sum_i b_i e^{x_i}|`. Negative factors are allowed (the sum
        can cancel: see Notes); entries with :math:`b_i = 0` are left out, whatever
        :math:`x_i`. The result dtype is that of ``x`` and ``b`` together.
    return_sign : bool, optional
        Also return the sign of the sum (1, -1, or 0 for a zero sum; nan for a nan result).
        Without it, a negative sum gives nan (as SciPy).

    Returns
    -------
    ndarray or NumPy scalar
        ``log(sum(exp(x), axis))`` in the dtype of ``x``; a NumPy scalar when every axis is
        reduced without ``keepdims``.
    sign : ndarray or NumPy scalar
        Only with ``return_sign=True``: the sign of the sum, same shape and dtype.

    Notes
    -----
    With :math:`m = \max_i x_i` and :math:`S = \sum_i e^{x_i - m} \ge 1` (the max terms are
    exactly 1 and are counted, not summed),

    .. math:: \operatorname{logsumexp}(x) = m + \log S .

    The shift :math:`x_i - m` is computed with its rounding error (TwoSum), the terms below
    the max are summed in double-double, and :math:`\log S` is evaluated in double-double
    from :math:`S - 1` exactly, so a row whose other terms sum to 1e-300 keeps their digits.
    Accuracy (``crossent._bounds``): float64 within 3 ulp where :math:`\max x \ge 0` or
    :math:`|\operatorname{logsumexp}(x)| \ge \log(S)/3` (elsewhere :math:`m` and
    :math:`\log S` cancel, and the absolute error is at most 3 ulp(:math:`\log S`));
    float32/float16 within 1 ulp, correctly rounded in practice. Special values: a nan in a
    slice gives nan; a +inf and no nan gives +inf (as SciPy and NumPy's ``logaddexp``); a
    slice of only -inf gives -inf; an empty slice gives -inf (the log of an empty sum).
    Complex input is a ``TypeError``. In rounding mode ``"correct"``
    (:func:`crossent.rounding`) float64 results are correctly rounded (0.5 ulp; with ``b``
    too, and the sign: rows whose sum cancels go to the oracle, ``docs/accuracy.md``).

    With ``b``, each term :math:`e^{x_i - m}` (with its error part) is multiplied by
    :math:`b_i` exactly (TwoProduct, after an exact power-of-two scaling of the row's
    factors) and the signed terms are summed in double-double. Where the factors have
    mixed signs the sum can cancel, and the error is then bounded relative to the
    condition number :math:`\kappa = \sum_i |b_i| e^{x_i} / |\sum_i b_i e^{x_i}|`: the
    computed :math:`\log|S|` is within :math:`\approx \kappa\,u` (absolute) of the exact one,
    plus the rounding of the result (``crossent._bounds``, the ``logsumexp`` row's ``b``
    condition). With factors of one sign (:math:`\kappa = 1`) the accuracy is that of
    ``b=None``.

    References
    ----------
    P. Blanchard, D. J. Higham, N. J. Higham, "Accurately computing the log-sum-exp and
    softmax functions", IMA J. Numer. Anal. 41 (2021) 2311-2330.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.logsumexp([0.0, 0.0]))  # log 2
    0.6931471805599453
    >>> float(crossent.logsumexp([1000.0, 0.0]) - 1000.0)  # exp(-1000) is below 1 ulp of 1000
    0.0
    """
    if b is not None:
        return _logsumexp_b(x, axis, keepdims, b, return_sign)
    rows = None if keepdims is not False or return_sign is not False else _common_rows(x, axis)
    if rows is not None:  # the common call: the steps below, without the generic machinery
        out = np.empty(rows.shape[0], dtype=rows.dtype)
        narrow = rows.dtype != np.float64
        if _rounding.correct(rows.dtype):
            _correctly_rounded(_k.logsumexp_rows, "logsumexp", rows, out)
        elif _ks.is_short(rows.shape[1], narrow, False):
            _short(_ks.LOGSUMEXP, rows, out.reshape(-1, 1), narrow, _k.logsumexp_rows)
        else:
            with parallel_guard():
                _k.logsumexp_rows(rows, out, narrow, narrow)
        _set_posinf(rows, out)
        return out
    scale_factors(np.empty(0), None, return_sign)
    a, ax, rows = _prepare(x, axis)
    out = np.empty(rows.shape[0], dtype=work_dtype(a.dtype))
    if rows.shape[1] == 0:
        out[:] = -np.inf
    elif rows.shape[0]:
        narrow = a.dtype != np.float64
        if _rounding.correct(a.dtype):
            _correctly_rounded(_k.logsumexp_rows, "logsumexp", rows, out)
        elif _ks.is_short(rows.shape[1], narrow, False):
            _short(_ks.LOGSUMEXP, rows, out.reshape(-1, 1), narrow, _k.logsumexp_rows)
        else:
            with parallel_guard():
                _k.logsumexp_rows(rows, out, narrow, narrow)
        _set_posinf(rows, out)
    res = scalar_if_0d(cast_result(ax.reduced(out, keepdims), a.dtype))
    if not return_sign:
        return res
    with np.errstate(invalid="ignore"):
        sign = np.where(np.isnan(out), np.nan, np.where(out == -np.inf, 0.0, 1.0))
    return res, scalar_if_0d(cast_result(ax.reduced(sign, keepdims), a.dtype))


def _logsumexp_b_correct(rows, brows, out, sign):
    """The correctly rounded path of ``logsumexp`` with ``b`` (``crossent.kernels.scaled``):
    the rows whose rounding (or sign) the bound cannot decide -- cancelling sums among
    them -- are recomputed by the oracle, value and sign."""
    from . import reference
    from .kernels import scaled

    rows, brows = np.ascontiguousarray(rows), np.ascontiguousarray(brows)
    rel, ab = _rounding.logsumexp_b_bound(rows.shape[1])
    slow = np.zeros(rows.shape[0], dtype=np.uint8)
    with parallel_guard():
        scaled.logsumexp_b_rows_cr(rows, brows, rel, ab, out, sign, slow)
    idx = np.flatnonzero(slow)
    _rounding.count("logsumexp (with b)", rows.shape[0], idx.size)
    if idx.size:
        out[idx], sign[idx] = reference.logsumexp(rows[idx], axis=-1, b=brows[idx],
                                                  return_sign=True)


def _logsumexp_b(x, axis, keepdims, b, return_sign):
    """``logsumexp`` with scale factors (see its Notes)."""
    a, bb = scale_factors(as_float_array(x, "x"), b, return_sign)
    ax = reduction_axes(axis, a.shape, "axis")
    rows = to_rows(ax.merged(a.astype(compute_dtype(a.dtype), copy=False)), len(ax.batch))
    brows = to_rows(ax.merged(bb), len(ax.batch))
    out = np.empty(rows.shape[0])
    sign = np.empty(rows.shape[0])
    if rows.shape[1] == 0:
        out[:], sign[:] = -np.inf, 0.0
    elif rows.shape[0]:
        if _rounding.correct(a.dtype):
            _logsumexp_b_correct(rows, brows, out, sign)
        else:
            with parallel_guard():
                _k.logsumexp_b_rows(rows, brows, out, sign, a.dtype != np.float64)
        for n in np.flatnonzero(np.isnan(out)):  # nan or +inf among the terms with b != 0
            used = brows[n] != 0
            xs, bs = rows[n][used], brows[n][used]
            if not np.isnan(xs).any():  # +inf terms: their factors' signs decide
                s = np.unique(np.sign(bs[xs == np.inf]))
                if s.size == 1:
                    out[n], sign[n] = np.inf, s[0]
    with np.errstate(invalid="ignore"):
        if not return_sign:
            out[sign < 0] = np.nan  # log of a negative number (SciPy: nan)
    res = scalar_if_0d(cast_result(ax.reduced(out, keepdims), a.dtype))
    if not return_sign:
        return res
    return res, scalar_if_0d(cast_result(ax.reduced(sign, keepdims), a.dtype))


def log_softmax(x, axis=-1):
    r"""Logarithm of the softmax along ``axis``, accurately.

    Parameters
    ----------
    x : array_like
        Real input (float16, bfloat16, float32, float64).
        A 0-d input is one element (as in SciPy).
    axis : int, tuple of int or None, optional
        The class axis (default: the last); a tuple of axes or ``None`` (every axis)
        normalizes over those axes together.

    Returns
    -------
    ndarray
        ``x - logsumexp(x, axis, keepdims=True)`` in the dtype of ``x``.

    Notes
    -----
    Computed as :math:`-\bigl((m - x_i) + \operatorname{log1p}(s)\bigr)`: both terms are
    non-negative, so nothing cancels (see :func:`logsumexp` for :math:`m, s`). Accuracy:
    float64 within 3 ulp (correctly rounded in rounding mode ``"correct"``,
    :func:`crossent.rounding`), float32/float16 within 1 ulp (correctly rounded in practice).
    A slice holding nan, or only -inf, gives nan; a -inf entry among finite ones gives
    -inf. A slice holding +inf and no nan gives SciPy's result: nan at the +inf entries,
    -inf at the others.

    Examples
    --------
    >>> import crossent
    >>> crossent.log_softmax([0.0, -50.0]).tolist()  # the first entry is -exp(-50), not 0
    [-1.9287498479639178e-22, -50.0]
    """
    return _rowwise(_k.log_softmax_rows, x, axis, True)


def softmax(x, axis=-1):
    r"""Softmax along ``axis``: ``exp(x) / sum(exp(x))``, each entry to a few ulp.

    Parameters
    ----------
    x : array_like
        Real input (float16, bfloat16, float32, float64).
        A 0-d input is one element (as in SciPy).
    axis : int, tuple of int or None, optional
        The class axis (default: the last); a tuple of axes or ``None`` (every axis)
        normalizes over those axes together.

    Returns
    -------
    ndarray
        Probabilities in the dtype of ``x``; far-below-max entries keep their digits down
        to the subnormal range.

    Notes
    -----
    .. math:: \sigma(x)_i = \frac{2^{k_i}(1 + t_i)}{S},\qquad
              e^{x_i - m} = 2^{k_i}(1 + t_i),\quad S = \sum_j e^{x_j - m},

    with the rounding error of :math:`x_i - m` folded into :math:`t_i`, :math:`1/S`
    computed in double-double and :math:`(1 + t_i)/S` formed with one FMA. Accuracy:
    float64 within 3 ulp (correctly rounded in rounding mode ``"correct"``,
    :func:`crossent.rounding`), float32/float16 within 1 ulp. A slice holding nan or +inf,
    or only -inf, gives nan.

    Examples
    --------
    >>> import crossent
    >>> crossent.softmax([0.0, 0.0, 0.0, 0.0]).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return _rowwise(_k.softmax_rows, x, axis, False)
