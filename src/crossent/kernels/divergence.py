"""Kernels of the divergences between two rows of logits (``kl_divergence_logits``) and of the
entropy of a row's softmax (``entropy_logits``), with their fused gradients, on the row
statistics of :mod:`crossent.kernels.softmax`.

Entropy: ``H = sum_i P_i (-log P_i)``, ``-log P_i = (m - x_i) + L`` (two non-negative terms,
rounded once): a sum of non-negative terms, summed by TwoSum with the products' errors (FMA).
Gradient: ``dH/dx_j = P_j (-log P_j - H)``.

The row algorithm (``docs/divergences.md`` has the derivation, ``proofs/10_logit_divergences.py``
the identities). With ``P = softmax(x)``, ``Q = softmax(y)`` and ``d_i = x_i - y_i``:

1. ``d_i = dh_i + dl_i`` exactly (TwoSum).
2. ``c = lse(x) - lse(y) = D + l`` with ``D = d_k`` at the first largest ``x_k`` and
   ``l = log(Q_k / P_k) = (y_k - max y) - L_q + L_p`` in double-double from the row
   statistics (``L`` to ``0.05u``; float64: recomputed to ``2**-90``). Where that gives ``|l| <= 2**-20`` (rows close enough for
   KL to be tiny), ``l = log1p(s2)`` from ``s2 = Q_k/P_k - 1 = sum_i Q_i expm1(d_i - D)``
   (each term to a few ``u``: ``Q_i expm1(e_i)`` for ``e_i < 1``, else
   ``Q_k exp(x_i - m) - Q_i``, which cannot overflow), accurate to ``u |l|``: ``c`` is never
   formed as the difference of the two logsumexps where they cancel. The same pass
   recomputes ``l`` for ``2**-20 < |l| <= 2**-12`` when the KL comes out below ``2**-40``
   (``L_RECOMPUTE``).
3. ``delta_i = log P_i - log Q_i = (d_i - D) - l``, a double-double.
4. ``KL = sum_i P_i phi(delta_i)``, ``phi(t) = t + exp(-t) - 1 >= 0`` (``sum_i Q_i = 1``
   makes the two forms equal): every term is non-negative, so nothing cancels in the sum.
   A class with ``P_i = 0`` (``x_i = -inf``) contributes the limit ``Q_i``.
   Near 0, ``phi(t) = t**2 g(t)``, ``g(t) = sum_k (-t)**k / (k + 2)!`` by its
   Taylor polynomial at ``-1/2`` (relative accuracy down to ``t = 0``, where
   ``phi ~ t**2/2``); elsewhere the term is ``Q_i + P_i (t - 1)`` (``Q_i = P_i exp(-t)``: two
   non-negative parts for ``t >= 1``, a cancellation of at most 1.5 below): no libm call.
   Float64 results (``_kl_term_dd``): ``-3 < t < 1`` by the polynomial of degree 25
   (``_phi_dd``, its last steps in double-double), ``P_i`` and ``Q_i`` and every term as
   double-doubles summed by ``dd_sum2``; float32 and narrower (``_kl_term_v``): ``-2 < t < 1``
   by degree 15 in float64. The forms are computed for every class and one is selected, so
   that the loop has no branch and is vectorized.

An error in ``l`` shifts every ``delta_i`` by the same amount, and
``sum_i P_i phi(delta_i - e) = KL + (exp(e) - 1 - e)``: the exact value is stationary in it,
and so is the computed sum where the ``Q_i`` of the direct forms are those of the same ``l``
(float64: ``l`` from the row statistics with ``L`` to ``2**-90``, or the ``Q_i`` rescaled to
the s2 pass's ``l``; docs/accuracy.md#kl-logits). Equal rows (or rows that differ by a
constant, exactly) have ``d_i - D = 0`` for every class, hence ``s2 = 0``, ``l = 0``,
``delta = 0`` and ``KL = 0`` exactly.

Gradients: ``dKL/dx_j = P_j (delta_j - KL)``, ``dKL/dy_j = Q_j - P_j``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._base import (DD_ACC, INF, LN2_DD_HI, LN2_DD_LO, NAN, _f64_as_i64, _i64_as_f64, dd_div,
                    dd_mul, dd_mul_raw, dd_sum, dd_sum2, fast_two_sum, fma, jit, padded, two_prod,
                    two_sum, wide_vectors)
from .exp import EXP_PARTS_DD_MAX_REL_ERR, X_MIN_PARTS, exp_parts_dd
from .softmax import (
    INV_SCALE,
    OK,
    ROWS_PER_TASK,
    TINY,
    SCALE,
    SCALE_EXP,
    _round_cr,
    _round_cr_abs,
    _log_dd,
    _round_sum,
    _row_stats,
    _neg_log_softmax,
    _scale_dd,
    _shift,
    _term_rows,
    _term_of,
)

_PHI_TERMS = 28  # |t| < 2: the first omitted term 2**29 / 31! < 2**-83 of the sum's 1/2
# 1/(k + 2)!, k = 0 .. _PHI_TERMS (each rounded once: a relative 2**-53 per coefficient)
_PHI_COEF = np.array([1.0 / math.factorial(k + 2) for k in range(_PHI_TERMS + 1)])


@jit(inline=True)
def _phi_small(t):
    """``phi(t) = t + exp(-t) - 1 = t**2 sum_{k>=0} (-t)**k / (k + 2)!`` for ``-2 < t < 1``
    (Horner; for ``t < 0`` every term is positive, for ``0 < t < 1`` the sum is at least
    ``1/e`` of the sum of the magnitudes). The series is cut where the first omitted term is
    below ``2**-60`` of the sum (``1/2`` at least ``1/e`` of it): 11 terms for
    ``|t| < 1/16`` (``16**-11 / 13! < 2**-76``), 17 for ``|t| < 1/2``
    (``2**-17 / 19! < 2**-73``), else all."""
    a = abs(t)
    n = 10 if a < 0.0625 else (16 if a < 0.5 else _PHI_TERMS)  # even: the last term is even
    # the even and odd powers as two independent Horner chains in t**2 (half the latency)
    w = t * t
    se = _PHI_COEF[n]
    so = _PHI_COEF[n - 1]
    for j in range(n // 2 - 1, 0, -1):
        se = se * w + _PHI_COEF[2 * j]
        so = so * w + _PHI_COEF[2 * j - 1]
    se = se * w + _PHI_COEF[0]
    return w * (se - t * so)


#: degree of the polynomial of ``g`` on ``-3 < t < 1`` (``_phi_dd``): its Taylor remainder on
#: ``-5/2 <= t + 1/2 <= 3/2`` is below ``2**-63`` of ``g``
#: (docs/scripts/divergence_error_budget.py)
PHI_MID_DEGREE = 25
#: the Taylor coefficients of ``g(t) = phi(t) / t**2 = sum_k (-t)**k / (k + 2)!`` at ``t = -1/2``:
#: ``a_n = (-1)**n sum_{k>=n} C(k, n) 2**(n - k) / (k + 2)!`` (every term positive), summed
#: exactly in rationals (40 terms: the omitted ones are below ``2**-200`` of the sum) and rounded
#: once; written out so that importing the kernels computes nothing
#: (tests/test_precision_exp.py recomputes them)
PHI_MID_COEF = (
    float.fromhex("0x1.3094c70f034dep-1"),
    float.fromhex("-0x1.b906ab4bd8594p-3"),
    float.fromhex("0x1.cf09bff9c1618p-5"),
    float.fromhex("-0x1.7e96ce0df6d4ep-7"),
    float.fromhex("0x1.0500c1505d903p-9"),
    float.fromhex("-0x1.2f7d032c4f220p-12"),
    float.fromhex("0x1.33993a5d1b0bbp-15"),
    float.fromhex("-0x1.1462085bd75c8p-18"),
    float.fromhex("0x1.be222f70c72bdp-22"),
    float.fromhex("-0x1.46dc056e5846dp-25"),
    float.fromhex("0x1.b68a6e65217d9p-29"),
    float.fromhex("-0x1.0f5201f804c67p-32"),
    float.fromhex("0x1.378646ccd5f6cp-36"),
    float.fromhex("-0x1.4da5e1b8a71bfp-40"),
    float.fromhex("0x1.4ed9767fc9ebdp-44"),
    float.fromhex("-0x1.3c2974ea1100ap-48"),
    float.fromhex("0x1.19d6bdcd0c651p-52"),
    float.fromhex("-0x1.dbe6e611c07c2p-57"),
    float.fromhex("0x1.7d9c9ed75bd96p-61"),
    float.fromhex("-0x1.235ec99bd8c10p-65"),
    float.fromhex("0x1.a8a281893a041p-70"),
    float.fromhex("-0x1.27ecae68b80f0p-74"),
    float.fromhex("0x1.8b36985b7ce66p-79"),
    float.fromhex("-0x1.faa3a8e182056p-84"),
    float.fromhex("0x1.38372d238f0aap-88"),
    float.fromhex("-0x1.7283fd92e3478p-93"),
)
#: the rounding errors of ``a_0, a_1, a_2`` (``a_n - PHI_MID_COEF[n]``, rounded once): the
#: last three Horner steps of ``_phi_dd`` are double-double
PHI_MID_LO = (
    float.fromhex("0x1.2e5bfdf56dbe6p-55"),
    float.fromhex("-0x1.d3b0187edb132p-57"),
    float.fromhex("0x1.41bdd4c49a4e7p-60"),
)


@jit(inline=True)
def _dd_step(c, lo, hh, hl, gh, gl):
    """One double-double Horner step ``(c + lo) + (hh + hl) (gh + gl)`` (``lo`` the
    coefficient's rounding error), as an unnormalized pair whose low part is within a few
    ``u`` of the high part's ulp."""
    ph, pl = two_prod(hh, gh)
    pl = fma(hh, gl, pl) + hl * gh
    sh, sl = two_sum(c, ph)
    return sh, sl + (pl + lo)


@jit(inline=True)
def _phi_dd(dh, dl):
    """``phi(t) = t**2 g(t)`` as a double-double for ``t = dh + dl`` in ``-3 < t < 1``, ``g``
    by its Taylor polynomial of degree 25 at ``-1/2`` in ``h = t + 1/2`` (a double-double):
    Horner by FMAs for the coefficients 25 to 3, double-double steps for 2, 1, 0 (their
    ``PHI_MID_LO``), ``t**2`` exact to ``u**2`` and the product in double-double. Fixed degree
    and no branch, so that a loop calling it is vectorized. Its running error bound
    (``_phi_dd_eval`` in docs/scripts/divergence_error_budget.py) is below ``0.54u`` of
    ``phi`` on the whole interval (``0.19u`` on ``-2 < t < 1``)."""
    hh, hl = two_sum(dh, 0.5)
    hl += dl
    c = PHI_MID_COEF
    g = fma(c[25], hh, c[24])
    g = fma(g, hh, c[23])
    g = fma(g, hh, c[22])
    g = fma(g, hh, c[21])
    g = fma(g, hh, c[20])
    g = fma(g, hh, c[19])
    g = fma(g, hh, c[18])
    g = fma(g, hh, c[17])
    g = fma(g, hh, c[16])
    g = fma(g, hh, c[15])
    g = fma(g, hh, c[14])
    g = fma(g, hh, c[13])
    g = fma(g, hh, c[12])
    g = fma(g, hh, c[11])
    g = fma(g, hh, c[10])
    g = fma(g, hh, c[9])
    g = fma(g, hh, c[8])
    g = fma(g, hh, c[7])
    g = fma(g, hh, c[6])
    g = fma(g, hh, c[5])
    g = fma(g, hh, c[4])
    g = fma(g, hh, c[3])
    gh, gl = _dd_step(c[2], PHI_MID_LO[2], hh, hl, g, 0.0)
    gh, gl = _dd_step(c[1], PHI_MID_LO[1], hh, hl, gh, gl)
    gh, gl = _dd_step(c[0], PHI_MID_LO[0], hh, hl, gh, gl)
    wh, wl = two_prod(dh, dh)
    wl += 2.0 * dh * dl
    return dd_mul_raw(wh, wl, gh, gl)


#: the degree of ``_phi_mid_narrow``: its Taylor remainder on ``|t + 1/2| <= 3/2`` is below
#: ``2**-40.8`` of ``g >= g(1) = 1/e`` (``phi_mid_tail(15)`` in
#: docs/scripts/divergence_error_budget.py; tests/test_precision_divergence.py checks it)
PHI_MID_NARROW_DEGREE = 15


@jit(inline=True)
def _phi_mid_narrow(t):
    """``phi(t)`` for ``-2 < t < 1`` and float32 and narrower results: the polynomial of
    :func:`_phi_dd` cut at degree 15 and evaluated in float64 (Horner, one FMA per step),
    within ``2**-40.8`` relative (the omitted Taylor terms) plus a few roundings, far below
    a float32 rounding."""
    h = t + 0.5
    c = PHI_MID_COEF
    g = fma(c[15], h, c[14])
    g = fma(g, h, c[13])
    g = fma(g, h, c[12])
    g = fma(g, h, c[11])
    g = fma(g, h, c[10])
    g = fma(g, h, c[9])
    g = fma(g, h, c[8])
    g = fma(g, h, c[7])
    g = fma(g, h, c[6])
    g = fma(g, h, c[5])
    g = fma(g, h, c[4])
    g = fma(g, h, c[3])
    g = fma(g, h, c[2])
    g = fma(g, h, c[1])
    return (t * t) * fma(g, h, c[0])


@jit(inline=True)
def _kl_term_v(P, Q, dh, dl, masked):
    """The KL term ``P phi(delta)``, ``delta = dh + dl``, for float32 and narrower results,
    without branches (the three forms are computed and one is selected, so that the row's
    loop is vectorized): ``Q - P (1 - delta)`` for ``delta <= -2``; ``P (f + dl (dh - f))``,
    ``f = phi(dh)`` by ``_phi_mid_narrow``, for ``-2 < delta < 1`` (the low word to first
    order, ``phi' = t - phi``); ``P (delta - 1) + Q`` by one FMA for ``delta >= 1``, two
    non-negative parts (``Q = P exp(-delta)``): no exponential. ``masked`` (``P = 0``): the
    limit ``Q``. A negative value (only from underflow) is raised to 0."""
    f = _phi_mid_narrow(dh)
    mid = P * (f + dl * (dh - f))
    low = Q - P * (1.0 - (dh + dl))
    high = fma(P, (dh - 1.0) + dl, Q)
    r = _select(dh <= -2.0, low, _select(dh < 1.0, mid, high))
    r = Q if masked else r
    return 0.0 if r < 0.0 else r


#: the float64 kernel's low form ``Q - P (1 - delta)`` is taken at and below this ``delta``
#: (``_phi_dd`` covers the rest of ``delta < 1``): there the two parts cancel by at most
#: ``(e**3 + 4) / (e**3 - 4) = 1.50``
KL_LOW = -3.0


@jit(inline=True)
def _kl_term_dd(Ph, Pl, Qh, Ql, dh, dl, masked):
    """The KL term ``P phi(delta)`` as a double-double ``(hi, lo)`` for float64 results,
    from ``P`` and ``Q`` as double-doubles and ``delta = dh + dl``, without branches (as
    :func:`_kl_term_v`): ``P phi(delta)`` (``_phi_dd``) for ``KL_LOW < delta < 1``, else
    ``Q + P (delta - 1)`` (two non-negative parts for ``delta >= 1``; below ``KL_LOW`` a
    cancellation of at most 1.50), each in double-double, so that the term's error is that
    of ``P`` and ``Q`` (their exponentials and sums, ``1.5002u``), the cancellation and
    ``phi``'s; nothing is rounded to a double. ``masked`` (``P = 0``): ``Q``. A negative
    value (only from underflow) is raised to 0."""
    fh, fl = _phi_dd(dh, dl)
    mh, ml = dd_mul_raw(Ph, Pl, fh, fl)
    eh, el = two_sum(dh, -1.0)  # delta - 1
    ah, al = dd_mul_raw(Ph, Pl, eh, el + dl)
    oh, oe = two_sum(Qh, ah)
    ol = oe + (Ql + al)
    mid = (dh > KL_LOW) & (dh < 1.0)
    rh = _select(mid, mh, oh)
    rl = _select(mid, ml, ol)
    rh = Qh if masked else rh
    rl = Ql if masked else rl
    rh, rl = fast_two_sum(rh, rl)
    neg = rh < 0.0
    return (0.0 if neg else rh), (0.0 if neg else rl)


@jit(inline=True)
def _select(c, a, b):
    """``a if c else b`` as a bitwise blend: a ternary on values that only one side uses may
    become a branch into which LLVM sinks their computation; the blend keeps the loop
    straight-line whatever the optimizer decides."""
    m = np.int64(0) - np.int64(c)  # all ones where c
    return _i64_as_f64((_f64_as_i64(a) & m) | (_f64_as_i64(b) & ~m))


@jit(inline=True)
def _kl_term(P, Q, dh, dl):
    """``P phi(dh + dl)`` (``Q = P exp(-delta)``, used where ``exp(-delta)`` could overflow).
    The low word enters to first order, ``dl phi'(dh)``, with ``phi'(t) = 1 - exp(-t) =
    t - phi(t)`` (a few percent of accuracy in ``phi'`` suffices: ``dl`` is below
    ``2**-52 |dh|``)."""
    if dh <= -2.0:
        return Q - P * (1.0 - (dh + dl))
    if dh < 1.0:
        f = _phi_small(dh)
    else:
        f = (dh - 1.0) + math.exp(-dh)
    return P * (f + dl * (dh - f))


@jit(inline=True)
def _prob(bt, be, i, ch, cl):
    """``softmax_i = c (T_i + E_i)`` from a row's scratch terms (see ``_scaled_terms``)."""
    t = _term_of(bt[i])
    return ch * t + (ch * be[i] + cl * t)


@jit(inline=True)
def _prob_v(bt, be, i, ch, cl):
    """``softmax_i = c (T_i + E_i)`` rounded once by FMAs (as ``_scaled_terms``), for the
    vectorized KL loops."""
    t = _term_of(bt[i])
    return fma(ch, t, fma(ch, be[i], cl * t))


@jit(inline=True)
def _delta_c(a, b, c):
    """``delta = ((a - b) - D) - l`` (:func:`_delta`), ``c = (Dh, Dl, lh, ll)`` the row's
    constant: ``D = Dh + Dl = d_k`` exactly and ``l = lh + ll``.

    ``D``'s low part is kept apart from ``l``: where the rows are far apart (``q = p + 1e30``)
    ``Dl`` is as large as ``ulp(D)/2``, and ``Dl + l`` rounded into one double (as this
    kernel did) lost ``u |Dl|``, up to ``u`` times the smaller row's logits: measured 25 ulp
    of KL at logits of scale 30 and an offset of 1e30, 150 ulp at scale 700 and 1e20. In
    :func:`_delta` the error is ``u |delta + l|`` whatever the offset."""
    Dh, Dl, lh, ll = c
    return _delta(a, b, Dh, Dl, lh, ll)


#: An error ``e`` in ``l`` (from the row statistics: up to ``1.5u``, the two sums'
#: exponentials, plus ``0.1u log C``) adds ``e**2 / 2`` to the exact KL, which is at least
#: ``P_k phi(-l) >= phi(-l) / C``. Rows with ``|l| <= 2**-20`` take ``l`` from
#: :func:`_s2_pass`; above ``L_RECOMPUTE`` the KL is at least ``2**-46`` (rows of up to ``2**21``
#: classes) and ``e**2 / 2`` below ``0.035u`` of it; in between, a KL below ``KL_RECOMPUTE``
#: is recomputed with ``l`` from :func:`_s2_pass` (``e**2 / 2`` is below ``0.0006u`` of a KL
#: above it). docs/accuracy.md#kl-logits.
L_RECOMPUTE = 2.0**-12
KL_RECOMPUTE = 2.0**-40
#: the recomputed ``l`` is taken only where the pass's terms' magnitudes sum to at most this:
#: its error is a few ``u`` times that sum, below the statistics' ``1.5u`` here
S2_MAX_ABS = 0.375


@jit
def _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl):
    """``(s2, sa)``: ``s2 = Q_k / P_k - 1 = sum_i r_i`` from terms that do not cancel, for an
    anchor ``k`` that is a largest entry of ``x`` and finite in ``y``, and ``sa = sum_i |r_i|``:
    ``r_i = Q_i expm1(e_i)``, ``e_i = (x_i - y_i) - D``, for ``e_i < 1``, else
    ``Q_k exp(x_i - m) - Q_i`` (no overflow); ``-Q_i`` where ``P_i = 0`` and ``Q_k P_i / P_k``
    where ``Q_i = 0``. With ``cqh + cql`` the scale of the probabilities (``2**B / S_q`` on
    the correctly rounded path) both results carry that scale. Each term within a few ``u``
    (libm's ``expm1``), so ``log1p(s2)`` is within ``u |l|`` plus a few ``u`` times ``sa``.
    Not inlined: called by the KL rows (both paths) and the JS rows, only for rows close to
    each other."""
    Qk = _prob(btq, beq, k, cqh, cql)
    s2h, s2l, sa = 0.0, 0.0, 0.0
    for i in range(x.shape[0]):
        xi, yi = np.float64(x[i]), np.float64(y[i])
        if xi == -INF:
            if yi == -INF:
                continue
            r = -_prob(btq, beq, i, cqh, cql)
        elif yi == -INF:  # Q_i = 0: the term Q_k P_i / P_k
            r = Qk * ((_term_of(btp[i]) + bep[i]) * INV_SCALE)
        else:
            Q = _prob(btq, beq, i, cqh, cql)
            eh, e2 = _d_minus_D(xi, yi, Dh, Dl)
            e = eh + e2
            if e < 1.0:
                r = Q * math.expm1(e)
            else:
                r = Qk * ((_term_of(btp[i]) + bep[i]) * INV_SCALE) - Q
        s2h, t = two_sum(s2h, r)
        s2l += t
        sa += abs(r)
    return s2h + s2l, sa


@jit(inline=True)
def _kl_row(x, y, btp, bep, btq, beq, bk, bkl, acc, odd, fast):
    """``(KL, ch_p, cl_p, ch_q, cl_q, c, far, m_p, L_p hi, L_p lo)`` of one row pair,
    ``c = (Dh, Dl, lh, ll)``, the row's constant ``D + l`` in parts (the value is nan or +inf
    for a row without finite entries or with a class of P missing from Q); ``far``: the
    number of classes whose term :func:`_far_terms` recomputed. ``bk``, ``bkl``: scratch rows
    like ``btp`` (``padded(C)`` long, zero beyond ``C``) for the terms (``bkl`` their low
    parts, float64 results only). ``fast`` (float32 and narrower results): the row
    statistics' short exponential without error terms (``_fill_terms_fast``: each ``P_i``
    within about ``2**-45`` relative, far below a float32 rounding), a quarter of the
    kernel's time at 1000 classes; ``bep`` and ``beq`` then stay 0, and the terms are
    doubles (``_kl_term_v``). Float64 results: the terms are double-doubles
    (``_kl_term_dd``), and ``L_p``, ``L_q`` are recomputed to ``2**-90`` (``_log_dd``), so
    that ``l``'s error does not move the forms that take ``Q_i`` directly."""
    stp, mp, hp, lp, Lph, Lpl, _a, _b = _row_stats(x, btp, bep, acc, fast)
    stq, mq, hq, lq, Lqh, Lql, _c, _d = _row_stats(y, btq, beq, acc, fast)
    if stp != OK or stq != OK:
        return NAN, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0), 0, mp, Lph, Lpl
    if not fast:  # log S from the double-double 2**B S: the statistics' L is within 0.05u
        Lph, Lpl = _log_dd(hp, lp, -SCALE_EXP)
        Lqh, Lql = _log_dd(hq, lq, -SCALE_EXP)
    C = x.shape[0]
    # k: the first largest entry of x (P_k = 1/S_p); bad: the classes with P_i > 0 = Q_i (KL is
    # +inf). Two reductions without an early exit: a vectorized loop
    k = C
    bad = 0
    for i in range(C):
        k = min(k, i if x[i] == mp else C)
        bad += 1 if (x[i] != -INF and y[i] == -INF) else 0
    if bad:
        return INF, 0.0, 0.0, 0.0, 0.0, (0.0, 0.0, 0.0, 0.0), 0, mp, Lph, Lpl
    # the rows may be float32 (the gradient kernel reads float32 inputs as they are): every
    # entry is converted to float64 (exactly) before any arithmetic
    Dh, Dl = two_sum(np.float64(x[k]), -np.float64(y[k]))  # D = d_k
    cph, cpl = _scale_dd(1.0, 0.0, hp, lp, 1.0)
    cqh, cql = _scale_dd(1.0, 0.0, hq, lq, 1.0)
    # l = log(Q_k / P_k) = (y_k - m_q) - L_q + L_p, in double-double from the row statistics.
    # For float64 (L_p, L_q to 2**-90) this l is that of the computed probabilities: an error
    # of the sums S_p, S_q moves l and every P_i, Q_i alike, and the computed terms stay
    # P_i phi(delta_i) of one consistent set (Q_i = P_i exp(-delta_i)), whose sum is
    # stationary in a common shift of the delta_i: the sums' errors (up to 1.5u in l) enter
    # at second order, e**2/2 (docs/accuracy.md#kl-logits). Rows closer than |l| <= 2**-20
    # (p ~ q, KL possibly tiny) take the s2 pass, whose l is accurate to u |l|; the Q_i of
    # the terms are then scaled by 1 + (l - l_stats) (cqt), so that they stay consistent with
    # that l: the forms that take Q_i directly would otherwise move by (l - l_stats) Q_i.
    lh, ll = two_sum(np.float64(y[k]), -mq)
    t1, t2 = two_sum(Lph, -Lqh)
    lh, t3 = two_sum(lh, t1)
    lh, ll = fast_two_sum(lh, ll + t3 + t2 + (Lpl - Lql))
    lsh, lsl = lh, ll
    retry = 2.0**-20 < abs(lh) <= L_RECOMPUTE
    if abs(lh) <= 2.0**-20:
        lh, ll = math.log1p(_s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)[0]), 0.0
    for attempt in range(2):
        # c = D + l, kept as its four parts (see _delta_c): delta_i = d_i - c to u |delta_i + l|
        # for any offset between the rows; delta = 0 exactly where d_i = D and l = 0 (equal rows)
        c = (Dh, Dl, lh, ll)
        cqt = cqh, cql + cqh * ((lh - lsh) + (ll - lsl))  # 1/S_q (1 + l - l_stats)
        # KL = sum_i P_i phi(delta_i), delta_i = d_i - c: the terms into bk (a vectorized loop;
        # a class with x_i = -inf, P_i = 0, has the limit Q_i, 0 when y_i is -inf too), then
        # their fixed-order double-double sum
        far = 0
        if fast:
            for i in range(C):
                P = _prob_v(btp, bep, i, cph, cpl)
                Q = _prob_v(btq, beq, i, cqt[0], cqt[1])
                dh, dl = _delta_c(np.float64(x[i]), np.float64(y[i]), c)
                bk[i] = _kl_term_v(P, Q, dh, dl, x[i] == -INF)
                far += _is_far(np.float64(x[i]), mp, dh)
        else:
            for i in range(C):
                Ph, Pl = _dd_prob(btp[i], bep[i], cph, cpl)
                Qh, Ql = _dd_prob(btq[i], beq[i], cqt[0], cqt[1])
                dh, dl = _delta_c(np.float64(x[i]), np.float64(y[i]), c)
                bk[i], bkl[i] = _kl_term_dd(Ph, Pl, Qh, Ql, dh, dl, x[i] == -INF)
                far += _is_far(np.float64(x[i]), mp, dh)
        if far:  # rare: a tiny P_i meets an astronomically large delta_i (see _far_part)
            _far_terms(x, y, mp, Lph, Lpl, btq, beq, cqt[0], cqt[1], c, bk, bkl)
        kh, kl = dd_sum(bk, acc) if fast else dd_sum2(bk, bkl, acc)
        if attempt or not (retry and kh < KL_RECOMPUTE):
            break
        # a tiny KL with 2**-20 < |l| <= 2**-12: l's error e adds e**2 / 2 (see L_RECOMPUTE)
        s2, sa = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)
        if sa > S2_MAX_ABS:
            break
        lh, ll = math.log1p(s2), 0.0
    return _round_sum(kh, kl, odd), cph, cpl, cqh, cql, c, far, mp, Lph, Lpl


#: ``x_i - max x`` below which :func:`_far_part` forms ``P_i delta_i``: the fast exp's
#: ``P_i`` loses relative accuracy below ``e^-708`` (subnormal) and is 0 below ``e^-745``,
#: while ``P_i delta_i`` is a normal number wherever ``delta_i > e^(708 + log P_i)`` (up to
#: ``2**1025``: ``P_i`` down to ``e^-1460`` matters)
FAR = -700.0


@jit(inline=True)
def _is_far(v, mp, dh):
    """1 for a class whose term :func:`_far_terms` recomputes (``P_i`` below ``e^-700`` and
    ``delta_i >= 1``: the term is ``P_i (delta_i - 1) + Q_i``), else 0. Two compares and an
    and, no branch: it runs in the vectorized term loop."""
    return np.int64((v - mp < FAR) & (dh >= 1.0))  # x_i = -inf: delta_i is -inf or nan


#: ``exp(s) = 2**FAR_SHIFT exp(s - FAR_SHIFT ln 2)``: the argument of ``exp_parts_dd`` must be
#: at most 0, and the products ``P_i t`` that :func:`_far_part` forms are below ``e**9.8``
#: (``P_i < e**-700``, ``t < 2**1024``)
FAR_SHIFT = 16


@jit
def _far_part(v, mp, Lph, Lpl, th, tl):
    """``P_i t`` as a double-double for ``t = th + tl`` (a double-double, 0 if not above
    ``2**-1000``) and ``P_i = exp((v - mp) - L_p)`` below ``e^-700``, from logarithms:
    ``exp(log P_i + log t)``, ``log P_i`` exact to the row's ``L_p`` (double-double),
    ``log t`` by ``_log_dd``, and the exponential of the double-double sum ``s`` by
    ``exp_parts_dd`` (``2**-83.5``) as ``2**16 exp(s - 16 ln 2)``: within ``2**-80`` of
    ``P_i t`` unless it is subnormal. Scalar, not inlined: only the rare classes
    :func:`_is_far` marks take it."""
    if not th > 2.0**-1000:
        return 0.0, 0.0
    a, b = two_sum(v, -mp)
    ph, e = two_sum(a, -Lph)
    pl = e + (b - Lpl)
    gh, gl = _log_dd(th, tl)
    sh, e2 = two_sum(ph, gh)
    sl = e2 + (pl + gl)
    rh, r2 = two_sum(sh, -FAR_SHIFT * LN2_DD_HI)  # FAR_SHIFT ln 2: exact, a power of two
    rl = r2 + (sl - FAR_SHIFT * LN2_DD_LO)
    rh, rl = fast_two_sum(rh, rl)
    h, lo, sc = exp_parts_dd(rh)  # (h + lo) sc = 2**600 exp(rh)
    f = sc * 2.0**(FAR_SHIFT - SCALE_EXP)
    return h * f, fma(h, rl, lo) * f


@jit
def _far_terms(x, y, mp, Lph, Lpl, btq, beq, cqh, cql, c, bk, bkl):
    """``bk[i] + bkl[i] = P_i (delta_i - 1) + Q_i`` for the classes :func:`_is_far` marks,
    the product by :func:`_far_part` (the vectorized loop's ``P_i`` there is 0 or
    inaccurate)."""
    for i in range(x.shape[0]):
        xi = np.float64(x[i])
        dh, dl = _delta_c(xi, np.float64(y[i]), c)
        if _is_far(xi, mp, dh):
            th, t = two_sum(dh, -1.0)
            th, tl = fast_two_sum(th, t + dl)
            fh, fl = _far_part(xi, mp, Lph, Lpl, th, tl)
            qh, ql = _dd_prob(btq[i], beq[i], cqh, cql)
            bk[i], e = two_sum(fh, qh)
            bkl[i] = e + (fl + ql)


@jit(inline=True)
def _delta(a, b, Dh, Dl, lh, ll):
    """``delta = (a - b - D) - l`` as a double-double (``a - b`` and ``- D`` by TwoSum)."""
    h, l = two_sum(a, -b)
    eh, el = two_sum(h, -Dh)
    el += l - Dl
    dh, t = two_sum(eh, -lh)
    return fast_two_sum(dh, t + (el - ll))


@jit
def _kl_task(x, y, keep, odd, fast, out, lo, hi, grad, scale, gx, gy):
    """Rows ``lo`` to ``hi`` of the batch: ``out[n]`` (0 where ``keep[n]`` is False) and, with
    ``grad``, the gradient of ``scale * KL`` in both arguments, ``gx = scale P (delta - KL)``,
    ``gy = scale (Q - P)`` (0 for dropped rows, nan for rows whose value is nan or inf).
    ``x``, ``y``, ``gx``, ``gy``: float64, or all float32 (read and written as they are: the
    same float64 arithmetic, each gradient entry rounded once on its store).

    One prange task of the batch kernels, not inlined into them: compiled once per input type
    and shared by the value and the gradient kernels (inlined, each kernel compiled its own
    copy of the whole row, twice the compile time), and called once per task, not per row
    (a call per row costs the reference counting of its arrays: +50% on 10-class rows)."""
    wide_vectors()
    C = x.shape[1]
    btp, bep = _term_rows(C)
    btq, beq = _term_rows(C)
    bk = np.zeros(padded(C))
    bkl = np.zeros(padded(C))
    acc = np.empty(DD_ACC)
    for n in range(lo, hi):
        xr, yr = x[n], y[n]
        if not keep[n]:
            out[n] = 0.0
            if grad:
                gxr, gyr = gx[n], gy[n]
                for i in range(C):
                    gxr[i] = 0.0
                    gyr[i] = 0.0
            continue
        v, cph, cpl, cqh, cql, c, far, mp, Lph, Lpl = _kl_row(xr, yr, btp, bep, btq, beq, bk, bkl,
                                                             acc, odd, fast)
        out[n] = v
        if not grad:
            continue
        gxr, gyr = gx[n], gy[n]
        if not (v < INF):
            for i in range(C):
                gxr[i] = NAN
                gyr[i] = NAN
            continue
        # without branches (a vectorized loop): a class with x_i = -inf has P_i = 0 exactly
        # (its scratch term, below 2**-986, times 1/S below 2**-600, underflows), so
        # gy = Q_i, and gx is set to 0 (delta_i is nan there); where y_i is -inf too, Q_i = 0
        for i in range(C):
            P = _prob_v(btp, bep, i, cph, cpl)
            Q = _prob_v(btq, beq, i, cqh, cql)
            dh, dl = _delta_c(np.float64(xr[i]), np.float64(yr[i]), c)
            g = scale * (P * ((dh + dl) - v))
            gxr[i] = 0.0 if xr[i] == -INF else g
            gyr[i] = scale * (Q - P)
        if far:  # P_i (delta_i - KL) where P_i is tiny and delta_i huge (see _far_part)
            for i in range(C):
                xi = np.float64(xr[i])
                dh, dl = _delta_c(xi, np.float64(yr[i]), c)
                if _is_far(xi, mp, dh):
                    th, t = two_sum(dh, -v)
                    th, tl = fast_two_sum(th, t + dl)
                    if th > 0.0:  # else |P_i (delta_i - KL)| <= P_i KL: the loop's is fine
                        fh, fl = _far_part(xi, mp, Lph, Lpl, th, tl)
                        gxr[i] = scale * (fh + fl)


@jit(parallel=True)
def kl_divergence_logits_rows(x, y, keep, odd, fast, out):
    """``out[n] = KL(softmax(x[n]) || softmax(y[n]))`` (0 where ``keep[n]`` is False);
    ``fast``: float32 and narrower results (see ``_kl_row``)."""
    N = x.shape[0]
    # no gradient: x and y stand in for gx and gy (not written), so that this call has the
    # float64 gradient kernel's types and shares its compilation; the flag is a runtime bool
    # (a literal False would be typed Literal[bool] and compile another specialization)
    grad = N < 0
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lo = task * ROWS_PER_TASK
        _kl_task(x, y, keep, odd, fast, out, lo, min(N, lo + ROWS_PER_TASK), grad, 1.0, x, y)


@jit(parallel=True)
def kl_divergence_logits_grad_rows(x, y, keep, fast, scale, out, gx, gy):
    """``out[n]`` as :func:`kl_divergence_logits_rows`, and the gradient of ``scale * KL`` in
    both arguments (see ``_kl_task``). ``x``, ``y``, ``gx``, ``gy``: float64, or all float32
    (read and written as they are: no converted copies of the inputs and outputs, which cost
    as much as the kernel)."""
    N = x.shape[0]
    odd = N < 0  # False, a runtime bool (see kl_divergence_logits_rows)
    grad = N >= 0
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        lo = task * ROWS_PER_TASK
        _kl_task(x, y, keep, odd, fast, out, lo, min(N, lo + ROWS_PER_TASK), grad, scale, gx,
                 gy)


# ----------------------------------------------------- KL from logits, correctly rounded
def _inv_factorial_dd(n):
    """``1/n!`` as a double-double ``(hi, lo)``: ``hi`` the nearest float, ``lo`` the nearest
    float to the exact remainder (integer arithmetic: ``hi = a/b`` exactly, ``b`` a power of
    two, and ``1/n! - a/b = (b - a n!)/(b n!)``, rounded once by int true division)."""
    f = math.factorial(n)
    hi = 1.0 / f
    a, b = hi.as_integer_ratio()
    return hi, (b - a * f) / (b * f)


# 1/(k + 2)! as double-doubles (hi + lo to 2**-106 relative), for the head of phi's series
_PHI_HI = np.array([_inv_factorial_dd(k + 2)[0] for k in range(8)])
_PHI_LO = np.array([_inv_factorial_dd(k + 2)[1] for k in range(8)])
#: relative error bound of ``_phi_series_dd`` (``|t| < 1/8``; docs/accuracy.md#correct-rounding,
#: checked against mpmath by tests/test_correct_rounding_kl.py)
PHI_SERIES_REL = 2.0**-92
#: relative error bound of ``e^{-t}`` in ``_phi_exp_dd`` (the exponential's 2**-83.5, the
#: reciprocal's 4 u**2, the rounding of the correction for ``t``'s low part below it)
PHI_EXP_REL = EXP_PARTS_DD_MAX_REL_ERR + 2.0**-90


@jit(inline=True)
def _square_series_dd(c, hi, lo, nd, N, th, tl):
    """``t**2 sum_{j <= N} c_j (-t)**j`` as a double-double, ``t = th + tl`` (the form of both
    ``phi`` and ``psi``): float64 Horner on the coefficients ``c[N] .. c[nd]`` (the terms
    small enough for it), double-double Horner steps with the double-double coefficients
    ``hi[j] + lo[j]`` for ``j < nd``, and the product by ``t**2`` (TwoProduct, ``t``'s low
    part to first order)."""
    sh = -th
    sl = -tl
    g = c[N]
    for j in range(N - 1, nd - 1, -1):
        g = g * sh + c[j]
    gh, gl = g, 0.0
    for j in range(nd - 1, -1, -1):
        p, e = two_prod(gh, sh)
        e += gh * sl + gl * sh
        h, e2 = two_sum(hi[j], p)
        gh, gl = fast_two_sum(h, e2 + (e + lo[j]))
    wh, wl = two_prod(th, th)
    wl += 2.0 * th * tl
    ph, pe = two_prod(wh, gh)
    return fast_two_sum(ph, pe + (wh * gl + wl * gh))


@jit(inline=True)
def _phi_series_dd(th, tl):
    """``phi(t) = t**2 g(t)``, ``g(t) = sum_k (-t)**k / (k + 2)!``, as a double-double for
    ``|t| < 1/8`` (``t = th + tl``), within ``PHI_SERIES_REL`` relative: the terms that need
    more than float64 (those above ``2**-37`` of ``g``, which is at least 0.479 there) by
    double-double Horner steps with double-double coefficients, the rest by float64 Horner
    on ``th``, cut where the first omitted term is below ``2**-100`` of ``g``: by tiers,
    ``|t| < 2**-20``: 2 double-double terms of 5; ``< 2**-10``: 4 of 8; else 8 of 16."""
    a = abs(th)
    if a < 2.0**-20:
        nd, N = 2, 4
    elif a < 2.0**-10:
        nd, N = 4, 7
    else:
        nd, N = 8, 15
    return _square_series_dd(_PHI_COEF, _PHI_HI, _PHI_LO, nd, N, th, tl)


@jit(inline=True)
def _exp_dd(th, tl):
    """``e^t`` as a double-double, ``t = th + tl`` (``|tl| <= u |th|``, ``|th| <= 700``),
    within ``PHI_EXP_REL`` relative: ``exp_parts_dd(th)`` for ``th < 0``, else
    ``1 / exp_parts_dd(-th)`` (the reciprocal's ``4 u**2``); ``e^{tl} = 1 + tl + tl**2/2``."""
    if th < 0.0:
        h, l, s = exp_parts_dd(th)
        f = s * INV_SCALE  # 2**k, normal (k >= -1010): exact
        eh, el = h * f, l * f
    else:
        h, l, s = exp_parts_dd(-th)
        qh, ql = dd_div(1.0, 0.0, h, l)
        f = SCALE / s  # 2**-k, exact
        eh, el = qh * f, ql * f
    el += eh * (tl + 0.5 * tl * tl)
    return eh, el


@jit(inline=True)
def _phi_exp_dd(th, tl):
    """``(fh, fl, E)``: ``phi(t) = (t - 1) + e^{-t}`` as a double-double for ``t > -2``
    (``t = th + tl``), and ``E ~ e^{-t}`` (``_exp_dd(-t)``, within ``PHI_EXP_REL``).
    Above ``t = 700``, ``e^{-t}`` (below ``2**-1009``) is dropped. The error is
    ``PHI_EXP_REL E`` plus the roundings of the sum, ``2**-100 (|t - 1| + E)`` (it cancels
    for ``|t| < 1``: the caller takes the series below ``|t| = 1/8``)."""
    if th > 700.0:
        eh, el = 0.0, 0.0
    else:
        eh, el = _exp_dd(-th, -tl)
    ah, al = two_sum(th, -1.0)
    al += tl
    h, e = two_sum(ah, eh)
    fh, fl = fast_two_sum(h, e + (al + el))
    return fh, fl, eh


@jit(inline=True)
def _dd_prob(b, be, ch, cl):
    """``2**B P_i = T_i (ch + cl) + E_i ch`` as a double-double from a row's scratch terms."""
    t = _term_of(b)
    ph, pe = two_prod(ch, t)
    return fast_two_sum(ph, pe + (ch * be + cl * t))


@jit(inline=True)
def _d_minus_D(a, b, Dh, Dl):
    """``(a - b) - D`` as a double-double ``(h, l)``, ``D = Dh + Dl``: the four parts of the
    exact value (two TwoSums of ``a - b`` and of the low parts) added so that the error is
    below ``2**-104`` of the result plus ``2**-155 (|a| + |b| + |D|)``."""
    h1, l1 = two_sum(a, -b)
    eh, e1 = two_sum(h1, -Dh)
    g, g1 = two_sum(l1, -Dl)
    s, s1 = two_sum(eh, g)
    return fast_two_sum(s, e1 + (s1 + g1))


@jit(inline=True)
def _kl_row_cr(x, y, btp, bep, btq, beq, acc, rho):
    """``KL(softmax(x) || softmax(y))`` of one float64 row pair for the correctly rounded
    path: the value rounded to nearest, or nan where the rounding test cannot decide (and for
    the rows the fast path makes nan); +inf for a class of P missing from Q; 0 for rows that
    differ by a constant exactly. ``rho``: the relative error of each ``P_i`` and ``Q_i``
    (``crossent._rounding.kl_relative_bound``)."""
    kh, kl, cr = _kl_row_dd(x, y, btp, bep, btq, beq, acc, rho)
    if cr == 0.0:
        return kh  # nan, +inf or an exact 0
    return _round_cr(kh, kl, False, cr)


@jit
def _kl_row_dd(x, y, btp, bep, btq, beq, acc, rho):
    """``(kh, kl, cr)``: the value as a double-double and its relative error bound, or
    ``(v, 0, 0)`` with ``v`` nan, +inf or an exact 0 (see :func:`_kl_row_cr`). Not inlined:
    compiled once, apart from the fast kernels. :func:`_kl_setup_dd`, then
    :func:`_kl_sum_dd`."""
    # js False as a runtime bool (a literal would compile another specialization)
    st = _kl_setup_dd(x, y, btp, bep, btq, beq, acc, rho, x.shape[0] < 0)
    return _kl_sum_dd(x, y, btp, bep, btq, beq, rho, st)


@jit
def _kl_setup_dd(x, y, btp, bep, btq, beq, acc, rho, js):
    """The row quantities of :func:`_kl_sum_dd`, :func:`_kl_grad_row_cr` and
    :func:`_js_grad_row_cr` (``js``: a class of P missing from Q is allowed, ``k`` is the
    first largest ``x`` among the classes finite in both, ``v = 1`` when there is none, and
    the s2 pass is skipped). Not inlined: compiled once for all three.
    ``(v, mp, mq, cph, cpl, cqh, cql, Dh, Dl, lh, ll, el, lh0, ll0, el0)``. ``v`` is nan (a row the fast
    path makes nan), +inf (a class of P missing from Q) or 0 (go on); ``mp``, ``mq`` the
    maxima, ``2**B P_i = T_i (cph + cpl)`` (and Q), ``D = x_k - y_k`` at the first largest
    entry ``k`` of ``x``, ``l = log(Q_k / P_k)`` and its error bound ``el`` (from the s2 pass
    for ``|l| <= 2**-20``), and ``l`` of the row statistics with its bound (``lh0, ll0,
    el0``: the same ``l`` above ``2**-20``)."""
    stp, mp, hp, lp, Lph, Lpl, _a, _b = _row_stats(x, btp, bep, acc, False, True)
    stq, mq, hq, lq, Lqh, Lql, _c, _d = _row_stats(y, btq, beq, acc, False, True)
    if stp != OK or stq != OK:
        return NAN, mp, mq, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    C = x.shape[0]
    k = -1  # the first largest x among the classes finite in both (for KL: of all of x)
    for i in range(C):
        fy = y[i] != -INF
        if x[i] != -INF and not fy and not js:
            return INF, mp, mq, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        if fy and x[i] != -INF and (k < 0 or x[i] > x[k]):
            k = i
    if k < 0:  # no class in both rows (js only)
        return 1.0, mp, mq, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    Dh, Dl = two_sum(x[k], -y[k])
    cph, cpl = _scale_dd(1.0, 0.0, hp, lp, INV_SCALE)  # 1/S: 2**B P_i = T_i (cph + cpl)
    cqh, cql = _scale_dd(1.0, 0.0, hq, lq, INV_SCALE)
    # l = ((y_k - m_q) - (x_k - m_p)) - L_q + L_p; L within rho L (rho >= relative_bound(C));
    # x_k = m_p unless js
    a, b = two_sum(y[k], -mq)
    c1, c2 = two_sum(x[k], -mp)
    if c1 != 0.0 or c2 != 0.0:
        a, e = two_sum(a, -c1)
        b = b + e - c2
    t1, t2 = two_sum(Lph, -Lqh)
    lh, t3 = two_sum(a, t1)
    lh, ll = fast_two_sum(lh, b + t3 + t2 + (Lpl - Lql))
    el = rho * (Lph + Lqh) * (1.0 + 2.0**-40) + 2.0**-100 * (abs(a) + abs(c1) + Lph + Lqh)
    lh0, ll0, el0 = lh, ll, el  # l from the statistics: the gradient's (an absolute error)
    if abs(lh) <= 2.0**-20 and not js:
        # s2 = Q_k / P_k - 1 = sum_i r_i, each r_i within 8u (libm's expm1 and log1p within
        # an ulp): l = log1p(s2) within 2**-49 (sum |r_i| + |s2|) + 2**-51 |l|
        s2, sa = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)
        s2 *= INV_SCALE
        lh, ll = math.log1p(s2), 0.0
        el = 2.0**-49 * (sa * INV_SCALE + abs(s2)) + 2.0**-51 * abs(lh) + 2.0**-1070
    return 0.0, mp, mq, cph, cpl, cqh, cql, Dh, Dl, lh, ll, el, lh0, ll0, el0


@jit
def _kl_sum_dd(x, y, btp, bep, btq, beq, rho, st):
    """:func:`_kl_row_dd` after :func:`_kl_setup_dd` (``st``). Not inlined: compiled once for
    the value and the gradient kernels.

    The terms of :func:`_kl_row` in double-double: ``P_i`` (``_dd_prob``), ``delta_i``
    (``_d_minus_D``, then ``- l``), ``phi(delta_i)`` by the series (``|delta| < 1/8``) or
    the exponential (``-2 < delta``), ``Q_i - P_i (1 - delta_i)`` below ``-2``; beside the
    sum, a bound on its error, class by class (docs/accuracy.md, "Correct rounding in
    float64"): the terms' relative errors, ``phi``'s, the error ``eta_i`` of ``delta_i``
    through ``|phi'|``, the error ``el`` of ``l`` (first order on the ``Q`` terms, second
    order, ``0.52 el**2``, on the rest: the sum is stationary in ``l``)."""
    v, mp, mq, cph, cpl, cqh, cql, Dh, Dl, lh, ll, el, _l0, _l1, _l2 = st
    if v != 0.0:
        return v, 0.0, 0.0
    C = x.shape[0]
    kh, kl, err = 0.0, 0.0, 0.0
    allzero = True  # x - y constant on the classes of P and Q = 0 where P = 0: KL = 0
    rq = rho + 2.0**-100  # Q_i's relative error (a clamped Q_i is below the absolute part)
    for i in range(C):
        # P_i's relative error; 1 where the exp clamped its argument (x_i more than 1100
        # below the max: the true P_i is in [0, ph]), so that a term whose P part is not
        # negligible there (delta_i astronomically large) leaves the row undecided
        ra = 1.0 if x[i] - mp < X_MIN_PARTS else rho + 2.0**-100
        if x[i] == -INF:  # P_i = 0: the term's limit is Q_i (0 when y_i is -inf too)
            if y[i] != -INF:
                allzero = False
                qh, ql = _dd_prob(btq[i], beq[i], cqh, cql)
                kh, s = two_sum(kh, qh)
                kl += s + ql
                err += (rq + 1.01 * el) * qh
            continue
        ph, pl = _dd_prob(btp[i], bep[i], cph, cpl)
        sh, sl = _d_minus_D(x[i], y[i], Dh, Dl)
        if sh != 0.0:
            allzero = False
        dh, t = two_sum(sh, -lh)
        dh, dl = fast_two_sum(dh, t + (sl - ll))
        eta = (2.0**-100 * (abs(dh) + abs(lh)) + 2.0**-150 * abs(x[i]) + 2.0**-150 * abs(y[i])
               + 2.0**-150 * abs(Dh))
        if dh <= -2.0:  # P phi = Q - P (1 - delta): phi >= 4.39 P, >= 0.59 Q
            qh, ql = _dd_prob(btq[i], beq[i], cqh, cql)
            oh, ol = two_sum(1.0, -dh)
            ol -= dl
            uh, ue = two_prod(ph, oh)
            ul = ue + (ph * ol + pl * oh)
            vh, ve = two_sum(qh, -uh)
            vl = ve + (ql - ul)
            kh, s = two_sum(kh, vh)
            kl += s + vl
            err += (rq + 1.01 * el) * qh + ra * uh + 1.01 * ph * eta
            continue
        if abs(dh) < 0.125:
            fh, fl = _phi_series_dd(dh, dl)
            ef = PHI_SERIES_REL * fh
            dphi = 1.2 * abs(dh) + eta
        else:
            fh, fl, E = _phi_exp_dd(dh, dl)
            ef = (PHI_EXP_REL + 2.0**-52 * abs(dl)) * E + 2.0**-100 * (abs(dh - 1.0) + E)
            dphi = 1.0 + E
        th, te = two_prod(ph, fh)
        tl = te + (ph * fl + pl * fh)
        kh, s = two_sum(kh, th)
        kl += s + tl
        err += ra * th + ph * (ef + 1.01 * dphi * eta)
    if allzero:
        return 0.0, 0.0, 0.0
    kh, kl = fast_two_sum(kh, kl)
    if not kh > 0.0:
        return NAN, 0.0, 0.0
    # the absolute parts: l's second order (unscaled, hence SCALE); underflows: a few
    # subnormal roundings (2**-1075 each) in phi's products times 2**B P_i < 2**601, per class
    err = (err + 0.52 * el * el * SCALE + C * 2.0**-470) * (1.0 + 2.0**-40)
    cr = err / kh * (1.0 + 2.0**-40) + C * 2.0**-103 + 2.0**-100
    return kh * INV_SCALE, kl * INV_SCALE, cr


@jit(parallel=True)
def kl_divergence_logits_rows_cr(x, y, keep, rho, out):
    """``out[n] = KL(softmax(x[n]) || softmax(y[n]))`` correctly rounded, nan where
    undecided (0 where ``keep[n]`` is False)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                continue
            out[n] = _kl_row_cr(x[n], y[n], btp, bep, btq, beq, acc, rho)


@jit(inline=True)
def _grad_entry_cr(h, l, err, nk):
    """A gradient entry ``(h + l) / nk`` (``h + l`` scaled by ``2**B``, known to within
    ``err``) rounded to nearest, or nan where the bound cannot decide; ``nk`` the number of
    kept rows of a ``'mean'`` (1 otherwise, an integer: the division's ``4u**2``)."""
    if nk != 1.0:
        h, l = dd_div(h, l, nk, 0.0)
        err = err / nk * (1.0 + 2.0**-50) + 2.0**-100 * abs(h)
    err = err * (1.0 + 2.0**-40) * INV_SCALE
    if err != 0.0 or h != 0.0:
        err += 2.0 * TINY  # the unscaling by 2**-B in the subnormal range
    return _round_cr_abs(h * INV_SCALE, l * INV_SCALE, err)


@jit
def _kl_grad_row_cr(x, y, btp, bep, btq, beq, acc, rho, nk, gx, gy):
    """The correctly rounded value (as :func:`_kl_row_cr`) and, into ``gx`` and ``gy``, the
    gradient rows ``P_j (delta_j - KL) / nk`` and ``(Q_j - P_j) / nk``; returns
    ``(value, ok)``, ``ok`` False when the value or an entry is undecided (nan).

    Both entries may cancel, so their bounds are absolute (docs/accuracy.md, "the gradient
    of the KL divergence"): ``P_j`` and ``Q_j`` within ``rho`` relative (1 where the
    exponential clamped), the difference's own ``2**-104``; ``delta_j`` within
    ``eta_j + el`` (its double-double steps and the error of the statistics' ``l``, at first
    order here), ``KL``
    within ``cr KL`` (its tested bound), their difference's ``2**-104``; the product within
    ``ra P |d| + 1.01 P e_d``. A row whose value is nan or +inf gets nan rows (as the fast
    kernel); rows that differ by a constant, exactly, get zeros; a class masked in ``x``
    gets ``gx = 0`` and ``gy = Q_j / nk`` (0 where ``y`` masks it too)."""
    C = x.shape[0]
    st = _kl_setup_dd(x, y, btp, bep, btq, beq, acc, rho, C < 0)  # js False (runtime)
    kh, kl, cr = _kl_sum_dd(x, y, btp, bep, btq, beq, rho, st)
    if cr == 0.0:  # nan, +inf or an exact 0
        g = kh if kh == 0.0 else NAN
        for j in range(C):
            gx[j] = g
            gy[j] = g
        return kh, True
    value = _round_cr(kh, kl, False, cr)
    ok = value == value
    # delta_j from l of the statistics (within rho (L_p + L_q) absolute), not the s2 pass's
    # (which the value takes near |l| = 0, within 2**-49 of |l| only: first order here)
    _v, mp, mq, cph, cpl, cqh, cql, Dh, Dl, _a, _b, _c, lh, ll, el = st
    ek = cr * kh * (1.0 + 2.0**-40)  # KL's absolute error (unscaled, as delta)
    rp = rho + 2.0**-100
    for j in range(C):
        if y[j] == -INF:  # then x_j is -inf too (KL finite): P_j = Q_j = 0
            gx[j] = 0.0
            gy[j] = 0.0
            continue
        qh, ql = _dd_prob(btq[j], beq[j], cqh, cql)
        rq = 1.0 if y[j] - mq < X_MIN_PARTS else rp
        if x[j] == -INF:  # P_j = 0
            gx[j] = 0.0
            r = _grad_entry_cr(qh, ql, rq * qh, nk)
            gy[j] = r
            ok = ok and r == r
            continue
        ph, pl = _dd_prob(btp[j], bep[j], cph, cpl)
        ra = 1.0 if x[j] - mp < X_MIN_PARTS else rp
        h, e = two_sum(qh, -ph)
        h, e = fast_two_sum(h, e + (ql - pl))
        r = _grad_entry_cr(h, e, rq * qh + ra * ph + 2.0**-104 * (qh + ph), nk)
        gy[j] = r
        ok = ok and r == r
        sh, sl = _d_minus_D(x[j], y[j], Dh, Dl)
        dh, t = two_sum(sh, -lh)
        dh, dl = fast_two_sum(dh, t + (sl - ll))
        eta = (2.0**-100 * (abs(dh) + abs(lh)) + 2.0**-150 * abs(x[j]) + 2.0**-150 * abs(y[j])
               + 2.0**-150 * abs(Dh))
        fh, t = two_sum(dh, -kh)
        fh, fl = fast_two_sum(fh, t + (dl - kl))  # delta_j - KL
        ed = eta + el + ek + 2.0**-104 * abs(fh)
        gh, ge = two_prod(ph, fh)
        gl = ge + (ph * fl + pl * fh)
        r = _grad_entry_cr(gh, gl, 1.01 * (ra * ph * abs(fh) + ph * ed) + 2.0**-100 * abs(gh),
                           nk)
        gx[j] = r
        ok = ok and r == r
    return value, ok


@jit(parallel=True)
def kl_divergence_logits_grad_rows_cr(x, y, keep, rho, nk, out, gx, gy, slow):
    """``out[n]`` as :func:`kl_divergence_logits_rows_cr` and the gradient rows of the sum
    of the rows divided by ``nk`` (:func:`_kl_grad_row_cr`), correctly rounded;
    ``slow[n] = 1`` where the value or an entry is undecided (0 rows where ``keep[n]`` is
    False)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                slow[n] = False
                for j in range(C):
                    gx[n, j] = 0.0
                    gy[n, j] = 0.0
                continue
            v, ok = _kl_grad_row_cr(x[n], y[n], btp, bep, btq, beq, acc, rho, nk, gx[n], gy[n])
            out[n] = v
            slow[n] = not ok


# ----------------------------------------------------------------------------- entropy
@jit(inline=True)
def _left_out(v, m):
    """An entry that the entropy kernels leave out: masked (``-inf``, ``P_i = 0``) or more
    than 1100 below the row's max ``m`` (``X_MIN_PARTS``, where the exponential clamps its
    argument; see :func:`_entropy_nats_cr`). Its gradient entry is 0."""
    return v == -INF or v - m < X_MIN_PARTS


@jit(inline=True)
def _entropy_grad_fill(x, bt, be, ch, cl, m, Lh, Ll, H, scale, lnb, g):
    """``g_j = P_j (-log P_j - H) scale / lnb`` in working precision (``P_j`` by ``_prob`` from
    ``c = ch + cl``, ``-log P_j`` rounded once); 0 where :func:`_left_out`."""
    for i in range(x.shape[0]):
        v = x[i]
        if _left_out(v, m):
            g[i] = 0.0
            continue
        P = _prob(bt, be, i, ch, cl)
        nl = _neg_log_softmax(v, m, Lh, Ll, False)
        g[i] = P * (nl - H) * scale / lnb


@jit(inline=True)
def _entropy_row(x, bt, be, acc, lnb, odd):
    """``(H, ch, cl, m, Lh, Ll)``: ``H = sum_i P_i (-log P_i) / lnb`` of one row, a sum of
    non-negative terms; ``-log P_i = (m - x_i) + L`` rounded once (``_neg_log_softmax``)."""
    st, m, hi, lo, Lh, Ll, _a, _b = _row_stats(x, bt, be, acc, False)
    if st != OK:
        return NAN, 0.0, 0.0, m, Lh, Ll
    ch, cl = _scale_dd(1.0, 0.0, hi, lo, 1.0)
    kh, kl = 0.0, 0.0
    for i in range(x.shape[0]):
        if x[i] == -INF:
            continue  # P_i = 0: 0 log 0 = 0
        P = _prob(bt, be, i, ch, cl)
        nl = _neg_log_softmax(x[i], m, Lh, Ll, False)
        ph = P * nl
        kh, t = two_sum(kh, ph)
        kl += t + fma(P, nl, -ph)
    if lnb == 1.0:
        return _round_sum(kh, kl, odd), ch, cl, m, Lh, Ll
    q = kh / lnb  # (kh + kl) / lnb, the remainder by an FMA
    r = (fma(-q, lnb, kh) + kl) / lnb
    return _round_sum(q, r, odd), ch, cl, m, Lh, Ll


@jit(parallel=True)
def entropy_logits_rows(x, lnb, odd, out):
    """``out[n] = H(softmax(x[n])) / lnb``."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            out[n] = _entropy_row(x[n], bt, be, acc, lnb, odd)[0]


@jit(parallel=True)
def entropy_logits_grad_rows(x, lnb, out, g):
    """``out[n]`` as :func:`entropy_logits_rows` and ``g[n, j] = P_j (-log P_j - H_e) / lnb``
    (``H_e`` in nats): the gradient of ``H``; nan rows where the value is nan."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            v, ch, cl, m, Lh, Ll = _entropy_row(x[n], bt, be, acc, lnb, False)
            out[n] = v
            if v != v:
                _fill_nan(g[n])
                continue
            _entropy_grad_fill(x[n], bt, be, ch, cl, m, Lh, Ll, v * lnb, 1.0, lnb, g[n])


@jit
def _entropy_row_cr(x, bt, be, acc, lnh, lnl, cr):
    """``H / ln b`` of one float64 row for the correctly rounded path (``crossent._rounding``),
    or nan where the rounding test cannot decide (and for the rows the fast path makes nan).

    The terms come from the double-double exponential (``_row_stats(..., accurate=True)``);
    ``P_i`` is kept as a double-double scaled by ``2**SCALE_EXP`` (``T_i / S``: no product
    below it is subnormal), ``-log P_i = (m - x_i) + L`` as a double-double of two
    non-negative parts, their product by TwoProduct, the non-negative sum in double-double,
    then unscaled, divided by ``ln b = lnh + lnl`` and tested with the relative bound ``cr``
    (docs/accuracy.md, "Correct rounding in float64"). Not inlined: compiled once, apart
    from the fast kernels.

    Returns ``(value, undecided)``: a special row (nan, +inf or no finite entry) is
    ``(nan, False)``, a row whose rounding the test cannot decide ``(nan, True)``, so that
    only the latter go to the oracle."""
    ok, kh, kl, m, Lh, Ll, ch, cl = _entropy_nats_cr(x, bt, be, acc)
    if not ok:
        return NAN, False
    if lnh != 1.0 or lnl != 0.0:
        kh, kl = dd_div(kh, kl, lnh, lnl)
    r = _round_cr(kh, kl, False, cr)
    return r, r != r


@jit(inline=True)
def _p_nlog_cr(bt, be, i, v, m, Lh, Ll, ch, cl):
    """``(ph, pl, nh, nl)``: ``2**B P_i = ph + pl`` (``T_i (ch + cl)``) and ``-log P_i =
    (m - v) + L = nh + nl`` (two non-negative parts), double-doubles."""
    t = _term_of(bt[i])
    ph, pe = two_prod(ch, t)
    pl = pe + (ch * be[i] + cl * t)
    d, e = _shift(v, m)
    nh, nt = two_sum(-d, Lh)
    return ph, pl, nh, nt + (Ll - e)


@jit
def _entropy_nats_cr(x, bt, be, acc):
    """``(ok, Hh, Hl, m, Lh, Ll, ch, cl)``: the entropy in nats ``H = Hh + Hl`` of one row
    before its rounding (:func:`_entropy_row_cr`), the row's ``m``, ``L = log S`` and
    ``1/S = 2**B (ch + cl)``; ``ok`` False for the rows the fast path makes nan.

    A class more than 1100 below the max (``X_MIN_PARTS``, where the double-double exp
    clamps its argument, so that its ``P_i`` would be too large) is left out: its term
    ``P_i (-log P_i) = e^-d (d + L)`` (``d = m - x_i``) is below ``2**-1577`` for every
    ``d > 1100``, far inside the rounding test's absolute part (``TINY = 2**-1070``) even
    summed over ``2**40`` classes; the gradient entry there is 0 (below ``2**-1500``)."""
    st, m, hi, lo, Lh, Ll, _a, _b = _row_stats(x, bt, be, acc, False, True)
    if st != OK:
        return False, NAN, 0.0, m, Lh, Ll, 0.0, 0.0
    ch, cl = _scale_dd(1.0, 0.0, hi, lo, INV_SCALE)  # 1/S: P_i 2**B = T_i (ch + cl)
    kh, kl = 0.0, 0.0
    for i in range(x.shape[0]):
        v = x[i]
        if _left_out(v, m):
            continue  # P_i = 0: 0 log 0 = 0; or below e^-1100 (see above)
        ph, pl, nh, nl = _p_nlog_cr(bt, be, i, v, m, Lh, Ll, ch, cl)
        th, te = two_prod(ph, nh)
        kh, s = two_sum(kh, th)
        kl += s + (te + (ph * nl + pl * nh))
    kh, kl = fast_two_sum(kh, kl)
    kh *= INV_SCALE  # exact unless H is subnormal (then within the bound's absolute part)
    kl *= INV_SCALE
    return True, kh, kl, m, Lh, Ll, ch, cl


@jit
def _entropy_grad_row_cr(x, bt, be, acc, lnh, lnl, cr, gcr, g):
    """``H / ln b`` (:func:`_entropy_row_cr`) and, into ``g``, the gradient row
    ``g_j = P_j (-log P_j - H) / ln b`` of the correctly rounded path; returns ``(H, ok)``,
    ``ok`` False when any entry is undecided. ``-log P_j - H`` cancels where ``-log P_j`` is
    near ``H``, so the bound is absolute: with ``rb = relative_bound(C)`` and ``eb =
    entropy_relative_bound(C)`` (``cr``), ``-log P_j`` is within ``rb (-log P_j)`` (that of
    ``L``), ``H`` within ``eb H``, ``P_j`` within ``2 rb`` relative, so the entry is within
    ``P_j ((3 rb + 2**-98)(-log P_j) + (eb + 2 rb + 2**-98) H) / |ln b|`` (``gcr = (3 rb +
    2**-98, eb + 2 rb + 2**-98)``) plus ``2 TINY`` (the unscaling by ``2**-B`` in the
    subnormal range). A masked entry is exactly 0."""
    ok, Hh, Hl, m, Lh, Ll, ch, cl = _entropy_nats_cr(x, bt, be, acc)
    if not ok:
        _fill_nan(g)
        return NAN, False
    base = lnh != 1.0 or lnl != 0.0
    vh, vl = dd_div(Hh, Hl, lnh, lnl) if base else (Hh, Hl)
    value = _round_cr(vh, vl, False, cr)
    good = value == value
    c1, c2 = gcr
    for j in range(x.shape[0]):
        v = x[j]
        if _left_out(v, m):
            g[j] = 0.0  # masked, or below 2**-1500 (see _entropy_nats_cr)
            continue
        ph, pl, nh, nl = _p_nlog_cr(bt, be, j, v, m, Lh, Ll, ch, cl)
        dh, de = two_sum(nh, -Hh)
        dl = de + (nl - Hl)  # -log P_j - H (scaled 2**0)
        qh, qe = two_prod(ph, dh)
        ql = qe + (ph * dl + pl * dh)  # 2**B g_j ln b
        err = ph * (c1 * nh + c2 * Hh)
        if base:
            qh, ql = dd_div(qh, ql, lnh, lnl)
            err /= abs(lnh)
        err = err * (1.0 + 2.0**-40) * INV_SCALE
        if err != 0.0 or qh != 0.0:
            err += 2.0 * TINY
        r = _round_cr_abs(qh * INV_SCALE, ql * INV_SCALE, err)
        good = good and r == r
        g[j] = r
    return value, good


@jit(inline=True)
def _fill_nan(g):
    for j in range(g.shape[0]):
        g[j] = NAN


@jit(parallel=True)
def entropy_logits_rows_cr(x, lnh, lnl, cr, out, slow):
    """``out[n] = H(softmax(x[n])) / ln b`` correctly rounded; nan with ``slow[n] = 1`` where
    undecided, nan with ``slow[n] = 0`` for a special row."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            out[n], slow[n] = _entropy_row_cr(x[n], bt, be, acc, lnh, lnl, cr)


@jit(parallel=True)
def entropy_logits_value_grad_rows(x, lnh, lnl, cr, out, g, slow):
    """The float64 default of ``entropy_logits_value_and_grad``: ``out`` and ``slow`` as
    :func:`entropy_logits_rows_cr` (the value correctly rounded), and from the same row
    statistics the gradient ``g[n, j] = P_j (-log P_j - H) / ln b`` in working precision, as
    :func:`entropy_logits_grad_rows` forms it (``P_j`` and ``-log P_j`` each rounded once,
    ``H`` the unrounded double-double's high word; nan rows where the row is special). One
    pass over the row for both: the value is not computed twice."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            ok, Hh, Hl, m, Lh, Ll, ch, cl = _entropy_nats_cr(x[n], bt, be, acc)
            if not ok:
                out[n] = NAN
                slow[n] = False
                _fill_nan(g[n])
                continue
            vh, vl = dd_div(Hh, Hl, lnh, lnl) if (lnh != 1.0 or lnl != 0.0) else (Hh, Hl)
            r = _round_cr(vh, vl, False, cr)
            out[n] = r
            slow[n] = r != r
            # P_i scaled by 2**B (ch + cl = 2**B / S)
            _entropy_grad_fill(x[n], bt, be, ch, cl, m, Lh, Ll, Hh, INV_SCALE, lnh, g[n])


@jit(parallel=True)
def entropy_logits_grad_rows_cr(x, lnh, lnl, cr, gcr, out, g, slow):
    """:func:`entropy_logits_grad_rows` correctly rounded (float64): ``slow[n] = 1`` where the
    value or any gradient entry of the row is undecided (or the row is nan)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            value, ok = _entropy_grad_row_cr(x[n], bt, be, acc, lnh, lnl, cr, gcr, g[n])
            out[n] = value
            slow[n] = not ok


# ---------------------------------------------------------------------- Jensen-Shannon
# JSD_b = b KL(P || M) + (1 - b) KL(Q || M), M = b P + (1 - b) Q. With s_i = log(M_i / P_i)
# and r_i = log(M_i / Q_i), and sum_i M_i = 1,
#     KL(P || M) = sum_i P_i phi(-s_i),    KL(Q || M) = sum_i Q_i phi(-r_i),
# the same non-negative phi terms as KL; s and r come from the KL's accurate delta:
#     M/P = 1 + (1 - b) expm1(-delta),    M/Q = 1 + b expm1(delta),
# so both logs are log1p of a small number when P ~ Q (never a difference of two logs).
@jit(inline=True)
def _log1p_a_expm1(th, tl, ah, al):
    """``log(1 + a expm1(t))`` as a double-double, ``t = th + tl``, ``a = ah + al`` in (0, 1):
    ``log1p`` of the product where it is at least -1/2, else the log of the sum of two
    positive terms ``(1 - a) + a exp(t)`` (``t > 700``: ``t + log(a + (1 - a) exp(-t))``)."""
    if th > 700.0:
        v = math.log(ah + (1.0 - ah) * math.exp(-th))
        h, l = two_sum(th, v)
        return fast_two_sum(h, l + tl)
    E = math.expm1(th)
    El = tl * (1.0 + E)  # expm1(th + tl) = E + tl exp(th) to first order
    wh = ah * E
    wl = fma(ah, E, -wh) + (ah * El + al * E)
    if wh >= -0.5:
        h = math.log1p(wh)
        return fast_two_sum(h, wl / (1.0 + wh))
    oh, ol = two_sum(1.0, -ah)  # 1 - a, exactly as a double-double
    et = math.exp(th) * (1.0 + tl)
    v = oh + (ah * et + (ol + al * et))
    return math.log(v), 0.0


def _inv_dd(n):
    """``1/n`` as a double-double ``(hi, lo)`` (``hi`` the nearest float, ``lo`` the nearest
    float to the exact remainder, by integer arithmetic as :func:`_inv_factorial_dd`)."""
    hi = 1.0 / n
    a, b = hi.as_integer_ratio()
    return hi, (b - a * n) / (b * n)


# 1/(k + 2) as double-doubles, for psi(w) = w - log1p(w) = w**2 sum_k (-w)**k / (k + 2)
_PSI_HI = np.array([_inv_dd(k + 2)[0] for k in range(17)])
_PSI_LO = np.array([_inv_dd(k + 2)[1] for k in range(17)])


@jit
def _exp_parts_dd_call(x):
    """:func:`exp_parts_dd`, compiled once as a function of its own for the float64 JS
    helpers (each inlined copy of it cost seconds of compilation)."""
    return exp_parts_dd(x)


@jit
def _psi_series_dd(wh, wl):
    """``psi(w) = w - log1p(w) = w**2 h(w)``, ``h(w) = sum_k (-w)**k / (k + 2)``, as a
    double-double for ``|w| < 2**-6`` (``w = wh + wl``): the terms above ``2**-37`` of ``h``
    (at least 0.49) by double-double Horner steps with double-double coefficients, the rest
    by float64 Horner, cut where the first omitted term is below ``2**-100`` of ``h``; by
    tiers, ``|w| < 2**-20``: 2 double-double terms of 6; ``< 2**-10``: 4 of 11; else 7 of
    17."""
    a = abs(wh)
    if a < 2.0**-20:
        nd, N = 2, 5
    elif a < 2.0**-10:
        nd, N = 4, 10
    else:
        nd, N = 7, 16
    return _square_series_dd(_PSI_HI, _PSI_HI, _PSI_LO, nd, N, wh, wl)


@jit
def _expm1_pair_dd(dh, dl):
    """``(Eh, El, Fh, Fl)``: ``E = e^delta - 1`` and ``F = e^{-delta} - 1`` as double-doubles
    (``delta = dh + dl``), one exponential for both. ``|delta| < 2**-10``: ``E = delta +
    phi(-delta)`` by the series (``2**-92`` of ``phi``), ``F = -E / (1 + E)``; up to
    ``|delta| = 700``: ``g = e^{-|delta|}`` by ``exp_parts_dd`` (``EXP_PARTS_DD_MAX_REL_ERR``,
    ``e^{tl} = 1 + tl + tl**2/2``) and ``1/g``, each minus 1 (``g/|g - 1| <= 1025`` for
    ``|delta| >= 2**-10``: within ``2**-73.4`` relative); beyond, ``-1`` for both (the side
    whose argument exceeds 700 takes another form, see ``_js_term_w``)."""
    if abs(dh) < 2.0**-10:
        fh, fl = _phi_series_dd(-dh, -dl)
        h, e = two_sum(dh, fh)
        Eh, El = fast_two_sum(h, e + (dl + fl))
        oh, ol = two_sum(1.0, Eh)
        Fh, Fl = dd_div(-Eh, -El, oh, ol + El)
        return Eh, El, Fh, Fl
    if abs(dh) > 700.0:
        return -1.0, 0.0, -1.0, 0.0
    ah, al = (-dh, -dl) if dh > 0.0 else (dh, dl)  # -|delta|
    h, l, s = _exp_parts_dd_call(ah)
    f = s * INV_SCALE  # 2**k, normal (k >= -1010): exact
    gh, gl = h * f, l * f
    gl += gh * (al + 0.5 * al * al)
    rh, rl = dd_div(1.0, 0.0, gh, gl)
    h, e = two_sum(gh, -1.0)
    Sh, Sl = fast_two_sum(h, e + gl)  # e^{-|delta|} - 1
    h, e = two_sum(rh, -1.0)
    Bh, Bl = fast_two_sum(h, e + rl)  # e^{|delta|} - 1
    if dh > 0.0:
        return Bh, Bl, Sh, Sl
    return Sh, Sl, Bh, Bl


@jit
def _log_newton(vh, vl):
    """``log(v)`` as a double-double for ``v = vh + vl`` in ``[1/2, 2**1000]``, within
    ``2**-83.4`` absolute: ``y = log(vh)`` (libm, an ulp), then one Newton step
    ``y + log1p(c)``, ``c = v e^{-y} - 1`` (``y > 0``) or ``(v - e^y) / v`` (``y <= 0``),
    ``e^{-|y|}`` from ``exp_parts_dd`` (``EXP_PARTS_DD_MAX_REL_ERR``: an absolute error of
    the result) and ``log1p(c) = c`` (``|c| < 2**-51``: ``c**2/2`` below ``2**-103``)."""
    y = math.log(vh)
    if y > 0.0:
        h, l, s = _exp_parts_dd_call(-y)  # e^{-y} = (h + l) 2**k, 2**k = s 2**-600 (normal)
        f = s * INV_SCALE
        ph, pe = two_prod(vh, h)  # scaled after the products: (h + l) 2**k would put the
        c = (ph * f - 1.0) + (pe + (vh * l + vl * h)) * f  # low part below 2**-1022
    else:
        h, l, s = _exp_parts_dd_call(y)
        f = s * INV_SCALE
        gh, gl = h * f, l * f  # e^y
        c = ((vh - gh) + (vl - gl)) / vh
    return fast_two_sum(y, c)


@jit
def _js_term_w(Rh, Rl, Eh, El, th, tl, ah, al, oh, ol, Mh, Ml):
    """``R phi(-sigma)`` as a double-double, ``sigma = log(M / R) = log1p(w)``,
    ``w = a expm1(t)`` (``E = expm1(t)`` from :func:`_expm1_pair_dd`; ``a = ah + al`` in
    (0, 1) and ``1 - a = oh + ol``, both exact; ``R``, ``M`` scaled by ``2**600``), with
    ``phi(-sigma) = e^sigma - 1 - sigma = psi(w) = w - log1p(w)``:

    - ``|w| < 2**-6``: the series ``_psi_series_dd`` (relative accuracy down to ``w = 0``,
      where ``psi ~ w**2/2``);
    - ``w >= -1/2``: ``w - log(1 + w)``, the log by ``_log_newton`` (within ``2**-83.4``
      absolute; ``psi >= 2**-13`` there);
    - ``w < -1/2`` (only for ``a > 1/2`` and ``t < -log 2``): ``1 + w = (1 - a) + a e^t``, two
      positive parts, formed scaled by ``2**600`` (both normal) and its log by ``_log_dd``;
    - ``w > 2**58`` (``sigma > 40.2``): ``M - R (1 + sigma)``, ``sigma = log1p(w_h)``;
      ``t > 700``: the same with ``sigma = t + log(a + (1 - a) e^{-t})`` in float64.
      ``R (1 + sigma)`` is below ``2**-52.6`` of ``M`` there (``2**-400`` beyond ``t = 700``
      for ``a >= 2**-600``), and ``M`` comes from both probabilities: ``R`` may be the
      exponential's clamp (``x_i`` more than 1100 below the row's max: ``R`` too large), which
      only a form led by ``M`` survives. Elsewhere such an ``R`` has ``M < e**40 R <
      e**-1060``, an absolute error far below the rounding of any non-zero result."""
    if th > 700.0:
        sg = th + math.log(ah + oh * math.exp(-th))
        return fast_two_sum(Mh, Ml - Rh * (1.0 + sg))
    wh, we = two_prod(ah, Eh)
    wh, wl = fast_two_sum(wh, we + (ah * El + al * Eh))
    if wh > 2.0**58:  # sigma > 40.2: R (1 + sigma) < 2**-52.6 M
        return fast_two_sum(Mh, Ml - Rh * (1.0 + math.log1p(wh)))
    if abs(wh) < 2.0**-6:
        fh, fl = _psi_series_dd(wh, wl)
    else:
        if wh >= -0.5:
            vh, vl = two_sum(1.0, wh)
            Lh, Ll = _log_newton(vh, vl + wl)
        else:
            h, l, s = _exp_parts_dd_call(th)  # e^th 2**600 = (h + l) s, th < 0
            eh = h * s
            el = l * s + eh * tl  # e^tl = 1 + tl (tl**2 below 2**-106)
            ph, pe = two_prod(ah, eh)
            vh, ve = two_sum(oh * SCALE, ph)
            vh, vl = fast_two_sum(vh, ve + (ol * SCALE + (pe + (ah * el + al * eh))))
            Lh, Ll = _log_dd(vh, vl, -SCALE_EXP)
            wh, we = two_sum(vh * INV_SCALE, -1.0)  # w = (1 + w) - 1, from the parts
            wl = we + vl * INV_SCALE
        fh, e = two_sum(wh, -Lh)
        fh, fl = fast_two_sum(fh, e + (wl - Ll))
    ph, pe = two_prod(Rh, fh)
    return fast_two_sum(ph, pe + (Rh * fl + Rl * fh))


@jit(inline=True)
def _js_mix_dd(beta, bh, bl, Ph, Pl, Qh, Ql):
    """``M = beta P + (1 - beta) Q`` as a double-double (``1 - beta = bh + bl`` exactly): the
    two products by TwoProduct, their low parts to first order."""
    ah, ae = two_prod(beta, Ph)
    ch, ce = two_prod(bh, Qh)
    h, e = two_sum(ah, ch)
    return fast_two_sum(h, e + (ae + ce + (beta * Pl + (bh * Ql + bl * Qh))))


@jit(inline=True)
def _js_anchor(x, y, mp, mq, btp, bep, btq, beq, Lph, Lpl, Lqh, Lql, cph, cpl, cqh, cql):
    """``(k, lh, ll, Dh, Dl, band, lsh, lsl)``: an anchor class ``k`` finite in both rows (the first
    largest ``x_k`` among them; -1 if none) with ``D = x_k - y_k`` and ``l = log(Q_k / P_k)``,
    so that ``delta_i = log(P_i / Q_i) = (d_i - D) - l``. As in the KL row: ``l`` from the row
    statistics in double-double, and where that is at most ``2**-20`` (and ``x_k`` is a largest
    entry of ``x``), ``l = log1p(s2)`` from ``s2 = Q_k / P_k - 1`` summed from terms that do
    not cancel (:func:`_s2_pass`). ``band``: ``l`` is the statistics' and
    ``2**-20 < |l| <= L_RECOMPUTE`` with ``x_k`` a largest entry (the caller recomputes a
    tiny value with the pass's ``l``, as in the KL row). ``lsh + lsl``: the statistics' ``l``
    (the caller rescales the ``Q_i`` when ``l`` is the pass's, as in the KL row)."""
    C = x.shape[0]
    k = -1
    for i in range(C):
        if x[i] != -INF and y[i] != -INF and (k < 0 or x[i] > x[k]):
            k = i
    if k < 0:
        return k, 0.0, 0.0, 0.0, 0.0, False, 0.0, 0.0
    Dh, Dl = two_sum(x[k], -y[k])
    # l = (y_k - m_q - L_q) - (x_k - m_p - L_p), each difference exact, summed in double-double
    a, b = two_sum(y[k], -mq)
    c, d = two_sum(mp, -x[k])
    h, e = two_sum(a, c)
    t1, t2 = two_sum(Lph, -Lqh)
    h, t3 = two_sum(h, t1)
    lh, ll = fast_two_sum(h, b + d + e + t3 + t2 + (Lpl - Lql))
    if abs(lh) > 2.0**-20 or x[k] != mp:
        return k, lh, ll, Dh, Dl, x[k] == mp and abs(lh) <= L_RECOMPUTE, lh, ll
    s2 = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)[0]
    if -0.5 <= s2 <= 0.5:
        return k, math.log1p(s2), 0.0, Dh, Dl, False, lh, ll
    return k, lh, ll, Dh, Dl, False, lh, ll


@jit
def _js_sums_dd(x, y, beta, btp, bep, btq, beq, cph, cpl, cqh, cql, lh, ll, Dh, Dl, tr):
    """``(vh, vl, KP, KQ, err, zero)`` of :func:`_js_row` for float64 rows: every term in
    double-double (``_expm1_pair_dd``, ``_js_term_w``) on probabilities kept as double-doubles
    scaled by ``2**600`` (``_dd_prob``: none is rounded or subnormal), ``delta_i`` by
    ``_d_minus_D``; ``JSD = vh + vl`` (docs/accuracy.md#kl-logits has the error budget). Not
    inlined: compiled once, apart from the fast loop.

    For the correctly rounded path (``_js_row_cr``), ``err``: a bound on the error of
    ``vh + vl`` from the terms, class by class, given ``tr``, the relative error of a term
    from its probabilities and its double-double steps: ``tr`` times the term, and the error
    ``eta_i`` of ``delta_i`` through the class's derivative in ``delta``,
    ``beta (1 - beta) (P_i - Q_i)``; ``zero``: every class has ``d_i - D = 0`` or is masked
    in both rows (the value is exactly 0)."""
    bh, bl = two_sum(1.0, -beta)  # 1 - beta, exactly
    sph, spl, sqh, sql = cph * SCALE, cpl * SCALE, cqh * SCALE, cql * SCALE
    ph, pl, qh, ql = 0.0, 0.0, 0.0, 0.0
    err = 0.0
    zero = True
    for i in range(x.shape[0]):
        fx = x[i] != -INF
        fy = y[i] != -INF
        if fx and fy:
            Ph, Pl = _dd_prob(btp[i], bep[i], sph, spl)
            Qh, Ql = _dd_prob(btq[i], beq[i], sqh, sql)
            eh, el = _d_minus_D(x[i], y[i], Dh, Dl)
            zero = zero and eh == 0.0
            dh, t = two_sum(eh, -lh)
            dh, dl = fast_two_sum(dh, t + (el - ll))
            eta = (2.0**-100 * (abs(dh) + abs(lh)) + 2.0**-150 * (abs(x[i]) + abs(y[i])
                                                                  + abs(Dh)))
            err += beta * bh * abs(Ph - Qh) * eta * 1.01
            Eh, El, Fh, Fl = _expm1_pair_dd(dh, dl)  # e^delta - 1, e^-delta - 1
            Mh, Ml = 0.0, 0.0
            if abs(dh) > 40.0:  # a term may take the M form (w > 2**58 needs |delta| > 40.2)
                Mh, Ml = _js_mix_dd(beta, bh, bl, Ph, Pl, Qh, Ql)
            tph, tpl = _js_term_w(Ph, Pl, Fh, Fl, -dh, -dl, bh, bl, beta, 0.0, Mh, Ml)  # M/P
            tqh, tql = _js_term_w(Qh, Ql, Eh, El, dh, dl, beta, 0.0, bh, bl, Mh, Ml)  # M/Q
        elif fx:  # Q_i = 0: M_i = beta P_i, w = M_i / P_i - 1 = beta - 1 (expm1(-inf) = -1)
            Ph, Pl = _dd_prob(btp[i], bep[i], sph, spl)
            tph, tpl = _js_term_w(Ph, Pl, -1.0, 0.0, -INF, 0.0, bh, bl, beta, 0.0, 0.0, 0.0)
            tqh, tq2 = two_prod(beta, Ph)
            tql = tq2 + beta * Pl
        elif fy:  # P_i = 0: M_i = (1 - beta) Q_i, w = M_i / Q_i - 1 = -beta
            Qh, Ql = _dd_prob(btq[i], beq[i], sqh, sql)
            tph, tp2 = two_prod(bh, Qh)
            tpl = tp2 + (bh * Ql + bl * Qh)
            tqh, tql = _js_term_w(Qh, Ql, -1.0, 0.0, -INF, 0.0, beta, 0.0, bh, bl, 0.0, 0.0)
        else:
            continue
        zero = zero and fx and fy
        err += (beta * tph + bh * tqh) * tr
        ph, t = two_sum(ph, tph)
        pl += t + tpl
        qh, t = two_sum(qh, tqh)
        ql += t + tql
    # beta KP + (1 - beta) KQ: two non-negative products with their errors, then unscaled
    v1, e1 = two_prod(beta, ph)
    v2, e2 = two_prod(bh, qh)
    vh, e = two_sum(v1, v2)
    vl = e + (e1 + e2 + (beta * pl + (bh * ql + bl * qh)))
    KP = (ph + pl) * INV_SCALE
    KQ = (qh + ql) * INV_SCALE
    return vh * INV_SCALE, vl * INV_SCALE, KP, KQ, err * INV_SCALE, zero


@jit(inline=True)
def _js_row(x, y, beta, btp, bep, btq, beq, acc, odd, accurate):
    """``(JSD, KP, KQ, cph, cpl, cqh, cql, lh, ll, Dh, Dl)``: ``KP = KL(P || M)``,
    ``KQ = KL(Q || M)``, each a sum of non-negative terms; nan for a row without finite
    entries or with nan or +inf; exactly 0 for ``beta`` 0 or 1 and for equal rows.
    ``accurate`` (float64 results): the terms in double-double by ``_js_sums_dd``, with
    ``L_p``, ``L_q`` recomputed to ``2**-90`` (``_log_dd``) and the ``Q_i`` rescaled to the
    s2 pass's ``l`` where it replaces the statistics' (as in the KL row: the terms that do not
    go through ``delta``, the M form and the classes masked in one row, then belong to the
    same ``l``, and the sum is stationary in its error); else the float64 terms of the loop
    below (libm's ``expm1`` and ``log1p``, a 30-ulp float64 budget, far below a float32
    rounding)."""
    stp, mp, hp, lp, Lph, Lpl, _a, _b = _row_stats(x, btp, bep, acc, False)
    stq, mq, hq, lq, Lqh, Lql, _c, _d = _row_stats(y, btq, beq, acc, False)
    if stp != OK or stq != OK:
        return NAN, NAN, NAN, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    if beta == 0.0 or beta == 1.0:
        return 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    cph, cpl = _scale_dd(1.0, 0.0, hp, lp, 1.0)
    cqh, cql = _scale_dd(1.0, 0.0, hq, lq, 1.0)
    if accurate:  # log S from the double-double 2**B S: the statistics' L is within 0.05u
        Lph, Lpl = _log_dd(hp, lp, -SCALE_EXP)
        Lqh, Lql = _log_dd(hq, lq, -SCALE_EXP)
    k, lh, ll, Dh, Dl, band, lsh, lsl = _js_anchor(x, y, mp, mq, btp, bep, btq, beq, Lph, Lpl,
                                                   Lqh, Lql, cph, cpl, cqh, cql)
    if accurate:
        cqt = cql + cqh * ((lh - lsh) + (ll - lsl))  # 1/S_q (1 + l - l_stats)
        vh, vl, KP, KQ, _e, _z = _js_sums_dd(x, y, beta, btp, bep, btq, beq, cph, cpl, cqh,
                                             cqt, lh, ll, Dh, Dl, 0.0)
        # a tiny JSD with 2**-20 < |l| <= 2**-12: l's error e adds up to beta (1 - beta) e**2
        # (its second derivative in a common shift of delta is beta (1 - beta) (2 - sum P Q / M))
        # against a JSD of at least beta (1 - beta) l**2 / (2C): recomputed as in the KL row
        if band and vh < KL_RECOMPUTE * (beta * (1.0 - beta)):
            s2, sa = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)
            if sa <= S2_MAX_ABS and -0.5 <= s2 <= 0.5:
                lh, ll = math.log1p(s2), 0.0
                cqt = cql + cqh * ((lh - lsh) + (ll - lsl))
                vh, vl, KP, KQ, _e, _z = _js_sums_dd(x, y, beta, btp, bep, btq, beq, cph, cpl,
                                                     cqh, cqt, lh, ll, Dh, Dl, 0.0)
        return (_round_sum(vh, vl, odd), KP, KQ, cph, cpl, cqh, cql, lh, ll, Dh, Dl)
    bh, bl = two_sum(1.0, -beta)  # 1 - beta, exactly
    lb = math.log(beta)  # Q_i = 0: M_i / P_i = beta
    l1b = math.log1p(-beta)  # P_i = 0: M_i / Q_i = 1 - beta
    ph, pl, qh, ql = 0.0, 0.0, 0.0, 0.0
    for i in range(x.shape[0]):
        fx = x[i] != -INF
        fy = y[i] != -INF
        if fx and fy:
            P = _prob(btp, bep, i, cph, cpl)
            Q = _prob(btq, beq, i, cqh, cql)
            M = fma(beta, P, bh * Q)
            dh, dl = _delta(x[i], y[i], Dh, Dl, lh, ll)
            sh, sl = _log1p_a_expm1(-dh, -dl, bh, bl)  # log(M / P)
            rh, rl = _log1p_a_expm1(dh, dl, beta, 0.0)  # log(M / Q)
            tp = _kl_term(P, M, -sh, -sl)
            tq = _kl_term(Q, M, -rh, -rl)
        elif fx:  # Q_i = 0: M_i = beta P_i
            P = _prob(btp, bep, i, cph, cpl)
            tp = _kl_term(P, beta * P, -lb, 0.0)
            tq = beta * P
        elif fy:  # P_i = 0: M_i = (1 - beta) Q_i
            Q = _prob(btq, beq, i, cqh, cql)
            tp = bh * Q
            tq = _kl_term(Q, bh * Q, -l1b, 0.0)
        else:
            continue
        ph, t = two_sum(ph, tp)
        pl += t
        qh, t = two_sum(qh, tq)
        ql += t
    KP = ph + pl
    KQ = qh + ql
    # beta KP + (1 - beta) KQ: two non-negative products with their errors
    v1 = beta * ph
    v2 = bh * qh
    vh, e = two_sum(v1, v2)
    vl = e + fma(beta, ph, -v1) + fma(bh, qh, -v2) + beta * pl + bh * ql + bl * qh
    return (_round_sum(vh, vl, odd), KP, KQ, cph, cpl, cqh, cql, lh, ll, Dh, Dl)


@jit(parallel=True)
def js_divergence_logits_rows(x, y, beta, keep, odd, accurate, out):
    """``out[n] = JSD_beta(softmax(x[n]), softmax(y[n]))`` (0 where ``keep[n]`` is False);
    ``accurate``: every term in double-double (``_js_sums_dd``, float64 results), else in
    float64 (float32 and narrower results, rounded once more)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                continue
            out[n] = _js_row(x[n], y[n], beta, btp, bep, btq, beq, acc, odd, accurate)[0]


@jit(inline=True)
def _js_row_cr(x, y, beta, btp, bep, btq, beq, acc, rho):
    """``JSD_beta(softmax(x), softmax(y))`` of one float64 row pair for the correctly rounded
    path: the value rounded to nearest, or nan where the rounding test cannot decide (and for
    the rows the fast path makes nan); exactly 0 for ``beta`` 0 or 1 and for rows that differ
    by a constant. ``rho``: the relative error of each ``P_i``, ``Q_i`` and of ``log S``
    (``crossent._rounding.kl_relative_bound``)."""
    vh, vl, cr = _js_row_dd(x, y, beta, btp, bep, btq, beq, acc, rho)
    if cr == 0.0:
        return vh  # nan or an exact 0
    return _round_cr(vh, vl, False, cr)


@jit
def _js_row_dd(x, y, beta, btp, bep, btq, beq, acc, rho):
    """``(vh, vl, cr)``: the value as a double-double and its relative error bound, or
    ``(v, 0, 0)`` with ``v`` nan or an exact 0 (see :func:`_js_row_cr`). Not inlined: compiled
    once, apart from the fast kernels. As :func:`_js_row`'s float64 path on the
    row statistics of the double-double exponential (``accurate``), with a bound on the
    error (docs/accuracy.md, "Correct rounding in float64"): the terms' (``_js_sums_dd``:
    ``rho`` for the probabilities, ``2**-69`` for the double-double steps, below
    ``2**-70`` each, and ``el1`` for the logarithms, which move the M form and the masked
    classes at first order), the second order of ``l``'s error (``beta (1 - beta) el**2``,
    twice the sum's second derivative in a common shift of ``delta``), the sum's
    ``C 2**-103`` and the subnormal roundings (``2**-1070`` a class)."""
    stp, mp, hp, lp, _a, _b, _c, _d = _row_stats(x, btp, bep, acc, False, True)
    stq, mq, hq, lq, _e, _f, _g, _h = _row_stats(y, btq, beq, acc, False, True)
    if stp != OK or stq != OK:
        return NAN, 0.0, 0.0
    if beta == 0.0 or beta == 1.0:
        return 0.0, 0.0, 0.0
    C = x.shape[0]
    cph, cpl = _scale_dd(1.0, 0.0, hp, lp, 1.0)
    cqh, cql = _scale_dd(1.0, 0.0, hq, lq, 1.0)
    Lph, Lpl = _log_dd(hp, lp, -SCALE_EXP)
    Lqh, Lql = _log_dd(hq, lq, -SCALE_EXP)
    k, lh, ll, Dh, Dl, band, lsh, lsl = _js_anchor(x, y, mp, mq, btp, bep, btq, beq, Lph, Lpl,
                                                   Lqh, Lql, cph, cpl, cqh, cql)
    # l's error against the exact l: the sums' (rho each) and the logs' (2**-92 relative)
    el = 2.0 * rho + 2.0**-92 * (Lph + Lqh)
    if lh != lsh or ll != lsl:  # the s2 pass's l: within 2**-49 (sa + |s2|) + 2**-51 |l|
        s2, sa = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)
        el = 2.0**-49 * (sa + abs(s2)) + 2.0**-51 * abs(lh) + 2.0**-1070
    tr = rho + 2.0**-69 + 2.0**-92 * (Lph + Lqh)
    for attempt in range(2):
        cqt = cql + cqh * ((lh - lsh) + (ll - lsl))
        vh, vl, _p, _q, err, zero = _js_sums_dd(x, y, beta, btp, bep, btq, beq, cph, cpl, cqh,
                                                cqt, lh, ll, Dh, Dl, tr)
        if attempt or not (band and vh < KL_RECOMPUTE * (beta * (1.0 - beta))):
            break
        s2, sa = _s2_pass(x, y, btp, bep, btq, beq, k, cqh, cql, Dh, Dl)
        if not (sa <= S2_MAX_ABS and -0.5 <= s2 <= 0.5):
            break
        lh, ll = math.log1p(s2), 0.0
        el = 2.0**-49 * (sa + abs(s2)) + 2.0**-51 * abs(lh) + 2.0**-1070
    if zero and k >= 0 and lh == 0.0 and ll == 0.0:
        return 0.0, 0.0, 0.0  # d_i - D = 0 on every class of both rows: P = Q exactly
    if not vh > 0.0:
        return NAN, 0.0, 0.0
    err = (err + beta * (1.0 - beta) * el * el + C * 2.0**-1070) * (1.0 + 2.0**-40)
    return vh, vl, err / vh * (1.0 + 2.0**-40) + C * 2.0**-103 + 2.0**-100


@jit(parallel=True)
def js_divergence_logits_rows_cr(x, y, beta, keep, rho, out):
    """``out[n] = JSD_beta(softmax(x[n]), softmax(y[n]))`` correctly rounded, nan where
    undecided (0 where ``keep[n]`` is False)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                continue
            out[n] = _js_row_cr(x[n], y[n], beta, btp, bep, btq, beq, acc, rho)


#: the errors of ``_expm1_pair_dd``'s results ``E``: for ``|delta| >= 2**-10``, ``E = g - 1``
#: with ``g`` (``e^-|delta|`` or its reciprocal) within ``EXP_PARTS_DD_MAX_REL_ERR`` and the
#: reciprocal's ``4u**2`` of itself, so ``E`` within that times ``|E + 1|`` absolute (its
#: docstring's ``2**-73.4`` relative is this over ``|E|``); below, by the series, within
#: ``2**-88`` of ``|E|`` (with a margin)
EXPM1_PAIR_G_REL = EXP_PARTS_DD_MAX_REL_ERR + 2.0**-98
EXPM1_PAIR_SERIES_REL = 2.0**-88
#: the relative error of ``_log_dd`` (the bound the PMF path states for it, with a margin)
LOG_DD_REL = 2.0**-85


@jit(inline=True)
def _log1p_scaled_dd(ch, cl, Eh, El, dh, ed):
    """``(sh, sl, es, ok)``: ``s = log(1 + c E)`` as a double-double, ``E = Eh + El`` one of
    ``_expm1_pair_dd``'s results at ``delta = dh``, ``c = ch + cl`` in (0, 1) exactly, and a
    bound ``es`` on its absolute error given ``ed``, that of ``delta`` (``|ds/d delta| <= 1``:
    ``s`` is ``log(M_i/P_i)`` or ``log(M_i/Q_i)``); ``ok`` False where ``1 + c E`` is not a
    normal number (``c`` tiny) or ``E`` is not valid (``|delta| > 700``). ``v = 1 + c E`` is
    ``(1 - c) + c (E + 1)``, two non-negative parts, so ``E``'s absolute error, below
    ``EXPM1_PAIR_G_REL (E + 1)``, is below that fraction of ``v``: ``s`` within about
    ``2**-83`` absolute, however large ``|delta|``."""
    wh, we = two_prod(ch, Eh)
    wl = we + (ch * El + cl * Eh)
    vh, ve = two_sum(1.0, wh)
    vh, vl = fast_two_sum(vh, ve + wl)
    if abs(dh) > 700.0 or not vh > 2.0**-1000:
        return 0.0, 0.0, 0.0, False
    sh, sl = _log_dd(vh, vl)
    if abs(dh) >= 2.0**-10:  # v = (1 - c) + c g: within c g EXPM1_PAIR_G_REL <= that of v
        ev = ch * (EXPM1_PAIR_G_REL * abs(Eh + 1.0) + 2.0**-104 * abs(Eh))
    else:
        ev = ch * EXPM1_PAIR_SERIES_REL * abs(Eh)
    es = 1.01 * (ed + (ev + 2.0**-104 * vh) / vh) + LOG_DD_REL * abs(sh)
    return sh, sl, es, True


@jit(inline=True)
def _js_grad_entry(ph, pl, ra, sh, sl, es, Kh, Kl, eK, ch, cl, nk):
    """One entry ``c P (-s - K) / nk`` of :func:`_js_grad_row_cr` rounded, or nan where
    undecided: ``P = ph + pl`` (scaled by ``2**B``) within ``ra`` of itself, ``s`` within
    ``es``, ``K`` within ``eK`` (absolute), ``c = ch + cl`` (``beta`` or ``1 - beta``)."""
    fh, t = two_sum(-sh, -Kh)
    fh, fl = fast_two_sum(fh, t + (-sl - Kl))  # -s - K
    ed = es + eK + 2.0**-104 * abs(fh)
    gh, ge = two_prod(ph, fh)
    gl = ge + (ph * fl + pl * fh)
    hh, hl = dd_mul(gh, gl, ch, cl)
    err = 1.02 * ch * (ra * ph * abs(fh) + ph * ed) + 2.0**-100 * abs(hh)
    return _grad_entry_cr(hh, hl, err, nk)


@jit
def _js_grad_row_cr(x, y, beta, btp, bep, btq, beq, acc, rho, nk, work, gx, gy):
    """The correctly rounded value (as :func:`_js_row_cr`) and, into ``gx`` and ``gy``, the
    gradient rows ``beta P_j (-s_j - KP) / nk`` and ``(1 - beta) Q_j (-r_j - KQ) / nk``
    (``s_j = log(M_j / P_j)``, ``r_j = log(M_j / Q_j)``, ``KP = KL(P || M) = -sum_i P_i s_i``,
    ``KQ = -sum_i Q_i r_i``); returns ``(value, ok)``, ``ok`` False when the value or an entry
    is undecided (nan). ``work``: scratch of shape ``(6, C)`` (``s``, ``r`` and their bounds).

    The entries cancel where ``-s_j`` is near ``KP``, so each is tested with an absolute bound,
    built up class by class (docs/accuracy.md, "the gradients of the JS divergence"):
    ``P_j``, ``Q_j`` within ``rho`` (1 where the exponential clamped); ``delta_j`` from the
    row statistics' ``l``, within ``eta_j + el``; ``s_j = log(1 + (1 - beta) expm1(-delta_j))``
    and ``r_j = log(1 + beta expm1(delta_j))`` (``_log1p_scaled_dd``); ``KP``, ``KQ`` as sums of
    ``-P_i s_i`` and ``-Q_i r_i`` with their terms' errors and the double-double sum's
    ``C 2**-104`` of the sum of their magnitudes (absolute: they cancel, but only their
    absolute error reaches an entry). A class of ``P`` missing from ``Q`` has
    ``s = log beta``, one of ``Q`` missing from ``P`` has ``r = log(1 - beta)``. Rows without a
    class finite in both give zeros (``JSD = h(beta)``, a constant), as do ``beta`` 0 and 1 and
    rows that differ by a constant; nan rows give nan rows."""
    C = x.shape[0]
    vh, vl, cr = _js_row_dd(x, y, beta, btp, bep, btq, beq, acc, rho)
    if cr == 0.0:  # nan, or exactly 0 (beta 0 or 1, equal distributions)
        g = vh if vh != vh else 0.0
        for j in range(C):
            gx[j] = g
            gy[j] = g
        return vh, True
    value = _round_cr(vh, vl, False, cr)
    ok = value == value
    v, mp, mq, cph, cpl, cqh, cql, Dh, Dl, _a, _b, _c, lh, ll, el = _kl_setup_dd(
        x, y, btp, bep, btq, beq, acc, rho, C >= 0)  # js True (a runtime bool)
    if v != 0.0:  # no class in both rows: JSD = h(beta) whatever the logits
        for j in range(C):
            gx[j] = 0.0
            gy[j] = 0.0
        return value, ok
    bh, bl = two_sum(1.0, -beta)  # 1 - beta, exactly
    lbh, lbl = _log_dd(beta, 0.0)
    l1h, l1l = _log_dd(bh, bl)
    rp = rho + 2.0**-100
    kph, kpl, ekp, kqh, kql, ekq = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    for i in range(C):  # s_i, r_i (kept in work) and the sums KP, KQ (scaled by 2**B)
        fx = x[i] != -INF
        fy = y[i] != -INF
        sh, sl, es, rh, rl, er = lbh, lbl, LOG_DD_REL * abs(lbh), l1h, l1l, LOG_DD_REL * abs(l1h)
        if fx and fy:
            eh, e2 = _d_minus_D(x[i], y[i], Dh, Dl)
            dh, t = two_sum(eh, -lh)
            dh, dl = fast_two_sum(dh, t + (e2 - ll))
            ed = (el + 2.0**-100 * (abs(dh) + abs(lh)) + 2.0**-150 * abs(x[i])
                  + 2.0**-150 * abs(y[i]) + 2.0**-150 * abs(Dh))
            Eh, El, Fh, Fl = _expm1_pair_dd(dh, dl)
            sh, sl, es, good1 = _log1p_scaled_dd(bh, bl, Fh, Fl, dh, ed)
            rh, rl, er, good2 = _log1p_scaled_dd(beta, 0.0, Eh, El, dh, ed)
            if not (good1 and good2):
                return value, False
        work[0, i], work[1, i], work[2, i] = sh, sl, es
        work[3, i], work[4, i], work[5, i] = rh, rl, er
        if fx:
            ph, pl = _dd_prob(btp[i], bep[i], cph, cpl)
            ra = 1.0 if x[i] - mp < X_MIN_PARTS else rp
            th, te = two_prod(ph, sh)
            kph, s = two_sum(kph, -th)
            kpl += s - (te + (ph * sl + pl * sh))
            ekp += 1.01 * ph * (ra * abs(sh) + es) + (2.0**-100 + C * 2.0**-104) * abs(th)
        if fy:
            qh, ql = _dd_prob(btq[i], beq[i], cqh, cql)
            rq = 1.0 if y[i] - mq < X_MIN_PARTS else rp
            th, te = two_prod(qh, rh)
            kqh, s = two_sum(kqh, -th)
            kql += s - (te + (qh * rl + ql * rh))
            ekq += 1.01 * qh * (rq * abs(rh) + er) + (2.0**-100 + C * 2.0**-104) * abs(th)
    kph, kpl = fast_two_sum(kph, kpl)
    kqh, kql = fast_two_sum(kqh, kql)
    KPh, KPl, eKP = kph * INV_SCALE, kpl * INV_SCALE, (ekp + C * 2.0**-104 * SCALE) * INV_SCALE
    KQh, KQl, eKQ = kqh * INV_SCALE, kql * INV_SCALE, (ekq + C * 2.0**-104 * SCALE) * INV_SCALE
    for j in range(C):
        fx = x[j] != -INF
        fy = y[j] != -INF
        gx[j] = 0.0
        gy[j] = 0.0
        if fx:
            ph, pl = _dd_prob(btp[j], bep[j], cph, cpl)
            ra = 1.0 if x[j] - mp < X_MIN_PARTS else rp
            gx[j] = _js_grad_entry(ph, pl, ra, work[0, j], work[1, j], work[2, j], KPh, KPl, eKP,
                                   beta, 0.0, nk)
            ok = ok and gx[j] == gx[j]
        if fy:
            qh, ql = _dd_prob(btq[j], beq[j], cqh, cql)
            rq = 1.0 if y[j] - mq < X_MIN_PARTS else rp
            gy[j] = _js_grad_entry(qh, ql, rq, work[3, j], work[4, j], work[5, j], KQh, KQl, eKQ,
                                   bh, bl, nk)
            ok = ok and gy[j] == gy[j]
    return value, ok


@jit(parallel=True)
def js_divergence_logits_grad_rows_cr(x, y, beta, keep, rho, nk, out, gx, gy, slow):
    """``out[n]`` as :func:`js_divergence_logits_rows_cr` and the gradient rows of the sum of
    the rows divided by ``nk`` (:func:`_js_grad_row_cr`), correctly rounded; ``slow[n] = 1``
    where the value or an entry is undecided (0 rows where ``keep[n]`` is False)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        work = np.empty((6, C))
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                slow[n] = False
                for j in range(C):
                    gx[n, j] = 0.0
                    gy[n, j] = 0.0
                continue
            v, ok = _js_grad_row_cr(x[n], y[n], beta, btp, bep, btq, beq, acc, rho, nk, work,
                                    gx[n], gy[n])
            out[n] = v
            slow[n] = not ok


@jit(parallel=True)
def js_divergence_logits_grad_rows(x, y, beta, keep, accurate, scale, out, gx, gy):
    """``out[n]`` as :func:`js_divergence_logits_rows`, and the gradient of ``scale * JSD``:
    ``gx = scale beta P (-s - KL(P || M))``, ``gy = scale (1 - beta) Q (-r - KL(Q || M))``
    (0 for dropped rows and for ``beta`` 0 or 1, nan for nan rows)."""
    wide_vectors()
    N, C = x.shape
    bh = 1.0 - beta
    lb = math.log(beta) if beta > 0.0 else 0.0
    l1b = math.log1p(-beta) if beta < 1.0 else 0.0
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        btp, bep = _term_rows(C)
        btq, beq = _term_rows(C)
        acc = np.empty(DD_ACC)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            if not keep[n]:
                out[n] = 0.0
                for i in range(C):
                    gx[n, i] = 0.0
                    gy[n, i] = 0.0
                continue
            v, KP, KQ, cph, cpl, cqh, cql, lh, ll, Dh, Dl = _js_row(
                x[n], y[n], beta, btp, bep, btq, beq, acc, False, accurate)
            out[n] = v
            if v != v:
                for i in range(C):
                    gx[n, i] = NAN
                    gy[n, i] = NAN
                continue
            if beta == 0.0 or beta == 1.0:
                for i in range(C):
                    gx[n, i] = 0.0
                    gy[n, i] = 0.0
                continue
            for i in range(C):
                fx = x[n, i] != -INF
                fy = y[n, i] != -INF
                gx[n, i] = 0.0
                gy[n, i] = 0.0
                if fx and fy:
                    P = _prob(btp, bep, i, cph, cpl)
                    Q = _prob(btq, beq, i, cqh, cql)
                    dh, dl = _delta(x[n, i], y[n, i], Dh, Dl, lh, ll)
                    sh, sl = _log1p_a_expm1(-dh, -dl, bh, 0.0)
                    rh, rl = _log1p_a_expm1(dh, dl, beta, 0.0)
                    gx[n, i] = scale * (beta * P * (-sh - KP))
                    gy[n, i] = scale * (bh * Q * (-rh - KQ))
                elif fx:
                    P = _prob(btp, bep, i, cph, cpl)
                    gx[n, i] = scale * (beta * P * (-lb - KP))
                elif fy:
                    Q = _prob(btq, beq, i, cqh, cql)
                    gy[n, i] = scale * (bh * Q * (-l1b - KQ))
