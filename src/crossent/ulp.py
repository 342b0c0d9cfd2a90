"""Correct rounding to IEEE binary formats and ULP error measurement.

This module is the measuring stick of crossent: the precision tests compare a kernel's output
with the exact value computed by :mod:`crossent.reference` through :func:`ulp_error`, and the
oracle itself rounds through :func:`round_to_dtype`. It depends on NumPy and mpmath only and
never imports a kernel.

All the arithmetic here is exact: values are taken apart into integers (sign, integer
significand, power of two) and rounded with integer operations, so no intermediate rounding
(and in particular no double rounding through float64) can occur.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp

__all__ = ["FloatFormat", "float_format", "round_to_dtype", "ulp", "ulp_error"]


@dataclass(frozen=True)
class FloatFormat:
    """Parameters of an IEEE 754 binary format.

    Attributes
    ----------
    dtype : numpy.dtype
        The NumPy dtype of the format.
    p : int
        Precision in bits, counting the implicit leading bit (11, 24 or 53).
    emin : int
        Exponent of the smallest positive normal number, ``2**emin``.
    emax : int
        Exponent of the largest binade: the largest finite number is ``(2 - 2**(1-p)) * 2**emax``.
    """

    dtype: np.dtype
    p: int
    emin: int
    emax: int

    @property
    def qmin(self) -> int:
        """Exponent of the smallest subnormal ``2**(emin - p + 1)`` (the finest spacing)."""
        return self.emin - self.p + 1

    @property
    def qmax(self) -> int:
        """Exponent of the spacing in the top binade, ``ulp(max) = 2**(emax - p + 1)``."""
        return self.emax - self.p + 1


_FORMATS = {
    "float16": FloatFormat(np.dtype(np.float16), 11, -14, 15),
    "float32": FloatFormat(np.dtype(np.float32), 24, -126, 127),
    "float64": FloatFormat(np.dtype(np.float64), 53, -1022, 1023),
}


def _bfloat16_format() -> FloatFormat:
    """bfloat16 (``ml_dtypes.bfloat16``): float32's exponent range with 8 bits of precision.
    ml_dtypes is imported only when bfloat16 is asked for."""
    if "bfloat16" not in _FORMATS:
        try:
            import ml_dtypes
        except ImportError:
            raise TypeError("dtype: bfloat16 needs the ml_dtypes package (pip install ml_dtypes)") from None
        _FORMATS["bfloat16"] = FloatFormat(np.dtype(ml_dtypes.bfloat16), 8, -126, 127)
    return _FORMATS["bfloat16"]


def float_format(dtype) -> FloatFormat:
    """Return the :class:`FloatFormat` of ``dtype`` (float16, bfloat16, float32 or float64).

    ``"bfloat16"`` (the string) or ``ml_dtypes.bfloat16`` name bfloat16: :math:`p = 8`,
    :math:`e_{min} = -126`, :math:`e_{max} = 127`.

    Raises
    ------
    TypeError
        If ``dtype`` is not one of the four supported binary formats.
    """
    if isinstance(dtype, str) and dtype == "bfloat16":
        return _bfloat16_format()
    try:
        name = np.dtype(dtype).name
    except TypeError as exc:
        raise TypeError(f"dtype: not a NumPy dtype: {dtype!r}") from exc
    if name == "bfloat16" and np.dtype(dtype).kind == "V":
        return _bfloat16_format()
    if name not in _FORMATS:
        raise TypeError(f"dtype: expected float16, bfloat16, float32 or float64, got {name}")
    return _FORMATS[name]


# ---------------------------------------------------------------------------------------------
# exact decomposition
# ---------------------------------------------------------------------------------------------

_NAN, _POS, _NEG, _ZERO = "nan", "+inf", "-inf", "zero"


def _decompose(x):
    """Split ``x`` into ``(kind, sign, num, den_log2_or_den, is_fraction)``.

    Returns either a special marker (``"nan"``, ``"+inf"``, ``"-inf"``, ``("zero", sign)``) or
    a tuple ``(sign, man, exp)`` with value ``(-1)**sign * man * 2**exp`` (``man`` a positive
    int), or ``(sign, num, den, None)`` for a general positive rational ``num/den``.
    """
    if isinstance(x, mpmath.mpf):
        t = x._mpf_
    elif isinstance(x, (float, np.floating)):
        if isinstance(x, np.floating) and x.dtype.itemsize > 8:
            raise TypeError("x: long double values are not supported")
        t = libmp.from_float(float(x))
    elif isinstance(x, np.generic) and x.dtype.name == "bfloat16":  # ml_dtypes: not np.floating
        t = libmp.from_float(float(x))  # exact: bfloat16 widens exactly
    elif isinstance(x, (bool, np.bool_)):
        raise TypeError("x: booleans are not numbers here")
    elif isinstance(x, (int, np.integer)):
        t = libmp.from_int(int(x))
    elif isinstance(x, Fraction):
        if x == 0:
            return (_ZERO, 0)
        sign = 1 if x < 0 else 0
        n, d = abs(x.numerator), x.denominator
        if d & (d - 1) == 0:  # power of two: exact dyadic
            return (sign, n, -(d.bit_length() - 1))
        return (sign, n, d, None)
    else:
        raise TypeError(f"x: cannot round a value of type {type(x).__name__}")
    if t == libmp.fnan:
        return _NAN
    if t == libmp.finf:
        return _POS
    if t == libmp.fninf:
        return _NEG
    sign, man, exp, _bc = t
    if man == 0:
        # mpmath has no negative zero; a float -0.0 keeps its sign through math.copysign
        neg = isinstance(x, (float, np.floating)) and math.copysign(1.0, float(x)) < 0
        return (_ZERO, 1 if neg else 0)
    return (sign, int(man), int(exp))


#: bits kept by :func:`_add_sticky` below the leading bit of the larger operand
_STICKY_GUARD = 64


def _add_sticky(a, b):
    """``a + b`` of two finite raw mpf values, or a stand-in that rounds identically.

    When the operands' bits overlap (modest exponent gap) the exact sum is returned. When
    ``|b|`` is below every rounding boundary's distance from ``a`` (a "sticky" operand, e.g.
    :math:`1 + e^{-10^{30}}`), ``b`` is replaced by a same-sign power of two that is still
    below that distance, so the sum has at most ``bc(a) + 66`` bits instead of an exponent
    gap's worth.

    Notes
    -----
    Let :math:`2^{t-1} \\le |a| < 2^t` and :math:`a \\in 2^{x}\\mathbb{Z}` (``x`` its lowest
    bit). Rounding to :math:`P \\le 62` bits (nearest or directed, with any exponent range:
    subnormal spacings and the overflow midpoint are coarser) has all its boundaries in
    :math:`[2^{t-2}, 2^{t+1})` on the grid :math:`2^{t-P-2}\\mathbb{Z}`, so every boundary other
    than :math:`a` is at least :math:`2^{G}`, :math:`G = \\min(x, t - P - 2)`, from
    :math:`a`. If :math:`|b| < 2^{G}` then :math:`a + b` and :math:`a + \\operatorname{sign}(b)
    2^{G-1}` lie strictly between the same two boundaries (on the same side of :math:`a`), so
    they round alike. Here :math:`P + 2 = 64` (:data:`_STICKY_GUARD`) covers float16 to
    float64 and the float64 conversion of a ULP error.
    """
    if not a[1] or not b[1]:
        return libmp.mpf_add(a, b, 0)
    ta = a[2] + a[3]
    tb = b[2] + b[3]
    if ta < tb:
        a, b, ta, tb = b, a, tb, ta
    g = min(a[2], ta - _STICKY_GUARD)
    if tb <= g:  # |b| < 2**tb <= 2**g
        b = (b[0], 1, g - 1, 1)
    return libmp.mpf_add(a, b, 0)


def _round_int_shift(man: int, shift: int) -> int:
    """Round ``man / 2**shift`` (``shift > 0``) to the nearest integer, ties to even."""
    q = man >> shift
    rem = man - (q << shift)
    half = 1 << (shift - 1)
    if rem > half or (rem == half and (q & 1)):
        q += 1
    return q


def _round_parts(d, fmt: FloatFormat):
    """Round a decomposed value; return ``(sign, m, q)`` meaning ``(-1)**sign * m * 2**q`` or a
    special marker. ``m`` has at most ``p`` bits unless it equals ``2**p`` after rounding up."""
    if d is _NAN or d is _POS or d is _NEG or d[0] is _ZERO:
        return d
    if len(d) == 4:  # general rational num/den
        sign, n, den, _ = d
        # floor(log2(n/den)): bit lengths give it up to one
        e = n.bit_length() - den.bit_length()
        if (n << max(0, -e)) < (den << max(0, e)):
            e -= 1
        q = max(e - fmt.p + 1, fmt.qmin)
        # m = round(n / (den * 2**q)) with ties to even, in integers
        if q >= 0:
            num, dd = n, den << q
        else:
            num, dd = n << (-q), den
        m, r = divmod(num, dd)
        if 2 * r > dd or (2 * r == dd and (m & 1)):
            m += 1
        return (sign, m, q)
    sign, man, exp = d
    e = exp + man.bit_length() - 1  # 2**e <= |x| < 2**(e+1)
    if e <= fmt.qmin - 2:
        # |x| < 2**(qmin-1), half the smallest subnormal: a zero of the sign of x. Decided by
        # the exponent alone, so an exact value like exp(-1e30) never becomes a shifted integer.
        return (_ZERO, sign)
    if e > fmt.emax + 1:
        # |x| >= 2**(emax+2), beyond max + ulp(max)/2: overflows (the exponent decides).
        return (sign, 1, e)
    q = max(e - fmt.p + 1, fmt.qmin)  # exponent of the quantum of the target binade
    if exp >= q:
        return (sign, man << (exp - q), q)
    return (sign, _round_int_shift(man, q - exp), q)


def _parts_to_scalar(r, fmt: FloatFormat):
    """Turn rounded parts into a NumPy scalar of the format (overflow to inf per IEEE)."""
    typ = fmt.dtype.type
    if r is _NAN:
        return typ(np.nan)
    if r is _POS:
        return typ(np.inf)
    if r is _NEG:
        return typ(-np.inf)
    if r[0] is _ZERO:
        return typ(-0.0) if r[1] else typ(0.0)
    sign, m, q = r
    if m == 0:
        return typ(-0.0) if sign else typ(0.0)
    # |value| = m * 2**q; the exponent of its leading bit decides overflow (m may be 2**p)
    if q + m.bit_length() - 1 > fmt.emax:
        return typ(-np.inf) if sign else typ(np.inf)
    v = math.ldexp(m, q)  # exact: m has <= p+1 bits and the value is a float of the format
    return typ(-v if sign else v)


def round_to_dtype(x, dtype):
    """Round an exact value to the nearest number of a binary format, ties to even.

    Parameters
    ----------
    x : mpmath.mpf, int, fractions.Fraction, float, NumPy scalar, or array of these
        The exact value(s). An ``mpf`` is taken at its full stored precision, a ``Fraction``
        exactly (any denominator), a float as the exact binary number it is.
    dtype : dtype-like
        ``float16``, ``float32`` or ``float64``.

    Returns
    -------
    numpy scalar or numpy.ndarray
        The correctly rounded value as a scalar of ``dtype`` (an array of ``dtype`` for array
        input).

    Notes
    -----
    The format has precision :math:`p` and normal exponents :math:`e_{min} \\le e \\le e_{max}`.
    For :math:`2^e \\le |x| < 2^{e+1}` the representable numbers near :math:`x` are the
    multiples of the quantum

    .. math:: q(x) = 2^{\\max(e,\\, e_{min}) - p + 1},

    so the normal range keeps :math:`p` significant bits and the subnormal range has the fixed
    spacing :math:`2^{e_{min}-p+1}` (gradual underflow: :math:`2^{-24}`, :math:`2^{-149}`,
    :math:`2^{-1074}`). The result is :math:`q \\cdot \\operatorname{rne}(x/q)`, computed with
    integers, then overflows to :math:`\\pm\\infty` when its exponent exceeds :math:`e_{max}`;
    this is IEEE 754 round-to-nearest-even with unbounded exponent followed by overflow, i.e.
    values :math:`\\ge \\max + \\tfrac12 \\operatorname{ulp}(\\max)` round to infinity. Signed
    zeros and infinities keep their sign (mpmath has no negative zero: an ``mpf`` zero gives
    +0, a value that underflows gives a zero of its own sign), nan gives nan.

    ``np.float32(float(x))`` is *not* equivalent: it rounds twice, first to 53 bits, and is
    wrong when :math:`x` is within :math:`2^{-53}|x|` of a float32 midpoint.

    Values far outside the range are decided by their exponent alone, never by shifting the
    significand: :math:`|x| < 2^{e_{min}-p}` (half the smallest subnormal) gives a signed zero
    and :math:`|x| \\ge 2^{e_{max}+2}` an infinity, so exact values such as
    :math:`e^{-10^{30}}` (an ``mpf`` with exponent about :math:`-1.4 \\cdot 10^{30}`) are cheap.

    Examples
    --------
    >>> import mpmath, numpy as np
    >>> from crossent.ulp import round_to_dtype
    >>> with mpmath.mp.workprec(200):
    ...     third = mpmath.mpf(1) / 3
    >>> round_to_dtype(third, np.float32)
    np.float32(0.33333334)
    >>> round_to_dtype(mpmath.exp(-1e30), np.float64), round_to_dtype(mpmath.exp(1e30), np.float16)
    (np.float64(0.0), np.float16(inf))

    The float32 nearest :math:`1 + 2^{-24} + 2^{-60}` is :math:`1 + 2^{-23}`; casting through
    float64 first lands on the tie :math:`1 + 2^{-24}` and rounds it down to 1:

    >>> from fractions import Fraction
    >>> x = Fraction(1) + Fraction(1, 2**24) + Fraction(1, 2**60)
    >>> bool(round_to_dtype(x, np.float32) == np.float32(1 + 2**-23)), np.float32(float(x))
    (True, np.float32(1.0))
    """
    fmt = float_format(dtype)
    if isinstance(x, np.ndarray):
        out = np.empty(x.shape, dtype=fmt.dtype)
        flat = out.reshape(-1)
        for i, v in enumerate(x.reshape(-1)):
            flat[i] = _parts_to_scalar(_round_parts(_decompose(v), fmt), fmt)
        return out
    if isinstance(x, (list, tuple)):
        return round_to_dtype(np.asarray(x, dtype=object), dtype)
    return _parts_to_scalar(_round_parts(_decompose(x), fmt), fmt)


def _ulp_exp(d, fmt: FloatFormat) -> int:
    """Exponent of the ULP of a decomposed finite value."""
    if d[0] is _ZERO:
        return fmt.qmin
    if len(d) == 4:
        _sign, n, den, _ = d
        e = n.bit_length() - den.bit_length()
        if (n << max(0, -e)) < (den << max(0, e)):
            e -= 1
    else:
        _sign, man, exp = d
        e = exp + man.bit_length() - 1
    return min(max(e - fmt.p + 1, fmt.qmin), fmt.qmax)


def ulp(x, dtype):
    """The unit in the last place of the exact value ``x`` in a binary format.

    Parameters
    ----------
    x : mpmath.mpf, int, fractions.Fraction, float or NumPy scalar
        A finite exact value (it need not be representable in the format).
    dtype : dtype-like
        ``float16``, ``float32`` or ``float64``.

    Returns
    -------
    mpmath.mpf
        The power of two :math:`\\operatorname{ulp}(x)` (exact).

    Notes
    -----
    For :math:`2^e \\le |x| < 2^{e+1}`

    .. math:: \\operatorname{ulp}(x) = 2^{\\min(\\max(e,\\, e_{min}),\\, e_{max}) - p + 1},

    the spacing of the format's numbers in the binade of :math:`x` (Goldberg's definition). It
    never falls below the smallest subnormal :math:`2^{e_{min}-p+1}`, which is also
    :math:`\\operatorname{ulp}(0)`; above the largest finite number it stays at the spacing of
    the top binade, :math:`2^{e_{max}-p+1}` (the spacing between the two largest finite
    numbers). :math:`p, e_{min}, e_{max}` are (11, −14, 15), (24, −126, 127) and
    (53, −1022, 1023) for float16, float32 and float64.

    Raises
    ------
    ValueError
        If ``x`` is infinite or nan.
    """
    fmt = float_format(dtype)
    d = _decompose(x)
    if d is _NAN or d is _POS or d is _NEG:
        raise ValueError("x: ulp of a non-finite value is undefined")
    return mpmath.mpf((1, _ulp_exp(d, fmt)))


def _one_error(c, e, fmt: FloatFormat) -> float:
    """ULP error of one computed value ``c`` against one exact value ``e``."""
    dc = _decompose(c)
    de = _decompose(e)
    c_nan = dc is _NAN
    e_nan = de is _NAN
    if c_nan or e_nan:
        return 0.0 if (c_nan and e_nan) else math.inf
    c_inf = dc is _POS or dc is _NEG
    e_inf = de is _POS or de is _NEG
    if e_inf:
        return 0.0 if dc is de else math.inf
    if c_inf:
        # a finite exact value beyond the range rounds to an infinity: that is correct rounding
        r = _round_parts(de, fmt)
        return 0.0 if _parts_to_scalar(r, fmt) == (math.inf if dc is _POS else -math.inf) else math.inf
    # both finite: |c - e| exactly, scaled by a power of two; only the float conversion rounds
    k = _ulp_exp(de, fmt)
    if len(dc) == 4 or len(de) == 4:  # a general rational: use Fractions
        diff = abs(_to_fraction(dc) - _to_fraction(de))
        return float(diff / Fraction(2) ** k)
    # exact, or (astronomical exponent gap) a stand-in that converts to the same float
    diff = _add_sticky(_to_mpf_tuple(dc), libmp.mpf_neg(_to_mpf_tuple(de)))
    _s, man, exp, bc = diff
    if man == 0:
        return 0.0
    # to nearest (mpmath's default truncates): exp(-1e30) against 2**-1074 is 1.0 ulp, not 1 - 2**-53
    return libmp.to_float((0, man, exp - k, bc), rnd=libmp.round_nearest)


def _to_mpf_tuple(d):
    if d[0] is _ZERO:
        return libmp.fzero
    sign, man, exp = d
    return libmp.from_man_exp(-man if sign else man, exp)


def _to_fraction(d) -> Fraction:
    if d[0] is _ZERO:
        return Fraction(0)
    if len(d) == 4:
        sign, n, den, _ = d
        return Fraction(-n if sign else n, den)
    sign, man, exp = d
    v = Fraction(man) * Fraction(2) ** exp
    return -v if sign else v


def ulp_error(computed, exact, dtype):
    """ULP error of computed values against exact values, in ULPs of the exact value.

    Parameters
    ----------
    computed : float, NumPy scalar or numpy.ndarray
        The values to judge (typically a kernel's output of ``dtype``).
    exact : mpmath.mpf, float, int, Fraction, or numpy.ndarray (object array of ``mpf`` or a
        float array), broadcastable against ``computed``
        The exact values, e.g. ``crossent.reference.<f>(..., exact=True)``.
    dtype : dtype-like
        The format whose ULP is the unit (float16, float32 or float64).

    Returns
    -------
    float or numpy.ndarray of float64
        :math:`|c - x| / \\operatorname{ulp}(x)` elementwise (a Python float for scalar input).

    Notes
    -----
    The difference :math:`|c - x|` is computed exactly and divided by the power of two
    :math:`\\operatorname{ulp}(x)` of :func:`ulp`; only the final conversion to float rounds.
    A correctly rounded result has error :math:`\\le 1/2`. Special values:

    * both nan → 0; exactly one nan → inf;
    * ``exact`` = ±inf: 0 if ``computed`` is the same infinity, otherwise inf;
    * ``computed`` = ±inf and ``exact`` finite: 0 if ``exact`` is beyond the range and rounds
      to that same infinity (correctly rounded overflow), otherwise inf;
    * ``exact`` finite beyond the largest finite number and ``computed`` finite: the
      difference is measured in the top binade's ULP :math:`2^{e_{max}-p+1}` (the ULP of
      the largest finite number), so e.g. returning the largest finite number for an exact
      value that rounds to inf costs at least 1/2;
    * signed zeros are equal (−0 against +0 is error 0).

    When the two values are astronomically far apart in exponent (an exact value like
    :math:`e^{-10^{30}}` against the smallest subnormal) the smaller is replaced by a tiny
    stand-in of the same sign that provably gives the same float (see :func:`_add_sticky`), so
    nothing proportional to the exponent gap is ever built. The conversion is to nearest.

    Examples
    --------
    >>> import mpmath, numpy as np
    >>> from crossent.ulp import ulp_error
    >>> with mpmath.mp.workprec(200):
    ...     e = mpmath.exp(mpmath.mpf(1))
    >>> round(ulp_error(np.float64(np.e), e, np.float64), 4)  # numpy's e is correctly rounded
    0.3255
    >>> round(ulp_error(np.nextafter(np.float64(np.e), 4), e, np.float64), 4)  # one float up
    0.6745

    The error is in ULPs of the exact value, so an exact value far below the subnormals is
    measured in ULPs of the smallest subnormal:

    >>> ulp_error(np.float64(5e-324), mpmath.exp(-1e30), np.float64)
    1.0
    >>> ulp_error(np.array([0.0, np.inf]), np.array([mpmath.exp(-1e30), mpmath.exp(1e30)]), np.float64)
    array([0., 0.])
    """
    fmt = float_format(dtype)
    if not isinstance(computed, np.ndarray) and not isinstance(exact, np.ndarray):
        return _one_error(computed, exact, fmt)
    c = np.asarray(computed)
    e = np.asarray(exact) if isinstance(exact, np.ndarray) else np.asarray(exact, dtype=object)
    c, e = np.broadcast_arrays(c, e)
    out = np.empty(c.shape, dtype=np.float64)
    fo = out.reshape(-1)
    for i, (ci, ei) in enumerate(zip(c.reshape(-1), e.reshape(-1))):
        fo[i] = _one_error(ci, ei, fmt)
    return out
