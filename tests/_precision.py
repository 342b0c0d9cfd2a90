"""What the two softmax-family precision test files share: the measurement cache, the check of
one case against the bounds table, the correctly-rounded-fraction check, and the bitwise
comparison of the correctly rounded tests (``same_bits``).

Provenance of every expected value: the oracle ``crossent.reference`` (``exact=True``), through
:func:`crossent._measure.measure`; the bounds come from :mod:`crossent._bounds`.
"""

from __future__ import annotations

import ml_dtypes  # noqa: F401  (registers the "bfloat16" dtype name with NumPy)
import numpy as np

import crossent
from crossent import _measure
from crossent._bounds import bound

DTYPES = ("float64", "float32", "float16", "bfloat16")

def same_bits(a, b) -> bool:
    """Bitwise equality of two float arrays: same dtype and shape, equal values with nan equal
    to nan, and equal signs where both are zero."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
        return False
    zeros = (a == 0) & (b == 0)
    return bool(np.array_equal(np.signbit(a[zeros]), np.signbit(b[zeros])))


_MEASURED: dict = {}


def measure(function: str, case) -> _measure.Measurement:
    """``_measure.measure`` of crossent on ``case``, computed once per session."""
    key = (function, case.dtype.name, case.name)
    if key not in _MEASURED:
        _MEASURED[key] = _measure.measure(crossent, function, case)
    return _MEASURED[key]


def check_case(function: str, case, describe) -> None:
    """Every output of ``case`` is within the table's bound where its condition holds, within
    the table's absolute bound elsewhere, and has the input's dtype."""
    b = bound(function, case.dtype)
    m = measure(function, case)
    assert m.dtype_ok, f"{function} returned another dtype than {case.dtype} on {case.name}"
    assert m.max_ulp <= b.max_ulp, describe(m, case)
    assert m.max_alt <= b.max_ulp, (
        f"outside the condition ({b.condition}): absolute error {m.max_alt:.3g} x the "
        "stated scale; " + describe(m, case)
    )


def narrow_pairs(functions) -> list:
    """The (function, dtype) pairs whose bound states a correctly rounded fraction."""
    return [(f, d) for f in functions for d in DTYPES
            if bound(f, d).min_correctly_rounded is not None]


def check_correctly_rounded_fraction(function: str, dtype: str, cases) -> None:
    """Over all outputs of ``cases``, the fraction correctly rounded (error <= 1/2 ulp) is at
    least the table's ``min_correctly_rounded``."""
    b = bound(function, dtype)
    errs = np.concatenate([measure(function, c).errors for c in cases])
    frac = float(np.mean(errs <= 0.5))
    assert frac >= b.min_correctly_rounded, (
        f"{function} {dtype}: {100 * frac:.4f}% of {errs.size} outputs correctly rounded, "
        f"table requires {100 * b.min_correctly_rounded}%"
    )
