"""Behaviour of the PMF functions: entropy, cross_entropy_pmf, kl_divergence, empirical_pmf and
categorical_log_likelihood (semantics, errors, shapes, axis, bases, dtypes, the MLE claim).

ULP accuracy against the oracle is in ``test_precision_pmf.py``.
"""

from __future__ import annotations

import doctest
import functools
import math
from fractions import Fraction

import mpmath
import numba
import numpy as np
import pytest

import crossent.pmf as cpmf
from crossent import _bounds
from crossent.kernels import _base as kbase
from crossent.kernels import pmf as kpmf
from crossent.pmf import (
    categorical_log_likelihood,
    cross_entropy_pmf,
    empirical_pmf,
    entropy,
    kl_divergence,
)

RNG_SEED = 20240611


def _rng(k=0):
    return np.random.default_rng([RNG_SEED, k])


def _dirichlet(rng, k, n=None, alpha=1.0):
    return rng.dirichlet(np.full(k, alpha), size=n)


# ---------------------------------------------------------------------------------------------
# constants and the series of the KL kernel


def test_ln2_constant():
    """ln 2 as a double-double (used by the KL kernel): both parts rounded to nearest."""
    with mpmath.workprec(300):
        ln2 = mpmath.log(2)
        assert kbase.LN2_DD_HI == float(ln2)
        assert kbase.LN2_DD_LO == float(ln2 - mpmath.mpf(kbase.LN2_DD_HI))


def test_ln2_cody_waite_split():
    """The exp's split of ln 2: a 42-bit head (so k * head is exact for |k| < 2**11) and the
    rest rounded to nearest; not the same constant as the double-double above."""
    with mpmath.workprec(300):
        ln2 = mpmath.log(2)
        head = kbase.LN2_CW_HI
        assert head == math.ldexp(math.floor(math.ldexp(float(ln2), 42)), -42)  # ln 2 truncated
        assert int(math.ldexp(head, 42)) == math.ldexp(head, 42) < 2**42
        assert kbase.LN2_CW_LO == float(ln2 - mpmath.mpf(head))
    assert kbase.LN2_CW_HI != kbase.LN2_DD_HI


def test_b_series_coefficients_and_tail():
    """B(z) = sum z^j/(2j+3): coefficients RN(1/(2j+3)) and the certified truncation at z <= 1/4."""
    n = kpmf.B_COEFFS.shape[0]
    for j, c in enumerate(kpmf.B_COEFFS):
        assert c == float(Fraction(1, 2 * j + 3))  # Fraction -> float rounds to nearest
    with mpmath.workprec(300):
        z = mpmath.mpf(1) / 4 * (1 + mpmath.mpf(2) ** -50)  # the branch allows |s| <= 1/2 (1 + u)
        tail = mpmath.nsum(lambda j: z**j / (2 * j + 3), [n, mpmath.inf])
        b_closed = (mpmath.atanh(mpmath.sqrt(z)) / mpmath.sqrt(z) - 1) / z
        assert tail / b_closed < mpmath.mpf(2) ** -59.8  # the bound stated in kernels/pmf.py
        head = mpmath.fsum(z**j / (2 * j + 3) for j in range(n))
        assert abs(head + tail - b_closed) < mpmath.mpf(2) ** -250


@pytest.mark.parametrize("p,q", [(0.3, 0.31), (0.5, 0.25), (0.25, 0.5), (1e-3, 1.7e-3), (0.7, 0.7)])
def test_kl_term_identity(p, q):
    """p log(p/q) - (p - q) = (p + q) s^2 (1 + s(1 + s) B(s^2)), s = (p - q)/(p + q) (200 bits)."""
    with mpmath.workprec(200):
        P, Q = mpmath.mpf(p), mpmath.mpf(q)
        s = (P - Q) / (P + Q)
        z = s * s
        B = (mpmath.atanh(mpmath.sqrt(z)) / mpmath.sqrt(z) - 1) / z if z else mpmath.mpf(1) / 3
        lhs = P * mpmath.log(P / Q) - (P - Q)
        rhs = (P + Q) * z * (1 + s * (1 + s) * B)
        assert abs(lhs - rhs) <= mpmath.mpf(2) ** -190 * max(abs(lhs), mpmath.mpf(2) ** -200)


# ---------------------------------------------------------------------------------------------
# closed forms and semantics


def test_closed_forms():
    # each value is exact in binary: 1 bit, 2 bits, 10 bits; ln 2 rounded
    assert entropy([0.5, 0.5], base=2) == 1.0
    assert entropy([0.25, 0.25, 0.25, 0.25], base=2) == 2.0
    assert entropy(np.full(1024, 1 / 1024), base=2) == 10.0
    assert entropy([0.5, 0.5]) == math.log(2)  # RN(ln 2); math.log(2) is correctly rounded
    assert kl_divergence([1.0, 0.0], [0.5, 0.5], base=2) == 1.0
    assert cross_entropy_pmf([0.5, 0.5], [0.5, 0.5], base=2) == 1.0


def test_zero_log_zero_and_infinities():
    assert entropy([1.0, 0.0]) == 0.0
    assert cross_entropy_pmf([1.0, 0.0], [1.0, 0.0]) == 0.0  # 0 log 0 = 0
    assert kl_divergence([1.0, 0.0], [1.0, 0.0]) == 0.0
    assert cross_entropy_pmf([0.5, 0.5], [1.0, 0.0]) == math.inf  # p > 0 where q = 0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf
    assert kl_divergence([0.0, 1.0], [0.5, 0.5]) == math.log(2)  # the p = 0 class adds nothing
    # the sign of +inf follows ln b: a base below 1 gives -inf
    assert kl_divergence([0.5, 0.5], [1.0, 0.0], base=0.5) == -math.inf


@pytest.mark.parametrize("fn", ["entropy", "cross_entropy_pmf", "kl_divergence"])
def test_nan_and_negative_rows(fn):
    """check=False (entries not checked): a nan or negative entry makes its row nan."""
    f = functools.partial(getattr(cpmf, fn), check=False)
    args = lambda p: (p,) if fn == "entropy" else (p, [0.5, 0.25, 0.25])  # noqa: E731
    out = f(*args(np.array([[0.5, np.nan, 0.5], [0.5, 0.25, 0.25], [0.5, -0.25, 0.75]])))
    assert np.isnan(out[0]) and np.isfinite(out[1]) and np.isnan(out[2])
    if fn != "entropy":
        out = f([0.5, 0.25, 0.25], [[0.5, np.nan, 0.5], [0.0, -0.5, 1.5]])
        assert np.isnan(out).all()
        # a nan q where p = 0 still propagates
        assert np.isnan(f([1.0, 0.0], [1.0, np.nan]))


@pytest.mark.parametrize("fn", ["entropy", "cross_entropy_pmf", "kl_divergence"])
def test_bad_entries_raise_by_default(fn):
    """The default cheap pass names the argument and the index of the first bad entry (in the
    argument as given, before broadcasting)."""
    f = getattr(cpmf, fn)
    p = np.array([[0.5, 0.25, 0.25], [0.5, np.nan, 0.5], [0.5, -0.25, 0.75]])
    with pytest.raises(ValueError, match=r"^p must be finite and non-negative; p\[1, 1\] = nan$"):
        f(*((p,) if fn == "entropy" else (p, [0.5, 0.25, 0.25])))
    if fn != "entropy":
        with pytest.raises(ValueError, match=r"^q .*q\[2\] = -0\.25$"):
            f(p[0], [0.5, 0.75, -0.25])
        with pytest.raises(ValueError, match=r"^q .*q = inf$"):  # a 0-d q broadcasts
            f(p[0], np.inf)


def test_kl_of_identical_is_exactly_zero():
    rng = _rng(1)
    p = _dirichlet(rng, 50, 10)
    assert np.all(kl_divergence(p, p) == 0.0)
    assert np.all(kl_divergence(p.astype(np.float32), p.astype(np.float32)) == 0.0)


def test_gibbs_and_decomposition():
    """D(p||q) >= 0 and H(p, q) = H(p) + D(p||q) to within the three stated bounds."""
    rng = _rng(2)
    p = _dirichlet(rng, 30, 200)
    q = _dirichlet(rng, 30, 200)
    h, ce, kl = entropy(p), cross_entropy_pmf(p, q), kl_divergence(p, q)
    assert np.all(kl > 0)
    u = 2.0**-53
    b = _bounds.bound
    # |ce - (h + kl)| <= errors of the three results (each <= max_ulp ulp <= 2 max_ulp u |x|)
    # plus the rounding of h + kl (u |h + kl|)
    tol = 2 * u * (b("cross_entropy_pmf", "float64").max_ulp * ce + b("entropy", "float64").max_ulp * h
                   + b("kl_divergence", "float64").max_ulp * kl) + u * (h + kl)
    assert np.all(np.abs(ce - (h + kl)) <= tol)


def test_kl_small_perturbation_keeps_digits():
    """For q = p(1 + eps z) the divergence is ~eps^2/2 sum p z^2; the naive difference of
    cross-entropies is wrong at eps = 1e-8 while crossent agrees with mpmath (600 bits)."""
    rng = _rng(3)
    p = _dirichlet(rng, 10)
    q = p * (1 + 1e-8 * rng.uniform(-1, 1, 10))
    q /= q.sum()
    got = kl_divergence(p, q)
    with mpmath.workprec(600):
        exact = mpmath.fsum(mpmath.mpf(a) * mpmath.log(mpmath.mpf(a) / mpmath.mpf(c)) for a, c in zip(p, q))
    rel = abs((mpmath.mpf(got) - exact) / exact)
    assert rel <= 2 * _bounds.bound("kl_divergence", "float64").max_ulp * 2.0**-53
    naive = cross_entropy_pmf(p, q) - entropy(p)
    assert abs((mpmath.mpf(naive) - exact) / exact) > 1e-3  # the cancelling form loses it


# ---------------------------------------------------------------------------------------------
# bases


@pytest.mark.parametrize("base", [2, 10, 0.5, 3.0, math.e, 1e6, np.float32(2.0)])
def test_base_is_nats_over_log_base(base):
    rng = _rng(4)
    p = _dirichlet(rng, 12, 5)
    q = _dirichlet(rng, 12, 5)
    for fn, args in (("entropy", (p,)), ("cross_entropy_pmf", (p, q)), ("kl_divergence", (p, q))):
        f = getattr(cpmf, fn)
        nats = f(*args)
        got = f(*args, base=base)
        with mpmath.workprec(200):
            lb = mpmath.log(mpmath.mpf(float(base)))
            for g, n in zip(got, nats):
                # both within the stated bound of their exact values (relative <= 2 max_ulp u)
                rel = abs(mpmath.mpf(float(g)) * lb / mpmath.mpf(float(n)) - 1)
                assert rel <= 4 * _bounds.bound(fn, "float64").max_ulp * 2.0**-53


@pytest.mark.parametrize("base", [1, 1.0, 0, -2.0, math.inf, math.nan])
def test_bad_base_value(base):
    with pytest.raises(ValueError, match="base"):
        entropy([0.5, 0.5], base=base)


@pytest.mark.parametrize("base", ["2", True, [2.0], 2 + 0j])
def test_bad_base_type(base):
    with pytest.raises(TypeError, match="base"):
        kl_divergence([0.5, 0.5], [0.5, 0.5], base=base)


# ---------------------------------------------------------------------------------------------
# shapes, axis, dtypes


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2, -3])
def test_axis_matches_moveaxis(axis):
    rng = _rng(5)
    p = _dirichlet(rng, 7, 12).reshape(3, 4, 7)
    q = _dirichlet(rng, 7, 12).reshape(3, 4, 7)
    p = np.moveaxis(p, -1, axis)
    q = np.moveaxis(q, -1, axis)
    for fn in ("entropy", "cross_entropy_pmf", "kl_divergence"):
        f = getattr(cpmf, fn)
        args = (p,) if fn == "entropy" else (p, q)
        got = f(*args, axis=axis)
        moved = [np.moveaxis(a, axis, -1) for a in args]
        want = f(*moved)
        assert got.shape == want.shape == moved[0].shape[:-1]
        assert np.array_equal(got, want)  # same rows, same kernel: bitwise equal


def test_axis_errors():
    with pytest.raises(ValueError, match="axis"):
        entropy(np.ones((2, 3)) / 3, axis=2)
    with pytest.raises(TypeError, match="axis"):
        entropy(np.ones((2, 3)) / 3, axis=1.0)
    with pytest.raises(ValueError, match="axis"):
        entropy(np.float64(1.0))


def test_broadcasting_and_shape_errors():
    rng = _rng(6)
    p = _dirichlet(rng, 5)
    q = _dirichlet(rng, 5, 4)
    got = kl_divergence(p, q)
    assert got.shape == (4,)
    assert np.array_equal(got, kl_divergence(np.broadcast_to(p, q.shape), q))
    with pytest.raises(ValueError, match="p and q"):
        kl_divergence(np.ones(3) / 3, np.ones(4) / 4)


def test_scalar_result_and_empty_axis():
    r = entropy([0.5, 0.5])
    assert isinstance(r, np.float64) and np.ndim(r) == 0
    out = entropy(np.zeros((3, 0)))
    assert out.shape == (3,) and np.all(out == 0.0)  # the empty sum
    assert kl_divergence(np.zeros((2, 0)), np.zeros((2, 0))).shape == (2,)
    with pytest.raises(ValueError, match="p"):
        entropy(np.zeros((3, 0)), check=True)


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64])
def test_dtype_preserved_and_rounded_once(dt):
    rng = _rng(7)
    p = _dirichlet(rng, 9, 4).astype(dt)
    q = _dirichlet(rng, 9, 4).astype(dt)
    for fn in ("entropy", "cross_entropy_pmf", "kl_divergence"):
        f = getattr(cpmf, fn)
        args = (p,) if fn == "entropy" else (p, q)
        got = f(*args)
        assert got.dtype == dt
        # the float64 computation on the same (widened) floats, rounded once by NumPy
        wide = f(*[a.astype(np.float64) for a in args])
        assert np.array_equal(got, wide.astype(dt))


def test_dtype_promotion_and_type_errors():
    p32 = np.array([0.5, 0.5], np.float32)
    assert kl_divergence(p32, np.array([0.25, 0.75])).dtype == np.float64
    assert entropy([1, 0]).dtype == np.float64  # integers become float64
    with pytest.raises(TypeError, match="p"):
        entropy(np.array([0.5, 0.5], dtype=complex))
    with pytest.raises(TypeError, match="q"):
        kl_divergence([0.5, 0.5], ["a", "b"])


def test_readonly_and_noncontiguous_inputs():
    rng = _rng(8)
    p = _dirichlet(rng, 6, 4)
    q = _dirichlet(rng, 6, 4)
    want = kl_divergence(p, q)
    p.flags.writeable = False
    q.flags.writeable = False
    assert np.array_equal(kl_divergence(p, q), want)
    assert np.array_equal(kl_divergence(np.asfortranarray(p), q[:, :]), want)
    assert np.array_equal(entropy(p.T, axis=0), entropy(p))


# ---------------------------------------------------------------------------------------------
# check=True


def test_check_accepts_normalized_rows():
    rng = _rng(9)
    for dt, k in ((np.float64, 10), (np.float32, 1000), (np.float16, 20)):
        x = rng.uniform(size=(5, k)).astype(dt)
        p = x / x.sum(axis=1, keepdims=True)  # normalized in the format: sum within K eps of 1
        entropy(p, check=True)
        kl_divergence(p, p, check=True)


@pytest.mark.parametrize(
    "bad,match",
    [([0.5, 0.6], "sum to 1"), ([0.5, np.nan], "nan"), ([1.5, -0.5], "negative"), ([0.5, np.inf], "inf")],
)
def test_check_rejects(bad, match):
    with pytest.raises(ValueError, match=f"p.*{match}|{match}"):
        entropy(bad, check=True)
    with pytest.raises(ValueError, match="^q"):
        cross_entropy_pmf([0.5, 0.5], bad, check=True)
    with pytest.raises(ValueError, match="^p"):
        kl_divergence(bad, [0.5, 0.5], check=True)
    entropy(bad, check=False)  # without check: used as given, no error
    if not np.isfinite(bad).all() or min(bad) < 0:
        with pytest.raises(ValueError, match=match):
            entropy(bad)  # the default checks the entries (not the sums)
    else:
        entropy(bad)


def test_check_tolerance_is_k_eps():
    eps = np.finfo(np.float64).eps
    ok = np.array([0.5, 0.5 + 1.5 * eps])  # K eps = 2 eps
    entropy(ok, check=True)
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(np.array([0.5, 0.5 + 4 * eps]), check=True)


# ---------------------------------------------------------------------------------------------
# reproducibility


def test_bitwise_reproducible_across_threads_and_batch_splits():
    rng = _rng(10)
    p = _dirichlet(rng, 300, 64)
    q = p * (1 + 1e-6 * rng.uniform(-1, 1, p.shape))
    q /= q.sum(axis=1, keepdims=True)
    old = numba.get_num_threads()
    try:
        res = []
        for nt in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(nt)
            res.append((entropy(p), cross_entropy_pmf(p, q), kl_divergence(p, q)))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(res[0], res[-1]):
        assert np.array_equal(a, b)
    split = np.concatenate([kl_divergence(p[:7], q[:7]), kl_divergence(p[7:], q[7:])])
    assert np.array_equal(split, res[0][2])
    assert kl_divergence(p[5], q[5]) == res[0][2][5]


# ---------------------------------------------------------------------------------------------
# empirical PMF, log-likelihood, MLE


def test_empirical_pmf_is_counts_over_n_correctly_rounded():
    rng = _rng(11)
    x = rng.integers(0, 7, size=1000)
    p = empirical_pmf(x, 7)
    assert p.dtype == np.float64 and p.shape == (7,)
    for k in range(7):
        assert p[k] == float(Fraction(int(np.sum(x == k)), 1000))  # Fraction -> float is RN
    assert np.array_equal(empirical_pmf(x.reshape(10, 100), 7), p)  # every entry is a roll
    assert np.array_equal(empirical_pmf([1, 1], 3), [0.0, 1.0, 0.0])


@pytest.mark.parametrize(
    "samples,k,exc,match",
    [
        ([0.0, 1.0], 2, TypeError, "samples"),
        ([0, 3], 3, ValueError, "samples"),
        ([-1, 0], 3, ValueError, "samples"),
        ([0, 1], 0, ValueError, "num_classes"),
        ([0, 1], 2.0, TypeError, "num_classes"),
        ([0, 1], True, TypeError, "num_classes"),
        ([True, False], 2, TypeError, "samples"),
    ],
)
def test_empirical_pmf_errors(samples, k, exc, match):
    with pytest.raises(exc, match=match):
        empirical_pmf(samples, k)


def test_no_samples():
    # 0/0 for the PMF (as NumPy's empty mean and crossent.reference), the empty sum for l
    assert np.all(np.isnan(empirical_pmf(np.array([], np.int64), 3)))
    ll0 = categorical_log_likelihood([0.5, 0.5], np.array([], np.int64))
    assert ll0 == 0.0 and not np.signbit(ll0)


def test_log_likelihood_matches_mpmath():
    rng = _rng(12)
    q = _dirichlet(rng, 5)
    x = rng.integers(0, 5, size=200)
    got = categorical_log_likelihood(q, x)
    with mpmath.workprec(300):
        exact = mpmath.fsum(mpmath.log(mpmath.mpf(q[i])) for i in x)  # sum_n log q(X_n), directly
    rel = abs(mpmath.mpf(got) / exact - 1)
    assert rel <= 2 * _bounds.bound("cross_entropy_pmf", "float64").max_ulp * 2.0**-53


def test_log_likelihood_semantics_and_shapes():
    x = [0, 0, 1]
    assert categorical_log_likelihood([0.0, 1.0, 0.5], x) == -math.inf  # observed class with q = 0
    assert categorical_log_likelihood([0.5, 0.5, 0.0], x) == 3 * math.log(0.5)  # unobserved q = 0
    qs = np.array([[0.5, 0.5, 0.0], [0.25, 0.5, 0.25]], np.float32)
    out = categorical_log_likelihood(qs, x)
    assert out.shape == (2,) and out.dtype == np.float32
    with pytest.raises(ValueError, match="samples"):
        categorical_log_likelihood([0.5, 0.5], [0, 2])
    with pytest.raises(ValueError, match="q"):
        categorical_log_likelihood(0.5, [0])
    with pytest.raises(TypeError, match="samples"):
        categorical_log_likelihood([0.5, 0.5], [0.0])


def test_log_likelihood_is_minus_n_cross_entropy():
    rng = _rng(13)
    x = rng.integers(0, 6, size=600)
    q = _dirichlet(rng, 6)
    ll = categorical_log_likelihood(q, x)
    ce = cross_entropy_pmf(empirical_pmf(x, 6), q)
    # both within 4 ulp of -N H(p, q) (p = c/N is exact times 1/N up to one rounding per entry)
    assert abs(ll + 600 * ce) <= 1e-12 * abs(ll)


def test_mle_is_the_empirical_pmf():
    """The article's proposition, numerically: l(empirical PMF) > l(q) for random q and for
    q near the empirical PMF (including mass moved onto an unobserved class)."""
    rng = _rng(14)
    k, n = 8, 500
    x = rng.choice(k, size=n, p=_dirichlet(rng, k))
    x[x == 3] = 4  # class 3 never observed: the MLE puts no mass there (complementary slackness)
    phat = empirical_pmf(x, k)
    assert phat[3] == 0.0
    best = categorical_log_likelihood(phat, x)
    others = _dirichlet(rng, k, 300)
    assert np.all(categorical_log_likelihood(others, x) < best)
    # local perturbations that keep sum(q) = 1 (the gap is N * KL ~ 500 * 1e-7 >> rounding)
    for _ in range(50):
        d = rng.normal(size=k) * 1e-3
        d[phat == 0] = np.abs(d[phat == 0])
        d -= d.mean()
        q = np.clip(phat + d, 0, None)
        q /= q.sum()
        if np.array_equal(q, phat):
            continue
        assert categorical_log_likelihood(q, x) < best
    # and ell(phat) - ell(q) = N KL(phat || q)
    q = others[0]
    gap = best - categorical_log_likelihood(q, x)
    assert abs(gap - n * kl_divergence(phat, q)) <= 1e-12 * abs(best)


def test_law_of_large_numbers():
    """max_k |p_N(k) - q(k)| shrinks like N^-1/2: for N = 10^6 it is below 5 sigma."""
    rng = _rng(15)
    q = _dirichlet(rng, 6)
    x = rng.choice(6, size=10**6, p=q)
    p = empirical_pmf(x, 6)
    sigma = np.sqrt(q * (1 - q) / 10**6)
    assert np.all(np.abs(p - q) < 5 * sigma)


def test_docstring_examples():
    import crossent

    res = doctest.testmod(cpmf, extraglobs={"crossent": crossent}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert res.attempted >= 10 and res.failed == 0
