"""Rows split into class chunks: the row statistics of :mod:`crossent.kernels.softmax`
(``_row_stats``) formed chunk after chunk, bitwise those of the whole row.

The whole-row algorithm is: the exact max ``m``; the terms ``T_i + E_i`` of the entries below
the max (``_term_pair``; the max entries are counted); their double-double sum in 16 fixed
TwoSum lanes, element ``i`` into lane ``i mod 16`` in index order (``_base._dd_lanes2``), the
lanes then combined pairwise (``_base._combine_lanes``); float32/float16 rows use 32 plain
lanes (``i mod 32``, ``_base._sum_lanes``) and no error terms. A lane's sequential TwoSum
accumulation is not associative, so chunk sums cannot be merged after the fact; but it can be
*continued*: with the per-row state (the lanes' hi and lo parts, the count of max entries) kept
between chunks, and every element sent to the lane of its position in the whole row, folding
the chunks in row order performs exactly the additions of the whole-row loop. The zero padding
of the whole-row scratch rows adds nothing (``x + 0 = x`` and TwoSum's error of it is 0), and
the max is exact in any order, so it is formed first, over all chunks (pass 1).

Three passes per block of rows: :func:`chunk_max` over every chunk (the max and the nan/+inf
flags), :func:`fold_terms` over every chunk in order, :func:`finish_stats` once; then the
outputs of each chunk from the row statistics (:func:`log_softmax_chunk`,
:func:`softmax_chunk`) or of the row (``logsumexp`` from ``finish_stats``).
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ._base import DD_LANES, INF, NAN, SUM_LANES, fast_two_sum, fma, jit, row_max, two_sum
from .exp import exp_parts_f64_short as exp_parts_short
from .softmax import (MASKED_ROW, NAN_ROW, OK, SCALE, _log_of_sum, _neg_log_softmax, _round_sum,
                      _scale_dd, _term_pair)

STATE = 2 * SUM_LANES  # lanes per row of the fold state: 16 hi + 16 lo, or 32 plain lanes
HAS_NAN = 1
HAS_POSINF = 2


@jit(parallel=True)
def chunk_max(x, m, flags):
    """Pass 1 on one chunk ``x`` (rows, c) of the rows: ``m[n] = max(m[n], max x[n])``
    (nan skipped, exact) and the flags ``HAS_NAN``, ``HAS_POSINF`` of the entries."""
    R, c = x.shape
    for n in prange(R):
        row = x[n]
        v = row_max(row) if c else -INF
        if v > m[n]:
            m[n] = v
        f = flags[n]
        for i in range(c):
            e = row[i]
            if e != e:
                f |= HAS_NAN
            elif e == INF:
                f |= HAS_POSINF
        flags[n] = f


@jit(parallel=True)
def fold_terms(x, start, m, acc, cnt, fast):
    """Pass 2 on the chunk ``x`` whose first column is column ``start`` of the rows: each
    term goes to the lane of its column, as in the whole-row lane loop. ``acc`` (rows,
    ``STATE``) and ``cnt`` (rows,) start at 0 and carry the state from chunk to chunk."""
    R, c = x.shape
    for n in prange(R):
        mn = m[n]
        if mn == INF or mn == -INF:
            continue  # the row's status is decided by the max and the flags
        row = x[n]
        a = acc[n]
        k = 0
        for i in range(c):
            v = np.float64(row[i])
            col = start + i
            top = v == mn
            k += 1 if top else 0
            if fast:
                t, s = exp_parts_short(v - mn)
                T = 0.0 if top else fma(t, s, s)
                j = col % SUM_LANES
                a[j] = a[j] + T
            else:
                T, E = _term_pair(v, mn)
                T = 0.0 if top else T
                E = 0.0 if top else E
                j = col % DD_LANES
                h, e = two_sum(a[j], T)
                a[j] = h
                a[DD_LANES + j] = a[DD_LANES + j] + (e + E)
        cnt[n] += k


@jit(inline=True)
def _combine16(acc):
    """``_base._combine_lanes`` on a copy of a row's 16 TwoSum lanes (no tail)."""
    a = acc.copy()
    w = DD_LANES // 2
    while w >= 1:
        for j in range(w):
            s, e = two_sum(a[j], a[j + w])
            a[j] = s
            a[DD_LANES + j] += a[DD_LANES + j + w] + e
        w //= 2
    hi = a[0]
    lo = a[DD_LANES]
    if hi - hi != 0.0:
        return hi, 0.0
    return two_sum(hi, lo)


@jit(inline=True)
def _combine32(a):
    """The end of ``_base._sum_lanes``: lane ``8q + k`` is element ``k`` of vector ``q``; the
    four vectors ``(v0 + v1) + (v2 + v3)``, then their eight elements in order."""
    r = (a[0] + a[8]) + (a[16] + a[24])
    for k in range(1, 8):
        r = r + ((a[k] + a[8 + k]) + (a[16 + k] + a[24 + k]))
    return r


@jit(parallel=True)
def finish_stats(m, flags, acc, cnt, fast, odd, status, stats, lse):
    """Pass 3: ``status[n]`` and ``stats[n] = (m, hi, lo, Lh, Ll, Lsh, Lsl)`` as
    ``_row_stats`` returns them for the whole row, and ``lse[n]``, the row's logsumexp as
    ``logsumexp_rows`` gives it."""
    R = m.shape[0]
    for n in prange(R):
        mn = m[n]
        st = OK
        hi = lo = Lh = Ll = Lsh = Lsl = 0.0
        if mn == INF:
            st = NAN_ROW
        elif mn == -INF or mn != mn:
            st = NAN_ROW if flags[n] & HAS_NAN else MASKED_ROW
        else:
            if fast:
                rh = _combine32(acc[n])
                rl = 0.0
            else:
                rh, rl = _combine16(acc[n])
            if rh != rh or rl != rl or cnt[n] == 0:
                st = NAN_ROW
            else:
                Lh, Ll, Lsh, Lsl = _log_of_sum(cnt[n], rh, rl)
                hi, lo = two_sum(np.float64(cnt[n]) * SCALE, rh)
                hi, lo = fast_two_sum(hi, lo + rl)
        status[n] = st
        s = stats[n]
        s[0] = mn
        s[1] = hi
        s[2] = lo
        s[3] = Lh
        s[4] = Ll
        s[5] = Lsh
        s[6] = Lsl
        if st == NAN_ROW:
            lse[n] = NAN
        elif st == MASKED_ROW:
            lse[n] = -INF
        else:
            a, b = two_sum(mn, Lh)
            lse[n] = _round_sum(a, b + Ll, odd)


@jit(parallel=True)
def log_softmax_chunk(x, status, stats, odd, out):
    """``out = log_softmax`` on a chunk of the rows, from the rows' statistics."""
    R, c = x.shape
    for n in prange(R):
        o = out[n]
        if status[n] != OK:
            for i in range(c):
                o[i] = NAN
            continue
        s = stats[n]
        for i in range(c):
            o[i] = -_neg_log_softmax(np.float64(x[n, i]), s[0], s[3], s[4], odd)


@jit(parallel=True)
def softmax_chunk(x, status, stats, fast, out):
    """``out = softmax`` on a chunk of the rows: ``c (T_i + E_i)`` as ``_scaled_terms``."""
    R, c = x.shape
    for n in prange(R):
        o = out[n]
        if status[n] != OK:
            for i in range(c):
                o[i] = NAN
            continue
        s = stats[n]
        mn = s[0]
        ch, cl = _scale_dd(1.0, 0.0, s[1], s[2], 1.0)
        for i in range(c):
            v = np.float64(x[n, i])
            top = v == mn
            if fast:
                tt, sc = exp_parts_short(v - mn)
                T = 0.0 if top else fma(tt, sc, sc)
                t = SCALE if T == 0.0 else T
                o[i] = fma(ch, t, cl * t)
            else:
                T, E = _term_pair(v, mn)
                T = 0.0 if top else T
                E = 0.0 if top else E
                t = SCALE if T == 0.0 else T
                o[i] = fma(ch, t, fma(ch, E, cl * t))
