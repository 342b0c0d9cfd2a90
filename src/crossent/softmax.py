"""logsumexp, log_softmax and softmax: validated, reshaped, dispatched to
:mod:`crossent.kernels.softmax`."""

from __future__ import annotations

import numpy as np

from ._validate import (
    as_float_array,
    cast_result,
    compute_dtype,
    normalize_axis,
    parallel_guard,
    to_rows,
    work_dtype,
)
from .kernels import softmax as _k

__all__ = ["logsumexp", "log_softmax", "softmax"]


def _prepare(x, axis, name="x"):
    a = as_float_array(x, name)
    ax = normalize_axis(axis, a.ndim, "axis")
    rows = to_rows(a.astype(compute_dtype(a.dtype), copy=False), ax)
    return a, ax, rows


def _rowwise(kernel, x, axis):
    a, ax, rows = _prepare(x, axis)
    work = work_dtype(a.dtype)  # float16 and bfloat16 round once, at the end
    out = np.empty(rows.shape, dtype=work)
    if rows.size:
        narrow = a.dtype != np.float64  # round to odd, then once more; the short exp suffices
        with parallel_guard():
            kernel(rows, out, narrow, narrow)
    moved = np.moveaxis(a, ax, -1).shape
    return cast_result(np.moveaxis(out.reshape(moved), -1, ax), a.dtype)


def logsumexp(x, axis=-1, keepdims=False):
    r"""Logarithm of the sum of exponentials along ``axis``, accurately.

    Parameters
    ----------
    x : array_like
        Real input, float16, bfloat16, float32 or float64 (integers are converted to float64).
    axis : int, optional
        The axis to reduce (default: the last).
    keepdims : bool, optional
        Keep the reduced axis with length 1.

    Returns
    -------
    ndarray
        ``log(sum(exp(x), axis))`` in the dtype of ``x``.

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
    float32/float16 within 1 ulp, correctly rounded in practice. Special values: a nan or
    +inf in a slice gives nan; a slice of only -inf gives -inf; an empty slice gives -inf
    (the log of an empty sum).

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
    a, ax, rows = _prepare(x, axis)
    out = np.empty(rows.shape[0], dtype=work_dtype(a.dtype))
    if rows.shape[1] == 0:
        out[:] = -np.inf
    elif rows.shape[0]:
        with parallel_guard():
            _k.logsumexp_rows(rows, out, a.dtype != np.float64, a.dtype != np.float64)
    shape = np.moveaxis(a, ax, -1).shape[:-1]
    res = cast_result(out.reshape(shape), a.dtype)
    if keepdims:
        res = np.expand_dims(res, ax)
    return res


def log_softmax(x, axis=-1):
    r"""Logarithm of the softmax along ``axis``, accurately.

    Parameters
    ----------
    x : array_like
        Real input (float16, bfloat16, float32, float64).
    axis : int, optional
        The class axis (default: the last).

    Returns
    -------
    ndarray
        ``x - logsumexp(x, axis, keepdims=True)`` in the dtype of ``x``.

    Notes
    -----
    Computed as :math:`-\bigl((m - x_i) + \operatorname{log1p}(s)\bigr)`: both terms are
    non-negative, so nothing cancels (see :func:`logsumexp` for :math:`m, s`). Accuracy:
    float64 within 3 ulp, float32/float16 within 1 ulp (correctly rounded in practice).
    A slice holding nan or +inf, or only -inf, gives nan; a -inf entry among finite ones
    gives -inf.

    Examples
    --------
    >>> import crossent
    >>> crossent.log_softmax([0.0, -50.0]).tolist()  # the first entry is -exp(-50), not 0
    [-1.9287498479639178e-22, -50.0]
    """
    return _rowwise(_k.log_softmax_rows, x, axis)


def softmax(x, axis=-1):
    r"""Softmax along ``axis``: ``exp(x) / sum(exp(x))``, each entry to a few ulp.

    Parameters
    ----------
    x : array_like
        Real input (float16, bfloat16, float32, float64).
    axis : int, optional
        The class axis (default: the last).

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
    float64 within 3 ulp, float32/float16 within 1 ulp. A slice holding nan or +inf, or
    only -inf, gives nan.

    Examples
    --------
    >>> import crossent
    >>> crossent.softmax([0.0, 0.0, 0.0, 0.0]).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return _rowwise(_k.softmax_rows, x, axis)
