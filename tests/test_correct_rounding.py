"""The correctly rounded float64 mode (``crossent.rounding("correct")``).

What is checked, and where each expected value comes from:

* the corpus: every float64 result of ``logsumexp``, ``log_softmax``, ``softmax`` and the
  per-item ``cross_entropy`` equals the oracle's (``crossent.reference``, correctly rounded by
  construction) bit for bit, signed zeros included; the ``"sum"`` and ``"mean"`` losses equal
  the exact sum (mean) of the oracle's per-item floats, computed with ``fractions.Fraction``
  and rounded once by ``Fraction -> float`` (CPython's integer true division rounds
  correctly);
* class weights that crossent rescales by a power of two (beyond 2**-64 and 2**64) with
  losses in or near the subnormal range: the per-item losses and the sum are the oracle's;
* the slow path forced (a relative bound so large that the rounding test cannot pass): the
  rows it sends to the oracle come back in place, and ``_rounding.COUNTS`` records them;
* ``logsumexp`` with ``b``: one-sign and mixed factors, exact and near cancellation, zero
  factors, specials, value and sign bit for bit against the oracle, and a forced slow path;
* ``crossent.dask`` in mode "correct": the NumPy call's bits (synchronous and threaded
  schedulers, two chunkings), and NotImplementedError at graph build for what NumPy refuses;
* the mode API (contextvars semantics), NotImplementedError for every function without a
  correctly rounded path (any dtype), narrow formats unchanged by the mode, results
  independent of the thread count;
* the kernel helpers ``_half_gap`` (against ``np.nextafter``) and ``_round_cr`` (against
  Fraction arithmetic and ``_round_sum``).
"""

from __future__ import annotations

import math
import re
import threading
from fractions import Fraction

import numba
import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _rounding
from crossent import reference as oracle
from crossent.kernels import softmax as ksoft
from crossent.kernels._base import jit
from crossent.testing import logits_corpus

SOFTMAX_FAMILY = ("logsumexp", "log_softmax", "softmax")


@pytest.fixture(autouse=True)
def _fast_mode_around():
    """Every test starts and ends in the default mode (a failing test that used set_rounding
    must not leave "correct" behind for the others)."""
    prev = crossent.get_rounding()
    yield
    crossent.set_rounding(prev)


def diff_summary(a, b) -> str:
    a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
    if a.shape != b.shape:
        return f"shapes {a.shape} vs {b.shape}"
    bad = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    bad |= (a == 0) & (b == 0) & (np.signbit(a) != np.signbit(b))
    i = np.flatnonzero(bad.ravel())
    if i.size == 0:
        return f"dtypes {a.dtype} vs {b.dtype}"
    k = i[0]
    return (f"{i.size}/{a.size} entries differ; first at flat {k}: "
            f"{a.ravel()[k]!r} vs oracle {b.ravel()[k]!r}")


# ---------------------------------------------------------------------------------------
# 1. the corpus against the oracle

# The oracle on the whole "ci" float64 corpus (all families, the four functions) takes about
# 5 s on the 2-core machine (measured), so every family runs at size "ci".
@pytest.fixture(scope="module")
def corpus():
    return logits_corpus("float64", size="ci")


def _axes(case):
    return (-1,) if case.axis in (-1, case.logits.ndim - 1) else (-1, case.axis)


def _check_all(label, calls):
    """Run ``calls`` (a list of (name, computed thunk, expected thunk)); fail with the pass
    fraction and the first failures."""
    bad = []
    for name, got, want in calls:
        g, w = got(), want()
        if not same_bits(g, w):
            bad.append(f"{name}: {diff_summary(g, w)}")
    if bad:
        frac = 1 - len(bad) / len(calls)
        pytest.fail(f"{label}: {len(calls) - len(bad)}/{len(calls)} cases pass ({frac:.1%});\n"
                    + "\n".join(bad[:15]))


@pytest.mark.parametrize("fn", SOFTMAX_FAMILY)
def test_corpus_softmax_family_matches_oracle(corpus, fn):
    calls = []
    for case in corpus:
        for axis in _axes(case):
            def got(case=case, axis=axis):
                with crossent.rounding("correct"):
                    return getattr(crossent, fn)(case.logits, axis=axis)

            def want(case=case, axis=axis):
                return getattr(oracle, fn)(case.logits, axis=axis)

            calls.append((f"{case.name} axis={axis}", got, want))
    _check_all(fn, calls)


def test_corpus_cross_entropy_none_matches_oracle(corpus):
    calls = []
    for case in corpus:
        opts = case.loss_options("none")

        def got(case=case, opts=opts):
            with crossent.rounding("correct"):
                return crossent.cross_entropy(case.logits, case.target, **opts)

        def want(case=case, opts=opts):
            return oracle.cross_entropy(case.logits, case.target, **opts)

        calls.append((case.name, got, want))
    _check_all("cross_entropy(reduction='none')", calls)


def _grad_case(case) -> bool:
    """Cases whose gradient has a correctly rounded path: class weights (if any) within
    2**+-64 (class indices or probabilities, with or without label smoothing)."""
    w = case.weight
    return ((w is None or not np.asarray(w).size
                 or 2.0**-64 <= float(np.max(w)) <= 2.0**64 or float(np.max(w)) == 0.0))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_corpus_gradient_matches_oracle(corpus, reduction):
    """The gradient of cross_entropy_value_and_grad, bit for bit the oracle's (whose mean
    divides by the exact sum of the weights), and its loss the exact reduction of the oracle's
    per-item losses."""
    calls = []
    for case in corpus:
        if not _grad_case(case):
            continue
        opts = case.loss_options(reduction)

        def got(case=case, opts=opts):
            with crossent.rounding("correct"):
                return crossent.cross_entropy_value_and_grad(case.logits, case.target, **opts)[1]

        def want(case=case, opts=opts):
            return oracle.cross_entropy_value_and_grad(case.logits, case.target, **opts)[1]

        calls.append((case.name, got, want))
    assert len(calls) > 50  # the corpus keeps enough class-index cases
    _check_all(f"cross_entropy_value_and_grad(reduction={reduction!r}) gradient", calls)


def test_gradient_in_place_and_forced_slow_path(monkeypatch):
    """In place (out is the logits) the slow path still sees the logits: with a bound that
    sends every row to the oracle, the gradient written over the logits is the oracle's."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((40, 30)) * 4
    y = rng.integers(0, 30, 40)
    y[::6] = -100
    w = rng.uniform(0.1, 2.0, 30)
    want_loss, want = oracle.cross_entropy_value_and_grad(x, y, weight=w)
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-40)
    before = list(_rounding.COUNTS.get("cross_entropy_value_and_grad", [0, 0]))
    xx = x.copy()
    with crossent.rounding("correct"):
        loss, g = crossent.cross_entropy_value_and_grad(xx, y, weight=w, out=xx)
    after = _rounding.COUNTS["cross_entropy_value_and_grad"]
    assert g is xx and same_bits(g, want), diff_summary(g, want)
    assert after[1] - before[1] > 0
    assert float(loss) == float(exact_reduction(_AdHocCase(x, y, dict(weight=w)), "mean"))


def _soft_problems(rng, N, C):
    """Probability targets and label smoothing, with targets near the softmax (the gradient
    ``A p_i - a_i`` cancels: the absolute bound leaves those entries undecided) and far from
    it, class weights, ignored rows and a masked class."""
    x = rng.standard_normal((N, C)) * 3
    x[::17, 1] = -np.inf
    t = rng.dirichlet(np.ones(C), N)
    near = oracle.softmax(x[: N // 4])  # correctly rounded softmax: A p_i - a_i ~ 2**-53 a_i
    t[: N // 4] = near * (1 + rng.standard_normal(near.shape) * 2.0**-40)
    y = rng.integers(0, C, N)
    y[::9] = -100
    w = rng.uniform(0.1, 2.0, C)
    return x, [("probs", t, {}), ("probs-eps-weight", t, dict(label_smoothing=0.3, weight=w)),
               ("labels-eps", y, dict(label_smoothing=0.1)),
               ("labels-eps-weight", y, dict(label_smoothing=0.2, weight=w))]


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_soft_gradient_matches_oracle_with_cancellation(reduction):
    """Probability targets and label smoothing: the gradient bit for bit the oracle's (mean:
    the exact divisor), including rows whose target is within 2**-40 of the softmax, where
    the kernel's entries are undecided and the oracle takes the row (counted)."""
    rng = np.random.default_rng(11)
    x, problems = _soft_problems(rng, 80, 12)
    for label, target, kw in problems:
        before = list(_rounding.COUNTS.get("cross_entropy_value_and_grad", [0, 0]))
        with crossent.rounding("correct"):
            loss, g = crossent.cross_entropy_value_and_grad(x, target, reduction=reduction, **kw)
        want = oracle.cross_entropy_value_and_grad(x, target, reduction=reduction, **kw)[1]
        after = _rounding.COUNTS["cross_entropy_value_and_grad"]
        assert same_bits(g, want), f"{label}: {diff_summary(g, want)}"
        assert after[0] - before[0] == 80
        if label == "probs":  # the near-softmax rows cannot all be decided; the others can
            assert 0 < after[1] - before[1] < 40, after[1] - before[1]
        assert float(loss) == float(exact_reduction(_AdHocCase(x, target, kw), reduction))


def test_soft_gradient_in_place_forced_slow_path(monkeypatch):
    """A bound so large that no entry is decided: every row not ignored goes to the oracle
    and comes back in place (out is the logits)."""
    rng = np.random.default_rng(12)
    x, problems = _soft_problems(rng, 36, 7)
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-40)
    for label, target, kw in problems:
        want = oracle.cross_entropy_value_and_grad(x, target, **kw)[1]
        before = list(_rounding.COUNTS.get("cross_entropy_value_and_grad", [0, 0]))
        xx = x.copy()
        with crossent.rounding("correct"):
            _, g = crossent.cross_entropy_value_and_grad(xx, target, out=xx, **kw)
        after = _rounding.COUNTS["cross_entropy_value_and_grad"]
        assert g is xx and same_bits(g, want), f"{label}: {diff_summary(g, want)}"
        kept = 36 if label.startswith("probs") else int((target != -100).sum())
        assert after[1] - before[1] == kept, label


def _round_fraction(q: Fraction) -> float:
    try:
        return float(q)  # int / int true division: correctly rounded
    except OverflowError:
        return math.inf if q > 0 else -math.inf


def exact_reduction(case, reduction) -> np.float64:
    """The exact sum (or mean) of the oracle's per-item float64 losses, rounded once. The mean
    divides by the sum of the label weights over the items not ignored (class indices) or by
    the number of items (probabilities): the oracle's definition (its docstring's Notes)."""
    items = np.asarray(oracle.cross_entropy(case.logits, case.target,
                                            **case.loss_options("none"))).ravel()
    if np.isnan(items).any():
        return np.float64(np.nan)
    den = _mean_denominator(case) if reduction == "mean" else Fraction(1)
    if reduction == "mean" and den == 0:  # every item ignored (or zero weights): 0/0
        return np.float64(np.nan)
    if np.isinf(items).any():
        assert (items >= 0).all()  # the losses are >= 0 (the weights are): +inf wins
        return np.float64(np.inf)
    total = sum((Fraction(float(v)) for v in items), Fraction(0))
    return np.float64(_round_fraction(total / den))


def _mean_denominator(case) -> Fraction:
    if case.probability_target:
        return Fraction(int(np.prod(case.target.shape)) // case.logits.shape[case.axis])
    labels = np.asarray(case.target).ravel()
    keep = labels != case.ignore_index
    if case.weight is None:
        return Fraction(int(keep.sum()))
    w = np.asarray(case.weight, dtype=np.float64)
    return sum((Fraction(float(w[y])) for y in labels[keep]), Fraction(0))


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_corpus_cross_entropy_reductions_are_exact_sums_of_oracle_items(corpus, reduction):
    calls = []
    for case in corpus:
        def got(case=case):
            with crossent.rounding("correct"):
                return crossent.cross_entropy(case.logits, case.target,
                                              **case.loss_options(reduction))

        calls.append((case.name, got, lambda case=case: exact_reduction(case, reduction)))
    _check_all(f"cross_entropy(reduction={reduction!r})", calls)


# ---------------------------------------------------------------------------------------
# 2. the slow path, forced


def _loss_problems(rng):
    """Loss calls on a 200 x 50 float64 batch: class indices plain and with weights, ignored
    items and smoothing, probabilities with weights and smoothing, and weights large enough
    to be rescaled by a power of two inside crossent (beyond 2**64)."""
    N, C = 200, 50
    y = rng.integers(0, C, N)
    y_ign = y.copy()
    y_ign[::7] = 3  # ignore_index=3 is in range: those items are ignored
    w = rng.uniform(0.0, 2.0, C)
    w[5] = 0.0
    p = rng.dirichlet(np.ones(C), N)
    p[::5] = 0.0
    p[::5, 0] = 1.0  # one-hot rows
    return [
        ("labels", y, {}),
        ("labels+weight+ignore+smoothing", y_ign,
         dict(weight=w, ignore_index=3, label_smoothing=0.1)),
        ("labels+large weight", y, dict(weight=w * 2.0**60)),
        ("probs+weight+smoothing", p, dict(weight=w, label_smoothing=0.2)),
    ]


def _batch(rng):
    x = rng.standard_normal((200, 50)) * rng.choice([0.1, 3.0, 40.0], (200, 1))
    x[::11, 0] = -np.inf  # masked classes
    x[::13] += 1e5  # offsets
    return x


@pytest.mark.parametrize("bound", [2.0**-40, 2.0**-58], ids=["all-slow", "mixed"])
def test_forced_slow_path_matches_oracle(monkeypatch, bound):
    """With a relative bound of 2**-40 every result fails the rounding test (the error
    ``2**-40 |r|`` exceeds the half gap ``<= 2**-53 |r|``) and every row goes to the oracle;
    with 2**-58 some rows do and some do not, so fast and slow rows are interleaved. The
    results are the oracle's either way."""
    calls = []
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: calls.append(C) or bound)
    rng = np.random.default_rng(20261130)
    x = _batch(rng)
    before = {k: list(v) for k, v in _rounding.COUNTS.items()}

    def grew(name):
        old = before.get(name, [0, 0])
        new = _rounding.COUNTS[name]
        return new[0] - old[0], new[1] - old[1]

    for fn in SOFTMAX_FAMILY:
        with crossent.rounding("correct"):
            got = getattr(crossent, fn)(x)
        want = getattr(oracle, fn)(x)
        assert same_bits(got, want), f"{fn}: {diff_summary(got, want)}"
        rows, slow = grew(fn)
        assert rows == 200, fn
        # logsumexp scales the bound by |log S| / |result| (m is exact): rows whose max is
        # large next to log S can pass even 2**-40, so only "some" is certain there
        if bound == 2.0**-40 and fn != "logsumexp":
            assert slow == 200, (fn, slow)
        else:
            assert 0 < slow, (fn, slow)
        before = {k: list(v) for k, v in _rounding.COUNTS.items()}

    for label, target, kw in _loss_problems(rng):
        for reduction in ("none", "sum", "mean"):
            with crossent.rounding("correct"):
                got = crossent.cross_entropy(x, target, reduction=reduction, **kw)
            if reduction == "none":
                want = oracle.cross_entropy(x, target, reduction="none", **kw)
            else:
                case = _AdHocCase(x, target, kw)
                want = exact_reduction(case, reduction)
            assert same_bits(got, want), f"{label} {reduction}: {diff_summary(got, want)}"
            rows, slow = grew("cross_entropy")
            assert rows == 200
            assert slow > 0, (label, reduction, slow)
            before = {k: list(v) for k, v in _rounding.COUNTS.items()}
    assert calls and set(calls) == {50}  # the patched bound was used, with C = 50


def test_forced_slow_path_other_axis(monkeypatch):
    """A 3-D input reduced over its middle axis, every row through the oracle: the slow rows
    are put back where the kernel's rows came from."""
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-40)
    x = np.random.default_rng(7).standard_normal((6, 9, 5)) * 10
    y = np.random.default_rng(8).integers(0, 9, (6, 5))
    with crossent.rounding("correct"):
        res = {fn: getattr(crossent, fn)(x, axis=1) for fn in SOFTMAX_FAMILY}
        loss = crossent.cross_entropy(x, y, axis=1, reduction="none")
    for fn in SOFTMAX_FAMILY:
        want = getattr(oracle, fn)(x, axis=1)
        assert same_bits(res[fn], want), f"{fn}: {diff_summary(res[fn], want)}"
    want = oracle.cross_entropy(x, y, axis=1, reduction="none")
    assert same_bits(loss, want), diff_summary(loss, want)


class _AdHocCase:
    """The attributes exact_reduction reads, for an input built here."""

    def __init__(self, x, target, kw):
        self.logits, self.target, self.axis = x, target, -1
        self.weight = kw.get("weight")
        self.ignore_index = kw.get("ignore_index", -100)
        self.probability_target = np.asarray(target).dtype.kind == "f"
        self._kw = kw

    def loss_options(self, reduction):
        return dict(self._kw, reduction=reduction, axis=-1)


# Class weights outside [2**-64, 2**64] are scaled by a power of two inside crossent and the
# per-item losses scaled back. Where the scaled or the unscaled loss is subnormal, scaling
# back is not exact, and the result is not the correctly rounded one: 3e-310 weights give
# subnormal losses rounded twice (off by one subnormal ulp), 1e300 weights on a row whose
# scaled loss, about exp(-710), is subnormal give a normal loss with only ~50 bits right.
_RESCALED = {
    "weights-3e-310": (np.array([[-4.099, -1.919, -5.325]]), np.array([0]), np.full(3, 3e-310)),
    "weights-1e300": (np.array([[0.0, -710.0]]), np.array([0]), np.full(2, 1e300)),
}


@pytest.mark.parametrize("reduction", ["none", "sum"])
@pytest.mark.parametrize("key", list(_RESCALED))
def test_rescaled_weights_are_refused_in_correct_mode(key, reduction):
    """Class weights beyond 2**+-64 are scaled by a power of two inside and the results scaled
    back, which rounds twice where either is subnormal (found on these inputs: 3e-310 weights
    gave a loss 1 subnormal ulp from the oracle's, 1e300 weights a normal loss 2.3 ulp off):
    the correct mode refuses them (loss and gradient) instead of returning such a result."""
    x, y, w = _RESCALED[key]
    with crossent.rounding("correct"):
        with pytest.raises(NotImplementedError, match="class weights beyond"):
            crossent.cross_entropy(x, y, weight=w, reduction=reduction)
        with pytest.raises(NotImplementedError, match="class weights beyond"):
            crossent.cross_entropy_value_and_grad(x, y, weight=w, reduction=reduction)
    crossent.cross_entropy(x, y, weight=w, reduction=reduction)  # valid in the fast mode


@pytest.mark.parametrize("C", [1, 10, 10**6])
def test_relative_bound_is_positive(C):
    """0.0 means "the fast path" to the kernels: the correctly rounded path must never pass it."""
    b = _rounding.relative_bound(C)
    assert b > 0.0
    assert b < 2.0**-60  # and small enough that the rounding test can pass at all


# ---------------------------------------------------------------------------------------
# 3. the mode API


def test_default_mode_is_fast():
    assert crossent.get_rounding() == "fast"
    assert _rounding.MODES == ("fast", "correct")


def test_rounding_context_restores_on_exit_and_on_exception():
    with crossent.rounding("correct"):
        assert crossent.get_rounding() == "correct"
        with crossent.rounding("fast"):
            assert crossent.get_rounding() == "fast"
        assert crossent.get_rounding() == "correct"
    assert crossent.get_rounding() == "fast"
    with pytest.raises(KeyError):
        with crossent.rounding("correct"):
            raise KeyError("boom")
    assert crossent.get_rounding() == "fast"


def test_set_rounding_returns_previous():
    assert crossent.set_rounding("correct") == "fast"
    assert crossent.get_rounding() == "correct"
    assert crossent.set_rounding("correct") == "correct"
    assert crossent.set_rounding("fast") == "correct"
    assert crossent.get_rounding() == "fast"


@pytest.mark.parametrize("bad", ["exact", None, 1, "Correct"])
def test_invalid_mode_is_a_value_error_naming_the_modes(bad):
    for call in (crossent.set_rounding, crossent.rounding):
        with pytest.raises(ValueError) as info:
            if call is crossent.rounding:
                with call(bad):
                    pass
            else:
                call(bad)
        assert "'fast'" in str(info.value) and "'correct'" in str(info.value)
        assert crossent.get_rounding() == "fast"  # unchanged by the failed call


def test_new_thread_starts_in_fast_mode():
    seen = {}

    def worker():
        seen["start"] = crossent.get_rounding()
        crossent.set_rounding("correct")  # the thread's own context only
        seen["after"] = crossent.get_rounding()

    with crossent.rounding("correct"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert crossent.get_rounding() == "correct"
    assert seen == {"start": "fast", "after": "correct"}
    assert crossent.get_rounding() == "fast"


# ---------------------------------------------------------------------------------------
# 3b. the binary loss, softplus and log_sigmoid (elementwise)


def _binary_corpus():
    from crossent.corpus import binary as bcorpus

    return [c for c in bcorpus.cases("float64")]


@pytest.mark.parametrize("case", _binary_corpus(), ids=lambda c: c.name)
def test_binary_corpus_correctly_rounded(case):
    """Every per-element float64 loss of the binary corpus (logits up to 1e300, soft targets,
    weights, pos_weight) is the oracle's bit for bit; "sum"/"mean" are the exact sum (mean) of
    the oracle's per-element floats, rounded once (Fraction)."""
    kw = dict(case.kwargs(), reduction="none")
    expected = np.asarray(oracle.binary_cross_entropy_with_logits(case.logits, case.target,
                                                                  **kw), dtype=np.float64)
    with crossent.rounding("correct"):
        got = crossent.binary_cross_entropy_with_logits(case.logits, case.target, **kw)
        total = crossent.binary_cross_entropy_with_logits(
            case.logits, case.target, **dict(kw, reduction="sum"))
    assert same_bits(got, expected), case.name
    if np.isfinite(expected).all():
        exact = sum(Fraction(float(v)) for v in expected.reshape(-1))
        assert float(total) == float(exact), case.name


@pytest.mark.parametrize("case", _binary_corpus(), ids=lambda c: c.name)
def test_binary_gradient_corpus_correctly_rounded(case):
    """The gradient of binary_cross_entropy_with_logits_value_and_grad ("mean": the exact
    divisor) on the binary corpus is the oracle's bit for bit."""
    kw = dict(case.kwargs(), reduction="mean")
    want = oracle.binary_cross_entropy_with_logits_value_and_grad(case.logits, case.target,
                                                                   **kw)[1]
    with crossent.rounding("correct"):
        got = crossent.binary_cross_entropy_with_logits_value_and_grad(case.logits, case.target,
                                                                       **kw)[1]
    assert same_bits(got, want), f"{case.name}: {diff_summary(got, want)}"


def _binary_grad_inputs(rng, n):
    """Logits across the range (the exponential's, the cut at |x| = 600, infinities), hard and
    soft targets, and targets within 2**-40 of sigmoid(x), where the gradient cancels."""
    x = np.concatenate([rng.normal(scale=5, size=n - 30), rng.uniform(-800, 800, 20),
                        [np.inf, -np.inf, 0.0, -0.0, 600.0, -600.0, 600.5, -650.0, 36.7, -40.0]])
    t = rng.uniform(size=n)
    t[::5], t[1::5] = 1.0, 0.0
    near = slice(2, n - 30, 4)
    t[near] = oracle.softmax(np.stack([x[near], np.zeros_like(x[near])], axis=1))[:, 0] * (
        1 + rng.normal(size=x[near].size) * 2.0**-40)
    w = rng.uniform(0.1, 3.0, n)
    return x, np.clip(t, 0.0, 1.0), w


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_gradient_seeded_with_cancellation(reduction):
    """Seeded elements with weights and pos_weight, some near cancellation: every gradient
    element is the oracle's; the near-cancelling ones are sent to it (counted), the others
    mostly not."""
    rng = np.random.default_rng(21)
    x, t, w = _binary_grad_inputs(rng, 240)
    pw = rng.uniform(0.5, 2.0, 240)
    name = "binary_cross_entropy_with_logits_value_and_grad"
    for kw in ({}, dict(weight=w, pos_weight=pw)):
        before = list(_rounding.COUNTS.get(name, [0, 0]))
        with crossent.rounding("correct"):
            _, got = crossent.binary_cross_entropy_with_logits_value_and_grad(
                x, t, reduction=reduction, **kw)
        want = oracle.binary_cross_entropy_with_logits_value_and_grad(x, t, reduction=reduction,
                                                                       **kw)[1]
        after = _rounding.COUNTS[name]
        assert same_bits(got, want), f"{kw.keys()}: {diff_summary(got, want)}"
        assert after[0] - before[0] == 240 and 0 < after[1] - before[1] < 120


def test_binary_gradient_zero_weight_is_decided_without_the_oracle():
    """A zero weight makes the gradient element exactly 0 (both products 0, bound 0): the
    kernel returns it (``_round_cr_abs`` with err = 0) instead of sending it to the oracle;
    the values are the oracle's."""
    rng = np.random.default_rng(23)
    x, t, w = _binary_grad_inputs(rng, 60)
    w[:] = 0.0
    name = "binary_cross_entropy_with_logits_value_and_grad"
    before = list(_rounding.COUNTS.get(name, [0, 0]))
    with crossent.rounding("correct"):
        _, got = crossent.binary_cross_entropy_with_logits_value_and_grad(x, t, weight=w)
    after = _rounding.COUNTS[name]
    want = oracle.binary_cross_entropy_with_logits_value_and_grad(x, t, weight=w)[1]
    assert same_bits(got, want), diff_summary(got, want)
    assert after[0] - before[0] == 60 and after[1] - before[1] == 0


def test_binary_gradient_forced_slow_path(monkeypatch):
    """A bound no element can pass: every gradient element is the oracle's (with the whole
    batch's mean divisor), in place, and counted."""
    from crossent.kernels import binary as kbin

    monkeypatch.setattr(kbin, "BCE_GRAD_CR_ERR", 2.0**-30)
    rng = np.random.default_rng(22)
    x, t, w = _binary_grad_inputs(rng, 90)
    name = "binary_cross_entropy_with_logits_value_and_grad"
    before = list(_rounding.COUNTS.get(name, [0, 0]))
    with crossent.rounding("correct"):
        _, got = crossent.binary_cross_entropy_with_logits_value_and_grad(x, t, weight=w)
    after = _rounding.COUNTS[name]
    want = oracle.binary_cross_entropy_with_logits_value_and_grad(x, t, weight=w)[1]
    assert same_bits(got, want), diff_summary(got, want)
    assert after[0] - before[0] == 90 and after[1] - before[1] == 90


@pytest.mark.parametrize("name", ["softplus", "log_sigmoid"])
def test_softplus_log_sigmoid_correctly_rounded(name):
    """softplus and log_sigmoid on logits across the range (seeded normal of scales 0.1 to
    1000, the special values, the region where the value is subnormal or 0): every float64
    result is the oracle's bit for bit."""
    rng = np.random.default_rng(16)
    x = np.concatenate([rng.normal(scale=s, size=400) for s in (0.1, 1.0, 30.0, 800.0)] + [
        np.array([0.0, -0.0, 1e-300, -1e-300, 40.0, -40.0, 36.7, -708.5, -745.1, -745.2,
                  -1100.0, -1100.5, 1100.5, 1e300, -1e300, np.inf, -np.inf, np.nan])])
    with crossent.rounding("correct"):
        got = getattr(crossent, name)(x)
    expected = np.asarray(getattr(oracle, name)(x), dtype=np.float64)
    assert same_bits(got, expected)


def test_binary_forced_slow_path(monkeypatch):
    """With a bound the rounding test cannot pass, every element goes to the oracle, in its
    place, and is counted."""
    from crossent.kernels import binary as kbin

    monkeypatch.setattr(kbin, "BCE_CR_REL_ERR", 2.0**-30)
    rng = np.random.default_rng(17)
    x = rng.normal(scale=4, size=300)
    t = rng.uniform(size=300)
    before = list(_rounding.COUNTS.get("binary_cross_entropy_with_logits", [0, 0]))
    with crossent.rounding("correct"):
        got = crossent.binary_cross_entropy_with_logits(x, t, reduction="none")
    after = _rounding.COUNTS["binary_cross_entropy_with_logits"]
    assert after[0] - before[0] == 300 and after[1] - before[1] == 300
    expected = np.asarray(oracle.binary_cross_entropy_with_logits(x, t, reduction="none"),
                          dtype=np.float64)
    assert same_bits(got, expected)


# ---------------------------------------------------------------------------------------
# 3c. entropy_logits


def _divergence_corpus():
    from crossent.corpus import divergence as dcorpus

    return dcorpus.cases(size="ci", seed=0, dtype="float64")


@pytest.mark.parametrize("base", [None, 2.0, 10.0])
def test_entropy_logits_corpus_correctly_rounded(base):
    """Every float64 row entropy of the divergence corpus (rows near-equal, confident, masked,
    large offsets) in nats, bits and decimal digits is the oracle's bit for bit."""
    cases = _divergence_corpus()
    assert len(cases) > 50
    for case in cases:
        with crossent.rounding("correct"):
            got = crossent.entropy_logits(case.p, axis=case.axis, base=base)
        expected = oracle.entropy_logits(case.p, axis=case.axis, base=base)
        assert same_bits(np.asarray(got), np.asarray(expected, dtype=np.float64)), case.name


def test_entropy_logits_random_rows_and_forced_slow_path(monkeypatch):
    """Seeded normal logits (10 and 300 classes) are the oracle's; with a bound the rounding
    test cannot pass every row goes to the oracle, in its place, and is counted."""
    rng = np.random.default_rng(18)
    for rows, C in ((200, 10), (60, 300)):
        x = rng.normal(scale=3.0, size=(rows, C))
        with crossent.rounding("correct"):
            got = crossent.entropy_logits(x)
        assert same_bits(got, np.asarray(oracle.entropy_logits(x), dtype=np.float64)), C
    monkeypatch.setattr(_rounding, "entropy_relative_bound", lambda C: 2.0**-30)
    before = list(_rounding.COUNTS.get("entropy_logits", [0, 0]))
    with crossent.rounding("correct"):
        got = crossent.entropy_logits(x)
    after = _rounding.COUNTS["entropy_logits"]
    assert after[0] - before[0] == 60 and after[1] - before[1] == 60
    assert same_bits(got, np.asarray(oracle.entropy_logits(x), dtype=np.float64))


@pytest.mark.parametrize("base", [None, 2.0])
def test_entropy_logits_gradient_corpus_correctly_rounded(base):
    """entropy_logits_value_and_grad on the divergence corpus: the value and every gradient
    entry are the oracle's bit for bit (its gradient: interval arithmetic, Ziv's loop)."""
    for case in _divergence_corpus():
        with crossent.rounding("correct"):
            v, g = crossent.entropy_logits_value_and_grad(case.p, axis=case.axis, base=base)
        vo, go = oracle.entropy_logits_value_and_grad(case.p, axis=case.axis, base=base)
        assert same_bits(np.asarray(v), np.asarray(vo, dtype=np.float64)), case.name
        assert same_bits(g, go), f"{case.name}: {diff_summary(g, go)}"


def _entropy_cancelling_rows(rng, n, C):
    """Normal rows whose entry 0 is moved (a fixed-point iteration in float64) to where
    ``-log P_0 = H``: its gradient ``P_0 (-log P_0 - H)`` cancels to about ``2**-50`` of
    ``P_0 H``."""
    x = rng.normal(scale=2.0, size=(n, C))
    for _ in range(60):
        m = x.max(axis=1, keepdims=True)
        e = np.exp(x - m)
        S = e.sum(axis=1, keepdims=True)
        P = e / S
        H = -(P * np.log(P)).sum(axis=1)
        x[:, 0] = m[:, 0] + np.log(S[:, 0]) - H  # -log P_0 = (m - x_0) + log S = H
    return x


def test_entropy_logits_gradient_cancellation_and_forced_slow_path(monkeypatch):
    """Rows where ``-log P_0`` is within float rounding of ``H`` (the gradient's difference
    cancels), rows of equal logits (every entry exactly 0: the kernel cannot decide 0, the
    oracle does), a masked class, and ordinary rows: the value and gradient are the oracle's
    bit for bit; with a bound no entry can pass, every row is the oracle's, in its place,
    and counted."""
    rng = np.random.default_rng(19)
    x = rng.normal(scale=3.0, size=(80, 12))
    x[:30] = _entropy_cancelling_rows(rng, 30, 12)
    x[30:34] = 1.5
    x[34:40, 3] = -np.inf
    name = "entropy_logits_value_and_grad"
    before = list(_rounding.COUNTS.get(name, [0, 0]))
    with crossent.rounding("correct"):
        v, g = crossent.entropy_logits_value_and_grad(x, base=2.0)
    vo, go = oracle.entropy_logits_value_and_grad(x, base=2.0)
    after = _rounding.COUNTS[name]
    assert same_bits(v, vo) and same_bits(g, go), diff_summary(g, go)
    assert (np.abs(go[:30, 0]) < 2.0**-40 * np.abs(go[:30]).max(axis=1)).all()  # cancelled
    assert after[0] - before[0] == 80 and 4 <= after[1] - before[1] < 40
    monkeypatch.setattr(_rounding, "relative_bound", lambda C: 2.0**-30)
    before = list(after)
    y = x[::4].copy()
    with crossent.rounding("correct"):
        v, g = crossent.entropy_logits_value_and_grad(y, axis=-1)
    vo, go = oracle.entropy_logits_value_and_grad(y)
    after = _rounding.COUNTS[name]
    assert same_bits(v, vo) and same_bits(g, go), diff_summary(g, go)
    assert after[0] - before[0] == 20 and after[1] - before[1] == 20


# ---------------------------------------------------------------------------------------
# logsumexp with scale factors b


def _lse_b_cases():
    """(x, b) rows of 9 classes: factors of one sign (rows 0-59) and of mixed signs,
    zero factors (their x anything, nan included), a row of zero factors, a row of -inf,
    +inf and nan among the used entries, sums that cancel exactly (-inf, sign 0) or nearly,
    factors spanning 1e-300 .. 1e300, a term near exp(-1000) next to a tiny factor."""
    rng = np.random.default_rng(6)
    n, C = 150, 9
    x = rng.standard_normal((n, C)) * 3
    b = rng.uniform(0.1, 2.0, (n, C))
    b[60:] *= rng.choice([-1.0, 1.0], (n - 60, C))
    b[5, 3] = 0.0
    b[6] = 0.0
    x[7] = -np.inf
    x[8, 2] = np.inf
    x[9, 2] = np.nan
    b[10, 4], x[10, 4] = 0.0, np.nan
    b[11, 4], x[11, 4] = 0.0, np.inf
    x[100] = 0.0
    b[100] = [1, -1, 2, -2, 0.5, -0.5, 3, -3, 0]  # exactly 0
    x[101], b[101] = 0.0, 0.0
    x[101, 1], b[101, :2] = np.log(2.0), [2.0, -1.0]  # 2 - 2 e^{fl(log 2)}: tiny, not 0
    x[102, :2], b[102, :2] = [0.0, 1e-17], [1.0, -1.0]  # cancels to about 1e-17
    b[103] *= 1e-300
    b[104, 0] = 1e300
    x[105], x[105, 0], b[105, 0] = -1000.0, 0.0, 1e-300
    x[106, 8], b[106, 8] = np.inf, -1.0  # +inf with a negative factor
    return x, b


@pytest.mark.parametrize("return_sign", [True, False])
def test_logsumexp_b_matches_oracle(return_sign):
    """Bit for bit against the oracle, value and sign (without ``return_sign`` a negative
    sum gives nan, as the oracle); a 3-D input reduced over two axes with a broadcast ``b``."""
    x, b = _lse_b_cases()
    with crossent.rounding("correct"):
        got = crossent.logsumexp(x, b=b, return_sign=return_sign)
    want = oracle.logsumexp(x, b=b, return_sign=return_sign)
    for g, w in zip(*((got, want) if return_sign else ((got,), (want,)))):
        assert same_bits(g, w), diff_summary(g, w)
    x3 = x[:60].reshape(5, 4, 3, 9)[..., :3].reshape(5, 12, 3)
    b3 = np.linspace(-1.0, 2.0, 36).reshape(12, 3)
    with crossent.rounding("correct"):
        got = crossent.logsumexp(x3, axis=(1, 2), b=b3, return_sign=True, keepdims=True)
    want = oracle.logsumexp(x3, axis=(1, 2), b=b3, return_sign=True, keepdims=True)
    assert all(same_bits(g, w) for g, w in zip(got, want))


def test_logsumexp_b_differs_from_fast_mode_and_counts_cancellation():
    """The cases are not all correctly rounded by the fast kernel (the test above can tell
    the modes apart); the exactly and nearly cancelling rows go to the oracle, the others
    do not (the bound is far below half an ulp on these)."""
    x, b = _lse_b_cases()
    fast = crossent.logsumexp(x, b=b, return_sign=True)[0]
    before = list(_rounding.COUNTS.get("logsumexp (with b)", [0, 0]))
    with crossent.rounding("correct"):
        got = crossent.logsumexp(x, b=b, return_sign=True)[0]
    rows, slow = (a - c for a, c in zip(_rounding.COUNTS["logsumexp (with b)"], before))
    assert rows == 150
    assert 2 <= slow <= 4, slow  # rows 100 (exactly 0) and 101, 102 (cancelling)
    assert not same_bits(fast, got)


def test_logsumexp_b_forced_slow_path(monkeypatch):
    """A bound of 2**-25 fails the rounding test everywhere: every row with a finite sum goes
    to the oracle and comes back in place (value and sign), counted; specials stay decided."""
    x, b = _lse_b_cases()
    x, b = x[:40], b[:40]
    with crossent.rounding("correct"):
        decided = crossent.logsumexp(x, b=b, return_sign=True)
    monkeypatch.setattr(_rounding, "logsumexp_b_bound", lambda C: (2.0**-25, 0.0))
    before = list(_rounding.COUNTS.get("logsumexp (with b)", [0, 0]))
    with crossent.rounding("correct"):
        forced = crossent.logsumexp(x, b=b, return_sign=True)
    rows, slow = (a - c for a, c in zip(_rounding.COUNTS["logsumexp (with b)"], before))
    assert rows == 40 and slow == 36, slow  # not rows 6, 7 (empty sums), 8 (+inf), 9 (nan)
    assert all(same_bits(f, d) for f, d in zip(forced, decided))


def test_logsumexp_b_float32_unchanged():
    x, b = _lse_b_cases()
    x, b = x[:60].astype(np.float32), b[:60].astype(np.float32)
    fast = crossent.logsumexp(x, b=b, return_sign=True)
    with crossent.rounding("correct"):
        got = crossent.logsumexp(x, b=b, return_sign=True)
    assert all(same_bits(f, g) for f, g in zip(fast, got))


# ---------------------------------------------------------------------------------------
# 4. NotImplementedError for the functions without a correctly rounded path


def _unsupported_calls(dt):
    rng = np.random.default_rng(3)
    y = np.array([0, 1, 2, 4])
    h = rng.standard_normal((4, 3)).astype(dt)
    W = rng.standard_normal((5, 3)).astype(dt)
    c = crossent
    return [
        ("linear_cross_entropy", lambda: c.linear_cross_entropy(h, W, y)),
        ("linear_cross_entropy_value_and_grad",
         lambda: c.linear_cross_entropy_value_and_grad(h, W, y)),
    ]


_UNSUPPORTED_IDS = [n for n, _ in _unsupported_calls("float64")]


@pytest.mark.parametrize("dt", ["float64", "float32"])
@pytest.mark.parametrize("k", range(len(_UNSUPPORTED_IDS)), ids=_UNSUPPORTED_IDS)
def test_unsupported_functions_raise_in_correct_mode(dt, k):
    """Every dtype raises (the contract: "whatever the dtype"; float16 takes the float32
    paths). The same float64 call succeeds in the default mode, so the inputs are valid and
    the error is the mode's (only float64 is run in "fast" mode: the narrow kernels of all
    these functions would take minutes to compile cold, for no more information)."""
    name, call = _unsupported_calls(dt)[k]
    if dt == "float64":
        call()  # valid input: no error in "fast" mode
    with crossent.rounding("correct"):
        with pytest.raises(NotImplementedError, match=re.escape(name)):
            call()


def _dask_calls(m, X, x, y, p, q, b):
    """(name, thunk) of every ``crossent.dask`` function (``m`` the module, NumPy's
    ``crossent`` or ``crossent.dask``; ``X`` wraps an input)."""
    w = np.linspace(0.1, 3.0, x.shape[1])
    return [
        ("logsumexp", lambda: m.logsumexp(X(x), axis=0)),
        ("logsumexp-b", lambda: m.logsumexp(X(x), b=X(b), return_sign=True)),
        ("log_softmax", lambda: m.log_softmax(X(x))),
        ("softmax", lambda: m.softmax(X(x), axis=0)),
        ("cross_entropy-none", lambda: m.cross_entropy(X(x), X(y), reduction="none")),
        ("cross_entropy-mean", lambda: m.cross_entropy(X(x), X(y), weight=w)),
        ("cross_entropy-probs", lambda: m.cross_entropy(X(x), X(p), reduction="sum")),
        ("value_and_grad-mean", lambda: m.cross_entropy_value_and_grad(X(x), X(y), weight=w)),
        ("value_and_grad-probs", lambda: m.cross_entropy_value_and_grad(X(x), X(p))),
        ("value_and_grad-smoothing",
         lambda: m.cross_entropy_value_and_grad(X(x), X(y), label_smoothing=0.1)),
        ("entropy", lambda: m.entropy(X(p), base=2.0)),
        ("cross_entropy_pmf", lambda: m.cross_entropy_pmf(X(p), X(q))),
        ("kl_divergence", lambda: m.kl_divergence(X(p), X(q))),
    ]


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_dask_in_correct_mode_matches_numpy(scheduler):
    """Every ``crossent.dask`` function in mode "correct" gives the bits of the NumPy call in
    that mode (itself checked against the oracle above), for two chunkings (rows and classes
    split; one block), with the synchronous scheduler and with the threaded one, whose
    worker threads start in mode "fast" (the mode must travel with the tasks). The graph is
    computed OUTSIDE the ``rounding`` block: the mode of the call that built it holds. At
    least some results differ from the fast mode's (so the test can tell them apart)."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    import crossent.dask as cd

    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, 10)) * 4
    y = rng.integers(0, 10, 24)
    y[3] = -100
    p, q = rng.dirichlet(np.ones(10), 24), rng.dirichlet(np.ones(10), 24)
    b = rng.uniform(-1, 1, (24, 10))
    ident = _dask_calls(crossent, lambda a: a, x, y, p, q, b)
    with crossent.rounding("correct"):
        want = [f() for _, f in ident]
    fast = [f() for _, f in ident]
    differs = 0
    for chunks in ((7, 4), (24, 10)):
        def X(a, chunks=chunks):
            return da.from_array(a, chunks=chunks[:a.ndim])
        calls = _dask_calls(cd, X, x, y, p, q, b)
        with crossent.rounding("correct"):
            graphs = [f() for _, f in calls]
        got = dask.compute(*graphs, scheduler=scheduler)
        for (name, _), g, w, f in zip(calls, got, want, fast):
            g, w, f = (v if isinstance(v, tuple) else (v,) for v in (g, w, f))
            assert all(same_bits(a, c) for a, c in zip(g, w)), (name, chunks)
            differs += not all(same_bits(a, c) for a, c in zip(f, w))
    assert differs >= 8  # measured: 10 (5 of the 11 functions, in both chunkings)


def test_dask_gradient_with_the_options_in_correct_mode():
    """The gradient with the options through ``crossent.dask`` in mode "correct": each block
    takes the NumPy path with the whole batch's exact divisor, so the loss and the gradient
    are the NumPy call's bits (which tests/test_correct_rounding_options.py checks against
    the oracle)."""
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    import crossent.dask as cd

    rng = np.random.default_rng(4)
    xn = rng.standard_normal((6, 5)) * 3.0
    yn = np.array([0, 1, 2, 3, 4, 0])
    pn = rng.dirichlet(np.ones(5), 6)
    x = da.from_array(xn, chunks=(4, 5))
    calls = [
        (da.from_array(pn, chunks=(4, 5)), pn, {"logit_softcap": 3.0}),
        (da.from_array(yn, chunks=4), yn, {"z_loss": 1e-3, "weight": np.linspace(0.5, 2.0, 5)}),
    ]
    for t, tn, kw in calls:
        with crossent.rounding("correct"):
            want = crossent.cross_entropy_value_and_grad(xn, tn, **kw)
            graph = cd.cross_entropy_value_and_grad(x, t, **kw)
        got = dask.compute(*graph, scheduler="sync")
        assert same_bits(got[0], want[0]) and same_bits(got[1], want[1]), kw


# ---------------------------------------------------------------------------------------
# 5. narrow formats: unchanged by the mode


def _narrow_dtypes():
    out = ["float32", "float16"]
    try:
        import ml_dtypes

        out.append(ml_dtypes.bfloat16)
    except ImportError:  # pragma: no cover - ml_dtypes is installed with the test extras
        pass
    return out


@pytest.mark.parametrize("dt", _narrow_dtypes(), ids=str)
def test_narrow_formats_are_unchanged_by_the_mode(dt):
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((64, 37)) * 4).astype(dt)
    x3 = (rng.standard_normal((5, 12, 7)) * 4).astype(dt)
    y = rng.integers(0, 37, 64)
    p = rng.dirichlet(np.ones(37), 64).astype(dt)
    w = rng.uniform(0.1, 2, 37).astype(dt)

    def run():
        out = [getattr(crossent, fn)(a, axis=ax) for fn in SOFTMAX_FAMILY
               for a, ax in ((x, -1), (x3, 1))]
        for red in ("none", "sum", "mean"):
            out.append(crossent.cross_entropy(x, y, reduction=red))
            out.append(crossent.cross_entropy(x, y, reduction=red, weight=w, label_smoothing=0.1))
            out.append(crossent.cross_entropy(x, p, reduction=red))
        return out

    fast = run()
    with crossent.rounding("correct"):
        correct = run()
    for k, (a, b) in enumerate(zip(correct, fast)):
        a, b = np.asarray(a).astype(np.float64), np.asarray(b).astype(np.float64)
        assert np.asarray(correct[k]).dtype == np.asarray(fast[k]).dtype
        assert same_bits(a, b), f"call {k}: {diff_summary(a, b)}"


# ---------------------------------------------------------------------------------------
# 6. thread counts


def test_correct_mode_independent_of_thread_count():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 64)) * rng.choice([1.0, 30.0, 300.0], (3000, 1))
    y = rng.integers(0, 64, 3000)
    p = rng.dirichlet(np.ones(64), 3000)

    def run():
        with crossent.rounding("correct"):
            out = [getattr(crossent, fn)(x) for fn in SOFTMAX_FAMILY]
            out += [crossent.cross_entropy(x, t, reduction=r) for t in (y, p)
                    for r in ("none", "mean")]
        return out

    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = run()
        numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
        two = run()
    finally:
        numba.set_num_threads(n0)
    for k, (a, b) in enumerate(zip(one, two)):
        assert same_bits(a, b), f"call {k}: {diff_summary(a, b)}"


# ---------------------------------------------------------------------------------------
# 7. the kernel helpers


@jit
def _half_gap_of(r):
    return ksoft._half_gap(r)


@jit
def _round_cr_of(a, c, odd, cr):
    return ksoft._round_cr(a, c, odd, cr)


@jit
def _round_sum_of(a, c, odd):
    return ksoft._round_sum(a, c, odd)


def _half_gap_expected(r: float) -> float:
    """Half the distance from ``r`` to its nearer neighbour, from np.nextafter toward 0 and
    toward +-inf (exact in Fraction), rounded to float64. It is a power of two, exact where it
    is at least 2**-1074; below the normal range it is 2**-1075, which rounds (to even) to 0:
    there ``_round_cr`` relies on its absolute term TINY, which sends every such result to
    the slow path (test_round_cr_subnormal_results_go_to_the_slow_path)."""
    r = np.float64(r)
    if r == 0:  # both neighbours are 5e-324 away
        return float(Fraction(5e-324) / 2)
    gaps = []
    for toward in (0.0, math.copysign(math.inf, r)):
        with np.errstate(over="ignore"):  # the largest float's neighbour toward inf
            n = np.nextafter(r, np.float64(toward))
        if np.isfinite(n):
            gaps.append(abs(Fraction(float(n)) - Fraction(float(r))))
    return float(min(gaps) / 2)


@pytest.mark.parametrize("r", [
    1.0, 1.5, 3.0, math.pi, 1e300, 1e-300,  # normal values
    2.0**-1022, 2.0**1000, 2.0**-1021, 0.5,  # exact powers of two
    5e-324, 2.0**-1060, 2.0**-1022 - 5e-324, 3 * 5e-324,  # subnormals
    0.0,
    -1.0, -math.pi, -2.0**-1022, -5e-324,  # negative values
    np.finfo(np.float64).max, -np.finfo(np.float64).max,  # the largest finite float
])
def test_half_gap_against_nextafter(r):
    assert _half_gap_of(r) == _half_gap_expected(r)


def test_half_gap_random_normals():
    rng = np.random.default_rng(5)
    vals = np.ldexp(rng.uniform(1, 2, 200), rng.integers(-1070, 1020, 200))
    for r in vals:
        assert _half_gap_of(float(r)) == _half_gap_expected(float(r)), r


def _fl(a: float, c: float) -> float:
    """a + c rounded to nearest, from Fraction arithmetic."""
    return float(Fraction(a) + Fraction(c))


CR = 2.0**-80  # a relative bound of the size the kernels use (relative_bound ~ 2**-82)


@pytest.mark.parametrize("a", [1.5, -1.5, 1.0 + 2.0**-30, 1e10 + 0.5])
@pytest.mark.parametrize("where", [0.25, 0.7, -0.3, 0.5 - 2.0**-20, 0.5 + 2.0**-20])
def test_round_cr_far_from_midpoint_rounds_to_nearest(a, where):
    """c = where * ulp(a): a + c is at least 2**-20 ulp from a midpoint, far beyond the
    interval of relative size 2**-80, so the result is a + c rounded (Fraction)."""
    ulp = float(np.spacing(abs(a)))
    c = math.copysign(where * ulp, a)
    r = _round_cr_of(a, c, False, CR)
    assert r == _fl(a, c)


def test_round_cr_above_a_power_of_two():
    """a = 1.0, c = 2**-53 + 2**-60: just above the midpoint 1 + 2**-53, rounds up."""
    c = 2.0**-53 + 2.0**-60
    assert _round_cr_of(1.0, c, False, CR) == _fl(1.0, c) == 1.0 + 2.0**-52
    c = 2.0**-55  # a quarter ulp above 1: rounds to 1
    assert _round_cr_of(1.0, c, False, CR) == _fl(1.0, c) == 1.0
    # (Just above a power of two the test uses the half gap below it, half the one above:
    # 1 + c with 2**-54 < c < 2**-53 is sent to the slow path although it could be decided.
    # Conservative, so not asserted either way.)


@pytest.mark.parametrize("a", [1.0, 1.5, -1.5, 1e10 + 0.5])
@pytest.mark.parametrize("delta", [0.0, 2.0**-100, -(2.0**-100), 0.5 * CR, -0.5 * CR])
def test_round_cr_near_a_midpoint_is_nan(a, delta):
    """a + c within CR |a + c| of the midpoint a + ulp(a)/2: undecidable, nan (slow path)."""
    ulp = float(np.spacing(abs(a)))
    mid = math.copysign(ulp / 2, a)  # a + mid is the midpoint (exact in Fraction)
    scale = 2.0 ** math.floor(math.log2(abs(a)))  # a power of two <= |a| <= |a + c|
    c = mid + math.copysign(delta * scale, a)
    assert Fraction(c) == Fraction(mid) + Fraction(math.copysign(delta * scale, a))  # exact
    dist = abs(Fraction(a) + Fraction(c) - (Fraction(a) + Fraction(mid)))
    assert dist < Fraction(CR) * abs(Fraction(a) + Fraction(c))
    assert math.isnan(_round_cr_of(a, c, False, CR))


@pytest.mark.parametrize("a, c, want", [
    (math.inf, 1.0, math.inf), (-math.inf, 1.0, -math.inf), (math.nan, 1.0, math.nan),
    (1.0, math.nan, math.nan), (math.inf, -math.inf, math.nan),
])
def test_round_cr_specials_pass_through(a, c, want):
    r = _round_cr_of(a, c, False, CR)
    assert (math.isnan(r) and math.isnan(want)) or r == want


def test_round_cr_subnormal_results_go_to_the_slow_path():
    """The absolute term TINY = 2**-1070 exceeds every subnormal half gap."""
    for a in (5e-324, 2.0**-1060, -(2.0**-1050)):
        assert math.isnan(_round_cr_of(a, 0.0, False, CR))


def test_round_cr_with_zero_bound_is_round_sum():
    rng = np.random.default_rng(6)
    a = np.ldexp(rng.uniform(1, 2, 300), rng.integers(-30, 30, 300)) * rng.choice([-1, 1], 300)
    c = a * np.ldexp(rng.uniform(-1, 1, 300), -rng.integers(40, 60, 300))
    c[:50] = np.spacing(np.abs(a[:50])) / 2 * np.sign(a[:50])  # exact midpoints (ties)
    for odd in (False, True):
        for ai, ci in zip(a, c):
            got = _round_cr_of(float(ai), float(ci), odd, 0.0)
            want = _round_sum_of(float(ai), float(ci), odd)
            assert np.float64(got).view(np.int64) == np.float64(want).view(np.int64)
    for ai, ci in zip(a, c):  # and round_sum without odd is a + c rounded to nearest
        assert _round_sum_of(float(ai), float(ci), False) == _fl(float(ai), float(ci))


def test_round_cr_is_never_wrong():
    """Random sums, many close to a midpoint: the result is nan or a + c rounded (Fraction)."""
    rng = np.random.default_rng(9)
    decided = 0
    for _ in range(2000):
        a = float(np.ldexp(rng.uniform(1, 2), int(rng.integers(-60, 60))))
        ulp = float(np.spacing(a))
        c = ulp * (0.5 + float(rng.choice([-1, 1])) * 2.0 ** -float(rng.uniform(0, 40)))
        r = _round_cr_of(a, c, False, CR)
        if not math.isnan(r):
            decided += 1
            assert r == _fl(a, c), (a, c)
    assert decided > 1000  # most are decidable (within 2**-40 ulp of a midpoint at worst)


@jit
def _round_cr_abs_of(a, c, err):
    return ksoft._round_cr_abs(a, c, err)


def test_round_cr_abs_is_never_wrong():
    """The absolute-bound test (the gradients' cancelling differences): for random sums near
    midpoints and absolute bounds from 0 to several ulps, a decided result is the rounding of
    both ends of the interval ``a + c -+ err`` (Fraction), and an exact zero with err = 0 is
    decided."""
    rng = np.random.default_rng(10)
    decided = 0
    for _ in range(2000):
        a = float(np.ldexp(rng.uniform(1, 2), int(rng.integers(-1070, 60))))
        ulp = float(np.spacing(a))
        c = ulp * (0.5 + float(rng.choice([-1, 1])) * 2.0 ** -float(rng.uniform(0, 40)))
        err = ulp * 2.0 ** -float(rng.uniform(0, 45)) * float(rng.choice([0.0, 1.0, 1.0, 1.0]))
        r = _round_cr_abs_of(a, c, err)
        if not math.isnan(r):
            decided += 1
            for end in (Fraction(a) + Fraction(c) - Fraction(err),
                        Fraction(a) + Fraction(c) + Fraction(err)):
                assert r == float(end), (a, c, err)
    assert decided > 500
    assert _round_cr_abs_of(0.0, 0.0, 0.0) == 0.0
    assert math.isnan(_round_cr_abs_of(0.0, 0.0, 2.0**-1070))
    assert math.isnan(_round_cr_abs_of(1.0, 2.0**-53, 0.0))  # a midpoint
