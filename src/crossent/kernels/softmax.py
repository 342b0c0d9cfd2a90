"""Kernels of the softmax family: logsumexp, log_softmax, softmax, cross_entropy and its
fused gradient.

Three tiers, as in numba-stats: row helpers (``@njit``, compiled once per row type and
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
   the ``E_i`` into the lanes' error parts (``eft.dd_sum2``), so the result does not depend
   on threads or batch splits. float32/float16 inputs: plain lanes (``eft.lane_sum``).
5. ``L = log S`` in double-double (``_log_of_sum``), with ``S - 1`` exact inside, so a
   confident row keeps every digit (the loss of 1e-20 is not 0).
6. ``-log_softmax_i = (m - x_i) + L = (-d_i) + (L - e_i)``: two non-negative terms, rounded
   once. ``softmax_i = c (T_i + E_i)`` with ``c = 1/S`` in double-double, rounded once by an
   FMA; the gradient is the same with ``c = w / (S * denom)``.

Each batch kernel walks the rows in tasks of ``ROWS_PER_TASK`` rows (``prange`` over tasks);
a task owns its scratch rows (``bt``, ``be``: the terms of step 3; ``b3``: per-class loss
terms), so that every loop over a row is a plain loop over contiguous memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .eft import (DD_ACC, dd_add, dd_add_inf, dd_sum, dd_sum2, fast_two_sum, fma, lane_sum,
                  padded, row_max, two_sum, wide_vectors)
from .exp import _f64_as_i64, _i64_as_f64
from .exp import PARTS_SCALE_EXP, X_MIN_PARTS
from .exp import exp_parts_f64 as exp_parts
from .exp import exp_parts_f64_short as exp_parts_short

NAN = np.nan
INF = np.inf

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

# ln 2 split so that k * _LN2_HI is exact for |k| < 2**11 (42 significant bits)
_LN2_HI = float.fromhex("0x1.62e42fefa3800p-1")
_LN2_LO = float.fromhex("0x1.ef35793c76730p-45")
# 2 atanh(z) = 2z + 2 z^3 P(z^2),  P(w) = sum_{j>=1} w^(j-1) / (2j + 1);  |z| <= 0.1716
_ATANH_TERMS = 14  # w <= 0.02944: the first omitted term w^14 / 29 < 2**-76


# ----------------------------------------------------------------------------- row helpers
@njit(cache=True)
def _has_nan(x):
    wide_vectors()
    for i in range(x.shape[0]):
        if x[i] != x[i]:
            return True
    return False


@njit(inline="always", cache=True)
def _term_rows(C):
    """A task's scratch rows for the terms ``T_i`` and ``E_i`` of its rows: ``padded(C)`` long
    and zero beyond ``C`` (the fills write ``[0, C)`` only), so that the lane sums run over
    whole lanes with no scalar tail."""
    return np.zeros(padded(C)), np.zeros(padded(C))


@njit(inline="always", cache=True)
def _shift(v, m):
    """``(d, e)`` with ``d + e = v - m`` exactly; ``e = 0`` when ``v`` is -inf."""
    d, e = two_sum(v, -m)
    e = 0.0 if v == -INF else e
    return d, e


@njit(inline="always", cache=True)
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


@njit(inline="always", cache=True)
def _fill_terms(x, m, bt, be):
    """``bt[i] + be[i] = 2**SCALE_EXP exp(x_i - m)`` (to the exp's error) for ``x_i < m``, and
    0 where ``x_i == m``; returns how many entries equal the max (their terms are exactly
    ``2**SCALE_EXP`` and are added separately, so that the lane sums only see the small
    terms and sum them to a relative accuracy of ~u whatever their size next to 1)."""
    wide_vectors()
    cnt = 0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        T, E = _term_pair(v, m)
        top = v == m
        cnt += 1 if top else 0
        bt[i] = 0.0 if top else T
        be[i] = 0.0 if top else E
    return cnt


@njit(inline="always", cache=True)
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


@njit(inline="always", cache=True)
def _dd_div(ah, al, bh, bl):
    """``(ah + al) / (bh + bl)`` as a double-double (relative error about 2**-104)."""
    q = ah / bh
    r = fma(-q, bh, ah)  # exact remainder
    r = (r + al) - q * bl
    return fast_two_sum(q, r / bh)


@njit(cache=True)
def _atanh_tail(z, w):
    """``z^3 P(z^2)`` with ``w = z^2``: the tail of ``atanh(z) = z + z^3 P(z^2)``."""
    wide_vectors()
    pw = 1.0 / (2 * _ATANH_TERMS + 1)
    for j in range(_ATANH_TERMS - 1, 0, -1):
        pw = pw * w + 1.0 / (2 * j + 1)
    return z * w * pw


@njit(cache=True)
def _log_of_sum(cnt, rh, rl):
    """``L = log S`` as a double-double ``(Lh, Ll)``, and ``2**SCALE_EXP L`` (for a weighted
    loss that would otherwise scale a subnormal ``L`` after rounding it), where
    ``2**SCALE_EXP S = cnt 2**SCALE_EXP + (rh + rl)`` (``cnt >= 1`` maxima, ``rh + rl`` the
    scaled sum of the other terms).

    ``S = 2**k f``, ``f`` in ``[sqrt(1/2), sqrt(2))``, and
    ``log S = k ln 2 + 2 atanh(z)``, ``z = (f - 1)/(f + 1)``, ``|z| <= 0.1716``. For
    ``k = 0`` (``cnt == 1`` and the rest below ``sqrt 2 - 1``), ``f - 1`` is the rest itself,
    kept scaled, so a confident row keeps every digit of ``S - 1`` and a subnormal loss is
    rounded once, at the end; otherwise ``f - 1`` is exact by Sterbenz. ``z`` is a
    double-double; the tail ``2 z^3 P(z^2)`` (below ``0.0099 |2z|``) is evaluated in
    float64. Relative error of ``Lh + Ll``: below ``2**-98`` (the tail's rounding,
    ``0.0099 u``, plus the truncation ``2**-76 * 0.0099``), next to S's error.
    """
    if cnt == 1 and rh < _SQRT2_SCALED - SCALE:  # k = 0: S in [1, sqrt 2), S - 1 = rest
        bh, bl = two_sum(2.0, rh * INV_SCALE)  # S + 1 (absolute error <= 2**-1075 of 2)
        zh, zl = _dd_div(rh, rl, bh, bl)  # 2**B z
        zu = zh * INV_SCALE
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
    zh, zl = _dd_div(ah, al, bh, bl)
    kf = np.float64(k)
    Lh, Ll = two_sum(kf * _LN2_HI, 2.0 * zh)  # kf * _LN2_HI exact; 2 zh exact
    Ll += kf * _LN2_LO + 2.0 * (zl + _atanh_tail(zh, zh * zh))
    Lh, Ll = fast_two_sum(Lh, Ll)
    return Lh, Ll, Lh * SCALE, Ll * SCALE


@njit(cache=True)
def _scale_dd(w, hi, lo, k):
    """``w / ((hi + lo) * k)`` as a double-double (relative error about 2**-103)."""
    ph = hi * k
    pl = fma(hi, k, -ph) + lo * k  # (hi + lo) * k to about 2**-106
    return _dd_div(w, 0.0, ph, pl)


@njit(cache=True)
def _scale_dd2(wh, wl, hi, lo, k):
    """``(wh + wl) / ((hi + lo) * k)`` as a double-double."""
    ph = hi * k
    pl = fma(hi, k, -ph) + lo * k
    return _dd_div(wh, wl, ph, pl)


@njit(inline="always", cache=True)
def _row_stats(x, bt, be, acc, fast):
    """``(status, m, hi, lo, Lh, Ll, Lsh, Lsl)`` of one row; fills ``bt[:C] + be[:C]`` with the terms
    of the non-max entries (0 at the max entries, whose terms are exactly ``2**SCALE_EXP``).
    ``bt`` and ``be`` are ``padded(C)`` long and zero beyond ``C``.

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
        cnt = _fill_terms(x, m, bt, be)
        rh, rl = dd_sum2(bt, be, acc)  # the small terms T_i + E_i (E_i below 2**-52 T_i)
    if rh != rh or rl != rl or cnt == 0:  # a nan in the row (cnt == 0: m is not an entry)
        return NAN_ROW, m, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    # rh + rl: the rest, 2**B (S - cnt)
    Lh, Ll, Lsh, Lsl = _log_of_sum(cnt, rh, rl)
    hi, lo = two_sum(np.float64(cnt) * SCALE, rh)
    hi, lo = fast_two_sum(hi, lo + rl)
    return OK, m, hi, lo, Lh, Ll, Lsh, Lsl


@njit(inline="always", cache=True)
def _finish(a, c, odd):
    """``a + c`` rounded to float64; with ``odd``, rounded to odd instead.

    For a float32/float16 output the float64 value is rounded once more, and rounding to
    nearest twice can go wrong when the float64 value lands exactly on a midpoint of the
    narrow format (the loss ``(m - x_y) + L`` of a confident wrong prediction: ``m - x_y``
    can be such a midpoint, ``L`` a 1e-20 below it). Rounding the float64 value to odd
    (an inexact result gets an odd last bit) makes the second rounding correct
    (Boldo & Melquiond 2008: p + 2 <= 53 bits)."""
    r, err = two_sum(a, c)
    if odd and err != 0.0 and err == err:
        bits = _f64_as_i64(r)
        if (bits & 1) == 0:
            bits += 1 if (err > 0.0) == (r > 0.0) else -1
            r = _i64_as_f64(bits)
    return r


@njit(inline="always", cache=True)
def _neg_log_softmax(v, m, Lh, Ll, odd):
    """``-log_softmax = (m - v) + L`` as two non-negative terms, rounded once.

    ``m - v = -(d + e)`` exactly; ``(-d) + Lh`` by TwoSum, then the small parts."""
    d, e = _shift(v, m)
    a, b = two_sum(-d, Lh)
    r = _finish(a, b + (Ll - e), odd)
    return INF if v == -INF else r  # a masked class: TwoSum of inf gives nan


@njit(inline="always", cache=True)
def _log_softmax_row(row, m, Lh, Ll, odd, o):
    """``o[i] = log_softmax_i = -((m - x_i) + L)`` (see ``_neg_log_softmax``)."""
    wide_vectors()
    for i in range(row.shape[0]):
        o[i] = -_neg_log_softmax(np.float64(row[i]), m, Lh, Ll, odd)


@njit(cache=True)
def _fill(o, value):
    wide_vectors()
    for i in range(o.shape[0]):
        o[i] = value


@njit(inline="always", cache=True)
def _term_of(b):
    """The term ``T_i`` of an entry from its scratch value ``b = bt[i]``: the fills leave 0 at
    the max entries (whose term is ``2**SCALE_EXP`` exactly) and nowhere else, since every other
    term is at least ``0.7 * 2**-987`` (the exp's clamp; nan makes the row nan before any output
    is formed). Reading ``bt`` alone spares the output passes a second read of the logits."""
    return SCALE if b == 0.0 else b


@njit(inline="always", cache=True)
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


@njit(cache=True)
def _soft_grad(bt, be, hi, lo, a, denom, acc, g, fast):
    """``g_i = (A p_i - a_i) / denom`` for soft targets, ``A = sum_c a_c`` (double-double).

    The large parts ``c T_i`` and ``a_i / denom`` (both to double-double) meet in one FMA,
    so where they cancel the difference is exact before it is rounded; with one class
    (``p = 1``, ``A = a_0``) the gradient is exactly 0. ``g`` may be the logits (not read)."""
    wide_vectors()
    Ah, Al = dd_sum(a, acc)
    ch, cl = _scale_dd2(Ah, Al, hi, lo, denom)
    for i in range(g.shape[0]):
        t = _term_of(bt[i])
        sh = a[i] / denom
        sl = fma(-sh, denom, a[i]) / denom  # a_i / denom = sh + sl to 2**-104
        ei = 0.0 if fast else be[i]
        g[i] = fma(ch, t, -sh) + (fma(ch, ei, cl * t) - sl)


# ----------------------------------------------------------------------------- batch kernels
@njit(parallel=True, cache=True)
def logsumexp_rows(x, out, odd, fast):
    """``out[n] = log(sum_i exp(x[n, i]))`` (``odd``: round to odd for a narrow output)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(x[n], bt, be, acc, fast)
            if st == NAN_ROW:
                out[n] = NAN
            elif st == MASKED_ROW:
                out[n] = -INF
            else:
                a, b = two_sum(m, Lh)  # m + L rounded once (cancels near 0: see the bound)
                out[n] = _finish(a, b + Ll, odd)


@njit(parallel=True, cache=True)
def log_softmax_rows(x, out, odd, fast):
    """``out[n, i] = x[n, i] - logsumexp(x[n])`` (``odd``: round to odd for a narrow output)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            o = out[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
            if st != OK:
                _fill(o, NAN)
                continue
            _log_softmax_row(row, m, Lh, Ll, odd, o)


@njit(parallel=True, cache=True)
def softmax_rows(x, out, odd, fast):
    """``out[n, i] = exp(x[n, i]) / sum_j exp(x[n, j])``."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            o = out[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(x[n], bt, be, acc, fast)
            if st != OK:
                _fill(o, NAN)
                continue
            ch, cl = _scale_dd(1.0, hi, lo, 1.0)  # 2**-B / S: with the scaled terms, exp(.)/S
            _scaled_terms(bt, be, ch, cl, o, fast)


# -- cross-entropy ---------------------------------------------------------------------------
# Target coefficients: the loss of a row is  sum_c a_c * (-log_softmax_c)  with
#   class index y, smoothing eps:  a_c = w_y (1 - eps) [c == y] + w_c eps / C
#   probabilities t, smoothing eps: a_c = w_c ((1 - eps) t_c + eps / C)
# and its gradient in the logits is  g_i = p_i * A - a_i,  A = sum_c a_c.


@njit(inline="always", cache=True)
def _smoothing_parts(eps, C):
    """``(qh, ql, omh, oml)``: ``eps / C = qh + ql`` to ``2**-104`` and ``1 - eps = omh + oml``
    exactly (TwoSum), the two factors of every smoothed coefficient."""
    qh = eps / C
    ql = fma(-qh, np.float64(C), eps) / C  # the exact remainder of the division, divided
    omh, oml = two_sum(1.0, -eps)
    return qh, ql, omh, oml


@njit(inline="always", cache=True)
def _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3, acc, odd):
    """Loss of one row with class index ``y`` (label smoothing ``eps``), before reduction.

    With smoothing and class weights it leaves the coefficients ``a_c`` in ``ah`` (+ ``al``),
    which the gradient kernel reuses; without weights (closed form) it forms none."""
    if eps == 0.0:
        v = np.float64(row[y])
        if v == -INF:
            return INF if w != 0.0 else 0.0  # masked target class: +inf (a zero weight costs 0)
        d, e = _shift(v, m)
        if w == 1.0:
            a, b = two_sum(-d, Lh)
            return _finish(a, b + (Ll - e), odd)
        if d == 0.0:  # y is a max entry: the loss is w L, formed on 2**B L (L may be subnormal)
            p = w * Lsh
            pe = fma(w, Lsh, -p)
            return _finish(p, pe + w * Lsl, odd) * INV_SCALE
        # w * ((-d) + L): TwoProduct of the large part, so that one rounding is left
        a, b = two_sum(-d, Lh)
        p = w * a
        pe = fma(w, a, -p)
        return _finish(p, pe + w * (b + (Ll - e)), odd)
    if not has_weight:
        return _smoothed_label_loss(row, y, m, Lh, Ll, eps, b3, al, acc, odd)
    _label_coeffs(y, w, eps, weight, has_weight, ah, al)
    return _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd)


@njit(cache=True)
def _smoothed_label_loss(row, y, m, Lh, Ll, eps, bu, be, acc, odd):
    """Loss of one row with class index ``y``, label smoothing ``eps > 0`` and no class weights:

    ``(1 - eps) u_y + (eps / C) U + L``,  ``u_c = m - x_c >= 0``,  ``U = sum_c u_c``,

    the closed form of ``sum_c a_c (u_c + L)`` with ``a_c = (1 - eps) [c == y] + eps / C``
    (``sum_c a_c = 1``). Three non-negative terms, so nothing cancels: ``u_c = (-d_c) + (-e_c)``
    exactly (TwoSum), ``U`` in double-double (fixed-order lanes, ``dd_sum2``), the products by
    ``1 - eps`` (exact) and ``eps / C`` (double-double) with their errors, then one rounding
    (to odd for a narrow output): the error before it is about ``2**-100`` relative, next to
    ``L``'s own. The same value as the general path (``_soft_loss``), in vectorized passes
    instead of one scalar pass of exact products. ``bu`` and ``be`` are scratch (``C``)."""
    wide_vectors()
    C = row.shape[0]
    for c in range(C):  # no reduction in this loop: it vectorizes
        d, e = _shift(np.float64(row[c]), m)  # m - x_c = (-d) + (-e) exactly
        bu[c] = -d
        be[c] = -e
    Uh, Ul = dd_sum2(bu[:C], be[:C], acc)
    if Uh == INF:  # a masked class: its coefficient eps / C > 0 makes the loss +inf
        return INF
    qh, ql, omh, oml = _smoothing_parts(eps, C)
    r = qh * Uh
    re = fma(qh, Uh, -r) + (qh * Ul + ql * Uh)
    p = 0.0
    pe = 0.0
    if omh != 0.0:  # eps < 1 (for eps == 1 the target's own term is 0)
        uh = bu[y]
        ul = be[y]
        p = omh * uh
        pe = fma(omh, uh, -p) + (omh * ul + oml * uh)
    a, b = two_sum(r, p)
    a, c2 = two_sum(a, Lh)
    return _finish(a, (b + c2) + ((re + pe) + Ll), odd)


@njit(cache=True)
def _label_coeffs(y, w, eps, weight, has_weight, ah, al):
    """``a_c = w_c eps/C + [c == y] w (1 - eps)`` as double-doubles ``ah[c] + al[c]``."""
    wide_vectors()
    C = ah.shape[0]
    qh, ql, omh, oml = _smoothing_parts(eps, C)
    for c in range(C):
        wc = weight[c] if has_weight else 1.0
        ah[c] = wc * qh
        al[c] = fma(wc, qh, -ah[c]) + wc * ql
    yh = w * omh
    yl = fma(w, omh, -yh) + w * oml
    sh, se = two_sum(ah[y], yh)
    ah[y] = sh
    al[y] += se + yl


@njit(cache=True)
def _prob_coeffs(trow, eps, weight, has_weight, ah, al):
    """``a_c = w_c ((1 - eps) t_c + eps/C)`` as double-doubles ``ah[c] + al[c]``."""
    wide_vectors()
    C = ah.shape[0]
    qh, ql, omh, oml = _smoothing_parts(eps, C)
    for c in range(C):
        t = np.float64(trow[c])
        th = omh * t
        tl = fma(omh, t, -th) + oml * t
        if eps != 0.0:
            th, e = two_sum(th, qh)
            tl += e + ql
        if has_weight:
            wc = weight[c]
            h = wc * th
            tl = fma(wc, th, -h) + wc * tl
            th = h
        ah[c] = th
        al[c] = tl


@njit(cache=True)
def _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd):
    """``sum_c a_c (-log_softmax_c) = sum_c a_c (m - x_c) + A L``, ``A = sum_c a_c``, with
    double-double coefficients ``a_c = ah[c] + al[c]``.

    Every product is formed exactly (TwoProduct by FMA) and the sums in double-double, so
    the result is the exact value rounded once (to odd for a narrow output) up to the error
    of ``L`` and ``2**-100`` relative: a target mixing float32 logits and a tiny ``L`` does
    not lose ``L`` before the final rounding. A class with ``a_c = 0`` costs nothing, even
    if masked; a masked class with ``a_c > 0`` makes the loss +inf."""
    wide_vectors()
    C = row.shape[0]
    b = b3[:C]
    lo = 0.0
    alsum = 0.0
    for c in range(C):
        a = ah[c]
        alsum += al[c]
        if a == 0.0 and al[c] == 0.0:
            b[c] = 0.0
            continue
        v = np.float64(row[c])
        if v == -INF:
            return INF
        d, e = _shift(v, m)  # m - v = (-d) + (-e), exactly
        p = a * (-d)
        b[c] = p
        lo += fma(a, -d, -p) + a * (-e) + al[c] * (-d)
    ph, pl = dd_sum(b, acc)  # sum of the exact products' high parts
    Ah, Al = dd_sum(ah[:C], acc)
    Al += alsum
    q = Ah * Lh
    qe = fma(Ah, Lh, -q) + (Ah * Ll + Al * Lh)
    t, te = two_sum(ph, q)
    return _finish(t, te + (pl + lo + qe), odd)


@njit(parallel=True, cache=True)
def cross_entropy_labels_rows(x, labels, weight, has_weight, ignore_index, eps, odd, fast, out):
    """Per-row loss for class-index targets (0 for ignored rows), in float64."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        b3 = np.empty(C if eps != 0.0 else 0)
        ah = np.empty(C if eps != 0.0 else 0)
        al = np.empty(C if eps != 0.0 else 0)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            if y == ignore_index:
                out[n] = 0.0
                continue
            row = x[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
            if st != OK:
                out[n] = NAN
                continue
            w = weight[y] if has_weight else 1.0
            out[n] = _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3,
                                 acc, odd)


@njit(parallel=True, cache=True)
def cross_entropy_probs_rows(x, t, weight, has_weight, eps, odd, fast, out):
    """Per-row loss for probability targets (label smoothing applied to ``t``), in float64."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        b3 = np.empty(C)
        ah = np.empty(C)
        al = np.empty(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
            if st != OK:
                out[n] = NAN
                continue
            _prob_coeffs(t[n], eps, weight, has_weight, ah, al)
            out[n] = _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd)


@njit(cache=True)
def sum_fixed_order(v):
    """Double-double sum of a float64 vector in index order (bitwise reproducible)."""
    wide_vectors()
    hi = 0.0
    lo = 0.0
    for i in range(v.shape[0]):
        hi, lo = dd_add_inf(hi, lo, v[i])
    return hi, lo


@njit(cache=True)
def label_weight_total(labels, weight, has_weight, ignore_index):
    """``sum_n weight[y_n]`` over non-ignored items, double-double, fixed order."""
    wide_vectors()
    hi = 0.0
    lo = 0.0
    for n in range(labels.shape[0]):
        y = labels[n]
        if y == ignore_index:
            continue
        hi, lo = dd_add(hi, lo, weight[y] if has_weight else 1.0)
    return hi, lo


@njit(parallel=True, cache=True)
def cross_entropy_labels_grad_rows(x, labels, weight, has_weight, ignore_index, eps, denom, odd, fast, out, grad):
    """Fused loss and gradient for class-index targets.

    ``out[n]`` is the row's loss (0 if ignored); ``grad[n, i] = d loss_n / d x[n, i] / denom``
    (``denom`` is the mean's divisor, or 1). ``grad`` may be ``x`` itself: a row's loss and
    terms are complete before any entry of that row is written.
    """
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        b3 = np.empty(C if eps != 0.0 else 0)
        ah = np.empty(C if eps != 0.0 else 0)
        al = np.empty(C if eps != 0.0 else 0)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            row = x[n]
            g = grad[n]
            if y == ignore_index:
                out[n] = 0.0
                _fill(g, 0.0)
                continue
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                continue
            w = weight[y] if has_weight else 1.0
            out[n] = _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3,
                                 acc, odd)
            if eps == 0.0:
                # g_i = w p_i / denom for i != y;  g_y = -w (S - exp(x_y - m)) / (S denom)
                ch, cl = _scale_dd(w, hi, lo, denom)
                ty = _term_of(bt[y])
                a, b = two_sum(hi, -ty)
                rh, rl = fast_two_sum(a, (b + lo) - (0.0 if fast else be[y]))  # S - exp(x_y - m) >= 0, no cancellation
                gy = -fma(ch, rh, ch * rl + cl * rh)
                _scaled_terms(bt, be, ch, cl, g, fast)
                g[y] = gy
            else:
                # a_c = w (1-eps) [c == y] + w_c eps / C: the weighted loss left them in ah (+ al);
                # the unweighted one (closed form) used al as scratch and formed none
                if not has_weight:
                    _label_coeffs(y, w, eps, weight, has_weight, ah, al)
                _soft_grad(bt, be, hi, lo, ah[:C], denom, acc, g, fast)


@njit(parallel=True, cache=True)
def cross_entropy_probs_grad_rows(x, t, weight, has_weight, eps, denom, odd, fast, out, grad):
    """Fused loss and gradient for probability targets (``grad`` may be ``x``)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        b3 = np.empty(C)
        ah = np.empty(C)
        al = np.empty(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            trow = t[n]
            g = grad[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                continue
            _prob_coeffs(trow, eps, weight, has_weight, ah, al)
            out[n] = _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd)
            _soft_grad(bt, be, hi, lo, ah, denom, acc, g, fast)
