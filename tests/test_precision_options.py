"""Precision tests of the loss options ``z_loss`` and ``logit_softcap``: the per-item loss,
the reductions ("mean" and "sum") and the gradient of ``cross_entropy_value_and_grad``.

Provenance: every expected value comes from the oracle ``crossent.reference`` with the same
options (``exact=True``: the unrounded value of the exact composite function of the given
floats, ``c tanh(x / c)`` and ``z lse^2`` included, computed in interval arithmetic), or, in the
direct value tests, from mpmath at 300 bits on the closed form. Inputs: the seeded options
corpus :mod:`crossent.corpus.options` (size "ci"), built per format. Bounds are read from
:mod:`crossent._bounds` (rows ``cross_entropy_options``, ``cross_entropy_options_mean`` and
the normwise ``cross_entropy_options_grad``).
"""

from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest

import crossent
from crossent import _measure, reference
from crossent._bounds import bound
from crossent.corpus import options as corpus
from crossent.ulp import ulp_error

from _precision import DTYPES, check_case, check_correctly_rounded_fraction, narrow_pairs

SIZE, SEED = "ci", 0
FUNCTIONS = _measure.OPTION_FUNCTIONS


@functools.cache
def _cases(dtype: str) -> tuple:
    return tuple(corpus.cases(SIZE, seed=SEED, dtype=dtype))


def _describe(m, case) -> str:
    worst = ", ".join(f"output {i}: {e:.3g} ulp" for i, e in m.worst(3))
    return (f"{m.function} {m.dtype} {case.name} ({case.note}); z_loss={case.z_loss}, "
            f"logit_softcap={case.logit_softcap}; worst {worst}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", corpus.FAMILIES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_max_ulp(function, family, dtype):
    """Every output of the family is within the table's bound (the gradient: within its
    normwise bound), with the input's dtype."""
    cs = [c for c in _cases(dtype) if c.family == family]
    assert cs, f"no {family} case in {dtype}"
    for case in cs:
        check_case(function, case, _describe)


@pytest.mark.parametrize("function,dtype", narrow_pairs(FUNCTIONS))
def test_correctly_rounded_fraction(function, dtype):
    check_correctly_rounded_fraction(function, dtype, _cases(dtype))


def test_every_case_sets_an_option():
    """The options corpus exercises the options (a case without them would measure the plain
    kernels)."""
    for dt in DTYPES:
        for c in _cases(dt):
            assert c.z_loss > 0 or c.logit_softcap is not None, c.name


# ---------------------------------------------------------------------------------------
# direct values (mpmath at 300 bits on the closed form)


def _closed_form(x, y, z, c):
    """Per-item loss of one row, mpmath at 300 bits: lse(zs) - zs[y] + z lse(zs)^2 with
    zs = c tanh(x / c) (or x)."""
    with mpmath.mp.workprec(300):
        zs = [c * mpmath.tanh(mpmath.mpf(float(v)) / c) if c else mpmath.mpf(float(v)) for v in x]
        lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in zs))
        return lse - zs[y] + z * lse**2


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softcap_of_huge_logits(dtype):
    """x = (1e30, -1e30, 0) capped at 30: the first two become +-30 exactly to the last bit of
    any format; the loss of label 2 is log(e^30 + e^-30 + 1)."""
    x = np.array([[1e30, -1e30, 0.0]], dtype=dtype)
    got = crossent.cross_entropy(x, np.array([2]), reduction="none", logit_softcap=30.0)
    exact = _closed_form(x[0], 2, 0.0, 30.0)
    assert float(ulp_error(got[0], exact, dtype)) <= bound("cross_entropy_options", dtype).max_ulp


def test_softcap_near_zero_keeps_every_bit():
    """x / c = 1e-300 / 1e6: c tanh(x/c) = x (1 - 3e-613), so the row is the plain one to the
    last bit and the loss of the two-class row (1e-300, 0) is log(2) - 5e-301 rounded."""
    x = np.array([[1e-300, 0.0]])
    got = crossent.cross_entropy(x, np.array([0]), reduction="none", logit_softcap=1e6)
    exact = _closed_form(x[0], 0, 0.0, 1e6)
    assert float(ulp_error(got[0], exact, np.float64)) <= 0.5


def test_zloss_is_added_per_item():
    """z lse^2 with lse = log(1 + e + e^2) for the row (0, 1, 2), z = 0.5."""
    x = np.array([[0.0, 1.0, 2.0]])
    got = crossent.cross_entropy(x, np.array([1]), reduction="none", z_loss=0.5)
    exact = _closed_form(x[0], 1, 0.5, None)
    assert float(ulp_error(got[0], exact, np.float64)) <= bound("cross_entropy_options", "float64").max_ulp


def test_huge_weights_with_probability_targets():
    """Weights of 1e300 are scaled by a power of two inside; the unweighted z term of
    probability targets must be scaled with them (and back): against the oracle."""
    x = np.arange(6.0).reshape(2, 3) / 7
    t = np.full((2, 3), 1 / 3)
    w = np.array([0.5, 1.0, 2.0]) * 1e300
    for red in ("none", "sum", "mean"):
        got = crossent.cross_entropy(x, t, weight=w, z_loss=1e-4, reduction=red)
        exact = reference.cross_entropy(x, t, weight=w, z_loss=1e-4, reduction=red, exact=True)
        assert np.max(ulp_error(got, exact, np.float64)) <= 3.0, red


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_masked_class_becomes_minus_c(dtype):
    """A -inf logit is capped to -c (the limit of c tanh(x / c)): its class keeps the weight
    e^-c in the sum, and a label on it gives a finite loss, as the closed form says."""
    x = np.array([[0.0, -np.inf, 1.0]], dtype=dtype)
    got = crossent.cross_entropy(x, np.array([1]), reduction="none", logit_softcap=5.0)
    exact = _closed_form(np.array([0.0, -np.inf, 1.0]), 1, 0.0, 5.0)
    assert np.isfinite(got[0])
    assert float(ulp_error(got[0], exact, dtype)) <= 1.0
