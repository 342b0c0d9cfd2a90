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

import mpmath
import numpy as np

from . import _rounding
from ._validate import (
    as_num_classes,
    as_samples,
    cast_result,
    compute_dtype,
    loglik_inputs,
    parallel_guard,
    check_no_q,
    pmf_inputs,
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


def _kernel_rows(rows: np.ndarray) -> np.ndarray:
    """``rows`` as the kernels' type: C-contiguous and writeable (a read-only view is copied)."""
    return np.require(rows, requirements=["C", "W"])


def _reduce_shape(shape: tuple, ax: int) -> tuple:
    return shape[:ax] + shape[ax + 1 :]


def _finish(out64: np.ndarray, shape: tuple, dtype: np.dtype):
    """Reshape the float64 row results and round once to ``dtype`` (NumPy's cast rounds to nearest)."""
    res = cast_result(out64.reshape(shape), dtype)
    return res[()] if res.ndim == 0 else res


def _prepare(arrays, names, axis, base, check):
    """Validate (:func:`crossent._validate.pmf_inputs`, the rules shared with the oracle) and
    lay out the operands as ``(rows, K)`` arrays of the kernels' dtype (``None`` for K = 0)."""
    arrs, dtype, shape, ax, b = pmf_inputs(arrays, names, axis, base, check)
    out_shape = _reduce_shape(shape, ax)
    if shape[ax] == 0:
        return _log_base(b), dtype, out_shape, None, b
    cd = compute_dtype(dtype)
    rows = [to_rows(np.broadcast_to(a.astype(cd, copy=False), shape), ax) for a in arrs]
    return _log_base(b), dtype, out_shape, rows, b


def _correctly_rounded(name, rows, lb, b, out):
    """The correctly rounded path (``crossent._rounding``, float64 rows): the kernel rounds
    the rows whose double-double value and error bound (``_rounding.pmf_bound``) decide the
    rounding and marks the others, which the oracle recomputes."""
    from . import reference

    rows = [_kernel_rows(r) for r in rows]
    rel, ab = _rounding.pmf_bound(rows[0].shape[1])
    slow = np.zeros(rows[0].shape[0], dtype=np.uint8)
    k = _kernels()
    with parallel_guard():
        if name == "entropy":
            k.entropy_batch_cr(rows[0], lb[0], lb[1], rel, ab, out, slow)
        else:
            kind = 1 if name == "cross_entropy_pmf" else 2
            k.cross_entropy_batch_cr(rows[0], rows[1], kind, lb[0], lb[1], rel, ab, out, slow)
    idx = np.flatnonzero(slow)
    _rounding.count(name, rows[0].shape[0], idx.size)
    if idx.size:
        out[idx] = getattr(reference, name)(*(r[idx] for r in rows), base=b, axis=-1,
                                            check=False)


def _loglik_correct(rp, rq, samples, out):
    """The correctly rounded path of :func:`categorical_log_likelihood`: ``-H(c, q)`` by the
    cross-entropy's (``_correctly_rounded``) with the exact counts ``c`` as ``p``; the bound
    ``pmf_bound`` is stated for any finite non-negative ``p`` (its relative part is of
    ``A = sum_k |c_k log q_k|``, so it holds for counts above 1 and, with ``q_k > 1``, for
    terms of both signs). Negating a correctly rounded value is exact."""
    from . import reference

    rel, ab = _rounding.pmf_bound(rq.shape[1])
    slow = np.zeros(rq.shape[0], dtype=np.uint8)
    with parallel_guard():
        _kernels().cross_entropy_batch_cr(rp, rq, 1, 1.0, 0.0, rel, ab, out, slow)
    idx = np.flatnonzero(slow)
    _rounding.count("categorical_log_likelihood", rq.shape[0], idx.size)
    if idx.size:
        out[idx] = -reference.categorical_log_likelihood(rq[idx], samples, check=False)


# ---------------------------------------------------------------------------------------------
# public functions


def entropy(p, *q, base=None, axis=-1, check=None):
    r"""Shannon entropy of PMFs along ``axis``.

    Parameters
    ----------
    p : array_like
        Probabilities, float16, bfloat16, float32 or float64 (integers are converted to float64),
        with the classes along ``axis``. Used as given: no normalization.
    *q
        Not accepted: SciPy's ``entropy(p, q)`` is the relative entropy
        :math:`D(p \,\|\, q)`, which is :func:`kl_divergence`; a second positional argument
        raises ``TypeError`` saying so (rather than computing a different function).
    base : float, optional
        Logarithm base: ``None`` (default) for nats, 2 for bits, 10 for bans (hartleys), or any
        positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : {None, True, False}, optional
        What is verified before computing (see *Input rules* in the docs).
        ``None`` (default): every entry is finite and non-negative, else ``ValueError``
        naming the argument and the first bad index (one cheap pass over the input).
        ``True``: also every row sums to 1 within ``K * eps`` (``eps`` the machine epsilon
        of the argument's dtype; ``K * eps`` bounds the error of normalizing by a
        floating-point sum). ``False``: nothing, for callers that have validated already
        (bad entries then give the IEEE values listed in Notes).

    Returns
    -------
    ndarray or scalar
        :math:`H(p)` with ``axis`` removed, in the dtype of ``p``.

    Raises
    ------
    TypeError
        ``p`` is not real, ``axis`` is not an integer, ``base`` is not a number, ``check``
        is not None/True/False.
    ValueError
        ``axis`` out of range, ``base`` not positive/finite or equal to 1, a nan, negative
        or infinite entry (unless ``check=False``), or (with ``check=True``) a row that is
        not a PMF.

    See Also
    --------
    cross_entropy_pmf, kl_divergence

    Notes
    -----
    .. math::

        H(p) = -\sum_{k} p_k \log_b p_k,\qquad 0 \log 0 = 0.

    Edge cases: a zero mass contributes 0; an empty class axis gives 0 (the empty sum). Only
    with ``check=False`` can bad entries get through: an infinite mass then makes the
    result :math:`-\infty` (in nats) and a nan or negative mass makes the row nan.

    Each term :math:`p_k \log p_k` is formed exactly from the rounded logarithm (an FMA product)
    and the terms are added in double-double, so the only error before the final rounding is
    the logarithm's (:math:`\le 0.52` ulp), independent of :math:`K`. The base is changed by
    one double-double division by :math:`\ln b` (computed with mpmath), so bits and bans are as
    accurate as nats. The stated bound is the ``"entropy"`` row of the accuracy table
    (:mod:`crossent._bounds`); float16/float32 inputs are computed in float64 and rounded once.
    In the rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64 results are
    correctly rounded (``docs/accuracy.md``, "Correct rounding of the PMF functions").

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
    check_no_q(q)
    lb, dtype, out_shape, rows, b = _prepare([p], ["p"], axis, base, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rows is not None and rows[0].shape[0] and _rounding.correct(dtype):
        _correctly_rounded("entropy", rows, lb, b, out)
    elif rows is not None and rows[0].shape[0]:
        with parallel_guard():
            _kernels().entropy_batch(_kernel_rows(rows[0]), lb[0], lb[1], out)
    return _finish(out, out_shape, dtype)


def cross_entropy_pmf(p, q, *, base=None, axis=-1, check=None):
    r"""Cross-entropy :math:`H(p, q)` of PMFs along ``axis``.

    Parameters
    ----------
    p, q : array_like
        Probabilities, broadcastable against each other, with the classes along ``axis``
        (float16, bfloat16, float32 or float64; integers become float64; the result dtype is
        ``numpy.result_type`` of the two). Used as given: no normalization.
    base : float, optional
        Logarithm base: ``None`` (nats), 2 (bits), 10 (bans) or any positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : {None, True, False}, optional
        As for :func:`entropy`, for ``p`` and ``q`` each (a bad entry is reported with its
        index in the argument as given, before broadcasting).

    Returns
    -------
    ndarray or scalar
        :math:`H(p, q)` with ``axis`` removed.

    Raises
    ------
    TypeError
        Non-real input, non-integer ``axis``, non-numeric ``base``, a ``check`` that is not
        None/True/False.
    ValueError
        Shapes that do not broadcast, ``axis`` out of range, a bad ``base``, a nan, negative
        or infinite entry (unless ``check=False``), or (with ``check=True``) a row that is
        not a PMF.

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
    :math:`q_k = 0`); :math:`p_k > 0` with :math:`q_k = 0` gives :math:`+\infty`. Only with
    ``check=False``: a nan or negative entry makes the row nan; an infinite entry gives the
    IEEE value of :math:`-p_k \log q_k`.

    Error: the logarithm's rounding (:math:`\le 0.52` ulp per term) only; products are exact
    (FMA) and the sum is double-double, so the bound does not grow with :math:`K`. The stated
    bound is the ``"cross_entropy_pmf"`` row of :mod:`crossent._bounds`.
    In the rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64 results are
    correctly rounded (``docs/accuracy.md``, "Correct rounding of the PMF functions").

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
    lb, dtype, out_shape, rows, b = _prepare([p, q], ["p", "q"], axis, base, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rows is not None and rows[0].shape[0] and _rounding.correct(dtype):
        _correctly_rounded("cross_entropy_pmf", rows, lb, b, out)
    elif rows is not None and rows[0].shape[0]:
        rp, rq = rows
        with parallel_guard():
            _kernels().cross_entropy_batch(_kernel_rows(rp), _kernel_rows(rq), lb[0], lb[1], out)
    return _finish(out, out_shape, dtype)


def kl_divergence(p, q, *, base=None, axis=-1, check=None):
    r"""Kullback–Leibler divergence :math:`D(p\,\|\,q)` of PMFs along ``axis``.

    Accurate when :math:`p \approx q`: the divergence is never formed as
    :math:`H(p,q) - H(p,p)`, which loses all its digits there.

    Parameters
    ----------
    p, q : array_like
        Probabilities, broadcastable against each other, with the classes along ``axis``
        (float16, bfloat16, float32 or float64; integers become float64; the result dtype is
        ``numpy.result_type`` of the two). Used as given: no normalization.
    base : float, optional
        Logarithm base: ``None`` (nats), 2 (bits), 10 (bans) or any positive number other than 1.
    axis : int, optional
        The class axis (default: the last).
    check : {None, True, False}, optional
        As for :func:`entropy`, for ``p`` and ``q`` each (a bad entry is reported with its
        index in the argument as given, before broadcasting).

    Returns
    -------
    ndarray or scalar
        :math:`D(p\,\|\,q)` with ``axis`` removed.

    Raises
    ------
    TypeError
        Non-real input, non-integer ``axis``, non-numeric ``base``, a ``check`` that is not
        None/True/False.
    ValueError
        Shapes that do not broadcast, ``axis`` out of range, a bad ``base``, a nan, negative
        or infinite entry (unless ``check=False``), or (with ``check=True``) a row that is
        not a PMF.

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
    :math:`q_k = 0` gives :math:`+\infty`. Only with ``check=False``: a nan or negative entry
    makes the row nan; an infinite entry gives the IEEE value of :math:`p_k \log(p_k/q_k)`.
    For inputs that are not PMFs the result can be negative. Accuracy (the ``"kl_divergence"`` row of
    :mod:`crossent._bounds`): float64 within 4 ulp when :math:`\sum_k (p_k - q_k)` does not
    cancel most of :math:`\sum_k T_k` (always, for inputs that are PMFs up to rounding);
    float32/float16 within 1 ulp, correctly rounded in practice.
    In the rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64 results are
    correctly rounded (``docs/accuracy.md``, "Correct rounding of the PMF functions").

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
    lb, dtype, out_shape, rows, b = _prepare([p, q], ["p", "q"], axis, base, check)
    out = np.zeros(int(np.prod(out_shape)), dtype=np.float64)
    if rows is not None and rows[0].shape[0] and _rounding.correct(dtype):
        _correctly_rounded("kl_divergence", rows, lb, b, out)
    elif rows is not None and rows[0].shape[0]:
        rp, rq = rows
        with parallel_guard():
            _kernels().kl_batch(_kernel_rows(rp), _kernel_rows(rq), lb[0], lb[1], _kernels().B_COEFFS, out)
    return _finish(out, out_shape, dtype)


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
    k = as_num_classes(num_classes)
    s = as_samples(samples, k)
    if s.size == 0:
        return np.full(k, np.nan)
    counts = np.bincount(s, minlength=k)
    return counts.astype(np.float64) / np.float64(s.size)  # exact ints < 2^53; one rounding each


def categorical_log_likelihood(q, samples, *, check=None):
    r"""Log-likelihood of categorical parameter(s) ``q`` on the samples.

    Parameters
    ----------
    q : array_like
        The candidate PMF(s), classes along the last axis (shape ``(..., K)``); float16,
        float32 or float64 (integers become float64). Used as given: no normalization.
    samples : array_like of int
        The rolls, class indices in ``0 .. K - 1``; all entries count, whatever the shape.
    check : {None, True, False}, optional
        As for :func:`entropy`, for ``q``: by default every entry must be finite and
        non-negative; ``True`` also requires rows summing to 1; ``False`` checks nothing.

    Returns
    -------
    ndarray or scalar
        :math:`\ell(q) = \sum_n \log q(X_n)` for each PMF, shape ``q.shape[:-1]``, in the dtype
        of ``q``.

    Raises
    ------
    TypeError
        Non-real ``q``, non-integer ``samples``, a ``check`` that is not None/True/False.
    ValueError
        ``q`` is 0-d or has no classes, a sample is outside ``0 .. K - 1``, an entry of
        ``q`` is nan, negative or infinite (unless ``check=False``), or (with
        ``check=True``) a row of ``q`` is not a PMF.

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
    :math:`q(k) = 0` gives :math:`-\infty`; classes never observed do not contribute (with
    ``check=False``, unless their entry is nan or negative, which makes the result nan). No
    samples give 0 (the empty
    sum: the likelihood of no data is 1). It is maximized at
    :math:`q` = :func:`empirical_pmf` of the samples. In the rounding mode ``"correct"``
    (:func:`crossent.rounding`) the float64 results are correctly rounded (the
    cross-entropy's path on the counts, ``docs/accuracy.md``).

    Examples
    --------
    >>> import crossent
    >>> x = [0, 0, 1, 2]
    >>> float(crossent.categorical_log_likelihood([0.5, 0.25, 0.25], x))  # 2 log(1/2) + 2 log(1/4)
    -4.1588830833596715
    """
    a, s = loglik_inputs(q, samples, check)
    k = a.shape[-1]
    counts = np.bincount(s, minlength=k).astype(np.float64)  # exact for N < 2^53
    rq = to_rows(a.astype(np.float64, copy=False), a.ndim - 1)  # exact widening
    rp = _kernel_rows(np.broadcast_to(counts, rq.shape))
    out = np.zeros(rq.shape[0], dtype=np.float64)
    if rq.shape[0] and _rounding.correct(a.dtype):
        _loglik_correct(rp, _kernel_rows(rq), s, out)
    elif rq.shape[0]:
        with parallel_guard():
            _kernels().cross_entropy_batch(rp, _kernel_rows(rq), 1.0, 0.0, out)
    return _finish(0.0 - out, a.shape[:-1], a.dtype)  # exact negation (and +0, not -0, for no samples)
