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
4. ``S = sum_i exp(x_i - m)`` in double-double: eight TwoSum lanes in a fixed order
   (``eft.dd_sum``), so the result does not depend on threads or batch splits.
5. ``L = log(S) = log1p(S - 1)`` with ``S - 1`` formed exactly from the double-double,
   so a confident row keeps every digit of ``S - 1`` (the loss of 1e-20 is not 0).
6. ``-log_softmax_i = (m - x_i) + L = (-d_i) + (L - e_i)``: two non-negative terms, no
   cancellation. ``softmax_i = T_i * (1/S)`` with ``T_i`` the rounded term of step 3.

Each batch kernel walks the rows in tasks of ``ROWS_PER_TASK`` rows (``prange`` over tasks);
a task owns its scratch rows (``buf``: the terms of step 3, ``buf2``: per-class loss terms),
so that every loop over a row is a plain, vectorizable loop over contiguous memory.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .eft import dd_add, dd_add_inf, dd_sum, fast_two_sum, fma, two_sum

from .exp import exp_parts_f64 as exp_parts

NAN = np.nan
INF = np.inf


ROWS_PER_TASK = 8  # rows per prange task: each task allocates its scratch rows once

OK = 0  # row status: finite max, finite sum
NAN_ROW = 1  # a nan or +inf in the row: every output of the row is nan
MASKED_ROW = 2  # every entry is -inf: logsumexp -inf, everything else nan


# ----------------------------------------------------------------------------- row helpers
@njit(cache=True, fastmath={"nnan", "nsz"})
def _row_max(x):
    """``max_i x_i``, vectorized. Not exact in the presence of nan (``nnan`` lets LLVM use
    ``maxpd``); a nan is caught later because its term, hence the row's sum, is nan."""
    m = -INF
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        m = v if v > m else m
    return m


@njit(cache=True)
def _has_nan(x):
    for i in range(x.shape[0]):
        if x[i] != x[i]:
            return True
    return False


@njit(inline="always", cache=True)
def _shift(v, m):
    """``(d, e)`` with ``d + e = v - m`` exactly; ``e = 0`` when ``v`` is -inf."""
    d, e = two_sum(v, -m)
    e = 0.0 if v == -INF else e
    return d, e


@njit(inline="always", cache=True)
def _term_parts(v, m):
    """``exp(v - m) = s1 * s2 * (1 + tt)`` with the shift's rounding error folded into tt.

    ``exp(d + e) = exp(d) * (1 + e + O(e**2))`` and ``|e| <= 2**-53 * 750`` (|d| <= 750
    after the exp's clamp; beyond, the term is 0), so the dropped ``e**2/2`` is below
    ``2**-87`` relative.
    """
    d, e = _shift(v, m)
    t, s1, s2 = exp_parts(d)
    tt = t + fma(e, t, e)  # t + e*(1 + t): error <= u*|tt| + |e|*u
    return tt, s1, s2


@njit(inline="always", cache=True)
def _fill_terms(x, m, buf):
    """``buf[i] = T_i = fl(exp(x_i - m))``; the max term is exactly 1."""
    for i in range(x.shape[0]):
        tt, s1, s2 = _term_parts(np.float64(x[i]), m)
        buf[i] = ((1.0 + tt) * s1) * s2  # 1 + tt rounds (u/2); *s1 exact; *s2 rounds only if subnormal


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
def _div_scaled(w, hi, lo, k):
    """``w / ((hi + lo) * k)`` rounded once up to 2**-100 (a double-double division)."""
    ph = hi * k
    pl = fma(hi, k, -ph) + lo * k
    q = w / ph
    r = fma(-q, ph, w) - q * pl  # w - q*(ph + pl), to first order
    return q + r / ph


@njit(inline="always", cache=True)
def _row_stats(x, buf, acc):
    """``(status, m, hi, lo, L)`` of one row; fills ``buf[:C]`` with the terms ``T_i``."""
    m = _row_max(x)
    if m == INF:
        return NAN_ROW, m, 0.0, 0.0, 0.0
    if m == -INF or m != m:
        if _has_nan(x):
            return NAN_ROW, m, 0.0, 0.0, 0.0
        return MASKED_ROW, m, 0.0, 0.0, 0.0
    C = x.shape[0]
    b = buf[:C]
    _fill_terms(x, m, b)
    hi, lo = dd_sum(b, acc)
    if hi != hi:  # a nan in the row
        return NAN_ROW, m, hi, lo, 0.0
    return OK, m, hi, lo, _log_of_sum(hi, lo)


@njit(inline="always", cache=True)
def _neg_log_softmax(v, m, L):
    """``-log_softmax = (m - v) + L`` as two non-negative terms."""
    d, e = _shift(v, m)
    return (-d) + (L - e)


@njit(inline="always", cache=True)
def _fill(o, value):
    for i in range(o.shape[0]):
        o[i] = value


@njit(inline="always", cache=True)
def _scaled_terms(x, m, buf, c, o, recompute):
    """``o[i] = c * exp(x_i - m)``.

    From the stored terms (``T_i * c``: three roundings, <= 3.1u) unless ``recompute`` or
    ``c > 1``; then recomputed as ``c * (1 + tt)`` with one FMA before the power-of-two
    scaling (two roundings, <= 2.1u), which also keeps a term below the float64 range from
    being flushed before a large ``c`` brings it back."""
    C = x.shape[0]
    if c <= 1.0 and not recompute:
        for i in range(C):
            o[i] = buf[i] * c  # T_i (<= 0.6u) times c: one rounding
    else:
        for i in range(C):
            tt, s1, s2 = _term_parts(np.float64(x[i]), m)
            o[i] = (fma(tt, c, c) * s1) * s2


@njit(inline="always", cache=True)
def _scaled_terms_minus(x, m, buf, c, sub, o):
    """``o[i] = c * exp(x_i - m) - sub[i]``, the difference formed in float64 and rounded
    once into ``o`` (a float32 ``o`` must not round ``c * exp`` before the subtraction)."""
    C = x.shape[0]
    if c <= 1.0:
        for i in range(C):
            o[i] = buf[i] * c - sub[i]
    else:
        for i in range(C):
            tt, s1, s2 = _term_parts(np.float64(x[i]), m)
            o[i] = (fma(tt, c, c) * s1) * s2 - sub[i]


# ----------------------------------------------------------------------------- batch kernels
@njit(parallel=True, cache=True)
def logsumexp_rows(x, out):
    """``out[n] = log(sum_i exp(x[n, i]))``."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            st, m, hi, lo, L = _row_stats(x[n], buf, acc)
            if st == NAN_ROW:
                out[n] = NAN
            elif st == MASKED_ROW:
                out[n] = -INF
            else:
                out[n] = m + L


@njit(parallel=True, cache=True)
def log_softmax_rows(x, out):
    """``out[n, i] = x[n, i] - logsumexp(x[n])``."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            o = out[n]
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                _fill(o, NAN)
                continue
            for i in range(C):
                o[i] = -_neg_log_softmax(np.float64(row[i]), m, L)


@njit(parallel=True, cache=True)
def softmax_rows(x, out):
    """``out[n, i] = exp(x[n, i]) / sum_j exp(x[n, j])``."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            o = out[n]
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                _fill(o, NAN)
                continue
            _scaled_terms(row, m, buf, _recip(hi, lo), o, True)  # c = 1/S: the FMA path, <= 2.1u


# -- cross-entropy ---------------------------------------------------------------------------
# Target coefficients: the loss of a row is  sum_c a_c * (-log_softmax_c)  with
#   class index y, smoothing eps:  a_c = w_y (1 - eps) [c == y] + w_c eps / C
#   probabilities t, smoothing eps: a_c = w_c ((1 - eps) t_c + eps / C)
# and its gradient in the logits is  g_i = p_i * A - a_i,  A = sum_c a_c.


@njit(inline="always", cache=True)
def _label_loss(row, y, m, L, w, eps, weight, has_weight, buf2, acc):
    """Loss of one row with class index ``y`` (label smoothing ``eps``), before reduction."""
    ly = _neg_log_softmax(np.float64(row[y]), m, L)
    if eps == 0.0:
        return w * ly
    C = row.shape[0]
    b = buf2[:C]
    for c in range(C):  # smooth part: sum_c w_c * (-log_softmax_c), non-negative terms
        lc = _neg_log_softmax(np.float64(row[c]), m, L)
        b[c] = lc * weight[c] if has_weight else lc
    hi, lo = dd_sum(b, acc)
    one_m_eps_hi, one_m_eps_lo = two_sum(1.0, -eps)  # 1 - eps exactly
    main = w * ly * one_m_eps_hi + w * ly * one_m_eps_lo
    smooth = (hi + lo) * eps / C
    return main + smooth


@njit(inline="always", cache=True)
def _probs_loss(row, trow, m, L, eps, weight, has_weight, buf2, acc):
    """``(loss, A)`` of one row with probability targets: ``sum_c a_c (-log_softmax_c)``
    and ``A = sum_c a_c``, both in double-double over non-negative terms."""
    C = row.shape[0]
    b = buf2[:C]
    for c in range(C):
        a = np.float64(trow[c])
        if eps != 0.0:
            a = a * (1.0 - eps) + eps / C
        if has_weight:
            a = a * weight[c]
        b[c] = a
    ahi, alo = dd_sum(b, acc)
    for c in range(C):
        a = b[c]
        lc = _neg_log_softmax(np.float64(row[c]), m, L)
        b[c] = 0.0 if a == 0.0 else a * lc  # a masked class with zero target costs nothing
    hi, lo = dd_sum(b, acc)
    return hi + lo, ahi + alo


@njit(parallel=True, cache=True)
def cross_entropy_labels_rows(x, labels, weight, has_weight, ignore_index, eps, out):
    """Per-row loss for class-index targets (0 for ignored rows), in float64."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        buf2 = np.empty(C if eps != 0.0 else 0)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            if y == ignore_index:
                out[n] = 0.0
                continue
            row = x[n]
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                out[n] = NAN
                continue
            w = weight[y] if has_weight else 1.0
            out[n] = _label_loss(row, y, m, L, w, eps, weight, has_weight, buf2, acc)


@njit(parallel=True, cache=True)
def cross_entropy_probs_rows(x, t, weight, has_weight, eps, out):
    """Per-row loss for probability targets (label smoothing applied to ``t``), in float64."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        buf2 = np.empty(C)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                out[n] = NAN
                continue
            out[n], A = _probs_loss(row, t[n], m, L, eps, weight, has_weight, buf2, acc)


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
    (``denom`` is the mean's divisor, or 1). ``grad`` may be ``x`` itself: a row's loss and
    terms are complete before any entry of that row is written.
    """
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        buf2 = np.empty(C if eps != 0.0 else 0)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            row = x[n]
            g = grad[n]
            if y == ignore_index:
                out[n] = 0.0
                _fill(g, 0.0)
                continue
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                continue
            w = weight[y] if has_weight else 1.0
            out[n] = _label_loss(row, y, m, L, w, eps, weight, has_weight, buf2, acc)
            if eps == 0.0:
                # g_i = w p_i / denom for i != y;  g_y = -w (S - T_y) / (S denom): no cancellation
                ty = buf[y]
                a, b = two_sum(hi, -ty)
                rest = a + (b + lo)  # S - T_y >= 0 (>= 1 unless y is the argmax, where T_y = 1)
                c = _div_scaled(w, hi, lo, denom)  # w / (S * denom): one rounding
                gy = -(rest * c)
                _scaled_terms(row, m, buf, c, g, False)
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
                cA = _div_scaled(A, hi, lo, denom)
                base = eps / C / denom
                sub = buf2[:C]  # a_i / denom (the loss is already computed: buf2 is free)
                for i in range(C):
                    sub[i] = base * (weight[i] if has_weight else 1.0)
                sub[y] += w * (1.0 - eps) / denom
                _scaled_terms_minus(row, m, buf, cA, sub, g)


@njit(parallel=True, cache=True)
def cross_entropy_probs_grad_rows(x, t, weight, has_weight, eps, denom, out, grad):
    """Fused loss and gradient for probability targets (``grad`` may be ``x``)."""
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        buf = np.empty(C)
        buf2 = np.empty(C)
        acc = np.empty(16)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            trow = t[n]
            g = grad[n]
            st, m, hi, lo, L = _row_stats(row, buf, acc)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                continue
            out[n], A = _probs_loss(row, trow, m, L, eps, weight, has_weight, buf2, acc)
            cA = _div_scaled(A, hi, lo, denom)
            sub = buf2[:C]  # a_i / denom
            for i in range(C):
                a = np.float64(trow[i])
                if eps != 0.0:
                    a = a * (1.0 - eps) + eps / C
                if has_weight:
                    a = a * weight[i]
                sub[i] = a / denom
            _scaled_terms_minus(row, m, buf, cA, sub, g)
