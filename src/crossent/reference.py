r"""The correctly rounded reference ("oracle") for every public function of crossent.

Every function here has the signature of its public counterpart in crossent plus the
keyword ``exact``, and accepts and rejects exactly the same inputs: the argument checks are the
shared, numerics-free rules of :mod:`crossent._validate` (``docs/input-rules.md``), while
every value is computed here, independently of the kernels. The inputs are taken as the exact binary numbers they are (a float16,
float32 or float64 converts to an ``mpf`` without error) and the mathematical function of
those numbers is evaluated with mpmath.

* ``exact=False`` (default): the result is that mathematical value **correctly rounded**
  (round to nearest, ties to even, with gradual underflow and overflow as IEEE 754) to the
  input's dtype: the float of the format nearest the exact value, never a float one ulp off
  because of an intermediate rounding.
* ``exact=True``: the unrounded value, as an ``mpf`` (an object ndarray of ``mpf`` for array
  results), with absolute error at most :math:`2^{-(p+30)}\,\mathrm{ulp}(v)` in the output
  format (:math:`p` = 11, 24, 53), i.e. relative :math:`2^{-(2p+29)}` for normal values.
  This is what :func:`crossent.ulp.ulp_error` consumes. Specials come back as
  ``mpf('nan')``, ``mpf('inf')``, ``mpf('-inf')``; outputs that are far below the smallest
  subnormal may come back as a tiny positive placeholder :math:`\le 2^{e_{min}-2p-40}`.

How correct rounding is obtained (Ziv's strategy)
-------------------------------------------------
Each output is computed at a working precision of :math:`w = p + 40 + \lceil\log_2(K+1)\rceil`
bits (:math:`2p + 48 + 2\lceil\log_2(K+1)\rceil` with ``exact=True``), together with a rigorous-by-construction *absolute error bound* ``err`` (below). If the
interval :math:`[v - \mathrm{err}, v + \mathrm{err}]` rounds to one float of the format (same
bits, including the sign of zero), that float is the correctly rounded value. Otherwise
:math:`w` is doubled and the computation repeated. Values that are exactly representable or
exactly on a rounding boundary would defeat this loop, so they are detected and computed
exactly (rationals with :class:`fractions.Fraction`):

* a slice with one finite entry: ``logsumexp`` is that entry, ``log_softmax`` 0 there,
  ``softmax`` 1, the loss 0, the gradient :math:`A - a_i` exactly;
* all finite entries of a slice equal: ``softmax`` is exactly :math:`1/n`, the gradient is
  the rational :math:`s(A/n - a_i)`;
* −inf entries: ``softmax`` exactly 0, ``log_softmax`` exactly −inf;
* PMF sums :math:`\sum_k c_k \log r_k` whose terms vanish (:math:`r_k = 1`, :math:`c_k = 0`,
  e.g. ``kl_divergence(p, p)``), and sums that reduce to :math:`R\ln 2` with rational
  :math:`R` (every :math:`r_k` a power of two, or odd parts that cancel): exactly 0 when
  :math:`R = 0`, exactly :math:`R/f` in base :math:`2^f`;
* an exact rational :math:`X \ne 0` plus a part :math:`\theta` beyond every working
  precision, of known sign: :math:`d_j - L`, the loss :math:`\sum_c a_c(-d_c) + A L`, its
  sum or mean, the gradient :math:`s(B - A T/S)` and :math:`s(A p_i - a_i)` when
  :math:`L`, :math:`T` or :math:`p_i` is astronomically small. :math:`X` can be a rounding
  boundary (:math:`d_j = 3 - 2^{25}` is a float32 midpoint), where no interval around an
  approximation ever decides; :math:`X + \theta` is then rounded exactly from :math:`X` and
  the sign of :math:`\theta` (see ``_exact_plus_tiny``).

By the Lindemann–Weierstrass theorem every other value of the softmax family is
transcendental (e.g. :math:`\sum_j e^{d_j}` with some :math:`d_j \ne 0` is transcendental),
and by Baker's theorem a non-zero linear form in logarithms of rationals is transcendental,
so the loop terminates. It is nevertheless capped at :data:`PRECISION_CAP` bits; at the cap
the value nearest the best approximation is returned and a
:class:`CorrectRoundingWarning` is issued (this needs an input within :math:`2^{-20000}`
of a rounding boundary; none is known. Logits differing by :math:`10^{300}` are not such a
case: their astronomically small terms are bounded, not added exactly, see below).

Error bounds
------------
mpmath's ``exp``, ``log`` and division at precision :math:`w` are assumed accurate to
:math:`\eta = 16` units of :math:`2^{-w}` relative (mpmath aims at correct rounding, i.e.
0.5 unit; the factor 32 is a safety margin); additions are exact (``prec=0``) or rounded with
their error counted; every final bound is doubled. With :math:`m = \max_j x_j`,
:math:`d_j = x_j - m` (exact), :math:`T = \sum_{j \ne j_{max}} e^{d_j}` and
:math:`L = \log(1+T)`:

* terms with :math:`d_j < d_{(2)} - (w + \lceil\log_2 K\rceil + 4)\ln 2` (:math:`d_{(2)}` the
  largest term of :math:`T`) are not evaluated; together they are below
  :math:`2^{-w-4}\,T`, which is added to the bound;
* :math:`T` has relative error :math:`\le \eta + 2` units; :math:`L = \log(1 + T)` with
  :math:`1+T` formed exactly has relative error :math:`\le (\eta + 2) + \eta` units
  (the condition number of :math:`\log(1+T)` in :math:`T` is at most 1 for :math:`T \ge 0`);
* *precision horizon*: an exact sum is formed only when the two operands are within
  :math:`w + 64` bits of each other. Beyond that (e.g. :math:`1 + e^{-10^{20}}`, whose exact
  value would be a :math:`10^{20}`-bit integer) the smaller operand is dropped and its bound
  :math:`2^{t}` (:math:`|b| < 2^t`) added to the error, a relative perturbation below
  :math:`2^{-(w+63)}`. For :math:`T < 2^{-(w+64)}` this means :math:`S = 1` and
  :math:`L = T` (:math:`\log(1+T) = T(1-\theta)`, :math:`0 < \theta < T/2`), each within one
  more unit. The same holds inside :math:`T`: terms more than
  :math:`w + 64 + \lceil\log_2 K\rceil` bits below the largest (:math:`e^{-10^{30}}` next
  to :math:`e^{-10^{30} + 10^{10}}`) are bounded, not shifted into one integer;
* :math:`\mathrm{logsumexp} = m + L`, :math:`-\log\mathrm{softmax}_j = L - d_j` and the
  per-class loss are sums of non-negative terms: their relative error is that of
  :math:`L`; :math:`\mathrm{softmax}_j = e^{d_j}/(1+T)` adds :math:`\eta + 1` units;
* reductions sum non-negative terms at precision :math:`w` (relative
  :math:`K` units for :math:`K` terms); the gradient
  :math:`s\,(A p_i - a_i)` and signed PMF sums get absolute bounds from the magnitudes of
  their terms, so cancellation shows up as a wide interval and triggers a retry. At the
  largest logit the gradient is evaluated as :math:`s\,(B - a_i T)/(1+T)` with
  :math:`B = A - a_i = \sum_{c \ne i} a_c`, so :math:`1 - p_i` never cancels (a one-hot
  target there gives :math:`-s\,T/(1+T)`, e.g. −0.0 for :math:`T = e^{-10^{20}}`);
* rounding is decided on the interval :math:`[v - \mathrm{err}, v + \mathrm{err}]` by
  exponents where the values are out of range: an interval below half the smallest subnormal
  rounds to a zero of its sign, softmax entries with :math:`d_j < (e_{min} - 2p - 39)\ln 2 - 1`
  are not evaluated at all (they are below :math:`2^{e_{min}-2p-39}` and round to +0).

Conventions (aligned with the public API)
-----------------------------------------
* A slice containing nan or +inf: ``logsumexp``, ``log_softmax``, ``softmax`` and the loss
  are nan for that slice (the gradient row too), except SciPy's rule for a +inf and no nan:
  ``logsumexp`` +inf, ``log_softmax`` nan at the +inf entries and −inf elsewhere (the
  ``axis`` may be a tuple or None and a 0-d input is one element, as in the public
  functions; ``docs/input-rules.md``). A slice of only −inf: ``logsumexp`` is −inf,
  ``softmax``/``log_softmax``/loss nan. An empty slice: ``logsumexp`` −inf, PMF sums 0 (the
  empty sum, as ``numpy.sum``), ``softmax``/``log_softmax`` empty arrays; probability
  targets over zero classes a loss of 0 per item.
* ``cross_entropy``: a class whose coefficient :math:`w_c t_c` is 0 contributes 0 even when
  its logit is −inf (the convention :math:`0 \cdot \log 0 = 0`); with a positive coefficient a
  −inf logit gives +inf. Ignored items give loss 0 (``"none"``) and a zero gradient row.
  ``"mean"`` with a zero denominator (all items ignored, or zero weights) gives nan, and
  nan gradient rows for the non-ignored items.
* The gradient is that of the reduced loss (``"none"``: of the sum).
* ``empirical_pmf`` returns float64; with no samples it is nan (0/0, as NumPy).
* Arguments: the rules of ``docs/input-rules.md`` (crossent's own checks). PMF entries must be
  finite and non-negative unless ``check=False``; then a nan or negative entry gives a nan
  row and an infinite one the IEEE value of its term, as in crossent. An empty class axis in
  ``cross_entropy``: class indices can only be ``ignore_index``, probability rows give nan.

Examples
--------
>>> import numpy as np
>>> from crossent import reference

A confident two-class row: the loss :math:`\log(1 + e^{-40})` is about :math:`4.2\cdot10^{-18}`,
where ``log(sum(exp(x))) - x[0]`` in float64 gives exactly 0:

>>> reference.cross_entropy(np.array([[40.0, 0.0]]), np.array([0]))
np.float64(4.248354255291589e-18)
>>> reference.softmax(np.array([1.0, 2.0, 3.0]))
array([0.09003057, 0.24472847, 0.66524096])

Any spread of the logits is fine; :math:`\log\operatorname{softmax}_0 = -\log(1 + e^{-10^{20}})`
is negative and far below the subnormals, so it rounds to −0.0:

>>> reference.softmax(np.array([0.0, -1e20])), reference.log_softmax(np.array([0.0, -1e20]))
(array([1., 0.]), array([-0.e+00, -1.e+20]))

``exact=True`` gives the unrounded value, for :func:`crossent.ulp.ulp_error`:

>>> from crossent.ulp import ulp_error
>>> x = np.array([1.0, 2.0, 3.0], dtype=np.float32)
>>> v = reference.logsumexp(x, exact=True)
>>> reference.logsumexp(x), float(ulp_error(reference.logsumexp(x), v, np.float32)) <= 0.5
(np.float32(3.407606), True)
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp

from ._validate import (
    as_float_array,
    check_beta,
    divergence_inputs,
    entropy_logits_inputs,
    as_num_classes,
    as_samples,
    binary_inputs,
    check_out,
    loglik_inputs,
    loss_inputs,
    loss_options,
    reduction_axes,
    scalar_if_0d,
    check_no_q,
    scale_factors,
    pmf_inputs,
)
from .ulp import _add_sticky, _decompose, _parts_to_scalar, _round_parts, float_format

__all__ = [
    "logsumexp",
    "log_softmax",
    "softmax",
    "cross_entropy",
    "cross_entropy_value_and_grad",
    "entropy",
    "cross_entropy_pmf",
    "kl_divergence",
    "empirical_pmf",
    "categorical_log_likelihood",
    "kl_divergence_logits",
    "js_divergence_logits",
    "entropy_logits",
    "entropy_logits_value_and_grad",
    "kl_divergence_logits_value_and_grad",
    "js_divergence_logits_value_and_grad",

    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_value_and_grad",
    "softplus",
    "log_sigmoid",
    "CorrectRoundingWarning",
    "PRECISION_CAP",
]

#: Largest working precision (bits) of the Ziv loop.
PRECISION_CAP = 20000

_ETA = 16.0  # assumed error of one mpmath exp/log/div at precision w, in units of 2**-w
_SAFETY = 2.0  # every final bound is multiplied by this

_FZERO = libmp.fzero
_FONE = libmp.fone
_NAN = ("special", "nan")
_PINF = ("special", "+inf")
_NINF = ("special", "-inf")


class CorrectRoundingWarning(RuntimeWarning):
    """The Ziv loop hit :data:`PRECISION_CAP` without certifying the rounding."""


# ---------------------------------------------------------------------------------------------
# small exact helpers on raw mpmath tuples
# ---------------------------------------------------------------------------------------------


def _raw(x: float):
    return libmp.from_float(x)


def _is_zero(t) -> bool:
    return t == _FZERO


def _frac_of_raw(t) -> Fraction:
    sign, man, exp, _bc = t
    v = Fraction(man) * (Fraction(2) ** exp)
    return -v if sign else v


def _abs_err(v, c: float, w: int):
    """An upper bound of ``|v| * c * 2**-w * _SAFETY`` as a raw power of two (0 if c or v is 0).

    Uses ``|v| < 2**(exp + bc)`` and rounds ``c * _SAFETY`` up to a power of two.
    """
    if c == 0 or v == _FZERO:
        return _FZERO
    _s, _man, exp, bc = v
    k = max(0, math.ceil(math.log2(c * _SAFETY)))
    return (0, 1, exp + bc - w + k, 1)


def _err_add(a, b):
    return libmp.mpf_add(a, b, 30, libmp.round_up)


def _sum_raw(terms, prec):
    """Sum raw mpf values at precision ``prec`` (pairwise-free, left to right)."""
    s = _FZERO
    add = libmp.mpf_add
    for t in terms:
        s = add(s, t, prec, libmp.round_nearest)
    return s


def _exact_sum(terms, w):
    r"""``(s, err)``: the exact sum ``s`` of the raw mpf values within the precision horizon of
    the largest, and a bound ``err`` (raw, rounded up) of the total magnitude of the others.

    With :math:`2^{t_{max}}` the largest :func:`_top`, a term with
    :math:`t < t_{max} - (w + 64 + \lceil\log_2 n\rceil)` is not added but bounded by
    :math:`2^t`; together the :math:`n` terms so dropped are below
    :math:`2^{t_{max} - 1 - (w + 63)}`, under one unit of :math:`2^{-w}` relative to a sum of
    same-sign terms (which is at least :math:`2^{t_{max}-1}`). The kept terms span at most
    :math:`w + 64 + \lceil\log_2 n\rceil` bits plus their own lengths, so the fixed-point sum
    stays small whatever the exponents (:math:`e^{-10^{30}} + e^{-10^{30}+10^{10}}` would
    otherwise be shifted into a :math:`1.4\cdot10^{10}`-bit integer).
    """
    terms = [t for t in terms if t != _FZERO]
    if not terms:
        return _FZERO, _FZERO
    tmax = max(_top(t) for t in terms)
    cut = tmax - (w + _HORIZON + _bitlen(len(terms)))
    kept = [t for t in terms if _top(t) >= cut]
    err = _FZERO
    for t in terms:
        if _top(t) < cut:
            err = _err_add(err, (0, 1, _top(t), 1))
    emin = min(t[2] for t in kept)
    tot = 0
    for sign, man, exp, _bc in kept:
        tot += (-man if sign else man) << (exp - emin)
    return libmp.from_man_exp(tot, emin), err


#: operands more than ``w + _HORIZON`` bits below the other are bounded, not added exactly
_HORIZON = 64


def _top(t) -> int:
    """``|t| < 2**_top(t)`` for a non-zero raw mpf (exponent of its leading bit, plus one)."""
    return t[2] + t[3]


def _add_bounded(a, b, w):
    r"""``(s, err)`` with ``|a + b - s| <= err``: the exact sum unless one operand is beyond the
    precision horizon of the other.

    When :math:`|b| < 2^{t_b} \le 2^{t_a - (w + 64)}` (``t`` as :func:`_top`) the sum is ``a``
    with ``err`` :math:`= 2^{t_b}` (and symmetrically), a relative perturbation below
    :math:`2^{-(w+63)}`, i.e. under one unit of :math:`2^{-w}`. Otherwise the exact sum spans
    at most ``bc(a) + bc(b) + w + 64`` bits. This is what keeps :math:`1 + e^{-10^{20}}` from
    building a :math:`10^{20}`-bit integer.
    """
    if a == _FZERO or b == _FZERO:
        return libmp.mpf_add(a, b, 0), _FZERO
    ta, tb = _top(a), _top(b)
    if tb < ta - (w + _HORIZON):
        return a, (0, 1, tb, 1)
    if ta < tb - (w + _HORIZON):
        return b, (0, 1, ta, 1)
    return libmp.mpf_add(a, b, 0), _FZERO


def _bitlen(k: int) -> int:
    return max(1, int(k).bit_length())


def _frac_top(q: Fraction) -> int:
    """``|q| < 2**_frac_top(q)`` for a non-zero Fraction."""
    return abs(q.numerator).bit_length() - q.denominator.bit_length() + 1


def _exact_plus_tiny(X: Fraction, sgn: int, t: int, fmt):
    r"""An exact item for :math:`X + \sigma\theta` with :math:`0 < \theta < 2^t` astronomically
    small next to the exact rational :math:`X \ne 0`, or None when ``t`` is not small enough.

    Values like :math:`d_j - \log(1 + e^{-10^{30}})` or :math:`s(B - A\,T/(1+T))` are an exact
    rational plus a term beyond any working precision. When :math:`X` is a rounding boundary
    (a midpoint of the format, e.g. :math:`d_j = -(2^{25} - 1)` in float32) no interval
    :math:`[v - \mathrm{err}, v + \mathrm{err}]` ever decides the rounding, so the sign of the
    tiny term must decide it:

    * :math:`X` dyadic: with :math:`G = \min(\text{lowest bit of } X, t_X - \max(64, 2p+40))`
      (:math:`|X| < 2^{t_X}`) and :math:`t \le G - 1`, :math:`X + \sigma 2^{G-1}` rounds as
      :math:`X + \sigma\theta` (the argument of :func:`crossent.ulp._add_sticky`: every
      boundary other than :math:`X` is at least :math:`2^G` away), and it is within
      :math:`2^{-(2p+39)}` relative of the value, as ``exact=True`` requires;
    * :math:`X = n/d` not dyadic: it is at least :math:`2^{q_{min}-1}/d` from every boundary
      (all are multiples of :math:`2^{q_{min}-1}`), so for
      :math:`t \le q_{min} - 2 - \lceil\log_2 d\rceil` the value rounds as :math:`X` itself.
    """
    d = X.denominator
    if d & (d - 1) == 0:
        xr = libmp.from_man_exp(X.numerator, -(d.bit_length() - 1))
        G = min(xr[2], _top(xr) - max(64, 2 * fmt.p + 40))
        if t > G - 1:
            return None
        return _exact_item(libmp.mpf_add(xr, (1 if sgn < 0 else 0, 1, G - 1, 1), 0))
    if t > fmt.qmin - 2 - d.bit_length():
        return None
    return _exact_item(X)


# ---------------------------------------------------------------------------------------------
# items and the Ziv loop
# ---------------------------------------------------------------------------------------------
# An item is one output value: ("x", value) exact (Fraction, int, raw mpf tuple or special)
# or ("a", v_raw, err_raw) approximate with |true - v| <= err.


def _make(raw):
    """An ``mpf`` holding a raw value at its full precision (``mpf(tuple)`` would round)."""
    return mpmath.mp.make_mpf(raw)


def _exact_item(q):
    return ("x", q)


def _item_to_mpf(item):
    """The value of an item as an mpf (exact values at full precision)."""
    if item[0] == "x":
        q = item[1]
        if q is _NAN:
            return mpmath.mpf("nan")
        if q is _PINF:
            return mpmath.mpf("inf")
        if q is _NINF:
            return mpmath.mpf("-inf")
        if isinstance(q, tuple):
            return _make(q)
        if isinstance(q, Fraction) and q.denominator & (q.denominator - 1):
            with mpmath.mp.workprec(4 * 53 + 200):
                return _make(libmp.from_rational(q.numerator, q.denominator, 4 * 53 + 200,
                                                 libmp.round_nearest))
        return _mpf_of(q)
    return _make(item[1])


def _mpf_of(q):
    if isinstance(q, tuple):
        return _make(q)
    if isinstance(q, Fraction):  # dyadic: exact
        return _make(libmp.from_man_exp(q.numerator, -(q.denominator.bit_length() - 1)))
    return _make(libmp.from_int(int(q)))


def _round_item_value(q, fmt) -> float:
    if q is _NAN:
        return math.nan
    if q is _PINF:
        return math.inf
    if q is _NINF:
        return -math.inf
    return _round_raw_or_q(q, fmt)


def _round_raw_or_q(q, fmt) -> float:
    """Correctly rounded value (a Python float holding a number of the format)."""
    if isinstance(q, tuple):
        if q in (libmp.fnan, libmp.finf, libmp.fninf):
            d = _decompose(_make(q))
        else:
            sign, man, exp, _bc = q
            d = ("zero", 0) if not man else (sign, int(man), int(exp))
    else:
        d = _decompose(q)
    return float(_parts_to_scalar(_round_parts(d, fmt), fmt))


def _same(a: float, b: float) -> bool:
    """Bitwise equality of two floats (signed zeros differ, nan equals nan)."""
    if a != a or b != b:
        return a != a and b != b
    return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)


def _ulp_exp_raw(t, fmt) -> int:
    """Exponent of the format's ulp at |t| (t raw, finite, >= 0 magnitude used)."""
    if t == _FZERO or t[0]:
        return fmt.qmin
    _s, man, exp, _bc = t
    e = exp + man.bit_length() - 1
    return min(max(e - fmt.p + 1, fmt.qmin), fmt.qmax)


def _decide(item, fmt, exact_mode):
    """Return ``(True, value)`` when the item's rounding (or exact value) is certain."""
    if item[0] == "x":
        return True, (_item_to_mpf(item) if exact_mode else _round_item_value(item[1], fmt))
    _tag, v, err = item
    if exact_mode:
        # the binade of |v| - err (exact, or a stand-in in the same binade: see _add_sticky)
        lo_mag = _add_sticky(libmp.mpf_abs(v), libmp.mpf_neg(err))
        k = _ulp_exp_raw(lo_mag, fmt)
        if err == _FZERO or libmp.mpf_le(err, libmp.from_man_exp(1, k - fmt.p - 30)):
            return True, _make(v)
        return False, None
    if err == _FZERO:
        return True, _round_raw_or_q(v, fmt)
    fast = _fast_decide(v, err, fmt)
    if fast is not None:
        return True, fast
    # v -+ err rounded; _add_sticky keeps the rounding exact without an exponent-gap-sized sum
    lo = _round_raw_or_q(_add_sticky(v, libmp.mpf_neg(err)), fmt)
    hi = _round_raw_or_q(_add_sticky(v, err), fmt)
    if _same(lo, hi):
        return True, lo
    return False, None


def _fast_decide(v, err, fmt):
    """Round ``v`` if ``[v - err, v + err]`` provably holds no rounding boundary, else None.

    With quantum :math:`2^q` at ``v``, the boundaries near ``v`` are the midpoints
    :math:`(k + 1/2) 2^q` of its binade and, below :math:`2^e`, midpoints at least
    :math:`2^{q-2}` away; requiring ``err`` below the distance to the nearest midpoint of the
    binade, below :math:`2^{q-2}` and below ``|v|`` (no sign change) is sufficient.
    """
    sign, man, exp, bc = v
    if not man:
        return None
    _es, eman, eexp, ebc = err
    if eexp + ebc > exp + bc - 1:  # err >= |v| possible
        return None
    e = exp + bc - 1
    if e <= fmt.qmin - 3:
        # |v| + err < 1.5 * 2**(e+1) <= 2**(qmin-1), half the smallest subnormal, and err < |v|:
        # the whole interval rounds to a zero of v's sign (decided by exponents, so values like
        # exp(-1e20) are never shifted into integers)
        return -0.0 if sign else 0.0
    q = max(e - fmt.p + 1, fmt.qmin)
    if eexp + ebc > q - 2:
        return None
    if exp >= q:  # v is a float of the format: no midpoint closer than 2**(q-2) ... 2**(q-1)
        return _round_raw_or_q(v, fmt)
    shift = q - exp
    frac = man & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    dist = frac - half if frac >= half else half - frac  # to the cell's midpoint, units 2**exp
    if eexp >= exp:
        ok = (eman << (eexp - exp)) < dist
    elif eexp + ebc <= exp:  # err < 2**exp <= dist * 2**exp unless dist = 0 (no shift by the
        ok = dist > 0  # gap: err can be e^{-10^30} next to v = -10^30)
    else:
        ok = eman < (dist << (exp - eexp))
    if not ok:
        return None
    m = (man >> shift) + (1 if frac > half else 0)
    if q + m.bit_length() - 1 > fmt.emax:
        return -math.inf if sign else math.inf
    r = math.ldexp(m, q)
    return -r if sign else r


def _ziv(compute, fmt, exact_mode, w0):
    """Run ``compute(w) -> list of items`` with growing ``w`` until every item is decided."""
    w = w0
    results = None
    pending = None
    while True:
        items = compute(w)
        if results is None:
            results = [None] * len(items)
            pending = range(len(items))
        still = []
        for i in pending:
            ok, val = _decide(items[i], fmt, exact_mode)
            if ok:
                results[i] = val
            else:
                still.append(i)
        if not still:
            return results
        pending = still
        if w >= PRECISION_CAP:
            warnings.warn(
                f"crossent.reference: {len(still)} value(s) not certified correctly rounded at "
                f"{PRECISION_CAP} bits; returning the nearest rounding of the best approximation",
                CorrectRoundingWarning,
                stacklevel=3,
            )
            for i in still:
                v = items[i][1]
                results[i] = _make(v) if exact_mode else _round_raw_or_q(v, fmt)
            return results
        w = min(2 * w, PRECISION_CAP)


def _w0(fmt, k: int, exact_mode: bool) -> int:
    """First working precision: enough to round nearly always (p + 40 bits beyond the
    accumulated error units), or to meet the ``exact=True`` accuracy target at once."""
    if exact_mode:
        return 2 * fmt.p + 48 + 2 * _bitlen(k + 1)
    return fmt.p + 40 + _bitlen(k + 1)


# ---------------------------------------------------------------------------------------------
# layout (the argument checks are crossent._validate's, shared with the public functions)
# ---------------------------------------------------------------------------------------------


def _rows(a, ax):
    moved = np.moveaxis(a, ax, -1)
    k = moved.shape[-1]
    nrows = int(np.prod(moved.shape[:-1], dtype=np.int64))
    return moved.reshape(nrows, k), moved.shape


def _finish(values, shape, fmt, exact_mode):
    """Values (list) to an ndarray of ``shape`` (or a scalar for shape ())."""
    if exact_mode:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        out = out.reshape(shape)
        return out[()] if shape == () else out
    out = np.array(values, dtype=fmt.dtype).reshape(shape)
    return out[()] if shape == () else out


# ---------------------------------------------------------------------------------------------
# the softmax core of one row
# ---------------------------------------------------------------------------------------------


class _Row:
    r"""High-precision facts about one row of finite-or-(−inf) logits at precision ``w``.

    Attributes: ``fin`` (indices of finite entries), ``m`` (max, float), ``jmax``,
    ``d`` (dict j -> raw exact x_j - m), ``e`` (dict j -> raw exp(d_j) or None when cut),
    ``T`` (raw), ``S`` (raw, exact 1 + T, or 1 when T is beyond the precision horizon),
    ``L`` (raw log S, or T beyond the horizon), ``cT``, ``cL``, ``cS`` (relative error bounds
    in units of 2**-w; ``cS`` is that of taking S = 1), and the ``allequal`` flag.

    Beyond the horizon, :math:`T < 2^{-(w+64)}`: then :math:`1/(1+T) = 1 - \theta` with
    :math:`0 < \theta < T`, and :math:`\log(1+T) = T(1 - \theta')` with
    :math:`0 < \theta' < T/2`, both below one unit of :math:`2^{-w}` relative, so ``S = 1``
    (``cS = 1``) and ``L = T`` (``cL = cT + 1``) are rigorous and never build the exact
    :math:`1 + T` (for :math:`T = e^{-10^{20}}` that is a :math:`10^{20}`-bit integer).
    """

    __slots__ = ("xs", "w", "fin", "m", "jmax", "d", "df", "e", "T", "S", "L", "cT", "cL",
                 "cS", "allequal", "n", "invS")

    def __init__(self, xs, w):
        self.xs = xs
        self.w = w
        fin = [j for j, v in enumerate(xs) if v != -math.inf]
        self.fin = fin
        self.n = len(fin)
        m = max(xs[j] for j in fin)
        self.m = m
        self.jmax = next(j for j in fin if xs[j] == m)
        mr = _raw(m)
        sub = libmp.mpf_sub
        d = {}
        df = {}
        for j in fin:
            xj = xs[j]
            dj = xj - m  # float; exact when the TwoSum error term vanishes
            bb = dj - xj
            if math.isfinite(dj) and (xj - (dj - bb)) + (-m - bb) == 0.0:
                d[j] = _raw(dj)
            else:
                d[j] = sub(_raw(xj), mr, 0)
            df[j] = dj
        self.d = d
        self.df = df  # floats, may overflow to -inf
        others = [j for j in fin if j != self.jmax]
        self.e = {}
        if not others:
            self.T, self.cT, self.allequal = _FZERO, 0.0, True
        else:
            K = len(xs)
            d2f = max(self.df[j] for j in others)
            if d2f == -math.inf:
                thr = None  # extreme spread: no cut (exact comparisons would be needed)
            else:
                C = (w + _bitlen(K) + 4) * math.log(2) + 1.0
                thr = d2f - abs(d2f) * 2.0**-50 - C
            exp = libmp.mpf_exp
            terms = []
            cut = False
            allzero = True
            for j in others:
                dj = self.d[j]
                if thr is not None and self.below_thr(j, thr):
                    self.e[j] = None
                    cut = True
                    continue
                ej = exp(dj, w) if dj != _FZERO else _FONE
                if dj != _FZERO:
                    allzero = False
                self.e[j] = ej
                terms.append(ej)
            # exact fixed-point sum when the cut bounds the exponent range; rounded otherwise
            if thr is not None:
                # exact sum of the terms within the horizon of the largest; the others (e.g.
                # e^{-10^{30}} next to e^{-10^{30}+10^{10}}) are below one unit relative
                self.T, drop = _exact_sum(terms, w)
            else:
                self.T, drop = _sum_raw(terms, w + 2 * _bitlen(K) + 10), _FZERO
            exact_T = allzero and not cut
            self.allequal = exact_T
            self.cT = 0.0 if exact_T else _ETA + (2.0 if drop == _FZERO else 3.0)
        self.e[self.jmax] = _FONE
        T = self.T
        if T == _FZERO:
            self.S, self.L, self.cL, self.cS = _FONE, _FZERO, 0.0, 0.0
        elif _top(T) < -(w + _HORIZON):  # beyond the horizon (see the class notes)
            self.S, self.L, self.cL, self.cS = _FONE, T, self.cT * 1.01 + 1.0, 1.0
        else:  # exact 1 + T: at most bc(T) + w + 64 bits
            self.S = libmp.mpf_add(_FONE, T, 0)
            self.L = libmp.mpf_log(self.S, w)
            self.cL = self.cT * 1.01 + _ETA + 1.0
            self.cS = 0.0
        self.invS = None

    # -- per-entry quantities ------------------------------------------------------------------
    def neg_log_p(self, j):
        r"""``(v, c, err)`` for :math:`-\log\operatorname{softmax}_j = L - d_j \ge 0` of a
        finite entry: the value, its relative error in units of :math:`2^{-w}` and an absolute
        bound (zero when exact).

        ``L - d_j`` is exact (both terms have the sign of the result), so the error is that of
        ``L``: ``cL`` units of ``L``, at most ``cL`` units of ``v``. When ``L`` is beyond the
        horizon of ``d_j`` (:func:`_add_bounded`) the value is ``-d_j`` and the dropped ``L``
        (under one unit of ``v``) is the error.
        """
        if self.L == _FZERO:
            return libmp.mpf_neg(self.d[j]), 0.0, _FZERO
        v, drop = _add_bounded(self.L, libmp.mpf_neg(self.d[j]), self.w)
        err = _abs_err(self.L, self.cL, self.w)  # |L* - L|
        if drop != _FZERO:  # |true - v| <= |dropped term| + |L* - L|
            return v, self.cL + 1.0, _err_add(err, drop)
        return v, self.cL, err

    def below_thr(self, j, thr) -> bool:
        """Whether :math:`d_j < ` ``thr`` is certain from the float ``df[j]`` (−inf when
        ``x_j - m`` overflowed: then :math:`d_j < -2^{1024}`, below any finite ``thr``)."""
        dfj = self.df[j]
        return dfj == -math.inf or dfj + abs(dfj) * 2.0**-50 < thr

    def below(self, j, k) -> bool:
        r"""Whether :math:`d_j < k \ln 2 - 1` is certain from the float ``df[j]`` (then
        :math:`e^{d_j} < 2^k`). ``df`` is ``x_j - m`` rounded (relative error
        :math:`2^{-53}`), or −inf when that overflowed (the exact :math:`d_j` is then below
        :math:`-2^{1024}`)."""
        return self.below_thr(j, k * math.log(2) - 1.0)

    def p(self, j, fmt):
        """Item for softmax_j of a finite entry."""
        if self.allequal:
            return _exact_item(Fraction(1, self.n))
        kq = fmt.qmin - fmt.p - 40
        if j != self.jmax and self.below(j, kq):
            # softmax_j <= exp(d_j) < 2**kq, far below half the smallest subnormal: decided by
            # the exponent, exp(d_j) is not evaluated (it rounds to +0; exact=True gives a
            # placeholder in (0, 2**kq])
            half = libmp.from_man_exp(1, kq - 1)
            return ("a", half, half)
        v, c = self.p_full(j)
        return ("a", v, _abs_err(v, c, self.w))

    def p_full(self, j):
        """``(v, c)``: softmax_j of a finite entry at precision w with relative error c units
        (always evaluated, however small)."""
        w = self.w
        ej = self.e.get(j)
        if ej is None:
            ej = libmp.mpf_exp(self.d[j], w)
            ce = _ETA
        else:
            ce = 0.0 if self.d[j] == _FZERO else _ETA
        v = libmp.mpf_mul(ej, self.inv_s(), w, libmp.round_nearest)
        return v, ce + self.cT + self.cS + _ETA + 2.0

    def inv_s(self):
        """1/S rounded at precision w (relative error 1 unit, plus cS)."""
        if self.invS is None:
            self.invS = libmp.mpf_div(_FONE, self.S, self.w, libmp.round_nearest)
        return self.invS


def _row_state(xs):
    """'nan' (nan or +inf present), 'allneg' (no finite entry), 'empty' or 'ok'."""
    if not xs:
        return "empty"
    has_fin = False
    for v in xs:
        if v != v or v == math.inf:
            return "nan"
        if v != -math.inf:
            has_fin = True
    return "ok" if has_fin else "allneg"


def _posinf_no_nan(xs) -> bool:
    """A +inf in the slice and no nan (SciPy's rule: logsumexp is +inf there)."""
    return math.inf in xs and not any(v != v for v in xs)


def _merged_rows(a, ax):
    """The slices along the merged axes ``ax`` (:func:`crossent._validate.reduction_axes`)."""
    return ax.merged(a).reshape(int(np.prod(ax.batch, dtype=np.int64)), ax.K)


# ---------------------------------------------------------------------------------------------
# logsumexp, log_softmax, softmax
# ---------------------------------------------------------------------------------------------


def logsumexp(x, axis=-1, keepdims=False, *, b=None, return_sign=False, exact=False):
    r"""Correctly rounded :math:`\log\sum_j e^{x_j}` along ``axis``.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 values (integers are taken as float64).
    axis : int, optional
        The axis to reduce.
    keepdims : bool, optional
        Keep the reduced axis with length 1.
    b : array_like, optional
        Scale factors (finite, broadcastable with ``x``): :math:`\log|\sum_j b_j e^{x_j}|`,
        correctly rounded; terms with :math:`b_j = 0` are left out.
    return_sign : bool, optional
        Also return the sign of the sum (0 for a zero sum); without it a negative sum is nan.
    exact : bool, optional
        Return the unrounded value (``mpf`` / object ndarray) instead of the rounded one.

    Returns
    -------
    numpy scalar or ndarray of ``x.dtype`` (object array of ``mpf`` with ``exact=True``)

    Notes
    -----
    With :math:`m = \max_j x_j`, :math:`d_j = x_j - m` and
    :math:`T = \sum_{j \ne j_{max}} e^{d_j}`,

    .. math:: \operatorname{logsumexp}(x) = m + \log(1 + T),

    evaluated with :math:`1+T` formed exactly so that :math:`\log(1+T)` keeps its relative
    accuracy (see the module notes for the error bound and Ziv's loop). The result is the
    float nearest the exact value. A slice with nan or +inf gives nan (the convention of the
    public API), only −inf or an empty slice gives −inf, a single finite entry gives that
    entry exactly.
    """
    if b is not None:
        return _logsumexp_b(x, axis, keepdims, b, return_sign, exact)
    scale_factors(np.empty(0), None, return_sign)
    a = as_float_array(x, "x")
    fmt = float_format(a.dtype)
    ax = reduction_axes(axis, a.shape, "axis")
    rows = _merged_rows(a, ax)
    K = ax.K
    vals = []
    for r in rows:
        xs = [float(v) for v in r.tolist()]
        st = _row_state(xs)
        if st == "nan":
            special = _PINF if _posinf_no_nan(xs) else _NAN
            vals.append(_decide(_exact_item(special), fmt, exact)[1])
        elif st in ("empty", "allneg"):
            vals.append(_decide(_exact_item(_NINF), fmt, exact)[1])
        else:
            def compute(w, xs=xs):
                row = _Row(xs, w)
                if row.T == _FZERO:
                    return [_exact_item(_raw(row.m))]
                # m + L, exact unless one is beyond the other's horizon (then bounded)
                v, drop = _add_bounded(_raw(row.m), row.L, w)
                return [("a", v, _err_add(_abs_err(row.L, row.cL, w), drop))]

            vals.append(_ziv(compute, fmt, exact, _w0(fmt, K, exact))[0])
    res = np.asarray(_finish(vals, ax.batch, fmt, exact), dtype=object if exact else fmt.dtype)
    res = scalar_if_0d(ax.reduced(res, keepdims))
    if not return_sign:
        return res
    signs = [math.nan if v != v else (0.0 if v == -math.inf else 1.0) for v in vals]
    return res, scalar_if_0d(ax.reduced(np.array(signs, dtype=fmt.dtype), keepdims))


def _dyadic(q: Fraction):
    r"""A Fraction with a power-of-two denominator (a sum of floats) as an exact raw mpf."""
    return libmp.from_man_exp(q.numerator, -(q.denominator.bit_length() - 1))


def _lse_b_item(xs, bs, w, fmt):
    r"""``(item, sign)`` of :math:`\log|\sum_j b_j e^{x_j}|` for one slice (finite ``b``; the
    terms with ``b_j = 0`` already removed; no nan or +inf among the ``x_j``).

    The factors of equal ``x_j`` are added exactly first; a group whose factors cancel is
    left out. The other terms :math:`c_g e^{x_g - m}` are distinct exponentials with
    non-zero rational factors, so their sum is not 0 (Lindemann-Weierstrass) and raising
    the precision separates it from 0: the sum is accepted once its error bound is below
    half its magnitude. Then :math:`|\log|S^*| - \log|S|| \le 2\,err_S/|S|`.
    """
    groups = {}
    for v, c in zip(xs, bs):
        if v != -math.inf:
            groups[v] = groups.get(v, Fraction(0)) + Fraction(c)
    groups = {v: c for v, c in groups.items() if c != 0}
    if not groups:
        return _exact_item(_NINF), 0.0
    m = max(groups)
    mr = _raw(m)
    while True:
        terms, mags = [], _FZERO
        for v, c in groups.items():
            d = libmp.mpf_sub(_raw(v), mr, 0)
            e = _FONE if d == _FZERO else libmp.mpf_exp(d, w)
            t = libmp.mpf_mul(_dyadic(c), e, w, libmp.round_nearest)
            terms.append(t)
            if d != _FZERO:  # exact terms (c e^0) carry no error
                mags = _err_add(mags, libmp.mpf_abs(t))
        S, drop = _exact_sum(terms, w)
        errS = _err_add(_abs_err(mags, _ETA + 1.0, w) if mags != _FZERO else _FZERO, drop)
        if S != _FZERO and libmp.mpf_lt(libmp.mpf_mul(errS, libmp.from_int(2)), libmp.mpf_abs(S)):
            break
        if w >= PRECISION_CAP:
            return _exact_item(_NAN), math.nan  # not separated from 0 (not expected: see above)
        w = min(2 * w, PRECISION_CAP)
    sign = -1.0 if S[0] else 1.0
    absS = libmp.mpf_abs(S)
    L = libmp.mpf_log(absS, w)
    errL = _err_add(libmp.mpf_div(libmp.mpf_mul(errS, libmp.from_int(2)), absS, 30, libmp.round_up),
                    _abs_err(L, _ETA, w))
    if errS == _FZERO and L == _FZERO:  # |S| = 1 exactly: the result is m
        return _exact_item(mr), sign
    v, drop2 = _add_bounded(mr, L, w)
    return ("a", v, _err_add(errL, drop2)), sign


def _logsumexp_b(x, axis, keepdims, b, return_sign, exact):
    a, bb = scale_factors(as_float_array(x, "x"), b, return_sign)
    fmt = float_format(a.dtype)
    ax = reduction_axes(axis, a.shape, "axis")
    rows, brows = _merged_rows(a, ax), _merged_rows(bb, ax)
    vals, signs = [], []
    for r, br in zip(rows, brows):
        used = [(float(v), float(c)) for v, c in zip(r.tolist(), br.tolist()) if c != 0.0]
        xs = [v for v, _ in used]
        bs = [c for _, c in used]
        special = None
        if any(v != v for v in xs):
            special, sg = _NAN, math.nan
        elif math.inf in xs:
            s = {math.copysign(1.0, c) for v, c in used if v == math.inf}
            special, sg = (_PINF, s.pop()) if len(s) == 1 else (_NAN, math.nan)
            if sg < 0 and not return_sign:  # a negative sum: nan (SciPy), infinite too
                special = _NAN
        if special is not None:
            vals.append(_decide(_exact_item(special), fmt, exact)[1])
            signs.append(sg)
            continue
        sgn = []

        def compute(w, xs=xs, bs=bs, sgn=sgn):
            item, sg = _lse_b_item(xs, bs, w, fmt)
            sgn[:] = [sg]
            return [item]

        v = _ziv(compute, fmt, exact, _w0(fmt, len(xs), exact))[0]
        if sgn[0] < 0 and not return_sign:
            v = _decide(_exact_item(_NAN), fmt, exact)[1]
        vals.append(v)
        signs.append(sgn[0])
    res = np.asarray(_finish(vals, ax.batch, fmt, exact), dtype=object if exact else fmt.dtype)
    res = scalar_if_0d(ax.reduced(res, keepdims))
    if not return_sign:
        return res
    return res, scalar_if_0d(ax.reduced(np.array(signs, dtype=fmt.dtype), keepdims))


def _softmax_family(x, axis, exact, which):
    a = as_float_array(x, "x")
    fmt = float_format(a.dtype)
    ax = reduction_axes(axis, a.shape, "axis")
    rows = _merged_rows(a, ax)
    K = ax.K
    vals = []
    for r in rows:
        xs = [float(v) for v in r.tolist()]
        st = _row_state(xs)
        if st == "empty":
            continue
        if st in ("nan", "allneg"):
            nan = _decide(_exact_item(_NAN), fmt, exact)[1]
            if which == "log" and _posinf_no_nan(xs):  # SciPy: nan at +inf, -inf elsewhere
                ninf = _decide(_exact_item(_NINF), fmt, exact)[1]
                vals.extend([nan if v == math.inf else ninf for v in xs])
            else:
                vals.extend([nan] * K)
            continue

        def compute(w, xs=xs):
            row = _Row(xs, w)
            items = []
            for j, v in enumerate(xs):
                if v == -math.inf:
                    items.append(_exact_item(_NINF if which == "log" else 0))
                elif which == "log":
                    nl, _c, err = row.neg_log_p(j)
                    val = libmp.mpf_neg(nl)
                    dj = row.d[j]
                    it = None
                    if err != _FZERO and dj != _FZERO and _top(row.L) < _top(dj) - w:
                        # d_j (exact) minus an astronomically small L: d_j can be a midpoint
                        it = _exact_plus_tiny(_frac_of_raw(dj), -1, _tiny_L_top(row), fmt)
                    if it is None:
                        it = ("a", val, err) if err != _FZERO else _exact_item(val)
                    items.append(it)
                else:
                    items.append(row.p(j, fmt))
            return items

        vals.extend(_ziv(compute, fmt, exact, _w0(fmt, K, exact)))
    res = np.asarray(_finish(vals, ax.batch + (K,), fmt, exact))
    return scalar_if_0d(ax.unmerged(res))


def log_softmax(x, axis=-1, *, exact=False):
    r"""Correctly rounded :math:`x_i - \operatorname{logsumexp}(x)` along ``axis``.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 values.
    axis : int, optional
        The class axis.
    exact : bool, optional
        Return unrounded ``mpf`` values (object ndarray).

    Returns
    -------
    ndarray of ``x.dtype`` (object ndarray of ``mpf`` with ``exact=True``)

    Notes
    -----
    .. math:: \log\operatorname{softmax}(x)_i = d_i - \log(1 + T), \quad d_i = x_i - m \le 0,

    a difference of a non-positive and a non-negative number, so nothing cancels. −inf
    entries give −inf exactly; a slice with nan or +inf, or with only −inf, gives nan.
    """
    return _softmax_family(x, axis, exact, "log")


def softmax(x, axis=-1, *, exact=False):
    r"""Correctly rounded :math:`e^{x_i} / \sum_j e^{x_j}` along ``axis``.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 values.
    axis : int, optional
        The class axis.
    exact : bool, optional
        Return unrounded ``mpf`` values (object ndarray).

    Returns
    -------
    ndarray of ``x.dtype`` (object ndarray of ``mpf`` with ``exact=True``)

    Notes
    -----
    .. math:: \operatorname{softmax}(x)_i = \frac{e^{d_i}}{1 + T},

    with the row's :math:`T` computed once and reused for every entry. When all finite
    entries are equal the value is exactly :math:`1/n` (rounded from the rational); −inf
    entries give exactly 0; outputs provably below :math:`2^{e_{min}-2p-40}` are not
    evaluated (they round to +0). A slice with nan or +inf, or only −inf, gives nan.
    """
    return _softmax_family(x, axis, exact, "p")


# ---------------------------------------------------------------------------------------------
# cross-entropy loss and gradient
# ---------------------------------------------------------------------------------------------


class _Problem:
    def __init__(self, logits, target, axis, weight, ignore_index, reduction, label_smoothing,
                 z_loss=0.0, logit_softcap=None):
        v = loss_inputs(logits, target, axis, weight, ignore_index, reduction, label_smoothing)
        self.z, self.cap = loss_options(z_loss, logit_softcap)
        self.options = self.z != 0.0 or self.cap != 0.0
        if v.reduction == "partial":  # the one input the API takes and the oracle does not
            raise ValueError(
                "reduction='partial' is not available in the oracle: its 'sum' and 'mean' are "
                "the correctly rounded sums of the exact per-item values, which no Partial of "
                "float64 items holds; use reduction='sum' or 'mean'")
        x = v.logits
        self.fmt = float_format(x.dtype)
        self.ax = v.axis
        self.shape = x.shape
        rows, moved = _rows(x, v.axis)
        self.moved = moved
        self.C = v.C  # may be 0: every label is then ignored, a probability row gives nan
        self.rows = [[float(e) for e in r.tolist()] for r in rows]
        self.reduction = v.reduction
        self.eps = v.eps
        self.ignore_index = v.ignore_index
        self.w = None if v.weight is None else [float(e) for e in v.weight.tolist()]
        self.prob = v.probs is not None
        if self.prob:
            tr, _ = _rows(v.probs, v.axis)
            self.trows = [[float(e) for e in r.tolist()] for r in tr]
        else:
            self.labels = [int(e) for e in v.labels.tolist()]
        self.N = len(self.rows)

    # exact rational coefficients a_c = w_c t_c of item n (None if ignored)
    def coef_frac(self, n):
        C, eps = self.C, Fraction(self.eps)
        wf = (lambda c: Fraction(self.w[c])) if self.w is not None else (lambda c: Fraction(1))
        if self.prob:
            return [wf(c) * ((1 - eps) * Fraction(self.trows[n][c]) + eps / C) for c in range(C)]
        y = self.labels[n]
        if y == self.ignore_index:
            return None
        return [wf(c) * ((1 - eps) * (c == y) + eps / C) for c in range(C)]

    def coef_frac_one(self, n, c):
        """The exact coefficient a_c of item n (not ignored)."""
        eps = Fraction(self.eps)
        wc = Fraction(self.w[c]) if self.w is not None else Fraction(1)
        if self.prob:
            return wc * ((1 - eps) * Fraction(self.trows[n][c]) + eps / self.C)
        return wc * ((1 - eps) * (c == self.labels[n]) + eps / self.C)

    def ignored(self, n):
        return (not self.prob) and self.labels[n] == self.ignore_index

    def denominator(self) -> Fraction:
        if self.prob:
            return Fraction(self.N)
        tot = Fraction(0)
        for y in self.labels:
            if y != self.ignore_index:
                tot += Fraction(self.w[y]) if self.w is not None else 1
        return tot

    def coef_raw(self, n, w):
        """Raw coefficients a_c (list), relative error units each, and positive-mask."""
        C = self.C
        eps = self.eps
        one_m = libmp.mpf_sub(_FONE, _raw(eps), 0)
        beta = libmp.mpf_div(_raw(eps), libmp.from_int(C), w, libmp.round_nearest)
        wr = [_raw(v) for v in self.w] if self.w is not None else None
        out = []
        for c in range(C):
            if self.prob:
                tc = libmp.mpf_add(libmp.mpf_mul(one_m, _raw(self.trows[n][c]), 0), beta, w,
                                   libmp.round_nearest)
            else:
                tc = libmp.mpf_add(one_m if c == self.labels[n] else _FZERO, beta, w,
                                   libmp.round_nearest)
            out.append(libmp.mpf_mul(wr[c], tc, w, libmp.round_nearest) if wr else tc)
        return out  # each within 4 units of 2**-w relative


def _tiny_L_top(row):
    r"""``t`` with :math:`0 < L < 2^t` for the row's true :math:`L = \log(1+T) > 0` (the computed
    ``L`` has relative error ``cL`` units of :math:`2^{-w}`, far below 1)."""
    return _top(row.L) + 1


def _loss_item_raw(P, n, w):
    r"""Loss of item n at precision w and the row object.

    The loss is 'nan', 'inf', 'zero' or ``(v, err, tiny)`` with :math:`|loss - v| \le err`
    and ``tiny`` None or ``(X, t)``: loss :math:`= X + \theta` with :math:`X` an exact
    Fraction and :math:`0 < \theta < 2^t` (the part :math:`A L` when :math:`L` is
    astronomically small; see :func:`_exact_plus_tiny`).
    """
    xs = P.rows[n]
    st = _row_state(xs)
    if st == "empty" and P.prob:  # no classes: the empty sum of t_c (-log p_c) is 0
        return "zero", None
    if st != "ok":
        return "nan", None
    row = _Row(xs, w)
    eps = P.eps
    if not P.prob and eps == 0.0:
        y = P.labels[n]
        wy = P.w[y] if P.w is not None else 1.0
        if wy == 0.0:
            return "zero", row
        if xs[y] == -math.inf:
            return "inf", row
        nl, c, _err = row.neg_log_p(y)
        v = libmp.mpf_mul(nl, _raw(wy), w, libmp.round_nearest) if wy != 1.0 else nl
        tiny = None
        dy = row.d[y]
        if row.L != _FZERO and dy != _FZERO and _top(row.L) < _top(dy) - w:
            # w_y (L - d_y) = -w_y d_y (exact) + w_y L (astronomically small)
            tiny = (-_frac_of_raw(dy) * Fraction(wy), _tiny_L_top(row) + _top(_raw(wy)))
        return (v, _abs_err(v, c + 1.0, w), tiny), row
    a = P.coef_raw(n, w)
    terms = []
    cmax = 0.0
    for cidx, ac in enumerate(a):
        if ac == _FZERO:
            continue
        if xs[cidx] == -math.inf:
            return "inf", row
        nl, c, _err = row.neg_log_p(cidx)
        cmax = max(cmax, c)
        terms.append(libmp.mpf_mul(nl, ac, w, libmp.round_nearest))
    if not terms:
        return "zero", row
    v = _sum_raw(terms, w)
    tiny = None
    if row.L != _FZERO and v != _FZERO and _top(row.L) + _top(_sum_raw(a, w)) < _top(v) - w:
        # sum_c a_c (L - d_c) = sum_c a_c (-d_c) (exact rational) + A L (astronomically small)
        af = P.coef_frac(n)
        X = sum((-ac * _frac_of_raw(row.d[c]) for c, ac in enumerate(af) if ac != 0), Fraction(0))
        if X != 0:
            tiny = (X, _tiny_L_top(row) + _frac_top(sum(af)))
    return (v, _abs_err(v, cmax + 6.0 + len(terms), w), tiny), row


def _reduce_items(P, w, fmt):
    """Items for the loss output(s) at precision w."""
    per = []
    for n in range(P.N):
        if P.ignored(n):
            per.append("zero")
            continue
        r, _row = _loss_item_raw(P, n, w)
        per.append(r)
    if P.reduction == "none":
        items = []
        for r in per:
            if r == "nan":
                items.append(_exact_item(_NAN))
            elif r == "inf":
                items.append(_exact_item(_PINF))
            elif r == "zero":
                items.append(_exact_item(0))
            elif r[1] == _FZERO:
                items.append(_exact_item(r[0]))
            else:
                it = _exact_plus_tiny(r[2][0], +1, r[2][1], fmt) if r[2] is not None else None
                items.append(it if it is not None else ("a", r[0], r[1]))
        return items
    if P.reduction == "mean":
        den = P.denominator()
        if den == 0:
            return [_exact_item(_NAN)]
    if any(r == "nan" for r in per):
        return [_exact_item(_NAN)]
    if any(r == "inf" for r in per):
        return [_exact_item(_PINF)]
    vals = [r for r in per if r != "zero"]
    if not vals:
        return [_exact_item(0)]
    s = _sum_raw([v for v, _e, _t in vals], w)
    err = _FZERO
    for _v, e, _t in vals:
        err = _err_add(err, e)
    err = _err_add(err, _abs_err(s, len(vals) + 1.0, w))
    if all(e == _FZERO for _v, e, _t in vals):
        s_exact = _sum_raw([v for v, _e, _t in vals], 0)
        if P.reduction == "sum":
            return [_exact_item(s_exact)]
        return [_exact_item(_frac_of_raw(s_exact) / den)]
    if all(e == _FZERO or t is not None for _v, e, t in vals):
        # every item is exact or an exact rational plus a tiny positive part: so is the total
        X = Fraction(0)
        tmax = None
        for v, e, t in vals:
            if e == _FZERO:
                X += _frac_of_raw(v)
            else:
                X += t[0]
                tmax = t[1] if tmax is None else max(tmax, t[1])
        tmax += _bitlen(len(vals))
        if P.reduction == "mean":
            X /= den
            tmax += max(0, -_frac_top(den) + 2)  # 1/den < 2**(2 - _frac_top(den))
        it = _exact_plus_tiny(X, +1, tmax, fmt) if X != 0 else None
        if it is not None:
            return [it]
    if P.reduction == "sum":
        return [("a", s, err)]
    dn = libmp.from_rational(den.numerator, den.denominator, w, libmp.round_nearest)
    v = libmp.mpf_div(s, dn, w, libmp.round_nearest)
    e2 = libmp.mpf_div(err, dn, 30, libmp.round_up)
    return [("a", v, _err_add(e2, _abs_err(v, 3.0, w)))]


def _loss(P, exact_mode):
    fmt = P.fmt
    w0 = _w0(fmt, P.C, exact_mode) + _bitlen(P.N)
    if P.reduction == "none":
        vals = []
        for n in range(P.N):
            def compute(w, n=n):
                Q = _Sub(P, [n])
                return _reduce_items(Q, w, fmt)

            vals.extend(_ziv(compute, fmt, exact_mode, w0))
        return _finish(vals, P.moved[:-1], fmt, exact_mode)
    res = _ziv(lambda w: _reduce_items(P, w, fmt), fmt, exact_mode, w0)
    return _finish(res, (), fmt, exact_mode)


class _Sub:
    """A view of a problem restricted to some items (for per-item Ziv loops)."""

    def __init__(self, P, idx):
        self.__dict__.update(P.__dict__)
        self.rows = [P.rows[i] for i in idx]
        if P.prob:
            self.trows = [P.trows[i] for i in idx]
        else:
            self.labels = [P.labels[i] for i in idx]
        self.N = len(idx)
        self.reduction = "none"

    coef_raw = _Problem.coef_raw
    coef_frac = _Problem.coef_frac
    coef_frac_one = _Problem.coef_frac_one
    ignored = _Problem.ignored


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, logit_softcap=None, exact=False):
    r"""Correctly rounded cross-entropy loss of logits against targets (PyTorch semantics).

    Parameters
    ----------
    logits : array_like
        float16/float32/float64 scores, the class axis is ``axis``.
    target : array_like
        Integer class indices (shape of ``logits`` without ``axis``) or float probabilities
        (shape of ``logits``, finite, non-negative).
    axis : int, optional
        The class axis.
    weight : array_like of shape (C,), optional
        Finite non-negative per-class weights.
    ignore_index : int, optional
        Class-index targets equal to it are skipped.
    reduction : {"mean", "sum", "none"}
        As ``torch.nn.functional.cross_entropy``.
    label_smoothing : float in [0, 1]
        :math:`\varepsilon`; the target becomes :math:`(1-\varepsilon)t + \varepsilon/C`.
    z_loss : float >= 0, optional
        Adds :math:`z\,w_n \operatorname{lse}(z_n)^2` per item (:math:`w_n = w_{y_n}` for
        class indices, 1 for probabilities; ignored items nothing).
    logit_softcap : float > 0 or None, optional
        Every logit :math:`x` becomes :math:`c\tanh(x/c)` first (:math:`\pm\infty \to \pm c`).
        With either option set the values are computed in interval arithmetic under the
        same Ziv loop (see the section on the loss options in the source).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Returns
    -------
    numpy scalar (``"mean"``, ``"sum"``) or ndarray (``"none"``) of the logits' dtype

    Notes
    -----
    With :math:`\ell_{nc} = -\log\operatorname{softmax}(x_n)_c = L_n - d_{nc} \ge 0` and
    coefficients :math:`a_{nc} = w_c t_{nc}`,

    .. math::
        \mathrm{loss}_n = \sum_c a_{nc}\,\ell_{nc}, \qquad
        \mathrm{mean} = \frac{\sum_n \mathrm{loss}_n}{\sum_n w_{y_n}} \text{ (indices) or }
        \frac{\sum_n \mathrm{loss}_n}{N} \text{ (probabilities)},

    all terms non-negative. The "mean" and "sum" results are correctly rounded as a whole
    (one rounding of the exact reduced value). See the module docstring for the special
    values and the error analysis.
    """
    P = _Problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                 logit_softcap)
    if P.options:
        return _opt_loss(P, exact)
    return _loss(P, exact)


def _grad_row_items(P, n, w, scale_frac, fmt):
    """Gradient items of row n at precision w; scale_frac = s (Fraction) or None for nan."""
    C = P.C
    if P.ignored(n):
        return [_exact_item(0)] * C
    xs = P.rows[n]
    if scale_frac is None or _row_state(xs) != "ok":
        return [_exact_item(_NAN)] * C
    row = _Row(xs, w)
    af = None
    if row.allequal:
        af = P.coef_frac(n)
        pf = Fraction(1, row.n)
        A = sum(af)
        return [_exact_item(scale_frac * ((pf if xs[i] != -math.inf else 0) * A - af[i]))
                for i in range(C)]
    a = P.coef_raw(n, w)
    A = _sum_raw(a, w)
    if A == _FZERO:  # every coefficient is zero: the gradient is exactly 0
        return [_exact_item(0)] * C
    cA = C + 6.0
    s = libmp.from_rational(scale_frac.numerator, scale_frac.denominator, w, libmp.round_nearest)
    neg = libmp.mpf_neg
    rn = libmp.round_nearest
    tiny = libmp.from_man_exp(1, -20)
    items = []
    for i in range(C):
        ai = a[i]
        if xs[i] == -math.inf:  # p_i = 0 exactly: the entry is the rational -s a_i
            items.append(_exact_item(-scale_frac * P.coef_frac_one(n, i)))
            continue
        if i == row.jmax:
            # A p - a = (B + a) / S - a = (B - a T) / S with B = A - a = sum of the other
            # coefficients: no cancellation in 1 - p (p = 1/S can be 1 - e^{-10^20})
            B = _sum_raw([a[c] for c in range(C) if c != i], w)  # cA units
            aT = libmp.mpf_mul(ai, row.T, w, rn)  # 4 + cT + 1 units
            g, drop = _add_bounded(B, neg(aT), w)
            AT = libmp.mpf_mul(A, row.T, w, rn)
            if B != _FZERO and AT != _FZERO and _top(AT) < _top(B) - w:
                # (B - a T)/S = B - A T/S with A T/S far below B (a can be 0 and S = 1 + T):
                # the exact s B decides (it can be a midpoint, e.g. B = 3 (0.1/4) in float64),
                # the tiny part only by its sign
                Bf = sum((P.coef_frac_one(n, c) for c in range(C) if c != i), Fraction(0))
                t = _top(AT) + 1 + _frac_top(scale_frac)
                it = _exact_plus_tiny(scale_frac * Bf, -1, t, fmt) if Bf != 0 else None
                if it is not None:
                    items.append(it)
                    continue
            e = _err_add(_abs_err(B, cA, w), _abs_err(aT, row.cT + 6.0, w))
            e = _err_add(e, drop)
            # times 1/S (S >= 1, so the error does not grow) with 1/S off by 1 + cS units
            q = libmp.mpf_mul(g, row.inv_s(), w, rn)
            e = _err_add(e, libmp.mpf_mul(e, tiny, 30, libmp.round_up))
            e = _err_add(e, _abs_err(q, row.cS + 3.0, w))
        else:
            pv, pc = row.p_full(i)  # evaluated even when astronomically small
            q = libmp.mpf_mul(A, pv, w, rn)  # cA + pc + 1 units
            e = _abs_err(q, cA + pc + 1.0, w)
            g, drop = _add_bounded(q, neg(ai), w)
            if drop != _FZERO and ai != _FZERO and _top(q) < _top(ai):
                # s (A p_i - a_i) with A p_i beyond the horizon: exact -s a_i plus a tiny > 0
                t = _top(q) + 1 + _frac_top(scale_frac)
                it = _exact_plus_tiny(-scale_frac * P.coef_frac_one(n, i), +1, t, fmt)
                if it is not None:
                    items.append(it)
                    continue
            e = _err_add(_err_add(e, _abs_err(ai, 4.0, w)), drop)
            q = g
        gs = libmp.mpf_mul(q, s, w, rn)
        # |err| <= s * e (1 + 2**-20) + |gs| * 2 units (rounding of s and of the product)
        e = libmp.mpf_mul(e, s, 30, libmp.round_up)
        e = _err_add(e, libmp.mpf_mul(e, tiny, 30, libmp.round_up))
        e = _err_add(e, _abs_err(gs, 2.0, w))
        items.append(("a", gs, e))
    return items


def cross_entropy_value_and_grad(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                                 reduction="mean", label_smoothing=0.0, out=None, z_loss=0.0,
                                 logit_softcap=None, exact=False, grad_scale=None):
    r"""Correctly rounded loss and gradient of the reduced loss with respect to the logits.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As :func:`cross_entropy`.
    out : ndarray, optional
        Where to write the rounded gradient (the shape and dtype of ``logits``, writeable),
        as in crossent; not with ``exact=True``.
    exact : bool, optional
        Return unrounded ``mpf`` values.
    grad_scale : int, float or fractions.Fraction, optional
        The exact factor :math:`s` of the gradient instead of the reduction's: the gradient of the sum of the per-item losses times ``grad_scale``, rounded once. For
        rows of a larger batch whose mean's divisor is known (crossent's correctly rounded
        mode recomputes some rows of a batch here).

    Returns
    -------
    loss : as :func:`cross_entropy`
    dlogits : ndarray of the logits' shape and dtype (``out`` if given)

    Notes
    -----
    With :math:`A_n = \sum_c a_{nc}` and :math:`p = \operatorname{softmax}(x_n)`,

    .. math::
        \frac{\partial\,\mathrm{loss}}{\partial x_{ni}} = s\,(A_n p_{ni} - a_{ni}),

    :math:`s = 1/\sum_n w_{y_n}` (indices) or :math:`1/N` (probabilities) for ``"mean"``,
    1 for ``"sum"`` and ``"none"`` (the gradient of the sum). Ignored items have a zero
    gradient row; rows with nan/+inf (or only −inf) a nan row; a zero ``"mean"`` denominator
    gives nan rows. Each entry is correctly rounded; where :math:`A p_i \approx a_i` the
    difference cancels and the Ziv loop raises the precision. Exact rational entries (all
    finite logits equal, −inf logits, zero coefficients) are computed with fractions.
    """
    P = _Problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                 logit_softcap)
    check_out(out, P.shape, P.fmt.dtype)
    if out is not None and exact:
        raise ValueError("out must be None with exact=True (it cannot hold unrounded values)")
    if P.options:
        return _opt_value_and_grad(P, out, exact, grad_scale)
    fmt = P.fmt
    loss = _loss(P, exact)
    if grad_scale is not None:
        scale = Fraction(grad_scale)
    elif P.reduction == "mean":
        den = P.denominator()
        scale = None if den == 0 else 1 / den
    else:
        scale = Fraction(1)
    w0 = _w0(fmt, P.C, exact) + 10
    vals = []
    for n in range(P.N):
        vals.extend(_ziv(lambda w, n=n: _grad_row_items(P, n, w, scale, fmt), fmt, exact, w0))
    g = np.moveaxis(_finish(vals, P.moved, fmt, exact), -1, P.ax)
    if out is not None:
        out[...] = g
        return loss, out
    return loss, g


# ---------------------------------------------------------------------------------------------
# PMF functions: sums of c_k log r_k
# ---------------------------------------------------------------------------------------------


def _odd_split(q: Fraction):
    """q = 2**e * o with o = odd/odd: return (e, (odd_num, odd_den))."""
    n, d = q.numerator, q.denominator
    en = (n & -n).bit_length() - 1
    ed = (d & -d).bit_length() - 1
    return en - ed, (n >> en, d >> ed)


def _pmf_exact(terms, base):
    """Exact value of sum c_k log_b(r_k) when it is R*ln2/ln b with rational R, else None.

    ``terms``: list of (c Fraction, r Fraction). Returns a Fraction (base a power of two or
    R == 0) or None (transcendental, decided by the Ziv loop).
    """
    R = Fraction(0)
    groups: dict = {}
    for c, r in terms:
        e, o = _odd_split(r)
        R += c * e
        if o != (1, 1):
            groups[o] = groups.get(o, Fraction(0)) + c
    if any(v != 0 for v in groups.values()):
        return None
    if R == 0:
        return Fraction(0)
    if base is None:
        return None
    f, ob = _odd_split(Fraction(base))
    if ob != (1, 1):
        return None
    return R / f


def _pmf_items(terms_f, base, w, try_exact, sign):
    """One item for sign * sum_k c_k log_b(num_k / den_k); terms_f are float triples."""
    if try_exact:
        ex = _pmf_exact([(Fraction(c), Fraction(nu) / Fraction(de)) for c, nu, de in terms_f], base)
        if ex is not None:
            return _exact_item(sign * ex)
    vals = []
    err = _FZERO
    for c, nu, de in terms_f:
        if nu == de or c == 0.0:
            continue
        nr, dr = _raw(nu), _raw(de)
        diff = libmp.mpf_sub(nr, dr, 0)
        if 2 * abs(nu - de) <= de:  # |r - 1| <= 1/2: log1p of an accurate r - 1
            z = libmp.mpf_div(diff, dr, w, libmp.round_nearest) if de != 1.0 else diff
            lg = libmp.mpf_log(libmp.mpf_add(_FONE, z, 0), w)
            cl = _ETA + 3.0
        else:
            r = libmp.mpf_div(nr, dr, w, libmp.round_nearest) if de != 1.0 else nr
            lg = libmp.mpf_log(r, w)
            cl = _ETA + 4.0
        t = libmp.mpf_mul(_raw(c), lg, w, libmp.round_nearest)
        vals.append(t)
        err = _err_add(err, _abs_err(t, cl + 1.0, w))
    if not vals:
        return _exact_item(0)
    s = _sum_raw(vals, 0)  # exact
    if base is not None:
        lb = libmp.mpf_log(_raw(base), w)
        v = libmp.mpf_div(s, lb, w, libmp.round_nearest)
        err = _err_add(libmp.mpf_div(err, libmp.mpf_abs(lb), 30, libmp.round_up),
                       _abs_err(v, 2 * _ETA + 2.0, w))
        err = _err_add(err, libmp.mpf_mul(err, libmp.from_man_exp(1, -20), 30, libmp.round_up))
    else:
        v = s
    if sign < 0:
        v = libmp.mpf_neg(v)
    if err == _FZERO:
        return _exact_item(v)
    return ("a", v, err)


def _log0(y: float) -> float:
    """IEEE ``log`` of a non-negative float or nan (``log 0 = -inf``, ``log inf = inf``)."""
    return -math.inf if y == 0.0 else math.log(y)


def _pmf_reduce(arrays, names, axis, base, check, exact_mode, make_terms, sign):
    r"""Reduce ``sign * sum_k c_k log_b r_k`` along ``axis``; two arrays broadcast (NumPy rules).

    ``make_terms`` returns ``(special, terms)``: ``special`` is None or the IEEE sum (a float:
    ±inf or nan) of the terms that are not finite, e.g. :math:`-p \log 0 = +\infty`; it is
    then the row's value in nats, and :math:`\log_b x = \ln x / \ln b` turns an infinity
    into its opposite for a base below 1. Non-finite, negative or nan entries only get here
    with ``check=False`` (the values of crossent's documented rules for them).
    """
    arrs, dt, shape, ax, b = pmf_inputs(arrays, names, axis, base, check)
    arrs = [np.broadcast_to(a, shape) for a in arrs]
    fmt = float_format(dt)
    rows = [_rows(a, ax) for a in arrs]
    moved = rows[0][1]
    K = moved[-1]
    lists = [r[0] for r in rows]
    vals = []
    for i in range(lists[0].shape[0]):
        cols = [[float(v) for v in L[i].tolist()] for L in lists]
        special, terms = make_terms(*cols)
        if special is not None:
            if b is not None and b < 1:
                special = -special
            raw = _NAN if special != special else (_PINF if special > 0 else _NINF)
            vals.append(_decide(_exact_item(raw), fmt, exact_mode)[1])
            continue
        w0 = _w0(fmt, K, exact_mode)
        vals.append(_ziv(lambda w, terms=terms: [_pmf_items(terms, b, w, w > w0, sign)], fmt,
                         exact_mode, w0)[0])
    return _finish(vals, moved[:-1], fmt, exact_mode)


def _bad(*v) -> bool:
    """A nan or negative entry (the row is then nan)."""
    return any(x != x or x < 0.0 for x in v)


def _specials(contribs):
    """The IEEE sum of the non-finite term values, or None when there are none."""
    return sum(contribs) if contribs else None


def _ce_terms(pc, qc):
    r"""``(special, terms)`` of :math:`-\sum_k p_k \log q_k` (terms for :func:`_pmf_items`)."""
    special, terms = [], []
    for pk, qk in zip(pc, qc):
        if _bad(pk, qk):
            special.append(math.nan)
        elif pk == 0.0:
            continue  # 0 log q = 0 for every q >= 0, including 0 and +inf
        elif pk < math.inf and 0.0 < qk < math.inf:
            terms.append((pk, qk, 1.0))
        else:  # q = 0 < p gives +inf; an infinite p or q: the IEEE value of -p log q
            special.append(-pk * _log0(qk))
    return _specials(special), terms


def entropy(p, *q, base=None, axis=-1, check=None, exact=False):
    r"""Correctly rounded Shannon entropy :math:`H(p) = -\sum_k p_k \log_b p_k`.

    Parameters
    ----------
    p : array_like
        float16/32/64 probabilities, used as given (not normalized).
    *q
        Not accepted: SciPy's ``entropy(p, q)`` is the relative entropy
        :math:`D(p \,\|\, q)`, which is :func:`kl_divergence`; a second positional argument
        raises ``TypeError`` saying so (rather than computing a different function).
    base : float, optional
        Logarithm base (None: nats).
    axis : int, optional
        Axis to reduce.
    check : {None, True, False}, optional
        As in crossent: by default every entry must be finite and non-negative (else
        ``ValueError`` naming the argument and the index); ``True`` also requires rows that
        sum to 1; ``False`` checks nothing (a nan or negative entry gives a nan row, an
        infinite one the IEEE value, as crossent documents).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Returns
    -------
    numpy scalar or ndarray of ``p.dtype``

    Notes
    -----
    :math:`0 \log 0 = 0`. Terms are evaluated as :math:`p_k \log p_k` with
    :math:`\log p_k = \operatorname{log1p}(p_k - 1)` near 1, summed exactly, then divided by
    :math:`\ln b`. Distributions of powers of two give the exact rational
    :math:`-\sum p_k \log_2 p_k` in base 2 (e.g. :math:`(1/2, 1/4, 1/4) \mapsto 3/2`).
    """
    check_no_q(q)
    def make(pc):
        special, terms = [], []
        for pk in pc:
            if _bad(pk):
                special.append(math.nan)
            elif pk == math.inf:
                special.append(-math.inf)  # -inf log inf
            elif pk != 0.0:
                terms.append((pk, pk, 1.0))
        return _specials(special), terms

    return _pmf_reduce([p], ["p"], axis, base, check, exact, make, -1)


def cross_entropy_pmf(p, q, *, base=None, axis=-1, check=None, exact=False):
    r"""Correctly rounded cross-entropy :math:`H(p, q) = -\sum_k p_k \log_b q_k`.

    Parameters
    ----------
    p, q : array_like
        Probabilities, used as given; they broadcast against each other (NumPy
        rules) and ``axis`` refers to the broadcast shape, as in :func:`crossent.pmf`.
    base : float, optional
        Logarithm base (None: nats); any positive number other than 1.
    axis : int, optional
        Axis to reduce.
    check : {None, True, False}, optional
        As in crossent: by default every entry must be finite and non-negative (else
        ``ValueError`` naming the argument and the index); ``True`` also requires rows that
        sum to 1; ``False`` checks nothing (a nan or negative entry gives a nan row, an
        infinite one the IEEE value, as crossent documents).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Returns
    -------
    numpy scalar or ndarray of the common dtype, of the broadcast shape without ``axis``

    Notes
    -----
    Terms with :math:`p_k = 0` are 0; :math:`p_k > 0` with :math:`q_k = 0` gives +inf, or −inf
    for a base :math:`b < 1`: :math:`H_b(p, q) = H(p, q)/\ln b` and :math:`\ln b < 0` flips
    the sign of every value, finite or infinite.
    """
    return _pmf_reduce([p, q], ["p", "q"], axis, base, check, exact, _ce_terms, -1)


def kl_divergence(p, q, *, base=None, axis=-1, check=None, exact=False):
    r"""Correctly rounded Kullback–Leibler divergence :math:`\sum_k p_k \log_b(p_k/q_k)`.

    Parameters
    ----------
    p, q : array_like
        Probabilities, used as given; they broadcast against each other (NumPy
        rules) and ``axis`` refers to the broadcast shape, as in :func:`crossent.pmf`.
    base : float, optional
        Logarithm base (None: nats); any positive number other than 1.
    axis : int, optional
        Axis to reduce.
    check : {None, True, False}, optional
        As in crossent: by default every entry must be finite and non-negative (else
        ``ValueError`` naming the argument and the index); ``True`` also requires rows that
        sum to 1; ``False`` checks nothing (a nan or negative entry gives a nan row, an
        infinite one the IEEE value, as crossent documents).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Returns
    -------
    numpy scalar or ndarray of the common dtype, of the broadcast shape without ``axis``

    Notes
    -----
    :math:`p_k > 0` with :math:`q_k = 0` gives +inf (−inf for a base :math:`b < 1`, where
    :math:`D_b = D/\ln b` changes sign). Each :math:`\log(p_k/q_k)` is :math:`\operatorname{log1p}((p_k - q_k)/q_k)` with
    :math:`p_k - q_k` exact when :math:`|p_k/q_k - 1| \le 1/2`, so :math:`p \approx q` keeps
    full relative accuracy; :math:`p_k = q_k` terms are exactly 0 and
    :math:`D(p\|p) = 0` exactly. Never computed as :math:`H(p,q) - H(p)`.
    """
    def make(pc, qc):
        special, terms = [], []
        for pk, qk in zip(pc, qc):
            if _bad(pk, qk):
                special.append(math.nan)
            elif pk == 0.0:
                continue  # 0 log(0/q) = 0 for every q >= 0
            elif pk < math.inf and 0.0 < qk < math.inf:
                terms.append((pk, pk, qk))
            else:  # q = 0 < p gives +inf; an infinite p or q: the IEEE value of p log(p/q)
                r = math.inf if qk == 0.0 else pk / qk
                special.append(pk * _log0(r))
        return _specials(special), terms

    return _pmf_reduce([p, q], ["p", "q"], axis, base, check, exact, make, +1)


def _counts(s, K):
    """Counts of the (validated, flat int64) samples per class, as Python ints."""
    counts = [0] * K
    for v in s.tolist():
        counts[v] += 1
    return counts


def empirical_pmf(samples, num_classes, *, exact=False):
    r"""Correctly rounded empirical PMF :math:`p(k) = \frac{1}{N}\sum_n [X_n = k]` (float64).

    Parameters
    ----------
    samples : array_like of int
        Class indices in ``[0, num_classes)``.
    num_classes : int
        :math:`K`.
    exact : bool, optional
        Return ``mpf`` values accurate to :math:`2^{-(2 \cdot 53 + 29)}` relative.

    Returns
    -------
    ndarray of float64, shape (K,)

    Notes
    -----
    Each entry is the rational :math:`n_k / N` rounded once. With no samples every entry is
    nan (0/0, the NumPy convention for an empty mean).
    """
    K = as_num_classes(num_classes)
    s = as_samples(samples, K)
    counts, N = _counts(s, K), s.size
    fmt = float_format(np.float64)
    if N == 0:
        vals = [_decide(_exact_item(_NAN), fmt, exact)[1]] * K
    else:
        vals = [_decide(_exact_item(Fraction(c, N)), fmt, exact)[1] for c in counts]
    return _finish(vals, (K,), fmt, exact)


def categorical_log_likelihood(q, samples, *, check=None, exact=False):
    r"""Correctly rounded log-likelihood :math:`\sum_n \log q(X_n) = \sum_k n_k \log q_k`.

    Parameters
    ----------
    q : array_like, shape (..., K)
        Category probabilities (float16/32/64) on the last axis, used as given; one result
        per row.
    samples : array_like of int
        Observed classes in ``[0, K)``.
    check : {None, True, False}, optional
        As :func:`entropy`, for ``q``.
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Returns
    -------
    numpy scalar or ndarray of ``q.dtype``, shape ``q.shape[:-1]``

    Notes
    -----
    :math:`\ell(q) = N \sum_k p(k) \log q(k)` with :math:`p` the empirical PMF (the likelihood
    :math:`\prod_k q(k)^{N p(k)}`). A sample of a class with :math:`q_k = 0` gives −inf; no
    samples give 0 (the empty sum). With ``check=False`` the entries follow the rules of
    :func:`cross_entropy_pmf` for :math:`-H(n, q)` (a nan or negative entry, observed or not,
    gives nan).
    """
    qa, s = loglik_inputs(q, samples, check)
    K = qa.shape[-1]
    counts = [float(c) for c in _counts(s, K)]  # exact: N < 2**53
    fmt = float_format(qa.dtype)
    rows, moved = _rows(qa, qa.ndim - 1)
    w0 = _w0(fmt, K, exact)
    vals = []
    for r in rows:
        special, terms = _ce_terms(counts, [float(v) for v in r.tolist()])
        if special is not None:  # the value of -H(n, q)
            raw = _NAN if special != special else (_NINF if special > 0 else _PINF)
            vals.append(_decide(_exact_item(raw), fmt, exact)[1])
            continue
        vals.append(_ziv(lambda w, terms=terms: [_pmf_items(terms, None, w, w > w0, +1)], fmt,
                         exact, w0)[0])
    return _finish(vals, moved[:-1], fmt, exact)


# ---------------------------------------------------------------------------------------------
# the loss options: z-loss and logit soft-cap (interval arithmetic under the Ziv loop)
# ---------------------------------------------------------------------------------------------
# With ``z_loss`` or ``logit_softcap`` set, every value is computed with mpmath's interval
# arithmetic (``mpmath.iv``: every operation rounded outward, so the interval holds the exact
# value) at the Ziv loop's working precision; the item is the interval's midpoint and
# half-width. Soft-capped logits are transcendental (except at 0 and +-inf), so the values are
# decided by raising the precision; the exact cases (ignored items, zero coefficients, one
# finite class, all finite logits equal, -inf entries, +-inf under the cap) are rationals
# computed with fractions.

_IV = mpmath.iv


class _ivprec:
    """``with _ivprec(w):`` runs ``mpmath.iv`` at ``w`` bits (its context has no workprec)."""

    def __init__(self, w):
        self.w = w

    def __enter__(self):
        self.old = _IV.prec
        _IV.prec = self.w

    def __exit__(self, *exc):
        _IV.prec = self.old


def _iv_item(X):
    """An item from an interval: exact when it is a point, else midpoint and half-width."""
    a, b = X._mpi_
    if a == b:
        return _exact_item(a)
    # the midpoint rounded (an exact sum of endpoints exponents apart would be a huge
    # integer) and a radius rounded up that covers both endpoints from it
    mid = libmp.mpf_shift(libmp.mpf_add(a, b, _IV.prec + 64, libmp.round_nearest), -1)
    up = libmp.round_up
    r1 = libmp.mpf_sub(b, mid, 64, up)
    r2 = libmp.mpf_sub(mid, a, 64, up)
    return ("a", mid, r1 if libmp.mpf_ge(r1, r2) else r2)


def _iv_q(q):
    """An interval holding the rational (or float) ``q``."""
    q = Fraction(q)
    return _IV.mpf(q.numerator) / _IV.mpf(q.denominator)


class _CappedRow:
    r"""The (capped) logits of one row as intervals at the current ``iv.prec``:
    :math:`z_j = c\tanh(x_j/c)` (:math:`\tanh a = E/(E+2)`, :math:`E = \operatorname{expm1}(2a)`
    for :math:`a \ge 0`, odd), or :math:`z_j = x_j`; ``zq[j]`` is the exact rational when
    there is one (no cap, ``x_j = 0``, ``x_j = \pm\infty`` under the cap: :math:`\pm c`) and
    ``dz[j]`` the derivative :math:`1 - \tanh^2(x_j/c) = 4(E+1)/(E+2)^2`."""

    def __init__(self, xs, cap):
        self.n = len(xs)
        self.z, self.zq, self.dz = [], [], []
        for x in xs:
            if not cap:
                self.zq.append(None if x == -math.inf else Fraction(x))
                self.z.append(None if x == -math.inf else _IV.mpf(x))
                self.dz.append(Fraction(1))
            elif x == 0.0 or math.isinf(x):
                q = Fraction(0) if x == 0.0 else Fraction(cap) * (1 if x > 0 else -1)
                self.zq.append(q)
                self.z.append(_iv_q(q))
                self.dz.append(Fraction(1) if x == 0.0 else Fraction(0))
            else:
                a = _IV.mpf(abs(x)) / _IV.mpf(cap)
                af = abs(x) / cap  # within a factor 1 + 2**-52 of a (or inf)
                if af > (_IV.prec + 100) * 0.35:
                    # 1 - tanh a = 2/(e^{2a} + 1) < 2 e^{-2a} < 2**-K and
                    # 1 - tanh^2 a < 4 e^{-2a} < 2**-K: bounded, not evaluated (e^{2a} can be
                    # e^{10^{301}})
                    # and 1 - tanh^2 a = 4 e^{2a}/(e^{2a} + 1)^2 > e^{-2a} > 2**-K2 (2 log2 e
                    # = 2.88539008...; the bounds use the rationals 2.885 and 2.886)
                    aq = Fraction(abs(x)) / Fraction(cap)
                    K = math.floor(aq * Fraction(2885, 1000)) - 3
                    K2 = math.ceil(aq * Fraction(2886, 1000)) + 3
                    eps = _make((0, 1, -K, 1))
                    t = _IV.mpf([1 - eps, 1])
                    dzi = _IV.mpf([_make((0, 1, -K2, 1)), eps])
                else:
                    E = _IV.expm1(2 * a)
                    t = E / (E + 2)
                    dzi = 4 * (E + 1) / ((E + 2) * (E + 2))
                self.zq.append(None)
                self.z.append(_IV.mpf(cap) * (t if x > 0 else -t))
                self.dz.append(dzi)
        fin = [j for j in range(self.n) if self.z[j] is not None]
        self.fin = fin
        # the order of the capped logits is that of the logits (tanh increases)
        xm = max(xs[j] for j in fin)
        self.eq = [j for j in fin if xs[j] == xm]  # d_j = 0 exactly
        self.jmax = self.eq[0]
        M = self.z[self.jmax]
        self.M = M
        self.d = [None if self.z[j] is None else (_IV.mpf(0) if j in self.eq else self.z[j] - M)
                  for j in range(self.n)]
        others = [j for j in fin if j not in self.eq]
        self.e = {j: _IV.exp(self.d[j]) for j in others}
        self.T = sum((self.e[j] for j in others), _IV.mpf(0))
        k = len(self.eq)
        self.S = k + self.T
        self.L = _IV.log1p(self.T) if k == 1 else _IV.log(self.S)
        self.allequal = not others
        self.xs = xs

    def p(self, j):
        if self.z[j] is None:
            return _IV.mpf(0)
        return (self.e[j] if j in self.e else _IV.mpf(1)) / self.S


def _opt_coeffs(P, n):
    return P.coef_frac(n)


def _opt_item_weight(P, n):
    if P.prob:
        return Fraction(1)
    y = P.labels[n]
    return Fraction(P.w[y]) if P.w is not None else Fraction(1)


def _opt_loss_item(P, n):
    """One item's loss at the current ``iv.prec``: a Fraction (exact), ``"nan"``, ``"inf"`` or
    an interval."""
    xs = P.rows[n]
    zw = Fraction(P.z) * _opt_item_weight(P, n)
    if not xs:  # probabilities over no classes: 0 plus z (-inf)^2
        return "inf" if zw > 0 else Fraction(0)
    if any(v != v for v in xs) or (not P.cap and (math.inf in xs or all(v == -math.inf for v in xs))):
        return "nan"
    a = _opt_coeffs(P, n)
    A = sum(a, Fraction(0))
    if A == 0 and zw == 0:
        return Fraction(0)
    row = _CappedRow(xs, P.cap)
    if any(ac != 0 and row.z[c] is None for c, ac in enumerate(a)):
        return "inf"
    if row.allequal and len(row.eq) == 1 and row.zq[row.jmax] is not None:
        # one finite class with an exact logit: L = 0, M - z_c = 0, lse = M
        return zw * row.zq[row.jmax] ** 2
    lin = _IV.mpf(0)
    for c, ac in enumerate(a):
        if ac != 0 and c not in row.eq:
            lin += _iv_q(ac) * (-row.d[c])
    lse = row.M + row.L
    return lin + _iv_q(A) * row.L + _iv_q(zw) * lse * lse


def _opt_items(P, w, fmt):
    with _ivprec(w):
        per = ["zero" if P.ignored(n) else _opt_loss_item(P, n) for n in range(P.N)]
        if P.reduction == "none":
            return [_exact_item(0) if r == "zero" else _exact_item(_NAN) if r == "nan"
                    else _exact_item(_PINF) if r == "inf"
                    else _exact_item(r) if isinstance(r, Fraction) else _iv_item(r) for r in per]
        if P.reduction == "mean" and P.denominator() == 0:
            return [_exact_item(_NAN)]
        if "nan" in per:
            return [_exact_item(_NAN)]
        if "inf" in per:
            return [_exact_item(_PINF)]
        vals = [r for r in per if r != "zero"]
        scale = Fraction(1) if P.reduction == "sum" else 1 / P.denominator()
        if all(isinstance(r, Fraction) for r in vals):
            return [_exact_item(sum(vals, Fraction(0)) * scale)]
        tot = _IV.mpf(0)
        for r in vals:
            tot += _iv_q(r) if isinstance(r, Fraction) else r
        return [_iv_item(tot * _iv_q(scale))]


def _opt_loss(P, exact_mode):
    fmt = P.fmt
    w0 = _w0(fmt, P.C, exact_mode) + _bitlen(P.N)
    if P.reduction == "none":
        vals = []
        for n in range(P.N):
            vals.extend(_ziv(lambda w, n=n: _opt_items(_Sub(P, [n]), w, fmt), fmt, exact_mode, w0))
        return _finish(vals, P.moved[:-1], fmt, exact_mode)
    return _finish(_ziv(lambda w: _opt_items(P, w, fmt), fmt, exact_mode, w0), (), fmt, exact_mode)


def _opt_grad_items(P, n, w, s, fmt):
    r"""Gradient items of row n: :math:`s\,(A' p_i - a_i)\,\partial z_i/\partial x_i`,
    :math:`A' = A + 2 z w_n \operatorname{lse}`; at the largest logit
    :math:`A' p_i - a_i = (B + 2zw_n\operatorname{lse} - a_i T)/S`, :math:`B = A - a_i`, so that
    :math:`1 - p_i` never cancels."""
    C = P.C
    if P.ignored(n):
        return [_exact_item(0)] * C
    xs = P.rows[n]
    if s is None or any(v != v for v in xs) or (
            not P.cap and (math.inf in xs or all(v == -math.inf for v in xs))):
        return [_exact_item(_NAN)] * C
    a = _opt_coeffs(P, n)
    A = sum(a, Fraction(0))
    zw = Fraction(P.z) * _opt_item_weight(P, n)
    if A == 0 and zw == 0:
        return [_exact_item(0)] * C
    with _ivprec(w):
        row = _CappedRow(xs, P.cap)
        items = []
        if row.allequal:
            k = len(row.eq)
            if zw == 0 or (k == 1 and row.zq[row.jmax] is not None):
                lse_q = row.zq[row.jmax] if zw != 0 else Fraction(0)
                Aq = A + 2 * zw * lse_q
                for i in range(C):
                    pq = Fraction(1, k) if row.z[i] is not None else Fraction(0)
                    r = s * (Aq * pq - a[i])
                    dzi = row.dz[i]
                    if r == 0 or dzi == 0:
                        items.append(_exact_item(0))
                    elif isinstance(dzi, Fraction):
                        items.append(_exact_item(r * dzi))
                    else:
                        items.append(_iv_item(_iv_q(r) * dzi))
                return items
        lse = row.M + row.L
        Ap = _iv_q(A) + _iv_q(2 * zw) * lse
        for i in range(C):
            dzi = row.dz[i]
            if isinstance(dzi, Fraction) and dzi == 0:
                items.append(_exact_item(0))
                continue
            if row.z[i] is None:  # p_i = 0: -s a_i exactly
                items.append(_exact_item(-s * a[i]))
                continue
            if len(row.eq) == 1 and i == row.jmax:
                B = A - a[i]
                g = (_iv_q(B) + _iv_q(2 * zw) * lse - _iv_q(a[i]) * row.T) / row.S
            else:
                g = Ap * row.p(i) - _iv_q(a[i])
            g = g * _iv_q(s)
            items.append(_iv_item(g * (_iv_q(dzi) if isinstance(dzi, Fraction) else dzi)))
        return items


def _opt_value_and_grad(P, out, exact, grad_scale=None):
    fmt = P.fmt
    loss = _opt_loss(P, exact)
    if grad_scale is not None:
        scale = Fraction(grad_scale)
    elif P.reduction == "mean":
        den = P.denominator()
        scale = None if den == 0 else 1 / den
    else:
        scale = Fraction(1)
    w0 = _w0(fmt, P.C, exact) + 10
    vals = []
    for n in range(P.N):
        vals.extend(_ziv(lambda w, n=n: _opt_grad_items(P, n, w, scale, fmt), fmt, exact, w0))
    g = np.moveaxis(_finish(vals, P.moved, fmt, exact), -1, P.ax)
    if out is not None:
        out[...] = g
        return loss, out
    return loss, g


# ---------------------------------------------------------------------------------------------
# divergences between the softmax distributions of two rows of logits (interval arithmetic)
# ---------------------------------------------------------------------------------------------


def _mpi(v: float):
    r = _raw(v)
    return (r, r)


def _mpi_item(iv, w):
    """An item from an interval ``[lo, hi]`` known to hold a non-negative value:
    :func:`_interval_item` of ``[max(lo, 0), hi]``."""
    lo, hi = iv
    if libmp.mpf_lt(lo, _FZERO):
        lo = _FZERO
    return _interval_item(lo, hi, w)


def _interval_item(lo, hi, w):
    """``("a", mid, rad)`` for a value known to lie in ``[lo, hi]``: the midpoint rounded to
    ``w + 10`` bits and the larger distance from it to an end (rounded up), so that the
    item holds the interval. Not the exact midpoint: the exact sum of two ends whose
    exponents differ by ``2**60`` (``e^-1e20`` and a normal number) would need as many bits,
    and ``mpf_add`` with precision 0 raises ``OverflowError`` there."""
    mid = libmp.mpf_shift(libmp.mpf_add(lo, hi, w + 10), -1)
    rad = libmp.mpf_sub(hi, mid, 30, libmp.round_up)
    rad2 = libmp.mpf_sub(mid, lo, 30, libmp.round_up)
    return ("a", mid, rad if libmp.mpf_ge(rad, rad2) else rad2)


def _lse_shift(xs, w):
    """``(m, l)``: ``m = max`` (float) and an interval ``l`` holding ``log sum_j exp(x_j - m)``
    over the finite entries."""
    fin = [v for v in xs if v != -math.inf]
    m = max(fin)
    tot = (_FZERO, _FZERO)
    for v in fin:
        tot = libmp.mpi_add(tot, libmp.mpi_exp(libmp.mpi_sub(_mpi(v), _mpi(m), w), w), w)
    return m, libmp.mpi_log(tot, w)


def _kl_exact(xs, ys):
    """The KL item of a row pair whose value is known exactly, or None: nan (a nan or +inf,
    a row without a finite entry), +inf (``P_i > 0 = Q_i``), 0 (rows that differ by one
    constant, exactly: the same distribution)."""
    if any(v != v or v == math.inf for v in xs + ys):
        return _exact_item(_NAN)
    fx = [v != -math.inf for v in xs]
    fy = [v != -math.inf for v in ys]
    if not any(fx) or not any(fy):
        return _exact_item(_NAN)  # a masked (or empty) row
    if any(a and not b for a, b in zip(fx, fy)):
        return _exact_item(_PINF)  # P_i > 0 = Q_i
    if fx == fy:
        diffs = {Fraction(a) - Fraction(b) for a, b, f in zip(xs, ys, fx) if f}
        if len(diffs) == 1:
            return _exact_item(0)
    return None


def _kl_logits_row(xs, ys, w):
    r"""An item for :math:`\mathrm{KL}(\mathrm{softmax}(x) \| \mathrm{softmax}(y))` of one row
    pair, straight from the definition :math:`\sum_i P_i(\log P_i - \log Q_i)` in interval
    arithmetic at precision ``w`` (the Ziv loop narrows the interval)."""
    exact = _kl_exact(xs, ys)
    if exact is not None:
        return exact
    fx = [v != -math.inf for v in xs]
    mx, lx = _lse_shift(xs, w)
    my, ly = _lse_shift(ys, w)
    # log P_i - log Q_i = (x_i - y_i) - ((mx - my) + (lx - ly))
    c = libmp.mpi_add(libmp.mpi_sub(_mpi(mx), _mpi(my), w), libmp.mpi_sub(lx, ly, w), w)
    tot = (_FZERO, _FZERO)
    for a, b, f in zip(xs, ys, fx):
        if not f:
            continue  # P_i = 0
        logp = libmp.mpi_sub(libmp.mpi_sub(_mpi(a), _mpi(mx), w), lx, w)
        delta = libmp.mpi_sub(libmp.mpi_sub(_mpi(a), _mpi(b), w), c, w)
        tot = libmp.mpi_add(tot, libmp.mpi_mul(libmp.mpi_exp(logp, w), delta, w), w)
    return _mpi_item(tot, w)


def kl_divergence_logits(p_logits, q_logits, *, axis=-1, reduction="mean", mask=None,
                         exact=False):
    r"""Correctly rounded :math:`\mathrm{KL}(\mathrm{softmax}(p) \,\|\, \mathrm{softmax}(q))`
    per row, reduced over rows as :func:`crossent.kl_divergence_logits`.

    Parameters
    ----------
    p_logits, q_logits, axis, reduction, mask
        As :func:`crossent.kl_divergence_logits` (``reduction='partial'`` is rejected: the
        oracle's sums are values, not partials).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Notes
    -----
    Evaluated from the definition :math:`\sum_i P_i (\log P_i - \log Q_i)` in interval
    arithmetic (``mpmath.libmp.mpi_*``, outward rounding) at precision ``w``: the interval
    is a rigorous error bound, so nothing is assumed about the accuracy of mpmath's ``exp``
    and ``log``; where the terms cancel (:math:`p \approx q`) the interval is wide and the
    Ziv loop doubles ``w``. The lower end is clipped at 0 (the divergence is non-negative).
    Rows that differ by one constant, exactly (rationals), give exactly 0: there the
    interval would never decide. A class finite in ``p_logits`` and ``-inf`` in
    ``q_logits`` gives +inf; a row with nan or +inf, or with no finite entry, gives nan.
    """
    return _divergence_rows(_kl_logits_row, p_logits, q_logits, axis, reduction, mask, exact)


def _shift_of(xs, ys):
    """The constant ``c`` (a Fraction) with ``{x_i} = {y_i + c}`` as multisets of the finite
    entries (then ``log(S_x / S_y) = c`` exactly), or None."""
    fx = sorted(Fraction(v) for v in xs if v != -math.inf)
    fy = sorted(Fraction(v) for v in ys if v != -math.inf)
    if len(fx) != len(fy) or not fx:
        return None
    c = fx[0] - fy[0]
    return c if all(a - b == c for a, b in zip(fx, fy)) else None


def _kl_logits_grad_row(xs, ys, nk, w):
    r"""Items for the gradient rows of :math:`\mathrm{KL}/n_k` in both arguments,
    :math:`P_j(\delta_j - \mathrm{KL})/n_k` then :math:`(Q_j - P_j)/n_k`
    (:math:`\delta_j = \log P_j - \log Q_j`), in interval arithmetic. Exact: nan rows
    where the value is nan or +inf (as the kernels), zeros for rows that differ by one
    constant, 0 for ``gx`` where ``x`` masks the class and for both where both do, and
    ``Q_j - P_j = 0`` where :math:`\delta_j = 0` exactly (the finite entries of ``x`` are
    those of ``y`` shifted by one constant ``c``, and :math:`x_j - y_j = c`)."""
    C = len(xs)
    exact = _kl_exact(xs, ys)  # nan and +inf values give nan rows, a zero one zeros
    if exact is not None:
        return [exact if exact[1] == 0 else _exact_item(_NAN)] * (2 * C)
    c = _shift_of(xs, ys)
    mx, lx = _lse_shift(xs, w)
    my, ly = _lse_shift(ys, w)
    n = _mpi(float(nk))
    P, Q, D = [], [], []
    kl = (_FZERO, _FZERO)
    for a, b in zip(xs, ys):
        Pi = Qi = Di = None
        if b != -math.inf:
            Qi = libmp.mpi_exp(libmp.mpi_sub(libmp.mpi_sub(_mpi(b), _mpi(my), w), ly, w), w)
        if a != -math.inf:
            logp = libmp.mpi_sub(libmp.mpi_sub(_mpi(a), _mpi(mx), w), lx, w)
            logq = libmp.mpi_sub(libmp.mpi_sub(_mpi(b), _mpi(my), w), ly, w)
            Pi = libmp.mpi_exp(logp, w)
            Di = libmp.mpi_sub(logp, logq, w)
            kl = libmp.mpi_add(kl, libmp.mpi_mul(Pi, Di, w), w)
        P.append(Pi)
        Q.append(Qi)
        D.append(Di)
    gx, gy = [], []
    for a, b, Pi, Qi, Di in zip(xs, ys, P, Q, D):
        if Pi is None:
            gx.append(_exact_item(0))
            gy.append(_exact_item(0) if Qi is None else
                      _interval_item(*libmp.mpi_div(Qi, n, w), w))
            continue
        g = libmp.mpi_div(libmp.mpi_mul(Pi, libmp.mpi_sub(Di, kl, w), w), n, w)
        gx.append(_interval_item(g[0], g[1], w))
        if c is not None and Fraction(a) - Fraction(b) == c:
            gy.append(_exact_item(0))  # delta_j = 0: Q_j = P_j
        else:
            d = libmp.mpi_div(libmp.mpi_sub(Qi, Pi, w), n, w)
            gy.append(_interval_item(d[0], d[1], w))
    return gx + gy


def kl_divergence_logits_value_and_grad(p_logits, q_logits, *, axis=-1, reduction="mean",
                                        mask=None, exact=False, grad_divisor=None):
    r"""``(value, grad_p, grad_q)``: :func:`kl_divergence_logits` and the correctly rounded
    gradients of the reduced value (of the sum of the rows for ``'none'``) in both arguments,
    :math:`P_j(\delta_j - \mathrm{KL})` and :math:`Q_j - P_j` (divided by the number of kept
    rows for ``'mean'``), in the shape of the inputs; 0 for dropped rows, nan rows where the
    value is nan or +inf. ``grad_divisor`` (a positive integer) replaces that divisor: the
    gradient of the sum divided by it (for rows of a larger batch)."""
    value = kl_divergence_logits(p_logits, q_logits, axis=axis, reduction=reduction,
                                 mask=mask, exact=exact)
    return (value, *_divergence_grads(_kl_logits_grad_row, p_logits, q_logits, axis, reduction,
                                      mask, exact, grad_divisor))


def _divergence_grads(grad_row, p_logits, q_logits, axis, reduction, mask, exact, grad_divisor):
    """``(grad_p, grad_q)`` of a logit divergence from ``grad_row(xs, ys, nk, w)`` (the items
    of both gradient rows of one row pair), in the inputs' shape."""
    p, q, ax, batch_shape, keep = divergence_inputs(p_logits, q_logits, axis, reduction, mask)
    fmt = float_format(p.dtype)
    xr, moved = _rows(p, ax)
    yr, _ = _rows(q, ax)
    K = moved[-1]
    nk = int(keep.sum()) if reduction == "mean" else 1
    if grad_divisor is not None:
        if isinstance(grad_divisor, bool) or not isinstance(grad_divisor, (int, np.integer)) \
                or grad_divisor < 1:
            raise ValueError(f"grad_divisor must be a positive integer, got {grad_divisor!r}")
        nk = int(grad_divisor)
    w0 = _w0(fmt, K, exact)
    gx, gy = [], []
    for a, b, k in zip(xr, yr, keep.tolist()):
        if not k:
            zero = _decide(_exact_item(0), fmt, exact)[1]
            gx.extend([zero] * K)
            gy.extend([zero] * K)
            continue
        xs = [float(v) for v in a.tolist()]
        ys = [float(v) for v in b.tolist()]
        vals = _ziv(lambda w, xs=xs, ys=ys: grad_row(xs, ys, max(nk, 1), w), fmt,
                    exact, w0)
        gx.extend(vals[:K])
        gy.extend(vals[K:])
    gp = np.moveaxis(np.asarray(_finish(gx, moved, fmt, exact)), -1, ax)
    gq = np.moveaxis(np.asarray(_finish(gy, moved, fmt, exact)), -1, ax)
    return gp, gq


def _divergence_rows(row_item, p_logits, q_logits, axis, reduction, mask, exact):
    """The rows of a logit divergence through ``row_item(xs, ys, w)`` (an item per row pair),
    per row or reduced over the kept rows (the exact sum or mean, rounded once)."""
    if reduction == "partial":
        raise ValueError("crossent.reference does not produce partials; use 'none', 'mean' or 'sum'")
    p, q, ax, batch_shape, keep = divergence_inputs(p_logits, q_logits, axis, reduction, mask)
    fmt = float_format(p.dtype)
    xr, moved = _rows(p, ax)
    yr, _ = _rows(q, ax)
    K = moved[-1]
    rows = [([float(v) for v in a.tolist()], [float(v) for v in b.tolist()])
            for a, b in zip(xr, yr)]
    w0 = _w0(fmt, K, exact)
    if reduction == "none":
        vals = []
        for (xs, ys), k in zip(rows, keep.tolist()):
            if not k:
                vals.append(_decide(_exact_item(0), fmt, exact)[1])
                continue
            vals.append(_ziv(lambda w, xs=xs, ys=ys: [row_item(xs, ys, w)], fmt, exact, w0)[0])
        return _finish(vals, batch_shape, fmt, exact)
    kept = [r for r, k in zip(rows, keep.tolist()) if k]

    def compute(w):
        tot = (_FZERO, _FZERO)
        for xs, ys in kept:
            it = row_item(xs, ys, w)
            if it[0] == "x":
                if it[1] is _NAN or it[1] is _PINF:
                    return [it]
                continue  # exactly 0
            _t, mid, rad = it
            tot = libmp.mpi_add(tot, (libmp.mpf_sub(mid, rad, w, libmp.round_down),
                                      libmp.mpf_add(mid, rad, w, libmp.round_up)), w)
        if reduction == "mean":
            if not kept:
                return [_exact_item(_NAN)]
            tot = libmp.mpi_div(tot, _mpi(float(len(kept))), w)
        if tot == (_FZERO, _FZERO):
            return [_exact_item(0)]
        return [_mpi_item(tot, w)]

    return _finish(_ziv(compute, fmt, exact, w0 + _bitlen(len(kept))), (), fmt, exact)


def _js_logits_row(xs, ys, beta, w):
    r"""An item for :math:`\mathrm{JSD}_\beta(\mathrm{softmax}(x), \mathrm{softmax}(y))` of one
    row pair: the definition :math:`\sum_i \beta P_i \log(P_i/M_i) + (1-\beta) Q_i
    \log(Q_i/M_i)`, :math:`M = \beta P + (1-\beta) Q`, in interval arithmetic (terms with
    :math:`P_i = 0` or :math:`Q_i = 0` are 0)."""
    if any(v != v or v == math.inf for v in xs + ys):
        return _exact_item(_NAN)
    fx = [v != -math.inf for v in xs]
    fy = [v != -math.inf for v in ys]
    if not any(fx) or not any(fy):
        return _exact_item(_NAN)  # a masked (or empty) row
    if beta == 0.0 or beta == 1.0:
        return _exact_item(0)  # M = Q or M = P
    if fx == fy:  # rows that differ by one constant (exactly): the same distribution
        diffs = {Fraction(a) - Fraction(b) for a, b, f in zip(xs, ys, fx) if f}
        if len(diffs) == 1:
            return _exact_item(0)
    b, ob, classes = _js_classes(xs, ys, beta, w)
    tot = (_FZERO, _FZERO)
    for P, Q, lp, lq in classes:
        if lp is not None:
            tot = libmp.mpi_add(tot, libmp.mpi_mul(libmp.mpi_mul(b, P, w), lp, w), w)
        if lq is not None:
            tot = libmp.mpi_add(tot, libmp.mpi_mul(libmp.mpi_mul(ob, Q, w), lq, w), w)
    return _mpi_item(tot, w)


def _js_classes(xs, ys, beta, w):
    """``(b, 1 - b, [(P_i, Q_i, log(P_i/M_i), log(Q_i/M_i))])`` as intervals (a log is None
    where its probability is 0) for the JS items of a row pair with finite entries."""
    mx, lx = _lse_shift(xs, w)
    my, ly = _lse_shift(ys, w)
    b = _mpi(beta)
    ob = libmp.mpi_sub(_mpi(1.0), b, w)
    out = []
    for a, c in zip(xs, ys):
        f, g = a != -math.inf, c != -math.inf
        logp = libmp.mpi_sub(libmp.mpi_sub(_mpi(a), _mpi(mx), w), lx, w) if f else None
        logq = libmp.mpi_sub(libmp.mpi_sub(_mpi(c), _mpi(my), w), ly, w) if g else None
        P = libmp.mpi_exp(logp, w) if f else (_FZERO, _FZERO)
        Q = libmp.mpi_exp(logq, w) if g else (_FZERO, _FZERO)
        logm = libmp.mpi_log(libmp.mpi_add(libmp.mpi_mul(b, P, w), libmp.mpi_mul(ob, Q, w), w), w)
        out.append((P, Q, libmp.mpi_sub(logp, logm, w) if f else None,
                    libmp.mpi_sub(logq, logm, w) if g else None))
    return b, ob, out


def js_divergence_logits(p_logits, q_logits, *, beta=0.5, axis=-1, reduction="mean", mask=None,
                         exact=False):
    r"""Correctly rounded generalized Jensen–Shannon divergence
    :math:`\beta\,\mathrm{KL}(P \| M) + (1-\beta)\,\mathrm{KL}(Q \| M)`,
    :math:`M = \beta P + (1-\beta) Q`, per row, reduced over rows as
    :func:`crossent.js_divergence_logits`.

    Parameters
    ----------
    p_logits, q_logits, beta, axis, reduction, mask
        As :func:`crossent.js_divergence_logits` (``reduction='partial'`` is rejected).
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Notes
    -----
    The definition in interval arithmetic under the Ziv loop, as
    :func:`kl_divergence_logits`: where the terms cancel (:math:`p \approx q`) the interval
    is wide and the precision doubles. ``beta`` 0 or 1 and rows that differ by one constant
    (exactly) give exactly 0; a row with nan or +inf, or with no finite entry, gives nan.
    """
    b = check_beta(beta)
    return _divergence_rows(lambda xs, ys, w: _js_logits_row(xs, ys, b, w), p_logits, q_logits,
                            axis, reduction, mask, exact)


def _js_logits_grad_row(xs, ys, beta, nk, w):
    r"""Items for the gradient rows of :math:`\mathrm{JSD}_\beta/n_k` in both arguments,
    :math:`\beta P_j(\log(P_j/M_j) - \mathrm{KL}(P\|M))/n_k` then
    :math:`(1-\beta) Q_j(\log(Q_j/M_j) - \mathrm{KL}(Q\|M))/n_k`, in interval arithmetic.
    Exact: nan rows where the value is nan; zeros for ``beta`` 0 or 1, for rows that differ
    by one constant and for rows without a class finite in both (``JSD = h(beta)``, a
    constant); 0 where a row masks the class."""
    C = len(xs)
    if any(v != v or v == math.inf for v in xs + ys):
        return [_exact_item(_NAN)] * (2 * C)
    fx = [v != -math.inf for v in xs]
    fy = [v != -math.inf for v in ys]
    if not any(fx) or not any(fy):
        return [_exact_item(_NAN)] * (2 * C)
    if beta == 0.0 or beta == 1.0 or not any(a and b for a, b in zip(fx, fy)):
        return [_exact_item(0)] * (2 * C)
    if fx == fy:
        diffs = {Fraction(a) - Fraction(b) for a, b, f in zip(xs, ys, fx) if f}
        if len(diffs) == 1:
            return [_exact_item(0)] * (2 * C)
    b, ob, classes = _js_classes(xs, ys, beta, w)
    n = _mpi(float(nk))
    kp = kq = (_FZERO, _FZERO)  # KL(P || M), KL(Q || M)
    for Pi, Qi, lp, lq in classes:
        if lp is not None:
            kp = libmp.mpi_add(kp, libmp.mpi_mul(Pi, lp, w), w)
        if lq is not None:
            kq = libmp.mpi_add(kq, libmp.mpi_mul(Qi, lq, w), w)

    def entry(c, R, lr, K):  # c R (log(R/M) - K) / nk, 0 where R = 0
        if lr is None:
            return _exact_item(0)
        g = libmp.mpi_div(libmp.mpi_mul(libmp.mpi_mul(c, R, w), libmp.mpi_sub(lr, K, w), w), n, w)
        return _interval_item(g[0], g[1], w)

    return ([entry(b, Pi, lp, kp) for Pi, _Q, lp, _l in classes]
            + [entry(ob, Qi, lq, kq) for _P, Qi, _l, lq in classes])


def js_divergence_logits_value_and_grad(p_logits, q_logits, *, beta=0.5, axis=-1,
                                        reduction="mean", mask=None, exact=False,
                                        grad_divisor=None):
    r"""``(value, grad_p, grad_q)``: :func:`js_divergence_logits` and the correctly rounded
    gradients of the reduced value (of the sum of the rows for ``'none'``) in both arguments
    (:func:`crossent.js_divergence_logits_value_and_grad` has the formulas), divided by the
    number of kept rows for ``'mean'``, or by ``grad_divisor`` (a positive integer) when
    given; 0 for dropped rows, nan rows where the value is nan."""
    b = check_beta(beta)
    value = js_divergence_logits(p_logits, q_logits, beta=b, axis=axis, reduction=reduction,
                                 mask=mask, exact=exact)
    return (value, *_divergence_grads(
        lambda xs, ys, nk, w: _js_logits_grad_row(xs, ys, b, nk, w), p_logits, q_logits, axis,
        reduction, mask, exact, grad_divisor))


def _entropy_logits_row(xs, lnb, w):
    r"""An item for :math:`H(\mathrm{softmax}(x))` (divided by ``log(base)``): the definition
    :math:`\sum_i P_i (-\log P_i)` in interval arithmetic (non-negative terms)."""
    if not xs or any(v != v or v == math.inf for v in xs) or all(v == -math.inf for v in xs):
        return _exact_item(_NAN)
    fin = [v for v in xs if v != -math.inf]
    if len(fin) == 1:
        return _exact_item(0)
    m, lx = _lse_shift(xs, w)
    tot = (_FZERO, _FZERO)
    for v in fin:
        nlogp = libmp.mpi_sub(lx, libmp.mpi_sub(_mpi(v), _mpi(m), w), w)
        tot = libmp.mpi_add(tot, libmp.mpi_mul(libmp.mpi_exp(libmp.mpi_neg(nlogp), w), nlogp, w), w)
    if lnb is not None:
        ln = libmp.mpi_log(_mpi(lnb), w)
        if libmp.mpf_lt(ln[0], _FZERO):  # base < 1: a negative value
            tot = libmp.mpi_div(tot, ln, w)
            return _interval_item(tot[0], tot[1], w)
        tot = libmp.mpi_div(tot, ln, w)
    return _mpi_item(tot, w)


def entropy_logits(logits, *, axis=-1, base=None, exact=False):
    r"""Correctly rounded entropy :math:`H(\mathrm{softmax}(x))` of each row (no reduction).

    Parameters
    ----------
    logits, axis, base
        As :func:`crossent.entropy_logits`.
    exact : bool, optional
        Return unrounded ``mpf`` values.

    Notes
    -----
    :math:`\sum_i P_i(-\log P_i)` in interval arithmetic at a precision the Ziv loop
    doubles; a row with one finite entry is exactly 0, a row with nan, +inf or no finite
    entry is nan.
    """
    a, ax, batch_shape, b = entropy_logits_inputs(logits, axis, base)
    fmt = float_format(a.dtype)
    rows, moved = _rows(a, ax)
    w0 = _w0(fmt, moved[-1], exact)
    vals = []
    for r in rows:
        xs = [float(v) for v in r.tolist()]
        vals.append(_ziv(lambda w, xs=xs: [_entropy_logits_row(xs, b, w)], fmt, exact, w0)[0])
    return _finish(vals, batch_shape, fmt, exact)


def _entropy_logits_grad_row(xs, lnb, w):
    r"""Items for the gradient row :math:`P_j(-\log P_j - H)/\log b` of
    :math:`H(\mathrm{softmax}(x))` in interval arithmetic (the difference may cancel: the
    Ziv loop narrows it). Exact rows: nan (as :func:`_entropy_logits_row`), and 0 for masked
    entries and for rows whose finite entries are all equal (:math:`-\log P_j = H`)."""
    if not xs or any(v != v or v == math.inf for v in xs) or all(v == -math.inf for v in xs):
        return [_exact_item(_NAN)] * len(xs)
    fin = [v for v in xs if v != -math.inf]
    if min(fin) == max(fin):
        return [_exact_item(0)] * len(xs)
    m, lx = _lse_shift(xs, w)
    nlog = {v: libmp.mpi_sub(lx, libmp.mpi_sub(_mpi(v), _mpi(m), w), w) for v in set(fin)}
    prob = {v: libmp.mpi_exp(libmp.mpi_neg(n), w) for v, n in nlog.items()}
    tot = (_FZERO, _FZERO)
    for v in fin:
        tot = libmp.mpi_add(tot, libmp.mpi_mul(prob[v], nlog[v], w), w)
    ln = libmp.mpi_log(_mpi(lnb), w) if lnb is not None else None
    items = []
    for v in xs:
        if v == -math.inf:
            items.append(_exact_item(0))
            continue
        g = libmp.mpi_mul(prob[v], libmp.mpi_sub(nlog[v], tot, w), w)
        if ln is not None:
            g = libmp.mpi_div(g, ln, w)
        items.append(_interval_item(g[0], g[1], w))
    return items


def entropy_logits_value_and_grad(logits, *, axis=-1, base=None, exact=False):
    r"""``(value, grad)``: :func:`entropy_logits` and its correctly rounded gradient (of the
    sum of the rows) :math:`\partial H/\partial x_j = P_j(-\log P_j - H)` (divided by
    :math:`\log b`), the shape of ``logits``; nan rows where the value is nan."""
    value = entropy_logits(logits, axis=axis, base=base, exact=exact)
    a, ax, batch_shape, b = entropy_logits_inputs(logits, axis, base)
    fmt = float_format(a.dtype)
    rows, moved = _rows(a, ax)
    w0 = _w0(fmt, moved[-1], exact)
    vals = []
    for r in rows:
        xs = [float(v) for v in r.tolist()]
        vals.extend(_ziv(lambda w, xs=xs: _entropy_logits_grad_row(xs, b, w), fmt, exact, w0))
    g = _finish(vals, moved, fmt, exact)
    return value, np.moveaxis(np.asarray(g), -1, ax)


# the binary (sigmoid) cross-entropy, softplus and log_sigmoid
# ---------------------------------------------------------------------------------------------
# For one element, with A = w pw t and B = w (1 - t) (exact rationals of the input floats),
#     loss = A softplus(-x) + B softplus(x),    dloss/dx = B sigma(x) - A sigma(-x)
#          = (A + B) sigma(x) - A,
# (proofs/11_binary_cross_entropy.py). softplus(y) = log1p(e^y) (y <= 0), y + log1p(e^-y)
# (y > 0): evaluated 20 bits beyond w, each term non-negative, so |v| 2**-w bounds the error.
# Exact cases: a zero coefficient contributes exactly 0 (also for an infinite x); x = +-inf
# gives inf or 0; x = 0 gives sigma = 1/2 (the gradient is the rational (B - A)/2). Otherwise
# softplus(x) and sigma(x) are transcendental (Lindemann-Weierstrass), and so are the loss and
# (for A + B > 0) the gradient: the Ziv loop terminates.


def _q_mpf(q: Fraction):
    """A Fraction as an mpf at the context precision (two roundings)."""
    return mpmath.mpf(q.numerator) / q.denominator


def _softplus_mpf(y):
    """``softplus(y)`` for a finite mpf ``y`` at the context precision."""
    if y <= 0:
        return mpmath.log1p(mpmath.exp(y))
    return y + mpmath.log1p(mpmath.exp(-y))


def _bce_item(x: float, A: Fraction, B: Fraction, w: int):
    """The loss item of one element at working precision ``w``."""
    if math.isnan(x):
        return _exact_item(_NAN)
    terms = [(A, -x), (B, x)]
    terms = [(c, y) for c, y in terms if c != 0]
    if not terms:
        return _exact_item(Fraction(0))
    if any(y == math.inf for _c, y in terms):
        return _exact_item(_PINF)
    terms = [(c, y) for c, y in terms if y != -math.inf]  # softplus(-inf) = 0
    if not terms:
        return _exact_item(Fraction(0))
    with mpmath.mp.workprec(w + 20):
        v = mpmath.fsum(_q_mpf(c) * _softplus_mpf(mpmath.mpf(y)) for c, y in terms)
        return ("a", v._mpf_, _abs_err(v._mpf_, 1.0, w))


def _bce_grad_item(x: float, A: Fraction, B: Fraction, scale: int, w: int):
    """The gradient item ``(B sigma(x) - A sigma(-x)) / scale`` of one element."""
    if math.isnan(x):
        return _exact_item(_NAN)
    if x == math.inf:
        return _exact_item(B / scale)
    if x == -math.inf:
        return _exact_item(-A / scale)
    if x == 0.0 or A + B == 0:
        return _exact_item((B - A) / 2 / scale if x == 0.0 else Fraction(0))
    with mpmath.mp.workprec(w + 20):
        # sigma(x) and sigma(-x) each from its own exponential: (A + B) sigma(x) - A would
        # cancel to 0 for B = 0 and a large x, whose value is the tiny -A sigma(-x)
        sp = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
        sn = 1 / (1 + mpmath.exp(mpmath.mpf(x)))
        b, a = _q_mpf(B), _q_mpf(A)
        v = (b * sp - a * sn) / scale
        mag = (b * sp + a * sn) / scale
    return ("a", v._mpf_, _abs_err(mag._mpf_, 2.0, w))


def _bce_setup(logits, target, weight, pos_weight, reduction):
    v = binary_inputs(logits, target, weight, pos_weight, reduction)
    if v.reduction == "partial":
        raise ValueError(
            "reduction='partial' is not available in the oracle: its 'sum' and 'mean' are "
            "the correctly rounded sums of the exact per-item values, which no Partial of "
            "float64 items holds; use reduction='sum' or 'mean'")
    fmt = float_format(v.logits.dtype)
    x = v.logits.astype(np.float64).reshape(-1).tolist()
    t = v.target.reshape(-1).tolist()
    wt = np.asarray(v.weight).reshape(-1).tolist()
    pw = np.asarray(v.pos_weight).reshape(-1).tolist()
    A = [Fraction(a) * Fraction(b) * Fraction(c) for a, b, c in zip(wt, pw, t)]
    B = [Fraction(a) * (1 - Fraction(c)) for a, c in zip(wt, t)]
    return v, fmt, x, A, B


def _bce_reduced(items_of, n, reduction):
    """One item for the sum (or mean) of the element items ``items_of(w)``."""
    def compute(w):
        items = items_of(w + _bitlen(n))
        if any(it[0] == "x" and it[1] is _NAN for it in items):
            return [_exact_item(_NAN)]
        if any(it[0] == "x" and it[1] is _PINF for it in items):
            return [_exact_item(_PINF)]
        exact = sum((it[1] for it in items if it[0] == "x"), Fraction(0))
        approx = [it for it in items if it[0] == "a"]
        if reduction == "mean" and n == 0:
            return [_exact_item(_NAN)]
        div = n if reduction == "mean" else 1
        if not approx:
            return [_exact_item(exact / div)]
        with mpmath.mp.workprec(w + 20 + _bitlen(n)):
            s = (mpmath.fsum([_make(it[1]) for it in approx]) + _q_mpf(exact)) / div
        return [("a", s._mpf_, _abs_err(s._mpf_, 2.0, w))]
    return compute


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None,
                                     reduction="mean", exact=False):
    r"""Correctly rounded sigmoid cross-entropy (PyTorch's ``BCEWithLogits`` semantics).

    .. math:: \ell = w\,[\,p\,t\,\operatorname{softplus}(-x) + (1-t)\operatorname{softplus}(x)\,],

    per element (``"none"``), or their exact sum or mean (over the elements), rounded once.
    """
    v, fmt, x, A, B = _bce_setup(logits, target, weight, pos_weight, reduction)
    n = len(x)
    w0 = _w0(fmt, 2, exact)
    if v.reduction == "none":
        vals = []
        for i in range(n):
            vals.extend(_ziv(lambda w, i=i: [_bce_item(x[i], A[i], B[i], w)], fmt, exact, w0))
        return _finish(vals, v.logits.shape, fmt, exact)
    compute = _bce_reduced(lambda w: [_bce_item(x[i], A[i], B[i], w) for i in range(n)], n,
                           v.reduction)
    return _finish(_ziv(compute, fmt, exact, w0 + _bitlen(n)), (), fmt, exact)


def binary_cross_entropy_with_logits_value_and_grad(logits, target, *, weight=None,
                                                    pos_weight=None, reduction="mean",
                                                    exact=False, grad_divisor=None):
    r"""``(loss, grad)``: :func:`binary_cross_entropy_with_logits` and the correctly rounded
    gradient :math:`(B\sigma(x) - A\sigma(-x))/s`, :math:`s` the number of elements for
    ``"mean"``, else 1; ``grad_divisor`` (a positive int) replaces :math:`s` (for elements of
    a larger batch whose mean divides by its size: crossent's correctly rounded mode
    recomputes some elements here)."""
    loss = binary_cross_entropy_with_logits(logits, target, weight=weight, pos_weight=pos_weight,
                                            reduction=reduction, exact=exact)
    v, fmt, x, A, B = _bce_setup(logits, target, weight, pos_weight, reduction)
    scale = len(x) if v.reduction == "mean" else 1
    if grad_divisor is not None:
        if isinstance(grad_divisor, bool) or not isinstance(grad_divisor, int) or grad_divisor < 1:
            raise ValueError(f"grad_divisor must be a positive int, got {grad_divisor!r}")
        scale = grad_divisor
    w0 = _w0(fmt, 2, exact)
    vals = []
    for i in range(len(x)):
        vals.extend(_ziv(lambda w, i=i: [_bce_grad_item(x[i], A[i], B[i], scale, w)], fmt,
                         exact, w0))
    return loss, _finish(vals, v.logits.shape, fmt, exact)


def _softplus_family(x, sign, exact):
    a = as_float_array(x, "x")
    fmt = float_format(a.dtype)
    xs = a.astype(np.float64).reshape(-1).tolist()
    one = Fraction(1)
    vals = []
    for xi in xs:
        def compute(w, xi=xi):
            it = _bce_item(sign * xi, Fraction(0), one, w)
            if sign > 0 or it[0] == "x" and it[1] in (_NAN,):
                return [it]
            if it[0] == "x":
                return [_exact_item(_NINF if it[1] is _PINF else -it[1])]
            return [("a", libmp.mpf_neg(it[1]), it[2])]
        vals.extend(_ziv(compute, fmt, exact, _w0(fmt, 1, exact)))
    return _finish(vals, a.shape, fmt, exact)


def softplus(x, *, exact=False):
    r"""Correctly rounded :math:`\log(1 + e^x)`, elementwise."""
    return _softplus_family(x, 1, exact)


def log_sigmoid(x, *, exact=False):
    r"""Correctly rounded :math:`\log\sigma(x) = -\operatorname{softplus}(-x)`, elementwise."""
    return _softplus_family(x, -1, exact)
