"""The accumulator of ``linear_cross_entropy``'s ``dweight`` for narrow inputs: a float32
pair ``hi + lo`` (about 48 significant bits) in place of a float64 array, so that for
float32 inputs the accumulator is the float32 result itself plus one float32 array (half the
memory of a float64 accumulator). Compiled without fastmath: the error terms need every
rounding as written."""

from __future__ import annotations

import math

import numpy as np

from ._base import jit


@jit
def add_to_float32_pair(t, hi, lo):
    """``hi + lo += t`` for (rows, H) arrays: ``a = (hi + lo) + t`` in float64 (``hi + lo`` is
    exact unless ``lo`` is below ``2**-53`` of ``hi``), ``hi = float32(a)`` (the nearest
    float32 of the float64 sum, so ``hi`` is at each step the float32 rounding of it) and
    ``lo = float32(a - hi)`` (``a - hi`` is exact: Sterbenz). Where ``hi`` is not finite
    (overflow of float32, or nan), ``lo`` is 0 so that it stays so.

    Serial: it runs between BLAS calls, whose threads are still spinning then; a parallel
    region there waited for them (10 times slower, measured on 2 cores)."""
    for i in range(t.shape[0]):
        for j in range(t.shape[1]):
            a = (np.float64(hi[i, j]) + np.float64(lo[i, j])) + t[i, j]
            h = np.float32(a)
            hi[i, j] = h
            if math.isfinite(h):
                lo[i, j] = np.float32(a - np.float64(h))
            else:
                lo[i, j] = np.float32(0.0)
