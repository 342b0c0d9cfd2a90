"""The correctly rounded float64 path of ``js_divergence_logits`` (``crossent.rounding("correct")``).

Where each expected value comes from: the oracle ``crossent.reference.js_divergence_logits``
(interval arithmetic in mpmath under a Ziv loop, correctly rounded by construction) per row;
the "sum" and "mean" reductions are the exact sum (mean) of the oracle's per-row floats
(``fractions``, rounded once by ``Fraction -> float``).

* the divergence corpus (``crossent.corpus.divergence``, size "ci", float64) for three
  ``beta``, and seeded near-equal rows ``q = p (1 + rho U(-1, 1))``: bit for bit;
* the kernel's double-double before rounding is within the bound it tests (a bound that is
  too small would pass the bit-for-bit tests until a row lands near a midpoint);
* the slow path forced (a bound the rounding test cannot pass): the oracle's rows, in place,
  counted; masked classes, dropped rows, another class axis.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _rounding
from crossent import reference as oracle
from crossent.kernels import divergence as kdiv
from crossent.kernels._base import DD_ACC, PAD
# the KL file's fixture (the default mode restored after each test) and row helpers
from test_correct_rounding_kl import (_divergence_corpus, _exact_sum, _fast_mode_around,  # noqa: F401
                                      _near_rows)


def _js(p, q, **kw):
    with crossent.rounding("correct"):
        return crossent.js_divergence_logits(p, q, **kw)


def _want(p, q, **kw):
    return np.asarray(oracle.js_divergence_logits(p, q, **kw), dtype=np.float64)


@pytest.mark.parametrize("beta", [0.5, 0.1, 0.9])
def test_corpus_correctly_rounded(beta):
    """Every float64 row of the divergence corpus (near-equal rows of every gap, ulp
    neighbours, identical and shifted rows, masks, large offsets, confident rows)."""
    cases = _divergence_corpus()
    assert len(cases) > 50
    bad = []
    for case in cases:
        got = _js(case.p, case.q, beta=beta, axis=case.axis, reduction="none")
        want = _want(case.p, case.q, beta=beta, axis=case.axis, reduction="none")
        if not same_bits(got, want):
            bad.append(case.name)
    assert not bad, bad[:10]


@pytest.mark.parametrize("beta", [0.5, 0.2])
def test_near_equal_rows_correctly_rounded(beta):
    before = list(_rounding.COUNTS.get("js_divergence_logits", [0, 0]))
    for label, p, q in _near_rows():
        got = _js(p, q, beta=beta, reduction="none")
        want = _want(p, q, beta=beta, reduction="none")
        assert same_bits(got, want), (label, np.flatnonzero(got != want)[:5])
    after = _rounding.COUNTS["js_divergence_logits"]
    assert after[0] - before[0] == 240


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_are_exact_sums_of_oracle_rows(reduction):
    _label, p, q = _near_rows(seed=8)[1]
    mask = np.ones(p.shape[0], dtype=bool)
    mask[::5] = False
    got = _js(p, q, beta=0.3, reduction=reduction, mask=mask)
    want = _exact_sum(_want(p, q, beta=0.3, reduction="none"), mask, reduction)
    assert same_bits(got, want)
    part = _js(p, q, beta=0.3, reduction="partial", mask=mask)
    assert same_bits(part.sum() if reduction == "sum" else part.mean(), want)


def test_masked_classes_and_dropped_rows():
    """-inf in both rows, in p only, in q only (JSD stays finite), rows without a finite
    entry (nan), a nan entry, rows that differ by a constant (exactly 0), dropped rows (0),
    beta 0 and 1 (exactly 0), another class axis; the oracle's values."""
    rng = np.random.default_rng(9)
    p = rng.normal(size=(12, 9))
    q = p + rng.normal(scale=1e-3, size=p.shape)
    p[0, :3] = q[0, :3] = -np.inf
    p[1, 4] = -np.inf
    p[2, :8] = -np.inf
    q[3, 2] = -np.inf
    p[4] = -np.inf  # no finite entry: nan
    q[5, 1] = np.nan
    p[6] = np.round(p[6] * 8) / 8
    q[6] = p[6] - 3.0  # exactly shifted: 0
    mask = np.ones(12, dtype=bool)
    mask[7] = False
    got = _js(p, q, reduction="none", mask=mask)
    want = _want(p, q, reduction="none", mask=mask)
    assert np.isnan(got[4]) and np.isnan(got[5]) and got[6] == 0.0 and got[7] == 0.0
    assert np.isfinite(got[3]) and got[3] > 0
    assert same_bits(got, want)
    for b in (0.0, 1.0):
        assert not _js(p[:4], q[:4], beta=b, reduction="none").any()
    p3 = np.moveaxis(p[8:].reshape(2, 2, 9), 2, 1)  # classes on axis 1
    q3 = np.moveaxis(q[8:].reshape(2, 2, 9), 2, 1)
    assert same_bits(_js(p3, q3, axis=1, reduction="none"),
                     _want(p3, q3, axis=1, reduction="none"))


def test_forced_slow_path(monkeypatch):
    """A bound the rounding test cannot pass sends every finite, non-zero row to the oracle:
    the results are the oracle's, in place, and counted (the exactly shifted rows are decided
    in the kernel)."""
    rng = np.random.default_rng(10)
    p = rng.normal(scale=3.0, size=(40, 17))
    q = rng.normal(scale=3.0, size=(40, 17))
    p[::7] = rng.integers(-9, 9, size=(6, 17))
    q[::7] = p[::7] + 2.0  # exactly shifted: 0
    q[3, 5] = -np.inf  # masked in q only: finite
    monkeypatch.setattr(_rounding, "kl_relative_bound", lambda C: 2.0**-30)
    before = list(_rounding.COUNTS.get("js_divergence_logits", [0, 0]))
    got = _js(p, q, beta=0.4, reduction="none")
    after = _rounding.COUNTS["js_divergence_logits"]
    assert after[0] - before[0] == 40
    assert after[1] - before[1] == 40 - 6
    assert same_bits(got, _want(p, q, beta=0.4, reduction="none"))


def test_fast_mode_and_narrow_formats_unchanged():
    """float32 takes the fast kernels in both modes; the value_and_grad variant's float64 value
    is the correctly rounded one too (its gradients: test_correct_rounding_kl_grad.py)."""
    rng = np.random.default_rng(11)
    p = rng.normal(size=(6, 5)).astype(np.float32)
    q = rng.normal(size=(6, 5)).astype(np.float32)
    fast = crossent.js_divergence_logits(p, q, reduction="none")
    assert same_bits(_js(p, q, reduction="none"), fast)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    with crossent.rounding("correct"):
        v, _gp, _gq = crossent.js_divergence_logits_value_and_grad(p64, q64, reduction="none")
    assert same_bits(v, _js(p64, q64, reduction="none"))


def _rows_dd(x, y, beta, rho):
    """``(vh, vl, cr)`` of ``_js_row_dd`` for each row (the kernel's compiled row function,
    called from Python)."""
    C = x.shape[1]
    n = -(-C // PAD) * PAD
    btp, bep, btq, beq = (np.zeros(n) for _ in range(4))
    acc = np.empty(DD_ACC)
    return np.array([kdiv._js_row_dd(a, b, beta, btp, bep, btq, beq, acc, rho)
                     for a, b in zip(x, y)]).reshape(-1, 3)


@pytest.mark.parametrize("beta", [0.5, 0.05])
def test_double_double_within_the_tested_bound(beta):
    """Before rounding, the kernel's ``vh + vl`` is within ``cr |vh + vl|`` of the oracle's
    exact value (``exact=True``) on the near-equal rows and part of the corpus; the worst
    ratio is reported in the failure message."""
    pairs = [(p, q) for _l, p, q in _near_rows(seed=12)[:2]]
    pairs += [(np.moveaxis(c.p, c.axis, -1).reshape(-1, c.p.shape[c.axis]),
               np.moveaxis(c.q, c.axis, -1).reshape(-1, c.p.shape[c.axis]))
              for c in _divergence_corpus()[::3]]
    worst = 0.0
    for p, q in pairs:
        out = _rows_dd(np.ascontiguousarray(p, dtype=np.float64),
                       np.ascontiguousarray(q, dtype=np.float64), beta,
                       _rounding.kl_relative_bound(p.shape[1]))
        exact = oracle.js_divergence_logits(p, q, beta=beta, reduction="none", exact=True)
        for (vh, vl, cr), e in zip(out, np.ravel(exact)):
            if cr == 0.0:
                continue
            with mpmath.workprec(300):
                err = abs(mpmath.mpf(vh) + mpmath.mpf(vl) - e)
                ratio = float(err / (cr * abs(mpmath.mpf(vh) + mpmath.mpf(vl)) + 2.0**-1070))
            worst = max(worst, ratio)
    assert worst <= 1.0, worst
