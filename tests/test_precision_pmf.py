"""ULP regressions of the PMF functions against the oracle ``crossent.reference``.

Every case of the adversarial corpus :mod:`crossent.corpus.pmf` (``size="ci"``) is run through
crossent and through the oracle (exact values, ``exact=True``); the errors, in ULPs of the output
format (:func:`crossent.ulp.ulp_error`), must stay within the bounds of the accuracy table
:mod:`crossent._bounds` -- the only place where a bound is stated.
"""

from __future__ import annotations

import ml_dtypes  # noqa: F401  (registers the "bfloat16" dtype name)
import mpmath
import numpy as np
import pytest

import crossent.pmf as cpmf
from crossent import _bounds
from crossent import reference as ref
from crossent.corpus import pmf as corpus
from crossent.ulp import ulp_error

FUNCTIONS = ("entropy", "cross_entropy_pmf", "kl_divergence")
PARAMS = [(f, dt) for f in FUNCTIONS for dt in ("float64", "float32", "float16", "bfloat16") if dt in _bounds.BOUNDS[f]]


def _exact(fn, case):
    # the oracle's exact mode builds its mpf results in the caller's context: give it room
    # (256 bits) so that the "exact" value is not itself rounded to 53 bits
    with mpmath.workprec(256):
        out = getattr(ref, fn)(*case.args, exact=True, **case.kwargs)
    return np.asarray(out, dtype=object).reshape(-1)


def _measure(fn, dt):
    errors, worst = [], []
    for case in corpus.cases(size="ci", seed=0, dtype=dt, function=fn):
        got = getattr(cpmf, fn)(*case.args, **case.kwargs)
        assert np.asarray(got).dtype == np.dtype(dt), case.name
        e = ulp_error(np.asarray(got).reshape(-1), _exact(fn, case), dt)
        errors.append(e)
        worst.append((float(e.max()), case.name, case.note))
    worst.sort(reverse=True)
    return np.concatenate(errors), worst[:3]


@pytest.mark.parametrize("fn,dt", PARAMS)
def test_ulp_bound_on_corpus(fn, dt):
    b = _bounds.bound(fn, dt)
    errors, worst = _measure(fn, dt)
    assert errors.size > 150  # the corpus is not silently empty
    assert errors.max() <= b.max_ulp, f"{fn} {dt}: worst cases {worst}"
    if b.min_correctly_rounded is not None:
        frac = float(np.mean(errors <= 0.5))
        assert frac >= b.min_correctly_rounded, f"{fn} {dt}: {frac:.4f} correctly rounded; worst {worst}"


@pytest.mark.parametrize("dt", ["float64", "float32"])
@pytest.mark.parametrize("eps", [1e-1, 1e-3, 1e-5, 1e-8])
def test_kl_perturbation_sweep(eps, dt):
    """The perturbed family by itself (docs/design.md#accuracy): q = p(1 + eps z) renormalized, many rows, bases e/2/10."""
    rng = np.random.default_rng([6, int(-np.log10(eps))])
    p = rng.dirichlet(np.ones(12), size=40)
    q = p * (1 + eps * rng.uniform(-1, 1, p.shape))
    q /= q.sum(axis=1, keepdims=True)
    p, q = p.astype(dt), q.astype(dt)
    b = _bounds.bound("kl_divergence", dt)
    for base in (None, 2.0, 10.0):
        got = cpmf.kl_divergence(p, q, base=base)
        with mpmath.workprec(256):
            exact = ref.kl_divergence(p, q, base=base, exact=True)
        e = ulp_error(got, exact, dt)
        assert e.max() <= b.max_ulp, (base, float(e.max()))


def test_empirical_pmf_is_correctly_rounded():
    rng = np.random.default_rng(61)
    for n, k in ((1, 1), (7, 3), (1000, 6), (99991, 37)):
        x = rng.integers(0, k, size=n)
        assert np.array_equal(cpmf.empirical_pmf(x, k), ref.empirical_pmf(x, k))


@pytest.mark.parametrize("dt", ["float64", "float32"])
def test_categorical_log_likelihood_bound(dt):
    # l(q) = -H(c, q) on the counts: evaluated by the cross-entropy kernel, so the table row of
    # cross_entropy_pmf is its bound until the table has a row of its own
    row = "categorical_log_likelihood" if "categorical_log_likelihood" in _bounds.BOUNDS else "cross_entropy_pmf"
    b = _bounds.bound(row, dt)
    rng = np.random.default_rng(62)
    errs = []
    for k, n in ((2, 10), (6, 600), (100, 5000), (1000, 20000)):
        for _ in range(4):
            q = rng.dirichlet(np.full(k, 0.5)).astype(dt)
            x = rng.integers(0, k, size=n)
            got = cpmf.categorical_log_likelihood(q, x)
            with mpmath.workprec(256):
                exact = ref.categorical_log_likelihood(q, x, exact=True)
            errs.append(ulp_error(got, exact, dt))
    assert max(errs) <= b.max_ulp
