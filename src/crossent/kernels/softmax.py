"""Kernels of the softmax family: logsumexp, log_softmax, softmax, cross_entropy and its
fused gradient.

Three tiers, as in numba-stats: row helpers (``@njit(inline="always")``), batch kernels
(``prange`` over rows, one row per iteration, so results do not depend on the thread
count), and the thin Python layer in ``crossent.softmax`` / ``crossent.loss`` that
validates and reshapes. Every kernel works on C-contiguous ``(rows, C)`` arrays of float32
or float64 and computes in float64.

The row algorithm (Blanchard, Higham & Higham 2021, with the rounding error of the shift
carried along) — the error budget of each line is in ``docs/accuracy.md``:

1. ``m = max_i x_i`` (exact).
2. ``x_i - m = d_i + e_i`` exactly (TwoSum; ``e_i`` is the rounding error of the shift).
3. ``exp(x_i - m) = 2**k_i * (1 + t_i)`` with ``t_i = expm1(r_i) + e_i * (1 + expm1(r_i))``
   from the reduced-argument exp; the max term is exactly ``1``.
4. ``S = sum_i exp(x_i - m)`` in double-double (TwoSum accumulation, fixed order).
5. ``L = log(S) = log1p(S - 1)`` with ``S - 1`` formed exactly from the double-double,
   so a confident row keeps every digit of ``S - 1`` (the loss of 1e-20 is not 0).
6. ``-log_softmax_i = (m - x_i) + L = (-d_i) + (L - e_i)``: two non-negative terms, no
   cancellation. ``softmax_i = 2**k_i * (1 + t_i) / S`` with one FMA.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .eft import dd_add, dd_add_inf, fast_two_sum, fma, two_sum

try:  # the certified vectorizable exp (crossent.kernels.exp)
    from .exp import exp_parts_f64 as exp_parts
except ImportError:  # pragma: no cover - until the vectorized exp lands
    _LOG2E = 1.4426950408889634
    _LN2_HI = 0.6931471803691238  # 2**-32 grid: k * _LN2_HI exact for |k| < 2**21
    _LN2_LO = 1.9082149292705877e-10

    @njit(inline="always", cache=True)
    def exp_parts(x):
        """``exp(x) = s1 * s2 * (1 + t)`` for ``x <= 0`` (scalar reference version)."""
        x = max(x, -1400.0)
        k = round(x * _LOG2E)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        t = math.expm1(r)
        k1 = int(k) >> 1
        k2 = int(k) - k1
        return t, math.ldexp(1.0, k1), math.ldexp(1.0, k2)


NAN = np.nan
INF = np.inf


# ----------------------------------------------------------------------------- row helpers
@njit(inline="always", cache=True)
def _row_max(x):
    """``(m, bad)``: the max of the row and whether it holds a nan or +inf."""
    m = -INF
    bad = False
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        m = v if v > m else m
        bad = bad | (v != v)
    return m, bad | (m == INF)


@njit(inline="always", cache=True)
def _shift(v, m):
    """``(d, e)`` with ``d + e = v - m`` exactly; ``e = 0`` when ``v`` is -inf."""
    d, e = two_sum(v, -m)
    if v == -INF:
        e = 0.0
    return d, e


@njit(inline="always", cache=True)
def _term(v, m):
    """``exp(v - m) = s1 * s2 * (1 + tt)`` with the shift's rounding error folded into tt.

    ``exp(d + e) = exp(d) * (1 + e + O(e**2))`` and ``|e| <= 2**-53 * 1400``, so the
    dropped ``e**2/2`` is below ``2**-83`` relative.
    """
    d, e = _shift(v, m)
    t, s1, s2 = exp_parts(d)
    tt = t + fma(e, t, e)  # t + e*(1 + t)
    return tt, s1, s2


@njit(inline="always", cache=True)
def _row_sum(x, m):
    """``S = sum_i exp(x_i - m)`` as a double-double ``(hi, lo)`` (fixed order)."""
    hi = 0.0
    lo = 0.0
    for i in range(x.shape[0]):
        tt, s1, s2 = _term(np.float64(x[i]), m)
        term = ((1.0 + tt) * s1) * s2  # 1 + tt rounds (u/2); *s1 exact; *s2 rounds only if subnormal
        hi, lo = dd_add(hi, lo, term)
    return hi, lo


@njit(inline="always", cache=True)
def _log_of_sum(hi, lo):
    """``L = log(hi + lo) = log1p((hi - 1) + lo)`` for ``hi >= 1``.

    ``hi - 1`` is formed by TwoSum, so ``S - 1`` carries the digits of the tiny terms.
    """
    a, b = two_sum(hi, -1.0)
    sh, sl = fast_two_sum(a, b + lo)
    return math.log1p(sh) + sl / (1.0 + sh)


@njit(inline="always", cache=True)
def _recip(hi, lo):
    """``1 / (hi + lo)`` rounded once (to within 2**-100 before the final rounding)."""
    c0 = 1.0 / hi
    r = fma(-hi, c0, 1.0)  # exact residual 1 - hi*c0
    return c0 + c0 * (r - lo * c0)


@njit(inline="always", cache=True)
def _recip_scaled(hi, lo, k):
    """``1 / ((hi + lo) * k)`` rounded once (the product is kept in double-double)."""
    ph = hi * k
    pl = fma(hi, k, -ph) + lo * k
    return _recip(ph, pl)


@njit(inline="always", cache=True)
def _row_stats(x):
    """``(m, bad, hi, lo, L)`` of one row."""
    m, bad = _row_max(x)
    if bad or m == -INF:
        return m, bad, 0.0, 0.0, 0.0
    hi, lo = _row_sum(x, m)
    return m, bad, hi, lo, _log_of_sum(hi, lo)


@njit(inline="always", cache=True)
def _neg_log_softmax(v, m, L):
    """``-log_softmax = (m - v) + L`` as two non-negative terms."""
    d, e = _shift(v, m)
    return (-d) + (L - e)


# ----------------------------------------------------------------------------- batch kernels
@njit(parallel=True, cache=True)
def logsumexp_rows(x, out):
    """``out[n] = log(sum_i exp(x[n, i]))``."""
    for n in prange(x.shape[0]):
        m, bad, hi, lo, L = _row_stats(x[n])
        if bad:
            out[n] = NAN
        elif m == -INF:
            out[n] = -INF
        else:
            out[n] = m + L


@njit(parallel=True, cache=True)
def log_softmax_rows(x, out):
    """``out[n, i] = x[n, i] - logsumexp(x[n])``."""
    for n in prange(x.shape[0]):
        row = x[n]
        m, bad, hi, lo, L = _row_stats(row)
        o = out[n]
        if bad or m == -INF:
            for i in range(row.shape[0]):
                o[i] = NAN
            continue
        for i in range(row.shape[0]):
            o[i] = -_neg_log_softmax(np.float64(row[i]), m, L)


@njit(parallel=True, cache=True)
def softmax_rows(x, out):
    """``out[n, i] = exp(x[n, i]) / sum_j exp(x[n, j])``."""
    for n in prange(x.shape[0]):
        row = x[n]
        m, bad, hi, lo, L = _row_stats(row)
        o = out[n]
        if bad or m == -INF:
            for i in range(row.shape[0]):
                o[i] = NAN
            continue
        c = _recip(hi, lo)
        for i in range(row.shape[0]):
            tt, s1, s2 = _term(np.float64(row[i]), m)
            o[i] = (fma(tt, c, c) * s1) * s2  # c*(1+tt) rounded once; *s1 exact; *s2 rounds if subnormal


# -- cross-entropy ---------------------------------------------------------------------------
# Target coefficients: the loss of a row is  sum_c a_c * (-log_softmax_c)  with
#   class index y, smoothing eps:  a_c = w_y (1 - eps) [c == y] + w_c eps / C
#   probabilities t, smoothing eps: a_c = w_c ((1 - eps) t_c + eps / C)
# and its gradient in the logits is  g_i = p_i * A - a_i,  A = sum_c a_c.


@njit(inline="always", cache=True)
def _label_loss(row, y, m, L, w, eps, weight, has_weight):
    """Loss of one row with class index ``y`` (label smoothing ``eps``), before reduction."""
    ly = _neg_log_softmax(np.float64(row[y]), m, L)
    if eps == 0.0:
        return w * ly
    C = row.shape[0]
    # smooth part: sum_c w_c * (-log_softmax_c), non-negative terms, double-double sum
    hi = 0.0
    lo = 0.0
    for c in range(C):
        lc = _neg_log_softmax(np.float64(row[c]), m, L)
        if has_weight:
            lc = lc * weight[c]
        hi, lo = dd_add_inf(hi, lo, lc)
    one_m_eps_hi, one_m_eps_lo = two_sum(1.0, -eps)  # 1 - eps exactly
    main = w * ly * one_m_eps_hi + w * ly * one_m_eps_lo
    smooth = (hi + lo) * eps / C
    return main + smooth


@njit(parallel=True, cache=True)
def cross_entropy_labels_rows(x, labels, weight, has_weight, ignore_index, eps, out):
    """Per-row loss for class-index targets (0 for ignored rows), in float64."""
    for n in prange(x.shape[0]):
        y = labels[n]
        if y == ignore_index:
            out[n] = 0.0
            continue
        row = x[n]
        m, bad, hi, lo, L = _row_stats(row)
        if bad or m == -INF:
            out[n] = NAN
            continue
        w = weight[y] if has_weight else 1.0
        out[n] = _label_loss(row, y, m, L, w, eps, weight, has_weight)


@njit(parallel=True, cache=True)
def cross_entropy_probs_rows(x, t, weight, has_weight, eps, out):
    """Per-row loss for probability targets (label smoothing applied to ``t``), in float64."""
    for n in prange(x.shape[0]):
        row = x[n]
        trow = t[n]
        C = row.shape[0]
        m, bad, hi, lo, L = _row_stats(row)
        if bad or m == -INF:
            out[n] = NAN
            continue
        shi = 0.0
        slo = 0.0
        for c in range(C):
            a = np.float64(trow[c])
            if eps != 0.0:
                a = a * (1.0 - eps) + eps / C
            if has_weight:
                a = a * weight[c]
            if a == 0.0:  # 0 * inf = 0 here: a masked class with zero target costs nothing
                continue
            lc = _neg_log_softmax(np.float64(row[c]), m, L)
            shi, slo = dd_add_inf(shi, slo, a * lc)
        out[n] = shi + slo


@njit(cache=True)
def sum_fixed_order(v):
    """Double-double sum of a float64 vector in index order (bitwise reproducible)."""
    hi = 0.0
    lo = 0.0
    for i in range(v.shape[0]):
        hi, lo = dd_add_inf(hi, lo, v[i])
    return hi, lo


@njit(cache=True)
def label_weight_total(labels, weight, has_weight, ignore_index):
    """``sum_n weight[y_n]`` over non-ignored items, double-double, fixed order."""
    hi = 0.0
    lo = 0.0
    for n in range(labels.shape[0]):
        y = labels[n]
        if y == ignore_index:
            continue
        hi, lo = dd_add(hi, lo, weight[y] if has_weight else 1.0)
    return hi, lo


@njit(parallel=True, cache=True)
def cross_entropy_labels_grad_rows(x, labels, weight, has_weight, ignore_index, eps, denom, out, grad):
    """Fused loss and gradient for class-index targets.

    ``out[n]`` is the row's loss (0 if ignored); ``grad[n, i] = d loss_n / d x[n, i] / denom``
    (``denom`` is the mean's divisor, or 1).
    ``grad`` may be ``x`` itself: each row's statistics are complete before any entry of
    that row is written, and entry i is read before it is written.
    """
    for n in prange(x.shape[0]):
        y = labels[n]
        row = x[n]
        g = grad[n]
        C = row.shape[0]
        if y == ignore_index:
            out[n] = 0.0
            for i in range(C):
                g[i] = 0.0
            continue
        m, bad, hi, lo, L = _row_stats(row)
        if bad or m == -INF:
            out[n] = NAN
            for i in range(C):
                g[i] = NAN
            continue
        w = weight[y] if has_weight else 1.0
        out[n] = _label_loss(row, y, m, L, w, eps, weight, has_weight)
        if eps == 0.0:
            # g_i = scale*w*p_i for i != y;  g_y = -scale*w*(S - e_y)/S  (no cancellation)
            ty, s1y, s2y = _term(np.float64(row[y]), m)
            ey = ((1.0 + ty) * s1y) * s2y
            a, b = two_sum(hi, -ey)
            rest = a + (b + lo)  # S - exp(x_y - m) >= 0
            c = w * _recip_scaled(hi, lo, denom)  # w / (S * denom): two roundings
            gy = -(rest * c)
            for i in range(C):
                tt, s1, s2 = _term(np.float64(row[i]), m)
                g[i] = (fma(tt, c, c) * s1) * s2
            g[y] = gy
        else:
            # a_c = w (1-eps) [c == y] + w_c eps / C ;  A = w (1-eps) + eps/C * sum_c w_c
            wsum = 0.0
            if has_weight:
                for c_ in range(C):
                    wsum += weight[c_]
            else:
                wsum = np.float64(C)
            A = w * (1.0 - eps) + eps / C * wsum
            cA = A * _recip_scaled(hi, lo, denom)
            ay = w * (1.0 - eps) / denom
            for i in range(C):
                tt, s1, s2 = _term(np.float64(row[i]), m)
                pA = (fma(tt, cA, cA) * s1) * s2
                ai = eps / C * (weight[i] if has_weight else 1.0) / denom
                if i == y:
                    ai += ay
                g[i] = pA - ai


@njit(parallel=True, cache=True)
def cross_entropy_probs_grad_rows(x, t, weight, has_weight, eps, denom, out, grad):
    """Fused loss and gradient for probability targets (``grad`` may be ``x``)."""
    for n in prange(x.shape[0]):
        row = x[n]
        trow = t[n]
        g = grad[n]
        C = row.shape[0]
        m, bad, hi, lo, L = _row_stats(row)
        if bad or m == -INF:
            out[n] = NAN
            for i in range(C):
                g[i] = NAN
            continue
        shi = 0.0
        slo = 0.0
        Ahi = 0.0
        Alo = 0.0
        for c in range(C):
            a = np.float64(trow[c])
            if eps != 0.0:
                a = a * (1.0 - eps) + eps / C
            if has_weight:
                a = a * weight[c]
            Ahi, Alo = dd_add(Ahi, Alo, a)
            if a == 0.0:
                continue
            lc = _neg_log_softmax(np.float64(row[c]), m, L)
            shi, slo = dd_add_inf(shi, slo, a * lc)
        out[n] = shi + slo
        cA = (Ahi + Alo) * _recip_scaled(hi, lo, denom)
        for i in range(C):
            a = np.float64(trow[i])
            if eps != 0.0:
                a = a * (1.0 - eps) + eps / C
            if has_weight:
                a = a * weight[i]
            tt, s1, s2 = _term(np.float64(row[i]), m)
            g[i] = (fma(tt, cA, cA) * s1) * s2 - a / denom
