"""Kernels of the softmax cross-entropy: the per-row loss for class indices and for probability
targets (with class weights and label smoothing), the fused loss and gradient, and the
fixed-order sums of the reductions.

They build on the row statistics of :mod:`crossent.kernels.softmax` (``_row_stats``: the max,
the terms ``T_i + E_i``, ``S`` and ``L = log S``) and share its tiers and tasks of rows; the
Python layer is ``crossent.loss``.

Target coefficients: the loss of a row is ``sum_c a_c (-log_softmax_c)`` with

* class index ``y``, smoothing ``eps``: ``a_c = w_y (1 - eps) [c == y] + w_c eps / C``;
* probabilities ``t``, smoothing ``eps``: ``a_c = w_c ((1 - eps) t_c + eps / C)``;

and its gradient in the logits is ``g_i = p_i A - a_i``, ``A = sum_c a_c``, divided by the
mean's denominator. A zero denominator (every weight of a "mean" zero) gives a nan gradient,
as the kernels' error model makes a division by zero an IEEE operation.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._base import (DD_ACC, INF, NAN, dd_div, dd_sum, dd_sum2, fast_two_sum, fma, jit,
                    two_prod, two_sum, wide_vectors)
from .softmax import (INV_SCALE, NORMAL_MIN, OK, ROWS_PER_TASK, SCALE, TINY, _fill, _round_cr,
                      _round_cr_abs, _row_stats, _scale_dd, _scaled_terms, _scaled_terms_cr,
                      _shift, _term_of, _term_rows)


@jit(inline=True)
def _smoothing_parts(eps, C):
    """``(qh, ql, omh, oml)``: ``eps / C = qh + ql`` to ``2**-104`` and ``1 - eps = omh + oml``
    exactly (TwoSum), the two factors of every smoothed coefficient."""
    qh = eps / C
    ql = fma(-qh, np.float64(C), eps) / C  # the exact remainder of the division, divided
    omh, oml = two_sum(1.0, -eps)
    return qh, ql, omh, oml


@jit(inline=True)
def _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3, acc, odd,
                cr=0.0):
    """Loss of one row with class index ``y`` (label smoothing ``eps``), before reduction
    (``cr``: the rounding test of the correctly rounded path, ``_round_cr``: nan when the
    rounding cannot be decided).

    With smoothing and class weights it leaves the coefficients ``a_c`` in ``ah`` (+ ``al``),
    which the gradient kernel reuses; without weights (closed form) it forms none."""
    if eps == 0.0:
        v = np.float64(row[y])
        if v == -INF:
            return INF if w != 0.0 else 0.0  # masked target class: +inf (a zero weight costs 0)
        d, e = _shift(v, m)
        if w == 1.0:
            a, b = two_sum(-d, Lh)
            return _round_cr(a, b + (Ll - e), odd, cr)
        if d == 0.0:  # y is a max entry: the loss is w L, formed on 2**B L (L may be subnormal)
            p = w * Lsh
            pe = fma(w, Lsh, -p)
            r = _round_cr(p, pe + w * Lsl, odd, cr) * INV_SCALE
            # the scaling back rounds again below 2**-1022: the slow path decides those
            return NAN if (cr != 0.0 and 0.0 < abs(r) < NORMAL_MIN) else r
        # w * ((-d) + L): TwoProduct of the large part, so that one rounding is left
        a, b = two_sum(-d, Lh)
        p = w * a
        pe = fma(w, a, -p)
        return _round_cr(p, pe + w * (b + (Ll - e)), odd, cr)
    if not has_weight:
        return _smoothed_label_loss(row, y, m, Lh, Ll, eps, b3, al, acc, odd, cr)
    _label_coeffs(y, w, eps, weight, has_weight, ah, al)
    return _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd, cr)


@jit
def _smoothed_label_loss(row, y, m, Lh, Ll, eps, bu, be, acc, odd, cr=0.0):
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
    return _round_cr(a, (b + c2) + ((re + pe) + Ll), odd, cr)


@jit
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


@jit
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


@jit
def _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd, cr=0.0):
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
    return _round_cr(t, te + (pl + lo + qe), odd, cr)


@jit
def _soft_grad(bt, be, hi, lo, a, denom, acc, g, fast):
    """``g_i = (A p_i - a_i) / denom`` for soft targets, ``A = sum_c a_c`` (double-double).

    The large parts ``c T_i`` and ``a_i / denom`` (both to double-double) meet in one FMA,
    so where they cancel the difference is exact before it is rounded; with one class
    (``p = 1``, ``A = a_0``) the gradient is exactly 0. ``g`` may be the logits (not read)."""
    wide_vectors()
    Ah, Al = dd_sum(a, acc)
    ch, cl = _scale_dd(Ah, Al, hi, lo, denom)
    for i in range(g.shape[0]):
        t = _term_of(bt[i])
        sh = a[i] / denom
        sl = fma(-sh, denom, a[i]) / denom  # a_i / denom = sh + sl to 2**-104
        ei = 0.0 if fast else be[i]
        g[i] = fma(ch, t, -sh) + (fma(ch, ei, cl * t) - sl)


# ----------------------------------------------------------------------------- batch kernels
@jit(inline=True)
def _task_scratch(C, nc):
    """A task's scratch rows: the terms (``_term_rows``), ``nc``-long rows for the per-class loss
    terms (``b3``) and the coefficients ``a_c = ah[c] + al[c]``, and the lanes of the
    double-double sums (``acc``). Class indices need the ``nc = C`` rows only with smoothing."""
    bt, be = _term_rows(C)
    return bt, be, np.empty(nc), np.empty(nc), np.empty(nc), np.empty(DD_ACC)


@jit(parallel=True)
def cross_entropy_labels_rows(x, labels, weight, has_weight, ignore_index, eps, odd, fast, out,
                              cr=0.0, slow=None):
    """Per-row loss for class-index targets (0 for ignored rows), in float64.

    ``slow`` given: the correctly rounded path with the bound ``cr``
    (``crossent.kernels.softmax.logsumexp_rows``, ``ACCURATE_IF_SLOW``): a row whose rounding
    cannot be decided gets ``slow[n] = 1``."""
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be, b3, ah, al, acc = _task_scratch(C, C if eps != 0.0 else 0)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            if y == ignore_index:
                out[n] = 0.0
                continue
            row = x[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast, accurate)
            if st != OK:
                out[n] = NAN
                continue
            w = weight[y] if has_weight else 1.0
            r = _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3,
                            acc, odd, cr)
            out[n] = r
            if slow is not None:
                slow[n] = r != r


@jit(parallel=True)
def cross_entropy_probs_rows(x, t, weight, has_weight, eps, odd, fast, out, cr=0.0, slow=None):
    """Per-row loss for probability targets (label smoothing applied to ``t``), in float64
    (``cr``, ``slow``: as :func:`cross_entropy_labels_rows`)."""
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be, b3, ah, al, acc = _task_scratch(C, C)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast, accurate)
            if st != OK:
                out[n] = NAN
                continue
            _prob_coeffs(t[n], eps, weight, has_weight, ah, al)
            r = _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, odd, cr)
            out[n] = r
            if slow is not None:
                slow[n] = r != r


@jit
def _label_grad_cr(bt, be, y, w, hi, lo, dh, dl, acc, g, cr):
    """The gradient row of the correctly rounded path (class index ``y``, no smoothing):
    ``g_i = c T_i`` for ``i != y`` and ``g_y = -c (S - T_y)``, ``c = w / (S D)`` with the
    denominator ``D = dh + dl`` a double-double; ``S - T_y`` is summed on its own (the terms
    without ``y``'s, a second ``dd_sum2``), so that it carries its terms' relative error
    however close ``p_y`` is to 1. Every entry goes through the rounding test with twice
    the relative bound (a term's error and ``S``'s); returns whether all passed."""
    ph = hi * dh
    pl = fma(hi, dh, -ph) + (lo * dh + hi * dl)  # S D to about 2**-105 (scaled by 2**B)
    ch, cl = dd_div(w, 0.0, ph, pl)
    ok = _scaled_terms_cr(bt, be, ch, cl, g, 2.0 * cr)
    C = g.shape[0]
    ty = bt[y]
    ey = be[y]
    others = 0  # the max entries other than y: their terms are 2**B exactly, left out of bt
    for i in range(C):
        others += 1 if (bt[i] == 0.0 and i != y) else 0
    bt[y] = 0.0
    be[y] = 0.0
    rh, rl = dd_sum2(bt, be, acc)
    bt[y] = ty
    be[y] = ey
    rh, e = two_sum(np.float64(others) * SCALE, rh)
    rl += e
    qh, ql = two_prod(ch, rh)
    gy = -_round_cr(qh, ql + (ch * rl + cl * rh), False, 2.0 * cr)
    g[y] = gy
    return ok and gy == gy


@jit(parallel=True)
def cross_entropy_labels_grad_rows(x, labels, weight, has_weight, ignore_index, eps, denom, odd, fast, out, grad,
                                   cr=0.0, slow=None, denom_lo=0.0):
    """Fused loss and gradient for class-index targets.

    ``out[n]`` is the row's loss (0 if ignored); ``grad[n, i] = d loss_n / d x[n, i] / denom``
    (``denom`` is the mean's divisor, or 1). ``grad`` may be ``x`` itself: a row's loss and
    terms are complete before any entry of that row is written.

    ``slow`` given (no smoothing): the correctly rounded path with the bound ``cr``, with the
    divisor the double-double ``denom + denom_lo``; a row whose loss or gradient entries
    cannot be decided gets ``slow[n] = 1`` (``crossent.kernels.softmax.logsumexp_rows``,
    ``ACCURATE_IF_SLOW``).
    """
    wide_vectors()
    N, C = x.shape
    accurate = slow is not None
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be, b3, ah, al, acc = _task_scratch(C, C if eps != 0.0 else 0)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            y = labels[n]
            row = x[n]
            g = grad[n]
            if y == ignore_index:
                out[n] = 0.0
                _fill(g, 0.0)
                continue
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast, accurate)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                continue
            w = weight[y] if has_weight else 1.0
            out[n] = _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al, b3,
                                 acc, odd, cr)
            if slow is not None:
                ok = _label_grad_cr(bt, be, y, w, hi, lo, denom, denom_lo, acc, g, cr)
                slow[n] = not ok or out[n] != out[n]
            elif eps == 0.0:
                # g_i = w p_i / denom for i != y;  g_y = -w (S - exp(x_y - m)) / (S denom)
                ch, cl = _scale_dd(w, 0.0, hi, lo, denom)
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


@jit(parallel=True)
def cross_entropy_probs_grad_rows(x, t, weight, has_weight, eps, denom, odd, fast, out, grad):
    """Fused loss and gradient for probability targets (``grad`` may be ``x``)."""
    wide_vectors()
    N, C = x.shape
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be, b3, ah, al, acc = _task_scratch(C, C)
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


@jit
def _soft_grad_cr(bt, be, hi, lo, ah, al, dh, dl, acc, g, cr):
    """The gradient row of the correctly rounded path for soft coefficients (probability
    targets, label smoothing): ``g_i = (A P_i - a_i) / D`` with ``a_i = ah[i] + al[i]``,
    ``A = sum_c a_c`` and the divisor ``D = dh + dl`` (double-doubles). ``A P_i / D`` is
    ``c (T_i + E_i)``, ``c = A / (S D)``, and ``a_i / D`` is ``a_i (1/D)``, both formed
    exactly to first order (TwoProduct) and subtracted by TwoSum, so the difference carries
    no rounding error of its own where the two cancel. The error is therefore absolute:
    ``cr`` times ``|A P_i / D|`` (``cr`` covers a term's error, ``S``'s and ``A``'s) plus
    ``2**-96 |a_i / D|`` (the coefficient's and ``1/D``'s) plus ``2 TINY`` (products in the
    subnormal range); every entry goes through ``_round_cr_abs`` with it. A ``c`` below
    ``2**-960`` (a tiny ``A``: its low part would be subnormal) fails the row. Returns
    whether every entry passed."""
    C = g.shape[0]
    Ah, Al = dd_sum(ah[:C], acc)
    alsum = 0.0
    for c in range(C):
        alsum += al[c]
    Ah, Al = fast_two_sum(Ah, Al + alsum)
    ph = hi * dh
    pl = fma(hi, dh, -ph) + (lo * dh + hi * dl)  # S D to about 2**-105 (scaled by 2**B)
    ch, cl = dd_div(Ah, Al, ph, pl)
    rh, rl = dd_div(1.0, 0.0, dh, dl)
    if ch != 0.0 and abs(ch) < 2.0**-960:
        return False
    bad = 0
    for i in range(C):
        t = _term_of(bt[i])
        xh, xl = two_prod(ch, t)
        xl += fma(ch, be[i], cl * t)
        yh, yl = two_prod(ah[i], rh)
        yl += ah[i] * rl + al[i] * rh
        s, se = two_sum(xh, -yh)
        err = (cr * abs(xh) + 2.0**-96 * abs(yh)) * (1.0 + 2.0**-40)
        if xh != 0.0 or yh != 0.0:  # both 0: A = 0 = a_i, the entry is exactly 0
            err += 2.0 * TINY
        r = _round_cr_abs(s, se + (xl - yl), err)
        bad += 1 if r != r else 0
        g[i] = r
    return bad == 0


@jit(parallel=True)
def cross_entropy_soft_grad_rows_cr(x, labels, t, weight, has_weight, ignore_index, eps, dh, dl,
                                    cr, out, grad, slow):
    """Fused loss and gradient of the correctly rounded path for soft coefficients: class
    indices ``labels`` with label smoothing ``eps > 0`` (``t`` unused), or probability
    targets ``t`` (``labels`` empty) with any ``eps``; ``D = dh + dl`` the exact divisor.
    ``cr``: the relative bound of the loss (``_round_cr``); the gradient entries use
    ``2 cr + C 2**-103 + 2**-96`` of ``|A P_i / D|`` (``_soft_grad_cr``). A row whose loss
    or any entry cannot be decided gets ``slow[n] = 1``. ``grad`` must not alias ``x``."""
    wide_vectors()
    N, C = x.shape
    probs = labels.shape[0] == 0
    gcr = 2.0 * cr + C * 2.0**-103 + 2.0**-96
    for task in prange((N + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        bt, be, b3, ah, al, acc = _task_scratch(C, C)
        for n in range(task * ROWS_PER_TASK, min(N, (task + 1) * ROWS_PER_TASK)):
            row = x[n]
            g = grad[n]
            slow[n] = 0
            y = 0
            if not probs:
                y = labels[n]
                if y == ignore_index:
                    out[n] = 0.0
                    _fill(g, 0.0)
                    continue
            st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, False, True)
            if st != OK:
                out[n] = NAN
                _fill(g, NAN)
                slow[n] = 1
                continue
            if probs:
                _prob_coeffs(t[n], eps, weight, has_weight, ah, al)
                r = _soft_loss(row, m, Lh, Ll, ah, al, b3, acc, False, cr)
            else:
                w = weight[y] if has_weight else 1.0
                r = _label_loss(row, y, m, Lh, Ll, Lsh, Lsl, w, eps, weight, has_weight, ah, al,
                                b3, acc, False, cr)
                _label_coeffs(y, w, eps, weight, has_weight, ah, al)
            out[n] = r
            ok = _soft_grad_cr(bt, be, hi, lo, ah, al, dh, dl, acc, g, gcr)
            slow[n] = not ok or r != r
