"""``logsumexp`` with scale factors ``b``, correctly rounded (float64): a separate kernel, so
that the fast kernel (``crossent.kernels.softmax.logsumexp_b_rows``) does not grow.

The row: ``m = max {x_i : b_i != 0}``, ``S = sum_i b_i e^{x_i - m}``, the result
``m + log|S|`` and the sign of ``S``. The error budget (``docs/accuracy.md``, "Correct
rounding in float64"), in units of the scaled sum ``2**600 2**-eb S`` (``2**eb`` the row's
largest ``|b_i|``, rounded up to a power of two):

1. a term ``2**600 e^{x_i - m} = T + E`` within ``EXP_PARTS_DD_MAX_REL_ERR + 2**-85``
   relative (``_term_pair_dd``), for ``x_i - m >= -1100``; below, both the exact term and
   the computed one are below ``2**-984`` (times ``|b_i 2**-eb| <= 1``), which is added as an
   absolute error;
2. ``(T + E) b_i 2**-eb = t_i + te_i``: TwoProduct of ``T`` (exact), ``E b_i 2**-eb`` and its
   addition to the error term rounded: ``|te_i| <= 2**-41.9 |t_i|`` (``|E| <= 2**-42 T``), its
   error ``<= 2**-94 |t_i|``; a subnormal product errs by at most ``2**-1072`` absolute per
   term; a scaled factor ``b_i 2**-eb`` below ``2**-1022`` (not exact) sends the row to the
   oracle;
3. the sum, one double-double step per term renormalized each time (as the PMF kernels'):
   the two roundings of ``e + (lo + te_i)`` err by ``<= 3 u**2 |sum so far| + 2**-93.5 |t_i|``
   per step (``|lo| <= u |hi|``, ``|e| <= u |hi + t_i|``), ``<= (C 2**-104.4 + 2**-93.5) A``
   over the row, ``A = sum_i |t_i|`` (a float64 sum, within ``(C + 4) 2**-52`` relative of
   the exact one). Steps 2 and 3 are stated together as ``2**-92 + C 2**-103``.

So ``|S_c - S| <= E_S = rel A + ab`` (``rel``, ``ab``: ``crossent._rounding.logsumexp_b_bound``).
When ``E_S <= 2**-20 |S_c|`` the sign is ``S_c``'s and ``|log|S_c| - log|S|| <= d (1 + 2**-18)``,
``d = E_S / |S_c|`` (the relative error of ``S``; ``log`` turns it into an absolute one);
``log|S_c|`` by ``crossent.kernels.pmf._log2k_dd`` (the exponent ``eb - 600`` added before
the split: no cancellation) within ``2**-85 |log|S||``; ``m + L`` by TwoSum, its last
addition ``<= 2**-104 (|m| + |L|)``. The result is rounded when every value within that
absolute bound rounds to the same float; otherwise (a cancelling sum, ``E_S > 2**-20 |S_c|``
or a zero ``S_c``) the row goes to the oracle.
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._base import INF, NAN, jit, two_prod, two_sum
from .exp import X_MIN_PARTS
from .pmf import _log2k_dd
from .softmax import SCALE, SCALE_EXP, _half_gap, _term_pair_dd

NORMAL_MIN = 2.0**-1022


@jit
def _row_lse_b_cr(row, br, rel, ab):
    """``(value, sign, status)`` of one row: status 0 decided (or a special value: the empty
    sum ``-inf``/0, a nan or +inf among the used entries: nan, for the caller's rules),
    1 for the oracle."""
    C = row.shape[0]
    m = -INF
    bmax = 0.0
    bad = False
    for i in range(C):
        if br[i] != 0.0:
            v = np.float64(row[i])
            bad = bad or v != v or v == INF
            m = max(m, v)
            bmax = max(bmax, abs(br[i]))
    if bad:
        return NAN, NAN, 0
    if m == -INF:  # no term: the empty sum
        return -INF, 0.0, 0
    _f, eb = math.frexp(bmax)
    hi = 0.0
    lo = 0.0
    A = 0.0
    clamped = 0.0
    for i in range(C):
        v = np.float64(row[i])
        if br[i] == 0.0 or v == -INF:
            continue
        bs = math.ldexp(br[i], -eb)
        if abs(bs) < NORMAL_MIN:  # the scaling was not exact
            return NAN, NAN, 1
        if v == m:
            T, E = SCALE, 0.0
        else:
            T, E = _term_pair_dd(v, m)
            if v - m < X_MIN_PARTS:
                clamped += abs(bs)
        t, te = two_prod(T, bs)
        te += E * bs
        s, e = two_sum(hi, t)
        e += lo + te
        hi, lo = two_sum(s, e)
        A += abs(t)
    err = (rel * A + ab + clamped * 2.0**-984) * (1.0 + 2.0**-50)
    if hi == 0.0 or err > 2.0**-20 * abs(hi):
        return NAN, NAN, 1
    sg = 1.0 if hi > 0.0 else -1.0
    d = err / abs(hi) * (1.0 + 2.0**-18)
    Lh, Ll = _log2k_dd(sg * hi, sg * lo, eb - SCALE_EXP)
    a, c = two_sum(m, Lh)
    r, t = two_sum(a, c + Ll)
    if r - r != 0.0:  # overflow
        return NAN, NAN, 1
    tot = d + abs(Lh) * 2.0**-85 + (abs(m) + abs(Lh)) * 2.0**-104
    if (abs(t) + tot) * (1.0 + 2.0**-50) < _half_gap(r):
        return r, sg, 0
    return NAN, NAN, 1


@jit(parallel=True)
def logsumexp_b_rows_cr(x, b, rel, ab, out, sgn, slow):
    """The correctly rounded ``log|sum_i b_i e^{x_i}|`` and its sign of every float64 row
    (``b`` float64, the shape of ``x``); ``slow[n] = 1`` marks the rows for the oracle."""
    for n in prange(x.shape[0]):
        v, s, st = _row_lse_b_cr(x[n], b[n], rel, ab)
        out[n] = v
        sgn[n] = s
        slow[n] = st
