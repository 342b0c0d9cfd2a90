"""Exact, order-independent reductions: the accumulator behind ``reduction="sum"``/``"mean"``
and the :class:`Partial` returned by ``reduction="partial"``.

Every finite float64 is an integer multiple of :math:`2^{-1074}` (the smallest subnormal), so
a sum of float64 values is held exactly as one Python ``int`` in those units. A Numba kernel
(``crossent.kernels.exact``) adds the values' bit fields into integer bins, one per sign and
exponent; the bins are then shifted into place and added as Python integers. No step depends
on the order of the items, so the result does not either; it is rounded once, at the end, to
the output format. See ``docs/reductions.md``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .kernels import exact as _x
from ._validate import cast_result
from .ulp import float_format

__all__ = ["Partial"]

SCALE_BITS = 1074  # every finite float64 is an integer times 2**-1074
_ONE = 1 << SCALE_BITS  # 1.0 in those units
_CHUNK = 1 << 36  # values per pass: a bin's int64 sums stay below 2**36 * 2**26 < 2**63
_KINDS = ("weight", "count")
_F64, _F64_TYPE = np.dtype(np.float64), np.float64


_FORMATS: dict = {}


def _format(dtype):
    """``crossent.ulp.float_format(dtype)``, memoized (``np.dtype(...)`` costs microseconds)."""
    try:
        return _FORMATS[dtype]
    except (KeyError, TypeError):
        fmt = float_format(dtype)  # raises the TypeError naming dtype for a bad one
    try:
        _FORMATS[dtype] = fmt
    except TypeError:  # an unhashable dtype-like
        pass
    return fmt


def _bins() -> np.ndarray:
    return np.zeros((3, 4096), dtype=np.int64)


def _total(bins) -> int:
    """The exact sum of the finite values in ``bins``, in units of 2**-1074."""
    keys = np.flatnonzero(bins[0] != 0)
    total = 0
    for k, n, hi, lo in zip(keys.tolist(), *bins[:, keys].tolist()):
        e = k & 2047
        if e == 2047:
            continue  # inf and nan: counted apart
        m = (hi << _x.HALF_BITS) + lo
        if e:
            m = (m + (n << 52)) << (e - 1)
        total += -m if k & 2048 else m
    return total


def exact_sum(values) -> tuple[int, int, int, int]:
    r"""The exact sum of float64 values, order-independent by construction.

    Parameters
    ----------
    values : array_like of float64
        Any shape (flattened); other float dtypes are converted exactly to float64.

    Returns
    -------
    total : int
        The sum of the finite values, in units of :math:`2^{-1074}`.
    nan, pos_inf, neg_inf : int
        How many values are nan, +inf and -inf (they are not in ``total``).

    Notes
    -----
    A float64 with sign :math:`s`, biased exponent :math:`E` and fraction field :math:`f` is
    :math:`(-1)^s f\,2^{-1074}` if :math:`E = 0` and :math:`(-1)^s (2^{52} + f)\,2^{E-1}
    2^{-1074}` otherwise. Per :math:`(s, E)` (4096 bins) the kernel forms the count
    :math:`n_{s,E}` and the sums :math:`H_{s,E}`, :math:`L_{s,E}` of the high and low 26 bits
    of :math:`f`, in int64 (exact: below :math:`2^{36} \cdot 2^{26}`). Then

    .. math:: \mathrm{total} = \sum_{(s,E),\ E < 2047} (-1)^s \big(2^{52} n_{s,E}[E>0]
              + 2^{26} H_{s,E} + L_{s,E}\big)\, 2^{\max(E-1, 0)}

    in Python integers, over the bins that hold values.

    Examples
    --------
    >>> from crossent._partial import exact_sum
    >>> total, *_ = exact_sum([0.1, 0.2, -0.3])
    >>> from fractions import Fraction
    >>> Fraction(total, 2**1074) == Fraction(0.1) + Fraction(0.2) - Fraction(0.3)
    True
    """
    if (type(values) is np.ndarray and values.ndim == 1 and values.shape[0] <= _SMALL
            and values.dtype is _F64):  # a few per-item losses: nothing to convert
        return _exact_sum_small(values)
    v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    if v.shape[0] <= _SMALL:
        return _exact_sum_small(v)
    bits = v.view(np.int64)
    total = nan = pos_inf = neg_inf = 0
    for start in range(0, max(bits.shape[0], 1), _CHUNK):
        bins = _bins()
        _x.accumulate(bits[start:start + _CHUNK], bins)
        total += _total(bins)
        if bins[0, 2047] or bins[0, 4095]:  # rare: count the nans and infinities
            s = v[start:start + _CHUNK]
            nan += int(np.count_nonzero(np.isnan(s)))
            pos_inf += int(np.count_nonzero(s == np.inf))
            neg_inf += int(np.count_nonzero(s == -np.inf))
    return total, nan, pos_inf, neg_inf


_SMALL = 64  # up to this many values, exact_sum adds Python integers (no 4096 bins to scan)


def _units(x: float) -> int:
    """A finite float64 in units of 2**-1074: ``x = n / 2**j`` exactly
    (``float.as_integer_ratio``, ``j <= 1074``), i.e. ``n 2**(1074 - j)``."""
    n, d = x.as_integer_ratio()
    return n << (SCALE_BITS + 1 - d.bit_length())


def _exact_sum_small(v) -> tuple[int, int, int, int]:
    """``exact_sum`` of a few float64 values (a per-call cost of a tiny batch, not a per-item
    one), the same integers as the bins'.

    First with ``math.fsum``, which sums floats exactly and rounds once: ``s = fsum(v)``,
    ``r = fsum(v + [-s])`` and ``fsum(v + [-s, -r])``. When the last one is 0, the exact sum
    is ``s + r`` (a nonzero exact sum of multiples of 2**-1074 does not round to 0), two
    floats to convert instead of one per value; this is the case unless the sum needs more
    than two floats (values of very different magnitudes). A value that is not finite, an
    intermediate overflow, or a sum that is not ``s + r`` take the loop below: each finite
    value converted (:func:`_units`), nan and infinities counted."""
    vals = v.tolist()
    try:
        s = math.fsum(vals)
        if math.isfinite(s):  # so every value is finite (fsum: nan, or inf, or raises)
            vals.append(-s)
            r = math.fsum(vals)
            vals.append(-r)
            if math.fsum(vals) == 0.0:  # (_units of s and r, inline)
                n, d = s.as_integer_ratio()
                m, e = r.as_integer_ratio()
                total = ((n << (SCALE_BITS + 1 - d.bit_length()))
                         + (m << (SCALE_BITS + 1 - e.bit_length())))
                return total, 0, 0, 0
            del vals[-2:]
    except (OverflowError, ValueError):  # an intermediate overflow, or inf + -inf
        vals = v.tolist()
    total = nan = pos_inf = neg_inf = 0
    for x in vals:
        if x != x:
            nan += 1
        elif x == math.inf:
            pos_inf += 1
        elif x == -math.inf:
            neg_inf += 1
        else:
            total += _units(x)
    return total, nan, pos_inf, neg_inf


def exact_label_weight_sum(labels, weight, has_weight: bool, ignore_index: int) -> int:
    """The exact sum of ``weight[y]`` (1 if not ``has_weight``) over the labels ``y`` that are
    not ``ignore_index``, in units of 2**-1074. ``labels``: validated int64 class indices."""
    if not has_weight:  # a count of items
        return int(np.count_nonzero(labels != ignore_index)) << SCALE_BITS
    w = np.ascontiguousarray(weight, dtype=np.float64)
    total = 0
    for start in range(0, max(labels.shape[0], 1), _CHUNK):
        bins = _bins()
        _x.accumulate_label_weights(labels[start:start + _CHUNK], w.view(np.int64), has_weight,
                                    ignore_index, bins)
        total += _total(bins)
    return total


def round_ratio(num: int, den: int, dtype) -> np.generic:
    """``num / den`` (integers, ``den > 0``) correctly rounded to ``dtype``, ties to even.

    CPython's ``int / int`` is correctly rounded to float64 (subnormals included) and raises
    ``OverflowError`` exactly when the rounded result is infinite. For float32 and float16
    the float64 quotient is first turned into the round-to-odd of the exact one (of the two
    float64 neighbours of an inexact quotient, the one with an odd last bit; exactness is
    decided with integers), whose cast to the narrow format is the correct rounding (Boldo
    and Melquiond 2008: 53 >= p + 2), as in the kernels (``docs/accuracy.md``).
    """
    if dtype is _F64:  # the common case, without the format lookup (same steps)
        try:
            return _F64_TYPE(num / den)
        except OverflowError:
            return _F64_TYPE(math.inf if num > 0 else -math.inf)
    fmt = _format(dtype)
    try:
        q = num / den
    except OverflowError:
        return fmt.dtype.type(math.inf if num > 0 else -math.inf)
    if fmt.dtype != np.float64:
        a, b = q.as_integer_ratio()
        side = num * b - a * den  # the sign of the exact quotient minus q
        if side and not np.float64(q).view(np.int64) & 1:
            q = math.nextafter(q, math.inf if side > 0 else -math.inf)
    if fmt.p == 8:  # bfloat16: float64 reaches it through float32 rounded to odd
        return cast_result(np.float64(q), fmt.dtype)
    with np.errstate(over="ignore"):  # beyond the narrow format's range: inf, no warning
        return fmt.dtype.type(q)


class Partial:
    r"""The exact sums of a batch (or of part of it) for a ``"sum"`` or ``"mean"`` reduction.

    Returned by ``reduction="partial"``. Partials of the pieces of a batch add up, in any
    order, to the partial of the whole batch, and :meth:`sum` and :meth:`mean` round the
    exact sums once: the same bits as ``reduction="sum"`` and ``"mean"`` on the whole batch.

    Attributes
    ----------
    total : int
        The exact sum of the finite per-item values, in units of :math:`2^{-1074}`.
    weight : int
        The exact divisor of the mean, in the same units: the sum of ``weight[y_n]`` over the
        non-ignored items for class-index targets (kind ``"weight"``), the number of items for
        probability targets (kind ``"count"``).
    count : int
        The number of items, ignored ones included.
    nan, pos_inf, neg_inf : int
        How many per-item values are nan, +inf, -inf.
    dtype : numpy.dtype
        The dtype of the results of :meth:`sum` and :meth:`mean` (that of the logits).
    kind : {"weight", "count"}
        What the divisor of the mean counts.
    exp : int
        A power of two that scales both sums: :attr:`total` and :attr:`weight` are in units of
        :math:`2^{\mathrm{exp} - 1074}`. It is 0 except for class weights of extreme magnitude,
        which the loss scales by a power of two before its kernels run (exactly): their sums
        stay scaled here, so nothing is lost to underflow or overflow before the one rounding.

    Notes
    -----
    With per-item values :math:`\ell_n` (float64) and divisor :math:`W`,

    .. math:: \mathrm{sum} = \operatorname{rn}\Big(\sum_n \ell_n\Big), \qquad
              \mathrm{mean} = \operatorname{rn}\Big(\frac{\sum_n \ell_n}{W}\Big),

    :math:`\operatorname{rn}` the rounding to nearest (ties to even) of the exact rational.
    A nan item, or both a +inf and a -inf item, gives nan; else an infinite item gives that
    infinity. A zero divisor (every item ignored, zero weights, no items) gives a nan mean,
    as PyTorch. An exact zero sum is +0.0.

    Partials are plain objects: they pickle, compare equal when their sums are equal, and
    ``sum(partials)`` works (it starts from 0). Adding partials of different dtypes or kinds
    raises ``ValueError``.

    Examples
    --------
    Perplexity over a data set read in chunks:

    >>> import numpy as np, crossent
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.standard_normal((1000, 50)), rng.integers(0, 50, 1000)
    >>> parts = [crossent.cross_entropy(x[i:i + 300], y[i:i + 300], reduction="partial")
    ...          for i in range(0, 1000, 300)]
    >>> total = sum(parts)
    >>> bool(total.mean() == crossent.cross_entropy(x, y))  # the same bits as the whole batch
    True
    >>> bool(np.exp(total.mean()) > 1)  # the perplexity
    True
    """

    def __init__(self, total: int, weight: int, count: int, dtype, kind: str, nan: int = 0,
                 pos_inf: int = 0, neg_inf: int = 0, exp: int = 0):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        self.total = int(total)
        self.weight = int(weight)
        self.count = int(count)
        self.dtype = _format(dtype).dtype
        self.kind = kind
        self.nan = int(nan)
        self.pos_inf = int(pos_inf)
        self.neg_inf = int(neg_inf)
        self.exp = int(exp)

    def _fields(self):
        return (self.total, self.weight, self.count, self.dtype, self.kind, self.nan, self.pos_inf,
                self.neg_inf, self.exp)

    def __add__(self, other):
        if isinstance(other, numbers.Integral) and not isinstance(other, bool) and other == 0:
            return self  # sum() starts from 0
        if not isinstance(other, Partial):
            return NotImplemented
        if other.dtype != self.dtype:
            raise ValueError(
                f"cannot add partials of different dtypes: {self.dtype} and {other.dtype}"
            )
        if other.kind != self.kind:
            raise ValueError(
                f"cannot add partials of different kinds of mean ({self.kind!r} and "
                f"{other.kind!r}): class-index targets divide by the sum of the weights, "
                "probability targets by the number of items"
            )
        e = min(self.exp, other.exp)  # both sums in the finer units (shifts are exact)
        a, b = self.exp - e, other.exp - e
        return Partial((self.total << a) + (other.total << b),
                       (self.weight << a) + (other.weight << b),
                       self.count + other.count, self.dtype, self.kind, self.nan + other.nan,
                       self.pos_inf + other.pos_inf, self.neg_inf + other.neg_inf, e)

    __radd__ = __add__

    def __eq__(self, other):
        if not isinstance(other, Partial):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self):
        return hash(self._fields())

    def _special(self):
        """nan/inf of the sum when an item is not finite, else None."""
        return special_sum(self.nan, self.pos_inf, self.neg_inf)

    def sum(self, dtype=None) -> np.generic:
        """The sum of the per-item values, rounded once to ``dtype`` (default: :attr:`dtype`).

        Parameters
        ----------
        dtype : dtype-like, optional
            float16, float32 or float64.

        Returns
        -------
        numpy scalar
        """
        return rounded_sum(self.total, self.exp, self._special(),
                           _format(self.dtype if dtype is None else dtype).dtype)

    def mean(self, dtype=None) -> np.generic:
        """The sum divided by the divisor :attr:`weight`, rounded once to ``dtype``.

        Parameters
        ----------
        dtype : dtype-like, optional
            float16, float32 or float64 (default: :attr:`dtype`).

        Returns
        -------
        numpy scalar
            nan when the divisor is zero.
        """
        return rounded_mean(self.total, self.weight, self._special(),
                            _format(self.dtype if dtype is None else dtype).dtype)

    def __repr__(self):
        return (f"Partial(sum={self.sum()!s}, mean={self.mean()!s}, count={self.count}, "
                f"dtype={self.dtype.name}, kind={self.kind!r})")


def partial_of(values, weight: int, dtype, kind: str, exp: int = 0) -> Partial:
    """The :class:`Partial` of the float64 per-item ``values`` of a reducing function, scaled
    by ``2**exp``, with ``weight`` the exact divisor of the mean in the same units
    (``2**(exp - 1074)``)."""
    total, nan, pos_inf, neg_inf = exact_sum(values)
    return Partial(total, weight, np.size(values), dtype, kind, nan, pos_inf, neg_inf, exp)


def special_sum(nan: int, pos_inf: int, neg_inf: int):
    """The sum of values among which ``nan``, ``pos_inf``, ``neg_inf`` are nan, +inf, -inf:
    nan, an infinity, or ``None`` when every value is finite."""
    if nan or (pos_inf and neg_inf):
        return math.nan
    if pos_inf:
        return math.inf
    if neg_inf:
        return -math.inf
    return None


def rounded_sum(total: int, exp: int, special, dtype: np.dtype) -> np.generic:
    """:meth:`Partial.sum`: ``total 2**(exp - 1074)`` rounded once to ``dtype`` (a NumPy
    float dtype), or ``special`` (:func:`special_sum`) when it is not ``None``."""
    if special is not None:
        return dtype.type(special)
    if exp >= 0:
        return round_ratio(total << exp, _ONE, dtype)
    return round_ratio(total, _ONE << -exp, dtype)


def rounded_mean(total: int, weight: int, special, dtype: np.dtype) -> np.generic:
    """:meth:`Partial.mean`: ``total / weight`` rounded once to ``dtype``; nan when ``weight``
    is 0, else ``special`` (:func:`special_sum`) when it is not ``None``."""
    if weight == 0:
        return dtype.type(math.nan)
    if special is not None:
        return dtype.type(special)
    return round_ratio(total, weight, dtype)
