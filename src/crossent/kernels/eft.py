"""Error-free transformations (EFT) for float64.

These functions need every rounding exactly as written: they are compiled WITHOUT any
fastmath flag (no contraction, no reassociation), and must stay that way.

References
----------
Knuth, TAOCP vol. 2, 4.2.2 (TwoSum); Dekker 1971 (Fast2Sum);
Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci. Comput. 26 (2005).
"""

from __future__ import annotations

import numpy as np
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


@intrinsic
def wide_vectors(typingctx):
    """Ask LLVM to vectorize the calling function with 512-bit vectors where the CPU has them.

    LLVM's tuning for Intel cores with AVX-512 prefers 256-bit vectors (``prefer-256-bit``),
    so loops over float64 run four lanes wide although the registers hold eight. This sets the
    function attribute ``"prefer-vector-width"="512"`` on the function being compiled (the one
    that calls ``wide_vectors()``, usually as its first statement). On a CPU without AVX-512 it
    has no effect. Results do not change: every vectorized loop here does the same operations
    in every lane, and the sums use explicit, fixed lanes (``_dd_lanes``), never a
    reassociated reduction.
    """
    def codegen(context, builder, signature, args):
        # llvmlite's FunctionAttributes only knows flag attributes; a key="value" string
        # attribute is added to the underlying set as its IR text
        set.add(builder.function.attributes, '"prefer-vector-width"="512"')
        return context.get_dummy_value()

    return types.none(), codegen


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
_V8 = ir.VectorType(ir.DoubleType(), 8)
DD_LANES = 16  # lanes of dd_sum: two <8 x double> (AVX-512 registers, or four AVX2 ones)
DD_ACC = 2 * DD_LANES  # scratch size of dd_sum / dd_sum2 (hi and lo of every lane)


def _two_sum_v(builder, a, b):
    s = builder.fadd(a, b)
    bb = builder.fsub(s, a)
    e = builder.fadd(builder.fsub(a, builder.fsub(s, bb)), builder.fsub(b, bb))
    return s, e


def _dd_lanes_codegen(context, builder, signature, args, with_low):
    """The loop of ``_dd_lanes`` / ``_dd_lanes2`` (see there)."""
    a = context.make_array(signature.args[0])(context, builder, args[0])
    if with_low:
        b = context.make_array(signature.args[1])(context, builder, args[1])
        n, cacc = args[2], args[3]
        c = context.make_array(signature.args[3])(context, builder, cacc)
    else:
        n = args[1]
        c = context.make_array(signature.args[2])(context, builder, args[2])
    vp = _V8.as_pointer()
    cv = builder.bitcast(c.data, vp)
    init = [builder.load(builder.gep(cv, [ir.Constant(_I64, j)]), align=8) for j in range(4)]
    pre = builder.block
    loop = builder.append_basic_block("ddlanes.loop")
    done = builder.append_basic_block("ddlanes.done")
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(_I64, 0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    acc_phi = [builder.phi(_V8) for _ in range(4)]  # h0, h1, l0, l1
    xp = builder.bitcast(builder.gep(a.data, [i]), vp)
    x0 = builder.load(xp, align=8)
    x1 = builder.load(builder.gep(xp, [ir.Constant(_I64, 1)]), align=8)
    h0, e0 = _two_sum_v(builder, acc_phi[0], x0)
    h1, e1 = _two_sum_v(builder, acc_phi[1], x1)
    if with_low:  # the low parts go straight into the lanes' error accumulators
        yp = builder.bitcast(builder.gep(b.data, [i]), vp)
        e0 = builder.fadd(e0, builder.load(yp, align=8))
        e1 = builder.fadd(e1, builder.load(builder.gep(yp, [ir.Constant(_I64, 1)]), align=8))
    l0 = builder.fadd(acc_phi[2], e0)
    l1 = builder.fadd(acc_phi[3], e1)
    inext = builder.add(i, ir.Constant(_I64, DD_LANES))
    i.add_incoming(ir.Constant(_I64, 0), pre)
    i.add_incoming(inext, loop)
    for ph, v0, v1 in zip(acc_phi, init, (h0, h1, l0, l1)):
        ph.add_incoming(v0, pre)
        ph.add_incoming(v1, loop)
    loop_end = builder.block
    builder.cbranch(builder.icmp_signed("<", inext, n), loop, done)
    builder.position_at_end(done)
    outs = []
    for v0, v1 in zip(init, (h0, h1, l0, l1)):  # every phi first, then the stores
        ph = builder.phi(_V8)
        ph.add_incoming(v0, pre)
        ph.add_incoming(v1, loop_end)
        outs.append(ph)
    for j, ph in enumerate(outs):
        builder.store(ph, builder.gep(cv, [ir.Constant(_I64, j)]), align=8)
    return context.get_dummy_value()


@intrinsic
def _dd_lanes(typingctx, arr, n16, acc):
    """TwoSum-accumulate ``arr[0:n16]`` into 16 lanes: ``acc[0:16]`` hi, ``acc[16:32]`` lo.

    Lane ``j`` receives the elements ``i = j (mod 16)`` in index order. Written as LLVM IR on
    ``<8 x double>`` (two vectors, so two independent dependency chains) because Numba's
    pipeline does not vectorize several interleaved scalar TwoSum chains by itself. The
    adds are plain ``fadd``/``fsub`` with no fast-math flags: every rounding as written.
    ``n16`` must be a multiple of 16 and at most ``len(arr)``; ``acc`` has 32 entries.
    """
    return types.void(arr, n16, acc), lambda c, b, s, a: _dd_lanes_codegen(c, b, s, a, False)


@intrinsic
def _dd_lanes2(typingctx, arr, low, n16, acc):
    """``_dd_lanes`` of ``arr``, with ``low[i]`` added to lane ``i mod 16``'s error part.

    For terms given as pairs ``arr[i] + low[i]`` with ``|low[i]|`` a rounding error of
    ``arr[i]`` (below ``2**-52 arr[i]``): the lows need no compensation of their own."""
    return (types.void(arr, low, n16, acc),
            lambda c, b, s, a: _dd_lanes_codegen(c, b, s, a, True))


def _max_lanes_codegen(context, builder, signature, args):
    a = context.make_array(signature.args[0])(context, builder, args[0])
    n = args[1]
    fty = context.get_value_type(signature.args[0].dtype)
    w = 16 if isinstance(fty, ir.FloatType) else 8  # one 512-bit register
    vty = ir.VectorType(fty, w)
    ninf = ir.Constant(vty, [float("-inf")] * w)
    pre = builder.block
    loop = builder.append_basic_block("maxlanes.loop")
    done = builder.append_basic_block("maxlanes.done")
    builder.cbranch(builder.icmp_signed(">", n, ir.Constant(_I64, 0)), loop, done)
    builder.position_at_end(loop)
    i = builder.phi(_I64)
    m_phi = [builder.phi(vty) for _ in range(4)]
    xp = builder.bitcast(builder.gep(a.data, [i]), vty.as_pointer())
    new = []
    for j in range(4):
        x = builder.load(builder.gep(xp, [ir.Constant(_I64, j)]), align=4)
        # x > m ? x : m -- false for a nan x, which is skipped
        new.append(builder.select(builder.fcmp_ordered(">", x, m_phi[j]), x, m_phi[j]))
    inext = builder.add(i, ir.Constant(_I64, 4 * w))
    i.add_incoming(ir.Constant(_I64, 0), pre)
    i.add_incoming(inext, loop)
    for ph, v in zip(m_phi, new):
        ph.add_incoming(ninf, pre)
        ph.add_incoming(v, loop)
    loop_end = builder.block
    builder.cbranch(builder.icmp_signed("<", inext, n), loop, done)
    builder.position_at_end(done)
    outs = []
    for v in new:
        ph = builder.phi(vty)
        ph.add_incoming(ninf, pre)
        ph.add_incoming(v, loop_end)
        outs.append(ph)
    m = outs[0]
    for v in outs[1:]:
        m = builder.select(builder.fcmp_ordered(">", v, m), v, m)
    r = builder.extract_element(m, ir.Constant(ir.IntType(32), 0))
    for j in range(1, w):
        v = builder.extract_element(m, ir.Constant(ir.IntType(32), j))
        r = builder.select(builder.fcmp_ordered(">", v, r), v, r)
    return r


@intrinsic
def _max_lanes(typingctx, arr, n):
    """``max(arr[0:n])`` ignoring nan entries (-inf if all are nan), ``n`` a multiple of
    64 (float32) or 32 (float64): four 512-bit vectors per step.

    LLVM IR on explicit vectors: the loop vectorizer does not vectorize a max reduction
    without fast-math flags, and Numba's ``max`` on eight scalar lanes stays scalar. The max
    is exact whatever the order, so the lanes do not change the result (except which of
    ``-0.0`` and ``0.0`` is returned when both occur; they compare equal)."""
    if not isinstance(arr, types.Array) or arr.dtype not in (types.float32, types.float64):
        return None
    return arr.dtype(arr, n), _max_lanes_codegen


@njit(cache=True)
def row_max(x):
    """``max_i x_i`` of a contiguous float32/float64 row as float64 (exact); nan entries are
    skipped (the caller detects them through the terms), -inf for an all-nan or empty row."""
    n = x.shape[0]
    blk = 64 if x.itemsize == 4 else 32
    nb = n - n % blk
    m = _max_lanes(x, nb)
    for i in range(nb, n):
        v = x[i]
        m = v if v > m else m
    return np.float64(m)


@njit(cache=True)
def dd_sum(x, acc):
    """Double-double sum of ``x`` (float64, contiguous) in a fixed order, vectorized.

    Sixteen TwoSum lanes (``i mod 16``), then the lanes and the tail in index order. ``acc``
    is a scratch array of ``DD_ACC`` (32) float64. The result does not depend on the thread count or on
    how a batch is split. Error: the hi/lo pair carries the sum to within
    ``n * u * (n * u * sum|x|)`` plus the renormalization (Ogita, Rump & Oishi 2005, Sum2).
    """
    wide_vectors()
    n = x.shape[0]
    nl = n - n % DD_LANES
    for j in range(DD_ACC):
        acc[j] = 0.0
    _dd_lanes(x, nl, acc)
    return _dd_finish(x, x, False, nl, acc)


@njit(cache=True)
def dd_sum2(x, low, acc):
    """Double-double sum of the pairs ``x[i] + low[i]``, where ``|low[i]|`` is below
    ``2**-52 |x[i]|`` (the error term of ``x[i]``), in a fixed order, vectorized.

    As :func:`dd_sum`, with ``low[i]`` added to the error accumulator of lane ``i mod 16``:
    the lows are second-order (their own rounding errors are below ``n u 2**-52 sum|x|``),
    so one pass does the work of two double-double sums."""
    wide_vectors()
    n = x.shape[0]
    nl = n - n % DD_LANES
    for j in range(DD_ACC):
        acc[j] = 0.0
    _dd_lanes2(x, low, nl, acc)
    return _dd_finish(x, low, True, nl, acc)


@njit(inline="always", cache=True)
def _dd_finish(x, low, with_low, nl, acc):
    """The lanes, then the tail ``x[nl:]`` (and ``low[nl:]``) in index order, renormalized."""
    hi = 0.0
    lo = 0.0
    for j in range(DD_LANES):
        hi, lo = dd_add(hi, lo, acc[j])
    for i in range(nl, x.shape[0]):
        hi, lo = dd_add(hi, lo, x[i])
        if with_low:
            lo += low[i]
    for j in range(DD_LANES):
        lo += acc[DD_LANES + j]
    if hi - hi != 0.0:  # inf or nan: TwoSum's error terms are nan; keep hi
        return hi, 0.0
    return two_sum(hi, lo)
