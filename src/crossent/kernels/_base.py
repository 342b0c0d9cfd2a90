"""The foundation of every kernel: one decorator, the intrinsics, the vector-loop builders, the
error-free transformations and double-double operations, and the shared constants.

Every other kernel module imports from here and nothing here imports them.

* :func:`jit`, the one decorator of every Numba function in :mod:`crossent.kernels` (cache,
  error model, signature policy).
* Intrinsics: :func:`fma` (``llvm.fma.f64``), the bit casts :func:`_f64_as_i64` and
  :func:`_i64_as_f64`, :func:`wide_vectors` (the 512-bit vector request).
* LLVM IR loop builders on explicit vectors (``_vector_loop``, ``_dd_lanes``, ``_dd_lanes2``,
  ``_max_lanes``, ``_sum_lanes``), for the loops Numba's pipeline leaves scalar.
* Error-free transformations and double-double operations: :func:`two_sum`,
  :func:`fast_two_sum`, :func:`two_prod`, :func:`dd_add`, :func:`dd_div`;
  the fixed-order sums :func:`dd_sum`, :func:`dd_sum2`, :func:`lane_sum` and the row maximum
  :func:`row_max`.
* Constants, one name each: the two splits of ln 2 (``LN2_CW_*`` for the Cody-Waite
  reduction, ``LN2_DD_*`` for ln 2 as a double-double), ``INF``, ``NAN`` and the lane widths.

These functions need every rounding exactly as written: they are compiled WITHOUT any fastmath
flag (no contraction, no reassociation), and must stay that way.

References
----------
Knuth, TAOCP vol. 2, 4.2.2 (TwoSum); Dekker 1971 (Fast2Sum, TwoProduct, double-double division);
Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci. Comput. 26 (2005).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

# ---------------------------------------------------------------------------------------------
# Constants (plain Python floats: importing them compiles nothing)
# ---------------------------------------------------------------------------------------------
INF = math.inf
NAN = math.nan

# ln 2 split for the Cody-Waite reduction (the exp's ``x - k ln 2`` and ``k ln 2`` in the
# softmax family's log): the head has 42 significant bits, so ``k * LN2_CW_HI`` is exact for
# |k| < 2**11; the tail is ``ln 2 - LN2_CW_HI`` rounded to nearest.
# proofs/exp_error_bound.py checks both.
LN2_CW_HI = float.fromhex("0x1.62e42fefa3800p-1")
LN2_CW_LO = float.fromhex("0x1.ef35793c76730p-45")

# ln 2 as a double-double: LN2_DD_HI = RN(ln 2), LN2_DD_LO = RN(ln 2 - LN2_DD_HI), computed with
# mpmath at 300 bits (tests/test_pmf.py::test_ln2_constant re-derives both).
LN2_DD_HI = 0.6931471805599453  # 0x1.62e42fefa39efp-1
LN2_DD_LO = 2.3190468138462996e-17  # 0x1.abc9e3b39803fp-56

DD_LANES = 16  # lanes of dd_sum: two <8 x double> (AVX-512 registers, or four AVX2 ones)
DD_ACC = 2 * DD_LANES  # scratch size of dd_sum / dd_sum2 (hi and lo of every lane)
SUM_LANES = 32  # lanes of lane_sum: four <8 x double>, enough to hide the latency of an add
PAD = 32  # the kernels' scratch rows are a multiple of PAD long (of DD_LANES and SUM_LANES)


# ---------------------------------------------------------------------------------------------
# The decorator
# ---------------------------------------------------------------------------------------------
def jit(signature=None, *, inline=False, parallel=False, contract=False):
    """The decorator of every Numba function in :mod:`crossent.kernels`.

    ``@jit`` or ``@jit(...)``. Fixed for every kernel: ``cache=True`` (machine code is cached
    on disk) and ``error_model="numpy"``: a division by zero gives the IEEE infinity or nan,
    as the error analyses assume, and never raises. (With Numba's default model a division by
    zero raises ``ZeroDivisionError``; inside a parallel region that exception cannot be
    propagated and the interpreter sees a ``SystemError``.)

    Parameters
    ----------
    signature : str or list of str, optional
        Explicit signatures, compiled (or loaded from the cache) when the module is imported.
        The policy: only for batch kernels called from Python with a small closed set of
        argument types (the PMF kernels: float32 and float64 rows), whose module is then
        imported on first use so that ``import crossent`` compiles nothing. Everything else is
        lazy: a helper is compiled in its callers' types; the softmax-family batch kernels
        once per dtype the Python layer hands them (C-contiguous float32 or float64 rows, so
        no input layout adds a specialization: ``tests/test_layouts.py``).
    inline : bool
        ``inline="always"``: Numba inlines the function's IR at every call site, typed and
        compiled with the caller's options. For the small scalar helpers of the vectorized
        loops and for per-row helpers that take arrays (the reference counting of their
        arguments is then pruned). Not with a signature, not with ``parallel``.
    parallel : bool
        For batch kernels (``prange`` over rows or tasks of rows), only.
    contract : bool
        ``fastmath={"contract"}``: lets LLVM fuse ``a*b + c`` into an FMA. Only for the
        polynomials of the exp, whose error analysis covers both evaluations; never for
        error-free transformations or anything that calls them (``inline`` functions take
        their callers' flags).

    Returns
    -------
    The Numba dispatcher, or a decorator that makes one.
    """
    if callable(signature):  # bare @jit
        return jit()(signature)
    if inline and (signature is not None or parallel):
        raise ValueError("jit: an inlined function takes neither a signature nor parallel=True")
    options = dict(cache=True, error_model="numpy")
    if inline:
        options["inline"] = "always"
    if parallel:
        options["parallel"] = True
    if contract:
        options["fastmath"] = {"contract"}
    if signature is None:
        return numba.njit(**options)
    return numba.njit(signature, **options)


# ---------------------------------------------------------------------------------------------
# Intrinsics
# ---------------------------------------------------------------------------------------------
@intrinsic
def fma(typingctx, a, b, c):
    """Fused multiply-add: ``a*b + c`` rounded once (llvm.fma.f64; a hardware FMA here)."""
    if not (a == types.float64 and b == types.float64 and c == types.float64):
        return None
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        return builder.fma(args[0], args[1], args[2])

    return sig, codegen


@intrinsic
def _f64_as_i64(typingctx, x):
    """Reinterpret the bits of a float64 as an int64 (a free bitcast, vectorizable)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def _i64_as_f64(typingctx, n):
    """Reinterpret the bits of an int64 as a float64 (a free bitcast, vectorizable)."""
    if n != types.int64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


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


# ---------------------------------------------------------------------------------------------
# Error-free transformations and double-double operations
# ---------------------------------------------------------------------------------------------
@jit(inline=True)
def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly (Knuth; any a, b finite)."""
    s = a + b
    bb = s - a
    e = (a - (s - bb)) + (b - bb)
    return s, e


@jit(inline=True)
def fast_two_sum(a, b):
    """``(s, e)`` with ``s + e = a + b`` exactly, valid when ``|a| >= |b|`` (Dekker)."""
    s = a + b
    e = b - (s - a)
    return s, e


@jit(inline=True)
def two_prod(a, b):
    """``(p, e)`` with ``p = fl(a*b)`` and ``p + e = a*b`` exactly (FMA; no overflow/underflow)."""
    p = a * b
    return p, fma(a, b, -p)


@jit(inline=True)
def dd_mul_raw(ah, al, bh, bl):
    """``(ah + al)(bh + bl)`` as an unnormalized double-double ``(p, e)``: ``p = fl(ah bh)``,
    ``e`` its exact error plus the cross terms (the low parts' product dropped: below ``u**2``
    of the result). For a loop that renormalizes once at its end."""
    p, e = two_prod(ah, bh)
    return p, e + (ah * bl + al * bh)


@jit(inline=True)
def dd_mul(ah, al, bh, bl):
    """``(ah + al)(bh + bl)`` as a double-double, renormalized (relative error about
    ``2 u**2``)."""
    p, e = dd_mul_raw(ah, al, bh, bl)
    return two_sum(p, e)


@jit(inline=True)
def dd_add(hi, lo, x):
    """Add a float64 ``x`` to the double-double accumulator ``(hi, lo)``.

    The rounding error of ``hi + x`` is captured exactly by TwoSum and added to ``lo``;
    after n additions of terms summing (in absolute value) to ``T`` the accumulated
    error is at most ``n * u * (n * u * T)`` plus ``u`` relative in the final
    ``hi + lo`` (Ogita, Rump & Oishi 2005, Prop. 4.5 for Sum2).
    """
    s, e = two_sum(hi, x)
    return s, lo + e


@jit(inline=True)
def dd_div(ah, al, bh, bl):
    """Double-double quotient ``(ah + al) / (bh + bl)``: relative error <= 4 u^2 when
    ``|al| <= u |ah|`` and ``|bl| <= u |bh|`` (no underflow).

    ``q = fl(ah / bh)`` (relative error <= u, a first approximation); the remainder
    ``ah - q bh`` is exact by one FMA (it is a float: Dekker); with the low parts,
    ``r = (ah - q bh + al) - q bl`` has error ``O(u^2 |ah|)``; ``r / bh`` (below ``2u |q|``)
    corrects ``q``, and TwoSum renormalizes exactly whatever the inputs. A zero ``bh`` gives
    inf or nan (the kernels' error model), never an exception.
    """
    q = ah / bh
    r = fma(-q, bh, ah)  # exact remainder
    r = (r + al) - q * bl
    return two_sum(q, r / bh)


# ---------------------------------------------------------------------------------------------
# Loops on explicit vectors (LLVM IR)
# ---------------------------------------------------------------------------------------------
_I64 = ir.IntType(64)
_V8 = ir.VectorType(ir.DoubleType(), 8)


def _i64(v):
    return ir.Constant(_I64, v)


def _two_sum_v(builder, a, b):
    s = builder.fadd(a, b)
    bb = builder.fsub(s, a)
    e = builder.fadd(builder.fsub(a, builder.fsub(s, bb)), builder.fsub(b, bb))
    return s, e


def _vector_loop(builder, start, stop, step, init, body, name):
    """Emit ``for j in range(start, stop, step): state = body(j, state)`` (``j`` an i64, the
    state a list of LLVM values started at ``init``); returns the final state. The loop is
    entered only if ``start < stop``; ``stop - start`` must be a multiple of ``step``."""
    pre = builder.block
    loop = builder.append_basic_block(name + ".loop")
    done = builder.append_basic_block(name + ".done")
    builder.cbranch(builder.icmp_signed("<", start, stop), loop, done)
    builder.position_at_end(loop)
    j = builder.phi(_I64)
    st = [builder.phi(v.type) for v in init]
    new = body(j, st)
    jn = builder.add(j, ir.Constant(_I64, step))
    j.add_incoming(start, pre)
    j.add_incoming(jn, loop)
    for ph, v0, v1 in zip(st, init, new):
        ph.add_incoming(v0, pre)
        ph.add_incoming(v1, loop)
    end = builder.block
    builder.cbranch(builder.icmp_signed("<", jn, stop), loop, done)
    builder.position_at_end(done)
    outs = []
    for v0, v1 in zip(init, new):
        ph = builder.phi(v0.type)
        ph.add_incoming(v0, pre)
        ph.add_incoming(v1, end)
        outs.append(ph)
    return outs


def _dd_lanes_codegen(context, builder, signature, args, with_low):
    """The loop of ``_dd_lanes`` / ``_dd_lanes2`` (see there)."""
    vp = _V8.as_pointer()
    xs = builder.bitcast(context.make_array(signature.args[0])(context, builder, args[0]).data, vp)
    if with_low:
        ys = builder.bitcast(context.make_array(signature.args[1])(context, builder, args[1]).data, vp)
    n, iacc = (args[2], 3) if with_low else (args[1], 2)
    cv = builder.bitcast(context.make_array(signature.args[iacc])(context, builder, args[iacc]).data, vp)
    init = [builder.load(builder.gep(cv, [_i64(j)]), align=8) for j in range(4)]  # h0, h1, l0, l1

    def body(j, st):  # vectors j and j + 1: two independent TwoSum chains
        h, lo = [], []
        for q in range(2):
            hq, eq = _two_sum_v(builder, st[q], builder.load(builder.gep(xs, [builder.add(j, _i64(q))]), align=8))
            if with_low:  # the low parts go straight into the lanes' error accumulators
                eq = builder.fadd(eq, builder.load(builder.gep(ys, [builder.add(j, _i64(q))]), align=8))
            h.append(hq)
            lo.append(builder.fadd(st[2 + q], eq))
        return h + lo

    outs = _vector_loop(builder, _i64(0), builder.sdiv(n, _i64(8)), 2, init, body, "ddlanes")
    for j, ph in enumerate(outs):
        builder.store(ph, builder.gep(cv, [_i64(j)]), align=8)
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
    base = builder.bitcast(a.data, vty.as_pointer())
    nv = builder.sdiv(n, ir.Constant(_I64, w))  # whole vectors
    nv4 = builder.mul(builder.sdiv(nv, ir.Constant(_I64, 4)), ir.Constant(_I64, 4))

    def vmax(x, m):  # x > m ? x : m -- false for a nan x, which is skipped
        return builder.select(builder.fcmp_ordered(">", x, m), x, m)

    def load(j):
        return builder.load(builder.gep(base, [j]), align=4)

    zero = ir.Constant(_I64, 0)
    # four independent accumulators over blocks of four vectors, then one vector at a time
    accs = _vector_loop(builder, zero, nv4, 4, [ninf] * 4, lambda j, st: [
        vmax(load(builder.add(j, _i64(q))), st[q]) for q in range(4)], "maxlanes4")
    m = vmax(vmax(accs[0], accs[1]), vmax(accs[2], accs[3]))
    (m,) = _vector_loop(builder, nv4, nv, 1, [m], lambda j, st: [vmax(load(j), st[0])], "maxlanes1")
    r = builder.extract_element(m, ir.Constant(ir.IntType(32), 0))
    for j in range(1, w):
        v = builder.extract_element(m, ir.Constant(ir.IntType(32), j))
        r = builder.select(builder.fcmp_ordered(">", v, r), v, r)
    return r


@intrinsic
def _max_lanes(typingctx, arr, n):
    """``max(arr[0:n])`` ignoring nan entries (-inf if all are nan), over the whole 512-bit
    vectors of ``arr[0:n]`` (16 float32 or 8 float64; the caller does the rest): four
    accumulators over blocks of four vectors, then one vector at a time.

    LLVM IR on explicit vectors: the loop vectorizer does not vectorize a max reduction
    without fast-math flags, and Numba's ``max`` on eight scalar lanes stays scalar. The max
    is exact whatever the order, so the lanes do not change the result (except which of
    ``-0.0`` and ``0.0`` is returned when both occur; they compare equal)."""
    if not isinstance(arr, types.Array) or arr.dtype not in (types.float32, types.float64):
        return None
    return arr.dtype(arr, n), _max_lanes_codegen


def _sum_lanes_codegen(context, builder, signature, args):
    a = context.make_array(signature.args[0])(context, builder, args[0])
    base = builder.bitcast(a.data, _V8.as_pointer())
    zero = ir.Constant(_V8, [0.0] * 8)
    outs = _vector_loop(builder, _i64(0), builder.sdiv(args[1], _i64(8)), 4, [zero] * 4, lambda j, st: [
        builder.fadd(st[q], builder.load(builder.gep(base, [builder.add(j, _i64(q))]), align=8))
        for q in range(4)], "sumlanes")  # four independent chains of 8 lanes
    v = builder.fadd(builder.fadd(outs[0], outs[1]), builder.fadd(outs[2], outs[3]))
    r = builder.extract_element(v, ir.Constant(ir.IntType(32), 0))
    for j in range(1, 8):
        r = builder.fadd(r, builder.extract_element(v, ir.Constant(ir.IntType(32), j)))
    return r


@intrinsic
def _sum_lanes(typingctx, arr, n32):
    """Plain float64 sum of ``arr[0:n32]`` (``n32`` a multiple of 32) in 32 lanes
    (``i mod 32``, four ``<8 x double>``), then the lanes in a fixed order. Plain ``fadd``s,
    no fast-math flags: the order is fixed by the code, not by the compiler."""
    return types.float64(arr, n32), _sum_lanes_codegen


# ---------------------------------------------------------------------------------------------
# Row reductions in a fixed order
# ---------------------------------------------------------------------------------------------
@jit(inline=True)
def padded(n):
    """``n`` rounded up to a multiple of ``PAD``: the kernels' scratch rows have this length,
    zero beyond ``n``, so that their sums need no scalar tail."""
    return -(-n // PAD) * PAD


@jit(inline=True)
def row_max(x):
    """``max_i x_i`` of a contiguous float32/float64 row as float64 (exact); nan entries are
    skipped (the caller detects them through the terms), -inf for an all-nan or empty row."""
    n = x.shape[0]
    w = 16 if x.itemsize == 4 else 8
    nb = n - n % w
    m = _max_lanes(x, n)
    for i in range(nb, n):
        v = x[i]
        m = v if v > m else m
    return np.float64(m)


@jit(inline=True)
def lane_sum(x):
    """Float64 sum of a non-negative, ``PAD``-padded vector in a fixed order, vectorized.

    Each of the 32 lanes adds ``n/32`` terms recursively, then the lanes are added: for
    non-negative terms the relative error is at most ``gamma_{n/32 + 5}`` (about
    ``(n/32 + 5) u``; Higham 2002, sec. 4.2). For the float32/float16 paths only, whose
    results need about 2**-37 relative; the float64 paths use :func:`dd_sum`."""
    return _sum_lanes(x, x.shape[0] - x.shape[0] % SUM_LANES)


@jit
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
    return _combine_lanes(x, x, False, nl, acc)


@jit
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
    return _combine_lanes(x, low, True, nl, acc)


@jit(inline=True)
def _combine_lanes(x, low, with_low, nl, acc):
    """The end of :func:`dd_sum` / :func:`dd_sum2`: the lanes, then the tail ``x[nl:]`` (and
    ``low[nl:]``) in index order, renormalized."""
    w = DD_LANES // 2  # the lanes pairwise (TwoSum of the highs, errors into the lows): 8, 4, 2, 1
    while w >= 1:
        for j in range(w):
            s, e = two_sum(acc[j], acc[j + w])
            acc[j] = s
            acc[DD_LANES + j] += acc[DD_LANES + j + w] + e
        w //= 2
    hi = acc[0]
    lo = acc[DD_LANES]
    for i in range(nl, x.shape[0]):  # empty for the padded scratch rows of the kernels
        hi, lo = dd_add(hi, lo, x[i])
        if with_low:
            lo += low[i]
    if hi - hi != 0.0:  # inf or nan: TwoSum's error terms are nan; keep hi
        return hi, 0.0
    return two_sum(hi, lo)
