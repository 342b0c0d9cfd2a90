"""The correctly rounded float64 mode of the PMF functions: ``entropy``, ``cross_entropy_pmf``,
``kl_divergence`` and ``categorical_log_likelihood`` under ``crossent.rounding("correct")``.

Where each expected value comes from:

* every result is compared bit for bit (signed zeros and nan included) with the oracle
  ``crossent.reference``, which rounds correctly by construction (mpmath, Ziv's strategy);
  inputs: the PMF corpus (``crossent.corpus.pmf``, size "ci", every family), random PMFs
  in the bases e, 2, 10, 1/2, 3, 1.0001 and 1e6, near-identical pairs, subnormal masses and
  the special values (``0 log 0``, ``q = 0 < p``, and with ``check=False`` nan, inf and
  negative entries);
* the forced slow path (``_rounding.pmf_bound`` patched to a bound of ``2**-30``, which no
  rounding test can pass): the oracle's rows come back in place and ``_rounding.COUNTS``
  counts them;
* every row's double-double before its rounding (``_row_dd``) is within the bound of the
  exact value (the oracle's ``exact=True`` at 256 bits), on the corpus and in every base
  (worst error / bound measured: 0.07 entropy, 0.05 cross-entropy, 0.016 KL; with the
  logarithm's term at ``2**-95`` the test fails);
* the double-double logarithms of the kernel (``_log2k_dd``, ``_log_ratio_dd``) against
  mpmath at 300 bits: within the ``2**-85`` relative error the bound (``pmf_bound``) takes;
* float32 results are those of the fast mode; results do not depend on the thread count;
* ``categorical_log_likelihood``: random PMFs, entries above 1 (terms of both signs), zero,
  subnormal and near-1 masses, no samples, the specials with ``check=False``, and a forced
  slow path, bit for bit against the oracle.
"""

from __future__ import annotations

import mpmath
import numba
import numpy as np
import pytest

import crossent
from _precision import same_bits
import crossent.pmf as cpmf
from crossent import _rounding
from crossent import reference as oracle
from crossent.corpus import pmf as pmf_corpus
from crossent.kernels import pmf as kpmf

FUNCTIONS = ("entropy", "cross_entropy_pmf", "kl_divergence")
BASES = (None, 2.0, 10.0, 0.5, 3.0, 1.0001, 1e6)


def first_diff(a, b) -> str:
    a, b = np.atleast_1d(np.asarray(a)).ravel(), np.atleast_1d(np.asarray(b)).ravel()
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b))) | ((a == 0) & (b == 0)
                                                       & (np.signbit(a) != np.signbit(b)))
    i = np.flatnonzero(bad)
    if not i.size:
        return f"dtypes {a.dtype} vs {b.dtype}"
    return f"{i.size}/{a.size} differ; first {a[i[0]]!r} vs oracle {b[i[0]]!r}"


def args_of(fn, p, q):
    return (p,) if fn == "entropy" else (p, q)


def correct(fn, *args, **kw):
    with crossent.rounding("correct"):
        return getattr(crossent, fn)(*args, **kw)


def counts(fn):
    return list(_rounding.COUNTS.get(fn, [0, 0]))


# ---------------------------------------------------------------------------------------
# the corpus


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_corpus_matches_oracle_bit_for_bit(fn):
    cases = pmf_corpus.cases(size="ci", seed=0, dtype="float64", function=fn)
    assert len(cases) > 50  # the corpus is not silently empty
    before = counts(fn)
    bad, outputs = [], 0
    for case in cases:
        got = correct(fn, *case.args, **case.kwargs)
        want = getattr(oracle, fn)(*case.args, **case.kwargs)
        outputs += np.size(want)
        if not same_bits(got, want):
            bad.append(f"{case.name}: {first_diff(got, want)}")
    assert not bad, f"{fn}: {len(cases) - len(bad)}/{len(cases)} cases pass\n" + "\n".join(bad[:10])
    rows = counts(fn)[0] - before[0]
    assert 0 < rows <= outputs  # the correctly rounded path ran (empty rows are not counted)


@pytest.mark.parametrize("base", BASES, ids=str)
@pytest.mark.parametrize("fn", FUNCTIONS)
def test_bases_match_oracle(fn, base):
    """Random PMFs of 3 to 400 classes, q a perturbation of p (eps 1e-1 .. 1e-12) or an
    independent PMF, in every base (below 1 the results change sign)."""
    rng = np.random.default_rng([31, FUNCTIONS.index(fn), BASES.index(base)])
    for K, eps in ((3, 0.3), (17, 1e-3), (64, 1e-7), (400, 1e-12), (50, None)):
        p = rng.dirichlet(np.full(K, 0.7), 12)
        if eps is None:
            q = rng.dirichlet(np.ones(K), 12)
        else:
            q = p * (1 + eps * rng.uniform(-1, 1, p.shape))
            q /= q.sum(axis=1, keepdims=True)
        got = correct(fn, *args_of(fn, p, q), base=base)
        want = getattr(oracle, fn)(*args_of(fn, p, q), base=base)
        assert same_bits(got, want), (K, eps, first_diff(got, want))


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_special_values_match_oracle_and_fast_mode(fn):
    """0 log 0 = 0, q = 0 < p gives +inf (-inf in base 1/2), an empty class axis 0, one class
    0; with check=False a nan or negative entry makes the row nan and an infinite one the IEEE
    value: the oracle's values, and the fast mode's where that is not finite or zero."""
    inf, nan = np.inf, np.nan
    p = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.25, 0.75, 0.0], [1.0, 0.0, 0.0],
                  [0.5, nan, 0.5], [0.5, -0.5, 1.0], [inf, 0.5, 0.5], [0.5, 0.5, 0.0]])
    q = np.array([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0], [0.5, 0.5, 0.0], [1.0, 0.0, 0.0],
                  [0.5, 0.25, 0.25], [0.5, 0.25, 0.25], [0.5, 0.5, 0.0], [0.5, inf, 0.0]])
    for base in (None, 0.5, 10.0):
        got = correct(fn, *args_of(fn, p, q), base=base, check=False)
        want = getattr(oracle, fn)(*args_of(fn, p, q), base=base, check=False)
        fast = getattr(crossent, fn)(*args_of(fn, p, q), base=base, check=False)
        assert same_bits(got, want), (base, got, want)
        special = ~np.isfinite(fast) | (fast == 0)  # (the finite ones may differ by an ulp)
        assert special.sum() >= 5
        assert same_bits(got[special], fast[special]), (base, got, fast)
    for shape in ((4, 0), (4, 1)):
        z = np.ones(shape)
        got = correct(fn, *args_of(fn, z, z))
        assert same_bits(got, getattr(oracle, fn)(*args_of(fn, z, z))), shape


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_subnormal_masses_and_results(fn):
    """Masses down to the smallest subnormal, results in the subnormal range (a peaked PMF
    whose other mass is subnormal): products p log q below 2**-1022 round on the subnormal
    grid, which the absolute part of the bound covers (or the row goes to the oracle)."""
    tiny = np.array([5e-324, 1e-320, 3e-310, 2.2250738585072014e-308, 1e-300])
    rows_p, rows_q = [], []
    for t in tiny:
        rows_p.append([1.0 - 2.0**-53, t, 0.0])
        rows_q.append([1.0 - 2.0**-53, t * 3, t])
        rows_p.append([t, t * 2, 1.0])
        rows_q.append([t * 2, t, 1.0 - 2.0**-53])
    p, q = np.array(rows_p), np.array(rows_q)
    for base in (None, 2.0, 1.0001):
        got = correct(fn, *args_of(fn, p, q), base=base, check=False)
        want = getattr(oracle, fn)(*args_of(fn, p, q), base=base, check=False)
        assert same_bits(got, want), (base, first_diff(got, want))


def test_kl_of_near_identical_pmfs_matches_oracle():
    """q within 1 to 1e6 ulps of p: KL is tiny next to the sum of |p log(p/q)| (the bound's
    A), so some rows go to the oracle; every result is still the oracle's."""
    rng = np.random.default_rng(44)
    p = rng.dirichlet(np.ones(30), 60)
    steps = rng.integers(-1, 2, p.shape) * rng.choice([1, 1000, 10**6], (60, 1))
    q = p * (1 + steps * 2.0**-52)
    got = correct("kl_divergence", p, q)
    assert same_bits(got, oracle.kl_divergence(p, q)), first_diff(got, oracle.kl_divergence(p, q))


# ---------------------------------------------------------------------------------------
# the slow path


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_forced_slow_path_returns_oracle_in_place(monkeypatch, fn):
    """A bound of 2**-30 fails every rounding test: every finite non-zero row goes to the
    oracle and comes back where it belongs (a 3-D input reduced over its middle axis, some
    rows special or zero, which are decided without the oracle)."""
    used = []
    monkeypatch.setattr(_rounding, "pmf_bound", lambda K: used.append(K) or (2.0**-30, 0.0))
    rng = np.random.default_rng(45)
    p = rng.dirichlet(np.ones(7), (4, 5)).transpose(0, 2, 1)  # (4, 7, 5): classes on axis 1
    q = rng.dirichlet(np.ones(7), (4, 5)).transpose(0, 2, 1)
    p[0, :, 0] = np.eye(7)[2]  # entropy 0: every term exactly 0, decided in the kernel
    q[1, :, 1] = 0.0  # q = 0 < p: +inf (cross-entropy, KL)
    p = np.ascontiguousarray(p)
    for base in (None, 2.0):
        before = counts(fn)
        got = correct(fn, *args_of(fn, p, q), base=base, axis=1)
        want = getattr(oracle, fn)(*args_of(fn, p, q), base=base, axis=1)
        assert same_bits(got, want), first_diff(got, want)
        rows, slow = (a - b for a, b in zip(counts(fn), before))
        assert rows == 20
        assert slow == 19, slow  # all but the zero row (entropy) or the +inf row
    assert set(used) == {7}


def test_forced_slow_path_counts_every_row(monkeypatch):
    """With the true bound the rows of random PMFs are decided in the kernel (no slow row);
    with the bound forced huge all of them are slow, and the results do not change."""
    rng = np.random.default_rng(46)
    p, q = rng.dirichlet(np.ones(40), 100), rng.dirichlet(np.ones(40), 100)
    before = counts("cross_entropy_pmf")
    fast_path = correct("cross_entropy_pmf", p, q)
    assert [a - b for a, b in zip(counts("cross_entropy_pmf"), before)] == [100, 0]
    monkeypatch.setattr(_rounding, "pmf_bound", lambda K: (2.0**-30, 0.0))
    before = counts("cross_entropy_pmf")
    slow_path = correct("cross_entropy_pmf", p, q)
    assert [a - b for a, b in zip(counts("cross_entropy_pmf"), before)] == [100, 100]
    assert same_bits(fast_path, slow_path)


# ---------------------------------------------------------------------------------------
# the kernel's logarithms against mpmath


def _rel_err(h, l, exact):
    with mpmath.workprec(300):
        return abs((mpmath.mpf(h) + mpmath.mpf(l) - exact) / exact)


def test_log2k_dd_within_2_pow_minus_85():
    rng = np.random.default_rng(47)
    xs = np.concatenate([rng.uniform(0, 1, 300), 1.0 - rng.uniform(0, 2.0**-40, 50),
                         1.0 + rng.uniform(0, 2.0**-40, 50), 2.0 ** rng.uniform(-1074, 1023, 200),
                         [5e-324, 0.5, 2.0, np.nextafter(1.0, 0.0), np.nextafter(1.0, 2.0),
                          0.7071067811865476, 1.4142135623730951, 1.7976931348623157e308]])
    worst = 0.0
    for x in xs:
        for e in (0, 1, -1, 1500):
            h, l = kpmf._log2k_dd(float(x), 0.0, e)
            with mpmath.workprec(300):
                exact = mpmath.log(mpmath.mpf(float(x))) + e * mpmath.log(2)
            if exact == 0:  # x 2**e = 1: exactly 0
                assert h == 0.0 and l == 0.0, (x, e)
                continue
            worst = max(worst, float(_rel_err(h, l, exact)))
    assert worst <= 2.0**-85, worst


def test_log_ratio_dd_within_2_pow_minus_85():
    """Ratios near 1 (one ulp apart: the atanh branch), at the branch boundary |s| = 0.17,
    far apart and beyond the float range (p/q up to 2**2098), subnormal pairs."""
    rng = np.random.default_rng(48)
    pairs = []
    for _ in range(300):
        x = float(rng.uniform(1e-3, 1))
        pairs.append((x, float(x * (1 + rng.uniform(-0.5, 0.5)))))
        pairs.append((x, float(np.nextafter(x, 2.0))))
        s = 0.17 * (1 + rng.uniform(-1e-3, 1e-3))
        pairs.append((x, x * (1 - s) / (1 + s)))
        a, b = 2.0 ** rng.uniform(-1074, 1023, 2)
        pairs.append((float(a), float(b)))
    pairs += [(5e-324, 1.5e-323), (1e-320, 1.0000001e-320), (1.7976931348623157e308, 5e-324),
              (5e-324, 1.7976931348623157e308), (3e-310, np.nextafter(3e-310, 1.0))]
    worst = 0.0
    for x, y in pairs:
        if x == y:
            continue
        h, l = kpmf._log_ratio_dd(x, y)
        with mpmath.workprec(300):
            exact = mpmath.log(mpmath.mpf(x)) - mpmath.log(mpmath.mpf(y))
        worst = max(worst, float(_rel_err(h, l, exact)))
    assert worst <= 2.0**-85, worst


_KIND = {"entropy": 0, "cross_entropy_pmf": 1, "kl_divergence": 2}


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_double_double_within_the_bound_on_corpus(fn):
    """Before its rounding, every row's double-double (``_row_dd``) is within the error bound
    the rounding test uses (``pmf_bound``) of the exact value (the oracle's ``exact=True``,
    mpmath at 256 bits): the derivation checked row by row, on the corpus and on random rows
    in every base. (The bit-for-bit tests above cannot see a bound that is too small: a row
    it wrongly decides is rounded correctly unless it lies that close to a midpoint.)"""
    rng = np.random.default_rng(51)
    inputs = [(c.args, c.kwargs) for c in
              pmf_corpus.cases(size="ci", seed=0, dtype="float64", function=fn)]
    for base in BASES:
        p = rng.dirichlet(np.full(30, 0.5), 20)
        q = rng.dirichlet(np.ones(30), 20)
        inputs.append((args_of(fn, p, q), {"base": base}))
    names = ["p"] if fn == "entropy" else ["p", "q"]
    checked, worst = 0, 0.0
    for args, kw in inputs:
        lb, _dt, _shape, rows, b = cpmf._prepare(list(args), names, kw.get("axis", -1),
                                                 kw.get("base"), False)
        if rows is None:
            continue
        rel, ab = _rounding.pmf_bound(rows[0].shape[1])
        for i in range(rows[0].shape[0]):
            pr, qr = np.ascontiguousarray(rows[0][i]), np.ascontiguousarray(rows[-1][i])
            status, rh, rl, err = kpmf._row_dd(pr, qr, _KIND[fn], lb[0], lb[1], rel, ab)
            if status != 1:
                continue
            with mpmath.workprec(256):
                exact = getattr(oracle, fn)(*((pr,) if fn == "entropy" else (pr, qr)),
                                            base=b, check=False, exact=True)
                exact = mpmath.mpf(np.asarray(exact, dtype=object).reshape(-1)[0])
                e = abs(mpmath.mpf(rh) + mpmath.mpf(rl) - exact)
            assert e <= err, (fn, kw, i, float(e), err)
            worst = max(worst, float(e / err))
            checked += 1
    assert checked > 200
    assert worst > 0.0  # the comparison is not vacuous


def test_pmf_bound_terms():
    """The bound's terms (docs/accuracy.md): at K = 1 it is a little above the logarithm's
    2**-85; it grows by 2**-103 per class; the absolute part is 2**-1072 per class plus 8."""
    rel1, abs1 = _rounding.pmf_bound(1)
    assert 2.0**-85 < rel1 < 2.0**-85 * 1.01
    rel2, _ = _rounding.pmf_bound(1001)
    assert rel2 - rel1 == pytest.approx(1000 * 2.0**-103, rel=1e-3)
    assert abs1 == 9 * 2.0**-1072


# ---------------------------------------------------------------------------------------
# other dtypes, threads


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_float32_is_unchanged_by_the_mode(fn):
    rng = np.random.default_rng(49)
    p = rng.dirichlet(np.ones(20), 30).astype(np.float32)
    q = rng.dirichlet(np.ones(20), 30).astype(np.float32)
    before = counts(fn)
    got = correct(fn, *args_of(fn, p, q), base=2.0)
    assert counts(fn) == before  # the float64 path did not run
    assert same_bits(got, getattr(crossent, fn)(*args_of(fn, p, q), base=2.0))


def test_independent_of_thread_count():
    rng = np.random.default_rng(50)
    p, q = rng.dirichlet(np.ones(50), 2000), rng.dirichlet(np.ones(50), 2000)

    def run():
        return [correct(fn, *args_of(fn, p, q)) for fn in FUNCTIONS]

    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run()
    finally:
        numba.set_num_threads(n0)
    assert all(same_bits(a, b) for a, b in zip(one, two))


# ---------------------------------------------------------------------------------------
# categorical_log_likelihood: -H(c, q) on the exact counts, the cross-entropy's path


def _loglik_cases():
    """(q, samples): random PMFs of 7 classes with some zero masses (observed or not), a row
    of ones (every term exactly 0), entries above 1 (terms of both signs, with ``check=None``
    allowed: q is used as given), subnormal and near-1 masses; samples with repeats."""
    rng = np.random.default_rng(47)
    q = rng.dirichlet(np.full(7, 0.3), 120)
    q[0, 2] = 0.0
    q[1] = 1.0
    q[2, 3] = 2.5
    q[3] = [1e-310, 0.5, 1 - 2.0**-53, 1.0, 3.0, 1e-5, 0.2]
    q[4] = [2.0, 0.5, 0.25, 1.0, 1.0, 1.0, 1.0]  # 2 log 2 + log(1/2) + ...: may cancel
    s = rng.integers(0, 7, 50)
    s[:4] = [0, 0, 4, 1]
    return q, s


def test_categorical_log_likelihood_matches_oracle():
    """Bit for bit against the oracle: the cases above, a 3-D ``q``, one PMF, no samples."""
    q, s = _loglik_cases()
    with crossent.rounding("correct"):
        got = cpmf.categorical_log_likelihood(q, s)
        got3 = cpmf.categorical_log_likelihood(q[:24].reshape(2, 12, 7), s)
        one = cpmf.categorical_log_likelihood(q[5], s)
        none = cpmf.categorical_log_likelihood(q[:6], np.array([], dtype=np.int64))
    want = oracle.categorical_log_likelihood(q, s)
    assert same_bits(got, want), first_diff(got, want)
    assert same_bits(got3, want[:24].reshape(2, 12)), first_diff(got3, want[:24])
    assert same_bits(one, want[5])
    assert same_bits(none, oracle.categorical_log_likelihood(q[:6], np.array([], np.int64)))
    # the cases are not all correctly rounded by the fast kernel (else this test could not
    # tell the modes apart)
    assert not same_bits(cpmf.categorical_log_likelihood(q, s), want)


def test_categorical_log_likelihood_special_values():
    """``check=False``: nan and negative entries (observed or not) and +inf, as the oracle."""
    q = np.array([[0.5, np.nan, 0.5], [0.5, -0.1, 0.6], [np.inf, 0.5, 0.5], [0.0, 0.5, 0.5],
                  [0.5, 0.5, np.inf]])
    s = np.array([0, 2, 2])
    with crossent.rounding("correct"):
        got = cpmf.categorical_log_likelihood(q, s, check=False)
    want = oracle.categorical_log_likelihood(q, s, check=False)
    assert same_bits(got, want), first_diff(got, want)


def test_categorical_log_likelihood_forced_slow_path(monkeypatch):
    """A bound of 2**-30: every row with a finite non-zero value goes to the oracle, comes
    back in place, and is counted; the values do not change."""
    q, s = _loglik_cases()
    q = q[:30]
    with crossent.rounding("correct"):
        decided = cpmf.categorical_log_likelihood(q, s)
    monkeypatch.setattr(_rounding, "pmf_bound", lambda K: (2.0**-30, 0.0))
    before = counts("categorical_log_likelihood")
    with crossent.rounding("correct"):
        forced = cpmf.categorical_log_likelihood(q, s)
    rows, slow = (a - b for a, b in zip(counts("categorical_log_likelihood"), before))
    assert rows == 30 and slow == 28, slow  # all but row 0 (-inf) and row 1 (exactly 0)
    assert same_bits(forced, decided)
    assert same_bits(forced, oracle.categorical_log_likelihood(q, s))


def test_categorical_log_likelihood_float32_unchanged():
    q, s = _loglik_cases()
    q = q[5:25].astype(np.float32)
    fast = cpmf.categorical_log_likelihood(q, s)
    with crossent.rounding("correct"):
        assert same_bits(cpmf.categorical_log_likelihood(q, s), fast)
