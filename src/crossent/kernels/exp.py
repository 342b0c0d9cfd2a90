"""A vectorizable float64 exponential with a certified error bound.

This Numba build has no SVML, so a loop calling ``math.exp`` stays scalar. The functions here are
straight-line code (no branches, no calls into libm, no float->int conversions) that LLVM
vectorizes when they are called inside a plain ``for i in range(n)`` loop: on AVX2 four doubles
go through the whole computation at once.

``exp_f64(x)``
    full precision; certified relative error ``EXP_F64_MAX_REL_ERR`` (normal outputs) and
    ``EXP_F64_MAX_ULP_ERR`` ulp for every output, subnormal ones included.
``exp_f64_short(x)``
    two polynomial terms fewer; certified relative error ``EXP_F64_SHORT_MAX_REL_ERR`` <= 2^-40,
    for float32/float16 results computed in float64.

Both are meant for ``x <= 0`` (the softmax kernels pass ``x = z_i - max(z)``, ``-inf`` or nan).
They also give the right answer for ``0 < x <= 710`` (overflow to +inf above log(DBL_MAX)), but
the certified bounds are proved for ``x <= 0`` only. The proof is ``proofs/exp_error_bound.py``;
it imports the constants and coefficients below (and the ln 2 split ``LN2_CW_HI``, ``LN2_CW_LO``
of :mod:`crossent.kernels._base`) and re-derives every number in the table.

Notes
-----
The method (Cody & Waite 1980; Muller, *Elementary Functions*, ch. 11):

.. math::

    k = \\operatorname{round}(x \\log_2 e), \\quad r^* = x - k \\ln 2,
    \\quad |r^*| \\le \\tfrac{\\ln 2}{2}, \\qquad e^x = 2^k e^{r^*},
    \\qquad e^{r} \\approx 1 + \\bigl(r + r^2 Q(r)\\bigr).

* ``k`` comes from the shift trick ``t = fma(x, log2e, 1.5*2^52)``: the one rounding puts
  ``round(x log2e)`` in the low bits of ``t``; ``t - 1.5*2^52`` is ``k`` as an exact float and the
  int64 view of ``t`` minus the view of ``1.5*2^52`` is ``k`` as an integer (AVX2 has no packed
  float64->int64 conversion, but a bitcast is free).
* ``LN2_CW_HI`` has 42 significant bits, so ``k*LN2_CW_HI`` is exact for ``|k| < 2^11``, and
  ``x - k*LN2_CW_HI`` is representable (both operands are multiples of ``min(ulp(x), 2^-42)`` and
  the difference is below ``2^53`` of that quantum), so the FMA that forms it is exact.
  ``LN2_CW_LO`` carries the next 53 bits.
* ``Q`` is a minimax polynomial for the relative error of ``1 + r + r^2 Q(r)`` on
  ``|r| <= ln2/2 (1 + 2^-20)`` (Remez, mpmath at 200 bits, coefficients rounded to float64).
  The sum is formed as ``(1 + hi) + (r^2 Q(r) - lo)`` with ``1 + hi`` split exactly by Fast2Sum,
  so that the reduction's rounding error only enters through the small term ``r^2 Q(r)``, and the
  last addition (one rounding of a number in ``[0.7, 1.42]``) dominates the error.
* ``2^k`` is built from the bits as two factors ``2^{k1} 2^{k2}``, ``k1 = k >> 1``: both are normal
  for ``-1082 <= k <= 1024``, ``y 2^{k1}`` is exact, and only the last product rounds, so subnormal
  results are rounded once (gradual underflow) and ``x < -745.14`` gives 0.
* ``x`` is clamped to ``[-750, 710]`` with selects (not branches): ``-inf -> -750 -> 0``,
  ``+inf -> 710 -> inf``; the comparisons are false for nan, which flows through to the result.
  ``exp_parts_*`` (for ``x <= 0`` only) clamp below, at -1100, and not above.

Only the polynomial (``_poly_full``, ``_poly_short``) is compiled with ``jit(contract=True)``
(``fastmath={'contract'}``)
(the Fast2Sum lives in ``exp_f64`` itself, compiled without it)
so that LLVM may fuse its multiply-adds into FMAs; the error analysis covers both the fused and the
unfused evaluation. The reduction is compiled without it: its two FMAs are explicit
(``fma``), and a contracted ``hi - kf*LN2_CW_LO`` would change a rounding the proof relies on. A caller must not be compiled
with ``fastmath`` either: ``exp_f64`` is ``inline="always"``, so its body takes the caller's flags.

References
----------
W. J. Cody and W. Waite, *Software Manual for the Elementary Functions*, Prentice-Hall, 1980.
J.-M. Muller, *Elementary Functions: Algorithms and Implementation*, 3rd ed., Birkhauser, 2016.
N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM, 2002 (ch. 3, 5).
"""

from __future__ import annotations

import math

from ._base import (LN2_CW_HI, LN2_CW_LO, _f64_as_i64, _i64_as_f64, fast_two_sum, fma, jit,
                    two_prod, two_sum)

__all__ = [
    "exp_f64",
    "exp_f64_short",
    "EXP_F64_MAX_REL_ERR",
    "EXP_F64_MAX_ULP_ERR",
    "EXP_F64_SHORT_MAX_REL_ERR",
    "EXP_F64_SHORT_MAX_ULP_ERR",
    "exp_parts_f64",
    "exp_parts_f64_short",
    "EXP_PARTS_F64_MAX_REL_ERR",
    "EXP_PARTS_F64_SHORT_MAX_REL_ERR",
    "exp_parts_dd",
    "EXP_PARTS_DD_MAX_REL_ERR",
]

# ---------------------------------------------------------------------------------------------
# Constants (plain Python floats, so the proof imports them without compiling anything).
# ---------------------------------------------------------------------------------------------
LOG2E = float.fromhex("0x1.71547652b82fep+0")  # log2(e) rounded to nearest
SHIFT = float.fromhex("0x1.8p+52")  # 1.5 * 2^52: adding it rounds to an integer
SHIFT_BITS = 0x4338000000000000  # int64 view of SHIFT; view(t) - SHIFT_BITS = k
X_MIN = -750.0  # below -745.14 every result rounds to 0; -750 keeps k >= -1082
# exp_parts_* return exp(x) = (1 + t) * 2^(k + PARTS_SCALE_EXP) for the softmax kernels, whose
# terms are scaled by 2^600 so that exp(x) down to x = -1100 stays normal there. Their clamp is
# lower: -1100 keeps k >= -1587, so 2^(k + 600) >= 2^-987 is normal (and k <= 0 for x <= 0 keeps
# it finite); |k| * LN2_CW_HI stays exact (|k| < 2^11)
X_MIN_PARTS = -1100.0
PARTS_SCALE_EXP = 600
X_MAX = 710.0  # above log(DBL_MAX) = 709.78 every result overflows; keeps k <= 1025

# Q(r) = sum_j Q_FULL[j] r^j, exp(r) ~ 1 + r + r^2 Q(r) on |r| <= ln2/2 (1 + 2^-20),
# relative minimax (Remez at 200 bits: 2^-57.9), rounded to float64: certified 0.0999 u = 2^-56.3.
Q_FULL = tuple(
    float.fromhex(h)
    for h in (
        "0x1.000000000000ap-1",
        "0x1.55555555554fap-3",
        "0x1.555555555088cp-5",
        "0x1.1111111127b9cp-7",
        "0x1.6c16c18426742p-10",
        "0x1.a01a012a69a31p-13",
        "0x1.a0199a16ccef8p-16",
        "0x1.71df253a4315cp-19",
        "0x1.28ad68b76411ap-22",
        "0x1.ad7f7af334b32p-26",
    )
)
# Same construction with deg Q = 7: certified approximation error 148.32 u = 2^-45.78.
Q_SHORT = tuple(
    float.fromhex(h)
    for h in (
        "0x1.fffffffff13f5p-2",
        "0x1.5555555589f03p-3",
        "0x1.5555557def019p-5",
        "0x1.1111108e2c7cfp-7",
        "0x1.6c163be8fca80p-10",
        "0x1.a01b73844191ep-13",
        "0x1.a16e32e8f0466p-16",
        "0x1.710182a48fa26p-19",
    )
)

# ---------------------------------------------------------------------------------------------
# Certified bounds (derived and checked by proofs/exp_error_bound.py, which asserts that these
# numbers are >= what it derives and within 5% of it). Relative errors hold for normal outputs;
# the ulp bounds hold for every output with x <= 0, subnormal ones included (0.5 ulp for the
# final rounding onto the subnormal grid + half the normal-range ulp bound).
# ---------------------------------------------------------------------------------------------
# exp_f64: approximation 0.100 u + roundings 1.039 u (the last addition alone is 0.5 ulp of
# y in [0.707, 1), i.e. 0.707 u relative), u = 2^-53.
EXP_F64_MAX_REL_ERR = 1.14 * 2.0**-53  # derived: 1.1391 u = 2^-52.812
EXP_F64_MAX_ULP_ERR = 0.91  # derived: 0.8055 ulp (normal), 0.5 + 0.8055/2 = 0.9028 (subnormal)
# exp_f64_short: approximation 148.32 u + roundings 1.04 u
EXP_F64_SHORT_MAX_REL_ERR = 2.0**-45.75  # derived: 149.46 u = 2^-45.776
EXP_F64_SHORT_MAX_ULP_ERR = 150.0  # derived: 149.42 ulp (normal), 149.92 (subnormal)
# exp_parts_f64(x) -> (t, s): |(1 + t) - e^{r*}| <= bound * e^{r*} with 1 + t taken exactly
# (the caller's rounding of 1 + t, and of the product by s = 2^(k + 600), is not included).
EXP_PARTS_F64_MAX_REL_ERR = 0.75 * 2.0**-53  # derived: 0.7413 u (t = fl(hi + tail): <= 0.354 u)
EXP_PARTS_F64_SHORT_MAX_REL_ERR = 2.0**-45.75  # derived: 149.12 u = 2^-45.780 (its FMA form)


# The functions are compiled lazily (``jit``'s policy for helpers): they are only ever called from
# other kernels with float64 arguments, and the proof imports this module without compiling.
#
# Error terms below: u = 2^-53, |r| <= R = 0.3465735904 (ln2/2 + 1e-10); "rnd" is a rounding to
# nearest, bounded in the proof by half an ulp of the interval hull of the value on each of
# 1024 subintervals of [-R, R]; the sums use the unfused (worse) bound of every a*b + c.


@jit(contract=True)
def _poly_full(r, lo):  # pragma: no cover - compiled
    # returns tail = fl(r^2 Q(r) - lo); r = fl(hi - lo) with |r| <= R
    r2 = r * r  # rnd <= 2^-56 (r2 < 0.121)
    q = Q_FULL[9]  # Horner: each step q*r + c_j is one FMA or a mul and an add
    q = q * r + Q_FULL[8]
    q = q * r + Q_FULL[7]
    q = q * r + Q_FULL[6]
    q = q * r + Q_FULL[5]
    q = q * r + Q_FULL[4]
    q = q * r + Q_FULL[3]
    q = q * r + Q_FULL[2]
    q = q * r + Q_FULL[1]  # q in [0.09, 0.24]: rounding here and above <= 2^-55.9 (x r^2 later)
    q = q * r + Q_FULL[0]  # q in [0.44, 0.56]: rnd <= 2^-54 (weight r2 <= 0.121 -> 2^-57)
    s = r2 * q  # s = r^2 Q(r) in [0, 0.068]: rnd <= 2^-58
    return s - lo  # |lo| <= 2^-34: rnd <= 2^-58; may fuse with s (fewer roundings)


@jit(contract=True)
def _horner_short(r):  # pragma: no cover - compiled
    # Q(r) with deg Q = 7 (Q_SHORT), by Horner
    q = Q_SHORT[7]
    q = q * r + Q_SHORT[6]
    q = q * r + Q_SHORT[5]
    q = q * r + Q_SHORT[4]
    q = q * r + Q_SHORT[3]
    q = q * r + Q_SHORT[2]
    q = q * r + Q_SHORT[1]
    return q * r + Q_SHORT[0]  # rnd <= 2^-54 (weight r2 -> 2^-57)


@jit(contract=True)
def _poly_short(r, lo):  # pragma: no cover - compiled
    # as _poly_full with deg Q = 7; the error of exp_f64_short is dominated by the
    # approximation (2^-45.8)
    s = (r * r) * _horner_short(r)  # r^2: rnd <= 2^-56; the product: rnd <= 2^-58
    return s - lo  # rnd <= 2^-58


@jit(inline=True)
def _reduce_k(x, x_min, upper):
    """Clamp ``x`` to ``[x_min, X_MAX]`` (``upper=False``: to ``[x_min, inf)``, for callers
    whose ``x`` is ``<= 0`` or nan) and split off ``k``: ``(kf, k, hi)`` with
    ``hi = x - k LN2_CW_HI`` exactly."""
    x = x_min if x < x_min else x  # exact; -inf -> x_min, nan stays nan (compare is false)
    if upper:  # a compile-time constant: no branch is left
        x = X_MAX if x > X_MAX else x  # exact
    t = fma(x, LOG2E, SHIFT)  # one rounding onto the integers: t = 1.5*2^52 + k
    kf = t - SHIFT  # exact (Sterbenz): k as a float
    k = _f64_as_i64(t) - SHIFT_BITS  # exact: k as an integer, no float->int conversion
    hi = fma(-kf, LN2_CW_HI, x)  # exact: x - kf*LN2_CW_HI is representable, the FMA returns it
    return kf, k, hi


@jit(inline=True)
def _reduce(x, x_min, upper):
    """:func:`_reduce_k`, then ``(hi, lo, r, k)`` with ``x = k ln2 + (hi - lo)`` up to the
    stated roundings, ``r = fl(hi - lo)``."""
    kf, k, hi = _reduce_k(x, x_min, upper)
    lo = kf * LN2_CW_LO  # rnd <= 2^-86 (|lo| <= 2020 * 2^-44.0)
    r = hi - lo  # rnd <= 2^-55; enters the result only through r^2 Q(r) (weight <= 0.415)
    return hi, lo, r, k


@jit(inline=True)
def _one_plus(hi, tail):
    """``fl(1 + (hi + tail))`` with ``1 + hi`` split exactly (Fast2Sum, ``|hi| < 1``)."""
    sh = 1.0 + hi
    sl = hi - (sh - 1.0)  # exact
    return sh + (sl + tail)  # inner rnd <= 2^-58 (|sl| <= 2^-54, |tail| <= 0.07); outer <= 1/2 ulp


@jit(inline=True)
def _pow2_pair(k):
    """``(2^k1, 2^k2)``, ``k1 = k >> 1``, ``k2 = k - k1``: both normal for -2020 <= k <= 1025."""
    k1 = k >> 1
    k2 = k - k1
    return _i64_as_f64((k1 + 1023) << 52), _i64_as_f64((k2 + 1023) << 52)  # exact


@jit(inline=True)
def _pow2_scaled(k):
    """``2^(k + PARTS_SCALE_EXP)``: normal for ``-1622 <= k <= 424`` (exact bit pattern)."""
    return _i64_as_f64((k + (PARTS_SCALE_EXP + 1023)) << 52)


@jit(inline=True)
def exp_f64(x):
    """Vectorizable ``exp(x)`` for float64 ``x <= 0`` with a certified error bound.

    Parameters
    ----------
    x : float64
        ``x <= 0``, ``-inf`` or nan (``0 < x <= 710`` also works but is not covered by the proof).

    Returns
    -------
    float64
        ``exp(x)``: ``exp(0) = exp(-0.0) = 1`` exactly, ``exp(-inf) = 0``, nan for nan,
        gradual underflow with one rounding for ``-745.14 < x < -708.4``, 0 below.

    Notes
    -----
    :math:`e^x = 2^k e^{r}` with :math:`k = \\mathrm{round}(x\\log_2 e)`,
    :math:`r = x - k\\ln 2` (Cody-Waite, exact high part) and
    :math:`e^r \\approx 1 + (r + r^2 Q(r))`, :math:`\\deg Q = 9` (minimax).

    Accuracy (``proofs/exp_error_bound.py``): relative error at most
    ``EXP_F64_MAX_REL_ERR`` (1.14 * 2^-53) for normal outputs; at most ``EXP_F64_MAX_ULP_ERR``
    (0.91) ulp for every output, subnormal ones included (0.81 ulp for normal ones).
    """
    hi, lo, r, k = _reduce(x, X_MIN, True)  # X_MIN = -750: k >= -1082
    y = _one_plus(hi, _poly_full(r, lo))  # y = e^r (1 + eps): the outer rounding dominates
    s1, s2 = _pow2_pair(k)
    return (y * s1) * s2  # y*s1 exact (normal); the last product rounds once (subnormal range)


@jit(inline=True)
def exp_f64_short(x):
    """Vectorizable ``exp(x)`` for ``x <= 0`` accurate to ``EXP_F64_SHORT_MAX_REL_ERR`` (< 2^-45).

    Same interface, special values and reduction as :func:`exp_f64`, with ``deg Q = 7``: enough
    for float32/float16 results computed in float64 to be correctly rounded in practice (about
    2^-37 suffices), two FMAs cheaper per element.

    Parameters
    ----------
    x : float64
        ``x <= 0``, ``-inf`` or nan.

    Returns
    -------
    float64
        ``exp(x)`` with relative error at most ``EXP_F64_SHORT_MAX_REL_ERR`` for normal outputs.

    Notes
    -----
    :math:`e^x = 2^k (1 + r + r^2 Q_7(r))`, see :func:`exp_f64`.
    """
    hi, lo, r, k = _reduce(x, X_MIN, True)
    y = _one_plus(hi, _poly_short(r, lo))
    s1, s2 = _pow2_pair(k)
    return (y * s1) * s2


@jit(inline=True)
def exp_parts_f64(x):
    """``exp(x) 2^PARTS_SCALE_EXP = (1 + t) * s`` for ``x <= 0``, unrounded, for callers that
    fold more in (the softmax kernels keep their terms scaled by ``2^600``).

    Parameters
    ----------
    x : float64
        ``x <= 0``, ``-inf`` or nan.

    Returns
    -------
    t : float64
        ``expm1(r)`` of the reduced argument, ``|t| <= 0.415``.
    s : float64
        ``2^(k + 600)``, a normal power of two (``x`` is clamped at ``X_MIN_PARTS = -1100``, so
        ``k >= -1587``): ``(1 + t) * s`` is exact when ``1 + t`` is a float. For
        ``x < -1100`` the result is ``exp(-1100) 2^600 < 2^-986``, which is zero next to the
        max term ``2^600`` of a softmax row (and rounds to 0 in any output).

    Notes
    -----
    Same reduction and polynomial as :func:`exp_f64`, with the last addition and the scaling
    left to the caller: :math:`|(1 + t) - e^{r^*}| \\le` ``EXP_PARTS_F64_MAX_REL_ERR``
    :math:`\\cdot e^{r^*}` with ``1 + t`` taken exactly (``proofs/exp_error_bound.py``). One
    power of two instead of :func:`exp_f64`'s two factors: the scale keeps every product normal.
    """
    hi, lo, r, k = _reduce(x, X_MIN_PARTS, False)  # X_MIN_PARTS = -1100: k >= -1587
    p = hi + _poly_full(r, lo)  # p = expm1(r) in [-0.293, 0.415]: rnd <= 2^-55
    return p, _pow2_scaled(k)


@jit(inline=True)
def exp_parts_f64_short(x):
    """:func:`exp_parts_f64` with the short polynomial, evaluated in fewer operations
    (``EXP_PARTS_F64_SHORT_MAX_REL_ERR``): for the float32/float16 paths.

    The reduced argument is rounded once, ``r = fl(hi - kf*LN2_CW_LO)`` (an FMA), and
    ``t = fl(r + fl(r*r) Q(r))`` (an FMA): the rounding of ``r`` now enters ``t`` directly,
    at most ``2^-55``, far below the polynomial's own ``2^-45.8``; three operations fewer
    than the ``hi``/``lo`` form of the full precision path.
    """
    kf, k, hi = _reduce_k(x, X_MIN_PARTS, False)
    r = fma(-kf, LN2_CW_LO, hi)  # one rounding, <= 2^-55
    p = fma(r * r, _horner_short(r), r)  # one rounding of r + r^2 Q(r); r*r rounds once
    return p, _pow2_scaled(k)


# ---------------------------------------------------------------------------------------------
# The double-double exponential of the float64 softmax kernels
# ---------------------------------------------------------------------------------------------
# exp(x) = 2^k 2^(j/16) e^r with k' = 16 k + j = round(16 x / ln 2) and |r| <= ln2/32:
# 2^(j/16) is a double-double picked from 16 constants by a tree of selects on the bits of j
# (a loop with a table lookup is not vectorized on CPUs whose gathers LLVM deems slow, AMD
# Zen among them; selects are), and e^r - 1 = r + r^2/2 + r^3/6 + r^4 Q(r) with the first
# three terms exact or double-double and Q the Taylor polynomial to r^10 (truncation below
# 2^-85). Every rounded operation acts on a value below 2^-26 of the result.
# proofs/exp_dd_error_bound.py derives the bound from these constants.
DD_TABLE_BITS = 4
DD_TABLE_SIZE = 1 << DD_TABLE_BITS  # 16 entries
DD_INV_STEP = float.fromhex("0x1.71547652b82fep+4")  # 16 / ln 2 rounded to nearest
DD_STEP_BITS = 38  # significant bits of DD_C1: k' DD_C1 is exact for |k'| < 2^15


# ln2 / 16 = DD_C1 + DD_C2 + DD_C3 to 2^-149 relative, DD_C1 with DD_STEP_BITS significant bits;
# DD_TABLE_HI[j] + DD_TABLE_LO[j] = 2^(j/16), each part rounded to nearest (within 2^-106
# relative). Written out so that importing a kernel module computes nothing; computed with
# mpmath at 256 bits, and recomputed and checked from mpmath by proofs/exp_dd_error_bound.py
# (run by the test suite) and tests/test_precision_exp.py.
DD_C1 = float.fromhex("0x1.62e42fefa0000p-5")
DD_C2 = float.fromhex("0x1.cf79abc9e3b3ap-44")
DD_C3 = float.fromhex("-0x1.ff0342542fc33p-98")
DD_TABLE_HI = (
    float.fromhex("0x1.0000000000000p+0"),
    float.fromhex("0x1.0b5586cf9890fp+0"),
    float.fromhex("0x1.172b83c7d517bp+0"),
    float.fromhex("0x1.2387a6e756238p+0"),
    float.fromhex("0x1.306fe0a31b715p+0"),
    float.fromhex("0x1.3dea64c123422p+0"),
    float.fromhex("0x1.4bfdad5362a27p+0"),
    float.fromhex("0x1.5ab07dd485429p+0"),
    float.fromhex("0x1.6a09e667f3bcdp+0"),
    float.fromhex("0x1.7a11473eb0187p+0"),
    float.fromhex("0x1.8ace5422aa0dbp+0"),
    float.fromhex("0x1.9c49182a3f090p+0"),
    float.fromhex("0x1.ae89f995ad3adp+0"),
    float.fromhex("0x1.c199bdd85529cp+0"),
    float.fromhex("0x1.d5818dcfba487p+0"),
    float.fromhex("0x1.ea4afa2a490dap+0"),
)
DD_TABLE_LO = (
    float.fromhex("0x0.0p+0"),
    float.fromhex("0x1.8a62e4adc610bp-54"),
    float.fromhex("-0x1.19041b9d78a76p-55"),
    float.fromhex("0x1.9b07eb6c70573p-54"),
    float.fromhex("0x1.6f46ad23182e4p-55"),
    float.fromhex("0x1.ada0911f09ebcp-55"),
    float.fromhex("0x1.d4397afec42e2p-56"),
    float.fromhex("0x1.6324c054647adp-54"),
    float.fromhex("-0x1.bdd3413b26456p-54"),
    float.fromhex("-0x1.41577ee04992fp-55"),
    float.fromhex("0x1.6e9f156864b27p-54"),
    float.fromhex("0x1.c7c46b071f2bep-56"),
    float.fromhex("0x1.7a1cd345dcc81p-54"),
    float.fromhex("0x1.11065895048ddp-55"),
    float.fromhex("0x1.2ed02d75b3707p-55"),
    float.fromhex("-0x1.e9c23179c2893p-54"),
)
# e^r - 1 = r + r^2/2 + r^3/6 + r^4/24 + r^5 (DD_Q[1] + DD_Q[2] r + ... + DD_Q[6] r^5): 1/5! .. 1/10!
# (DD_Q[0] = 1/4! is the r^4 coefficient, formed as a double-double)
DD_Q = tuple(1.0 / math.factorial(n) for n in range(4, 11))
# |(h + l) - 2^(j/16) e^{r*}| <= bound * 2^(j/16) e^{r*} for exp_parts_dd, r* = x - k' ln2/16
# exactly (proofs/exp_dd_error_bound.py derives it and asserts that this number is >= what it
# derives and within a factor 2 of it): derived 2^-83.602 (measured: 2^-84.59 on the corpus of
# tests/test_precision_exp.py, 2^-84.9 on 20000 random points). Dominant terms, each at most: the roundings of l (th*low and the sums) 2^-85.2, the
# r^5 Q(r) term (fh != r^4, Horner, the 1/n! coefficients) 2^-85.5, the other roundings of low
# 2^-86.0, the Taylor truncation after r^10 2^-86.0, tl*low left out 2^-88.0.
EXP_PARTS_DD_MAX_REL_ERR = 2.0**-83.5


@jit(inline=True)
def _pick16(j, t):
    """``t[j]`` for ``0 <= j < 16`` by a tree of 15 selects on the bits of ``j``."""
    b0 = (j & 1) != 0
    b1 = (j & 2) != 0
    b2 = (j & 4) != 0
    b3 = (j & 8) != 0
    a0 = t[1] if b0 else t[0]
    a1 = t[3] if b0 else t[2]
    a2 = t[5] if b0 else t[4]
    a3 = t[7] if b0 else t[6]
    a4 = t[9] if b0 else t[8]
    a5 = t[11] if b0 else t[10]
    a6 = t[13] if b0 else t[12]
    a7 = t[15] if b0 else t[14]
    c0 = a1 if b1 else a0
    c1 = a3 if b1 else a2
    c2 = a5 if b1 else a4
    c3 = a7 if b1 else a6
    d0 = c1 if b2 else c0
    d1 = c3 if b2 else c2
    return d1 if b3 else d0


@jit(inline=True)
def exp_parts_dd(x):
    """``exp(x) 2^PARTS_SCALE_EXP = (h + l) s`` for float64 ``x <= 0``, with ``h + l`` a
    double-double accurate to ``EXP_PARTS_DD_MAX_REL_ERR``: the float64 softmax kernels'
    exponential, accurate enough for their results to be rounded correctly.

    Parameters
    ----------
    x : float64
        ``x <= 0``, ``-inf`` or nan; clamped at ``X_MIN_PARTS`` (-1100) as
        :func:`exp_parts_f64` is.

    Returns
    -------
    h, l : float64
        ``h + l = 2^(j/16) e^r``, ``h`` in ``[0.97, 2]``, ``|l| <= ulp(h)/2``.
    s : float64
        ``2^(k + 600)``, a normal power of two.

    Notes
    -----
    :math:`k' = \\operatorname{round}(16 x / \\ln 2) = 16 k + j`, :math:`0 \\le j < 16`,
    :math:`r = x - k' \\ln 2 / 16` as a double-double ``r_h + r_l`` (``k' C1`` exact,
    ``k' C2`` by TwoProduct), :math:`|r| \\le \\ln 2 / 32 (1 + 2^{-40})`;
    :math:`e^r - 1 = r_h + r_h^2/2 + r_h^3/6 + (r_l e^{r_h} + r_h^4 Q(r_h))` with ``r_h^2``
    exact (TwoProduct), ``r_h^3/6`` a double-double and the sum of the three leading terms
    split exactly by Fast2Sum; :math:`2^{j/16} e^r = T_h + T_h a_h + (\\ldots)` with
    ``T_h a_h`` by TwoProduct and ``T_h + (T_h a_h)_h`` by Fast2Sum.

    Accuracy (``proofs/exp_dd_error_bound.py``): :math:`|(h + l) - 2^{j/16} e^{r^*}| \\le`
    ``EXP_PARTS_DD_MAX_REL_ERR`` :math:`\\cdot 2^{j/16} e^{r^*}` (:math:`2^{-83.5}`; derived
    :math:`2^{-83.60}`) for every float64 ``x`` in ``[-1100, 0]``, with
    :math:`r^* = x - k' \\ln 2/16` exactly.
    """
    x = X_MIN_PARTS if x < X_MIN_PARTS else x  # -inf -> -1100; nan stays nan
    t = fma(x, DD_INV_STEP, SHIFT)  # 1.5*2^52 + k'
    kf = t - SHIFT  # k' as an exact float, |k'| < 2^15
    kk = _f64_as_i64(t) - SHIFT_BITS  # k' as an integer
    j = kk & (DD_TABLE_SIZE - 1)
    k = kk >> DD_TABLE_BITS  # floor(k' / 16)
    hi = fma(-kf, DD_C1, x)  # exact: representable, |hi| < 2^-5
    p2, e2 = two_prod(kf, DD_C2)  # exact
    rh, rl = two_sum(hi, -p2)
    rl = rl - (e2 + kf * DD_C3)  # r = rh + rl to 2^-110
    sh, sl = two_prod(rh, rh)  # rh^2 exactly
    ch, cl = two_prod(sh, rh)  # sh rh exactly: rh^3 = ch + cl + sl rh
    c3 = ch * (1.0 / 6.0)
    c3l = (fma(-c3, 6.0, ch) + (cl + sl * rh)) * (1.0 / 6.0)  # rh^3/6 = c3 + c3l to 2^-75 of it
    fh, fl = two_prod(sh, sh)  # sh^2 exactly: rh^4 = fh + fl + 2 sh sl
    c4 = fh * (1.0 / 24.0)
    c4l = (fma(-c4, 24.0, fh) + (fl + 2.0 * (sh * sl))) * (1.0 / 24.0)  # rh^4/24 = c4 + c4l
    ah, al = fast_two_sum(rh, 0.5 * sh)  # rh + rh^2/2 exactly (|rh| >= rh^2/2)
    ah, a3 = fast_two_sum(ah, c3)  # exact
    ah, a4 = fast_two_sum(ah, c4)  # exact
    q = DD_Q[6]
    q = q * rh + DD_Q[5]
    q = q * rh + DD_Q[4]
    q = q * rh + DD_Q[3]
    q = q * rh + DD_Q[2]
    q = q * rh + DD_Q[1]  # Q(r) = (e^r - 1 - r - r^2/2 - r^3/6 - r^4/24) / r^5 to r^10
    # rl e^r = rl (1 + ah) up to rl r^4/24 (below 2^-84): rl enters e^r - 1 linearly
    low = ((al + a3) + a4) + (0.5 * sl + ((c3l + c4l) + (rl + rl * ah + (fh * rh) * q)))  # < 2^-34
    th = _pick16(j, DD_TABLE_HI)
    tl = _pick16(j, DD_TABLE_LO)
    ph, pl = two_prod(th, ah)  # exact
    h, e = fast_two_sum(th, ph)  # exact (th >= 1 > |ph|)
    l = e + (pl + (tl + (th * low + tl * ah)))
    h, l = fast_two_sum(h, l)  # renormalized: |l| <= ulp(h)/2
    return h, l, _pow2_scaled(k)
