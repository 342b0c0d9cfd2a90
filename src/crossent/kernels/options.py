"""Kernels of the two options of :func:`crossent.cross_entropy` for large-model training: the
auxiliary z-loss (``z lse^2`` per item, PaLM) and the logit soft-cap (``c tanh(x / c)``,
Gemma 2). The default options never come here: ``crossent.loss`` dispatches to these kernels
only when ``z_loss != 0`` or ``logit_softcap`` is set, and the plain kernels of
:mod:`crossent.kernels.loss` stay as they are.

Every row goes through one general path:

1. the capped logits ``z_i = c tanh(x_i / c)`` as double-doubles ``zh_i + zl_i``
   (``_softcap_dd``; float32/float16 inputs: one float64 value, ``_softcap_f64``), or
   ``z_i = x_i`` without a cap;
2. the row statistics of those double-doubles (``_row_stats_dd``: the max ``M = mh + ml``,
   ``exp(z_i - M) = T_i + E_i`` with the shift's low parts folded into ``E_i``, ``S`` and
   ``L = log S`` by the same sums and log as :mod:`crossent.kernels.softmax`);
3. the loss ``sum_c a_c (M - z_c) + A L`` with double-double coefficients (the same ``a_c``
   as the plain kernels), plus ``z w lse^2``, ``lse = M + L``: non-negative terms, added in
   double-double and rounded once;
4. the gradient in ``z``: ``g_i = (A' p_i - a_i) / denom``, ``A' = A + 2 z w lse``, then
   multiplied by ``dz_i/dx_i = 1 - tanh^2(x_i / c)`` (``proofs/12_loss_options.py``).
"""

from __future__ import annotations

import math
import numpy as np
from numba import prange

from ._base import (DD_ACC, INF, LN2_DD_HI, LN2_DD_LO, NAN, dd_div, dd_mul, dd_sum, dd_sum2, fma,
                    jit, two_prod, two_sum)
from .exp import EXP_PARTS_DD_MAX_REL_ERR, X_MIN_PARTS
from .exp import exp_parts_f64 as exp_parts
from .loss import _label_coeffs, _prob_coeffs
from .softmax import (INV_SCALE, MASKED_ROW, NAN_ROW, OK, ROWS_PER_TASK, SCALE, TINY, _fill,
                      _log_of_sum, _round_cr_abs, _round_sum, _scale_dd, _term_of, _term_pair_dd)


def _inv_factorials(n):
    """``1/k!`` for ``k = 0..n`` as double-doubles (high parts, low parts): the high part is
    ``1/k!`` rounded, the low part the exact remainder rounded (Python's integer division is
    correctly rounded): relative ``2**-106``."""
    hi = []
    lo = []
    for k in range(n + 1):
        f = math.factorial(k)
        h = 1 / f
        num, den = h.as_integer_ratio()
        hi.append(h)
        lo.append((den - f * num) / (f * den))  # 1/f - num/den
    return np.array(hi), np.array(lo)


# expm1(r) = sum_{k>=1} r^k / k! for |r| <= 0.35: the first omitted term, 0.35^24 / 24!, is
# below 2**-114 (proofs/12_loss_options.py checks it)
EXPM1_TERMS = 23
_IF_HI, _IF_LO = _inv_factorials(EXPM1_TERMS)
# below this |x| / c, c tanh(x / c) = x (1 - (x/c)^2 / 3 + ...) is x to within 2**-120
SOFTCAP_TINY = 2.0**-60
# beyond this x / c, 1 - tanh(x / c) < 2 e^(-2 * 40) < 2**-114: tanh is 1 to double-double
SOFTCAP_ONE = 40.0


@jit
def _expm1_dd(uh, ul):
    """``expm1(u)`` as a double-double for ``0 <= u = uh + ul <= 2 * SOFTCAP_ONE``.

    ``u = k ln 2 + r``, ``|r| <= 0.35`` (``k`` = round(u / ln 2), ``k <= 116``; ``k ln 2``
    from the double-double ln 2, absolute error ``k 2**-107``), ``expm1(r)`` by its Taylor
    series in double-double (Horner, ``EXPM1_TERMS`` terms), then
    ``expm1(u) = (2**k - 1) + 2**k expm1(r)`` (both non-negative for ``k >= 1``, ``2**k - 1``
    exact). Relative error below ``2**-99`` (``proofs/12_loss_options.py``)."""
    k = np.float64(round(uh / LN2_DD_HI)) if uh > 0.34 else 0.0
    rh, rl = uh, ul
    if k != 0.0:
        ph = k * LN2_DD_HI
        pe = fma(k, LN2_DD_HI, -ph)  # k ln2_hi = ph + pe exactly
        rh, rl = two_sum(uh, -ph)
        rl = rl + (ul - pe - k * LN2_DD_LO)
        rh, rl = two_sum(rh, rl)
    sh = _IF_HI[EXPM1_TERMS]
    sl = _IF_LO[EXPM1_TERMS]
    for j in range(EXPM1_TERMS - 1, 0, -1):
        sh, sl = dd_mul(sh, sl, rh, rl)
        h, e = two_sum(sh, _IF_HI[j])
        sh, sl = two_sum(h, e + sl + _IF_LO[j])
    sh, sl = dd_mul(sh, sl, rh, rl)  # expm1(r)
    if k == 0.0:
        return sh, sl
    p2 = math.ldexp(1.0, int(k))
    mh, ml = two_sum(p2, -1.0)  # 2**k - 1 exactly (k <= 116)
    h, e = two_sum(mh, p2 * sh)  # both non-negative
    return two_sum(h, e + (ml + p2 * sl))


@jit
def _softcap_dd(x, c, want_dz):
    """``(zh, zl, dz)``: ``c tanh(x / c) = zh + zl`` to about ``2**-98`` relative and
    ``dz = 1 - tanh^2(x / c)`` (float64, a few ulp), for float64 ``x`` and ``c > 0``.

    ``a = |x| / c`` as a double-double (the division's exact remainder by an FMA),
    ``E = expm1(2a)`` (:func:`_expm1_dd`), ``tanh a = E / (E + 2)`` (double-double division),
    ``1 - tanh^2 a = 4 (E + 1) / (E + 2)^2``. Beyond ``SOFTCAP_ONE`` tanh is 1 to
    double-double; below ``SOFTCAP_TINY`` the capped value is ``x`` itself. ``+-inf`` give
    ``+-c`` exactly (the limit), nan stays nan."""
    if x != x:
        return x, 0.0, NAN
    ax = abs(x)
    s = 1.0 if x > 0 else -1.0
    if ax < SOFTCAP_TINY * c:  # also x = +-0 (sign kept)
        return x, 0.0, 1.0
    ah = ax / c
    if ah >= SOFTCAP_ONE:  # includes x = +-inf
        E = math.expm1(2.0 * ah)
        dz = 4.0 * (E + 1.0) / (E + 2.0) / (E + 2.0) if E < INF else 0.0
        # 1 - tanh a = 2 / (E + 2) < 2**-114: c tanh a = c - 2c / (E + 2)
        q = 2.0 * c / (E + 2.0) if E < INF else 0.0
        return s * c, -s * q, dz
    al = fma(-ah, c, ax) / c  # |x| / c = ah + al to 2**-104
    Eh, El = _expm1_dd(2.0 * ah, 2.0 * al)
    bh, bl = two_sum(Eh, 2.0)
    th, tl = dd_div(Eh, El, bh, bl + El)
    zh = c * th
    zl = fma(c, th, -zh) + c * tl
    if not want_dz:
        return s * zh, s * zl, 1.0
    E = Eh + El
    dz = 4.0 * (E + 1.0) / (E + 2.0) / (E + 2.0)
    return s * zh, s * zl, dz


@jit
def _softcap_f64(x, c, want_dz):
    """``(z, 0, dz)`` for float32/float16 inputs: ``z = c tanh(x / c)`` in float64 (a few
    ulp of float64, i.e. ``2**-50 c`` absolute: enough for a float32 output,
    docs/loss-options.md), ``dz = 1 - tanh^2(x / c)``."""
    if x != x:
        return x, 0.0, NAN
    if abs(x) < SOFTCAP_TINY * c:
        return x, 0.0, 1.0
    t = math.tanh(x / c)
    if not want_dz:
        return c * t, 0.0, 1.0
    a = abs(x) / c
    E = math.expm1(2.0 * a)
    dz = 4.0 * (E + 1.0) / (E + 2.0) / (E + 2.0) if E < INF else 0.0
    return c * t, 0.0, dz


@jit
def _capped_row(row, cap, fast, want_dz, zh, zl, dz):
    """Fill ``zh[:C] + zl[:C]`` with the row's (capped) logits and ``dz[:C]`` with their
    derivative in the logits (1 without a cap, or when ``want_dz`` is False: not needed)."""
    C = row.shape[0]
    for i in range(C):
        v = np.float64(row[i])
        if cap > 0.0:
            if fast:
                h, lo, d = _softcap_f64(v, cap, want_dz)
            else:
                h, lo, d = _softcap_dd(v, cap, want_dz)
        else:
            h, lo, d = v, 0.0, 1.0
        zh[i] = h
        zl[i] = lo
        dz[i] = d


@jit
def _term_dd(d, e):
    """``2**SCALE_EXP exp(d + e) = T + E`` by the double-double exponential (the correctly
    rounded path; ``_term_pair_dd``, compiled once here rather than inlined per kernel)."""
    T, E = _term_pair_dd(d, 0.0)
    return T, fma(e, T, E)


@jit
def _row_stats_dd(zh, zl, C, bt, be, acc, accurate):
    """``(status, mh, ml, hi, lo, Lh, Ll)`` of a row of double-double logits ``zh + zl``:
    ``M = mh + ml`` the largest, ``hi + lo = 2**SCALE_EXP S``, ``Lh + Ll = log S``,
    ``S = sum_i exp(z_i - M)``; fills ``bt[:C] + be[:C]`` with the terms (0 at the entries
    equal to ``M``, whose terms are exactly ``2**SCALE_EXP``).

    As :func:`crossent.kernels.softmax._row_stats` with ``z_i - M = d_i + e_i``:
    ``d_i + e_i`` is ``(zh_i - mh) + (zl_i - ml)`` renormalized by TwoSum (``e_i`` below
    ``ulp(d_i)``, so ``exp(d + e) = exp(d)(1 + e)`` to ``2**-100``). ``accurate`` (the
    correctly rounded path): the double-double exponential and logarithm, ``S`` within
    ``crossent._rounding.relative_bound(C)`` of the sum of the exponentials of ``zh + zl``."""
    mh = -INF
    for i in range(C):
        v = zh[i]
        if v != v or v == INF:
            return NAN_ROW, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
        mh = v if v > mh else mh
    if mh == -INF:
        return MASKED_ROW, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0
    ml = -INF
    for i in range(C):
        if zh[i] == mh and zl[i] > ml:
            ml = zl[i]
    cnt = 0
    for i in range(C):
        v = zh[i]
        if v == mh and zl[i] == ml:
            cnt += 1
            bt[i] = 0.0
            be[i] = 0.0
            continue
        if v == -INF:
            d = -INF
            e = 0.0
        else:
            d, e = two_sum(v, -mh)
            d, e = two_sum(d, e + (zl[i] - ml))
        e = 0.0 if d < X_MIN_PARTS else e
        if accurate:
            bt[i], be[i] = _term_dd(d, e)
            continue
        t, s = exp_parts(d)
        T = fma(t, s, s)
        ls = fma(t, s, s - T)
        bt[i] = T
        be[i] = fma(e, T, ls)
    rh, rl = dd_sum2(bt, be, acc)
    Lh, Ll, _Lsh, _Lsl = _log_of_sum(cnt, rh, rl, accurate)
    hi, lo = two_sum(np.float64(cnt) * SCALE, rh)
    hi, lo = two_sum(hi, lo + rl)
    return OK, mh, ml, hi, lo, Lh, Ll


@jit
def _loss_dd(zh, zl, C, mh, ml, Lh, Ll, ah, al, b3, acc):
    """``sum_c a_c (M - z_c) + A L`` as an unrounded double-double (``(inf, 0)`` when a
    class with ``a_c > 0`` is masked): as ``crossent.kernels.loss._soft_loss`` with
    ``M - z_c = (mh - zh_c) + (ml - zl_c) >= 0`` in double-double."""
    b = b3[:C]
    lo = 0.0
    alsum = 0.0
    for c in range(C):
        a = ah[c]
        alsum += al[c]
        if a == 0.0 and al[c] == 0.0:
            b[c] = 0.0
            continue
        v = zh[c]
        if v == -INF:
            return INF, 0.0
        uh, ul = two_sum(mh, -v)
        ul += ml - zl[c]
        p = a * uh
        b[c] = p
        lo += fma(a, uh, -p) + a * ul + al[c] * uh
    ph, pl = dd_sum(b, acc)
    Ah, Al = dd_sum(ah[:C], acc)
    Al += alsum
    q = Ah * Lh
    qe = fma(Ah, Lh, -q) + (Ah * Ll + Al * Lh)
    t, te = two_sum(ph, q)
    return t, te + (pl + lo + qe)


@jit(inline=True)
def _lse_dd(mh, ml, Lh, Ll):
    """``lse = M + L`` as a double-double."""
    sh, sl = two_sum(mh, Lh)
    return two_sum(sh, sl + (ml + Ll))


@jit
def _with_z(t, te, zw, zwl, mh, ml, Lh, Ll):
    """The loss ``t + te`` plus ``zw lse^2`` (``zw + zwl = z w >= 0`` exactly, double-double
    products) as an unrounded double-double (``(inf, 0)`` where it overflows). Both terms are
    non-negative."""
    if t == INF:
        return INF, 0.0
    if zw == 0.0:
        return t, te
    sh, sl = _lse_dd(mh, ml, Lh, Ll)
    ph = sh * sh
    if ph == INF:
        return INF, 0.0
    pl = fma(sh, sh, -ph) + 2.0 * sh * sl
    qh = zw * ph
    if qh == INF:
        return INF, 0.0
    ql = fma(zw, ph, -qh) + (zw * pl + zwl * ph)
    a, b = two_sum(t, qh)
    return a, b + (te + ql)


#: the error of a capped logit from ``_softcap_dd``, relative to it (its stated ``2**-98``
#: with a margin: the correctly rounded path's bound, ``_loss_error``)
SOFTCAP_DD_REL = 2.0**-95


@jit
def _loss_error(zh, C, mh, Lh, ah, zw, cap, rS, value):
    """A bound on the absolute error of the loss ``value`` (``_loss_dd`` plus the z term) on
    the correctly rounded path: ``S`` within ``rS`` relative (plus, with a cap, the capped
    logits' errors in the exponentials' arguments), so ``L`` within that plus the log's
    ``2**-93 L``; with a cap, every capped logit within ``SOFTCAP_DD_REL`` of itself,
    which moves ``M - z_c`` by at most that times ``|M| + |z_c|`` (without one the logits are
    exact and ``M - z_c`` is a double-double to ``2**-104``); the z term ``zw lse^2`` by
    ``zw (2 |lse| e + e**2)``, ``e`` the error of ``lse = M + L``; the double-double
    arithmetic ``2**-100`` of the value. The coefficients ``a_c`` are double-doubles (their
    low parts, below ``2**-52`` of them, count through the ``2**-100``)."""
    # a capped logit's error moves each exp(z_i - M) by up to SOFTCAP_DD_REL (|z_i| + |M|),
    # |z| <= cap: relative to S, at most 2 SOFTCAP_DD_REL cap more
    eL = (rS + (2.0 * SOFTCAP_DD_REL * cap if cap > 0.0 else 0.0)) * 1.01 + 2.0**-93 * Lh
    e1 = 0.0
    A = 0.0
    for c in range(C):
        a = abs(ah[c])
        if a == 0.0:
            continue
        A += a
        if cap > 0.0:
            e1 += a * SOFTCAP_DD_REL * (abs(mh) + abs(zh[c]))
    e1 += A * eL * (1.0 + 2.0**-40)
    e2 = 0.0
    if zw != 0.0:
        lse = abs(mh + Lh)
        el = eL + (SOFTCAP_DD_REL * abs(mh) if cap > 0.0 else 2.0**-104 * lse)
        e2 = zw * (2.0 * lse * el + el * el)
    return (e1 + e2 + 2.0**-100 * abs(value) + C * 2.0**-1070) * (1.0 + 2.0**-40)


@jit(inline=True)
def _a_prime(ah, al, C, acc, zw, zwl, mh, ml, Lh, Ll):
    """``(Ah, Al, lse)``: ``A' = A + 2 zw lse`` as a double-double (``A = sum_c a_c``, the
    coefficients' low parts added), and ``lse = M + L``'s high part (0 when ``zw = 0``)."""
    Ah, Al = dd_sum(ah[:C], acc)
    for c in range(C):
        Al += al[c]
    sh = 0.0
    if zw != 0.0:
        sh, sl = _lse_dd(mh, ml, Lh, Ll)
        k = 2.0 * zw
        ph = k * sh
        pl = fma(k, sh, -ph) + (k * sl + 2.0 * zwl * sh)
        Ah, e = two_sum(Ah, ph)
        Al += e + pl
    return Ah, Al, sh


@jit
def _grad_dd(zh, bt, be, C, hi, lo, ah, al, zw, zwl, mh, ml, Lh, Ll, denom, acc, dz, g):
    """``g_i = ((A + 2 zw lse) p_i - a_i) dz_i / denom`` (``p_i = (T_i + E_i) / S``): the
    large parts meet in one FMA as in ``crossent.kernels.loss._soft_grad``."""
    Ah, Al, _lse = _a_prime(ah, al, C, acc, zw, zwl, mh, ml, Lh, Ll)
    ch, cl = _scale_dd(Ah, Al, hi, lo, denom)
    for i in range(C):
        t = _term_of(bt[i])
        e = be[i]
        if zh[i] - mh < X_MIN_PARTS:  # the exp's clamp: p_i < e^-1100, taken as 0
            t = 0.0
            e = 0.0
        sh = ah[i] / denom
        sl = (fma(-sh, denom, ah[i]) + al[i]) / denom
        v = fma(ch, t, -sh) + (fma(ch, e, cl * t) - sl)
        g[i] = v * dz[i]


#: the error of :func:`_dz_dd` below ``SOFTCAP_ONE``, relative (``E`` within ``2**-99``, ``x/c``
#: within ``2**-104`` of itself moving ``sech^2`` by ``2 (x/c) 2**-104``, the double-double
#: steps: below ``2**-96``, with a margin)
DZ_DD_REL = 2.0**-94


@jit
def _dz_dd(x, c):
    """``(h, l, rel, ub)``: ``2**SCALE_EXP (1 - tanh^2(x / c)) = h + l`` within ``rel`` times
    itself, for the correctly rounded gradient with a soft-cap ``c > 0``; or
    ``(0, 0, 0, ub)``: the scaled value lies in ``[0, ub]`` (``x/c`` beyond 550, where it is
    below ``2**-985``; ``ub = 0`` for ``x = +-inf``, the limit 0 exactly).

    ``sech^2 a = 4 (E + 1) / (E + 2)**2`` with ``E = expm1(2a)`` (``_expm1_dd``, ``a = |x|/c``
    as a double-double) for ``a < SOFTCAP_ONE`` (positive terms: no cancellation); beyond,
    ``4 u / (1 + u)**2`` with ``u = e^{-2a} < 2**-115`` from the double-double exponential,
    taken as ``4 u`` (within ``2**-113``); below ``SOFTCAP_TINY``, 1 (within ``2**-120``)."""
    ax = abs(x)
    if ax == INF:
        return 0.0, 0.0, 0.0, 0.0
    if ax < SOFTCAP_TINY * c:
        return SCALE, 0.0, 2.0**-118, 0.0
    ah = ax / c
    al = fma(-ah, c, ax) / c
    if ah < SOFTCAP_ONE:
        Eh, El = _expm1_dd(2.0 * ah, 2.0 * al)
        nh, nl = two_sum(Eh, 1.0)
        nl += El
        dh, dl = two_sum(Eh, 2.0)
        dl += El
        qh, ql = dd_mul(dh, dl, dh, dl)
        rh, rl = dd_div(4.0 * nh, 4.0 * nl, qh, ql)
        return rh * SCALE, rl * SCALE, DZ_DD_REL, 0.0
    if 2.0 * ah <= -X_MIN_PARTS:
        T, E = _term_dd(-2.0 * ah, -2.0 * al)
        return 4.0 * T, 4.0 * E, EXP_PARTS_DD_MAX_REL_ERR + 2.0**-84, 0.0
    return 0.0, 0.0, 0.0, 2.0**-985  # 4 * 2**600 e^-1100 < 2**-985


@jit
def _grad_dd_cr(row, zh, bt, be, C, hi, lo, ah, al, zw, zwl, mh, ml, Lh, Ll, Dh, Dl, acc, cap,
                rS, g):
    """The gradient row of the correctly rounded path with the options:
    ``g_i = (A' P_i - a_i) dz_i / D``, ``A' = A + 2 zw lse``, ``D = Dh + Dl`` the exact
    divisor; every entry rounded to nearest where its bound decides it, else nan; returns
    whether all were decided.

    As ``crossent.kernels.loss._soft_grad_cr`` (``A' P_i / D`` and ``a_i / D`` formed to first
    order exactly and subtracted by TwoSum, so the bound is absolute), with the options'
    errors added: ``P_i`` within ``2 rS + C 2**-103 + 2**-96`` (a term's and ``S``'s error, as
    there) plus, with a cap, ``SOFTCAP_DD_REL (|z_i| + |M|)`` (its exponent) and
    ``2 SOFTCAP_DD_REL c`` (``S``'s); ``A'`` within ``2 zw e_lse + 2**-100 |A'|``, ``e_lse``
    the error of ``lse`` (``_loss_error``'s); then the product with ``dz_i`` (``_dz_dd``,
    scaled by ``2**SCALE_EXP``) within ``rel_dz`` of it. A class clamped by the exponential
    (``z_i`` more than 1100 below ``M``) has ``P_i`` in ``[0, 2**-986 / (S D)]``: taken as 0
    with that bound. A ``c = A' / (S D)`` below ``2**-960`` fails the row (as there)."""
    Ah, Al, lse = _a_prime(ah, al, C, acc, zw, zwl, mh, ml, Lh, Ll)
    eA = 2.0**-100 * abs(Ah)
    if zw != 0.0:  # lse within the loss's error of it (_loss_error)
        eL = (rS + (2.0 * SOFTCAP_DD_REL * cap if cap > 0.0 else 0.0)) * 1.01 + 2.0**-93 * Lh
        e_lse = eL + (SOFTCAP_DD_REL * abs(mh) if cap > 0.0 else 2.0**-104 * abs(lse))
        eA = (2.0 * zw * e_lse + 2.0**-100 * abs(Ah)) * 1.01
    ph = hi * Dh
    pl = fma(hi, Dh, -ph) + (lo * Dh + hi * Dl)  # S D to about 2**-105 (scaled by 2**B)
    ch, cl = dd_div(Ah, Al, ph, pl)
    rh, rl = dd_div(1.0, 0.0, Dh, Dl)
    if ch != 0.0 and abs(ch) < 2.0**-960:
        return False
    rA = eA / abs(Ah) if Ah != 0.0 else 0.0
    rel0 = 2.0 * rS + C * 2.0**-103 + 2.0**-96 + rA
    if cap > 0.0:
        rel0 += 2.0 * SOFTCAP_DD_REL * cap * 1.01
    bad = 0
    for i in range(C):
        if zh[i] == -INF:  # P_i = 0 exactly (a masked class, no cap)
            xh, xl, ex = 0.0, 0.0, 0.0
        elif zh[i] - mh < X_MIN_PARTS:  # clamped: P_i in [0, 2**-986 / (S D)]
            xh, xl, ex = 0.0, 0.0, abs(ch) * 2.0**-986
        else:
            t = _term_of(bt[i])
            xh, xl = two_prod(ch, t)
            xl += fma(ch, be[i], cl * t)
            rP = rel0 + (SOFTCAP_DD_REL * (abs(zh[i]) + abs(mh)) * 1.01 if cap > 0.0 else 0.0)
            ex = rP * abs(xh)
        yh, yl = two_prod(ah[i], rh)
        yl += ah[i] * rl + al[i] * rh
        sh, se = two_sum(xh, -yh)
        sl = se + (xl - yl)
        err = (ex + 2.0**-96 * abs(yh)) * (1.0 + 2.0**-40)
        if cap > 0.0:
            dh, dl, rdz, ub = _dz_dd(np.float64(row[i]), cap)
        else:
            dh, dl, rdz, ub = SCALE, 0.0, 0.0, 0.0
        if dh == 0.0:
            if ub == 0.0:  # x_i = +-inf with a cap: dz = 0 exactly
                g[i] = 0.0
                continue
            # 0 < dz <= ub 2**-600: g = s dz has the sign of s (when err cannot flip it) and
            # rounds to that zero when below half the least subnormal, 2**-1075
            if abs(sh) > err and (abs(sh) + err) * ub < 2.0**-476:
                g[i] = math.copysign(0.0, sh)
            else:
                g[i] = NAN
                bad += 1
            continue
        gh, ge = two_prod(sh, dh)
        gl = ge + (sh * dl + sl * dh)
        eg = ((err * dh + abs(gh) * rdz) * 1.01 + 2.0**-100 * abs(gh)) * (1.0 + 2.0**-40)
        if abs(gh) > eg and abs(gh) + eg < 2.0**-476:  # |g| + error below 2**-1076: a zero
            g[i] = math.copysign(0.0, gh)  # of g's sign (scaled by 2**600 here)
            continue
        eg *= INV_SCALE
        if eg != 0.0 or gh != 0.0:
            eg += 2.0 * TINY
        r = _round_cr_abs(gh * INV_SCALE, gl * INV_SCALE, eg)
        bad += 1 if r != r else 0
        g[i] = r
    return bad == 0


# ----------------------------------------------------------------------------- batch kernels
@jit(inline=True)
def _scratch(C):
    n = -(-C // 32) * 32 if C > 0 else 32
    return (np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n),
            np.zeros(n), np.zeros(n), np.empty(DD_ACC))


@jit
def _one_row(row, lab, trow, weight, has_weight, eps, z, cap, fast, odd, denom, want_grad,
             zh, zl, dz, bt, be, b3, ah, al, acc, g, rS, denom_lo):
    """Loss of one row (``lab >= 0``: class index, else ``trow`` holds probabilities); the
    gradient into ``g`` when ``want_grad``. ``rS > 0``: the correctly rounded path (float64):
    the double-double exponential, and the loss rounded to nearest where its error bound
    (``_loss_error``, ``S`` within ``rS``) decides the rounding, else nan; the gradient (with
    ``denom_lo`` a float, not None) by :func:`_grad_dd_cr` with the divisor
    ``denom + denom_lo``, the loss nan where an entry is undecided (the caller recomputes the
    row). ``denom_lo=None``: the default gradient, and a kernel compiled without the
    correctly rounded one (about 3 s less on a cold first call)."""
    C = row.shape[0]
    _capped_row(row, cap, fast, want_grad and rS == 0.0, zh, zl, dz)
    st, mh, ml, hi, lo, Lh, Ll = _row_stats_dd(zh, zl, C, bt, be, acc, rS > 0.0)
    if st != OK:
        if want_grad:
            _fill(g, NAN)
        return NAN
    if lab >= 0:
        w = weight[lab] if has_weight else 1.0
        _label_coeffs(lab, w, eps, weight, has_weight, ah[:C], al[:C])
    else:
        w = 1.0
        _prob_coeffs(trow, eps, weight, has_weight, ah[:C], al[:C])
    zw, zwl = two_prod(z, w)  # z w exactly
    t, te = _loss_dd(zh, zl, C, mh, ml, Lh, Ll, ah, al, b3, acc)
    ok = True
    if want_grad:
        # ``denom_lo is None`` is decided when Numba types the call (a None argument prunes the
        # branch), so the default path is compiled without the correctly rounded gradient
        if denom_lo is None:
            _grad_dd(zh, bt, be, C, hi, lo, ah, al, zw, zwl, mh, ml, Lh, Ll, denom, acc, dz, g)
        else:
            ok = _grad_dd_cr(row, zh, bt, be, C, hi, lo, ah, al, zw, zwl, mh, ml, Lh, Ll, denom,
                             denom_lo, acc, cap, rS, g)
    a, b = _with_z(t, te, zw, zwl, mh, ml, Lh, Ll)
    if rS > 0.0:
        if not ok:
            return NAN
        if a < INF:
            return _round_cr_abs(a, b, _loss_error(zh, C, mh, Lh, ah, zw, cap, rS, a))
    return _round_sum(a, b, odd)


@jit(parallel=True)
def options_labels_rows(x, labels, weight, has_weight, ignore_index, eps, z, cap, odd, fast,
                        denom, want_grad, out, grad, rS, denom_lo):
    """Per-row loss (and gradient rows when ``want_grad``) for class indices, with the
    z-loss ``z`` and the soft-cap ``cap`` (0: none). Ignored rows: loss 0, gradient 0.
    ``rS > 0``: the correctly rounded path (see ``_one_row``; nan where undecided), with the
    divisor ``denom + denom_lo`` of the gradient (``denom_lo`` a float in the correctly
    rounded path with a gradient, else None)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        zh, zl, dz, bt, be, b3, ah, al, acc = _scratch(C)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            g = grad[n]
            if y == ignore_index:
                out[n] = 0.0
                if want_grad:
                    _fill(g, 0.0)
                continue
            out[n] = _one_row(x[n], y, x[n], weight, has_weight, eps, z, cap, fast, odd, denom,
                              want_grad, zh, zl, dz, bt, be, b3, ah, al, acc, g, rS, denom_lo)


@jit(parallel=True)
def options_probs_rows(x, t, weight, has_weight, eps, z, cap, odd, fast, denom, want_grad,
                       out, grad, rS, denom_lo):
    """As :func:`options_labels_rows` for probability targets (the z term unweighted)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        zh, zl, dz, bt, be, b3, ah, al, acc = _scratch(C)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            out[n] = _one_row(x[n], -1, t[n], weight, has_weight, eps, z, cap, fast, odd, denom,
                              want_grad, zh, zl, dz, bt, be, b3, ah, al, acc, grad[n], rS,
                              denom_lo)
