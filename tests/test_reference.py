"""Tests of crossent.reference, the correctly rounded mpmath oracle.

Provenance of expected values:

* closed forms (log K for uniform logits, 1/K for the softmax of equal logits, entropies of
  dyadic distributions, log1p(exp(-d)) for two classes), evaluated independently with
  mpmath's high-level API at 300 digits / 1000-3000 bits and rounded with
  ``crossent.ulp.round_to_dtype``;
* a *naive* evaluation of each definition (``log(sum(exp(x)))``, ``exp(x - lse)``,
  ``-sum(w t log p)``, ...) at 3000 bits, rounded with ``round_to_dtype``: a different formula
  from the oracle's cancellation-free one, at far higher precision, on seeded random inputs.

The oracle must agree bit for bit (correct rounding is unique).
"""

from __future__ import annotations

import time
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from mpmath import mp, mpf

from crossent import reference as R
from crossent.ulp import round_to_dtype, ulp_error

DTYPES = [np.float16, np.float32, np.float64]
HP = 3000  # bits of the naive high-precision evaluations


def bits_equal(a, b):
    a = np.asarray(a)
    b = np.asarray(b)
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    u = np.dtype(f"u{a.dtype.itemsize}")
    an, bn = np.isnan(a), np.isnan(b)
    return bool(np.array_equal(an, bn) and np.array_equal(a.view(u)[~an], b.view(u)[~bn]))


def rnd(values, dtype, shape=None):
    out = round_to_dtype(np.asarray(values, dtype=object), dtype)
    return out.reshape(shape) if shape is not None else out


# --- naive definitions at HP bits -------------------------------------------------------------


def naive_lse(row):
    with mp.workprec(HP):
        if any(mpmath.isnan(mpf(float(v))) or v == np.inf for v in row):
            return mpf("nan")
        return mpmath.log(mpmath.fsum(mpmath.exp(mpf(float(v))) for v in row))


def naive_softmax(row):
    with mp.workprec(HP):
        s = mpmath.fsum(mpmath.exp(mpf(float(v))) for v in row)
        return [mpmath.exp(mpf(float(v))) / s for v in row]


def naive_log_softmax(row):
    lse = naive_lse(row)
    with mp.workprec(HP):
        return [mpf(float(v)) - lse for v in row]


def naive_targets(C, y=None, t=None, eps=0.0):
    """Exact target rows (Fractions): one-hot or probabilities, label smoothed."""
    e = Fraction(float(eps))
    if y is not None:
        return [(1 - e) * (c == y) + e / C for c in range(C)]
    return [(1 - e) * Fraction(float(v)) + e / C for v in t]


def naive_item_loss(row, targ, weight=None):
    ls = naive_log_softmax(row)
    with mp.workprec(HP):
        tot = mpf(0)
        for c, tc in enumerate(targ):
            a = mpf(tc.numerator) / tc.denominator * (mpf(float(weight[c])) if weight is not None else 1)
            if a != 0:
                tot -= a * ls[c]
        return tot


def naive_grad_row(row, targ, weight, scale):
    p = naive_softmax(row)
    with mp.workprec(HP):
        a = [mpf(tc.numerator) / tc.denominator * (mpf(float(weight[c])) if weight is not None else 1)
             for c, tc in enumerate(targ)]
        A = mpmath.fsum(a)
        return [scale * (A * p[i] - a[i]) for i in range(len(row))]


# --- closed forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("K", [1, 2, 3, 7, 1000])
def test_uniform_logits(dtype, K):
    m = dtype(0.75)
    x = np.full((2, K), m, dtype=dtype)
    with mp.workprec(HP):
        lse = mpf(float(m)) + mpmath.log(K)  # closed form m + log K
        logk = mpmath.log(K)
    assert bits_equal(R.logsumexp(x), rnd([lse, lse], dtype))
    # loss = log K exactly (K = 1: 0)
    assert bits_equal(R.cross_entropy(x, np.zeros(2, dtype=np.int64), reduction="none"),
                      rnd([logk, logk], dtype))
    # softmax = 1/K, rounded from the exact rational
    assert bits_equal(R.softmax(x), rnd([Fraction(1, K)] * (2 * K), dtype, (2, K)))
    assert bits_equal(R.log_softmax(x), rnd([-logk] * (2 * K), dtype, (2, K)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [0.0, 1e-8, 0.5, 3.0, 30.0, 700.0])
def test_two_class_loss_is_log1p_exp(dtype, d):
    if dtype == np.float16 and d > 60000:
        pytest.skip("not representable")
    dd = dtype(d)
    x = np.array([[dd, dtype(0)]], dtype=dtype)
    with mp.workdps(300):  # independent: log1p(exp(-d)) at 300 digits
        ref = mpmath.log1p(mpmath.exp(-mpf(float(dd))))
    assert bits_equal(R.cross_entropy(x, np.array([0]), reduction="sum"), rnd(ref, dtype)[()])
    with mp.workdps(300):
        ref1 = mpf(float(dd)) + mpmath.log1p(mpmath.exp(-mpf(float(dd))))
    assert bits_equal(R.cross_entropy(x, np.array([1]), reduction="sum"), rnd(ref1, dtype)[()])


def test_entropy_dyadic_closed_forms():
    p = np.array([0.5, 0.25, 0.25])
    assert R.entropy(p, base=2) == 1.5  # -(1/2 log2 1/2 + 2 * 1/4 log2 1/4) = 3/2 exactly
    assert R.entropy(p, base=4) == 0.75  # exact rational in base 2**2
    with mp.workprec(HP):
        nats = mpf(1.5) * mpmath.log(2)
        bans = mpf(1.5) * mpmath.log(2) / mpmath.log(10)
    assert R.entropy(p) == round_to_dtype(nats, np.float64)
    assert R.entropy(p, base=10) == round_to_dtype(bans, np.float64)
    assert R.entropy(p.astype(np.float32), base=2) == np.float32(1.5)
    # one-hot and 0 log 0 = 0
    assert R.entropy(np.array([0.0, 1.0, 0.0])) == 0.0
    # uniform over 8: log2 8 = 3 bits
    assert R.entropy(np.full(8, 0.125), base=2) == 3.0


def test_kl_and_cross_entropy_pmf_closed_forms():
    p = np.array([0.5, 0.5])
    q = np.array([0.25, 0.75])
    with mp.workprec(HP):
        kl = mpf(0.5) * mpmath.log(2) + mpf(0.5) * mpmath.log(mpf(2) / 3)
        ce = -(mpf(0.5) * mpmath.log(mpf(1) / 4) + mpf(0.5) * mpmath.log(mpf(3) / 4))
        kl2 = kl / mpmath.log(2)
    assert R.kl_divergence(p, q) == round_to_dtype(kl, np.float64)
    assert R.kl_divergence(p, q, base=2) == round_to_dtype(kl2, np.float64)
    assert R.cross_entropy_pmf(p, q) == round_to_dtype(ce, np.float64)
    assert R.kl_divergence(p, p) == 0.0
    # p > 0 where q = 0: +inf; p = 0 where q = 0: 0
    assert R.kl_divergence(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    assert R.kl_divergence(np.array([1.0, 0.0]), np.array([1.0, 0.0])) == 0.0
    assert R.cross_entropy_pmf(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    # unnormalized q with an exactly zero KL: 1/2 log 2 + 1/2 log(1/2) = 0
    assert R.kl_divergence(np.array([0.5, 0.5]), np.array([0.25, 1.0])) == 0.0


def test_empirical_pmf_and_log_likelihood():
    s = np.array([0, 1, 1, 2, 2, 2])
    p = R.empirical_pmf(s, 4)
    assert p.dtype == np.float64
    assert list(p) == [1 / 6, 2 / 6, 3 / 6, 0.0]  # n_k / N, each a single correct rounding
    q = np.array([0.5, 0.25, 0.25])
    with mp.workprec(HP):
        ll = mpmath.log(0.5) + 2 * mpmath.log(0.25) + 3 * mpmath.log(0.25)
    assert R.categorical_log_likelihood(q, s[:6]) == round_to_dtype(ll, np.float64)
    assert R.categorical_log_likelihood(np.array([1.0, 0.0]), np.array([0, 0])) == 0.0
    assert R.categorical_log_likelihood(np.array([1.0, 0.0]), np.array([1])) == -np.inf
    assert np.isnan(R.empirical_pmf(np.array([], dtype=np.int64), 3)).all()
    # the likelihood identity l(q) = N sum p log q (docs/design.md#mathematics), with the exact PMF
    pe = R.empirical_pmf(s, 3, exact=True)
    with mp.workprec(HP):
        lhs = 6 * mpmath.fsum(pe[k] * mpmath.log(mpf(float(q[k]))) for k in range(3))
        assert abs(lhs - R.categorical_log_likelihood(q, s, exact=True)) < mpf(2) ** -120


# --- random agreement with naive HP evaluation -------------------------------------------------


def random_logits(rng, dtype, shape, scale):
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_family_random(dtype):
    rng = np.random.default_rng(1234)
    for scale in (0.5, 5.0, 40.0):
        x = random_logits(rng, dtype, (4, 9), scale)
        x[1, 3] = -np.inf  # a mask
        lse = R.logsumexp(x)
        sm = R.softmax(x)
        lsm = R.log_softmax(x)
        for i in range(4):
            assert bits_equal(lse[i], rnd(naive_lse(x[i]), dtype)[()])
            assert bits_equal(sm[i], rnd(naive_softmax(x[i]), dtype))
            assert bits_equal(lsm[i], rnd(naive_log_softmax(x[i]), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_axis_and_keepdims(dtype):
    rng = np.random.default_rng(7)
    x = random_logits(rng, dtype, (3, 4, 5), 3.0)
    for ax in (0, 1, -1):
        moved = np.moveaxis(x, ax, -1)
        ref = np.array([rnd(naive_lse(r), dtype)[()] for r in moved.reshape(-1, moved.shape[-1])],
                       dtype=dtype).reshape(moved.shape[:-1])
        assert bits_equal(R.logsumexp(x, axis=ax), ref)
        assert R.logsumexp(x, axis=ax, keepdims=True).shape == np.expand_dims(ref, ax).shape
        s = R.softmax(x, axis=ax)
        assert s.shape == x.shape
        assert bits_equal(np.moveaxis(s, ax, -1)[0, 0], rnd(naive_softmax(moved[0, 0]), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_cross_entropy_random_indices(dtype, weighted, eps):
    rng = np.random.default_rng(99)
    N, C = 5, 6
    x = random_logits(rng, dtype, (N, C), 4.0)
    y = rng.integers(0, C, N)
    y[2] = -100  # ignored
    w = rng.uniform(0.1, 2.0, C) if weighted else None
    items = []
    den = Fraction(0)
    for n in range(N):
        if y[n] == -100:
            items.append(mpf(0))
            continue
        items.append(naive_item_loss(x[n], naive_targets(C, y=y[n], eps=eps), w))
        den += Fraction(float(w[y[n]])) if weighted else 1
    kw = dict(weight=w, label_smoothing=eps)
    assert bits_equal(R.cross_entropy(x, y, reduction="none", **kw), rnd(items, dtype))
    with mp.workprec(HP):
        tot = mpmath.fsum(items)
        mean = tot * den.denominator / den.numerator
    assert bits_equal(R.cross_entropy(x, y, reduction="sum", **kw), rnd(tot, dtype)[()])
    assert bits_equal(R.cross_entropy(x, y, reduction="mean", **kw), rnd(mean, dtype)[()])
    # gradient of the reduced loss
    with mp.workprec(HP):
        inv_den = mpf(den.denominator) / den.numerator
    for red, scale in (("mean", inv_den), ("sum", 1), ("none", 1)):
        loss, g = R.cross_entropy_value_and_grad(x, y, reduction=red, **kw)
        assert bits_equal(loss, R.cross_entropy(x, y, reduction=red, **kw))
        for n in range(N):
            if y[n] == -100:
                assert not g[n].any()
                continue
            with mp.workprec(HP):
                ref = naive_grad_row(x[n], naive_targets(C, y=y[n], eps=eps), w, scale)
            assert bits_equal(g[n], rnd(ref, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_probability_targets(dtype):
    rng = np.random.default_rng(5)
    N, C = 4, 5
    x = random_logits(rng, dtype, (N, C), 3.0)
    t = rng.dirichlet(np.ones(C), N).astype(dtype)
    w = rng.uniform(0.5, 1.5, C)
    for eps in (0.0, 0.2):
        items = [naive_item_loss(x[n], naive_targets(C, t=t[n], eps=eps), w) for n in range(N)]
        kw = dict(weight=w, label_smoothing=eps)
        assert bits_equal(R.cross_entropy(x, t, reduction="none", **kw), rnd(items, dtype))
        with mp.workprec(HP):
            mean = mpmath.fsum(items) / N  # probabilities: divide by the number of items
        loss, g = R.cross_entropy_value_and_grad(x, t, **kw)
        assert bits_equal(loss, rnd(mean, dtype)[()])
        for n in range(N):
            with mp.workprec(HP):
                ref = naive_grad_row(x[n], naive_targets(C, t=t[n], eps=eps), w, mpf(1) / N)
            assert bits_equal(g[n], rnd(ref, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pmf_random(dtype):
    rng = np.random.default_rng(11)
    p = rng.dirichlet(np.ones(6), 3).astype(dtype)
    q = rng.dirichlet(np.ones(6), 3).astype(dtype)
    p[0, 2] = 0
    for base in (None, 2, 10):
        with mp.workprec(HP):
            lb = mpmath.log(base) if base else mpf(1)
            H = [-mpmath.fsum(mpf(float(a)) * mpmath.log(mpf(float(a))) for a in r if a) / lb for r in p]
            X = [-mpmath.fsum(mpf(float(a)) * mpmath.log(mpf(float(b))) for a, b in zip(r, s) if a) / lb
                 for r, s in zip(p, q)]
            D = [mpmath.fsum(mpf(float(a)) * (mpmath.log(mpf(float(a))) - mpmath.log(mpf(float(b))))
                             for a, b in zip(r, s) if a) / lb for r, s in zip(p, q)]
        assert bits_equal(R.entropy(p, base=base), rnd(H, dtype))
        assert bits_equal(R.cross_entropy_pmf(p, q, base=base), rnd(X, dtype))
        assert bits_equal(R.kl_divergence(p, q, base=base), rnd(D, dtype))


def test_kl_p_close_to_q():
    # p and q one ulp apart: KL is tiny and must keep relative accuracy (no H(p,q) - H(p))
    p = np.array([0.25, 0.75])
    q = np.array([np.nextafter(0.25, 1), np.nextafter(0.75, 0)])
    with mp.workprec(HP):
        ref = mpmath.fsum(mpf(a) * mpmath.log(mpf(a) / mpf(b)) for a, b in zip(p, q))
    assert R.kl_divergence(p, q) == round_to_dtype(ref, np.float64)
    assert R.kl_divergence(p, q) > 0


# --- hard cases --------------------------------------------------------------------------------


def test_logsumexp_cancellation_near_zero():
    # two logits at the float64 nearest -log 2: lse = a + log 2 is ~1e-17 and needs the Ziv
    # loop to go past the first precision; the naive HP value decides
    a = float(-mpmath.log(2))
    x = np.array([a, a])
    with mp.workprec(HP):
        ref = mpf(a) + mpmath.log(2)
    assert R.logsumexp(x) == round_to_dtype(ref, np.float64)
    assert abs(R.logsumexp(x)) < 1e-16


@pytest.mark.parametrize("dtype", DTYPES)
def test_confident_prediction_tiny_loss(dtype):
    big = {np.float16: 12.0, np.float32: 90.0, np.float64: 700.0}[dtype]
    x = np.array([[dtype(big), dtype(0), dtype(-1)]], dtype=dtype)
    with mp.workprec(HP):
        ref = mpmath.log1p(mpmath.exp(-mpf(float(x[0, 0]))) + mpmath.exp(-mpf(float(x[0, 0])) - 1))
    got = R.cross_entropy(x, np.array([0]), reduction="sum")
    assert bits_equal(got, rnd(ref, dtype)[()])
    assert got > 0


def test_subnormal_softmax_outputs():
    x = np.array([0.0, -740.0, -745.0, -800.0])
    got = R.softmax(x)
    ref = rnd(naive_softmax(x), np.float64)
    assert bits_equal(got, ref)
    assert 0 < got[1] < np.finfo(np.float64).smallest_normal and got[3] == 0


def test_huge_offsets():
    x = np.array([1e300, 1e300, 1e300 - 1e284])
    with mp.workprec(HP):
        ref = mpf(1e300) + mpmath.log(2)  # exp(-1e284) is far below the precision
    assert R.logsumexp(x) == round_to_dtype(ref, np.float64)
    assert list(R.softmax(x)) == [0.5, 0.5, 0.0]


# --- semantics ---------------------------------------------------------------------------------


def test_special_rows():
    x = np.array([[0.0, -np.inf, 1.0], [-np.inf, -np.inf, -np.inf], [np.nan, 0.0, 1.0],
                  [np.inf, 0.0, 1.0], [-np.inf, 2.5, -np.inf]])
    lse = R.logsumexp(x)
    assert lse[1] == -np.inf and np.isnan(lse[2]) and lse[3] == np.inf and lse[4] == 2.5
    sm = R.softmax(x)
    assert sm[0, 1] == 0 and np.isnan(sm[1:4]).all() and list(sm[4]) == [0, 1, 0]
    ls = R.log_softmax(x)
    assert ls[0, 1] == -np.inf and np.isnan(ls[1:3]).all() and list(ls[4]) == [-np.inf, 0, -np.inf]
    assert np.isnan(ls[3, 0]) and list(ls[3, 1:]) == [-np.inf, -np.inf]  # +inf row: SciPy's rule
    y = np.array([1, 0, 1, 1, 1])
    loss = R.cross_entropy(x, y, reduction="none")
    assert loss[0] == np.inf  # label logit -inf
    assert np.isnan(loss[1:4]).all()
    assert loss[4] == 0.0  # K = 1 effective: exactly 0
    assert np.isnan(R.cross_entropy(x, y))
    assert R.cross_entropy(x[[0, 4]], y[[0, 4]]) == np.inf
    _, g = R.cross_entropy_value_and_grad(x, y, reduction="sum")
    assert np.isnan(g[1:4]).all() and not g[4].any()
    assert R.logsumexp(np.zeros((2, 0))).tolist() == [-np.inf, -np.inf]
    assert R.softmax(np.zeros((2, 0))).shape == (2, 0)
    assert R.entropy(np.zeros((3, 0))).tolist() == [0.0, 0.0, 0.0]


def test_masked_class_with_label_smoothing_and_zero_coefficient():
    x = np.array([[0.0, -np.inf, 1.0]])
    # smoothing gives the masked class a positive target: +inf
    assert R.cross_entropy(x, np.array([0]), label_smoothing=0.1) == np.inf
    # a zero coefficient (weight 0) on the masked class contributes 0 (0 log 0 = 0)
    w = np.array([1.0, 0.0, 1.0])
    v = R.cross_entropy(x, np.array([0]), label_smoothing=0.1, weight=w, reduction="sum")
    ref = naive_item_loss(np.array([0.0, -np.inf, 1.0]),
                          naive_targets(3, y=0, eps=0.1), w)
    assert v == round_to_dtype(ref, np.float64)


def test_all_ignored_is_nan():
    x = np.zeros((3, 4))
    y = np.full(3, -100)
    assert np.isnan(R.cross_entropy(x, y))
    assert R.cross_entropy(x, y, reduction="sum") == 0.0
    assert list(R.cross_entropy(x, y, reduction="none")) == [0.0, 0.0, 0.0]
    loss, g = R.cross_entropy_value_and_grad(x, y)
    assert np.isnan(loss) and not g.any()
    # custom ignore_index
    y2 = np.array([7, 1, 7])
    x2 = np.array([[0.0, 1.0, 2.0, 3.0]] * 3)
    assert R.cross_entropy(x2, y2, ignore_index=7) == R.cross_entropy(x2[1:2], y2[1:2])


def test_exact_results_do_not_hang():
    t0 = time.perf_counter()
    # K = 1: loss exactly 0, gradient exactly 0, softmax exactly 1
    assert R.cross_entropy(np.array([[3.5]]), np.array([0])) == 0.0
    loss, g = R.cross_entropy_value_and_grad(np.array([[3.5], [-2.0]]), np.array([0, 0]))
    assert loss == 0.0 and not g.any()
    assert R.softmax(np.array([3.5])).tolist() == [1.0]
    assert R.log_softmax(np.array([3.5])).tolist() == [0.0]
    assert R.logsumexp(np.array([0.0])) == 0.0
    # uniform logits with fully smoothed targets: p_i - t_i = 1/C - 1/C = 0 exactly
    _, g = R.cross_entropy_value_and_grad(np.zeros((2, 5)), np.array([1, 3]), label_smoothing=1.0)
    assert not g.any()
    # uniform logits, one-hot targets: gradient (1/C - [i=y]) / N exactly rounded
    _, g = R.cross_entropy_value_and_grad(np.zeros((1, 3)), np.array([0]))
    assert list(g[0]) == [float(Fraction(1, 3) - 1), float(Fraction(1, 3)), float(Fraction(1, 3))]
    # KL(p||p) = 0 exactly, in every base, with p far from dyadic
    p = np.array([0.1, 0.2, 0.7])
    for base in (None, 2, 10, 3.5):
        assert R.kl_divergence(p, p, base=base) == 0.0
    assert R.entropy(np.array([1.0]), base=10) == 0.0
    assert R.cross_entropy_pmf(np.array([0.3, 0.7]), np.array([1.0, 1.0])) == 0.0
    # zero label weight: loss exactly 0 and gradient exactly 0
    loss, g = R.cross_entropy_value_and_grad(np.array([[1.0, 2.0]]), np.array([0]),
                                             weight=np.array([0.0, 1.0]), reduction="sum")
    assert loss == 0.0 and not g.any()
    assert time.perf_counter() - t0 < 10


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_mode_accuracy(dtype):
    rng = np.random.default_rng(3)
    x = random_logits(rng, dtype, (3, 6), 3.0)
    p = 11 if dtype == np.float16 else 24 if dtype == np.float32 else 53
    for f, naive in ((R.softmax, naive_softmax), (R.log_softmax, naive_log_softmax)):
        ex = f(x, exact=True)
        assert ex.dtype == object and isinstance(ex[0, 0], mpmath.mpf)
        # rounding the exact values gives the rounded oracle
        assert bits_equal(round_to_dtype(ex, dtype), f(x))
        for i in range(3):
            ref = naive(x[i])
            # exact values are accurate far beyond the format (relative 2**-(2p+25) here)
            with mp.workprec(HP):
                for a, b in zip(ex[i], ref):
                    assert abs(a - b) <= mpmath.ldexp(abs(b), -(2 * p + 25))
    # ulp_error consumes the exact values
    e = ulp_error(R.softmax(x), R.softmax(x, exact=True), dtype)
    assert e.shape == x.shape and (e <= 0.5).all()


def test_validation_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="reduction"):
        R.cross_entropy(x, np.array([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        R.cross_entropy(x, np.array([0, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="target"):
        R.cross_entropy(x, np.array([0, 3]))
    with pytest.raises(ValueError, match="target"):
        R.cross_entropy(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="weight"):
        R.cross_entropy(x, np.array([0, 1]), weight=np.ones(2))
    with pytest.raises(ValueError, match="target"):
        R.cross_entropy(x, -np.ones((2, 3)))
    with pytest.raises(ValueError, match="base"):
        R.entropy(np.array([0.5, 0.5]), base=1)
    with pytest.raises(ValueError, match="p"):
        R.entropy(np.array([-0.5, 0.5]))
    with pytest.raises(ValueError, match="axis"):
        R.softmax(x, axis=2)
    with pytest.raises(TypeError, match="x"):
        R.softmax(np.array(["a"]))
    with pytest.raises(ValueError, match="samples"):
        R.empirical_pmf(np.array([0, 5]), 3)


def test_global_precision_untouched():
    before = (mp.prec, mp.dps)
    R.softmax(np.array([1.0, 2.0]))
    R.kl_divergence(np.array([0.5, 0.5]), np.array([0.25, 0.75]), exact=True)
    assert (mp.prec, mp.dps) == before


def test_1000_class_row_is_fast():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1000))
    t0 = time.perf_counter()
    v = R.cross_entropy(x, np.array([17]))
    assert time.perf_counter() - t0 < 5
    assert v == round_to_dtype(naive_item_loss(x[0], naive_targets(1000, y=17)), np.float64)


# --- astronomically spread rows ----------------------------------------------------------------
# Terms like e^{-10^20} are mpf values with exponent ~ -1.4e20: adding 1 to one exactly would
# build a 10^20-bit integer (this raised OverflowError). Expected values are the closed forms
# below, evaluated with mpmath's high-level API at 200 bits and rounded with round_to_dtype:
# with m = max x, j* its first index, d_j = x_j - m (exact) and T = sum_{j != j*} e^{d_j},
#   logsumexp = m + log1p(T),  log_softmax_j = d_j - log1p(T),  softmax_j = e^{d_j} / (1 + T),
#   loss = sum_c a_c (log1p(T) - d_c),
#   d loss / d x_i = A p_i - a_i, written for i = j* as (A - a_i) - A T / (1 + T)
#   (1/(1+T) = 1 - T/(1+T)), so that its sign survives when it is only -A T/(1+T).
# log1p keeps the sign and size of the tiny parts (log(1 + T) at any fixed precision is +0,
# and the oracle must give e.g. log_softmax = -0.0, a gradient of -0.0). Each value is an exact
# part X (d_j, sum_c a_c d_c, A - a_i, a_i: exact at 3000 bits for dyadic a_c) plus a tiny part
# (L, A L, A T/(1+T), A p_i). When the tiny part is below 2**-150 |X| it can only matter through
# its sign, when X is a rounding boundary (a midpoint such as 3 (0.1/4) in float64): X plus the
# tiny part lies strictly between X and the neighbouring float, as does X + sign * 2**-150 |X|,
# which is what `with_tiny` adds (at 3000 bits, exactly).

SPREAD_ROWS = {
    np.float64: [
        [0.0, -1e20],
        [1e300, 1e300 - 1e284],
        [-1e20, 0.0],
        [0.0, -1e50, -1e300],
        [5.0, 5.0, -1e200],
        [0.0, -1e20, -1e20 - 1e5],
        [0.0, -1e20, -np.inf],
        [-1e300, 1e300, 0.0],
        [1e308, -1e308],  # x_1 - x_0 overflows in float64 arithmetic
        # astronomically different exponents among the small terms: e^{-1e30} next to
        # e^{-1e30+1e10} (an exact sum shifted by 1.4e10 bits: MemoryError), and a term whose
        # x_j - m overflows next to a tie at the max
        [0.0, 1e30, 1e10],
        [1e300, -1e300, 0.0],
        [1e308, 1e308, -1e308],
        [0.0, 1e300, 1e10, -1e300],
    ],
    np.float32: [[0.0, -1e20], [1e20, 1e20 - 1e13], [0.0, -1e30, -2e30], [-1e20, 0.0, -np.inf],
                 [3e38, -3e38], [0.0, 1e30, 1e10], [3e38, -3e38, 0.0], [3e38, 3e38, -3e38]],
    np.float16: [[65504.0, -65504.0], [0.0, -60000.0], [-60000.0, 0.0, -65504.0],
                 [0.0, 60000.0, 1000.0], [65504.0, -65504.0, 0.0], [65504.0, 65504.0, -65504.0]],
}
SPREAD_CASES = [(dt, r) for dt, rows in SPREAD_ROWS.items() for r in rows]


def with_tiny(X, tiny):
    """X (exact) + tiny, keeping only the sign of a tiny part below 2**-150 |X| (see above)."""
    with mp.workprec(3000):
        if X == 0 or tiny == 0 or abs(tiny) >= abs(X) * mpf(2) ** -150:
            return X + tiny
        return X + mpmath.sign(tiny) * abs(X) * mpf(2) ** -150


def spread_closed_forms(row, y, eps):
    """Exact values (mpf, 200 bits) of every output for one row, label y, smoothing eps."""
    C = len(row)
    fin = [j for j in range(C) if row[j] != -np.inf]
    m = max(row[j] for j in fin)
    js = next(j for j in fin if row[j] == m)
    targ = naive_targets(C, y=y, eps=eps)
    with mp.workprec(3000):
        d = {j: mpf(row[j]) - mpf(m) for j in fin}  # exact: float differences
        a = [mpf(t.numerator) / t.denominator for t in targ]  # exact when dyadic
        A = mpmath.fsum(a)
        X_loss = mpmath.fsum(-a[c] * d[c] for c in range(C) if a[c] != 0 and c in d)
    with mp.workprec(200):
        e = {j: mpmath.exp(d[j]) for j in fin}
        T = mpmath.fsum(e[j] for j in fin if j != js)
        L = mpmath.log1p(T)
        out = {"lse": with_tiny(mpf(m), L)}
        out["lsm"] = [with_tiny(d[j], -L) if j in d else mpf("-inf") for j in range(C)]
        out["sm"] = [e[j] / (1 + T) if j in d else mpf(0) for j in range(C)]
        if any(a[c] != 0 and c not in d for c in range(C)):
            out["loss"] = mpf("inf")
        else:
            out["loss"] = with_tiny(X_loss, A * L)
        g = []
        for i in range(C):
            if i not in d:
                g.append(-a[i])
            elif i == js:
                with mp.workprec(3000):
                    B = A - a[i]
                g.append(with_tiny(B, -A * T / (1 + T)))
            else:
                g.append(with_tiny(-a[i], A * out["sm"][i]))
        out["grad"] = g
    return out


@pytest.mark.parametrize("dtype,row", SPREAD_CASES, ids=[f"{dt.__name__}-{r}" for dt, r in SPREAD_CASES])
def test_astronomically_spread_rows(dtype, row):
    import warnings

    x = np.array(row, dtype=dtype)
    row = [float(v) for v in x]  # the exact inputs
    C = len(row)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("error", R.CorrectRoundingWarning)
        ref = spread_closed_forms(row, 0, 0.0)
        assert bits_equal(R.logsumexp(x), rnd(ref["lse"], dtype)[()])
        assert bits_equal(R.log_softmax(x), rnd(ref["lsm"], dtype))
        assert bits_equal(R.softmax(x), rnd(ref["sm"], dtype))
        for f in (R.logsumexp, R.log_softmax, R.softmax):
            assert np.all(ulp_error(f(x), f(x, exact=True), dtype) <= 0.5)
        X = x[None, :]
        for y in range(C):
            if row[y] == -np.inf:
                continue
            for eps in (0.0, 0.1):
                ref = spread_closed_forms(row, y, eps)
                kw = dict(label_smoothing=eps)
                loss, g = R.cross_entropy_value_and_grad(X, np.array([y]), reduction="none", **kw)
                assert bits_equal(loss, rnd([ref["loss"]], dtype))
                assert bits_equal(g[0], rnd(ref["grad"], dtype))
                # "mean" over one item is the same value; the loss alone agrees
                assert bits_equal(R.cross_entropy(X, np.array([y]), **kw), rnd(ref["loss"], dtype)[()])
                le, ge = R.cross_entropy_value_and_grad(X, np.array([y]), exact=True, **kw)
                assert ulp_error(R.cross_entropy(X, np.array([y]), **kw), le, dtype) <= 0.5
                assert np.all(ulp_error(g, ge, dtype) <= 0.5)
    assert time.perf_counter() - t0 < 10


def test_spread_row_signs_and_values():
    # the documented shapes of the answers: 1 and +0 for the softmax, -0.0 for the top
    # log-probability and the top gradient (both are -(something positive and tiny))
    for dt in DTYPES:
        big = {np.float16: 60000.0, np.float32: 1e20, np.float64: 1e20}[dt]
        x = np.array([0.0, -big], dtype=dt)
        assert R.softmax(x).tolist() == [1.0, 0.0]
        ls = R.log_softmax(x)
        assert ls[0] == 0 and np.signbit(ls[0]) and ls[1] == x[1]
        assert R.logsumexp(x) == 0 and not np.signbit(R.logsumexp(x))
        loss, g = R.cross_entropy_value_and_grad(x[None], np.array([0]))
        assert loss == 0 and not np.signbit(loss)
        assert g[0, 0] == 0 and np.signbit(g[0, 0]) and g[0, 1] == 0 and not np.signbit(g[0, 1])
        loss, g = R.cross_entropy_value_and_grad(x[None], np.array([1]))
        assert loss == -x[1] and g.tolist() == [[1.0, -1.0]]
    x = np.array([1e300, 1e300 - 1e284])
    assert R.logsumexp(x) == 1e300 and R.softmax(x).tolist() == [1.0, 0.0]
    assert R.cross_entropy(x[None], np.array([1])) == x[0] - x[1]


# --- exact part plus an astronomically small part on a rounding boundary -----------------------
# Each expected value below is X + theta with X an exact rational that is a midpoint of the
# format and 0 < |theta| far below any working precision; the correct rounding is the neighbour
# of X on theta's side (X + theta lies strictly between X and that float), which `with_tiny`
# reproduces. Rounding X alone (ties to even) gives the other neighbour in every case here, so
# the tests fail for an oracle that drops the tiny part or never decides (the Ziv loop used to
# run to PRECISION_CAP and warn).


def _no_rounding_warning():
    import warnings

    ctx = warnings.catch_warnings()
    ctx.__enter__()
    warnings.simplefilter("error", R.CorrectRoundingWarning)
    return ctx


@pytest.mark.parametrize("dtype,top", [(np.float32, 25), (np.float64, 54)])
def test_log_softmax_and_loss_at_a_midpoint(dtype, top):
    # d = 3 - 2**top = -(2**top - 3) is odd with top bits: the midpoint of -(2**top - 4) and
    # -(2**top - 2); L = log1p(e^d) > 0, so d - L rounds away from zero to -(2**top - 2)
    x = np.array([2.0**top, 3.0], dtype=dtype)
    ctx = _no_rounding_warning()
    try:
        ls = R.log_softmax(x)
        assert ls[1] == -(2.0**top - 2) and ls[1] != dtype(-(2.0**top - 3))  # not ties-to-even
        loss = R.cross_entropy(x[None], np.array([1]), reduction="none")
        assert loss.tolist() == [2.0**top - 2]
        # the exact values keep the side of the midpoint (a float ulp error would show 0.5)
        assert bits_equal(round_to_dtype(R.log_softmax(x, exact=True), dtype), ls)
        assert bits_equal(round_to_dtype(R.cross_entropy(x[None], np.array([1]), reduction="none",
                                                         exact=True), dtype), loss)
    finally:
        ctx.__exit__(None, None, None)


def test_reduced_loss_at_a_midpoint():
    # two items with losses 2**100 + L and 2**100 + 2**48 + L' (L, L' = log1p(e^{-2**100}) > 0):
    # the mean is the midpoint 2**100 + 2**47 plus a positive tiny part -> 2**100 + 2**48
    # (ties to even would give 2**100); the sum 2**101 + 2**48 is the midpoint of 2**101 and
    # 2**101 + 2**49 -> 2**101 + 2**49
    x = np.array([[2.0**100, 0.0], [2.0**100 + 2.0**48, 0.0]])
    y = np.array([1, 1])
    ctx = _no_rounding_warning()
    try:
        assert R.cross_entropy(x, y) == 2.0**100 + 2.0**48
        assert R.cross_entropy(x, y, reduction="sum") == 2.0**101 + 2.0**49
        assert R.cross_entropy_value_and_grad(x, y)[0] == 2.0**100 + 2.0**48
    finally:
        ctx.__exit__(None, None, None)


def test_soft_target_loss_and_gradient_at_midpoints():
    # x = [2**100 + 3 * 2**48, 0], target [0, 1.5]: loss = 1.5 (2**100 + 3 * 2**48) + 1.5 L,
    # 2**48 (1.5 * 2**52 + 4.5) + tiny -> 2**48 (1.5 * 2**52 + 5) (ties to even: ... + 4)
    x = np.array([[2.0**100 + 3 * 2.0**48, 0.0]])
    t = np.array([[0.0, 1.5]])
    # weights [1, 1 + 2**-52], target [0, 3]: a_1 = 3 + 3 * 2**-52, the midpoint of 3 + 2**-51
    # and 3 + 2**-50; g_1 = A p_1 - a_1 = -a_1 + tiny -> -(3 + 2**-51), g_0 = a_1 - A T/(1+T)
    # -> 3 + 2**-51 (ties to even: 3 + 2**-50 for both)
    w = np.array([1.0, 1.0 + 2.0**-52])
    ctx = _no_rounding_warning()
    try:
        assert R.cross_entropy(x, t, reduction="sum") == 2.0**48 * (1.5 * 2**52 + 5)
        loss, g = R.cross_entropy_value_and_grad(np.array([[2.0**100, 0.0]]), np.array([[0.0, 3.0]]),
                                                 weight=w, reduction="sum")
        assert g.tolist() == [[3 + 2.0**-51, -(3 + 2.0**-51)]]
        with mp.workprec(3000):
            a1 = 3 * (1 + mpf(2) ** -52)
            ref = with_tiny(a1 * mpf(2) ** 100, mpf(2) ** -10**6)  # + a_1 L, tiny > 0
        assert loss == round_to_dtype(ref, np.float64)
        # the smoothed one-hot case of the fuzzer: B = 3 (0.1/4) is a float64 midpoint
        x2 = np.array([[1e30, 0.0, 1e10, 1e20]])
        _, g2 = R.cross_entropy_value_and_grad(x2, np.array([0]), label_smoothing=0.1)
        with mp.workprec(3000):
            B = 3 * mpf(0.1) / 4
        assert g2[0, 0] == round_to_dtype(with_tiny(B, -mpf(2) ** -10**6), np.float64)  # - A T/S
        assert g2[0, 0] < round_to_dtype(B, np.float64)  # the lower neighbour, not ties-to-even
    finally:
        ctx.__exit__(None, None, None)


# --- PMF functions: bases below 1, broadcasting, extreme rows ----------------------------------


def naive_pmf(kind, p, q, base):
    """-sum p log q, -sum p log p or sum p log(p/q) over the last axis at HP bits, / ln b."""
    out = []
    for r, s in zip(p.reshape(-1, p.shape[-1]), q.reshape(-1, q.shape[-1])):
        with mp.workprec(HP):
            lb = mpmath.log(mpf(float(base))) if base else mpf(1)
            terms = []
            for a, b in zip(r, s):
                a, b = mpf(float(a)), mpf(float(b))
                if a == 0:
                    continue
                if kind == "entropy":
                    terms.append(-a * mpmath.log(a))
                elif kind == "ce":
                    terms.append(-a * mpmath.log(b) if b else mpf("inf"))
                else:
                    terms.append(a * (mpmath.log(a) - mpmath.log(b)) if b else mpf("inf"))
            out.append(mpmath.fsum(terms) / lb)
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("base", [0.5, 0.1, 0.9999])
def test_pmf_base_below_one(dtype, base):
    # H_b = H / ln b with ln b < 0: every value changes sign, finite or infinite
    rng = np.random.default_rng(21)
    p = rng.dirichlet(np.ones(5), 3).astype(dtype)
    q = rng.dirichlet(np.ones(5), 3).astype(dtype)
    p[1, 2] = 0
    q[2, 4] = 0  # p > 0 there: -p log_b 0 = -inf for b < 1
    shp = (3,)
    assert bits_equal(R.entropy(p, base=base), rnd(naive_pmf("entropy", p, p, base), dtype, shp))
    ce = R.cross_entropy_pmf(p, q, base=base)
    kl = R.kl_divergence(p, q, base=base)
    assert bits_equal(ce, rnd(naive_pmf("ce", p, q, base), dtype, shp))
    assert bits_equal(kl, rnd(naive_pmf("kl", p, q, base), dtype, shp))
    assert ce[2] == -np.inf and kl[2] == -np.inf
    assert (ce[:2] < 0).all() and (R.entropy(p, base=base) < 0).all()
    # same magnitude as the base 1/b (log_{1/b} x = -log_b x), opposite sign
    if base == 0.5:
        assert bits_equal(-R.cross_entropy_pmf(p, q, base=2), ce)
        assert bits_equal(-R.kl_divergence(p, q, base=2), kl)


def test_pmf_base_below_one_closed_forms():
    assert R.cross_entropy_pmf([0.5, 0.5], [1.0, 0.0], base=0.5) == -np.inf
    assert R.kl_divergence([0.5, 0.5], [1.0, 0.0], base=0.5) == -np.inf
    assert R.cross_entropy_pmf([0.5, 0.5], [1.0, 0.0], base=2) == np.inf
    # dyadic distributions: exact rationals R / f in base 2**f, f = -1 and -2 (H = 3/2 bits)
    p = np.array([0.5, 0.25, 0.25])
    assert R.entropy(p, base=0.5) == -1.5
    assert R.entropy(p, base=0.25) == -0.75
    # H(p, q) with q = (1/4, 1/2, 1/4): 1/2 * 2 + 1/4 * 1 + 1/4 * 2 = 7/4 bits
    assert R.cross_entropy_pmf(p, [0.25, 0.5, 0.25], base=0.5) == -1.75
    assert R.kl_divergence(p, [0.25, 0.5, 0.25], base=0.5) == -0.25
    assert R.kl_divergence(p, p, base=0.5) == 0.0


@pytest.mark.parametrize("fname", ["cross_entropy_pmf", "kl_divergence"])
def test_pmf_broadcasting(fname):
    import crossent

    f = getattr(R, fname)
    rng = np.random.default_rng(8)
    q = rng.dirichlet(np.ones(4), 3)  # (3, 4)
    p = rng.dirichlet(np.ones(4), (2, 1))  # (2, 1, 4)
    got = f(p, q)
    assert got.shape == (2, 3)
    pb, qb = np.broadcast_arrays(p, q)
    assert bits_equal(got, f(pb.copy(), qb.copy()))
    # a 1-d p against a batch of q, and a class axis of length 1 that broadcasts
    assert bits_equal(f(p[0, 0], q), f(np.tile(p[0, 0], (3, 1)), q))
    assert bits_equal(f(p[..., :1] * 0 + 0.25, q), f(np.full((2, 3, 4), 0.25), np.broadcast_to(q, (2, 3, 4)).copy()))
    # axis refers to the broadcast shape; mixed dtypes give the common dtype
    got0 = f(p[:, :, 0].T.astype(np.float32), q.T[:, :1].T[:, :2].T, axis=0)
    assert got0.dtype == np.float64
    for a, b, ax in [(p, q, -1), (p[0, 0], q, -1), (np.ones((1, 2)) / 2, np.array([[0.25, 0.75], [0.5, 0.5]]), 0),
                     (0.5, np.array([0.25, 0.75]), -1)]:
        ref_shape = np.shape(getattr(crossent, fname)(a, b, axis=ax))
        assert np.shape(f(a, b, axis=ax)) == ref_shape
    with pytest.raises(ValueError, match="p and q"):
        f(np.ones((2, 3)) / 3, np.ones((4, 3)) / 3)


@pytest.mark.parametrize("dtype,row", SPREAD_CASES, ids=[f"{dt.__name__}-{r}" for dt, r in SPREAD_CASES])
def test_pmf_on_spread_rows(dtype, row):
    # the spread rows' magnitudes as (unnormalized) PMFs, against the naive HP definitions
    p = np.abs(np.array([v for v in row if np.isfinite(v)] or [0.0], dtype=dtype))[None]
    q = p[:, ::-1].copy()
    t0 = time.perf_counter()
    for base in (None, 0.5, 2):
        assert bits_equal(R.entropy(p, base=base), rnd(naive_pmf("entropy", p, p, base), dtype, (1,)))
        assert bits_equal(R.cross_entropy_pmf(p, q, base=base), rnd(naive_pmf("ce", p, q, base), dtype, (1,)))
        assert bits_equal(R.kl_divergence(p, q, base=base), rnd(naive_pmf("kl", p, q, base), dtype, (1,)))
    assert time.perf_counter() - t0 < 10


# --- binary cross-entropy, softplus, log_sigmoid -------------------------------------------------


def test_softplus_oracle_against_mpmath_at_1000_bits():
    xs = [-745.5, -40.0, -1e-300, 0.0, 1.5, 36.0, 800.0]
    got = R.softplus(np.array(xs))
    with mpmath.mp.workprec(1000):
        want = [float(mpmath.log1p(mpmath.exp(mpmath.mpf(v)))) for v in xs]
    assert got.tolist() == want


def test_bce_oracle_exact_cases():
    x = np.array([np.inf, -np.inf, np.inf, np.nan, 0.0])
    t = np.array([1.0, 0.0, 0.5, 1.0, 0.25])
    loss, g = R.binary_cross_entropy_with_logits_value_and_grad(x, t, reduction="none")
    assert loss[:3].tolist() == [0.0, 0.0, np.inf] and np.isnan(loss[3])
    # x = 0: sigma = 1/2, the gradient is the rational 1/2 - t (exact)
    assert g[[0, 1, 2, 4]].tolist() == [0.0, 0.0, 0.5, 0.25] and np.isnan(g[3])
    with pytest.raises(ValueError, match="partial"):
        R.binary_cross_entropy_with_logits(x, t, reduction="partial")
