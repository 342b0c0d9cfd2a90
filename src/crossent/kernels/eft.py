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


_I64 = ir.IntType(64)
_V4 = ir.VectorType(ir.DoubleType(), 4)


def _two_sum_v(builder, a, b):
    s = builder.fadd(a, b)
    bb = builder.fsub(s, a)
    e = builder.fadd(builder.fsub(a, builder.fsub(s, bb)), builder.fsub(b, bb))
    return s, e


@intrinsic
def _dd_lanes8(typingctx, arr, n8, acc):
    """TwoSum-accumulate ``arr[0:n8]`` into 8 lanes: ``acc[0:8]`` hi, ``acc[8:16]`` lo.

    Lane ``j`` receives the elements ``i = j (mod 8)`` in index order. Written as LLVM IR on
    ``<4 x double>`` (two vectors, so two independent dependency chains) because Numba's
    pipeline does not vectorize several interleaved scalar TwoSum chains by itself. The
    adds are plain ``fadd``/``fsub`` with no fast-math flags: every rounding as written.
    ``n8`` must be a multiple of 8 and at most ``len(arr)``; ``acc`` has 16 entries.
    """
    sig = types.void(arr, n8, acc)

    def codegen(context, builder, signature, args):
        a = context.make_array(signature.args[0])(context, builder, args[0])
        c = context.make_array(signature.args[2])(context, builder, args[2])
        n = args[1]
        vp = _V4.as_pointer()
        cv = builder.bitcast(c.data, vp)
        init = [builder.load(builder.gep(cv, [ir.Constant(_I64, j)]), align=8) for j in range(4)]
        pre = builder.block
        loop = builder.append_basic_block("ddlanes.loop")
        done = builder.append_basic_block("ddlanes.done")
        builder.cbranch(builder.icmp_signed(">", n, ir.Constant(_I64, 0)), loop, done)
        builder.position_at_end(loop)
        i = builder.phi(_I64)
        acc_phi = [builder.phi(_V4) for _ in range(4)]  # h0, h1, l0, l1
        xp = builder.bitcast(builder.gep(a.data, [i]), vp)
        x0 = builder.load(xp, align=8)
        x1 = builder.load(builder.gep(xp, [ir.Constant(_I64, 1)]), align=8)
        h0, e0 = _two_sum_v(builder, acc_phi[0], x0)
        h1, e1 = _two_sum_v(builder, acc_phi[1], x1)
        l0 = builder.fadd(acc_phi[2], e0)
        l1 = builder.fadd(acc_phi[3], e1)
        inext = builder.add(i, ir.Constant(_I64, 8))
        i.add_incoming(ir.Constant(_I64, 0), pre)
        i.add_incoming(inext, loop)
        for ph, v0, v1 in zip(acc_phi, init, (h0, h1, l0, l1)):
            ph.add_incoming(v0, pre)
            ph.add_incoming(v1, loop)
        loop_end = builder.block
        builder.cbranch(builder.icmp_signed("<", inext, n), loop, done)
        builder.position_at_end(done)
        outs = []
        for v0, v1 in zip(init, (h0, h1, l0, l1)):
            ph = builder.phi(_V4)
            ph.add_incoming(v0, pre)
            ph.add_incoming(v1, loop_end)
            outs.append(ph)
        for j, ph in enumerate(outs):
            builder.store(ph, builder.gep(cv, [ir.Constant(_I64, j)]), align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(cache=True)
def dd_sum(x, acc):
    """Double-double sum of ``x`` (float64, contiguous) in a fixed order, vectorized.

    Eight TwoSum lanes (``i mod 8``), then the lanes and the tail in index order. ``acc`` is
    a scratch array of 16 float64. The result does not depend on the thread count or on
    how a batch is split. Error: the hi/lo pair carries the sum to within
    ``n * u * (n * u * sum|x|)`` plus the renormalization (Ogita, Rump & Oishi 2005, Sum2).
    """
    n = x.shape[0]
    n8 = n - n % 8
    for j in range(16):
        acc[j] = 0.0
    _dd_lanes8(x, n8, acc)
    hi = 0.0
    lo = 0.0
    for j in range(8):
        hi, lo = dd_add(hi, lo, acc[j])
    for i in range(n8, n):
        hi, lo = dd_add(hi, lo, x[i])
    for j in range(8):
        lo += acc[8 + j]
    if hi - hi != 0.0:  # inf or nan: TwoSum's error terms are nan; keep hi
        return hi, 0.0
    return two_sum(hi, lo)
