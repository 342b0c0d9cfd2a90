"""Property tests (hypothesis) of the logit divergences ``kl_divergence_logits`` and
``js_divergence_logits``.

Properties:

* never negative, for any logits (masks, offsets, far-apart rows, every dtype);
* exactly 0 for equal rows and for rows that differ by one exactly representable constant;
* the Jensen–Shannon divergence at ``beta = 1/2`` is symmetric bit for bit (the kernel's
  terms for ``(p, q)`` are those for ``(q, p)`` with the roles swapped: the same products,
  the same sums), and ``JSD_beta(p, q) = JSD_{1 - beta}(q, p)`` within twice the bound;
* ``0 <= JSD_beta <= h(beta)`` (``proofs/10_logit_divergences.py``);
* shift invariance: adding one constant to a row of ``p`` (or of ``q``) leaves the value
  within twice the bound of the unshifted one (on a dyadic grid where the shift is exact);
* each row of each gradient sums to 0 (the softmax Jacobian's rows sum to 0), to
  ``8 C u max(1, max_j |g_j|)`` (for KL ``max(1, KL, max_j |g_j|)``: an entry
  ``P_j (delta_j - KL)`` carries about ``u P_j (|delta_j| + KL) <= u (2 KL + 1)``), and the
  sum adds its own.

Example counts are small; ``deadline=None`` because the first call of a specialization
compiles.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import crossent
from crossent._bounds import bound
from crossent.ulp import ulp_error

DTYPES = (np.float16, np.float32, np.float64)
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def pairs(draw, masks=True):
    """Two (rows, C) arrays of one dtype: q is p moved by a relative 10**-k (k = 0 .. 15), or
    independent; some -inf classes (in both rows, or in one), a per-row offset."""
    dt = np.dtype(draw(st.sampled_from(DTYPES)))
    rows, c = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([0.1, 1.0, 5.0, 30.0]))
    off = draw(st.sampled_from([0.0, 100.0, -1e3, 1e4])) if dt != np.float16 else 0.0
    p = off + scale * rng.normal(size=(rows, c))
    k = draw(st.integers(0, 16))
    q = p * (1 + 10.0**-k * rng.uniform(-1, 1, p.shape)) if k < 16 else off + scale * rng.normal(size=p.shape)
    if masks and c > 1 and draw(st.booleans()):
        i = draw(st.integers(0, c - 1))
        which = draw(st.sampled_from(["both", "p", "q"]))
        if which in ("both", "p"):
            p[:, i] = -np.inf
        if which in ("both", "q"):
            q[:, i] = -np.inf
    return p.astype(dt), q.astype(dt)


@settings(max_examples=80, **SETTINGS)
@given(pq=pairs(), beta=st.sampled_from([0.5, 0.1, 0.9, 0.0, 1.0, 1e-3]))
def test_divergences_are_non_negative(pq, beta):
    p, q = pq
    kl = crossent.kl_divergence_logits(p, q, reduction="none")
    js = crossent.js_divergence_logits(p, q, beta=beta, reduction="none")
    assert not (kl < 0).any() and not (js < 0).any()
    assert not np.isnan(js).any()  # every row has a finite entry in both p and q
    h = 0.0 if beta in (0.0, 1.0) else -beta * math.log(beta) - (1 - beta) * math.log1p(-beta)
    tol = 1 + bound("js_divergence_logits", p.dtype.name).max_ulp * float(np.finfo(p.dtype).eps)
    assert (js.astype(np.float64) <= h * tol).all()  # JSD_beta <= h(beta)


@settings(max_examples=60, **SETTINGS)
@given(pq=pairs(), shift=st.integers(-8, 8))
def test_equal_and_shifted_rows_give_exactly_zero(pq, shift):
    p, _q = pq
    p = np.round(p.astype(np.float64) * 8) / 8  # a dyadic grid: p + shift is exact
    p = p.astype(pq[0].dtype)
    shifted = (p.astype(np.float64) + shift).astype(p.dtype)
    exact = (shifted.astype(np.float64) - shift == p.astype(np.float64))[np.isfinite(p)].all()
    for q in (p.copy(), shifted) if exact else (p.copy(),):
        assert (crossent.kl_divergence_logits(p, q, reduction="none") == 0).all()
        for beta in (0.5, 0.3):
            assert (crossent.js_divergence_logits(p, q, beta=beta, reduction="none") == 0).all()


@settings(max_examples=60, **SETTINGS)
@given(pq=pairs(), beta=st.sampled_from([0.1, 0.3, 0.7]))
def test_js_symmetry(pq, beta):
    p, q = pq
    a = crossent.js_divergence_logits(p, q, reduction="none")
    b = crossent.js_divergence_logits(q, p, reduction="none")
    err = ulp_error(a, np.asarray(b).astype(np.float64), p.dtype)
    assert (err <= 2 * bound("js_divergence_logits", p.dtype.name).max_ulp).all()
    a = crossent.js_divergence_logits(p, q, beta=beta, reduction="none")
    b = crossent.js_divergence_logits(q, p, beta=1 - beta, reduction="none")
    if 1 - (1 - beta) == beta:  # 1 - beta is exact
        err = ulp_error(a, np.asarray(b).astype(np.float64), p.dtype)
        assert (err <= 2 * bound("js_divergence_logits", p.dtype.name).max_ulp).all()


@settings(max_examples=60, **SETTINGS)
@given(pq=pairs(masks=False), data=st.data())
def test_shift_invariance_within_bounds(pq, data):
    p, q = pq
    dt = p.dtype
    p = (np.round(p.astype(np.float64) * 8) / 8).astype(dt)
    q = (np.round(q.astype(np.float64) * 8) / 8).astype(dt)
    s = np.array(data.draw(st.lists(st.integers(-8, 8), min_size=p.shape[0], max_size=p.shape[0])),
                 dtype=np.float64)[:, None]
    ps = (p.astype(np.float64) + s).astype(dt)
    exact = (ps.astype(np.float64) - s == p.astype(np.float64)).all()
    if not exact:
        return  # the shifted row is not the same distribution in this format
    for f, name, kw in ((crossent.kl_divergence_logits, "kl_divergence_logits", {}),
                        (crossent.js_divergence_logits, "js_divergence_logits", {"beta": 0.3})):
        a = f(p, q, reduction="none", **kw)
        b = f(ps, q, reduction="none", **kw)
        err = ulp_error(a, np.asarray(b).astype(np.float64), dt)
        assert (err <= 2 * bound(name, dt.name).max_ulp).all(), (name, a, b)


@settings(max_examples=60, **SETTINGS)
@given(pq=pairs(), beta=st.sampled_from([0.5, 0.2]))
def test_gradient_rows_sum_to_zero(pq, beta):
    p, q = pq
    p = p.astype(np.float64)
    q = q.astype(np.float64)
    u = 2.0**-53
    _v, gp, gq = crossent.js_divergence_logits_value_and_grad(p, q, beta=beta, reduction="sum")
    c = p.shape[1]
    for g in (gp, gq):
        assert (np.abs(g.sum(axis=1)) <= 8 * c * u * np.maximum(1.0, np.abs(g).max(axis=1))).all(), g.sum(axis=1)
    v, gp, gq = crossent.kl_divergence_logits_value_and_grad(p, q, reduction="sum")
    kl = crossent.kl_divergence_logits(p, q, reduction="none")
    fin = np.isfinite(kl)
    # the entries P_j (delta_j - KL) carry u P_j (|delta_j| + KL) <= u (2 KL + 1) each
    scale = np.maximum(1.0, np.maximum(kl[fin], np.abs(gp[fin]).max(axis=1)))
    for g in (gp[fin], gq[fin]):
        assert (np.abs(g.sum(axis=1)) <= 8 * c * u * scale).all(), g.sum(axis=1)
