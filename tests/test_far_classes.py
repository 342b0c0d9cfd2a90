"""Classes far below their row's max: ``x_i - max x`` beyond -700, where the fast exp's
``P_i`` turns subnormal (below ``e^-708``) and then 0 (below ``e^-745``), and beyond -1100,
where the double-double exp of the correctly rounded paths clamps its argument.

A divergence term there can still be a normal number: KL's ``P_i delta_i`` when ``Q_i`` is
astronomically smaller (``delta_i`` up to ``2**1025``), e.g. ``p = [0, -d]``, ``q = [0, -1e300]``,
``KL ~ e^-d (1e300 - d - 1)``: ``3.7e-48`` at ``d = 800``, ``7.0e-222`` at ``d = 1200``. The
kernels used to return 0 there (fast path) or a clamped ``e^-1100`` term (correctly rounded
path: ``1.9e-178`` for every ``d > 1100``), and the entropy of ``[0, -1e300]`` came out as
``1.9e-178`` instead of 0.

Expected values: the oracle (:mod:`crossent.reference`, interval arithmetic under Ziv's loop)
for values; the gradients from the definition in mpmath at 4000 bits (enough for
``log(1 + e^-1500)``).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _bounds
from crossent import _rounding
from crossent import reference as ref
from crossent.ulp import ulp_error

#: gaps ``d`` of the far class of P (its ``P_2 ~ e^-d``): around the fast exp's subnormal
#: range (700-745), beyond it, at and beyond the double-double exp's clamp (1100), and where
#: the term underflows even with ``delta = 1e300`` (1500)
GAPS = (701.0, 720.0, 745.0, 800.0, 1100.0, 1200.0, 1400.0, 1500.0)


def _pairs():
    """``(name, p, q)``: two-class rows over ``GAPS``, and wider rows mixing far classes of P
    (900 and 2000 below the max, Q's far more so), a shared large negative "mask" value
    (-1e9 in both rows: ordinary, delta ~ 0), a true mask (-inf in both) and ordinary classes."""
    out = [("two classes", np.array([[0.0, -d] for d in GAPS]),
            np.array([[0.0, -1e300]] * len(GAPS)))]
    rng = np.random.default_rng(41)
    p = rng.normal(size=(6, 9))
    q = p + rng.normal(scale=0.1, size=p.shape)
    p[:, 3], q[:, 3] = -900.0, -1e40
    p[:, 5], q[:, 5] = -1e9, -1e9
    p[:, 6], q[:, 6] = -np.inf, -np.inf
    p[:2, 7], q[:2, 7] = -2000.0, -1e305
    p[4, 8], q[4, 8] = -1e9, -1e300  # P far, delta ~ 1e300: P_i delta_i underflows
    out.append(("mixed rows", p, q))
    return out


def _kl_grad_exact(p, q):
    """``P_i (delta_i - KL)`` per entry (the gradient in ``p`` of the sum of rows), mpmath at
    4000 bits from the definition; masked entries (``-inf``) 0."""
    g = np.empty(p.shape, dtype=object)
    with mpmath.workprec(4000):
        for n in range(p.shape[0]):
            fin = [i for i in range(p.shape[1]) if p[n, i] != -np.inf]
            x = {i: mpmath.mpf(float(p[n, i])) for i in fin}
            y = {i: mpmath.mpf(float(q[n, i])) for i in fin}
            lx = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in x.values()))
            ly = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in y.values()))
            P = {i: mpmath.exp(x[i] - lx) for i in fin}
            d = {i: (x[i] - lx) - (y[i] - ly) for i in fin}
            kl = mpmath.fsum(P[i] * d[i] for i in fin)
            for i in range(p.shape[1]):
                g[n, i] = P[i] * (d[i] - kl) if i in P else mpmath.mpf(0)
    return g


@pytest.mark.parametrize("name, p, q", _pairs())
def test_kl_far_classes_within_bound(name, p, q):
    """The fast float64 kernel (value, and the value of value_and_grad) within the table's
    bound of the oracle, row by row; the values are not 0 where the oracle's are not."""
    b = _bounds.bound("kl_divergence_logits", "float64")
    exact = ref.kl_divergence_logits(p, q, reduction="none", exact=True)
    got = crossent.kl_divergence_logits(p, q, reduction="none")
    v, _gp, _gq = crossent.kl_divergence_logits_value_and_grad(p, q, reduction="none")
    for out in (got, v):
        e = ulp_error(out, exact, "float64")
        assert e.max() <= b.max_ulp, f"{name}: {e.max()} ulp; {out} vs {np.asarray(exact, float)}"
    assert (got > 0).sum() == (np.asarray(exact, dtype=np.float64) > 0).sum() > 0


@pytest.mark.parametrize("name, p, q", _pairs())
def test_kl_far_classes_correctly_rounded(name, p, q):
    """In the rounding mode "correct", the oracle's bits: a class whose ``P_i`` the exp
    clamped counts with relative error 1 in the row's bound, so such a row goes to the
    oracle when that term matters (and is decided in the kernel when it does not)."""
    with crossent.rounding("correct"):
        got = crossent.kl_divergence_logits(p, q, reduction="none")
    assert same_bits(got, np.asarray(ref.kl_divergence_logits(p, q, reduction="none"),
                                      dtype=np.float64)), name


@pytest.mark.parametrize("name, p, q", _pairs())
def test_kl_far_classes_gradient(name, p, q):
    """The gradient in ``p`` entry by entry, relative: within ``2**-47`` of each exact entry
    (the value's 3 ulp enter ``P_i (delta_i - KL)`` through KL; ``exp``, the logs and the
    products add a few ulp), plus the normwise bound's ``8 u max(P, Q)`` for the entries of
    the ordinary classes. The far entries used to be 0."""
    _v, gp, _gq = crossent.kl_divergence_logits_value_and_grad(p, q, reduction="sum")
    exact = _kl_grad_exact(p, q)
    for n in range(p.shape[0]):
        for i in range(p.shape[1]):
            e = exact[n, i]
            err = abs(mpmath.mpf(float(gp[n, i])) - e)
            assert err <= 2.0**-47 * abs(e) + 2.0**-1074, (name, n, i, gp[n, i], mpmath.nstr(e, 8))


@pytest.mark.parametrize("d", [1100.0, 2000.0, 1e20, 1e300])
def test_entropy_far_class_is_zero(d):
    """``H([0, -d]) = e^-d (d + 1) + O(e^-2d)`` underflows to 0 for every ``d > 746``; the
    entropy (correctly rounded float64, both functions) and its gradient are 0, and the
    oracle returns 0 (it raised ``OverflowError`` on ``d >= 1e20``)."""
    x = np.array([[0.0, -d], [-d, 0.0]])
    assert np.array_equal(ref.entropy_logits(x), [0.0, 0.0])
    v, g = crossent.entropy_logits_value_and_grad(x)
    assert np.array_equal(crossent.entropy_logits(x), [0.0, 0.0])
    assert np.array_equal(v, [0.0, 0.0]) and np.array_equal(g, np.zeros_like(x))
    with crossent.rounding("correct"):
        assert np.array_equal(crossent.entropy_logits(x), [0.0, 0.0])


def test_entropy_special_rows_do_not_reach_the_oracle():
    """The correctly rounded entropy kernel tells a special row (nan, +inf, no finite entry:
    nan, as in every mode) from a row whose rounding it cannot decide: only the latter are
    counted as slow and recomputed by the oracle."""
    x = np.array([[np.nan, 1.0, 2.0], [np.inf, 1.0, 2.0], [-np.inf, -np.inf, -np.inf],
                  [0.0, 1.0, 2.0]])
    for fn in (crossent.entropy_logits, lambda a: crossent.entropy_logits_value_and_grad(a)[0]):
        before = list(_rounding.COUNTS.get("entropy_logits", [0, 0]))
        out = fn(x)
        after = _rounding.COUNTS["entropy_logits"]
        assert after[0] - before[0] == 4 and after[1] - before[1] == 0
        assert np.isnan(out[:3]).all() and out[3] == ref.entropy_logits(x[3])
    _v, g = crossent.entropy_logits_value_and_grad(x)
    assert np.isnan(g[:3]).all() and np.isfinite(g[3]).all()
