"""Precision regression tests of ``logsumexp``, ``log_softmax`` and ``softmax``.

Provenance: every expected value comes from the oracle ``crossent.reference`` (``exact=True``:
the unrounded value of the function of the exact input floats), or, in the direct value tests
below, from mpmath in ``mp.workprec`` on a closed form, rounded by
``crossent.round_to_dtype`` (exact integer rounding, no double rounding). The inputs are the
seeded adversarial corpus :mod:`crossent.corpus.logits` (size "ci"), built per format.

The bounds are read from :mod:`crossent._bounds`; no number is restated here. The float64
logsumexp bound has a condition (``max(x) >= 0`` or ``|logsumexp(x)| >= L/3`` with
``L = logsumexp(x) - max(x)``); it is implemented as code in
:func:`crossent._bounds._logsumexp_condition`, next to the table row it belongs to: where it
fails the output is checked against the table's absolute bound (``max_ulp * ulp(L)``) instead.
The checks shared with the loss tests live in ``tests/_precision.py``.
"""

from __future__ import annotations

import functools

import ml_dtypes
import mpmath
import numpy as np
import pytest
from mpmath import mp

import crossent
from crossent import _measure
from crossent._bounds import bound
from crossent.corpus import logits as corpus
from crossent.ulp import round_to_dtype, ulp_error

from _precision import DTYPES, check_case, check_correctly_rounded_fraction, narrow_pairs

SIZE, SEED = "ci", 0
FUNCTIONS = _measure.SOFTMAX_FUNCTIONS


@functools.cache
def _cases(dtype: str) -> tuple:
    # the softmax family ignores targets and options: one case per distinct input
    return tuple(_measure.distinct_inputs(corpus.cases(SIZE, seed=SEED, dtype=dtype)))


def _describe(m: _measure.Measurement, case) -> str:
    flat = np.asarray(case.logits).reshape(-1)
    worst = ", ".join(f"output {i}: {e:.3g} ulp" for i, e in m.worst(3))
    return f"{m.function} {m.dtype} {case.name} ({case.note}); worst {worst}; logits[:4] {flat[:4]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", corpus.FAMILIES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_max_ulp(function, family, dtype):
    """Every output of the family is within the table's bound (where its condition holds;
    elsewhere within the table's absolute bound), and has the input's dtype."""
    cs = [c for c in _cases(dtype) if c.family == family]
    if not cs:
        pytest.skip(f"no distinct inputs of family {family} (all shared with other families)")
    for case in cs:
        check_case(function, case, _describe)


@pytest.mark.parametrize("function,dtype", narrow_pairs(FUNCTIONS))
def test_correctly_rounded_fraction(function, dtype):
    """Over all outputs of the corpus, the fraction correctly rounded is at least the table's
    ``min_correctly_rounded``."""
    check_correctly_rounded_fraction(function, dtype, _cases(dtype))


# ---------------------------------------------------------------------------------------
# direct values with provenance

# (dtype, gap): exp(-gap) is between 1/2 and 2 smallest subnormals of the format, so the
# correctly rounded softmax entry is the smallest subnormal, not 0
# (bfloat16: the smallest subnormal is 2**-133, exp(-92) is 1.2 of it)
_SUBNORMAL_GAPS = [("float64", 745.0), ("float32", 103.0), ("float16", 16.5), ("bfloat16", 92.0)]


@pytest.mark.parametrize("dtype,gap", _SUBNORMAL_GAPS)
def test_softmax_subnormal_entry(dtype, gap):
    """softmax([0, -gap]): the second entry is exp(-gap)/(1 + exp(-gap)), subnormal.

    Expected value: mpmath at 1200 bits, rounded by ``crossent.round_to_dtype``."""
    x = np.array([0.0, -gap], dtype=dtype)
    with mp.workprec(1200):
        t = mpmath.exp(mpmath.mpf(float(x[1])))
        want1 = round_to_dtype(t / (1 + t), dtype)
        want0 = round_to_dtype(1 / (1 + t), dtype)
    tiny = ml_dtypes.finfo(dtype).tiny  # numpy.finfo does not know bfloat16
    assert 0 < want1 < tiny  # the test's premise: a subnormal, not 0
    got = crossent.softmax(x)
    assert got.dtype == np.dtype(dtype)
    assert got[0] == want0
    assert got[1] == want1, f"softmax([0, -{gap}]) = {got[1]!r}, correctly rounded {want1!r}"


@pytest.mark.parametrize("dtype,gap", _SUBNORMAL_GAPS)
def test_log_softmax_of_the_max_is_not_zero(dtype, gap):
    """log_softmax([0, -gap])[0] = -log1p(exp(-gap)), a negative subnormal (a naive
    ``x - logsumexp`` gives -0.0). Expected: mpmath at 1200 bits, ``round_to_dtype``."""
    x = np.array([0.0, -gap], dtype=dtype)
    with mp.workprec(1200):
        want = round_to_dtype(-mpmath.log1p(mpmath.exp(mpmath.mpf(float(x[1])))), dtype)
    assert want < 0
    got = crossent.log_softmax(x)
    assert got[0] == want, f"log_softmax([0, -{gap}])[0] = {got[0]!r}, want {want!r}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_near_zero_with_zero_max(dtype):
    """logsumexp([0, -d]) = log1p(exp(-d)) with d = 40 (float64), 20 (float32), 9 (float16, bfloat16):
    max(x) == 0, so the ULP bound applies although the value is tiny; ``0 + log(1 + e^-d)``
    in the format returns 0. Expected: mpmath at 400 bits."""
    d = {"float64": 40.0, "float32": 20.0, "float16": 9.0, "bfloat16": 9.0}[dtype]
    x = np.array([0.0, -d], dtype=dtype)
    with mp.workprec(400):
        exact = mpmath.log1p(mpmath.exp(mpmath.mpf(float(x[1]))))
    got = crossent.logsumexp(x)
    assert got != 0
    assert ulp_error(got, exact, dtype) <= bound("logsumexp", dtype).max_ulp


def test_logsumexp_huge_offset():
    """logsumexp of 3 copies of -1e300 is -1e300 + log 3, which rounds to -1e300 (log 3 is
    far below ulp(1e300)); entries a few ulp apart give the largest one."""
    x = np.full(3, -1e300)
    assert crossent.logsumexp(x) == -1e300
    y = np.array([1e300, np.nextafter(1e300, 0), np.nextafter(np.nextafter(1e300, 0), 0)])
    assert crossent.logsumexp(y) == 1e300
    assert np.array_equal(crossent.softmax(y), [1.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------
# the corpus itself


def test_corpus_is_seeded_and_deterministic():
    a = corpus.cases("smoke", seed=3)
    b = corpus.cases("smoke", seed=3)
    c = corpus.cases("smoke", seed=4)
    assert [x.name for x in a] == [x.name for x in b]
    assert all(np.array_equal(x.logits, y.logits) for x, y in zip(a, b))
    assert any(not np.array_equal(x.logits, y.logits) for x, y in zip(a, c)
               if x.logits.shape == y.logits.shape)


@pytest.mark.parametrize("dtype", DTYPES)
def test_corpus_covers_the_contract(dtype):
    """The families the accuracy contract asks for (docs/design.md#accuracy) are present with
    their extremes, in the case's dtype."""
    cs = corpus.cases(SIZE, seed=SEED, dtype=dtype)
    assert {c.family for c in cs} == set(corpus.FAMILIES)
    assert all(c.logits.dtype == np.dtype(dtype) for c in cs)
    assert all(not np.any(np.isnan(c.logits)) and not np.any(c.logits == np.inf) for c in cs)
    fi = ml_dtypes.finfo(dtype)
    k = {c.logits.shape[c.axis] for c in cs}
    assert {1, 2} <= k and max(k) >= 10_000
    assert any(np.any(c.logits == -np.inf) for c in cs)  # masks
    assert any(c.weight is not None and np.any(c.target == c.ignore_index) for c in cs)
    assert any(c.label_smoothing > 0 for c in cs)
    assert any(c.probability_target for c in cs)
    assert any(c.logits.ndim == 3 for c in cs)
    big = max(float(np.max(np.abs(c.logits[np.isfinite(c.logits)]))) for c in cs)
    if dtype == "float64":
        assert big >= 1e300
        # the confident rows: true loss ~ 1e-20, 1e-100, 1e-300
        names = {c.name for c in cs}
        assert {"confident/loss-1e-20", "confident/loss-1e-100", "confident/loss-1e-300"} <= names
    else:
        assert big >= fi.max / 20
    # gaps beyond the format's underflow threshold: softmax outputs subnormal or 0
    sub = [c for c in cs if c.family == "subnormal"][0]
    gaps = -np.sort(sub.logits.astype(np.float64), axis=1)[:, 0]
    assert np.any(gaps > -np.log(float(fi.tiny)))


def test_full_corpus_reaches_a_million_classes():
    wide = corpus.cases("full", families=["wide"])
    assert max(c.logits.shape[-1] for c in wide) == 1_000_000


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_max_ulp_full_wide(function):
    """The "full" wide rows (K = 1e5 and 1e6), float64: minutes of oracle time."""
    for case in corpus.cases("full", families=["wide"]):
        check_case(function, case, _describe)
