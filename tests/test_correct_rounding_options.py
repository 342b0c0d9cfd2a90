"""The correctly rounded float64 path of ``cross_entropy`` with ``z_loss`` and
``logit_softcap`` (``crossent.rounding("correct")``).

Where each expected value comes from: the oracle ``crossent.reference.cross_entropy`` with
the same options (interval arithmetic in mpmath under a Ziv loop: the correctly rounded value
of the exact composite function of the given floats, ``c tanh(x / c)`` and ``z lse^2``
included); "sum" and "mean" are the exact sums (means) of the oracle's per-item floats
(``fractions``, rounded once).

* every float64 case of the options corpus (``crossent.corpus.options``, size "ci": every
  family, class indices and probabilities, weights, smoothing, ignored items): bit for bit;
* seeded rows with both options at several caps and z: bit for bit;
* the slow path forced: the oracle's rows, in place, counted;
* the gradient with the options (``cross_entropy_value_and_grad``): the oracle's
  ``cross_entropy_value_and_grad`` bit for bit on the corpus, seeded rows and special
  entries; the soft-cap's derivative ``_dz_dd`` against mpmath at 200 bits.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _rounding
from crossent import reference as oracle
from crossent.corpus import options as corpus


@pytest.fixture(autouse=True)
def _fast_mode_around():
    prev = crossent.get_rounding()
    yield
    crossent.set_rounding(prev)


def _kw(case):
    kw = dict(case.options)
    kw.pop("reduction", None)
    return kw


def _ce(x, t, **kw):
    with crossent.rounding("correct"):
        return crossent.cross_entropy(x, t, **kw)


def _want(x, t, **kw):
    return np.asarray(oracle.cross_entropy(x, t, **kw), dtype=np.float64)


def test_options_corpus_correctly_rounded():
    cases = corpus.cases("ci", seed=0, dtype="float64")
    assert len(cases) > 30
    bad = []
    for case in cases:
        got = _ce(case.logits, case.target, reduction="none", **_kw(case))
        want = _want(case.logits, case.target, reduction="none", **_kw(case))
        if not same_bits(got, want):
            bad.append((case.name, np.flatnonzero(got != want)[:3]))
    assert not bad, bad[:10]


def _seeded(seed=5):
    rng = np.random.default_rng(seed)
    out = []
    for C, cap, z in ((7, 30.0, 1e-4), (50, 5.0, 0.0), (300, None, 1e-3), (20, 0.5, 1e-2)):
        x = rng.normal(scale=4.0, size=(60, C))
        x[::9, 0] = 40.0  # confident rows (capped: close to the cap)
        y = rng.integers(0, C, 60)
        y[::9] = 0
        out.append((x, y, {"z_loss": z, "logit_softcap": cap}))
    return out


def test_seeded_rows_and_exact_reductions():
    before = list(_rounding.COUNTS.get("cross_entropy", [0, 0]))
    for x, y, kw in _seeded():
        got = _ce(x, y, reduction="none", **kw)
        want = _want(x, y, reduction="none", **kw)
        assert same_bits(got, want), (kw, np.flatnonzero(got != want)[:5])
        tot = sum((Fraction(float(v)) for v in want), Fraction(0))
        assert same_bits(_ce(x, y, reduction="sum", **kw), float(tot))
        assert same_bits(_ce(x, y, reduction="mean", **kw), float(tot / len(want)))
    after = _rounding.COUNTS["cross_entropy"]
    assert after[0] - before[0] == 3 * 240  # none, sum, mean


def test_forced_slow_path(monkeypatch):
    """A bound the rounding test cannot pass sends every row to the oracle: its values, in
    place, and counted (ignored items are 0 and decided)."""
    x, y, kw = _seeded(seed=6)[0]
    y = y.copy()
    y[:5] = -100
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-30)
    before = list(_rounding.COUNTS.get("cross_entropy", [0, 0]))
    got = _ce(x, y, reduction="none", **kw)
    after = _rounding.COUNTS["cross_entropy"]
    assert after[0] - before[0] == 60
    assert after[1] - before[1] == 55
    assert same_bits(got, _want(x, y, reduction="none", **kw))


def test_fast_mode_differs():
    """The mode changes float64 results on these rows (the fast kernel is within 3 ulp, not
    correctly rounded everywhere)."""
    differs = 0
    for x, y, kw in _seeded(seed=7):
        fast = crossent.cross_entropy(x, y, reduction="none", **kw)
        differs += int((fast != _ce(x, y, reduction="none", **kw)).sum())
    assert differs > 0


# ---------------------------------------------------------------------------------------
# the gradient with the options: crossent.reference.cross_entropy_value_and_grad (interval
# arithmetic, the same options; "mean" divides by the exact weight total, rounded once)


def _vg(x, t, **kw):
    with crossent.rounding("correct"):
        return crossent.cross_entropy_value_and_grad(x, t, **kw)


def _check_grad(x, t, **kw):
    """Bit for bit against the oracle. Where the oracle cannot certify an entry (it warns),
    the values only: see test_gradient_on_the_options_corpus."""
    import warnings

    loss, g = _vg(x, t, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", oracle.CorrectRoundingWarning)
        wl, wg = oracle.cross_entropy_value_and_grad(x, t, **kw)
    bad = np.argwhere(~((g == wg) | (np.isnan(g) & np.isnan(wg))))
    assert not bad.size, (kw, bad[:5])
    if not caught:
        assert same_bits(g, wg), kw
    if kw.get("reduction") == "none":
        assert same_bits(loss, wl)
    return bool(caught)


def test_gradient_on_the_options_corpus():
    """Every float64 case of the options corpus (every family: confident, saturated by the
    cap, huge and tiny logits, masked classes, probabilities, weights, smoothing, ignored
    items) with its own reduction: the gradient bit for bit.

    Except the signs of some zeros in the four "softcap-huge" cases (logits near 1e300): there
    ``dz = sech^2(x / c)`` is far below the least subnormal, the entry is ``+-0`` with the
    sign of ``A' p_i - a_i``, and the oracle's interval for ``dz`` reaches 0, so it cannot
    certify the zero's sign (it warns and returns its best guess). The kernel takes the sign
    of ``A' p_i - a_i`` when its error bound cannot flip it; those cases compare values only,
    and the test asserts that no other case needs it."""
    cases = corpus.cases("ci", seed=0, dtype="float64")
    uncertified = [case.name for case in cases
                   if _check_grad(case.logits, case.target,
                                  reduction=case.options.get("reduction", "mean"), **_kw(case))]
    assert all(n.startswith("softcap-huge/") for n in uncertified), uncertified


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_gradient_on_seeded_rows(reduction):
    """Seeded rows at several caps and z (confident rows included) and, for "mean", class
    weights: the divisor is their exact total. The kernel decides nearly every row: at most
    2 of the 240 go to the oracle (measured: 0; a bound far too wide would send them all)."""
    before = list(_rounding.COUNTS.get("cross_entropy_value_and_grad", [0, 0]))
    for x, y, kw in _seeded(seed=11):
        if reduction == "mean":
            kw = dict(kw, weight=np.linspace(0.25, 3.0, x.shape[1]))
        _check_grad(x, y, reduction=reduction, **kw)
    after = _rounding.COUNTS["cross_entropy_value_and_grad"]
    assert after[0] - before[0] == 240 and after[1] - before[1] <= 2


def test_gradient_special_entries():
    """Logits at +-inf and nan with and without a cap (dz = 0 at +-inf with a cap, a masked
    class without one), a class 3000 below the max (the exponential's clamp), logits far
    beyond the cap (dz from e^-2a), tiny logits, ignored items, probability targets."""
    rng = np.random.default_rng(12)
    x = rng.normal(scale=4.0, size=(10, 6))
    x[0, 3] = -np.inf
    x[1, 2] = np.inf
    x[2, 4] = np.nan
    x[3, 5] = -3000.0
    x[4] = [300.0, -250.0, 90.0, 1.0, -60.0, 0.5]
    x[5] = 1e-300
    y = rng.integers(0, 6, 10)
    y[6] = -100
    for kw in ({"logit_softcap": 2.0, "z_loss": 1e-4}, {"z_loss": 1e-2}):
        xx = x.copy()
        if "logit_softcap" not in kw:
            xx[1, 2] = 5.0  # +inf without a cap: a nan row, checked with the cap only
        _check_grad(xx, y, reduction="none", **kw)
    t = rng.dirichlet(np.ones(6), 10)
    _check_grad(x[3:], t[3:], reduction="mean", logit_softcap=5.0, z_loss=1e-3)


def test_gradient_forced_slow_path(monkeypatch):
    """A bound the rounding test cannot pass sends every row to the oracle (with the batch's
    exact divisor): the oracle's rows, in place, and counted."""
    x, y, kw = _seeded(seed=13)[0]
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-30)
    before = list(_rounding.COUNTS.get("cross_entropy_value_and_grad", [0, 0]))
    _check_grad(x[:12], y[:12], reduction="mean", **kw)
    after = _rounding.COUNTS["cross_entropy_value_and_grad"]
    assert after[0] - before[0] == 12 and after[1] - before[1] == 12


def test_dz_dd_against_mpmath():
    """``_dz_dd`` (the soft-cap's derivative, scaled by 2**600) within its stated relative
    error of ``sech^2(x / c)`` at 200 bits, on every branch; 0 for +-inf and ``[0, ub]``
    beyond 550 (x beyond 1650 here)."""
    import mpmath

    from crossent.kernels import options as kopt

    c = 3.0
    xs = [1e-300, 1e-17, 0.3, -1.0, 7.5, 100.0, -119.9, 120.1, 300.0, -1500.0, 1649.0]
    with mpmath.workprec(200):
        for x in xs:
            h, lo, rel, ub = kopt._dz_dd(x, c)
            exact = mpmath.sech(mpmath.mpf(x) / c) ** 2 * mpmath.mpf(2) ** 600
            assert ub == 0.0
            assert abs((mpmath.mpf(h) + lo) - exact) <= rel * exact, x
        h, lo, rel, ub = kopt._dz_dd(3400.0, c)
        assert h == 0.0 and 0 < mpmath.sech(mpmath.mpf(3400) / c) ** 2 * 2**600 <= ub
        assert kopt._dz_dd(np.inf, c) == (0.0, 0.0, 0.0, 0.0)
