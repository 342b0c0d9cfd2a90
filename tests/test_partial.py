"""Exact reductions and ``reduction="partial"`` (``docs/reductions.md``).

The contract: ``"sum"`` and ``"mean"`` are the exact sum of the float64 per-item losses (and,
for the mean, of the weights) rounded once, so their bits do not depend on the row order, the
thread count or how the batch is split; the :class:`crossent.Partial` of any split of a batch,
added in any order, gives the bits of the whole batch's ``"sum"`` and ``"mean"``.

Provenance of the expected values: exact rational arithmetic (``fractions.Fraction`` sums of
the per-item float64 values, rounded by ``crossent.round_to_dtype``, itself checked against
mpmath in ``tests/test_ulp.py``), or the whole batch's own result (the bitwise contract).
"""

from __future__ import annotations

import itertools
import math
import pickle
import random
from fractions import Fraction

import numba
import numpy as np
import pytest

import crossent
from crossent import Partial, loss, round_to_dtype
from crossent._partial import exact_label_weight_sum, exact_sum, round_ratio

DTYPES = (np.float64, np.float32, np.float16)
ids = lambda d: np.dtype(d).name  # noqa: E731
SCALE = 2**1074


def _bits(v) -> bytes:
    return np.asarray(v).tobytes()


def _fsum(values) -> Fraction:
    return sum((Fraction(float(v)) for v in values), Fraction(0))


# --- the accumulator against exact rational sums ---------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_exact_sum_is_the_rational_sum(seed):
    """Every binade (subnormals, huge values), both signs: the int equals the Fraction sum."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 3000))
    v = rng.standard_normal(n) * np.exp2(rng.integers(-1074, 1000, n).astype(np.float64))
    v[rng.random(n) < 0.1] = 0.0
    v[rng.random(n) < 0.05] *= -0.0
    v[rng.random(n) < 0.05] = rng.integers(1, 2**52, 1)[0] * 5e-324  # subnormals
    total, nan, pinf, ninf = exact_sum(v)
    assert (nan, pinf, ninf) == (0, 0, 0)
    assert Fraction(total, SCALE) == _fsum(v)
    # order-independent: any permutation gives the same int
    assert exact_sum(rng.permutation(v))[0] == total


def test_exact_sum_counts_special_values():
    v = np.array([1.0, np.inf, np.nan, -np.inf, np.inf, -0.5, 5e-324, -np.nan])
    total, nan, pinf, ninf = exact_sum(v)
    assert (nan, pinf, ninf) == (2, 2, 1)
    assert Fraction(total, SCALE) == Fraction(1) - Fraction(1, 2) + Fraction(5e-324)
    assert exact_sum(np.empty(0)) == (0, 0, 0, 0)


def test_exact_sum_does_not_cancel_catastrophically():
    """1e308 + 1 - 1e308 + 2**-1074: a float sum loses the middle terms; the exact one not."""
    v = np.array([1e308, 1.0, -1e308, 5e-324, 1e308, 1e308])  # the last two overflow float64
    total, *_ = exact_sum(v)
    assert Fraction(total, SCALE) == 2 * Fraction(1e308) + 1 + Fraction(5e-324)


@pytest.mark.parametrize("has_weight", [True, False])
def test_label_weight_sum_is_the_rational_sum(has_weight):
    rng = np.random.default_rng(3)
    w = rng.uniform(0, 3, 40) * np.exp2(rng.integers(-60, 60, 40).astype(np.float64))
    w[5] = 0.0
    y = rng.integers(0, 40, 5000)
    y[::7] = -100
    got = exact_label_weight_sum(y, w, has_weight, -100)
    want = sum((Fraction(w[c]) if has_weight else Fraction(1) for c in y.tolist() if c != -100),
               Fraction(0))
    assert Fraction(got, SCALE) == want


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_round_ratio_is_correct_rounding(dtype):
    """The float64 path (CPython int / int) and the narrow one agree with round_to_dtype on the
    exact Fraction, including the subnormal range and overflow."""
    rng = random.Random(5)
    emax = {np.float64: 1024, np.float32: 128, np.float16: 16}[dtype]
    cases = [(2**1024 - 2**970, 1), (2**1024 - 2**970 - 1, 1), (-(2**1024), 1), (1, 2**1075),
             (3, 2**1076), (1, 2**1076), (0, 7), (2**emax, 1), (2**emax - 1, 1)]
    for _ in range(3000):
        num = rng.getrandbits(rng.randint(1, 200)) << rng.randint(0, 1100)
        den = rng.getrandbits(rng.randint(1, 200)) << rng.randint(0, 1100) or 1
        cases.append((num if rng.random() < 0.7 else -num, den))
    # the midpoints of the format between 1 and 2, and the numbers just off them
    p = {np.float64: 53, np.float32: 24, np.float16: 11}[dtype]
    for k in rng.sample(range(2**(p - 1)), 200):
        mid = (2 * (2**(p - 1) + k) + 1) << 1100  # (2**p + 2k + 1) / 2**p, scaled by 2**(p+1100)
        for d in (-1, 0, 1):
            cases.append((mid + d, 2 ** (p + 1100)))
            cases.append((-(mid + d), 2 ** (p + 1100)))
    for num, den in cases:
        got = round_ratio(num, den, dtype)
        want = round_to_dtype(Fraction(num, den), dtype)
        assert got.dtype == np.dtype(dtype) and _bits(got) == _bits(want), (num, den)


# --- partials of random splits, in every option ----------------------------------------------

def _problem(dtype, targets, weighted, smoothing, seed, n=301, c=17):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * rng.choice([0.5, 4, 30], (n, 1))).astype(dtype)
    x[rng.random(n) < 0.05, 3] = -np.inf  # masked classes
    if targets == "labels":
        t = rng.integers(0, c, n)
        t[rng.random(n) < 0.15] = -100
    else:
        t = rng.dirichlet(np.full(c, 0.3), n).astype(dtype)
    opts = {"label_smoothing": smoothing}
    if weighted:
        w = rng.uniform(0.1, 3, c)
        w[2] = 0.0
        opts["weight"] = w.astype(dtype)
    return x, t, opts


def _splits(rng, n):
    """A random split of range(n) into 1..8 contiguous chunks (some may be empty)."""
    k = int(rng.integers(1, 9))
    cuts = np.sort(rng.integers(0, n + 1, k - 1))
    edges = [0, *cuts.tolist(), n]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


OPTIONS = list(itertools.product(DTYPES, ("labels", "probs"), (False, True), (0.0, 0.1)))


@pytest.mark.parametrize("dtype,targets,weighted,smoothing", OPTIONS,
                         ids=lambda v: ids(v) if isinstance(v, type) else str(v))
@pytest.mark.parametrize("fn", ["cross_entropy", "value_and_grad"])
def test_partials_of_random_splits_give_the_whole_batch_bits(dtype, targets, weighted, smoothing, fn):
    seed = OPTIONS.index((dtype, targets, weighted, smoothing)) + 100 * (fn == "value_and_grad")
    x, t, opts = _problem(dtype, targets, weighted, smoothing, seed)
    if fn == "cross_entropy":
        f = lambda x, t, r: crossent.cross_entropy(x, t, reduction=r, **opts)  # noqa: E731
    else:
        f = lambda x, t, r: crossent.cross_entropy_value_and_grad(x, t, reduction=r, **opts)[0]  # noqa: E731
    whole_sum, whole_mean = f(x, t, "sum"), f(x, t, "mean")
    whole = f(x, t, "partial")
    assert isinstance(whole, Partial) and whole.dtype == np.dtype(dtype)
    assert whole.kind == ("weight" if targets == "labels" else "count")
    assert whole.count == x.shape[0]
    assert _bits(whole.sum()) == _bits(whole_sum) and whole.sum().dtype == np.dtype(dtype)
    assert _bits(whole.mean()) == _bits(whole_mean) and whole.mean().dtype == np.dtype(dtype)
    rng = np.random.default_rng(seed)
    for _ in range(4):
        parts = [f(x[s], t[s], "partial") for s in _splits(rng, x.shape[0])]
        rng.shuffle(parts)
        for total in (sum(parts), parts[0] + sum(parts[1:]), sum(reversed(parts))):
            assert total == whole
            assert _bits(total.sum()) == _bits(whole_sum)
            assert _bits(total.mean()) == _bits(whole_mean)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("targets", ["labels", "probs"])
def test_row_permutations_give_the_same_bits(dtype, targets):
    x, t, opts = _problem(dtype, targets, True, 0.05, 11)
    rng = np.random.default_rng(12)
    ref = {r: crossent.cross_entropy(x, t, reduction=r, **opts) for r in ("sum", "mean", "partial")}
    ref_vg = crossent.cross_entropy_value_and_grad(x, t, **opts)
    for _ in range(3):
        p = rng.permutation(x.shape[0])
        for r in ("sum", "mean"):
            assert _bits(crossent.cross_entropy(x[p], t[p], reduction=r, **opts)) == _bits(ref[r])
        assert crossent.cross_entropy(x[p], t[p], reduction="partial", **opts) == ref["partial"]
        loss_p, grad_p = crossent.cross_entropy_value_and_grad(x[p], t[p], **opts)
        assert _bits(loss_p) == _bits(ref_vg[0])
        assert _bits(grad_p) == _bits(ref_vg[1][p])  # the gradient's scale is order-independent


def test_class_axis_and_batch_dimensions():
    """Items of a (N, C, d) batch with axis=1 are the N*d positions; splits along N add up."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((12, 5, 7))
    y = rng.integers(0, 5, (12, 7))
    y[3, 2] = -100
    whole = crossent.cross_entropy(x, y, axis=1, reduction="partial")
    assert whole.count == 84
    parts = [crossent.cross_entropy(x[a:b], y[a:b], axis=1, reduction="partial")
             for a, b in ((0, 5), (5, 6), (6, 12))]
    assert sum(parts) == whole
    assert _bits(whole.mean()) == _bits(crossent.cross_entropy(x, y, axis=1))


# --- exactness: the partial holds the rational sums of the per-item values --------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("targets", ["labels", "probs"])
def test_partial_holds_the_exact_sums_of_the_per_item_values(dtype, targets):
    """total = the Fraction sum of the kernel's float64 per-item losses; weight = the Fraction
    sum of w[y] over kept items (labels) or N (probabilities); sum() and mean() their correct
    rounding. The per-item float64 values are the kernel's (``loss._losses``): for float64
    inputs they are also what reduction='none' returns."""
    x, t, opts = _problem(dtype, targets, True, 0.0, 21, n=400)
    x = np.where(np.isinf(x), 0, x).astype(dtype)  # finite losses only: the rational sums exist
    prob = loss._Problem(x, t, -1, opts["weight"], -100, "partial", 0.0)
    items = loss._losses(prob)
    if dtype == np.float64:
        assert _bits(items) == _bits(crossent.cross_entropy(x, t, reduction="none", **opts))
    part = crossent.cross_entropy(x, t, reduction="partial", **opts)
    s = _fsum(items)
    assert Fraction(part.total, SCALE) == s
    w64 = np.asarray(opts["weight"], dtype=np.float64)
    if targets == "labels":
        den = _fsum(w64[c] for c in t.tolist() if c != -100)
    else:
        den = Fraction(x.shape[0])
    assert Fraction(part.weight, SCALE) == den
    for dt in (None, np.float64, np.float32, np.float16):
        out = np.dtype(dtype) if dt is None else np.dtype(dt)
        assert _bits(part.sum(dt)) == _bits(round_to_dtype(s, out))
        assert _bits(part.mean(dt)) == _bits(round_to_dtype(s / den, out))


@pytest.mark.parametrize("dtype,big,mid,small", [(np.float64, 2.0**53, 1025.0, -690.0),
                                                 (np.float32, 2.0**24, 1025.0, -90.0),
                                                 (np.float16, 2048.0, 1025.0, -40.0)],
                         ids=["float64", "float32", "float16"])
def test_sum_is_correctly_rounded_where_a_float_sum_is_not(dtype, big, mid, small):
    """Per-item losses big, mid (exact: the other logit's exp underflows) and a tiny one:
    big + mid is a midpoint of the output format and the tiny loss decides the rounding. A
    double-double sum in this order keeps big + mid and drops the tiny term (rounding the tie
    to even, and for float32/float16 the tiny term is below half a float64 ulp of the total);
    the exact sum rounds up, in every order of the rows."""
    x = np.array([[-big, 0.0], [-mid, 0.0], [0.0, small]]).astype(dtype)
    y = np.array([0, 0, 0])
    items = loss._losses(loss._Problem(x, y, -1, None, -100, "sum", 0.0))
    assert items[0] == big and items[1] == mid and 0 < items[2] < 1e-15
    exact = _fsum(items)
    up = round_to_dtype(Fraction(big) + Fraction(mid) + 1, dtype)  # the upper neighbour of the tie
    assert _bits(round_to_dtype(exact, dtype)) == _bits(up)
    for p in itertools.permutations(range(3)):
        p = list(p)
        assert _bits(crossent.cross_entropy(x[p], y[p], reduction="sum")) == _bits(up)
        assert _bits(crossent.cross_entropy(x[p], y[p])) == _bits(round_to_dtype(exact / 3, dtype))


def test_gradient_scale_is_the_exact_weight_sum_rounded_once():
    """value_and_grad's mean gradient divides by the exact weight sum rounded once: for
    uniform logits the gradient at a kept label is -w_y (1 - 1/C) / W exactly computed."""
    C = 4
    w = np.array([0.1, 2.0**53, 0.3, 0.7])  # a float sum in any order rounds: the exact one once
    y = np.array([0, 1, 2, 3, 1, 2, 0, 3, 3])
    x = np.zeros((y.size, C))
    den = float(round_to_dtype(_fsum(w[y]), np.float64))
    _, g = crossent.cross_entropy_value_and_grad(x, y, weight=w)
    _, gs = crossent.cross_entropy_value_and_grad(x, y, weight=w, reduction="sum")
    for n, c in enumerate(y):
        # -w (S - 1)/S / den with S = 4: the kernel rounds the exact quotient once
        want = round_to_dtype(-Fraction(w[c]) * Fraction(3, 4) / Fraction(den), np.float64)
        assert _bits(g[n, c]) == _bits(want)
        assert _bits(gs[n, c]) == _bits(np.float64(-w[c] * 0.75))


def test_partial_gradient_is_the_gradient_of_the_sum():
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((50, 9)), rng.integers(0, 9, 50)
    p, g = crossent.cross_entropy_value_and_grad(x, y, reduction="partial")
    _, gs = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    assert isinstance(p, Partial) and _bits(g) == _bits(gs)


# --- threads, pickling, special values, errors ------------------------------------------------


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="Numba was started with one thread")
@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_one_and_two_threads_give_the_same_bits(dtype):
    x, t, opts = _problem(dtype, "labels", True, 0.1, 31, n=1500, c=33)
    xp, tp, optp = _problem(dtype, "probs", False, 0.0, 32, n=1500, c=33)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            r = [crossent.cross_entropy(x, t, reduction=red, **opts) for red in ("sum", "mean")]
            r += [crossent.cross_entropy(xp, tp, reduction=red, **optp) for red in ("sum", "mean")]
            r += [*crossent.cross_entropy_value_and_grad(x, t, **opts)]
            parts = [crossent.cross_entropy(x, t, reduction="partial", **opts),
                     crossent.cross_entropy(xp, tp, reduction="partial", **optp)]
            results.append(([_bits(v) for v in r], parts))
    finally:
        numba.set_num_threads(before)
    assert results[0] == results[1]


def test_pickle_round_trip():
    rng = np.random.default_rng(9)
    for dtype in DTYPES:
        x = rng.standard_normal((40, 6)).astype(dtype)
        y = rng.integers(0, 6, 40)
        x[3, 0] = np.nan  # a nan item: the counts pickle too
        for t in (y, rng.dirichlet(np.ones(6), 40).astype(dtype)):
            p = crossent.cross_entropy(x, t, reduction="partial")
            q = pickle.loads(pickle.dumps(p))
            assert q == p and q is not p and type(q) is Partial
            assert _bits(q.sum()) == _bits(p.sum()) and _bits(q.mean()) == _bits(p.mean())
            assert q + p == p + p
            assert np.isnan(q.sum())


def test_special_values():
    x = np.array([[0.0, 1.0], [0.0, -np.inf], [1.0, 2.0]])
    y = np.array([0, 1, 1])
    p = crossent.cross_entropy(x, y, reduction="partial")  # item 1's label is masked: +inf
    assert (p.pos_inf, p.nan, p.neg_inf) == (1, 0, 0)
    assert p.sum() == np.inf and p.mean() == np.inf
    assert p.sum() == crossent.cross_entropy(x, y, reduction="sum")
    q = crossent.cross_entropy(np.array([[np.nan, 0.0]]), np.array([0]), reduction="partial")
    assert np.isnan((p + q).sum()) and np.isnan((q + p).mean())
    finite = crossent.cross_entropy(x[[0, 2]], y[[0, 2]], reduction="partial")
    assert (finite + p).sum() == np.inf and np.isfinite(finite.sum())
    # +inf and -inf items together give nan (the per-item losses are never -inf; a value
    # accumulator shared with signed reductions must still get this right)
    both = Partial(0, 1, 2, np.float64, "count", pos_inf=1, neg_inf=1)
    assert np.isnan(both.sum()) and np.isnan(both.mean())
    assert Partial(0, 1, 1, np.float64, "count", neg_inf=1).sum() == -np.inf


def test_overflowing_sum_rounds_to_inf():
    """Per-item losses near the float64 maximum sum to an exact value beyond it: inf, as the
    correct rounding of the exact sum; the mean of the same items is finite."""
    x = np.array([[0.0, -1.7e308], [0.0, -1.7e308]])
    y = np.array([1, 1])
    items = crossent.cross_entropy(x, y, reduction="none")
    assert np.all(items == 1.7e308)
    assert crossent.cross_entropy(x, y, reduction="sum") == np.inf
    assert crossent.cross_entropy(x, y) == 1.7e308
    p = crossent.cross_entropy(x, y, reduction="partial")
    assert p.sum() == np.inf and p.sum(np.float32) == np.inf and p.mean() == 1.7e308


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_mean_with_zero_total_weight_is_nan(dtype):
    x = np.ones((4, 3), dtype=dtype)
    all_ignored = crossent.cross_entropy(x, np.full(4, -100), reduction="partial")
    zero_weight = crossent.cross_entropy(x, np.array([1, 1, 1, 1]),
                                         weight=np.array([1.0, 0.0, 2.0]), reduction="partial")
    empty = crossent.cross_entropy(x[:0], np.zeros((0, 3), dtype=dtype), reduction="partial")
    for p in (all_ignored, zero_weight, empty):
        assert p.weight == 0 and np.isnan(p.mean()) and p.mean().dtype == np.dtype(dtype)
        assert p.sum() == 0 and not np.signbit(p.sum())
    assert np.isnan(crossent.cross_entropy(x, np.full(4, -100)))
    # a chunk with no kept item adds nothing to the divisor of the others
    kept = crossent.cross_entropy(x, np.array([0, 1, 2, 0]), reduction="partial")
    assert _bits((kept + all_ignored).mean()) == _bits(kept.mean())


def test_errors():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((5, 3))
    p64 = crossent.cross_entropy(x, rng.integers(0, 3, 5), reduction="partial")
    p32 = crossent.cross_entropy(x.astype(np.float32), rng.integers(0, 3, 5), reduction="partial")
    prob = crossent.cross_entropy(x, rng.dirichlet(np.ones(3), 5), reduction="partial")
    with pytest.raises(ValueError, match="different dtypes: float64 and float32"):
        p64 + p32
    with pytest.raises(ValueError, match="different kinds of mean"):
        sum([p64, prob])
    for other in (1, 0.0, "a", None, True, np.float64(1.0)):
        with pytest.raises(TypeError):
            p64 + other
        with pytest.raises(TypeError):
            other + p64
    assert 0 + p64 == p64 and p64 + 0 == p64
    with pytest.raises(TypeError, match="dtype"):
        p64.sum(np.int32)
    with pytest.raises(TypeError, match="dtype"):
        p64.mean("complex128")
    with pytest.raises(ValueError, match="reduction"):
        crossent.cross_entropy(x, np.array([0, 1, 2, 0, 1]), reduction="Partial")
    with pytest.raises(ValueError, match="kind"):
        Partial(0, 0, 0, np.float64, "items")


@pytest.mark.parametrize("reduction", ["mean", "partial"])
def test_bad_labels_never_reach_the_weight_accumulator(reduction, monkeypatch):
    """The accumulator indexes the weights by label without a bounds check: a bad label must
    be rejected before it runs (the accumulator is replaced by a trap here)."""
    from crossent.kernels import exact

    def trap(*args):  # pragma: no cover - reaching it is the failure
        raise AssertionError("the weight accumulator got an unchecked label")

    monkeypatch.setattr(exact, "accumulate_label_weights", trap)
    x = np.zeros((2, 3))
    for bad in (3, -1, 2**40):
        with pytest.raises(ValueError, match=r"target\[1\]"):
            crossent.cross_entropy(x, np.array([0, bad]), weight=np.ones(3), reduction=reduction)
    with pytest.raises(AssertionError, match="unchecked"):  # the trap is live
        crossent.cross_entropy(x, np.array([0, 1]), weight=np.ones(3), reduction=reduction)


def test_repr_shows_the_rounded_results():
    p = crossent.cross_entropy(np.zeros((2, 4)), np.array([1, 2]), reduction="partial")
    r = repr(p)
    assert r.startswith("Partial(") and f"sum={np.float64(2 * math.log(4))}" in r
    assert f"mean={np.float64(math.log(4))}" in r and "count=2" in r and "float64" in r


def test_the_oracle_has_no_partial_reduction():
    """Decision (docs/reductions.md): the oracle's sum and mean are the correct rounding of the
    exact reduced value, which no finite sum of rounded per-item values holds; it rejects
    'partial' with a ValueError naming the argument."""
    from crossent import reference

    with pytest.raises(ValueError, match="reduction"):
        reference.cross_entropy(np.zeros((2, 3)), np.array([0, 1]), reduction="partial")


def test_docstring_examples_run():
    """crossent._partial is not in tests/test_docs.py's list of public modules: run its
    examples here."""
    import doctest

    from crossent import _partial

    result = doctest.testmod(_partial, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 5 and result.failed == 0


@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e300], ids=["subnormal", "1e-300", "1e300"])
def test_partials_of_extreme_weights_give_the_whole_batch_bits(scale):
    """Class weights beyond 2**±64 are scaled by a power of two before the kernels run; the
    partials keep that power (``Partial.exp``), so the pieces still add up to the whole batch's
    'sum' and 'mean' bit for bit."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 5))
    y = rng.integers(0, 5, 40)
    w = np.array([0.5, 1.0, 2.0, 1.5, 3.0]) * scale
    parts = [crossent.cross_entropy(x[i:i + 13], y[i:i + 13], weight=w, reduction="partial")
             for i in range(0, 40, 13)]
    total = sum(parts[::-1])
    assert total.sum() == crossent.cross_entropy(x, y, weight=w, reduction="sum")
    whole_mean = crossent.cross_entropy(x, y, weight=w, reduction="mean")
    assert total.mean() == whole_mean or (np.isnan(whole_mean) and np.isnan(total.mean()))


def test_partials_with_different_powers_of_two_add_exactly():
    """Two partials whose sums are in different units (``exp``) add to the exact sum."""
    a = Partial(3, 1 << 1074, 1, np.float64, "count", exp=2)   # 3 * 2**(2-1074), divisor 4
    b = Partial(5, 1 << 1074, 1, np.float64, "count", exp=0)   # 5 * 2**-1074, divisor 1
    c = a + b
    assert c.exp == 0 and c.total == 3 * 4 + 5 and c.weight == (4 << 1074) + (1 << 1074)
    assert c.sum() == np.float64(17 * 2.0**-1074)
