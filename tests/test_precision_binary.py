"""Precision of the binary cross-entropy, its gradient, softplus and log_sigmoid against the
oracle, on the adversarial corpus ``crossent.corpus.binary``.

Provenance of every expected value: ``crossent.reference`` (correctly rounded mpmath,
``exact=True``); the bounds come from :mod:`crossent._bounds`. The PyTorch values quoted are
``torch.nn.functional.binary_cross_entropy_with_logits`` (2.x), recomputed here when torch is
installed.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import crossent
from crossent import reference as ref
from crossent._bounds import bound
from crossent.corpus import binary as corpus
from crossent.ulp import ulp_error

DTYPES = ("float64", "float32", "float16")
CASES = [c for d in DTYPES for c in corpus.cases(d)]


@functools.lru_cache(maxsize=None)
def _exact(name):
    c = next(c for c in CASES if c.name == name)
    return ref.binary_cross_entropy_with_logits_value_and_grad(c.logits, c.target, exact=True,
                                                               **c.kwargs())


def _errors(computed, exact, dtype):
    return np.asarray(ulp_error(np.asarray(computed).reshape(-1), np.asarray(exact).reshape(-1),
                                dtype), dtype=float)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_loss_within_bound(case):
    b = bound("binary_cross_entropy", case.dtype)
    got = crossent.binary_cross_entropy_with_logits(case.logits, case.target, **case.kwargs())
    assert np.asarray(got).dtype == case.dtype
    errs = _errors(got, _exact(case.name)[0], case.dtype)
    assert errs.max() <= b.max_ulp, f"{case.name}: {errs.max():.3g} ulp > {b.max_ulp}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_grad_within_normwise_bound(case):
    b = bound("binary_cross_entropy_grad", case.dtype)
    loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(case.logits, case.target,
                                                                      **case.kwargs())
    el, eg = _exact(case.name)
    assert _errors(loss, el, case.dtype).max() <= bound("binary_cross_entropy", case.dtype).max_ulp
    assert g.dtype == case.dtype and g.shape == case.logits.shape
    eg = np.asarray(eg).reshape(-1)
    held, scale = b.check(case, eg, case.dtype.name)
    errs = _errors(g, eg, case.dtype)
    assert errs[held].max(initial=0.0) <= b.max_ulp
    import mpmath

    gv = np.asarray(g, dtype=np.float64).reshape(-1)
    for i in np.flatnonzero(~held):
        err = abs(mpmath.mpf(float(gv[i])) - eg[i])
        assert err <= b.max_ulp * scale[i], f"{case.name}[{i}]: {err} > {b.max_ulp} x {scale[i]}"


@pytest.mark.parametrize("dtype", ("float32", "float16"))
def test_narrow_loss_correctly_rounded_fraction(dtype):
    b = bound("binary_cross_entropy", dtype)
    errs = np.concatenate([
        _errors(crossent.binary_cross_entropy_with_logits(c.logits, c.target, **c.kwargs()),
                _exact(c.name)[0], dtype)
        for c in CASES if c.dtype == dtype])
    assert np.mean(errs <= 0.5) >= b.min_correctly_rounded


def _softplus_inputs(dtype):
    dt = np.dtype(dtype)
    fmax = float(np.finfo(dt).max)
    mags = np.concatenate([np.geomspace(float(np.finfo(dt).smallest_subnormal), min(fmax, 1e300), 300),
                           np.linspace(0.01, 800.0, 300)])
    x = np.concatenate([mags, -mags, [0.0, np.inf, -np.inf, -1100.5, -1250.0, -1418.0]])
    with np.errstate(over="ignore"):
        return x.astype(dt)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softplus", "log_sigmoid"])
def test_softplus_log_sigmoid(name, dtype):
    x = _softplus_inputs(dtype)
    b = bound(name, dtype)
    got = getattr(crossent, name)(x)
    assert got.dtype == x.dtype
    errs = _errors(got, getattr(ref, name)(x, exact=True), dtype)
    assert errs.max() <= b.max_ulp
    if b.min_correctly_rounded is not None:
        assert np.mean(errs <= 0.5) >= b.min_correctly_rounded


def test_confident_logit_is_not_zero():
    # oracle: softplus(-40) = log1p(e^-40) = 4.248354255291589e-18 (correctly rounded float64)
    want = ref.softplus(np.array([-40.0]))[0]
    assert want == 4.248354255291589e-18
    assert crossent.binary_cross_entropy_with_logits(np.array([40.0]), np.array([1.0])) == want
    assert crossent.binary_cross_entropy_with_logits(np.array([-40.0]), np.array([0.0])) == want
    torch = pytest.importorskip("torch")
    # measured with torch 2.13: x = 40, t = 1 is right there; the mirror x = -40, t = 0 is 0,
    # (1 - t) x + max(-x, 0) + log1p(e^{-40}) = -40 + 40 + 4.2e-18 rounds the small term away
    t = torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([-40.0], dtype=torch.float64),
                                                              torch.tensor([0.0], dtype=torch.float64))
    assert float(t) == 0.0


def test_infinite_logits_give_the_limits():
    x = np.array([np.inf, -np.inf, np.inf, -np.inf, np.inf])
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5])
    loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(x, t, reduction="none")
    assert loss.tolist() == [0.0, 0.0, np.inf, np.inf, np.inf]
    assert g.tolist() == [0.0, 0.0, 1.0, -1.0, 0.5]  # sigma(+-inf) - t
    assert loss.tolist() == ref.binary_cross_entropy_with_logits(x, t, reduction="none").tolist()


def test_sum_mean_partial_agree_and_split_invariant():
    c = next(c for c in CASES if c.name == "weighted-float64")
    kw = dict(weight=c.weight, pos_weight=c.pos_weight)
    f = crossent.binary_cross_entropy_with_logits
    whole = f(c.logits, c.target, reduction="partial", **kw)
    halves = (f(c.logits[:3], c.target[:3], weight=c.weight[:3], pos_weight=c.pos_weight,
                reduction="partial")
              + f(c.logits[3:], c.target[3:], weight=c.weight[3:], pos_weight=c.pos_weight,
                  reduction="partial"))
    assert halves.sum() == whole.sum() == f(c.logits, c.target, reduction="sum", **kw)
    assert halves.mean() == f(c.logits, c.target, reduction="mean", **kw)


# --- properties (hypothesis) ------------------------------------------------------------------
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_FLOATS = st.floats(allow_nan=False, width=64)


@settings(max_examples=200, deadline=None)
@given(st.lists(_FLOATS, min_size=1, max_size=20), st.floats(0.0, 1.0))
def test_properties(xs, t):
    x = np.array(xs)
    ones = np.ones_like(x)
    # hard targets mirror: loss(x, 1) = softplus(-x) = loss(-x, 0), bit for bit
    a = crossent.binary_cross_entropy_with_logits(x, ones, reduction="none")
    b = crossent.binary_cross_entropy_with_logits(-x, 0 * ones, reduction="none")
    assert a.tobytes() == b.tobytes() == crossent.softplus(-x).tobytes()
    assert (0.0 - crossent.log_sigmoid(x)).tobytes() == crossent.softplus(-x).tobytes()
    # the loss is never negative nor nan for finite or infinite logits and t in [0, 1]
    loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(x, np.full_like(x, t),
                                                                      reduction="none")
    assert np.all(loss >= 0)
    # the gradient sigma(x) - t lies in [-t, 1 - t]
    assert np.all((g >= -t) & (g <= 1 - t))


def test_bfloat16_rounds_once():
    """bfloat16 logits take the narrow path (float64 kernel, one rounding through float32
    rounded to odd): per-element losses, softplus and log_sigmoid correctly rounded against the
    oracle; a 0-d input gives a NumPy scalar, a reduction a bfloat16 scalar."""
    ml_dtypes = pytest.importorskip("ml_dtypes")
    bf = ml_dtypes.bfloat16
    rng = np.random.default_rng(21)
    x = (rng.normal(scale=8.0, size=60)).astype(bf)
    t = rng.uniform(size=60).round(2)
    got = crossent.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert got.dtype == bf
    exact = ref.binary_cross_entropy_with_logits(x, t, reduction="none", exact=True)
    assert _errors(got, exact, bf).max() <= 0.5
    for f in ("softplus", "log_sigmoid"):
        e = _errors(getattr(crossent, f)(x), getattr(ref, f)(x, exact=True), bf)
        assert e.max() <= 0.5, f
    s = crossent.binary_cross_entropy_with_logits(x, t)
    assert s.dtype == bf and np.ndim(s) == 0
    _l, g = crossent.binary_cross_entropy_with_logits_value_and_grad(x, t)
    assert g.dtype == bf
    z = crossent.softplus(np.float64(3.0))
    assert isinstance(z, np.float64)
