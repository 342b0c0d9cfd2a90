"""Precision regression tests of ``cross_entropy`` (reduction none / mean / sum) and of the
gradient returned by ``cross_entropy_value_and_grad``.

Provenance: every expected value comes from the oracle ``crossent.reference`` (``exact=True``,
the unrounded value for the exact input floats), or, in the direct value tests, from mpmath in
``mp.workprec`` on a closed form rounded by ``crossent.round_to_dtype``. Inputs: the seeded
adversarial corpus :mod:`crossent.corpus.logits` (size "ci"), built per format: confident
predictions (true loss down to 1e-300 and subnormal), confident and wrong, mixed scales,
offsets to ±1e300, -inf masks, K = 1, 2 and 1e4, label smoothing, weights with ignored items,
probability targets, 3-D inputs with an axis.

Bounds are read from :mod:`crossent._bounds` (``cross_entropy`` for the per-item loss,
``cross_entropy_mean`` for the "mean" and "sum" reductions, ``cross_entropy_grad``). The
gradient's float64 condition (one-hot targets) is implemented as code in
:func:`crossent._bounds._grad_condition`, next to the table row it belongs to: for soft
targets (probabilities or label smoothing) each entry ``s (A p_i - B_i)`` is checked against
the table's absolute bound ``max_ulp * (ulp(s A p_i) + ulp(s B_i))`` instead.
"""

from __future__ import annotations

import functools

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
FUNCTIONS = _measure.LOSS_FUNCTIONS  # cross_entropy, cross_entropy_mean (mean and sum), _grad


@functools.cache
def _cases(dtype: str) -> tuple:
    return tuple(corpus.cases(SIZE, seed=SEED, dtype=dtype))


def _describe(m: _measure.Measurement, case) -> str:
    worst = ", ".join(f"output {i}: {e:.3g} ulp" for i, e in m.worst(3))
    opts = {k: v for k, v in case.options.items() if k != "weight"}
    return (f"{m.function} {m.dtype} {case.name} ({case.note}); options {opts}, "
            f"weights {'yes' if case.weight is not None else 'no'}; worst {worst}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", corpus.FAMILIES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_max_ulp(function, family, dtype):
    """Every output of the family is within the table's bound (where its condition holds;
    elsewhere within the table's absolute bound), and has the input's dtype."""
    for case in (c for c in _cases(dtype) if c.family == family):
        check_case(function, case, _describe)


@pytest.mark.parametrize("function,dtype", narrow_pairs(FUNCTIONS))
def test_correctly_rounded_fraction(function, dtype):
    """Over all outputs of the corpus, the fraction correctly rounded is at least the table's
    ``min_correctly_rounded``."""
    check_correctly_rounded_fraction(function, dtype, _cases(dtype))


# ---------------------------------------------------------------------------------------
# direct values with provenance


def _two_class_loss(d: float):
    """loss of logits [0, -d] with label 0: log1p(exp(-d)), mpmath at 700 bits."""
    with mp.workprec(700):
        return mpmath.log1p(mpmath.exp(-mpmath.mpf(d)))


def test_confident_two_class_loss_gap_46_is_not_zero():
    """docs/design.md#accuracy: with gap 46 the true loss is log1p(exp(-46)) ~ 1.05e-20; PyTorch, JAX/optax
    and SciPy return exactly 0 (an error of ~1e16 ulp). crossent returns the correctly
    rounded value (mpmath at 700 bits, ``round_to_dtype``), within the table's bound."""
    x = np.array([[0.0, -46.0]])
    y = np.array([0])
    exact = _two_class_loss(46.0)
    want = round_to_dtype(exact, "float64")
    assert 1e-21 < want < 1e-19
    got = crossent.cross_entropy(x, y, reduction="none")[0]
    assert got != 0
    assert ulp_error(got, exact, "float64") <= bound("cross_entropy", "float64").max_ulp
    assert got == want
    mean = crossent.cross_entropy(x, y)
    assert ulp_error(mean, exact, "float64") <= bound("cross_entropy_mean", "float64").max_ulp


@pytest.mark.parametrize("level", [100, 300])
def test_confident_loss_levels(level):
    """Gap d = level * ln 10: the loss is log1p(exp(-d)) ~ 10**-level (mpmath at 700 bits)."""
    d = float(level * np.log(10.0))
    x = np.array([[d, 0.0]])
    got = crossent.cross_entropy(x, np.array([0]), reduction="sum")
    exact = _two_class_loss(float(x[0, 0]))
    assert got > 0
    assert ulp_error(got, exact, "float64") <= bound("cross_entropy_mean", "float64").max_ulp


@pytest.mark.parametrize("dtype", DTYPES)
def test_label_smoothing_in_sequence(dtype):
    """Loss and gradient with label smoothing, called with different smoothings one after the
    other on the same shape, each call against the oracle: a kernel that leaves a per-row
    coefficient array to an earlier call (stale scratch) fails here, whereas the corpus sweep
    can miss it when the allocator hands back memory that still holds the right values."""
    from crossent.corpus.logits import Case

    rng = np.random.default_rng(11)
    x = rng.normal(0.0, 3.0, size=(6, 9)).astype(dtype)
    y = rng.integers(0, 9, 6)
    for eps in (0.5, 0.1, 1.0, 0.05):
        case = Case(f"sequence/eps{eps:g}", "label-smoothing", x, y, note="smoothing in sequence",
                    label_smoothing=eps, reduction="sum")
        for function in ("cross_entropy", "cross_entropy_mean", "cross_entropy_grad"):
            check_case(function, case, _describe)


def test_confident_gradient_is_not_zero():
    """The gradient of the summed loss for logits [0, -46], label 0, is
    (p0 - 1, p1) = (-s, s) with s = exp(-46)/(1 + exp(-46)) (mpmath at 700 bits)."""
    x = np.array([[0.0, -46.0]])
    _loss, g = crossent.cross_entropy_value_and_grad(x, np.array([0]), reduction="sum")
    with mp.workprec(700):
        t = mpmath.exp(mpmath.mpf(-46))
        s = t / (1 + t)
    b = bound("cross_entropy_grad", "float64").max_ulp
    assert g[0, 0] < 0 < g[0, 1]
    assert ulp_error(g[0, 0], -s, "float64") <= b
    assert ulp_error(g[0, 1], s, "float64") <= b


@pytest.mark.parametrize("dtype,gap", [("float32", 20.0), ("float16", 9.0), ("bfloat16", 9.0)])
def test_confident_loss_narrow_formats(dtype, gap):
    """float32/float16 inputs: log1p(exp(-gap)) correctly rounded (mpmath at 700 bits,
    ``round_to_dtype``), where the format's own ``log(1 + exp(-gap))`` is 0."""
    x = np.array([[0.0, -gap]], dtype=dtype)
    want = round_to_dtype(_two_class_loss(gap), dtype)
    assert want > 0
    got = crossent.cross_entropy(x, np.array([0]), reduction="none")
    assert got.dtype == np.dtype(dtype)
    assert ulp_error(got[0], _two_class_loss(gap), dtype) <= bound("cross_entropy", dtype).max_ulp


def test_subnormal_loss():
    """Gap 740: the loss exp(-740)-ish is subnormal in float64 (mpmath at 1200 bits)."""
    x = np.array([[0.0, -740.0]])
    with mp.workprec(1200):
        exact = mpmath.log1p(mpmath.exp(mpmath.mpf(-740)))
    assert 0 < round_to_dtype(exact, "float64") < np.finfo(np.float64).tiny
    got = crossent.cross_entropy(x, np.array([0]), reduction="none")[0]
    assert ulp_error(got, exact, "float64") <= bound("cross_entropy", "float64").max_ulp


@pytest.mark.slow
@pytest.mark.parametrize("function", FUNCTIONS)
def test_max_ulp_full_wide(function):
    """The "full" wide rows (K = 1e5 and 1e6), float64: minutes of oracle time."""
    for case in corpus.cases("full", families=["wide"]):
        check_case(function, case, _describe)
