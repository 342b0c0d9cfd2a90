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
* the gradient with the options still refuses (no correctly rounded path).
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


def test_fast_mode_differs_and_the_gradient_refuses():
    """The mode changes float64 results on these rows (the fast kernel is within 3 ulp, not
    correctly rounded everywhere), and the gradient with an option has no correctly rounded
    path."""
    differs = 0
    for x, y, kw in _seeded(seed=7):
        fast = crossent.cross_entropy(x, y, reduction="none", **kw)
        differs += int((fast != _ce(x, y, reduction="none", **kw)).sum())
    assert differs > 0
    with crossent.rounding("correct"):
        with pytest.raises(NotImplementedError, match="cross_entropy_value_and_grad"):
            crossent.cross_entropy_value_and_grad(x, y, z_loss=1e-4)
