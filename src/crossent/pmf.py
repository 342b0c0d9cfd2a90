r"""Entropy, cross-entropy and KL divergence of probability mass functions, the empirical PMF
and the categorical log-likelihood.

This is the distribution-level half of the article: roll a K-sided die N times, count the faces
(:func:`empirical_pmf`), score a candidate PMF by its log-likelihood
(:func:`categorical_log_likelihood`), and measure PMFs against each other with
:func:`entropy`, :func:`cross_entropy_pmf` and :func:`kl_divergence`.

Each reduction validates its input, moves the class axis last (``crossent._validate.to_rows``),
runs a Numba kernel from :mod:`crossent.kernels.pmf` over the rows and rounds the float64 result
once to the output dtype. The accuracy bounds are the rows ``"entropy"``,
``"cross_entropy_pmf"`` and ``"kl_divergence"`` of the accuracy table in
:mod:`crossent._bounds`; their derivation is in ``docs/accuracy.md`` (sections *pmf* and *kl*).
"""

from __future__ import annotations

import functools
import operator

import mpmath
import numpy as np

from ._validate import (
    as_float_array,
    check_base,
    compute_dtype,
    normalize_axis,
    parallel_guard,
    to_rows,
)


def _kernels():
    """The PMF kernels, imported on first use: they have explicit signatures and are
    compiled (or loaded from Numba's cache) when their module is imported, which
    ``import crossent`` should not pay for."""
    from .kernels import pmf

    return pmf

__all__ = [
    "entropy",
    "cross_entropy_pmf",
    "kl_divergence",
    "empirical_pmf",
    "categorical_log_likelihood",
]


# ---------------------------------------------------------------------------------------------
# helpers


@functools.lru_cache(maxsize=64)
def _log_base(base: float | None) -> tuple[float, float]:
    """``ln(base)`` as a double-double ``(hi, lo)``: hi = RN(ln b), lo = RN(ln b - hi).

    ``(1.0, 0.0)`` for nats. Computed with mpmath at 256 bits, so the pair is accurate to
    about ``2**-106`` relative, which keeps the change of base inside the kernel's final rounding.
    """
    if base is None:
        return 1.0, 0.0
    with mpmath.workprec(256):
        lb = mpmath.log(mpmath.mpf(base))  # base is a float: exact conversion
        hi = float(lb)  # mpmath rounds to nearest
        lo = float(lb - mpmath.mpf(hi))
    return hi, lo


def _check_rows(rows: np.ndarray, name: str, dtype: np.dtype) -> None:
    """The ``check=True`` validation of one operand (rows of shape (n, K))."""
    if np.isnan(rows).any():
        raise ValueError(f"{name} contains nan")
    if (rows < 0).any():
        raise ValueError(f"{name} has negative entries; a PMF is non-negative")
    k = rows.shape[1]
    tol = max(k, 1) * float(np.finfo(dtype).eps)
    sums = rows.sum(axis=1, dtype=np.float64)  # error <= log2(K) 2^-53 per row: far below tol
    bad = ~(np.abs(sums - 1.0) <= tol)  # also catches inf sums
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} does not sum to 1 along the class axis: row {i} sums to {sums[i]!r}, "
            f"outside the tolerance K*eps = {tol:.3g} (K = {k}, dtype {np.dtype(dtype).name})"
        )


def _kernel_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` as the kernels' type: C-contiguous and writeable (a read-only view is copied)."""
    return np.require(rows, requirements=["C", "W"])


def _reduce_shape(shape: tuple, ax: int) -> tuple:
    return shape[:ax] + shape[ax + 1 :]


def _finish(out64: np.ndarray, shape: tuple, dtype: np.dtype):
    """Reshape the float64 row results and round once to ``dtype`` (NumPy's cast rounds to nearest)."""
    res = out64.reshape(shape).astype(dtype, copy=False)
    return res[()] if res.ndim == 0 else res


def _prepare_one(p, axis, check):
    a = as_float_array(p, "p")
    ax = normalize_axis(axis, a.ndim, "axis")
    rows = to_rows(a.astype(compute_dtype(a.dtype), copy=False), ax) if a.shape[ax] else None
    if check:
        _check_rows(rows if rows is not None else np.zeros((max(a.size, 1), 0)), "p", a.dtype)
    return a.dtype, _reduce_shape(a.shape, ax), rows


def _prepare_two(p, q, axis, check):
    a = as_float_array(p, "p")
    b = as_float_array(q, "q")
    dtype = np.result_type(a.dtype, b.dtype)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"p and q must have broadcastable shapes, got p.shape={a.shape} and q.shape={b.shape}"
        ) from None
    ax = normalize_axis(axis, len(shape), "axis")
    out_shape = _reduce_shape(shape, ax)
    if shape[ax] == 0:
        if check:
            _check_rows(np.zeros((1, 0)), "p", dtype)
        return dtype, out_shape, None, None
    cd = compute_dtype(dtype)
    rp = to_rows(np.broadcast_to(a.astype(cd, copy=False), shape), ax)
    rq = to_rows(np.broadcast_to(b.astype(cd, copy=False), shape), ax)
    if check:
        _check_rows(rp, "p", dtype)
        _check_rows(rq, "q", dtype)
    return dtype, out_shape, rp, rq


# ---------------------------------------------------------------------------------------------
# public functions


def entropy(p, *, base=None, axis=-1, check=False):
    r"""Shannon entropy of PMFs along ``axis``.

    Parameters
    ----------
    p : array_like
        Probabilities, float16, float32 or float64 (integers are converted to float64),
        with the classes along ``axis``. Used as given: no normalization.
    base : float, optional
        Logarithm base: ``None`` (default) for nats, 2 for bits, 10 for bans (hartleys), or any
        positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : bool, optional
        If True, raise ``ValueError`` unless every row of ``p`` is a PMF: no nan, no negative
        entry, and the row sum within ``K * eps`` of 1 (``eps`` the machine epsilon of the
        input dtype; ``K * eps`` bounds the error of normalizing by a floating-point sum).

    Returns
    -------
    ndarray or scalar
        :math:`H(p)` with ``axis`` removed, in the dtype of ``p``.

    Raises
    ------
    TypeError
        ``p`` is not real, ``axis`` is not an integer, ``base`` is not a number.
    ValueError
        ``axis`` out of range, ``base`` not positive/finite or equal to 1, or (with
        ``check=True``) a row that is not a PMF.

    See Also
    --------
    cross_entropy_pmf, kl_divergence

    Notes
    -----
    .. math::

        H(p) = -\sum_{k} p_k \log_b p_k,\qquad 0 \log 0 = 0.

    Edge cases: a zero mass contributes 0; an infinite mass makes the result :math:`-\infty`
    (in nats); a nan or negative mass makes the row nan. An empty class axis gives 0 (the empty
    sum).

    Each term :math:`p_k \log p_k` is formed exactly from the rounded logarithm (an FMA product)
    and the terms are added in double-double, so the only error before the final rounding is
    the logarithm's (:math:`\le 0.52` ulp), independent of :math:`K`. The base is changed by
    one double-double division by :math:`\ln b` (computed with mpmath), so bits and bans are as
    accurate as nats. The stated bound is the ``"entropy"`` row of the accuracy table
    (:mod:`crossent._bounds`); float16/float32 inputs are computed in float64 and rounded once.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.entropy([0.5, 0.5], base=2))
    1.0
    >>> float(crossent.entropy([0.25, 0.25, 0.25, 0.25, 0.0], base=2))
    2.0
    >>> crossent.entropy([[1.0, 0.0], [0.5, 0.5]])
    array([0.        , 0.69314718])
    """
    lb = _log_base(check_base(base))
    dtype, out_shape, rows = _prepare_one(p, axis, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rows is not None and rows.shape[0]:
        with parallel_guard():
            _kernels().entropy_batch(_kernel_rows(rows), lb[0], lb[1], out)
    return _finish(out, out_shape, dtype)


def cross_entropy_pmf(p, q, *, base=None, axis=-1, check=False):
    r"""Cross-entropy :math:`H(p, q)` of PMFs along ``axis``.

    Parameters
    ----------
    p, q : array_like
        Probabilities, broadcastable against each other, with the classes along ``axis``
        (float16, float32 or float64; integers become float64; the result dtype is
        ``numpy.result_type`` of the two). Used as given: no normalization.
    base : float, optional
        Logarithm base: ``None`` (nats), 2 (bits), 10 (bans) or any positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : bool, optional
        If True, raise ``ValueError`` unless every row of ``p`` and of ``q`` is a PMF (see
        :func:`entropy`).

    Returns
    -------
    ndarray or scalar
        :math:`H(p, q)` with ``axis`` removed.

    Raises
    ------
    TypeError
        Non-real input, non-integer ``axis``, non-numeric ``base``.
    ValueError
        Shapes that do not broadcast, ``axis`` out of range, a bad ``base``, or (with
        ``check=True``) a row that is not a PMF.

    See Also
    --------
    entropy, kl_divergence, categorical_log_likelihood

    Notes
    -----
    .. math::

        H(p, q) = -\sum_k p_k \log_b q_k = -\mathbb{E}_{X\sim p}[\log_b q(X)].

    It is the negated log-likelihood per sample of :math:`q` on data whose empirical PMF is
    :math:`p`, and it is minimized over :math:`q` at :math:`q = p` (Gibbs' inequality).

    Edge cases: :math:`p_k = 0` contributes 0 whatever :math:`q_k \ge 0` (including
    :math:`q_k = 0`); :math:`p_k > 0` with :math:`q_k = 0` gives :math:`+\infty`; a nan or
    negative entry makes the row nan; infinities give their IEEE value.

    Error: the logarithm's rounding (:math:`\le 0.52` ulp per term) only; products are exact
    (FMA) and the sum is double-double, so the bound does not grow with :math:`K`. The stated
    bound is the ``"cross_entropy_pmf"`` row of :mod:`crossent._bounds`.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.cross_entropy_pmf([0.5, 0.5], [0.25, 0.75], base=2))  # doctest: +ELLIPSIS
    1.207518749639...
    >>> float(crossent.cross_entropy_pmf([1.0, 0.0], [0.5, 0.0]))  # 0 log 0 = 0
    0.6931471805599453
    >>> float(crossent.cross_entropy_pmf([0.5, 0.5], [1.0, 0.0]))  # p > 0 where q = 0
    inf
    """
    lb = _log_base(check_base(base))
    dtype, out_shape, rp, rq = _prepare_two(p, q, axis, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rp is not None and rp.shape[0]:
        with parallel_guard():
            _kernels().cross_entropy_batch(_kernel_rows(rp), _kernel_rows(rq), lb[0], lb[1], out)
    return _finish(out, out_shape, dtype)


def kl_divergence(p, q, *, base=None, axis=-1, check=False):
    r"""Kullback–Leibler divergence :math:`D(p\,\|\,q)` of PMFs along ``axis``.

    Accurate when :math:`p \approx q`: the divergence is never formed as
    :math:`H(p,q) - H(p,p)`, which loses all its digits there.

    Parameters
    ----------
    p, q : array_like
        Probabilities, broadcastable against each other, with the classes along ``axis``
        (float16, float32 or float64; integers become float64; the result dtype is
        ``numpy.result_type`` of the two). Used as given: no normalization.
    base : float, optional
        Logarithm base: ``None`` (nats), 2 (bits), 10 (bans) or any positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : bool, optional
        If True, raise ``ValueError`` unless every row of ``p`` and of ``q`` is a PMF (see
        :func:`entropy`).

    Returns
    -------
    ndarray or scalar
        :math:`D(p\,\|\,q)` with ``axis`` removed.

    Raises
    ------
    TypeError
        Non-real input, non-integer ``axis``, non-numeric ``base``.
    ValueError
        Shapes that do not broadcast, ``axis`` out of range, a bad ``base``, or (with
        ``check=True``) a row that is not a PMF.

    See Also
    --------
    entropy, cross_entropy_pmf

    Notes
    -----
    .. math::

        D(p\,\|\,q) = \sum_k p_k \log_b \frac{p_k}{q_k} = H(p, q) - H(p, p) \ge 0.

    The sum is computed termwise as

    .. math::

        p \log\frac{p}{q} = T + (p - q),\qquad
        T = (p + q)\, s^2 \bigl(1 + s(1+s) B(s^2)\bigr),\quad
        s = \frac{p - q}{p + q},\quad B(z) = \sum_{j\ge 0} \frac{z^j}{2j+3},

    for :math:`|s| \le 1/2` (a 28-term series, truncation below :math:`2^{-59}` relative),
    and as :math:`p \log(p/q)` with a double-double logarithm otherwise. :math:`T \ge 0` is
    free of cancellation, the differences :math:`p - q` are exact and their sum is carried in
    double-double: for floating-point PMFs :math:`\sum_k (p_k - q_k)` is tiny but not zero,
    and when :math:`p \approx q` it is of the same order as the divergence itself.

    Edge cases: :math:`p_k = 0` contributes 0 (:math:`0 \log 0 = 0`); :math:`p_k > 0` with
    :math:`q_k = 0` gives :math:`+\infty`; a nan or negative entry makes the row nan. For inputs
    that are not PMFs the result can be negative. Accuracy (the ``"kl_divergence"`` row of
    :mod:`crossent._bounds`): float64 within 4 ulp when :math:`\sum_k (p_k - q_k)` does not
    cancel most of :math:`\sum_k T_k` (always, for inputs that are PMFs up to rounding);
    float32/float16 within 1 ulp, correctly rounded in practice.

    Examples
    --------
    >>> import crossent
    >>> float(crossent.kl_divergence([0.5, 0.5], [0.5, 0.5]))
    0.0
    >>> float(crossent.kl_divergence([1.0, 0.0], [0.5, 0.5], base=2))
    1.0
    >>> float(crossent.kl_divergence([0.5, 0.5], [1.0, 0.0]))
    inf
    """
    lb = _log_base(check_base(base))
    dtype, out_shape, rp, rq = _prepare_two(p, q, axis, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rp is not None and rp.shape[0]:
        with parallel_guard():
            _kernels().kl_batch(_kernel_rows(rp), _kernel_rows(rq), lb[0], lb[1], _kernels().B_COEFFS, out)
    return _finish(out, out_shape, dtype)


def _as_labels(samples, num_classes: int) -> np.ndarray:
    try:
        s = np.asarray(samples)
    except Exception as exc:
        raise TypeError(f"samples must be array-like of integers: {exc}") from None
    if s.dtype.kind not in "iu":
        if s.dtype.kind == "f" and s.size == 0:
            s = s.astype(np.int64)
        else:
            raise TypeError(f"samples must have an integer dtype (class indices), got {s.dtype}")
    s = s.reshape(-1)
    if s.size == 0:
        return s.astype(np.int64)
    lo, hi = int(s.min()), int(s.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"samples contains {bad}, outside the classes 0..{num_classes - 1}")
    return s


def _as_num_classes(num_classes) -> int:
    if isinstance(num_classes, (bool, np.bool_)):
        raise TypeError("num_classes must be an integer, got a bool")
    try:
        k = operator.index(num_classes)
    except TypeError:
        raise TypeError(f"num_classes must be an integer, got {num_classes!r}") from None
    if k < 1:
        raise ValueError(f"num_classes must be at least 1, got {k}")
    return k


def empirical_pmf(samples, num_classes):
    r"""The empirical PMF of categorical samples (the article's equation 1).

    Parameters
    ----------
    samples : array_like of int
        The rolls :math:`X_1, \dots, X_N`: class indices in ``0 .. num_classes - 1`` (faces
        :math:`1..K` of the article are indices :math:`0..K-1` here). All entries are rolls,
        whatever the shape.
    num_classes : int
        :math:`K \ge 1`, the number of faces.

    Returns
    -------
    ndarray of float64, shape (num_classes,)
        :math:`p(k) = \frac{1}{N}\sum_n [X_n = k]`, each entry correctly rounded (one integer
        division).

    Raises
    ------
    TypeError
        ``samples`` not integer, ``num_classes`` not an integer.
    ValueError
        A sample outside the classes, or ``num_classes < 1``.

    Notes
    -----
    With no samples every entry is nan (0/0, NumPy's convention for an empty mean; the same as
    ``crossent.reference.empirical_pmf``).

    :math:`p` is the maximum-likelihood estimate of the categorical parameter: for the
    log-likelihood :math:`\ell(q) = N \sum_k p(k) \log q(k)`
    (:func:`categorical_log_likelihood`), :math:`\ell(p) - \ell(q) = N\, D(p\,\|\,q) \ge 0`
    for every PMF :math:`q`, with equality only at :math:`q = p` (proof: ``proofs/`` — the
    KKT conditions with complementary slackness for the classes never observed, and
    convexity for sufficiency). By the law of large numbers :math:`p(k) \to q(k)` almost surely
    as :math:`N \to \infty`, with error of order :math:`N^{-1/2}` (``docs/figures/lln.png``).

    Examples
    --------
    >>> import crossent
    >>> crossent.empirical_pmf([0, 2, 2, 1, 2, 0], num_classes=4)
    array([0.33333333, 0.16666667, 0.5       , 0.        ])
    """
    k = _as_num_classes(num_classes)
    s = _as_labels(samples, k)
    if s.size == 0:
        return np.full(k, np.nan)
    counts = np.bincount(s, minlength=k)
    return counts.astype(np.float64) / np.float64(s.size)  # exact ints < 2^53; one rounding each


def categorical_log_likelihood(q, samples):
    r"""Log-likelihood of categorical parameter(s) ``q`` on the samples.

    Parameters
    ----------
    q : array_like
        The candidate PMF(s), classes along the last axis (shape ``(..., K)``); float16,
        float32 or float64 (integers become float64). Used as given: no normalization.
    samples : array_like of int
        The rolls, class indices in ``0 .. K - 1``; all entries count, whatever the shape.

    Returns
    -------
    ndarray or scalar
        :math:`\ell(q) = \sum_n \log q(X_n)` for each PMF, shape ``q.shape[:-1]``, in the dtype
        of ``q``.

    Raises
    ------
    TypeError
        Non-real ``q`` or non-integer ``samples``.
    ValueError
        ``q`` is 0-d or has no classes, or a sample is outside ``0 .. K - 1``.

    See Also
    --------
    empirical_pmf, cross_entropy_pmf

    Notes
    -----
    With counts :math:`c_k = \sum_n [X_n = k] = N p(k)`,

    .. math::

        \ell(q) = \log \prod_n q(X_n) = \log \prod_k q(k)^{c_k}
                = \sum_k c_k \log q(k) = -N\, H(p, q).

    It is evaluated as :math:`-H(c, q)` with the cross-entropy kernel on the exact integer
    counts, so its error is that of :func:`cross_entropy_pmf` (stated in the
    ``"cross_entropy_pmf"`` row of :mod:`crossent._bounds`). A class that was observed but has
    :math:`q(k) = 0` gives :math:`-\infty`; classes never observed do not contribute (unless
    their entry is nan or negative, which makes the result nan). No samples give 0 (the empty
    sum: the likelihood of no data is 1). It is maximized at
    :math:`q` = :func:`empirical_pmf` of the samples.

    Examples
    --------
    >>> import crossent
    >>> x = [0, 0, 1, 2]
    >>> float(crossent.categorical_log_likelihood([0.5, 0.25, 0.25], x))  # 2 log(1/2) + 2 log(1/4)
    -4.1588830833596715
    """
    a = as_float_array(q, "q")
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty class axis (the last), got shape {a.shape}")
    k = a.shape[-1]
    s = _as_labels(samples, k)
    counts = np.bincount(s, minlength=k).astype(np.float64)  # exact for N < 2^53
    rq = to_rows(a.astype(np.float64, copy=False), a.ndim - 1)  # exact widening
    rp = _kernel_rows(np.broadcast_to(counts, rq.shape))
    out = np.zeros(rq.shape[0], dtype=np.float64)
    if rq.shape[0]:
        with parallel_guard():
            _kernels().cross_entropy_batch(rp, _kernel_rows(rq), 1.0, 0.0, out)
    return _finish(0.0 - out, a.shape[:-1], a.dtype)  # exact negation (and +0, not -0, for no samples)
