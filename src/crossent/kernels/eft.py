"""Error-free transformations (EFT) for float64.

These functions need every rounding exactly as written: they are compiled WITHOUT any
fastmath flag (no contraction, no reassociation), and must stay that way.

References
----------
Knuth, TAOCP vol. 2, 4.2.2 (TwoSum); Dekker 1971 (Fast2Sum);
Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci. Comput. 26 (2005).
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _fma(typingctx, a, b, c):
    """``a*b + c`` with one rounding (llvm.fma.f64; a hardware FMA on this machine)."""
    if not (a == types.float64 and b == types.float64 and c == types.float64):
        return None
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(args[0], args[1], args[2])

    return sig, codegen


@njit(inline="always", cache=True)
def fma(a, b, c):
    """Fused multiply-add: ``a*b + c`` rounded once."""
    return _fma(a, b, c)


@njit(inline="always", cache=True)
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly (Knuth; any a, b finite)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@njit(inline="always", cache=True)
def fast_two_sum(a, b):
    """``(s, e)`` with ``s + e = a + b`` exactly, valid when ``|a| >= |b|`` (Dekker)."""
    s = a + b
    e = b - (s - a)
    return s, e


@njit(inline="always", cache=True)
def dd_add(hi, lo, x):
    """Add a float64 ``x`` to the double-double accumulator ``(hi, lo)``.

    The rounding error of ``hi + x`` is captured exactly by TwoSum and added to ``lo``;
    after n additions of terms summing (in absolute value) to ``T`` the accumulated
    error is at most ``n * u * (n * u * T)`` plus ``u`` relative in the final
    ``hi + lo`` (Ogita, Rump & Oishi 2005, Prop. 4.5 for Sum2).
    """
    s, e = two_sum(hi, x)
    return s, lo + e


@njit(inline="always", cache=True)
def dd_add_inf(hi, lo, x):
    """:func:`dd_add` for terms that may be +inf: once the sum is infinite it stays so
    (TwoSum's error term of an infinite sum is nan and is dropped)."""
    s, e = two_sum(hi, x)
    if s - s != 0.0:  # s is inf or nan: keep s, drop the (nan) error term
        return s, 0.0
    return s, lo + e


@njit(inline="always", cache=True)
def dd_add_dd(ahi, alo, bhi, blo):
    """Sum of two double-doubles, renormalized (accurate to about ``u**2`` relative for same-sign inputs)."""
    s, e = two_sum(ahi, bhi)
    e += alo + blo
    return fast_two_sum(s, e)
