"""bfloat16 (``ml_dtypes.bfloat16``) in the NumPy API: the one rounding from float64, the
format in :mod:`crossent.ulp`, acceptance by every public function and by the oracle.

Provenance: every expected value is ``crossent.ulp.round_to_dtype`` (exact integer rounding)
of an exact value: a float64 (taken as the exact binary number it is), a ``Fraction``, or the
oracle ``crossent.reference`` (``exact=True``); the bounds come from :mod:`crossent._bounds`.
The corpus sweeps are in ``tests/test_precision_*.py`` (their ``DTYPES`` include bfloat16).
"""

from __future__ import annotations

from fractions import Fraction

import ml_dtypes
import mpmath
import numpy as np
import pytest

import crossent
from crossent import reference as ref
from crossent._bounds import bound
from crossent._validate import cast_result, result_dtype
from crossent.ulp import float_format, round_to_dtype, ulp_error

BF16 = np.dtype(ml_dtypes.bfloat16)


def _bits(a) -> np.ndarray:
    return np.asarray(a, dtype=BF16).view(np.uint16)


def test_format_parameters():
    """bfloat16 is float32's exponent range with 8 bits (``ml_dtypes.finfo``)."""
    fmt = float_format("bfloat16")
    assert fmt is float_format(ml_dtypes.bfloat16) and fmt.dtype == BF16
    fi = ml_dtypes.finfo(BF16)
    assert (fmt.p, fmt.emin, fmt.emax) == (fi.nmant + 1, fi.minexp, fi.maxexp - 1)
    assert float(round_to_dtype(Fraction(1), BF16) + 0) == 1.0
    assert round_to_dtype(float(fi.max), BF16) == fi.max
    assert round_to_dtype(2.0**-133, BF16) == fi.smallest_subnormal


def test_ml_dtypes_double_rounding_is_avoided():
    """``1 + 2**-8 + 2**-40`` lies just above the midpoint between 1 and ``1 + 2**-7``: the
    correct bfloat16 is ``1 + 2**-7``; ml_dtypes' float64 cast before 0.7 (through float32)
    gives 1. ml_dtypes 0.7 rounds this value correctly; crossent must in either case."""
    x = 1 + 2.0**-8 + 2.0**-40
    want = round_to_dtype(x, BF16)
    assert float(want) == 1 + 2.0**-7
    if tuple(int(v) for v in ml_dtypes.__version__.split(".")[:2]) < (0, 7):
        assert float(np.array([x]).astype(BF16)[0]) == 1.0  # the double rounding avoided
    assert _bits(cast_result(np.array([x]), BF16)) == _bits(want)
    assert _bits(cast_result(np.float64(x), BF16)) == _bits(want)


def _adversarial(rng) -> np.ndarray:
    """float64 values at and around bfloat16 rounding boundaries, over the whole range."""
    fi = ml_dtypes.finfo(BF16)
    out = []
    # bfloat16 midpoints (8-bit significands with a 9th bit set), +- a few float64 ulps and
    # +- tiny offsets far below float32's precision (the double-rounding cases)
    m = rng.integers(128, 256, 400).astype(np.float64)
    e = rng.integers(-133, 128, 400)
    mid = np.ldexp(m + 0.5, e - 7)
    for d in (0.0, 2.0**-30, -(2.0**-30), 2.0**-17, -(2.0**-17)):
        out.append(mid * (1 + d))
    out += [np.nextafter(mid, np.inf), np.nextafter(mid, -np.inf)]
    # float32 midpoints near bfloat16 midpoints (where a float32 round-to-nearest goes wrong)
    out.append(np.ldexp(m + 0.5 + 2.0**-17, e - 7))
    # subnormals of bfloat16 and the underflow to zero
    k = np.arange(-140, -120, dtype=np.float64)
    out += [np.exp2(k), np.exp2(k) * 1.5, np.exp2(k) * (1.5 + 2.0**-40), np.exp2(k) * 0.75]
    # the overflow boundary: max, the midpoint to 2**128 and around it
    top = float(fi.max)
    half = 2.0**127 * (2 - 2.0**-8)
    out.append(np.array([top, half, np.nextafter(half, 0), np.nextafter(half, np.inf), 2.0**128,
                         3.5e38, 1e300, np.inf, -np.inf, np.nan, 0.0, -0.0, 5e-324]))
    # random values over the range
    out.append(np.ldexp(rng.random(2000) + 1, rng.integers(-140, 130, 2000)))
    a = np.concatenate([np.ravel(o) for o in out])
    return np.concatenate([a, -a])


def test_cast_result_is_the_correct_rounding():
    """``cast_result`` (float64 -> bfloat16 through float32 rounded to odd) equals the exact
    rounding ``round_to_dtype`` bit for bit, signed zeros and infinities included."""
    a = _adversarial(np.random.default_rng(5))
    got = cast_result(a, BF16)
    want = round_to_dtype(a, BF16)
    assert got.dtype == BF16
    bad = np.flatnonzero((_bits(got) != _bits(want)) & ~(np.isnan(a)))
    assert bad.size == 0, [(a[i], got[i], want[i]) for i in bad[:5]]
    assert np.isnan(got[np.isnan(a)].astype(np.float32)).all()


def test_result_dtype_promotion():
    """bfloat16 with bfloat16 stays bfloat16; with float16 or float32 it is float32; with
    float64, float64 (JAX's promotion)."""
    b = np.zeros(1, BF16)
    assert result_dtype(b, b) == BF16
    for other, want in ((np.float16, np.float32), (np.float32, np.float32), (np.float64, np.float64)):
        assert result_dtype(b, np.zeros(1, other)) == want


def _calls(rng):
    x = (rng.standard_normal((7, 9)) * 4).astype(BF16)
    x[2, 3] = -np.inf
    y = rng.integers(0, 9, 7)
    p = rng.random((7, 9)) + 0.01
    p = (p / p.sum(1, keepdims=True)).astype(BF16)
    q = rng.random((7, 9)) + 0.01
    q = (q / q.sum(1, keepdims=True)).astype(BF16)
    return [
        ("logsumexp", "logsumexp", (x,), {}),
        ("log_softmax", "log_softmax", (x,), {}),
        ("softmax", "softmax", (x,), {}),
        ("cross_entropy", "cross_entropy", (x, y), {"reduction": "none"}),
        ("cross_entropy", "cross_entropy", (x, p), {"reduction": "none"}),
        ("cross_entropy_mean", "cross_entropy", (x, y), {"reduction": "mean"}),
        ("cross_entropy_mean", "cross_entropy", (x, y), {"reduction": "sum", "label_smoothing": 0.1}),
        ("entropy", "entropy", (p,), {}),
        ("cross_entropy_pmf", "cross_entropy_pmf", (p, q), {}),
        ("kl_divergence", "kl_divergence", (p, q), {}),
        ("categorical_log_likelihood", "categorical_log_likelihood", (q, y), {}),
    ]


@pytest.mark.parametrize("i", range(11))
def test_public_functions_accept_bfloat16(i):
    """Every public function takes bfloat16 and returns bfloat16 within the table's bound of
    the oracle's exact value; the oracle takes the same input and returns bfloat16 too."""
    row, fn, args, kw = _calls(np.random.default_rng(17))[i]
    got = getattr(crossent, fn)(*args, **kw)
    assert np.asarray(got).dtype == BF16
    with mpmath.workprec(256):
        exact = getattr(ref, fn)(*args, exact=True, **kw)
    rounded = getattr(ref, fn)(*args, **kw)
    assert np.asarray(rounded).dtype == BF16
    err = ulp_error(np.asarray(got), np.asarray(exact, dtype=object), BF16)
    assert np.max(err) <= bound(row, BF16).max_ulp
    # the oracle's rounded result is the correct rounding of its exact one
    assert np.all(ulp_error(np.asarray(rounded), np.asarray(exact, dtype=object), BF16) <= 0.5)


def test_value_and_grad_bfloat16_and_out():
    """The gradient is bfloat16, within the table's bound of the oracle, and ``out=`` of
    bfloat16 receives the same bits."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((5, 6)) * 3).astype(BF16)
    y = rng.integers(0, 6, 5)
    loss, g = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    assert loss.dtype == BF16 and g.dtype == BF16
    with mpmath.workprec(256):
        _, exact = ref.cross_entropy_value_and_grad(x, y, reduction="sum", exact=True)
    err = ulp_error(g, np.asarray(exact, dtype=object), BF16)
    assert err.max() <= bound("cross_entropy_grad", BF16).max_ulp
    out = np.empty_like(x)
    _, g2 = crossent.cross_entropy_value_and_grad(x, y, reduction="sum", out=out)
    assert g2 is out and np.array_equal(_bits(out), _bits(g))


def test_reduction_rounds_once():
    """The bfloat16 mean equals the exact sum (the partial, exact) rounded once: the partial's
    mean in bfloat16 and the rounding of its float64 mean by ``round_to_dtype`` can differ only
    where double rounding would; here both go through the exact integers."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((64, 5)) * 2).astype(BF16)
    y = rng.integers(0, 5, 64)
    part = crossent.cross_entropy(x, y, reduction="partial")
    mean = crossent.cross_entropy(x, y, reduction="mean")
    assert mean.dtype == BF16
    assert _bits(mean) == _bits(round_to_dtype(Fraction(part.total, part.weight), BF16))
    assert _bits(part.sum()) == _bits(crossent.cross_entropy(x, y, reduction="sum"))


def test_bfloat16_errors_name_the_argument():
    """bfloat16 probabilities are checked as the others: a negative entry or nan is a
    ValueError naming the argument and index, in the API and in the oracle alike."""
    p = np.array([[0.5, 0.5], [0.25, -0.75]], dtype=BF16)
    for f in (crossent.entropy, ref.entropy):
        with pytest.raises(ValueError, match=r"p\[1, 1\]"):
            f(p)
    p = np.array([0.5, np.nan], dtype=BF16)
    for f in (crossent.entropy, ref.entropy):
        with pytest.raises(ValueError, match=r"p\[1\]"):
            f(p)
    # check=True uses bfloat16's own eps (2**-7): 0.5 + 0.5 + 2**-7 * 3 is outside K eps, K = 2
    p = np.array([0.5, 0.5 + 3 * 2.0**-7], dtype=BF16)
    for f in (crossent.entropy, ref.entropy):
        with pytest.raises(ValueError, match="does not sum to 1"):
            f(p, check=True)
