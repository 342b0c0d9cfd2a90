"""Kernels of the softmax family: the row statistics (max, sum of exponentials, log-sum) that
every softmax-based kernel shares, and the batch kernels of logsumexp, log_softmax and softmax.
The cross-entropy kernels (:mod:`crossent.kernels.loss`) build on the row statistics here.

Three tiers, as in numba-stats: row helpers (``@jit``, compiled once per row type and
inlined by LLVM; the small scalar functions inside the vectorized loops, and ``_row_stats``
with the float32 path's passes, are ``inline="always"``: inlined by Numba, the row's array
reference counting is pruned instead of being atomic operations on the shared input's
counter from every thread, measured 3-8% on 1000-class rows), batch kernels
(``prange`` over tasks of rows; every row is computed the same way whatever the thread
count), and the thin Python layer in ``crossent.softmax`` / ``crossent.loss`` that
validates and reshapes. Every kernel works on C-contiguous ``(rows, C)`` arrays of float32
or float64 and computes in float64.

The row algorithm (Blanchard, Higham & Higham 2021, with every rounding error of the
max-shift, the exp and the sum carried along) — ``docs/accuracy.md`` has the error budget
of each step, next to the line it bounds:

1. ``m = max_i x_i`` (exact).
2. ``x_i - m = d_i + e_i`` exactly (TwoSum; ``e_i`` is the rounding error of the shift).
3. ``exp(x_i - m) = T_i + E_i``: ``T_i = 2**k (h_i)``, ``E_i = 2**k (l_i + e_i h_i)`` with
   ``h_i + l_i = 1 + expm1(r_i)`` exactly; the only error left is the exp's (<= 0.75u,
   ``proofs/exp_error_bound.py``). The max term is exactly ``1``.
4. ``S = sum_i (T_i + E_i)`` in double-double: fixed-order TwoSum lanes over the ``T_i``,
   the ``E_i`` into the lanes' error parts (``_base.dd_sum2``), so the result does not depend
   on threads or batch splits. float32/float16 inputs: plain lanes (``_base.lane_sum``).
5. ``L = log S`` in double-double (``_log_of_sum``), with ``S - 1`` exact inside, so a
   confident row keeps every digit (the loss of 1e-20 is not 0).
6. ``-log_softmax_i = (m - x_i) + L = (-d_i) + (L - e_i)``: two non-negative terms, rounded
   once (``_round_sum``). ``softmax_i = c (T_i + E_i)`` with ``c = 1/S`` in double-double,
   rounded once by an FMA; the gradient is the same with ``c = w / (S * denom)``.

Each batch kernel walks the rows in tasks of ``ROWS_PER_TASK`` rows (``prange`` over tasks);
a task owns its scratch rows (``bt``, ``be``: the terms of step 3; ``b3``: per-class loss
terms), so that every loop over a row is a plain loop over contiguous memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._base import (DD_ACC, INF, LN2_CW_HI, LN2_CW_LO, LN2_DD_HI, LN2_DD_LO, NAN, _f64_as_i64,
                    _i64_as_f64, dd_div,
                    dd_sum2, fast_two_sum, fma, jit, lane_sum, padded, row_max, two_prod, two_sum,
                    wide_vectors)
from .exp import PARTS_SCALE_EXP, X_MIN_PARTS
from .exp import exp_parts_dd
from .exp import exp_parts_f64 as exp_parts
from .exp import exp_parts_f64_short as exp_parts_short

ROWS_PER_TASK = 32  # rows per prange task: each task allocates its scratch rows once

OK = 0  # row status: finite max, finite sum
NAN_ROW = 1  # a nan or +inf in the row: every output of the row is nan
MASKED_ROW = 2  # every entry is -inf: logsumexp -inf, everything else nan

# The terms are kept scaled by 2**SCALE_EXP so that none of them is subnormal: a row of
# many terms near exp(-745) must not have each one rounded to the subnormal grid before
# they are added up. Scaling by a power of two is exact; it is undone once, at the end.
SCALE_EXP = PARTS_SCALE_EXP  # 600: exp_parts_* return their terms scaled by it
SCALE = 2.0**SCALE_EXP
INV_SCALE = 2.0**-SCALE_EXP
_SQRT2_SCALED = 1.4142135623730951 * SCALE

# 2 atanh(z) = 2z + 2 z^3 P(z^2),  P(w) = sum_{j>=1} w^(j-1) / (2j + 1);  |z| <= 0.1716
_ATANH_TERMS = 14  # w <= 0.02944: the first omitted term w^14 / 29 < 2**-76


# ----------------------------------------------------------------------------- row helpers
@jit
def _has_nan(x):
    wide_vectors()
    for i in range(x.shape[0]):
        if x[i] != x[i]:
            return True
    return False


@jit(inline=True)
def _term_rows(C):
    """A task's scratch rows for the terms ``T_i`` and ``E_i`` of its rows: ``padded(C)`` long
    and zero beyond ``C`` (the fills write ``[0, C)`` only), so that the lane sums run over
    whole lanes with no scalar tail."""
    return np.zeros(padded(C)), np.zeros(padded(C))


@jit(inline=True)
def _shift(v, m):
    """``(d, e)`` with ``d + e = v - m`` exactly; ``e = 0`` when ``v`` is -inf."""
    d, e = two_sum(v, -m)
    e = 0.0 if v == -INF else e
    return d, e


@jit(inline=True)
def _term_pair(v, m):
    """``2**SCALE_EXP exp(v - m) = T + E`` up to the exp's own error (<= 0.75u relative).

    ``exp(d + e) = exp(d) (1 + e + O(e**2))``, ``|e| <= 2**-53 * 1100`` for ``d >= -1100``
    (the exp's clamp; beyond, the term is below 2**-986 next to the max term 2**600 and ``e``
    is dropped): the dropped ``e**2/2`` is below ``2**-86``. With ``h = fl(1 + t)``,
    ``l = (1 + t) - h`` (exact, ``|t| < 1``) and the scale ``s = 2**(k + SCALE_EXP)`` (normal),
    everything is formed on the scaled values, one operation each: ``T = fl(s + t s) = h s``
    (an FMA; ``s`` is a power of two, so this is the rounding of ``1 + t``, scaled); ``s - T``
    is exact (Sterbenz); ``l s = t s + (s - T)`` is exact, so the FMA returns it;
    ``E = fl(e T + l s) = fl(e h + l) s``. "Exact" holds unless a value is below 2**-1022,
    i.e. unless the term is below 2**-968, which no sum or output sees.
    """
    d, e = two_sum(v, -m)
    # beyond the exp's clamp the term is below 2**-986 (next to the max term 2**600), and e,
    # up to 2**-53 |d| (up to 2**970 for d = -1e300), must not scale it up: drop it there
    # (this also covers v = -inf, whose TwoSum error is nan)
    e = 0.0 if d < X_MIN_PARTS else e
    t, s = exp_parts(d)  # (1 + t) s within 0.75u of 2**SCALE_EXP exp(d): EXP_PARTS_F64_MAX_REL_ERR
    T = fma(t, s, s)  # h s, h = fl(1 + t): exact scaling of one rounding
    ls = fma(t, s, s - T)  # l s = (1 + t) s - T: exact (s - T exact by Sterbenz)
    return T, fma(e, T, ls)  # (l + e h) s: rounds a value below 2**-42 h s, i.e. 2**-95 of T


@jit(inline=True)
def _term_pair_dd(v, m):
    """:func:`_term_pair` with the double-double exponential (``exp_parts_dd``): ``T + E``
    within ``EXP_PARTS_DD_MAX_REL_ERR + 2**-85`` of ``2**SCALE_EXP exp(v - m)`` (the shift's
    ``e`` enters as ``exp(d)(1 + e)``, whose dropped ``e**2/2`` is below ``2**-86``; the
    rounding of ``E``, below ``2**-42 T``, is below ``2**-95 T``). For the correctly rounded
    path."""
    d, e = two_sum(v, -m)
    e = 0.0 if d < X_MIN_PARTS else e  # as in _term_pair
    h, l, s = exp_parts_dd(d)  # (h + l) s within EXP_PARTS_DD_MAX_REL_ERR of 2**SCALE_EXP exp(d)
    T = h * s  # exact scaling
    return T, fma(e, T, l * s)  # (l + e h) s


@jit
def _fill_terms_dd(x, m, bt, be):
    """:func:`_fill_terms` with the double-double exponential (``_term_pair_dd``), for the
    correctly rounded path. Not inlined: its loop is large (the exponential's table of
    selects and double-double steps), and inlined into every kernel it multiplied their
    compile time; called once per row, it costs a call."""
    wide_vectors()
    cnt = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        T, E = _term_pair_dd(v, m)
        top = v == m
        cnt += 1 if top else 0
        bt[i] = 0.0 if top else T
        be[i] = 0.0 if top else E
    return cnt


@jit(inline=True)
def _fill_terms(x, m, bt, be, accurate=False):
    """``bt[i] + be[i] = 2**SCALE_EXP exp(x_i - m)`` (to the exp's error) for ``x_i < m``, and
    0 where ``x_i == m``; returns how many entries equal the max (their terms are exactly
    ``2**SCALE_EXP`` and are added separately, so that the lane sums only see the small
    terms and sum them to a relative accuracy of ~u whatever their size next to 1)."""
    wide_vectors()
    if accurate:  # the correctly rounded path: a call, so that its code is compiled once
        return _fill_terms_dd(x, m, bt, be)
    cnt = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        T, E = _term_pair(v, m)
        top = v == m
        cnt += 1 if top else 0
        bt[i] = 0.0 if top else T
        be[i] = 0.0 if top else E
    return cnt


@jit(inline=True)
def _fill_terms_fast(x, m, bt):
    """For float32/float16 inputs: ``bt[i] = fl(2**SCALE_EXP exp(x_i - m))`` with the short
    exp (``EXP_PARTS_F64_SHORT_MAX_REL_ERR`` < 2**-45.7) and no error terms: the shift's
    error is at most ``2**-53 |d|`` (below 2**-46 relative for |d| <= 128, and a term below
    exp(-128) cannot reach a float32 output) and the rounding of ``1 + t`` is ``u``. The
    float64 values stay within about 2**-45 relative; their plain 32-lane sum (``lane_sum``)
    adds at most ``(C/32 + 5) u`` (2**-45 at C = 10**4, 2**-40 at C = 2.6 * 10**5), which
    the narrow outputs round correctly except within that distance of a midpoint
    (docs/accuracy.md#narrow-formats)."""
    wide_vectors()
    cnt = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        t, s = exp_parts_short(v - m)
        T = fma(t, s, s)  # fl(1 + t) s: s is a power of two, so one rounding, scaled
        top = v == m
        cnt += 1 if top else 0
        bt[i] = 0.0 if top else T
    return cnt


@jit
def _atanh_tail(z, w):
    """``z^3 P(z^2)`` with ``w = z^2`` in float64: the tail of ``atanh(z) = z + z^3 P(z^2)``
    for the fast path (relative error of the tail about ``4u``, i.e. ``0.04u`` of
    ``atanh(z)``, below the terms' own ``0.75u``)."""
    wide_vectors()
    pw = 1.0 / (2 * _ATANH_TERMS + 1)
    for j in range(_ATANH_TERMS - 1, 0, -1):
        pw = pw * w + 1.0 / (2 * j + 1)
    return z * w * pw


# atanh(z) = z (1 + w P(w)), w = z^2, P(w) = sum_{j>=1} w^(j-1) / (2j + 1): the first
# _ATANH_DD_STEPS coefficients as double-doubles (the Horner steps that need them), the rest
# in float64; the first omitted term, w^18 / 37 < 2**-97 for w <= 0.02944, is below 2**-100 z.
_ATANH_DD_TERMS = 18
_ATANH_DD_STEPS = 9


# 1/(2j + 1), j = 1 .. _ATANH_DD_STEPS, as double-doubles (hi rounded to nearest, lo the
# remainder rounded to nearest), from the exact fractions (tests/test_precision_exp.py
# recomputes them with fractions.Fraction)
_ATANH_C_HI = (
    float.fromhex("0x1.5555555555555p-2"),
    float.fromhex("0x1.999999999999ap-3"),
    float.fromhex("0x1.2492492492492p-3"),
    float.fromhex("0x1.c71c71c71c71cp-4"),
    float.fromhex("0x1.745d1745d1746p-4"),
    float.fromhex("0x1.3b13b13b13b14p-4"),
    float.fromhex("0x1.1111111111111p-4"),
    float.fromhex("0x1.e1e1e1e1e1e1ep-5"),
    float.fromhex("0x1.af286bca1af28p-5"),
)
_ATANH_C_LO = (
    float.fromhex("0x1.5555555555555p-56"),
    float.fromhex("-0x1.999999999999ap-57"),
    float.fromhex("0x1.2492492492492p-57"),
    float.fromhex("0x1.c71c71c71c71cp-58"),
    float.fromhex("-0x1.745d1745d1746p-59"),
    float.fromhex("-0x1.3b13b13b13b14p-58"),
    float.fromhex("0x1.1111111111111p-60"),
    float.fromhex("0x1.e1e1e1e1e1e1ep-61"),
    float.fromhex("0x1.af286bca1af28p-59"),
)


@jit
def _atanh_dd(zh, zl, wh, wl):
    """``atanh(z)`` as a double-double for ``|z| <= 0.1716``, from ``z = zh + zl`` (which
    may carry the scale ``2**SCALE_EXP``) and ``w = z**2 = wh + wl`` (unscaled).

    ``w P(w)`` is below 0.0099: the Horner steps from ``w^9`` up are float64, the last nine
    (``_ATANH_DD_STEPS``) in double-double (TwoProduct, TwoSum), and ``z + z w P(w)`` is
    summed exactly by TwoSum. Relative error below ``2**-98``: the truncation ``2**-100``,
    the double-double steps ``O(u**2)`` (below ``2**-104`` each), and the float64 part,
    whose rounding (about ``2u`` of its value, below ``1/21``) reaches ``atanh z`` multiplied
    by ``w^10``: ``2 u w^10 / 21 < 2**-106`` of ``z`` for ``w <= 0.0295``. (With five
    double-double steps that part was ``2 u w^6 / 13``, about ``2**-86.9`` at
    ``z = 0.1716``, measured: too large for the ``2**-94`` the logarithm is stated to.)"""
    p = 1.0 / (2 * _ATANH_DD_TERMS + 1)
    for j in range(_ATANH_DD_TERMS - 1, _ATANH_DD_STEPS, -1):
        p = p * wh + 1.0 / (2 * j + 1)
    ph = p
    pl = 0.0
    for j in range(_ATANH_DD_STEPS - 1, -1, -1):  # p = p w + 1/(2j + 3), j = 8 .. 0
        qh, ql = two_prod(ph, wh)
        ql += ph * wl + pl * wh
        sh, sl = two_sum(qh, _ATANH_C_HI[j])
        ph, pl = fast_two_sum(sh, sl + (ql + _ATANH_C_LO[j]))
    uh, ul = two_prod(wh, ph)  # u = w P(w)
    ul += wh * pl + wl * ph
    th, tl = two_prod(zh, uh)  # z u, below 0.0099 |z|
    tl += zh * ul + zl * uh
    rh, rl = two_sum(zh, th)
    return fast_two_sum(rh, rl + (zl + tl))


@jit
def _log_of_sum(cnt, rh, rl, accurate=False):
    """``L = log S`` as a double-double ``(Lh, Ll)``, and ``2**SCALE_EXP L`` (for a weighted
    loss that would otherwise scale a subnormal ``L`` after rounding it), where
    ``2**SCALE_EXP S = cnt 2**SCALE_EXP + (rh + rl)`` (``cnt >= 1`` maxima, ``rh + rl`` the
    scaled sum of the other terms).

    ``S = 2**k f``, ``f`` in ``[sqrt(1/2), sqrt(2))``, and
    ``log S = k ln 2 + 2 atanh(z)``, ``z = (f - 1)/(f + 1)``, ``|z| <= 0.1716``. For
    ``k = 0`` (``cnt == 1`` and the rest below ``sqrt 2 - 1``), ``f - 1`` is the rest itself,
    kept scaled, so a confident row keeps every digit of ``S - 1`` and a subnormal loss is
    rounded once, at the end; otherwise ``f - 1`` is exact by Sterbenz. ``z`` is a
    double-double; with ``accurate`` (the correctly rounded path) ``atanh(z)`` is one too
    (``_atanh_dd``) and the relative error of ``Lh + Ll`` next to S's is below ``2**-94``
    (``_atanh_dd``'s ``2**-95``, the divisions' ``4 u**2``, the rounding of ``k ln 2``'s low
    part, below ``2**-96`` of ``k ln 2``); otherwise the tail ``2 z^3 P(z^2)`` (below
    ``0.0099 |2z|``) is a float64 (``_atanh_tail``) and the error below ``0.05u``
    (``2**-57``), far below the terms' ``0.75u``: the cheaper per-row work counts on rows
    of 100 classes (measured 10-20% there).
    """
    if cnt == 1 and rh < _SQRT2_SCALED - SCALE:  # k = 0: S in [1, sqrt 2), S - 1 = rest
        bh, bl = two_sum(2.0, rh * INV_SCALE)  # S + 1 = 2 + rest
        bl += rl * INV_SCALE
        zh, zl = dd_div(rh, rl, bh, bl)  # 2**B z
        zu = zh * INV_SCALE
        if accurate:
            wh, wl = two_prod(zu, zu)
            wl += 2.0 * zu * (zl * INV_SCALE)
            ah, al = _atanh_dd(zh, zl, wh, wl)  # 2**B atanh(z)
            Lh = 2.0 * ah  # 2**B L
            Ll = 2.0 * al
        else:
            Lh, Ll = fast_two_sum(2.0 * zh, 2.0 * (zl + _atanh_tail(zh, zu * zu)))  # 2**B L
        return Lh * INV_SCALE, Ll * INV_SCALE, Lh, Ll  # unscaled: one rounding if subnormal
    hi, lo = two_sum(np.float64(cnt) * SCALE, rh)
    hi, lo = fast_two_sum(hi, lo + rl)
    hi = hi * INV_SCALE  # exact (S >= 1: hi and lo stay normal or are negligible)
    lo = lo * INV_SCALE
    m, k = math.frexp(hi)  # hi = m 2**k, m in [0.5, 1)
    if m < 0.7071067811865476:
        m *= 2.0
        k -= 1
    f_lo = math.ldexp(lo, -k)  # exact
    ah, al = two_sum(m, -1.0)  # f - 1, exact (Sterbenz)
    al += f_lo
    bh, bl = two_sum(m, 1.0)  # f + 1, exact
    bl += f_lo
    zh, zl = dd_div(ah, al, bh, bl)
    kf = np.float64(k)
    if accurate:
        wh, wl = two_prod(zh, zh)
        wl += 2.0 * zh * zl
        th, tl = _atanh_dd(zh, zl, wh, wl)
        Lh, Ll = two_sum(kf * LN2_CW_HI, 2.0 * th)  # kf * LN2_CW_HI exact; 2 th exact
        Ll += kf * LN2_CW_LO + 2.0 * tl
    else:
        Lh, Ll = two_sum(kf * LN2_CW_HI, 2.0 * zh)  # kf * LN2_CW_HI exact; 2 zh exact
        Ll += kf * LN2_CW_LO + 2.0 * (zl + _atanh_tail(zh, zh * zh))
    Lh, Ll = fast_two_sum(Lh, Ll)
    return Lh, Ll, Lh * SCALE, Ll * SCALE


@jit
def _scale_dd(wh, wl, hi, lo, k):
    """``(wh + wl) / ((hi + lo) * k)`` as a double-double (relative error about 2**-103)."""
    ph = hi * k
    pl = fma(hi, k, -ph) + lo * k  # (hi + lo) * k to about 2**-106
    return dd_div(wh, wl, ph, pl)


@jit(inline=True)
def _row_stats(x, bt, be, acc, fast, accurate=False):
    """``(status, m, hi, lo, Lh, Ll, Lsh, Lsl)`` of one row; fills ``bt[:C] + be[:C]`` with the terms
    of the non-max entries (0 at the max entries, whose terms are exactly ``2**SCALE_EXP``).
    ``bt`` and ``be`` are ``padded(C)`` long and zero beyond ``C``.

    ``accurate``: the terms of float64 rows come from the double-double exponential (the
    correctly rounded path; ``fast`` must be False).

    ``hi + lo = 2**SCALE_EXP S`` and ``Lh + Ll = log S``, ``S = sum_i exp(x_i - m)``: the
    max entries count exactly, the others go through one fixed-order double-double lane
    sum of non-negative terms (relative error about ``u**2`` per term added, Sum2; the
    ``E_i`` go into the lanes' error parts).
    """
    m = row_max(x)
    if m == INF:
        return NAN_ROW, m, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if m == -INF or m != m:
        if _has_nan(x):
            return NAN_ROW, m, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        return MASKED_ROW, m, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if fast:  # float32/float16 inputs: no error terms (see _fill_terms_fast)
        cnt = _fill_terms_fast(x, m, bt)
        rh = lane_sum(bt)  # the small terms T_i, to (C/32 + 5) u (see _fill_terms_fast)
        rl = 0.0
    else:
        cnt = _fill_terms(x, m, bt, be, accurate)
        rh, rl = dd_sum2(bt, be, acc)  # the small terms T_i + E_i (E_i below 2**-52 T_i)
    if rh != rh or rl != rl or cnt == 0:  # a nan in the row (cnt == 0: m is not an entry)
        return NAN_ROW, m, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    # rh + rl: the rest, 2**B (S - cnt)
    Lh, Ll, Lsh, Lsl = _log_of_sum(cnt, rh, rl, accurate)
    hi, lo = two_sum(np.float64(cnt) * SCALE, rh)
    hi, lo = fast_two_sum(hi, lo + rl)
    return OK, m, hi, lo, Lh, Ll, Lsh, Lsl


@jit(inline=True)
def _round_sum(a, c, odd):
    """``a + c`` rounded to float64; with ``odd``, rounded to odd instead.

    For a float32/float16 output the float64 value is rounded once more, and rounding to
    nearest twice can go wrong when the float64 value lands exactly on a midpoint of the
    narrow format (the loss ``(m - x_y) + L`` of a confident wrong prediction: ``m - x_y``
    can be such a midpoint, ``L`` a 1e-20 below it). Rounding the float64 value to odd
    (an inexact result gets an odd last bit) makes the second rounding correct
    (Boldo & Melquiond 2008: p + 2 <= 53 bits).

    Without a branch: the last bit is random, and a mispredicted branch per row cost more than
    the row's arithmetic on short rows; selects also let the lane loops vectorize it."""
    r, err = two_sum(a, c)
    bits = _f64_as_i64(r)
    fix = odd & (err != 0.0) & (err == err) & ((bits & 1) == 0)
    step = 1 if (err > 0.0) == (r > 0.0) else -1
    odd_r = _i64_as_f64(bits + step)
    return odd_r if fix else r


# The correctly rounded path: every float64 result is a double-double ``a + c`` within
# ``cr |a + c|`` of the exact value (``cr``: the relative bound of crossent._rounding, about
# 2**-82), rounded to nearest once the test below shows that every value in that interval
# rounds to the same float (Ziv's rounding test); otherwise the result is nan and the row goes
# to the slow path (the oracle). TINY covers the roundings that are absolute rather than
# relative in the subnormal range: a result within a few subnormal ulps is always sent there.
TINY = 2.0**-1070
NORMAL_MIN = 2.0**-1022
_ABS_MASK = (1 << 63) - 1
_FRAC_MASK = (1 << 52) - 1


@jit(inline=True)
def _half_gap(r):
    """Half the distance from ``|r|`` to its nearer float neighbour (the gap below a power of
    two is half the gap above): a value within less than this of ``r`` rounds to ``r``."""
    bits = _f64_as_i64(r) & _ABS_MASK
    e = bits >> 52
    ulp = _i64_as_f64((e - 52) << 52) if e > 52 else _i64_as_f64(1 << (e - 1 if e > 0 else 0))
    below = 0.5 if ((bits & _FRAC_MASK) == 0 and e > 1) else 1.0
    return 0.5 * below * ulp


@jit(inline=True)
def _round_cr(a, c, odd, cr):
    """:func:`_round_sum`; with ``cr > 0`` (float64 outputs only) the value ``a + c`` is known
    to within ``err = cr |a + c| + TINY`` and is returned rounded to nearest only if every
    real number within ``err`` of it rounds to the same float, else nan (the caller marks the
    row for the slow path). ``a + c`` is split exactly, ``r + t`` (TwoSum); ``r`` is correct
    when ``|t| + err`` stays below the half gap around ``r``: the comparison is made with
    ``(|t| + err)(1 + 2**-50)`` to cover the rounding of that sum. Infinities and nan pass
    through (the kernels' special rows)."""
    if cr == 0.0:
        return _round_sum(a, c, odd)
    r, t = two_sum(a, c)
    if r - r != 0.0:  # inf or nan: not a rounding question
        return r
    err = cr * abs(r) + TINY
    ok = (abs(t) + err) * (1.0 + 2.0**-50) < _half_gap(r)
    return r if ok else NAN


@jit(inline=True)
def _round_cr_abs(a, c, err):
    """:func:`_round_cr` with an absolute error bound: ``a + c`` is known to within ``err``
    (for a result that may cancel, whose error is bounded by the magnitudes of its parts,
    not by its own); returns it rounded to nearest if every real within ``err`` rounds to
    the same float, else nan. A value known exactly (``err = 0``) that is a float is
    returned (a zero gradient entry: the half gap of 0 is 0). Infinities and nan pass
    through."""
    r, t = two_sum(a, c)
    if r - r != 0.0 or (err == 0.0 and t == 0.0):
        return r
    ok = (abs(t) + err) * (1.0 + 2.0**-50) < _half_gap(r)
    return r if ok else NAN


@jit(inline=True)
def _neg_log_softmax(v, m, Lh, Ll, odd, cr=0.0):
    """``-log_softmax = (m - v) + L`` as two non-negative terms, rounded once.

    ``m - v = -(d + e)`` exactly; ``(-d) + Lh`` by TwoSum, then the small parts."""
    d, e = _shift(v, m)
    a, b = two_sum(-d, Lh)
    r = _round_cr(a, b + (Ll - e), odd, cr)
    return INF if v == -INF else r  # a masked class: TwoSum of inf gives nan


@jit(inline=True)
def _log_softmax_row(row, m, Lh, Ll, odd, o, cr=0.0):
    """``o[i] = log_softmax_i = -((m - x_i) + L)`` (see ``_neg_log_softmax``); with ``cr``,
    returns whether every entry passed the rounding test (``_round_cr``)."""
    wide_vectors()
    if cr != 0.0:
        return _log_softmax_row_cr(row, m, Lh, Ll, o, cr)
    for i in range(row.shape[0]):
        o[i] = -_neg_log_softmax(np.float64(row[i]), m, Lh, Ll, odd)
    return True


@jit
def _log_softmax_row_cr(row, m, Lh, Ll, o, cr):
    """:func:`_log_softmax_row` on the correctly rounded path (not inlined: compiled once)."""
    wide_vectors()
    bad = 0
    for i in range(row.shape[0]):
        r = _neg_log_softmax(np.float64(row[i]), m, Lh, Ll, False, cr)
        bad += 1 if r != r else 0
        o[i] = -r
    return bad == 0


@jit
def _fill(o, value):
    wide_vectors()
    for i in range(o.shape[0]):
        o[i] = value


@jit(inline=True)
def _term_of(b):
    """The term ``T_i`` of an entry from its scratch value ``b = bt[i]``: the fills leave 0 at
    the max entries (whose term is ``2**SCALE_EXP`` exactly) and nowhere else, since every other
    term is at least ``0.7 * 2**-987`` (the exp's clamp; nan makes the row nan before any output
    is formed). Reading ``bt`` alone spares the output passes a second read of the logits."""
    return SCALE if b == 0.0 else b


@jit
def _scaled_terms_cr(bt, be, ch, cl, o, cr):
    """:func:`_scaled_terms` on the correctly rounded path: ``c (T_i + E_i) = p_h + (p_l +
    c_h E_i + c_l T_i)`` (``p_h + p_l = c_h T_i`` exactly) rounded after the test of
    ``_round_cr``; returns whether every entry passed."""
    wide_vectors()
    bad = 0
    for i in range(o.shape[0]):
        t = _term_of(bt[i])
        ph, pl = two_prod(ch, t)
        r = _round_cr(ph, pl + fma(ch, be[i], cl * t), False, cr)
        bad += 1 if r != r else 0
        o[i] = r
    return bad == 0


@jit(inline=True)
def _scaled_terms(bt, be, ch, cl, o, fast):
    """``o[i] = c (T_i + E_i)``, ``c = ch + cl``, rounded once by an FMA (``ch E_i + cl T_i``
    is tiny next to ``ch T_i``); ``E_i = 0`` when ``fast``. The max entries, left out of
    ``bt`` by the sums, are ``2**SCALE_EXP`` exactly (``_term_of``). ``o`` may be the
    logits: they are not read."""
    wide_vectors()
    if fast:
        for i in range(o.shape[0]):
            t = _term_of(bt[i])
            o[i] = fma(ch, t, cl * t)
    else:
        for i in range(o.shape[0]):
            t = _term_of(bt[i])
            o[i] = fma(ch, t, fma(ch, be[i], cl * t))


# ----------------------------------------------------------------------------- batch kernels
# ACCURATE_IF_SLOW: a batch kernel with a correctly rounded path takes it when the caller
# passes the ``slow`` mask (an array) and not when ``slow`` is None. Numba's dead-branch
# pruning decides ``slow is None`` when it types the call, in the kernel and in the inlined
# row helpers (``accurate = slow is not None`` reaches ``_row_stats``), so the default
# kernels are compiled without the double-double exponential and the rounding tests (their
# fresh-cache first calls 18-41% shorter, docs/performance.md). The kernels' own branches test
# ``slow is None`` itself: Numba prunes a comparison with None, not a ``not accurate``. ``cr``
# stays a float either way, so the kernels also type where the pruning does not happen
# (every branch is then compiled, as before).
@jit(parallel=True)
def logsumexp_rows(x, out, odd, fast, cr=0.0, slow=None):
    """``out[n] = log(sum_i exp(x[n, i]))`` (``odd``: round to odd for a narrow output).

    ``slow`` given: the correctly rounded path (float64), with the relative bound ``cr``: the
    double-double exponential and the rounding test; a row whose result cannot be decided
    gets ``slow[n] = 1``. Without ``slow`` (None) Numba prunes that path when it types the
    call, so the default kernel does not compile it (``ACCURATE_IF_SLOW``)."""
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None  # decided at typing: see ACCURATE_IF_SLOW
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(x[n], bt, be, acc, fast, accurate)
            if st == NAN_ROW:
                out[n] = NAN
            elif st == MASKED_ROW:
                out[n] = -INF
            elif slow is None:
                a, b = two_sum(m, Lh)  # m + L rounded once (cancels near 0: see the bound)
                out[n] = _round_sum(a, b + Ll, odd)
            else:
                # m is exact: the error is L's, cr L (relative to L, not to m + L)
                a, b = two_sum(m, Lh)
                r, t = two_sum(a, b + Ll)
                out[n] = _round_cr(r, t, False, cr * abs(Lh) / max(abs(r), 2.0**-1000))
                if slow is not None:
                    slow[n] = out[n] != out[n]


@jit(parallel=True)
def log_softmax_rows(x, out, odd, fast, cr=0.0, slow=None):
    """``out[n, i] = x[n, i] - logsumexp(x[n])`` (``odd``: round to odd for a narrow output;
    ``cr``, ``slow``: as :func:`logsumexp_rows`)."""
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            o = out[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast, accurate)
            if st != OK:
                _fill(o, NAN)
                continue
            if slow is None:
                _log_softmax_row(row, m, Lh, Ll, odd, o)
            else:
                slow[n] = not _log_softmax_row_cr(row, m, Lh, Ll, o, cr)


@jit(parallel=True)
def softmax_rows(x, out, odd, fast, cr=0.0, slow=None):
    """``out[n, i] = exp(x[n, i]) / sum_j exp(x[n, j])`` (``cr``, ``slow``: as
    :func:`logsumexp_rows`; an entry's error is its term's and S's, ``2 cr`` relative)."""
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            o = out[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(x[n], bt, be, acc, fast, accurate)
            if st != OK:
                _fill(o, NAN)
                continue
            ch, cl = _scale_dd(1.0, 0.0, hi, lo, 1.0)  # 2**-B / S: with the scaled terms, exp(.)/S
            if slow is None:
                _scaled_terms(bt, be, ch, cl, o, fast)
                continue
            ok = _scaled_terms_cr(bt, be, ch, cl, o, 2.0 * cr)
            if slow is not None:
                slow[n] = not ok


# ----------------------------------------------------------------------------- scale factors
@jit
def _log_dd(hi, lo, e=0):
    """``log(2**e (hi + lo))`` as a double-double, for a positive normal double-double
    (``|lo|`` below ulp(hi)) and an integer ``e`` (added to the exponent before the split,
    so that no cancellation between ``k ln 2`` and the atanh part can occur): ``hi = 2**k f``, ``f`` in ``[sqrt(1/2), sqrt 2)``,
    ``log = k ln 2 + 2 atanh((f - 1)/(f + 1))`` as in ``_log_of_sum`` (``f - 1`` and
    ``f + 1`` exact by Sterbenz), with ``k ln 2`` as the exact product of ``k`` and the
    double-double ln 2 (``k`` may exceed the Cody-Waite range here)."""
    f, k = math.frexp(hi)
    if f < 0.7071067811865476:
        f *= 2.0
        k -= 1
    f_lo = math.ldexp(lo, -k)
    k += e
    ah, al = two_sum(f, -1.0)
    al += f_lo
    bh, bl = two_sum(f, 1.0)
    bl += f_lo
    zh, zl = dd_div(ah, al, bh, bl)
    wh, wl = two_prod(zh, zh)
    wl += 2.0 * zh * zl
    th, tl = _atanh_dd(zh, zl, wh, wl)
    kf = np.float64(k)
    ph, pl = two_prod(kf, LN2_DD_HI)
    Lh, Ll = two_sum(ph, 2.0 * th)
    Ll += pl + kf * LN2_DD_LO + 2.0 * tl
    return fast_two_sum(Lh, Ll)


@jit(parallel=True)
def logsumexp_b_rows(x, b, out, sgn, odd):
    """``out[n] = log|sum_i b[n, i] exp(x[n, i])|`` and ``sgn[n]`` its sign (0 for a zero sum).

    Entries with ``b = 0`` are left out (their ``x`` may be anything). The caller hands
    finite ``b`` (float64, the shape of ``x``) and takes care of the rows whose ``x`` holds
    nan or +inf where ``b != 0``: they come out nan here. Each term ``exp(x_i - m) = T_i + E_i``
    (``_term_pair``, to the exp's 0.75u) is multiplied by ``b_i 2**-e`` (``2**e`` the row's
    largest ``|b_i|``, an exact scaling that keeps every product normal) exactly by
    TwoProduct, the error parts go to the lanes' low parts, and the signed terms are added
    in double-double (``dd_sum2``): the sum's error is about ``u`` times the row's
    ``sum |b_i| e^{x_i - m}``, relative to which the result's error is stated
    (``crossent._bounds``: a condition, ``sum |b_i| e^{x_i} / |sum b_i e^{x_i}|``)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            br = b[n]
            m = -INF
            bmax = 0.0
            bad = False
            for i in range(C):
                if br[i] != 0.0:
                    v = np.float64(row[i])
                    bad = bad or v != v or v == INF
                    m = max(m, v)
                    bmax = max(bmax, abs(br[i]))
            if bad:
                out[n] = NAN
                sgn[n] = NAN
                continue
            if m == -INF:  # no term: the empty sum
                out[n] = -INF
                sgn[n] = 0.0
                continue
            _f, eb = math.frexp(bmax)
            for i in range(C):
                v = np.float64(row[i])
                if br[i] == 0.0 or v == -INF:
                    bt[i] = 0.0
                    be[i] = 0.0
                    continue
                bs = math.ldexp(br[i], -eb)  # exact unless below 2**-1022 (a negligible term)
                if v == m:
                    T, E = SCALE, 0.0
                else:
                    T, E = _term_pair(v, m)
                p, q = two_prod(T, bs)
                bt[i] = p
                be[i] = q + E * bs
            rh, rl = dd_sum2(bt, be, acc)  # zero beyond C (_term_rows)
            if rh == 0.0:
                out[n] = -INF
                sgn[n] = 0.0
                continue
            s = 1.0 if rh > 0.0 else -1.0
            Lh, Ll = _log_dd(s * rh, s * rl)  # log of 2**(SCALE_EXP - eb) |S|
            ch, cl = two_prod(np.float64(eb - SCALE_EXP), LN2_DD_HI)
            cl += np.float64(eb - SCALE_EXP) * LN2_DD_LO
            Lh, Ll2 = two_sum(Lh, ch)
            Ll += Ll2 + cl
            a, c = two_sum(m, Lh)
            out[n] = _round_sum(a, c + Ll, odd)
            sgn[n] = s
