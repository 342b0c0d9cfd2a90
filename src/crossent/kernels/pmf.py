"""Numba kernels for entropy, cross-entropy and KL divergence of PMFs.

Three tiers (as numba-stats): *row kernels* reduce one contiguous row to one float64, *batch
kernels* run the row kernel over the rows of a C-contiguous ``(rows, K)`` array with ``prange``
(each row's sum runs in one thread in a fixed order, so results are bitwise identical whatever
the thread count), and the Python layer in :mod:`crossent.pmf` validates, reshapes and rounds.

Everything is computed in float64 (float32 rows are widened exactly) and every kernel returns
float64; the wrapper rounds once to the output dtype.

Error analysis
--------------
``u = 2**-53`` (unit roundoff of float64). The comment on each line says what error that line
contributes; ``docs/accuracy_pmf.md`` adds them up. Facts used:

* ``math.log`` is glibc's ``log``: error <= 0.52 ulp of its result, i.e. relative
  error <= 1.04 u (``ulp(y) <= 2u|y|``).
* :func:`~crossent.kernels._base.two_prod` (FMA) and :func:`~crossent.kernels._base.two_sum`
  are exact when no overflow/underflow occurs; :func:`~crossent.kernels._base.dd_div` (the
  change of base) has relative error <= 4 u^2.
* The accumulator ``(hi, lo)`` is Ogita-Rump-Oishi Sum2: ``hi`` gathers the terms through TwoSum,
  ``lo`` gathers the (exact) rounding errors and the low parts of the terms in plain float64.
  After n additions whose absolute values add up to ``A``, ``|hi + lo - sum| <= gamma_n^2 A``
  with ``gamma_n = n u / (1 - n u)``; ``n^2 u^2 <= 1.2e-20 u`` for ``n <= 1e6``:
  the summation is exact to far below one ulp for any K we accept.
* Non-finite terms (an infinity or a nan from the edge cases) go to a separate plain
  accumulator ``special``: a TwoSum of an infinity yields nan error terms, which must not reach
  the double-double. If ``special`` is non-zero or nan it is the result.

All kernels are compiled by :func:`~crossent.kernels._base.jit`, whose ``error_model="numpy"``
makes a division by zero give the IEEE infinity (the ``p > 0, q = 0`` case) instead of raising.
The batch kernels have explicit signatures (float64 and float32 rows), so this module compiles
when it is imported (``crossent.pmf`` imports it on first use); the row kernels are compiled in
their types.

Do not add ``fastmath`` here: contraction or reassociation destroys the error-free
transformations.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._base import INF, LN2_DD_HI, LN2_DD_LO, NAN, dd_div, fma, jit, two_prod, two_sum
from .softmax import _atanh_dd, _half_gap, _log_dd

__all__ = [
    "B_COEFFS",
    "result_in_base",
    "entropy_row",
    "cross_entropy_row",
    "kl_row",
    "entropy_batch",
    "cross_entropy_batch",
    "kl_batch",
    "entropy_batch_cr",
    "cross_entropy_batch_cr",
]

# Coefficients of B(z) = sum_{j>=0} z^j / (2j + 3), the series used for the KL term (see kl_row).
# Each is RN(1/(2j+3)): relative error <= u/2 per coefficient.
# Truncation: for 0 <= z <= 1/4 (1 + 2^-50) the tail sum_{j>=N} z^j/(2j+3) is at most
# z^N / ((2N+3)(1-z)) = 4^-28 / (59 * 3/4) < 2^-61.4, i.e. < 2^-59.8 relative to B(z) >= 1/3:
# 28 terms certify the series to below u/100 (checked in tests/test_pmf.py::test_b_series_tail).
_N_B = 28
B_COEFFS = np.array([1.0 / (2 * j + 3) for j in range(_N_B)], dtype=np.float64)


@jit(inline=True)
def result_in_base(hi, lo, special, lnb_hi, lnb_lo):
    """The float64 result of a row: ``(hi + lo) / ln b`` rounded once, or the special value.

    ``(lnb_hi, lnb_lo) = (1, 0)`` means nats (no division).
    """
    if special != 0.0 or special != special:
        return special / lnb_hi  # an infinity or nan; the sign follows ln b (base < 1 flips it)
    if not math.isfinite(hi):  # overflow of the sum itself (only for invalid inputs)
        return hi / lnb_hi
    if lnb_hi == 1.0 and lnb_lo == 0.0:
        return hi + lo  # one rounding of the double-double: <= 1/2 ulp
    s, t = dd_div(hi, lo, lnb_hi, lnb_lo)  # rel err <= 4u^2
    return s + t  # one rounding: <= 1/2 ulp


@jit
def entropy_row(p, lnb_hi, lnb_lo):
    r"""``-sum_k p_k log p_k / ln b`` of one row. Relative error <= 1.04u + O(K^2 u^2) before the last rounding."""
    hi = 0.0
    lo = 0.0
    special = 0.0
    for k in range(p.shape[0]):
        x = np.float64(p[k])  # exact widening
        if x > 0.0 and x < INF:
            lx = math.log(x)  # rel err <= 1.04u (glibc log <= 0.52 ulp)
            t, te = two_prod(x, lx)  # exact: x*lx = t + te (x*lx >= -745*x cannot overflow)
            hi, e = two_sum(hi, -t)  # exact
            lo += e - te  # Sum2 low part: err <= gamma_n^2 * sum|terms| overall
        elif x == 0.0:
            pass  # 0 log 0 = 0 (limit), exact
        elif x > 0.0:
            special += -INF  # p = +inf: -inf * log(inf) = -inf
        else:
            special += NAN  # nan or negative mass: undefined
    return result_in_base(hi, lo, special, lnb_hi, lnb_lo)


@jit
def cross_entropy_row(p, q, lnb_hi, lnb_lo):
    r"""``-sum_k p_k log q_k / ln b`` of one row. Relative error <= 1.04u (when p >= 0, q <= 1) before the last rounding."""
    hi = 0.0
    lo = 0.0
    special = 0.0
    for k in range(p.shape[0]):
        x = np.float64(p[k])  # exact
        y = np.float64(q[k])  # exact
        if x > 0.0 and x < INF and y > 0.0 and y < INF:
            ly = math.log(y)  # rel err <= 1.04u
            t, te = two_prod(x, ly)  # exact (|x*ly| <= 745 x: no overflow for x <= 2^1013)
            hi, e = two_sum(hi, -t)  # exact
            lo += e - te  # Sum2 low part
        elif x == 0.0 and y >= 0.0:
            pass  # 0 log q = 0 for any q >= 0, including q = 0 (0 log 0 = 0) and q = inf
        elif x >= 0.0 and y >= 0.0:
            special += -x * math.log(y)  # q = 0 < p: +inf; an infinite p or q: IEEE value (inf/nan)
        else:
            special += NAN  # nan or a negative mass
    return result_in_base(hi, lo, special, lnb_hi, lnb_lo)


@jit(inline=True)
def _log_ratio(x, y):
    """``log(x/y)`` as a double-double, for finite positive x, y, without overflow.

    With x = mx 2^ex, y = my 2^ey (frexp, exact): log(x/y) = (ex - ey) ln 2 + log(mx/my),
    mx/my in (1/2, 2). Absolute error <= 0.52 ulp(log(mx/my)) + O(u^2) <= 1.04u |log(mx/my)|
    + O(u^2 |log(x/y)|).
    """
    mx, ex = math.frexp(x)  # exact
    my, ey = math.frexp(y)  # exact
    r = mx / my  # in (1/2, 2); rel err <= u, recovered below
    rl = fma(-r, my, mx) / my  # remainder mx - r*my is exact; r + rl = mx/my (1 + O(u^2))
    lr = math.log(r) + rl / r  # log(mx/my) with abs err <= 0.52 ulp(log r) + O(u^2)
    k = np.float64(ex - ey)  # exact integer, |k| <= 2150
    a, ae = two_prod(k, LN2_DD_HI)  # exact
    ae += k * LN2_DD_LO  # err <= u |k LN2_DD_LO| ~ 2^-108 |k|
    s, se = two_sum(a, lr)  # exact
    return s, se + ae  # the sum of the parts; err O(u^2 |log(x/y)|)


@jit
def kl_row(p, q, lnb_hi, lnb_lo, bcoef):
    r"""``sum_k p_k log(p_k / q_k) / ln b`` of one row, keeping its digits when p ~ q.

    Each term is split as ``p log(p/q) = T + (p - q)`` with ``T = q psi(p/q - 1) >= 0``.
    With ``s = (p - q)/(p + q)`` (so that ``p/q = (1+s)/(1-s)``) the exact identity

        T = (p + q) s^2 (1 + s (1 + s) B(s^2)),   B(z) = sum_{j>=0} z^j / (2j + 3)

    (proofs: 2(1+s) atanh(s) - 2s = 2 s^2 (A(s^2) + s B(s^2)) with A(z) = 1 + z B(z), and
    T = q * that / (1 - s) = (p + q)/2 * that) has no cancellation: 1 + r with
    |r| <= 0.296 for |s| <= 1/2. The differences p - q are exact (TwoSum) and summed in the
    double-double accumulator, so sum (p - q) -- which is not 0 for floating-point PMFs -- is
    carried exactly rather than cancelling against the T's.

    For |s| > 1/2 (p/q outside [1/3, 3]) the term p log(p/q) is used directly: there
    |log(p/q)| >= ln 3 and log(p/q) is computed as a double-double by :func:`_log_ratio`.
    """
    hi = 0.0
    lo = 0.0
    special = 0.0
    nb = bcoef.shape[0]
    for k in range(p.shape[0]):
        x = np.float64(p[k])  # exact
        y = np.float64(q[k])  # exact
        if x > 0.0 and x < INF and y > 0.0 and y < INF:
            d, de = two_sum(x, -y)  # exact: p - q = d + de
            sg, sge = two_sum(x, y)  # exact: p + q = sg + sge (overflow only if p + q > DBL_MAX)
            if not math.isfinite(sg):
                special += x * math.log(x / y)  # only for invalid inputs near DBL_MAX: plain value
            elif abs(d) <= 0.5 * sg:
                # ---- |s| <= 1/2 (up to one rounding): series branch, T + (p - q) ----
                s = d / sg  # rel err <= u
                rem = fma(-s, sg, d)  # exact remainder d - s*sg (no underflow: see docs)
                sl = (rem + de - s * sge) / sg  # s + sl = s_exact (1 + O(u^2))
                s2, s2e = two_prod(s, s)  # exact
                s2e += 2.0 * s * sl  # s^2 = s2 + s2e with rel err O(u^2)
                ph, pe = two_prod(sg, s2)  # exact
                pe += sg * s2e + sge * s2  # P = (p+q) s^2 = ph + pe, rel err O(u^2)
                # B(z) by Horner, z = s2 (rel err u/2 in z, coefficient errors u/2):
                # rel err of b <= 1.6u (terms positive, dominated by the last addition)
                b = bcoef[nb - 1]
                for j in range(nb - 2, -1, -1):
                    b = b * s2 + bcoef[j]
                w = s + s2  # s(1 + s): rel err <= 2u (s's own u + this rounding)
                r = w * b  # r = s(1+s)B(s^2): rel err <= 4.6u; |r| <= 0.296
                hi, e = two_sum(hi, ph)  # exact
                lo += e
                hi, e = two_sum(hi, ph * r)  # ph*r rounding: <= u|P r|; r's error: <= 4.6u|P r|
                lo += e + pe
                hi, e = two_sum(hi, d)  # exact: the p - q part, carried in full
                lo += e + de
            else:
                # ---- |s| > 1/2: p log(p/q) directly, log(p/q) as a double-double ----
                lh, ll = _log_ratio(x, y)  # abs err <= 1.04u |log(mx/my)| <= 0.66u |log(p/q)|
                t, te = two_prod(x, lh)  # exact
                te += x * ll  # err O(u^2 |t|)
                hi, e = two_sum(hi, t)  # exact
                lo += e + te
        elif x == 0.0 and y >= 0.0:
            pass  # 0 log(0/q) = 0 for any q >= 0 (0 log 0 = 0)
        elif x >= 0.0 and y >= 0.0:
            special += x * math.log(x / y)  # q = 0 < p: +inf; an infinite p or q: IEEE value
        else:
            special += NAN  # nan or a negative mass
    return result_in_base(hi, lo, special, lnb_hi, lnb_lo)


# ---------------------------------------------------------------------------------------------
# batch kernels: one row per iteration, rows in parallel; each row's sum stays in one thread.


@jit(
    [
        "void(float64[:, ::1], float64, float64, float64[::1])",
        "void(float32[:, ::1], float64, float64, float64[::1])",
    ],
    parallel=True,
)
def entropy_batch(p, lnb_hi, lnb_lo, out):
    """``out[i] = entropy_row(p[i])`` for every row (float64 results)."""
    for i in prange(p.shape[0]):
        out[i] = entropy_row(p[i], lnb_hi, lnb_lo)


@jit(
    [
        "void(float64[:, ::1], float64[:, ::1], float64, float64, float64[::1])",
        "void(float32[:, ::1], float32[:, ::1], float64, float64, float64[::1])",
    ],
    parallel=True,
)
def cross_entropy_batch(p, q, lnb_hi, lnb_lo, out):
    """``out[i] = cross_entropy_row(p[i], q[i])`` for every row (float64 results)."""
    for i in prange(p.shape[0]):
        out[i] = cross_entropy_row(p[i], q[i], lnb_hi, lnb_lo)


@jit(
    [
        "void(float64[:, ::1], float64[:, ::1], float64, float64, float64[::1], float64[::1])",
        "void(float32[:, ::1], float32[:, ::1], float64, float64, float64[::1], float64[::1])",
    ],
    parallel=True,
)
def kl_batch(p, q, lnb_hi, lnb_lo, bcoef, out):
    """``out[i] = kl_row(p[i], q[i])`` for every row (float64 results)."""
    for i in prange(p.shape[0]):
        out[i] = kl_row(p[i], q[i], lnb_hi, lnb_lo, bcoef)


# ---------------------------------------------------------------------------------------------
# The correctly rounded path (float64 rows, rounding mode "correct"; crossent._rounding).
#
# Out of line: these row functions are separate ``@jit`` functions called only by the ``*_cr``
# batch kernels, which are lazy (no signature: compiled on the first call in the correct mode,
# then cached), so the fast kernels above neither carry their code nor compile it at import.
#
# Every row is a sum of terms ``c_k = -p_k log q_k`` (entropy: q = p), or ``p_k log(p_k/q_k)``
# (KL), each formed as a double-double, summed in double-double, divided by ``ln b`` in
# double-double; the row's error bound is absolute,
#
#     |computed - exact| <= rel * A / |ln b| + abs / min(1, |ln b|),
#
# with ``A = sum_k |c_k|`` (accumulated in float64 alongside) and ``(rel, abs)`` from
# crossent._rounding.pmf_bound(K), whose docstring and docs/accuracy.md
# ("Correct rounding of the PMF functions") derive it step by step:
#
# 1. the logarithm, ``_log2k_dd``/``_atanh_dd``: relative error <= 2**-85 (E_L), with a wide
#    margin: ``_atanh_dd`` is within ``2**-98`` (its float64 tail starts at ``w**9``; with the
#    tail from ``w**5`` on, as first written, it was ``2**-86.9`` at ``z = 0.1716``), and the
#    rest (``dd_div``'s ``4u^2``, ``k ln 2``'s ``2**-106``) is below ``2**-100``;
# 2. the product ``p * (Lh + Ll)``: TwoProduct exact, ``p * Ll`` and its addition rounded:
#    <= 2**-105 relative, plus <= 2**-1073 absolute where the product is subnormal;
# 3. the double-double accumulation: each step errs by <= 5.01 u^2 (|sum so far| + |c_k|)
#    (its two roundings, with |lo| <= u |hi| and |te| <= 2u |t|), <= K 2**-103 A over the row;
# 4. the division by ``ln b`` (dd_div, 4 u^2; the pair (lnb_hi, lnb_lo) from mpmath within
#    u^2): <= 2**-103 relative to the result, whose magnitude is at most A / |ln b|.
#
# For entropy and the cross-entropy of PMFs (p, q <= 1) every term is non-negative and A is
# the result itself: the bound is relative. For KL the terms have both signs and A can exceed
# the result by the factor 1/|s|, s = (p - q)/(p + q): rows with p within about 2**-30 of q
# relatively are sent to the oracle (measured in docs/accuracy.md).


# log(2**e (hi + lo)) as a double-double: the softmax kernels' (its error analysis is there)
_log2k_dd = _log_dd


@jit
def _log_ratio_dd(x, y):
    """``log(x / y)`` as a double-double for finite positive ``x``, ``y``, within ``2**-85``
    relative (:func:`_log2k_dd`). Near 1 (``|s| <= 0.17``, ``s = (x - y)/(x + y)``):
    ``2 atanh(s)`` with ``x - y`` and ``x + y`` exact (TwoSum, after an exact scaling by ``2**600`` of subnormal
    pairs, ``s`` being scale-free) and ``s`` by dd_div (``4u^2``): the logarithm keeps its
    relative accuracy however close ``x`` is to ``y``. Otherwise (``|log(x/y)| >= 0.34``):
    ``x/y = 2**(ex - ey) mx/my`` (frexp, exact), ``mx/my`` in ``(1/2, 2)`` by dd_div
    (``4u^2`` relative, ``2**-104`` absolute in the logarithm), then :func:`_log2k_dd`:
    no overflow of the ratio."""
    a = x
    b = y
    if a < 2.0**-400 and b < 2.0**-400:
        a *= 2.0**600  # exact
        b *= 2.0**600
    dh, dl = two_sum(a, -b)
    sh, sl = two_sum(a, b)
    if math.isfinite(sh) and abs(dh) <= 0.17 * sh:
        zh, zl = dd_div(dh, dl, sh, sl)
        wh, wl = two_prod(zh, zh)
        wl += 2.0 * zh * zl
        th, tl = _atanh_dd(zh, zl, wh, wl)
        return 2.0 * th, 2.0 * tl
    mx, ex = math.frexp(x)
    my, ey = math.frexp(y)
    rh, rl = dd_div(mx, 0.0, my, 0.0)
    return _log2k_dd(rh, rl, ex - ey)


@jit
def _row_dd(p, q, kind, lnb_hi, lnb_lo, rel, ab):
    """One row of the correctly rounded path before its rounding: ``(status, rh, rl, err)``.
    ``kind`` 0: entropy (``q`` is ``p``), 1: cross-entropy, 2: KL. Status 0: ``rh`` is the
    result (a special value -- ``0 log 0``, ``q = 0 < p``, infinities, nan, those of the fast
    row kernels, accumulated the same way -- or 0 when every term is exactly 0); status 1: the
    result is within ``err`` of the double-double ``rh + rl`` (the bound of the section
    comment above, ``(rel, ab)`` from ``crossent._rounding.pmf_bound``); status 2: an
    overflow (inputs near DBL_MAX), for the oracle."""
    hi = 0.0
    lo = 0.0
    A = 0.0
    special = 0.0
    for k in range(p.shape[0]):
        x = p[k]
        y = q[k]
        if x > 0.0 and x < INF and y > 0.0 and y < INF:
            if kind == 2:
                lh, ll = _log_ratio_dd(x, y)  # log(p/q), E_L
            else:
                lh, ll = _log2k_dd(y, 0.0, 0)  # log q, E_L
                lh = -lh
                ll = -ll
            t, te = two_prod(x, lh)  # exact (up to 2**-1075 when subnormal)
            te += x * ll  # <= 2**-106 |c_k| (+ subnormal rounding)
            s, e = two_sum(hi, t)  # exact
            e += lo + te  # two roundings: <= 5.01 u^2 (|hi| + |t|)
            hi, lo = two_sum(s, e)  # exact
            A += abs(t)
        elif x == 0.0 and y >= 0.0:
            pass  # 0 log(q) = 0 for any q >= 0 (0 log 0 = 0)
        elif x >= 0.0 and y >= 0.0:
            if kind == 2:
                special += x * math.log(x / y)  # q = 0 < p: +inf; an infinite p or q
            else:
                special += -x * math.log(y)
        else:
            special += NAN  # nan or a negative mass
    if special != 0.0 or special != special:
        return 0, special / lnb_hi, 0.0, 0.0  # as the fast kernels (result_in_base)
    if hi - hi != 0.0 or lo - lo != 0.0:
        return 2, NAN, NAN, NAN
    if A == 0.0:  # every term exactly 0
        return 0, result_in_base(hi, lo, 0.0, lnb_hi, lnb_lo), 0.0, 0.0
    if lnb_hi == 1.0 and lnb_lo == 0.0:
        return 1, hi, lo, rel * A + ab
    rh, rl = dd_div(hi, lo, lnb_hi, lnb_lo)
    return 1, rh, rl, rel * (A / abs(lnb_hi)) + ab / min(1.0, abs(lnb_hi))


@jit
def _row_cr(p, q, kind, lnb_hi, lnb_lo, rel, ab):
    """``(value, decided)``: :func:`_row_dd` rounded when every value within its bound rounds
    to the same float (the test of ``crossent.kernels.softmax._round_cr``); otherwise
    ``decided`` is False (the oracle's row)."""
    status, rh, rl, err = _row_dd(p, q, kind, lnb_hi, lnb_lo, rel, ab)
    if status == 0:
        return rh, True
    if status == 2:
        return NAN, False
    r, t = two_sum(rh, rl)
    if r - r != 0.0:
        return NAN, False
    if (abs(t) + err) * (1.0 + 2.0**-50) < _half_gap(r):
        return r, True
    return NAN, False


@jit(parallel=True)
def entropy_batch_cr(p, lnb_hi, lnb_lo, rel, ab, out, slow):
    """The correctly rounded entropy of every float64 row; ``slow[i] = 1`` marks the rows whose
    rounding the bound cannot decide (``out[i]`` is then nan, for the oracle to replace)."""
    for i in prange(p.shape[0]):
        v, ok = _row_cr(p[i], p[i], 0, lnb_hi, lnb_lo, rel, ab)
        out[i] = v
        slow[i] = 0 if ok else 1


@jit(parallel=True)
def cross_entropy_batch_cr(p, q, kind, lnb_hi, lnb_lo, rel, ab, out, slow):
    """As :func:`entropy_batch_cr`, for the cross-entropy (``kind`` 1) or KL (``kind`` 2)."""
    for i in prange(p.shape[0]):
        v, ok = _row_cr(p[i], q[i], kind, lnb_hi, lnb_lo, rel, ab)
        out[i] = v
        slow[i] = 0 if ok else 1
