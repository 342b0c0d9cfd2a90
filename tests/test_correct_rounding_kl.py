"""The correctly rounded float64 path of ``kl_divergence_logits`` (``crossent.rounding("correct")``).

Where each expected value comes from: the oracle ``crossent.reference.kl_divergence_logits``
(interval arithmetic in mpmath, correctly rounded by construction) per row; the "sum" and
"mean" reductions are the exact sum (mean) of the oracle's per-row floats (``fractions``,
rounded once by ``Fraction -> float``); ``phi``'s helpers against mpmath at 300 bits.

* the divergence corpus (``crossent.corpus.divergence``, size "ci", float64) and seeded
  near-equal rows ``q = p (1 + rho U(-1, 1))``, ``rho`` from ``1e-12`` to ``0.3``: bit for bit;
* the kernel's double-double before rounding is within the bound it tests (a bound that is
  too small would pass the bit-for-bit tests until a row lands near a midpoint);
* the slow path forced (a bound the rounding test cannot pass): the oracle's rows, in place,
  counted; masked classes, ``P_i > 0 = Q_i`` (+inf), dropped rows, other axes.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _rounding
from crossent import reference as oracle
from crossent.kernels import divergence as kdiv
from crossent.kernels._base import DD_ACC, PAD


@pytest.fixture(autouse=True)
def _fast_mode_around():
    prev = crossent.get_rounding()
    yield
    crossent.set_rounding(prev)


def _kl(p, q, **kw):
    with crossent.rounding("correct"):
        return crossent.kl_divergence_logits(p, q, **kw)


def _want(p, q, **kw):
    return np.asarray(oracle.kl_divergence_logits(p, q, **kw), dtype=np.float64)


def _near_rows(seed=7):
    """Seeded near-equal rows: ``P = softmax(p)``, ``Q = P (1 + rho U(-1, 1))`` (unnormalized:
    the logits are ``log Q``), ``rho`` log-spaced from 1e-12 to 0.3; 3, 30 and 200 classes."""
    rng = np.random.default_rng(seed)
    out = []
    for C, n in ((3, 80), (30, 120), (200, 40)):
        p = rng.normal(scale=2.0, size=(n, C))
        P = np.exp(p - p.max(axis=1, keepdims=True))
        rho = np.exp(rng.uniform(np.log(1e-12), np.log(0.3), size=(n, 1)))
        q = np.log(P * (1.0 + rho * rng.uniform(-1.0, 1.0, size=(n, C))))
        out.append((f"near C={C}", p, q))
    return out


def _divergence_corpus():
    from crossent.corpus import divergence as dcorpus

    return dcorpus.cases(size="ci", seed=0, dtype="float64")


def test_corpus_correctly_rounded():
    """Every float64 row of the divergence corpus (near-equal rows of every gap, ulp
    neighbours, identical and shifted rows, masks, large offsets, confident rows)."""
    cases = _divergence_corpus()
    assert len(cases) > 50
    bad = []
    for case in cases:
        got = _kl(case.p, case.q, axis=case.axis, reduction="none")
        want = _want(case.p, case.q, axis=case.axis, reduction="none")
        if not same_bits(got, want):
            bad.append(case.name)
    assert not bad, bad[:10]


def test_near_equal_rows_correctly_rounded():
    before = list(_rounding.COUNTS.get("kl_divergence_logits", [0, 0]))
    for label, p, q in _near_rows():
        got = _kl(p, q, reduction="none")
        want = _want(p, q, reduction="none")
        assert same_bits(got, want), (label, np.flatnonzero(got != want)[:5])
    after = _rounding.COUNTS["kl_divergence_logits"]
    assert after[0] - before[0] == 240


def _exact_sum(vals, keep, reduction):
    tot = sum((Fraction(float(v)) for v in np.asarray(vals)[keep]), Fraction(0))
    return float(tot if reduction == "sum" else tot / int(keep.sum()))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_reductions_are_exact_sums_of_oracle_rows(reduction):
    _label, p, q = _near_rows(seed=8)[1]
    mask = np.ones(p.shape[0], dtype=bool)
    mask[::5] = False
    got = _kl(p, q, reduction=reduction, mask=mask)
    want = _exact_sum(_want(p, q, reduction="none"), mask, reduction)
    assert same_bits(got, want)
    part = _kl(p, q, reduction="partial", mask=mask)
    assert same_bits(part.sum() if reduction == "sum" else part.mean(), want)


def test_masked_classes_inf_and_dropped_rows():
    """-inf in both rows, in p only (the term ``Q_i``), in q only (+inf), rows without a finite
    entry (nan), dropped rows (0), another class axis; the oracle's values."""
    rng = np.random.default_rng(9)
    p = rng.normal(size=(12, 9))
    q = p + rng.normal(scale=1e-3, size=p.shape)
    p[0, :3] = q[0, :3] = -np.inf
    p[1, 4] = -np.inf
    p[2, :8] = -np.inf
    q[3, 2] = -np.inf  # P_2 > 0 = Q_2: +inf
    p[4] = -np.inf  # no finite entry: nan
    q[5, 1] = np.nan
    p[6, 1:] = -np.inf
    q[6, 1:] = -np.inf  # one class each: 0
    mask = np.ones(12, dtype=bool)
    mask[7] = False
    got = _kl(p, q, reduction="none", mask=mask)
    want = _want(p, q, reduction="none", mask=mask)
    assert got[3] == np.inf and np.isnan(got[4]) and np.isnan(got[5]) and got[7] == 0.0
    assert same_bits(got, want)
    p3 = np.moveaxis(p[8:].reshape(2, 2, 9), 2, 1)  # classes on axis 1
    q3 = np.moveaxis(q[8:].reshape(2, 2, 9), 2, 1)
    assert same_bits(_kl(p3, q3, axis=1, reduction="none"),
                     _want(p3, q3, axis=1, reduction="none"))


def test_forced_slow_path(monkeypatch):
    """A bound the rounding test cannot pass sends every finite, non-zero row to the oracle:
    the results are the oracle's, in place, and counted (the +inf and the exact-zero rows are
    decided in the kernel)."""
    rng = np.random.default_rng(10)
    p = rng.normal(scale=3.0, size=(40, 17))
    q = rng.normal(scale=3.0, size=(40, 17))
    p[::7] = rng.integers(-9, 9, size=(6, 17))
    q[::7] = p[::7] + 2.0  # exactly shifted: 0
    q[3, 5] = -np.inf  # +inf
    monkeypatch.setattr(_rounding, "kl_relative_bound", lambda C: 2.0**-30)
    before = list(_rounding.COUNTS.get("kl_divergence_logits", [0, 0]))
    got = _kl(p, q, reduction="none")
    after = _rounding.COUNTS["kl_divergence_logits"]
    assert after[0] - before[0] == 40
    assert after[1] - before[1] == 40 - 6 - 1
    assert same_bits(got, _want(p, q, reduction="none"))


def test_fast_mode_and_narrow_formats_unchanged():
    """float32 takes the fast kernels in both modes; the value_and_grad variant's float64 value
    is the correctly rounded one too (its gradients: test_correct_rounding_kl_grad.py)."""
    rng = np.random.default_rng(11)
    p = rng.normal(size=(6, 5)).astype(np.float32)
    q = rng.normal(size=(6, 5)).astype(np.float32)
    fast = crossent.kl_divergence_logits(p, q, reduction="none")
    assert same_bits(_kl(p, q, reduction="none"), fast)
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    with crossent.rounding("correct"):
        v, _gp, _gq = crossent.kl_divergence_logits_value_and_grad(p64, q64, reduction="none")
    assert same_bits(v, _kl(p64, q64, reduction="none"))


# ---------------------------------------------------------------------------------------
# the bound itself


def _rows_dd(x, y, rho):
    """``(kh, kl, cr)`` of ``_kl_row_dd`` for each row (the kernel's compiled row function,
    called from Python: no test-side compiled code that a stale cache could keep)."""
    C = x.shape[1]
    n = -(-C // PAD) * PAD
    btp, bep, btq, beq = (np.zeros(n) for _ in range(4))
    acc = np.empty(DD_ACC)
    return np.array([kdiv._kl_row_dd(a, b, btp, bep, btq, beq, acc, rho)
                     for a, b in zip(x, y)]).reshape(-1, 3)


def test_double_double_within_the_tested_bound():
    """Before rounding, the kernel's ``kh + kl`` is within ``cr |kh + kl|`` of the oracle's
    exact value (``exact=True``) on the near-equal rows and the corpus; the worst ratio is
    reported in the failure message. Fails, e.g., with ``PHI_SERIES_REL`` or the ``l`` error
    of the s2 route taken 2**8 too small."""
    pairs = [(p, q) for _l, p, q in _near_rows(seed=12)[:2]]
    pairs += [(np.moveaxis(c.p, c.axis, -1).reshape(-1, c.p.shape[c.axis]),
               np.moveaxis(c.q, c.axis, -1).reshape(-1, c.p.shape[c.axis]))
              for c in _divergence_corpus()[::3]]
    worst = 0.0
    for p, q in pairs:
        out = _rows_dd(np.ascontiguousarray(p, dtype=np.float64),
                       np.ascontiguousarray(q, dtype=np.float64),
                       _rounding.kl_relative_bound(p.shape[1]))
        exact = oracle.kl_divergence_logits(p, q, reduction="none", exact=True)
        for (kh, kl, cr), e in zip(out, np.ravel(exact)):
            if cr == 0.0:
                continue
            with mpmath.workprec(300):
                err = abs(mpmath.mpf(kh) + mpmath.mpf(kl) - e)
                ratio = float(err / (cr * abs(mpmath.mpf(kh) + mpmath.mpf(kl)) + 2.0**-1070))
            worst = max(worst, ratio)
    assert worst <= 1.0, worst


def test_phi_helpers_against_mpmath():
    """``phi(t) = t + e^{-t} - 1`` at double-double ``t``: the series (``|t| < 1/8``, every
    tier) within ``PHI_SERIES_REL``; the exponential route (``-2 < t``) within its stated
    ``PHI_EXP_REL e^{-t} + 2**-100 (|t - 1| + e^{-t})`` (mpmath at 300 bits)."""
    rng = np.random.default_rng(13)
    th = np.concatenate([
        rng.uniform(-1, 1, 300) * 2.0 ** rng.integers(-40, -3, 300),  # the series' tiers
        rng.uniform(-0.125, 0.125, 100), np.array([0.125 - 2**-50, -0.125 + 2**-50]),
        rng.uniform(-2.0, -0.125, 100), rng.uniform(0.125, 3.0, 100),
        rng.uniform(3.0, 800.0, 50),
    ])
    tl = np.spacing(th) * rng.uniform(-0.5, 0.5, th.size)  # a low part below ulp(th)/2
    out = [kdiv._phi_series_dd(a, b) if abs(a) < 0.125 else kdiv._phi_exp_dd(a, b)[:2]
           for a, b in zip(th.tolist(), tl.tolist())]
    worst_s = worst_e = 0.0
    with mpmath.workprec(300):
        for a, b, (fh, fl) in zip(th, tl, out):
            t = mpmath.mpf(a) + mpmath.mpf(b)
            exact = t + mpmath.exp(-t) - 1
            err = abs(mpmath.mpf(fh) + mpmath.mpf(fl) - exact)
            if abs(a) < 0.125:
                worst_s = max(worst_s, float(err / exact) / kdiv.PHI_SERIES_REL)
            else:
                E = mpmath.exp(-t)
                bound = kdiv.PHI_EXP_REL * E + 2.0**-100 * (abs(t - 1) + E)
                worst_e = max(worst_e, float(err / bound))
    assert worst_s <= 1.0 and worst_e <= 1.0, (worst_s, worst_e)
