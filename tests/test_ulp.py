"""Tests of crossent.ulp: correct rounding to binary formats and ULP error measurement.

Expected values are closed forms: powers of two and format constants taken from IEEE 754
(binary16: p=11, emin=-14, emax=15; binary32: p=24, emin=-126, emax=127; binary64: p=53,
emin=-1022, emax=1023), or NumPy's own correctly rounded conversions from exact floats.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from mpmath import mp, mpf

from crossent.ulp import float_format, round_to_dtype, ulp, ulp_error

DTYPES = ["float16", "float32", "float64"]
# (p, emin, emax) from IEEE 754-2019 table 3.5
PARAMS = {"float16": (11, -14, 15), "float32": (24, -126, 127), "float64": (53, -1022, 1023)}


def exact(expr_fn):
    """Evaluate an mpmath expression at 2000 bits (exact for the dyadic values built here)."""
    with mp.workprec(2000):
        return expr_fn()


def bits(v):
    """Bit pattern of a NumPy scalar, to compare signed zeros and nans exactly."""
    return v.view(np.dtype(f"u{v.dtype.itemsize}")).item()


@pytest.mark.parametrize("dtype", DTYPES)
def test_format_parameters_match_finfo(dtype):
    fmt = float_format(dtype)
    fi = np.finfo(dtype)
    assert (fmt.p, fmt.emin, fmt.emax) == PARAMS[dtype]
    assert fi.nmant + 1 == fmt.p and fi.minexp == fmt.emin and fi.maxexp - 1 == fmt.emax


def test_bad_dtype():
    with pytest.raises(TypeError, match="dtype"):
        round_to_dtype(1, np.int32)
    with pytest.raises(TypeError, match="dtype"):
        ulp(1, "complex128")


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_and_signed_zero(dtype):
    t = np.dtype(dtype).type
    assert bits(round_to_dtype(0, dtype)) == bits(t(0.0))
    assert bits(round_to_dtype(mpf(0), dtype)) == bits(t(0.0))
    assert bits(round_to_dtype(-0.0, dtype)) == bits(t(-0.0))
    p, emin, _ = PARAMS[dtype]
    # ulp(0) is the smallest subnormal 2**(emin-p+1)
    assert ulp(0, dtype) == mpf(2) ** (emin - p + 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_specials(dtype):
    assert np.isnan(round_to_dtype(mpf("nan"), dtype))
    assert round_to_dtype(mpf("inf"), dtype) == np.inf
    assert round_to_dtype(mpf("-inf"), dtype) == -np.inf
    assert round_to_dtype(float("-inf"), dtype).dtype == np.dtype(dtype)
    with pytest.raises(ValueError, match="x"):
        ulp(mpf("inf"), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_subnormals(dtype):
    p, emin, _ = PARAMS[dtype]
    tiny = mpf(2) ** (emin - p + 1)  # 2**-24, 2**-149, 2**-1074
    t = np.dtype(dtype).type
    smallest = np.finfo(dtype).smallest_subnormal
    assert round_to_dtype(tiny, dtype) == smallest
    # exactly half the smallest subnormal is a tie between 0 (even) and tiny (odd): 0
    half = exact(lambda: tiny / 2)
    assert bits(round_to_dtype(half, dtype)) == bits(t(0.0))
    assert bits(round_to_dtype(-half, dtype)) == bits(t(-0.0))
    # just above half rounds up
    above = exact(lambda: tiny / 2 + tiny * mpf(2) ** -300)
    assert round_to_dtype(above, dtype) == smallest
    # 3/2 tiny is a tie between 1 and 2 quanta: even is 2
    assert round_to_dtype(exact(lambda: 3 * tiny / 2), dtype) == t(2 * smallest)
    # 5/2 tiny: tie between 2 (even) and 3
    assert round_to_dtype(exact(lambda: 5 * tiny / 2), dtype) == t(2 * smallest)
    # the subnormal spacing is fixed: just below the normal range, ulp is still tiny
    below_normal = exact(lambda: mpf(2) ** emin - tiny / 3)
    assert ulp(below_normal, dtype) == tiny
    assert round_to_dtype(below_normal, dtype) == np.finfo(dtype).smallest_normal
    assert ulp(exact(lambda: tiny * mpf(2) ** -500), dtype) == tiny


@pytest.mark.parametrize("dtype", DTYPES)
def test_largest_finite_and_overflow(dtype):
    p, _, emax = PARAMS[dtype]
    big = np.finfo(dtype).max
    mx = exact(lambda: (2 - mpf(2) ** (1 - p)) * mpf(2) ** emax)
    half_ulp = mpf(2) ** (emax - p)
    assert round_to_dtype(mx, dtype) == big
    # max + half ulp is a tie between max (odd significand) and 2**(emax+1): rounds to inf
    assert round_to_dtype(exact(lambda: mx + half_ulp), dtype) == np.inf
    assert round_to_dtype(exact(lambda: -(mx + half_ulp)), dtype) == -np.inf
    # just below the tie stays finite
    assert round_to_dtype(exact(lambda: mx + half_ulp * (1 - mpf(2) ** -100)), dtype) == big
    assert round_to_dtype(exact(lambda: mpf(2) ** (emax + 5)), dtype) == np.inf
    # ulp beyond the range stays the top binade's spacing
    assert ulp(exact(lambda: mpf(2) ** (emax + 40)), dtype) == mpf(2) ** (emax - p + 1)
    assert ulp(mx, dtype) == mpf(2) ** (emax - p + 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ties_to_even_at_one(dtype):
    p = PARAMS[dtype][0]
    t = np.dtype(dtype).type
    eps = mpf(2) ** (1 - p)
    # 1 + eps/2 is the midpoint of 1 (even) and 1 + eps (odd): 1
    assert round_to_dtype(exact(lambda: 1 + eps / 2), dtype) == t(1)
    # 1 + 3 eps/2 is the midpoint of 1+eps (odd) and 1+2eps (even): 1+2eps
    assert round_to_dtype(exact(lambda: 1 + 3 * eps / 2), dtype) == t(1 + 2 * float(eps))
    # off the midpoint by 2**-200 relative goes to the nearer side
    assert round_to_dtype(exact(lambda: 1 + eps / 2 + mpf(2) ** -200), dtype) == t(1 + float(eps))
    assert round_to_dtype(exact(lambda: 1 + 3 * eps / 2 - mpf(2) ** -200), dtype) == t(
        1 + float(eps)
    )


def test_float32_double_rounding_trap():
    # x = 1 + 2**-24 + 2**-60 lies just above the float32 midpoint 1 + 2**-24 between 1 and
    # 1 + 2**-23, so its correct float32 rounding is 1 + 2**-23. Its nearest float64 is the
    # midpoint itself (2**-60 is below half a float64 ulp of 1), which float32 then rounds to 1
    # by ties-to-even: rounding twice is wrong.
    x = exact(lambda: 1 + mpf(2) ** -24 + mpf(2) ** -60)
    assert float(x) == 1 + 2.0**-24
    naive = np.float32(float(x))
    right = round_to_dtype(x, np.float32)
    assert naive == np.float32(1.0)
    assert right == np.float32(1 + 2.0**-23)
    assert ulp_error(naive, x, np.float32) > 0.5
    assert ulp_error(right, x, np.float32) < 0.5
    # the same trap through float32 -> float16
    y = exact(lambda: 1 + mpf(2) ** -11 + mpf(2) ** -30)
    assert np.float16(np.float32(float(y))) == np.float16(1)
    assert round_to_dtype(y, np.float16) == np.float16(1 + 2.0**-10)


def test_fraction_and_int_inputs():
    # NumPy converts a Python float to float32 correctly rounded; 1/3 and 1/10 as exact
    # rationals have no float64 near-midpoint issue at float32 precision here.
    assert round_to_dtype(Fraction(1, 3), np.float64) == 1 / 3
    assert round_to_dtype(Fraction(1, 10), np.float32) == np.float32(0.1)
    assert round_to_dtype(Fraction(-7, 3), np.float16) == np.float16(-7 / 3)
    assert round_to_dtype(2**53 + 1, np.float64) == 2.0**53  # tie to even
    assert round_to_dtype(2**53 + 3, np.float64) == 2.0**53 + 4  # tie to even (up)
    assert round_to_dtype(10**400, np.float64) == np.inf
    # a rational tie: 3/2 of the smallest float16 subnormal
    assert round_to_dtype(Fraction(3, 2**25), np.float16) == np.float16(2**-23)


def test_array_input():
    a = np.array([mpf(1), mpf("nan"), mpf("-inf"), mpf(0.1)], dtype=object)
    r = round_to_dtype(a, np.float32)
    assert r.dtype == np.float32 and r.shape == (4,)
    assert r[0] == 1 and np.isnan(r[1]) and r[2] == -np.inf and r[3] == np.float32(0.1)


def test_ulp_values():
    assert ulp(1, np.float64) == mpf(2) ** -52
    assert ulp(mpf(1.5), np.float32) == mpf(2) ** -23
    assert ulp(-2, np.float16) == mpf(2) ** -9
    assert ulp(exact(lambda: 2 - mpf(2) ** -100), np.float64) == mpf(2) ** -52
    assert ulp(Fraction(1, 3), np.float64) == mpf(2) ** -54


def test_ulp_error_semantics():
    f = np.float64
    assert ulp_error(f(np.nan), mpf("nan"), f) == 0
    assert ulp_error(f(1.0), mpf("nan"), f) == math.inf
    assert ulp_error(f(np.nan), mpf(1), f) == math.inf
    assert ulp_error(f(np.inf), mpf("inf"), f) == 0
    assert ulp_error(f(-np.inf), mpf("inf"), f) == math.inf
    assert ulp_error(f(1e308), mpf("inf"), f) == math.inf
    assert ulp_error(f(np.inf), mpf(1), f) == math.inf
    assert ulp_error(f(-0.0), mpf(0), f) == 0
    assert ulp_error(f(0.0), -0.0, f) == 0
    # correctly rounded overflow: the exact value 2**1024 rounds to inf
    assert ulp_error(f(np.inf), mpf(2) ** 1024, f) == 0
    assert ulp_error(f(np.inf), mpf(2) ** 1023, f) == math.inf
    # the largest finite against 2**1024: |max - 2**1024| = ulp(max) = 2**971
    assert ulp_error(f(np.finfo(f).max), mpf(2) ** 1024, f) == 1.0
    # exact difference, far smaller than float64 could represent as a difference
    x = exact(lambda: 1 + mpf(2) ** -52 / 3)
    assert ulp_error(f(1.0), x, f) == pytest.approx(1 / 3, rel=1e-15)
    # subnormal scale: ulp is the smallest subnormal
    assert ulp_error(f(0.0), mpf(2) ** -1074, f) == 1.0
    assert ulp_error(np.float16(0.0), mpf(2) ** -26, np.float16) == 0.25


def test_ulp_error_arrays_and_broadcast():
    c = np.array([1.0, 2.0, np.nan], dtype=np.float32)
    e = np.array([mpf(1), mpf(2) + mpf(2) ** -23, mpf("nan")], dtype=object)
    # ulp(2) in float32 is 2**-22, so the middle error is 1/2
    r = ulp_error(c, e, np.float32)
    assert r.dtype == np.float64 and r.shape == (3,)
    assert list(r) == [0.0, 0.5, 0.0]
    r2 = ulp_error(np.array([1.0, 1.0]), np.array([1.0, 1.0 + 2**-52]), np.float64)
    assert list(r2) == [0.0, 1.0]
    r3 = ulp_error(np.zeros((2, 3)), mpf(0), np.float64)
    assert r3.shape == (2, 3) and not r3.any()


finite64 = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(finite64)
@settings(max_examples=300, deadline=None)
def test_round_of_a_float_is_itself(x):
    assert bits(round_to_dtype(mpf(x), np.float64)) == bits(np.float64(x)) or x == 0
    y = np.float32(x) if abs(x) < 3e38 else np.float32(1.5)
    assert round_to_dtype(mpf(float(y)), np.float32) == y
    z = np.float16(x) if abs(x) < 6e4 else np.float16(1.5)
    assert round_to_dtype(mpf(float(z)), np.float16) == z


@given(finite64, st.integers(min_value=1, max_value=2**40), st.integers(-200, 0))
@settings(max_examples=300, deadline=None)
def test_rounded_value_within_half_ulp(x, k, e):
    # a value off a float64 by a non-dyadic perturbation; for float64 the correctly rounded
    # result is within 1/2 ulp, and equals NumPy's correctly rounded cast of the float64 x
    # when the perturbation is tiny
    with mp.workprec(3000):
        v = mpf(x) + mpf(x) * mpf(k) * mpf(2) ** (e - 60) / 3
    for dt in DTYPES:
        r = round_to_dtype(v, dt)
        if np.isfinite(r):
            assert ulp_error(r, v, dt) <= 0.5


@given(finite64)
@settings(max_examples=200, deadline=None)
def test_agrees_with_numpy_cast_from_float64(x):
    # NumPy's float64 -> float32/float16 casts round correctly (one rounding from an exact
    # float64), so they are an independent check for exact float64 inputs
    with np.errstate(over="ignore"):
        assert bits(round_to_dtype(mpf(x), np.float32)) == bits(np.float64(x).astype(np.float32)) or x == 0
        assert bits(round_to_dtype(mpf(x), np.float16)) == bits(np.float64(x).astype(np.float16)) or x == 0


@given(finite64, finite64)
@settings(max_examples=300, deadline=None)
def test_monotone(a, b):
    lo, hi = min(a, b), max(a, b)
    with mp.workprec(3000):
        vlo = mpf(lo) - abs(mpf(lo)) * mpf(2) ** -70
        vhi = mpf(hi) + abs(mpf(hi)) * mpf(2) ** -70
    for dt in DTYPES:
        assert round_to_dtype(vlo, dt) <= round_to_dtype(vhi, dt)


@given(st.fractions(min_value=-1000, max_value=1000, max_denominator=10**30))
@settings(max_examples=200, deadline=None)
def test_fraction_rounding_is_nearest(q):
    # check against the definition: no float of the format is nearer than the result
    for dt in DTYPES:
        r = round_to_dtype(q, dt)
        if not np.isfinite(r):
            continue
        fr = Fraction(float(r))
        up = Fraction(float(np.nextafter(r, np.dtype(dt).type(np.inf))))
        dn = Fraction(float(np.nextafter(r, np.dtype(dt).type(-np.inf))))
        assert abs(fr - q) <= abs(up - q) and abs(fr - q) <= abs(dn - q)
        assert ulp_error(r, q, dt) <= 0.5


def test_mpmath_global_precision_untouched():
    before = mp.prec
    round_to_dtype(mpf(1) / 3, np.float32)
    ulp_error(np.float32(1), mpf(1), np.float32)
    assert mp.prec == before
    assert isinstance(ulp(1, np.float32), mpmath.mpf)


# --- exact values with astronomically large or small exponents ------------------------------
# e^{-10^30} and e^{10^30} are mpf values with exponents near -+1.4e30: any code that shifted
# their significand into an integer would raise OverflowError (or exhaust memory). Expected
# values are the IEEE definition: below half the smallest subnormal rounds to a zero of the
# value's sign, at or beyond 2**(emax+1) * (1 - 2**-(p+1)) to an infinity.


@pytest.mark.parametrize("dtype", DTYPES)
def test_astronomical_exponents_round_by_exponent(dtype):
    tiny, huge = mpmath.exp(-1e30), mpmath.exp(1e30)
    assert tiny > 0 and huge > 0 and abs(tiny.exp) > 10**29 and huge.exp > 10**29
    t = np.dtype(dtype).type
    assert bits(round_to_dtype(tiny, dtype)) == bits(t(0.0))
    assert bits(round_to_dtype(-tiny, dtype)) == bits(t(-0.0))
    assert round_to_dtype(huge, dtype) == np.inf and round_to_dtype(-huge, dtype) == -np.inf
    out = round_to_dtype(np.array([tiny, -huge, mpf(1)], dtype=object), dtype)
    assert out.dtype == np.dtype(dtype) and list(out) == [0.0, -np.inf, 1.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_exponent_shortcuts_keep_the_boundaries(dtype):
    # the shortcuts apply only strictly beyond the boundaries; around them the integer path
    # decides: 2**(qmin-1) is the tie between 0 (even) and the smallest subnormal
    p, emin, emax = PARAMS[dtype]
    qmin = emin - p + 1
    sub = np.finfo(dtype).smallest_subnormal
    half_sub = mpf(2) ** (qmin - 1)
    assert round_to_dtype(half_sub, dtype) == 0  # tie to even
    assert round_to_dtype(exact(lambda: half_sub * (1 + mpf(2) ** -300)), dtype) == sub
    assert round_to_dtype(exact(lambda: half_sub * (1 - mpf(2) ** -300)), dtype) == 0
    assert bits(round_to_dtype(-mpf(2) ** (qmin - 2), dtype)) == bits(np.dtype(dtype).type(-0.0))
    # 2**(emax+2) (first shortcut value) and just below it both overflow
    assert round_to_dtype(mpf(2) ** (emax + 2), dtype) == np.inf
    assert round_to_dtype(exact(lambda: mpf(2) ** (emax + 2) * (1 - mpf(2) ** -300)), dtype) == np.inf


def test_ulp_error_of_astronomically_small_exact_values():
    tiny = mpmath.exp(-1e30)
    sub = 2.0**-1074
    # |c - e| / ulp(e) with ulp(e) = 2**-1074: (2**-1074 - e) / 2**-1074 = 1 - e * 2**1074,
    # which is 1 to nearest; 3 subnormals off is 3; a zero is e / 2**-1074 -> 0.0
    assert ulp_error(np.float64(sub), tiny, np.float64) == 1.0
    assert ulp_error(np.float64(3 * sub), tiny, np.float64) == 3.0
    assert ulp_error(np.float64(0.0), tiny, np.float64) == 0.0
    assert ulp_error(np.float64(-0.0), -tiny, np.float64) == 0.0
    assert ulp_error(np.float64(-sub), tiny, np.float64) == 1.0
    # float32: ulp(e) = 2**-149
    assert ulp_error(np.float32(2.0**-148), tiny, np.float32) == 2.0
    # against 1.0 the error is 1 / ulp(tiny): 2**149 float32 subnormals; 2**1074 float64
    # subnormals is beyond the float64 range of the result, so inf
    assert ulp_error(np.float32(1.0), tiny, np.float32) == 2.0**149
    assert ulp_error(np.float64(1.0), tiny, np.float64) == math.inf
    got = ulp_error(np.array([sub, 0.0]), np.array([tiny, tiny], dtype=object), np.float64)
    assert got.tolist() == [1.0, 0.0]


def test_ulp_error_of_astronomically_large_exact_values():
    huge = mpmath.exp(1e30)
    # correctly rounded overflow is error 0; any finite value is infinitely many top ulps off
    assert ulp_error(np.float64(np.inf), huge, np.float64) == 0.0
    assert ulp_error(np.float32(-np.inf), -huge, np.float32) == 0.0
    assert ulp_error(np.float64(-np.inf), huge, np.float64) == math.inf
    assert ulp_error(np.finfo(np.float64).max, huge, np.float64) == math.inf
    assert ulp_error(np.float16(1.0), huge, np.float16) == math.inf


@given(
    st.integers(min_value=1, max_value=2**70),
    st.integers(-1100, 1100),
    st.integers(1, 2**60),
    st.integers(40, 2500),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
@example(2**64, 0, 3, 64, False)  # trailing zeros: a's lowest bit is 64, so gap 64 compresses
def test_sticky_sum_rounds_like_the_exact_sum(man, exp, sman, gap, neg):
    # _add_sticky replaces a far smaller operand by a stand-in; rounding to every format, and
    # the float64 conversion ulp_error does, must match the exact sum (gaps up to 2500 bits
    # keep the exact sum computable). Large operands near powers of two and ties are included
    # through man = 2**k and man = 2**k + 1 below.
    from mpmath import libmp

    from crossent.ulp import _add_sticky

    for m in (man, 1 << (man.bit_length() - 1), (1 << 53) + 1):
        a = libmp.from_man_exp(m, exp)
        top = exp + m.bit_length()
        b = libmp.from_man_exp(-sman if neg else sman, top - gap - sman.bit_length())
        ex = libmp.mpf_add(a, b, 0)
        st_ = _add_sticky(a, b)
        # compressed (the documented rule) iff b's top bit lies at or below both a's lowest
        # set bit (exp + trailing zeros of m: 2**64 has its lowest bit at 64) and top - 64
        lowest = exp + (m & -m).bit_length() - 1
        if top - gap <= min(lowest, top - 64):  # compressed: bounded size, whatever the gap
            assert st_[3] <= m.bit_length() + 66
        else:
            assert st_ == ex
        for dt in DTYPES:
            assert bits(round_to_dtype(mpmath.mp.make_mpf(st_), dt)) == bits(
                round_to_dtype(mpmath.mp.make_mpf(ex), dt))
        for rnd in (libmp.round_nearest, libmp.round_down):
            assert libmp.to_float(st_, rnd=rnd) == libmp.to_float(ex, rnd=rnd)
        assert _add_sticky(b, a) == st_  # symmetric
