"""Kernels for short rows (few classes): blocks of ``R`` rows transposed so that the row
algorithm runs across rows, one row per vector lane.

On a row of 10 classes the wide-row kernels of :mod:`crossent.kernels.softmax` spend most of
their time on per-row fixed costs: the scalar tails of the vector loops, the padded lane sums
and their combination, and the scalar double-double log ``_log_of_sum`` (with its branch and
``frexp``). Here a block of ``R`` rows is copied into a scratch array ``xt[c * R + r]``
(class ``c`` of row ``r``, in float64), and every step is a loop over the ``R`` lanes with
the same operations in every lane, which LLVM vectorizes:

1. ``m_r = max_c x_rc`` (exact; nan entries are skipped here and caught in step 4);
2. the terms ``2**SCALE_EXP exp(x_rc - m_r) = T + E`` exactly as the wide kernels form them
   (``_term_pair``; the short exp and no error terms for float32/float16 inputs), 0 at the
   max entries, which are counted;
3. ``S - cnt`` summed in double-double by one TwoSum chain per row, in class order (Sum2,
   Ogita, Rump & Oishi 2005: the same bound as the wide kernels' fixed lanes, and a fixed
   order, so a row's result depends on nothing but the row);
4. ``L = log S`` in double-double by :func:`_log_lanes`, branch-free;
5. the outputs, as the wide kernels form them from ``m``, ``L`` and the terms.

A row whose max is not finite or whose sum is not (nan, +inf, every entry -inf) gets status
1 and is left to the caller, which recomputes it with the wide kernel: the special values
follow one code path. Results of the other rows are within the same error bounds as the
wide kernels' (docs/accuracy.md#short-rows), not necessarily bitwise equal to them; the
Python layer picks the kernel by the row length alone, so a given row always goes through
the same one, whatever the batch, its split or the thread count.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._base import (INF, LN2_CW_HI, LN2_CW_LO, _f64_as_i64, _i64_as_f64, dd_div, fast_two_sum,
                    fma, jit, two_sum)
from .exp import exp_parts_f64_short as exp_parts_short
from .softmax import (_ATANH_TERMS, INV_SCALE, SCALE, _neg_log_softmax, _round_sum, _scale_dd,
                      _term_of, _term_pair)

R = 16  # rows per block: LLVM vectorizes the loops over the lanes (4 x 4 doubles on AVX2)
# prange tasks: at least 2 blocks each and at most MAX_TASKS of them, since each task allocates
# its scratch (with 2-block tasks, one allocation per 32 rows cost about a quarter of the
# parallel kernel's time at 10 classes). The split does not change a bit: rows are independent.
BLOCKS_PER_TASK = 2
MAX_TASKS = 64
_SQRT2 = 1.4142135623730951
# Rows of at most this many classes take these kernels: the crossover, measured with
# benchmarks/short_rows.py (one thread, kernel against kernel; docs/performance.md), per input
# kind (float64, or float32/float16: the short exp) and output (a value per row: the loss,
# logsumexp; a row per row: the gradient, softmax, log_softmax, whose copy out of the
# transposed block costs more)
SHORT_MAX_C = {(False, False): 64, (False, True): 40, (True, False): 40, (True, True): 24}
SERIAL_ELEMENTS = 1 << 14  # up to this many elements one thread runs (no thread-pool wake-up)


def is_short(C, fast, rows_out):
    """Whether rows of ``C`` classes go to the short-row kernels: ``fast`` for float32/float16
    inputs, ``rows_out`` for outputs of the rows' shape (see ``SHORT_MAX_C``)."""
    return 1 <= C <= SHORT_MAX_C[(bool(fast), bool(rows_out))]


def is_parallel(N, C):
    """Whether an ``(N, C)`` batch is worth the thread pool (more than ``SERIAL_ELEMENTS``)."""
    return N * C > SERIAL_ELEMENTS

# The scratch of a block is one float64 array (one base pointer, so that LLVM sees that the
# lanes' loops do not overlap): the per-lane values at [k R, (k + 1) R) for k = M .. ST, then
# the block's transposed rows (from XT), terms (BT) and error terms (BE), C R each.
M, CNT, RH, RL, LH, LL, LSH, LSL, HI, LO, ST, CH, CL, GY, YV, WY, TY, EY, OUT = range(19)
XT = 19 * R


@jit
def _scratch(C):
    """A task's scratch for blocks of ``C``-class rows (see ``XT``); the error terms zero
    (the float32 path has none)."""
    return np.zeros(XT + 3 * C * R)


@jit(inline=True)
def _log_lanes(w):
    """``L = log S`` for every lane, ``S = cnt + 2**-SCALE_EXP (rh + rl)`` (``cnt >= 1`` max
    entries and the scaled sum of the others): ``L = Lh + Ll`` and ``2**SCALE_EXP L = Lsh + Lsl``,
    with no branch.

    ``S = 2**k f``, ``f`` in about ``[sqrt(1/2), sqrt 2)`` (``k`` is the exponent of
    ``fl(S) sqrt 2``), and ``log S = k ln 2 + 2 atanh(z)``, ``z = (S - 2**k) / (S + 2**k)``.
    The numerator is formed scaled and exactly: ``2**B (S - 2**k) = (cnt - 2**k) 2**B + rh + rl``
    with ``(cnt - 2**k) 2**B`` an exact float, TwoSum with ``rh``; for ``k = 0`` it is the rest
    itself, so a confident row keeps every digit of ``S - 1`` (as ``_log_of_sum``).
    ``z`` is a double-double (``dd_div``, ``4u**2``); ``|z| <= 0.1716 (1 + 2**-52)``, so the
    atanh tail ``2 z^3 P(z^2)`` (14 terms, truncation below ``2**-76``) is below
    ``0.0099 |2z|``, and its float64 evaluation (a few roundings of at most ``u`` each, relative
    to the tail) keeps the relative error of ``Lh + Ll`` below ``0.05u`` (``2**-57``): far
    below the terms' own ``0.75u``. (``_log_of_sum`` carries the tail in double-double for the
    correctly rounded path, which this kernel does not serve.)"""
    for r in range(R):
        c = w[CNT * R + r]
        rh = w[RH * R + r]
        rl = w[RL * R + r]
        s1 = c + rh * INV_SCALE  # S to about u: only its exponent is used
        k = ((_f64_as_i64(s1 * _SQRT2) >> 52) & 0x7FF) - 1023
        p = _i64_as_f64((k + 1023) << 52)  # 2**k, exact (0 <= k <= 32: 1 <= S <= C)
        nh, nl = two_sum((c - p) * SCALE, rh)  # 2**B (S - 2**k): (c - p) 2**B exact
        nh, nl = fast_two_sum(nh, nl + rl)
        bh, bl = two_sum(c + p, rh * INV_SCALE)  # S + 2**k (an error below 2**-1074)
        bl += rl * INV_SCALE
        zh, zl = dd_div(nh, nl, bh, bl)  # 2**B z
        zu = zh * INV_SCALE
        ww = zu * zu
        pw = 1.0 / (2 * _ATANH_TERMS + 1)  # the atanh tail, as _atanh_tail
        for j in range(_ATANH_TERMS - 1, 0, -1):
            pw = pw * ww + 1.0 / (2 * j + 1)
        kf = np.float64(k)
        a, b = two_sum(kf * (LN2_CW_HI * SCALE), 2.0 * zh)  # k LN2_CW_HI exact (k < 2**11)
        b += kf * (LN2_CW_LO * SCALE) + 2.0 * (zl + zh * ww * pw)
        a, b = fast_two_sum(a, b)
        w[LSH * R + r] = a
        w[LSL * R + r] = b
        w[LH * R + r] = a * INV_SCALE
        w[LL * R + r] = b * INV_SCALE


@jit
def _terms(w, C):
    """The scaled terms ``T + E`` of the block (``_term_pair``), 0 at the max entries, their
    count, and their sum, one TwoSum chain per lane in class order (``E`` into the error
    part: Sum2)."""
    BT = XT + C * R
    BE = XT + 2 * C * R
    for c in range(C):
        for r in range(R):
            a = w[XT + c * R + r]
            m = w[M * R + r]
            T, E = _term_pair(a, m)
            top = a == m
            T = 0.0 if top else T
            E = 0.0 if top else E
            w[CNT * R + r] += 1.0 if top else 0.0
            w[BT + c * R + r] = T
            w[BE + c * R + r] = E
            hs, e = two_sum(w[RH * R + r], T)
            w[RH * R + r] = hs
            w[RL * R + r] += e + E


@jit
def _terms_fast(w, C):
    """As ``_terms`` for float32/float16 inputs: the short exp and no error terms, as the
    wide kernels' ``_fill_terms_fast`` (the sum is still a TwoSum chain: Sum2)."""
    BT = XT + C * R
    for c in range(C):
        for r in range(R):
            a = w[XT + c * R + r]
            m = w[M * R + r]
            t, s = exp_parts_short(a - m)
            T = fma(t, s, s)
            top = a == m
            T = 0.0 if top else T
            w[CNT * R + r] += 1.0 if top else 0.0
            w[BT + c * R + r] = T
            hs, e = two_sum(w[RH * R + r], T)
            w[RH * R + r] = hs
            w[RL * R + r] += e


@jit
def _block_stats(x, n0, fast, w):
    """Row statistics of the block of rows ``n0 .. n0 + R - 1`` of ``x`` (rows past the end
    are zeros and ignored) in the scratch ``w`` (``_scratch``): the transposed rows, the
    scaled terms (0 at the max entries), and per lane ``m``, ``cnt``, the scaled sum
    ``hi + lo = 2**B S``, ``L`` and ``2**B L``, and the status (0 ok, 1 a special row).
    (No ``wide_vectors()``: the lane loops are ``R`` long, and 512-bit vectors would leave
    them scalar on AVX2.)"""
    N, C = x.shape
    nb = min(R, N - n0)
    for r in range(nb):
        for c in range(C):
            w[XT + c * R + r] = np.float64(x[n0 + r, c])
    for r in range(nb, R):
        for c in range(C):
            w[XT + c * R + r] = 0.0
    for r in range(R):
        w[M * R + r] = -INF
        w[CNT * R + r] = 0.0
        w[RH * R + r] = 0.0
        w[RL * R + r] = 0.0
    for c in range(C):
        for r in range(R):
            a = w[XT + c * R + r]
            m = w[M * R + r]
            w[M * R + r] = a if a > m else m  # a nan is skipped: its term makes the sum nan
    for r in range(R):
        m = w[M * R + r]
        w[ST * R + r] = 1.0 if m - m != 0.0 else 0.0  # +inf, or every entry -inf (or nan)
        w[M * R + r] = 0.0 if m - m != 0.0 else m  # computed on 0, harmlessly, and redone
    if fast:  # two functions: with both loops in one, LLVM vectorizes neither
        _terms_fast(w, C)
    else:
        _terms(w, C)
    for r in range(R):
        cnt = w[CNT * R + r]
        rh = w[RH * R + r]
        rl = w[RL * R + r]
        h, l2 = two_sum(cnt * SCALE, rh)  # 2**B S
        h, l2 = fast_two_sum(h, l2 + rl)
        w[HI * R + r] = h
        w[LO * R + r] = l2
        # special: a max that is not finite, a nan term, or no entry equal to the max
        bad = (rh - rh != 0.0) or (rl - rl != 0.0) or cnt == 0.0 or w[ST * R + r] != 0.0
        w[ST * R + r] = 1.0 if bad else 0.0
        w[CNT * R + r] = 1.0 if bad else cnt  # keep the log of the special lanes harmless
        w[RH * R + r] = 0.0 if bad else rh
        w[RL * R + r] = 0.0 if bad else rl
    _log_lanes(w)


@jit
def _label_loss_lanes(w, odd, with_grad, denom):
    """The loss of every lane (``OUT``) from its target entry ``v = x_y`` (``YV``) and weight
    (``WY``), no smoothing: the formulas of :func:`crossent.kernels.loss._label_loss`
    (``eps = 0``), with selects instead of branches so that the loop vectorizes (per row, a
    scalar loss with its branches cost more than the row's terms); with ``with_grad`` also
    ``c = w / (S denom)`` (``CH + CL``) and the target's gradient entry (``GY``).

    The weighted form ``p + pe = w (-d + L)`` is exact in ``w = 1`` (``pe = 0``), so one
    formula serves both; a weighted target at the max (``d = 0``) is formed on ``2**B L``
    instead (``L`` may be subnormal); a -inf target costs +inf (0 at a zero weight)."""
    for r in range(R):
        v = w[YV * R + r]
        wy = w[WY * R + r]
        Lh = w[LH * R + r]
        Ll = w[LL * R + r]
        Lsh = w[LSH * R + r]
        d, e = two_sum(v, -w[M * R + r])
        e = 0.0 if v == -INF else e
        a, b = two_sum(-d, Lh)
        p = wy * a
        pe = fma(wy, a, -p)
        gen = _round_sum(p, pe + wy * (b + (Ll - e)), odd)
        p0 = wy * Lsh
        pe0 = fma(wy, Lsh, -p0)
        top = _round_sum(p0, pe0 + wy * w[LSL * R + r], odd) * INV_SCALE
        val = top if d == 0.0 and wy != 1.0 else gen
        masked = INF if wy != 0.0 else 0.0
        w[OUT * R + r] = masked if v == -INF else val
    if with_grad:
        for r in range(R):
            # g_i = w p_i / denom for i != y;  g_y = -w (S - exp(x_y - m)) / (S denom)
            hi = w[HI * R + r]
            lo = w[LO * R + r]
            ch, cl = _scale_dd(w[WY * R + r], 0.0, hi, lo, denom)
            a, b = two_sum(hi, -_term_of(w[TY * R + r]))
            sh, sl = fast_two_sum(a, (b + lo) - w[EY * R + r])  # no cancellation
            w[GY * R + r] = -fma(ch, sh, ch * sl + cl * sh)
            w[CH * R + r] = ch
            w[CL * R + r] = cl


@jit
def _loss_block(x, labels, weight, has_weight, ignore_index, odd, fast, out, stat, n0, w,
                denom, grad, with_grad):
    """Losses (and with ``with_grad`` gradient rows) of the block of rows from ``n0``."""
    N, C = x.shape
    _block_stats(x, n0, fast, w)
    BT = XT + C * R
    BE = XT + 2 * C * R
    nb = min(R, N - n0)
    for r in range(R):  # gather each lane's target entry (lanes past the end: class 0)
        y = labels[n0 + r] if r < nb else 0
        y = 0 if y == ignore_index else y
        w[YV * R + r] = w[XT + y * R + r]
        w[WY * R + r] = weight[y] if has_weight else 1.0
        w[TY * R + r] = w[BT + y * R + r]
        w[EY * R + r] = w[BE + y * R + r]
    _label_loss_lanes(w, odd, with_grad, denom)
    for r in range(nb):
        n = n0 + r
        skip = labels[n] == ignore_index
        special = w[ST * R + r] != 0.0 and not skip
        out[n] = 0.0 if skip or special else w[OUT * R + r]
        stat[n] = 1 if special else 0
    if with_grad:
        _grad_lanes(w, C)
        for r in range(nb):
            n = n0 + r
            y = labels[n]
            if y == ignore_index:
                for c in range(C):
                    grad[n, c] = 0.0
            elif w[ST * R + r] == 0.0:
                for c in range(C):
                    grad[n, c] = w[BT + c * R + r]
                grad[n, y] = w[GY * R + r]


@jit
def _grad_lanes(w, C):
    """``c (T_i + E_i)`` in place of the terms, ``c = ch + cl`` per lane, rounded once by an
    FMA as the wide kernels' ``_scaled_terms`` (every lane: the caller writes out the rows it
    needs)."""
    BT = XT + C * R
    BE = XT + 2 * C * R
    for c in range(C):
        for r in range(R):
            t = _term_of(w[BT + c * R + r])
            w[BT + c * R + r] = fma(w[CH * R + r], t, fma(w[CH * R + r], w[BE + c * R + r],
                                                          w[CL * R + r] * t))


@jit(parallel=True)
def cross_entropy_labels_short(x, labels, weight, has_weight, ignore_index, odd, fast, out,
                               stat, parallel, denom, grad, with_grad):
    """Per-row loss for class-index targets, no smoothing, on short rows (``stat[n] = 1``:
    a special row, left to the wide kernel); with ``with_grad`` also the gradient, as
    ``cross_entropy_labels_grad_rows`` (``grad`` may be ``x``: a block is transposed into
    scratch before any of its rows is written). ``parallel=False``: one thread, no
    thread-pool wake-up (small batches)."""
    N, C = x.shape
    nblk = (N + R - 1) // R
    if not parallel:
        w = _scratch(C)
        for b in range(nblk):
            _loss_block(x, labels, weight, has_weight, ignore_index, odd, fast, out, stat, b * R,
                        w, denom, grad, with_grad)
        return
    per = max(BLOCKS_PER_TASK, (nblk + MAX_TASKS - 1) // MAX_TASKS)  # blocks per task
    for task in prange((nblk + per - 1) // per):
        w = _scratch(C)
        for b in range(task * per, min(nblk, (task + 1) * per)):
            _loss_block(x, labels, weight, has_weight, ignore_index, odd, fast, out, stat, b * R,
                        w, denom, grad, with_grad)


LOGSUMEXP, LOG_SOFTMAX, SOFTMAX = 0, 1, 2  # the ``kind`` of softmax_family_short


@jit
def _softmax_block(x, kind, out, odd, fast, stat, n0, w):
    """logsumexp (``out[n, 0]``), log_softmax or softmax of the block of rows from ``n0``."""
    N, C = x.shape
    _block_stats(x, n0, fast, w)
    nb = min(R, N - n0)
    for r in range(nb):
        stat[n0 + r] = 1 if w[ST * R + r] != 0.0 else 0
    # every lane is computed (vectorized); the special rows' outputs are left to the caller
    if kind == LOGSUMEXP:
        for r in range(R):
            a, b = two_sum(w[M * R + r], w[LH * R + r])  # m + L rounded once (see the bound)
            w[OUT * R + r] = _round_sum(a, b + w[LL * R + r], odd)
        for r in range(nb):
            if w[ST * R + r] == 0.0:
                out[n0 + r, 0] = w[OUT * R + r]
        return
    BT = XT + C * R
    if kind == LOG_SOFTMAX:  # into the terms' place, which it does not need
        for c in range(C):
            for r in range(R):
                w[BT + c * R + r] = -_neg_log_softmax(w[XT + c * R + r], w[M * R + r],
                                                      w[LH * R + r], w[LL * R + r], odd)
    else:
        for r in range(R):
            ch, cl = _scale_dd(1.0, 0.0, w[HI * R + r], w[LO * R + r], 1.0)  # 2**-B / S
            w[CH * R + r] = ch
            w[CL * R + r] = cl
        _grad_lanes(w, C)
    for r in range(nb):
        if w[ST * R + r] == 0.0:
            for c in range(C):
                out[n0 + r, c] = w[BT + c * R + r]


@jit(parallel=True)
def softmax_family_short(x, kind, out, odd, fast, stat, parallel):
    """``kind``: ``LOGSUMEXP`` (into ``out[:, 0]``), ``LOG_SOFTMAX`` or ``SOFTMAX`` of short
    rows, as ``logsumexp_rows``, ``log_softmax_rows``, ``softmax_rows`` (``stat[n] = 1``: a
    special row, left to the wide kernel)."""
    N, C = x.shape
    nblk = (N + R - 1) // R
    if not parallel:
        w = _scratch(C)
        for b in range(nblk):
            _softmax_block(x, kind, out, odd, fast, stat, b * R, w)
        return
    per = max(BLOCKS_PER_TASK, (nblk + MAX_TASKS - 1) // MAX_TASKS)  # blocks per task
    for task in prange((nblk + per - 1) // per):
        w = _scratch(C)
        for b in range(task * per, min(nblk, (task + 1) * per)):
            _softmax_block(x, kind, out, odd, fast, stat, b * R, w)
