"""The nan/inf and dtype semantics, one test per rule, in every float format (the rules are
written in docs/input-rules.md and in the docstrings).

Rules:

1. a row with nan or +inf -> nan for that row (logsumexp, log_softmax, softmax, loss,
   gradient), and only that row; except SciPy's rule for a +inf and no nan: logsumexp +inf,
   log_softmax nan at the +inf entries and -inf elsewhere (tests/test_conventions.py);
2. a row of only -inf -> logsumexp -inf; softmax, log_softmax and the loss nan;
3. -inf entries among finite ones are masks: softmax 0, log_softmax -inf, the rest of the row
   as if the masked classes were absent;
4. a label whose logit is -inf in an otherwise finite row -> loss +inf;
5. an empty class axis -> logsumexp -inf (see also tests/test_layouts.py);
6. ignored items -> loss 0 in 'none' and a zero gradient row; all ignored with 'mean' -> nan;
   a 'mean' whose weights sum to 0 -> nan loss and nan gradient rows (0/0, as PyTorch);
7. integer/bool logits -> float64; complex/object/str -> TypeError;
8. target of integer dtype = class indices, float dtype = probabilities (finite, >= 0),
   other dtypes -> TypeError;
9. PMFs: 0 log 0 = 0; p > 0 with q = 0 -> +inf; a nan, negative or infinite entry ->
   ValueError naming the argument and the index, unless ``check=False`` (then a nan or
   negative entry gives a nan row); no silent normalization.

Where a rule concerns special values, the oracle ``crossent.reference`` is checked to give the
same result (its argument checks are the same code; its values are its own).

Expected values are closed forms (log 2, log 3, ...) or the same computation on the row with
the masked classes removed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossent

DTYPES = (np.float16, np.float32, np.float64)
ids = lambda d: np.dtype(d).name  # noqa: E731

NAN, INF = np.nan, np.inf


def _x(rows, dtype):
    return np.array(rows, dtype=np.float64).astype(dtype)


# --- rule 1: nan or +inf in a row -> nan for that row, other rows untouched -------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("bad", [NAN, INF], ids=["nan", "+inf"])
def test_nan_or_plus_inf_poisons_only_its_row(dtype, bad):
    good = [0.0, 1.0, 2.0]
    x = _x([good, [0.0, bad, 2.0], [-INF, bad, 0.0]], dtype)
    clean = _x([good], dtype)
    lse = crossent.logsumexp(x)
    assert lse[0] == crossent.logsumexp(clean)[0]
    assert (np.isnan(lse[1:]).all() if bad != INF else (lse[1:] == INF).all())  # SciPy's +inf rule
    for fn in (crossent.log_softmax, crossent.softmax):
        r = fn(x)
        assert r.dtype == dtype
        assert (r[0] == fn(clean)[0]).all()
        if bad == INF and fn is crossent.log_softmax:  # SciPy: nan at +inf, -inf elsewhere
            assert np.isnan(r[1:, 1]).all() and (r[1:, [0, 2]] == -INF).all()
        else:
            assert np.isnan(r[1:]).all()
    y = np.array([0, 0, 2])
    loss = crossent.cross_entropy(x, y, reduction="none")
    assert loss[0] == crossent.cross_entropy(clean, y[:1], reduction="none")[0]
    assert np.isnan(loss[1:]).all()
    assert np.isnan(crossent.cross_entropy(x, y))  # the nan reaches the mean
    assert np.isnan(crossent.cross_entropy(x, y, reduction="sum"))
    _, g = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    assert (g[0] == crossent.cross_entropy_value_and_grad(clean, y[:1], reduction="sum")[1][0]).all()
    assert np.isnan(g[1:]).all()
    p = np.full((3, 3), 1 / 3, dtype=dtype)
    loss_p = crossent.cross_entropy(x, p, reduction="none")
    assert np.isfinite(loss_p[0]) and np.isnan(loss_p[1:]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_nan_row_is_nan_even_when_ignored_label_is_not_the_bad_class(dtype):
    """The label need not sit on the nan: the whole row's normalizer is nan."""
    x = _x([[NAN, 0.0, 0.0]], dtype)
    assert np.isnan(crossent.cross_entropy(x, np.array([2]), reduction="none")).all()


# --- rule 2: a row of only -inf --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_all_minus_inf_row(dtype):
    x = _x([[-INF, -INF, -INF], [0.0, 0.0, 0.0]], dtype)
    lse = crossent.logsumexp(x)
    assert lse[0] == -INF
    assert lse[1] == np.asarray(math.log(3), dtype=dtype)  # log 3, rounded once
    for fn in (crossent.log_softmax, crossent.softmax):
        r = fn(x)
        assert np.isnan(r[0]).all() and np.isfinite(r[1]).all()
    loss = crossent.cross_entropy(x, np.array([1, 1]), reduction="none")
    assert np.isnan(loss[0]) and loss[1] == np.asarray(math.log(3), dtype=dtype)
    _, g = crossent.cross_entropy_value_and_grad(x, np.array([1, 1]), reduction="none")
    assert np.isnan(g[0]).all() and np.isfinite(g[1]).all()
    assert np.isnan(crossent.cross_entropy(x, np.full((2, 3), 1 / 3, dtype), reduction="none")[0])


# --- rule 3: -inf as a mask ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_minus_inf_masks_a_class(dtype):
    x = _x([[1.5, -INF, -0.25, -INF]], dtype)
    kept = _x([[1.5, -0.25]], dtype)
    sm = crossent.softmax(x)[0]
    assert sm[1] == 0 and sm[3] == 0
    assert (sm[[0, 2]] == crossent.softmax(kept)[0]).all()
    ls = crossent.log_softmax(x)[0]
    assert ls[1] == -INF and ls[3] == -INF and (ls[[0, 2]] == crossent.log_softmax(kept)[0]).all()
    assert crossent.logsumexp(x)[0] == crossent.logsumexp(kept)[0]
    loss, g = crossent.cross_entropy_value_and_grad(x, np.array([2]), reduction="sum")
    l2, g2 = crossent.cross_entropy_value_and_grad(kept, np.array([1]), reduction="sum")
    assert loss == l2 and g[0, 1] == 0 and g[0, 3] == 0 and (g[0, [0, 2]] == g2[0]).all()


def test_entries_far_below_the_max_add_nothing():
    """Entries more than 1100 below the row max (beyond the exp's clamp) count as 0 even when
    the shift x_i - m has a huge rounding error (here 1e154): found by hypothesis, the loss of
    the first row was -5e-324. The rows must give what the same rows with those entries
    masked give (their true terms, below exp(-1e150), change nothing representable)."""
    x = np.array([[1.2076679759428932e170, -1.308231960279949e154, 0.0, -INF],
                  [0.0, -1e300, -700.0, -INF]])
    masked = np.array([[1.2076679759428932e170, -INF, -INF, -INF], [0.0, -INF, -700.0, -INF]])
    y = np.array([0, 0])
    loss = crossent.cross_entropy(x, y, reduction="none")
    assert (loss >= 0).all()
    assert (loss == crossent.cross_entropy(masked, y, reduction="none")).all()
    assert (crossent.softmax(x) == crossent.softmax(masked)).all()
    assert (crossent.logsumexp(x) == crossent.logsumexp(masked)).all()
    _, g = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    _, g2 = crossent.cross_entropy_value_and_grad(masked, y, reduction="sum")
    assert (g == g2).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_single_finite_entry(dtype):
    """One finite entry among -inf: softmax is exactly one-hot, the loss on it exactly 0."""
    x = _x([[-INF, 7.0, -INF]], dtype)
    assert crossent.softmax(x).tolist() == [[0.0, 1.0, 0.0]]
    assert crossent.logsumexp(x)[0] == 7.0
    assert crossent.cross_entropy(x, np.array([1])) == 0.0
    _, g = crossent.cross_entropy_value_and_grad(x, np.array([1]))
    assert (g == 0).all()


# --- rule 4: the label on a -inf logit -------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_label_on_masked_class_gives_plus_inf(dtype):
    x = _x([[0.0, -INF, 1.0], [0.0, 0.0, 0.0]], dtype)
    y = np.array([1, 0])
    loss = crossent.cross_entropy(x, y, reduction="none")
    assert loss[0] == INF and loss[1] == np.asarray(math.log(3), dtype=dtype)
    assert crossent.cross_entropy(x, y) == INF
    assert crossent.cross_entropy(x, y, reduction="sum") == INF
    # probabilities: mass on the masked class gives +inf; no mass there gives a finite loss
    t = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], dtype)
    assert crossent.cross_entropy(x, t, reduction="none")[0] == INF
    t = np.array([[0.5, 0.0, 0.5], [1.0, 0.0, 0.0]], dtype)
    assert np.isfinite(crossent.cross_entropy(x, t, reduction="none")).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_label_smoothing_with_masked_class_gives_plus_inf(dtype):
    """Smoothing puts eps/C on every class, masked ones too: -log(0) contributes +inf."""
    x = _x([[0.0, -INF, 1.0]], dtype)
    assert crossent.cross_entropy(x, np.array([0]), label_smoothing=0.1) == INF
    assert crossent.cross_entropy(x, np.array([0]), label_smoothing=0.1, reduction="none")[0] == INF
    # the label itself on the masked class, smoothed: +inf too (found by benchmarks/fuzz.py: nan)
    for eps in (0.1, 0.25, 0.5):
        assert crossent.cross_entropy(x, np.array([1]), label_smoothing=eps, reduction="none")[0] == INF


# --- rule 5: empty class axis ------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_empty_class_axis_logsumexp_is_minus_inf(dtype):
    assert crossent.logsumexp(np.zeros((3, 0), dtype)).tolist() == [-INF] * 3
    assert crossent.logsumexp(np.zeros((0, 2), dtype), axis=0).tolist() == [-INF] * 2


# --- rule 6: ignored items -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("ignore_index", [-100, 1])
def test_ignored_items(dtype, ignore_index):
    x = _x([[0.0, 1.0, 2.0], [5.0, NAN, 1.0], [3.0, 0.0, -1.0]], dtype)
    y = np.array([0, ignore_index, 2])
    loss = crossent.cross_entropy(x, y, ignore_index=ignore_index, reduction="none")
    assert loss[1] == 0.0  # ignored: 0 even though its row holds a nan
    assert np.isfinite(loss).all()
    _, g = crossent.cross_entropy_value_and_grad(x, y, ignore_index=ignore_index, reduction="none")
    assert (g[1] == 0).all() and not np.signbit(g[1]).any()
    # the mean is over the non-ignored items only
    mean = crossent.cross_entropy(x, y, ignore_index=ignore_index)
    kept = crossent.cross_entropy(x[[0, 2]], y[[0, 2]], ignore_index=ignore_index)
    assert mean == kept


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_all_ignored_mean_is_nan(dtype):
    x = _x([[0.0, 1.0], [2.0, 3.0]], dtype)
    y = np.array([-100, -100])
    assert np.isnan(crossent.cross_entropy(x, y))
    assert crossent.cross_entropy(x, y, reduction="sum") == 0
    loss, g = crossent.cross_entropy_value_and_grad(x, y)
    assert np.isnan(loss) and (g == 0).all()
    # zero total weight is the same 0/0
    assert np.isnan(crossent.cross_entropy(x, np.array([0, 0]), weight=np.array([0.0, 1.0])))


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("weight", [[0.0, 0.0, 0.0], [0.0, 1.0, 2.0]], ids=["all-zero", "label-class-zero"])
def test_mean_with_weights_summing_to_zero_is_nan(dtype, smoothing, weight):
    """'mean' divides by sum_n w[y_n]; when that is 0 the loss is nan (0/0) and every gradient
    row of an item that is not ignored is nan, the ignored ones 0: PyTorch 2.x gives exactly
    this (F.cross_entropy with the same weight and label_smoothing; its backward gives nan rows
    and zero rows for ignored items). Used to raise SystemError from inside the gradient kernel
    (a division by zero in a parallel region)."""
    from crossent import reference

    x = _x([[0.0, 1.0, 2.0], [1.0, 0.0, 0.0], [3.0, -1.0, 0.5]], dtype)
    y = np.array([0, -100, 0])
    w = np.array(weight)
    kw = dict(weight=w, label_smoothing=smoothing)
    for mod in (crossent, reference):
        assert np.isnan(mod.cross_entropy(x, y, **kw))
        loss, g = mod.cross_entropy_value_and_grad(x, y, **kw)
        assert np.isnan(loss) and g.dtype == dtype
        assert np.isnan(g[[0, 2]]).all() and (g[1] == 0).all(), mod.__name__
        # 'sum' and 'none' have no denominator: finite
        loss, g = mod.cross_entropy_value_and_grad(x, y, reduction="sum", **kw)
        assert np.isfinite(loss) and np.isfinite(g).all()


@pytest.mark.parametrize("e", [-900, -600, -300, 300, 600, 900])
def test_weights_of_any_magnitude_scale_the_results(e):
    """Every result is linear in the weights, except the mean over class indices (a ratio of
    weighted sums, invariant): weights times 2**e give the results for the weights themselves
    times 2**e, bit for bit while everything stays a normal float64. The kernels keep the
    softmax terms scaled by 2**600, so weights beyond about 2**420 overflowed (nan losses from
    weights of 1e150) and below about 2**-420 underflowed (all-zero gradients for 1e-300),
    until the wrapper rescaled extreme weights by a power of two."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 4)) * 2
    w = np.array([0.5, 1.0, 2.0, 1.5])
    for t in (np.array([0, 2, -100]), rng.random((3, 4))):
        for red in ("none", "sum", "mean"):
            for eps in (0.0, 0.1):
                kw = dict(reduction=red, label_smoothing=eps)
                loss, g = crossent.cross_entropy_value_and_grad(x, t, weight=w, **kw)
                loss_e, g_e = crossent.cross_entropy_value_and_grad(x, t, weight=np.ldexp(w, e), **kw)
                k = 0 if (red == "mean" and t.dtype.kind == "i") else e
                assert np.array_equal(loss_e, np.ldexp(loss, k)), (t.dtype, red, eps)
                assert np.array_equal(g_e, np.ldexp(g, k)), (t.dtype, red, eps)
                assert np.array_equal(crossent.cross_entropy(x, t, weight=np.ldexp(w, e), **kw), loss_e)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("scale", [5e-324, 1e-300, 1e300], ids=["subnormal", "1e-300", "1e300"])
def test_extreme_weights_against_the_oracle(dtype, scale):
    """Tiny, subnormal and huge weights: losses and one-hot gradients within the bounds of
    crossent._bounds of the oracle's exact values, in every format (overflow to inf and
    underflow to 0 included: the oracle rounds those too)."""
    from crossent import reference
    from crossent._bounds import BOUNDS
    from crossent.ulp import ulp_error

    x = _x([[0.0, 1.0, 2.0], [1.5, -1.0, 0.25], [3.0, 3.0, -2.0]], dtype)
    y = np.array([0, 2, 1])
    w = np.array([0.5, 1.0, 2.0]) * scale
    for red in ("none", "sum", "mean"):
        loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w, reduction=red)
        ex_loss, ex_g = reference.cross_entropy_value_and_grad(x, y, weight=w, reduction=red, exact=True)
        name = "cross_entropy" if red == "none" else "cross_entropy_mean"
        ex_loss = np.asarray(ex_loss, dtype=object).reshape(-1)
        err = np.asarray(ulp_error(np.asarray(loss).reshape(-1), ex_loss, dtype), dtype=np.float64)
        assert err.max() <= BOUNDS[name][np.dtype(dtype).name].max_ulp, (red, err)
        err = np.asarray(ulp_error(g.reshape(-1), ex_g.reshape(-1), dtype), dtype=np.float64)
        assert err.max() <= BOUNDS["cross_entropy_grad"][np.dtype(dtype).name].max_ulp, (red, err)


# --- rule 7: logits dtypes --------------------------------------------------------------------


@pytest.mark.parametrize("dt", [np.int8, np.int32, np.int64, np.uint16, np.bool_])
def test_integer_and_bool_logits_become_float64(dt):
    xi = np.array([[1, 0, 1], [0, 0, 1]], dtype=dt)
    xf = xi.astype(np.float64)
    for fn in (crossent.logsumexp, crossent.log_softmax, crossent.softmax):
        r = fn(xi)
        assert r.dtype == np.float64 and (r == fn(xf)).all()
    y = np.array([0, 2])
    assert crossent.cross_entropy(xi, y).dtype == np.float64
    assert crossent.cross_entropy(xi, y) == crossent.cross_entropy(xf, y)
    assert crossent.cross_entropy_value_and_grad(xi, y)[1].dtype == np.float64


def test_python_lists_are_float64():
    assert crossent.softmax([[0, 0]]).dtype == np.float64
    assert crossent.cross_entropy([[0.0, 0.0]], [1]) == np.float64(math.log(2))


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_result_dtype_is_input_dtype(dtype):
    x = _x([[0.0, 1.0, 2.0]], dtype)
    y = np.array([1])
    for r in (crossent.logsumexp(x), crossent.log_softmax(x), crossent.softmax(x),
              crossent.cross_entropy(x, y), crossent.cross_entropy(x, y, reduction="none"),
              crossent.cross_entropy_value_and_grad(x, y)[0], crossent.cross_entropy_value_and_grad(x, y)[1],
              crossent.entropy(crossent.softmax(x))):
        assert np.asarray(r).dtype == dtype


@pytest.mark.parametrize("bad", [np.complex128, object, "U3", "S3", "datetime64[s]", "timedelta64[s]"])
def test_non_real_logits_raise_type_error(bad):
    x = np.zeros((2, 3)).astype(bad) if bad not in ("datetime64[s]", "timedelta64[s]") else np.zeros((2, 3), bad)
    for call in (lambda: crossent.logsumexp(x), lambda: crossent.softmax(x),
                 lambda: crossent.cross_entropy(x, np.array([0, 1]))):
        with pytest.raises(TypeError, match=r"\b(x|logits)\b"):
            call()


# --- rule 8: target dtypes -------------------------------------------------------------------


def test_target_dtype_decides_its_meaning():
    x = _x([[0.0, 1.0, 2.0], [1.0, 1.0, 1.0]], np.float64)
    idx = np.array([2, 0])
    onehot = np.eye(3)[idx]
    for dt in (np.float16, np.float32, np.float64):  # float target = probabilities
        assert crossent.cross_entropy(x, onehot.astype(dt)) == crossent.cross_entropy(x, idx)
    for dt in (np.int8, np.uint8, np.int64):  # integer target = class indices
        assert crossent.cross_entropy(x, idx.astype(dt)) == crossent.cross_entropy(x, idx)
    for bad in (np.bool_, np.complex64, object, "U1"):
        with pytest.raises(TypeError, match="target"):
            crossent.cross_entropy(x, idx.astype(bad))


def test_probability_targets_must_be_finite_non_negative():
    x = np.zeros((1, 3))
    for t in ([[0.5, NAN, 0.5]], [[INF, 0.0, 0.0]], [[1.5, -0.5, 0.0]]):
        with pytest.raises(ValueError, match="target"):
            crossent.cross_entropy(x, np.array(t))
    # not normalized is allowed (used as given, as PyTorch): twice the target, twice the loss
    t = np.array([[0.2, 0.3, 0.5]])
    assert crossent.cross_entropy(x, 2 * t) == 2 * crossent.cross_entropy(x, t)


# --- rule 9: PMF functions -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=ids)
def test_pmf_zero_log_zero(dtype):
    p = np.array([0.5, 0.5, 0.0], dtype)
    assert crossent.entropy(p) == np.asarray(math.log(2), dtype)
    assert crossent.cross_entropy_pmf(p, np.array([0.5, 0.5, 0.0], dtype)) == np.asarray(math.log(2), dtype)
    assert crossent.kl_divergence(p, np.array([0.5, 0.5, 0.0], dtype)) == 0
    assert crossent.entropy(np.array([1.0, 0.0], dtype)) == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=ids)
def test_pmf_mass_where_q_is_zero_is_plus_inf(dtype):
    p = np.array([0.5, 0.5], dtype)
    q = np.array([1.0, 0.0], dtype)
    assert crossent.cross_entropy_pmf(p, q) == INF
    assert crossent.kl_divergence(p, q) == INF
    assert crossent.categorical_log_likelihood(q, [0, 1]) == -INF


@pytest.mark.parametrize("bad", [NAN, -0.25, INF], ids=["nan", "negative", "inf"])
def test_pmf_bad_entry_raises_unless_unchecked(bad):
    """By default (check=None) and with check=True a bad entry is a ValueError naming the
    argument and its index; with check=False (the caller validated) it is not looked for."""
    from crossent import reference

    p = np.array([[0.25, 0.25, 0.5], [0.75, 0.5, bad]])
    q = np.full((2, 3), 1 / 3)
    for mod in (crossent, reference):
        for check in (None, True):
            for fn, name in ((lambda: mod.entropy(p, check=check), "p"),
                             (lambda: mod.cross_entropy_pmf(p, q, check=check), "p"),
                             (lambda: mod.kl_divergence(q, p, check=check), "q"),
                             (lambda: mod.categorical_log_likelihood(p, [0, 2], check=check), "q")):
                with pytest.raises(ValueError, match=rf"^{name} .*{name}\[1, 2\] = {bad}"):
                    fn()


@pytest.mark.parametrize("bad", [NAN, -0.25], ids=["nan", "negative"])
def test_pmf_nan_or_negative_entry_is_nan_row_when_unchecked(bad):
    from crossent import reference

    p = np.array([[0.25, 0.25, 0.5], [0.75, 0.5, bad]])
    q = np.full((2, 3), 1 / 3)
    for mod in (crossent, reference):
        for fn in (lambda: mod.entropy(p, check=False), lambda: mod.cross_entropy_pmf(p, q, check=False),
                   lambda: mod.kl_divergence(p, q, check=False), lambda: mod.kl_divergence(q, p, check=False),
                   lambda: mod.categorical_log_likelihood(p, [0, 0], check=False)):
            r = fn()
            assert np.isfinite(r[0]) and np.isnan(r[1]), mod.__name__


def test_pmf_infinite_entry_when_unchecked():
    """check=False: an infinite entry gives the IEEE value of its term (as written in the
    docstrings), the same in the oracle."""
    from crossent import reference

    cases = [  # (function, args, expected): the IEEE value of the one infinite term
        ("entropy", ([0.5, INF],), -INF),  # -inf log inf
        ("cross_entropy_pmf", ([0.5, 0.5], [0.5, INF]), -INF),  # -0.5 log inf
        ("cross_entropy_pmf", ([0.5, INF], [0.5, 0.25]), INF),  # -inf log 0.25
        ("cross_entropy_pmf", ([0.5, INF], [0.5, 1.0]), NAN),  # -inf log 1 = -inf * 0
        ("cross_entropy_pmf", ([0.0, 1.0], [INF, 0.5]), math.log(2)),  # 0 log inf = 0
        ("kl_divergence", ([0.5, INF], [0.5, 0.5]), INF),  # inf log(inf / 0.5)
        ("kl_divergence", ([0.5, 0.5], [0.5, INF]), -INF),  # 0.5 log(0.5 / inf) = 0.5 log 0
        ("kl_divergence", ([0.5, INF], [0.5, INF]), NAN),  # inf log(inf / inf)
        ("categorical_log_likelihood", ([0.5, INF], [1]), INF),  # log inf
        ("categorical_log_likelihood", ([0.5, INF], [0]), math.log(0.5)),  # never observed
    ]
    for fname, args, want in cases:
        for mod in (crossent, reference):
            got = getattr(mod, fname)(*args, check=False)
            assert (np.isnan(got) and np.isnan(want)) or got == want, (mod.__name__, fname, args, got)


def test_pmf_no_silent_normalization():
    p = np.array([0.5, 0.5])
    assert crossent.entropy(2 * p) == 2 * crossent.entropy(p) - 2 * math.log(2)  # -sum 2p log 2p


def test_no_samples():
    """No rolls: the empirical PMF is nan (0/0, NumPy's empty mean); the log-likelihood is 0
    (the empty sum), as pmf.py documents."""
    assert np.isnan(crossent.empirical_pmf(np.array([], dtype=np.int64), 4)).all()
    assert crossent.empirical_pmf(np.array([], dtype=np.int64), 4).shape == (4,)
    assert crossent.categorical_log_likelihood(np.full(4, 0.25), np.array([], dtype=np.int64)) == 0


def test_pmf_base_below_one_flips_the_infinity():
    """log_b 0 = log 0 / log b = +inf for b < 1, so p > 0 where q = 0 gives -inf (H and D are
    negative multiples of their nats values). The oracle once gave +inf here; both agree now."""
    from crossent import reference

    p, q = np.array([0.5, 0.5]), np.array([1.0, 0.0])
    for mod in (crossent, reference):
        assert mod.cross_entropy_pmf(p, q, base=0.5) == -INF
        assert mod.kl_divergence(p, q, base=0.5) == -INF
        assert mod.entropy(np.array([0.5, 0.5]), base=0.5) == -1.0  # log_{1/2} 2 = -1 exactly
        # check=False: an infinite mass flips too (-inf log inf = -inf nats, +inf in base 1/2)
        assert mod.entropy(np.array([0.5, INF]), base=0.5, check=False) == INF
