"""Rows split into class chunks (``crossent.kernels.chunked``): the statistics folded chunk
after chunk are bitwise those of the whole row, so logsumexp, log_softmax and softmax of a row
given in pieces are the bits of the NumPy API on the whole row.

Expected values: ``crossent.logsumexp``, ``log_softmax`` and ``softmax`` on the whole array
(the whole-row kernels, validated against the oracle in the precision tests). The rows hold
what the lane fold must get right: more classes than lanes (16 TwoSum lanes in float64, 32
plain lanes in float32), chunk sizes that are not multiples of the lane count, ties at the
max, masked (-inf) classes, terms far below the max, nan and +inf rows, confident rows.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent
from crossent._validate import cast_result, work_dtype
from crossent.kernels import chunked as K


def _splits(C, rng):
    """Random chunk boundaries of ``range(C)``: sizes 1 to 40, any alignment to the lanes."""
    cuts, c = [0], 0
    while c < C:
        c = min(C, c + int(rng.integers(1, 41)))
        cuts.append(c)
    return list(zip(cuts[:-1], cuts[1:]))


def _folded(x, splits):
    """(logsumexp, log_softmax, softmax) of the rows of ``x`` (float32/float64, 2-d) from its
    class chunks, as crossent.dask chains them: max over every chunk, fold in order, finish."""
    R, C = x.shape
    narrow = x.dtype != np.float64
    m, flags = np.full(R, -np.inf), np.zeros(R, np.int64)
    acc, cnt = np.zeros((R, K.STATE)), np.zeros(R, np.int64)
    chunks = [np.ascontiguousarray(x[:, a:b]) for a, b in splits]
    for c in chunks:
        K.chunk_max(c, m, flags)
    for c, (a, _) in zip(chunks, splits):
        K.fold_terms(c, a, m, acc, cnt, narrow)
    status, stats, lse = np.empty(R, np.int64), np.empty((R, 7)), np.empty(R, work_dtype(x.dtype))
    K.finish_stats(m, flags, acc, cnt, narrow, narrow, status, stats, lse)
    posinf = (flags & K.HAS_POSINF).astype(bool) & ~(flags & K.HAS_NAN).astype(bool)
    lse[posinf] = np.inf
    ls = np.empty_like(x)
    sm = np.empty_like(x)
    for c, (a, b) in zip(chunks, splits):
        o = np.empty(c.shape, x.dtype)
        K.log_softmax_chunk(c, status, stats, narrow, o)
        ls[:, a:b] = o
        K.softmax_chunk(c, status, stats, narrow, o)
        sm[:, a:b] = o
    for n in np.flatnonzero(posinf):
        ls[n] = np.where(np.isposinf(x[n]), np.nan, -np.inf)
    return cast_result(lse, x.dtype), ls, sm


def _rows(dtype, C, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((12, C)) * 3
    x[1] *= 200  # terms far below the max (many beyond exp's range)
    x[2, :] = 1.5  # every class ties at the max
    x[3, rng.integers(0, C, 5)] = -np.inf  # masked classes
    x[4, C // 2] = np.nan
    x[5, C - 1] = np.inf
    x[6, :] = -np.inf
    x[7, 0] = 60.0  # a confident row: S - 1 tiny
    x[8, rng.integers(0, C, 3)] = x[8].max()  # a few ties
    x[9] = rng.standard_normal(C) * 1e-3  # near-uniform
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("C", [2, 17, 100, 333])
@pytest.mark.parametrize("seed", range(3))
def test_a_row_in_chunks_gives_the_bits_of_the_whole_row(dtype, C, seed):
    x = _rows(dtype, C, seed)
    rng = np.random.default_rng(100 + seed)
    cases = [[(0, C)], _splits(C, rng), _splits(C, rng)]
    if C <= 20:  # one class per chunk (a kernel call per column: kept short)
        cases.append([(i, i + 1) for i in range(C)])
    for splits in cases:
        lse, ls, sm = _folded(x, splits)
        for got, want in ((lse, crossent.logsumexp(x)), (ls, crossent.log_softmax(x)),
                          (sm, crossent.softmax(x))):
            assert got.dtype == want.dtype
            assert got.tobytes() == want.tobytes(), (splits, got, want)


def test_the_fold_follows_the_lanes():
    """The check can fail: a fold that ignores the chunks' positions (every chunk of 3 columns
    into lanes 0-2) gives other bits than the whole row's 16 lanes on some rows."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((50, 333)) * 3
    R, C = x.shape
    m, flags = np.full(R, -np.inf), np.zeros(R, np.int64)
    acc, cnt = np.zeros((R, K.STATE)), np.zeros(R, np.int64)
    K.chunk_max(x, m, flags)
    for i in range(0, C, 3):  # columns i..i+2 into lanes 0..2: every chunk "starts a row"
        K.fold_terms(np.ascontiguousarray(x[:, i:i + 3]), 0, m, acc, cnt, False)
    status, stats, lse = np.empty(R, np.int64), np.empty((R, 7)), np.empty(R)
    K.finish_stats(m, flags, acc, cnt, False, False, status, stats, lse)
    assert (stats[:, 1:3] != _whole_stats(x)).any()
    assert (_folded(x, _splits(C, rng))[0] == crossent.logsumexp(x)).all()


def _whole_stats(x):
    R = x.shape[0]
    m, flags = np.full(R, -np.inf), np.zeros(R, np.int64)
    acc, cnt = np.zeros((R, K.STATE)), np.zeros(R, np.int64)
    K.chunk_max(x, m, flags)
    K.fold_terms(x, 0, m, acc, cnt, False)
    status, stats, lse = np.empty(R, np.int64), np.empty((R, 7)), np.empty(R)
    K.finish_stats(m, flags, acc, cnt, False, False, status, stats, lse)
    return stats[:, 1:3]
