"""Property tests (hypothesis) over shapes, dtypes, values and options of the public API.

Properties:

* agreement with the oracle ``crossent.reference`` on small inputs, to the bounds of
  ``crossent._bounds`` (measured by ``crossent._measure.measure``, which applies the bounds'
  conditions exactly as the precision tests do);
* shift invariance: on a dyadic grid where ``x + c`` is exact, softmax, log_softmax, the loss
  and its gradient are bitwise unchanged by adding ``c`` to a row (the kernels only see the
  exact differences ``x_i - max x``);
* permutation equivariance of the class axis, within twice the stated bound (each side is
  within the bound of the same exact value; the sums are taken in a different order);
* loss >= 0 for any target (probabilities, indices, weights, smoothing);
* gradient rows sum to 0 (the true gradient ``A p - a`` sums to ``A - A = 0``), to the sum of
  the per-entry bounds;
* ``out=`` (a separate array, or the logits themselves) bitwise equal to out-of-place.

Found on the way: ``crossent.reference.logsumexp(np.array([0.0, 1e30, 1e10]))`` raises
MemoryError (its exact sum shifts by the exponent gap); the oracle tests therefore draw rows
as offset + moderate spread, and the other properties also draw entries across the whole range.

Example counts are kept small so that the file runs in well under two minutes once the
kernels are compiled; ``deadline=None`` because the first call of a specialization compiles.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import crossent
from crossent import _measure
from crossent._bounds import bound
from crossent.corpus.logits import Case
from crossent.ulp import ulp, ulp_error

DTYPES = (np.float16, np.float32, np.float64)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

dtypes = st.sampled_from(DTYPES)


@st.composite
def logits(draw, dtype=None, max_rows=4, max_c=6, masks=True, min_c=1, wild=False):
    """A (rows, C) array of the dtype: a per-row offset (up to a quarter of the largest
    finite number) plus a spread of 1 or 30 (or, with ``wild``, entries anywhere in the
    format's range), some -inf masks, at least one finite entry per row.

    ``wild`` is off for the oracle tests: ``crossent.reference`` runs out of memory on rows
    whose entries differ by ~1e30 (reported; see the module docstring)."""
    dt = np.dtype(draw(dtypes) if dtype is None else dtype)
    rows = draw(st.integers(1, max_rows))
    c = draw(st.integers(min_c, max_c))
    width = dt.itemsize * 8
    big = float(np.finfo(dt).max) / 4
    if wild and draw(st.booleans()):
        elem = st.floats(-big, big, width=width, allow_nan=False, allow_infinity=False)
        vals = np.array(draw(st.lists(elem, min_size=rows * c, max_size=rows * c)), dtype=np.float64)
    else:
        spread = draw(st.sampled_from([1.0, 30.0]))
        elem = st.floats(-spread, spread, width=width, allow_nan=False, allow_infinity=False)
        off = st.one_of(st.just(0.0), st.floats(-big, big, width=width, allow_nan=False, allow_infinity=False))
        offsets = np.array(draw(st.lists(off, min_size=rows, max_size=rows)), dtype=np.float64)
        vals = np.array(draw(st.lists(elem, min_size=rows * c, max_size=rows * c)), dtype=np.float64)
        vals = (vals.reshape(rows, c) + offsets[:, None]).reshape(-1)
    x = vals.astype(dt).reshape(rows, c)
    if masks and c > 1:
        mask = np.array(draw(st.lists(st.booleans(), min_size=rows * c, max_size=rows * c))).reshape(rows, c)
        mask[np.arange(rows), draw(st.lists(st.integers(0, c - 1), min_size=rows, max_size=rows))] = False
        x[mask] = -np.inf
    return x


@st.composite
def loss_case(draw, dtype=None, probs=None, wild=False):
    x = draw(logits(dtype=dtype, wild=wild))
    rows, c = x.shape
    use_probs = draw(st.booleans()) if probs is None else probs
    if use_probs:
        t = np.array(draw(st.lists(st.floats(0, 1, width=32), min_size=rows * c, max_size=rows * c)))
        t = t.reshape(rows, c).astype(x.dtype)
        # no mass where the logit is masked (that loss is +inf: a semantics test)
        t[np.isneginf(x)] = 0
    else:
        finite = [np.flatnonzero(np.isfinite(r)) for r in x]
        t = np.array([draw(st.sampled_from(list(f) + [-100])) for f in finite], dtype=np.int64)
    weight = None
    if draw(st.booleans()):
        weight = np.array(draw(st.lists(st.floats(0.0625, 4, width=16), min_size=c, max_size=c)), dtype=x.dtype)
    eps = 0.0 if np.isneginf(x).any() else draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
    reduction = draw(st.sampled_from(["mean", "sum"]))
    return Case(name="hypothesis", family="property", logits=x, target=t, weight=weight,
                label_smoothing=eps, reduction=reduction)


def _assert_within_bound(function, case):
    m = _measure.measure(crossent, function, case)
    b = bound(function, case.dtype)
    assert m.dtype_ok, f"{function}: wrong output dtype"
    assert m.max_ulp <= b.max_ulp and m.max_alt <= b.max_ulp, (
        f"{function} {case.dtype}: {m.max_ulp} ulp (alt {m.max_alt}) > {b.max_ulp}; worst {m.worst(3)}; "
        f"logits {case.logits.tolist()} target {case.target.tolist()} weight {case.weight} "
        f"eps {case.label_smoothing}"
    )


# --- agreement with the oracle ------------------------------------------------------------------


@pytest.mark.parametrize("function", _measure.SOFTMAX_FUNCTIONS)
@settings(max_examples=50, **SETTINGS)
@given(x=logits())
def test_softmax_family_agrees_with_oracle(function, x):
    _assert_within_bound(function, Case(name="h", family="property", logits=x,
                                        target=np.zeros(x.shape[0], np.int64)))


@pytest.mark.parametrize("function", _measure.LOSS_FUNCTIONS)
@settings(max_examples=50, **SETTINGS)
@given(case=loss_case())
def test_loss_agrees_with_oracle(function, case):
    if function == "cross_entropy_grad" and not case.probability_target and case.reduction == "mean":
        # every item ignored with reduction "mean": the mean's denominator is 0 and the
        # gradient 0/0; that case is a semantics rule, covered by test_semantics.py
        assume((case.target != case.ignore_index).any() or case.one_hot)
    _assert_within_bound(function, case)  # measure() applies the soft-gradient condition


# --- shift invariance ------------------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(dtype=dtypes, data=st.data())
def test_shift_invariance_is_bitwise(dtype, data):
    rows, c = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 6))
    # k/8 with |k| <= 64 plus an integer shift |s| <= 8: every sum is exact in float16 and wider
    k = np.array(data.draw(st.lists(st.integers(-64, 64), min_size=rows * c, max_size=rows * c)))
    x = (k.reshape(rows, c) / 8).astype(dtype)
    s = np.array(data.draw(st.lists(st.integers(-8, 8), min_size=rows, max_size=rows)), dtype=dtype)[:, None]
    xs = x + s
    assert ((xs.astype(np.float64) - s) == x).all()  # the shift is exact
    y = np.array(data.draw(st.lists(st.integers(0, c - 1), min_size=rows, max_size=rows)))
    for f in (crossent.softmax, crossent.log_softmax):
        assert f(x).tobytes() == f(xs).tobytes()
    for red in ("none", "sum"):
        assert np.asarray(crossent.cross_entropy(x, y, reduction=red)).tobytes() == \
            np.asarray(crossent.cross_entropy(xs, y, reduction=red)).tobytes()
    la, ga = crossent.cross_entropy_value_and_grad(x, y, label_smoothing=0.25)
    lb, gb = crossent.cross_entropy_value_and_grad(xs, y, label_smoothing=0.25)
    assert la.tobytes() == lb.tobytes() and ga.tobytes() == gb.tobytes()


# --- permutation equivariance ----------------------------------------------------------------


def _close(a, b, function, dtype):
    """|a - b| within twice the bound, in ulps of b (nan where both are nan)."""
    b_ = bound(function, dtype).max_ulp
    err = np.asarray(ulp_error(np.asarray(a), np.asarray(b).astype(np.float64), dtype))
    assert (err <= 2 * b_).all(), (function, a, b, err)


@settings(max_examples=60, **SETTINGS)
@given(x=logits(masks=True, wild=True), data=st.data())
def test_permutation_equivariance(x, data):
    rows, c = x.shape
    perm = np.array(data.draw(st.permutations(range(c))))
    inv = np.argsort(perm)
    xp = x[:, perm]
    dt = x.dtype
    _close(crossent.softmax(xp)[:, inv], crossent.softmax(x), "softmax", dt)
    _close(crossent.log_softmax(xp)[:, inv], crossent.log_softmax(x), "log_softmax", dt)
    # logsumexp is invariant; compare under the unconditional part of its bound only where it applies
    lse, lsep = crossent.logsumexp(x), crossent.logsumexp(xp)
    if dt != np.float64:
        _close(lsep, lse, "logsumexp", dt)
    y = np.array([data.draw(st.sampled_from(list(np.flatnonzero(np.isfinite(r))))) for r in x])
    yp = inv[y]  # the same class after permutation
    assert (xp[np.arange(rows), yp] == x[np.arange(rows), y]).all()
    _close(crossent.cross_entropy(xp, yp, reduction="none"), crossent.cross_entropy(x, y, reduction="none"),
           "cross_entropy", dt)
    _, gp = crossent.cross_entropy_value_and_grad(xp, yp, reduction="sum")
    _, g = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    _close(gp[:, inv], g, "cross_entropy_grad", dt)


# --- loss >= 0 and gradient rows sum to 0 -----------------------------------------------------


@settings(max_examples=80, **SETTINGS)
@given(case=loss_case(wild=True))
# found by this test: the true loss is exp(-1e300) (rounds to 0); the kernel gave -1.5e-323
@example(case=Case(name="neg-subnormal", family="property", logits=np.array([[-1e300, 700.0]]),
                   target=np.array([1])))
@example(case=Case(name="neg-subnormal-2", family="property",
                   logits=np.array([[-np.inf, -9.223372036854776e18, 744.0, 0.0]]), target=np.array([2])))
def test_loss_is_non_negative(case):
    loss = crossent.cross_entropy(case.logits, case.target, **case.loss_options("none"))
    assert (loss >= 0).all(), (loss.tolist(), case.logits.dtype, case.logits.tolist(), case.target.tolist(),
                               case.weight, case.label_smoothing)
    for red in ("sum", "mean"):
        v = crossent.cross_entropy(case.logits, case.target, **case.loss_options(red))
        assert v >= 0 or (red == "mean" and np.isnan(v)), (red, v)  # mean of no items: nan


@settings(max_examples=80, **SETTINGS)
@given(case=loss_case())
def test_gradient_rows_sum_to_zero(case):
    """sum_i g_i = A sum_i p_i - sum_i a_i = 0 exactly; each computed g_i is within B ulp of the
    true one (B from the table; for soft targets B ulp of A p_i plus B ulp of a_i), so the exact
    sum of the computed row is at most sum_i of those ulps (x2 for the ulp of the computed
    value against the exact one)."""
    opts = case.loss_options("sum")
    _, g = crossent.cross_entropy_value_and_grad(case.logits, case.target, **opts)
    dt = case.dtype
    B = bound("cross_entropy_grad", dt).max_ulp
    g64 = g.astype(np.float64)
    if case.probability_target or case.label_smoothing:
        # a_i = w_i ((1-eps) t_i + eps/C) (labels: t one-hot); A p_i = a_i - g_i
        x = case.logits
        t = case.target if case.probability_target else np.eye(x.shape[1])[np.maximum(case.target, 0)]
        w = np.ones(x.shape[1]) if case.weight is None else case.weight.astype(np.float64)
        a = w * ((1 - case.label_smoothing) * t.astype(np.float64) + case.label_smoothing / x.shape[1])
        if not case.probability_target:
            a[case.target == -100] = 0
        scale = np.abs(a) + np.abs(a - g64)
    else:
        scale = np.abs(g64)
    for r in range(g.shape[0]):
        s = math.fsum(g64[r])  # the exact sum, rounded once
        tol = 2 * B * math.fsum(float(ulp(v, dt)) for v in scale[r]) + 2 * float(ulp(abs(s), np.float64))
        assert abs(s) <= tol, (r, s, tol, g[r], case)


# --- out= in place and out of place ---------------------------------------------------------------


@settings(max_examples=60, **SETTINGS)
@given(case=loss_case(wild=True), fortran=st.booleans())
def test_out_equals_out_of_place(case, fortran):
    x, t = case.logits, case.target
    opts = case.options
    ref_loss, ref_g = crossent.cross_entropy_value_and_grad(x, t, **opts)
    make = np.asfortranarray if fortran else np.ascontiguousarray
    out = make(np.full_like(x, 7))
    loss, g = crossent.cross_entropy_value_and_grad(x, t, out=out, **opts)
    assert g is out and np.asarray(loss).tobytes() == np.asarray(ref_loss).tobytes()
    assert out.tobytes(order="C") == ref_g.tobytes(order="C")
    z = make(x.copy())
    loss, g = crossent.cross_entropy_value_and_grad(z, t, out=z, **opts)  # in place
    assert g is z and np.asarray(loss).tobytes() == np.asarray(ref_loss).tobytes()
    assert z.tobytes(order="C") == ref_g.tobytes(order="C")
