"""SciPy's and PyTorch's conventions at the edges, one test per rule, for crossent and its
oracle ``crossent.reference`` (the rules are written in docs/input-rules.md).

SciPy (``scipy.special.logsumexp/softmax/log_softmax``, ``scipy.stats.entropy``):

1. ``axis`` may be an integer, a tuple of distinct integers or ``None`` (every axis);
2. a 0-d input is one element (``logsumexp(3.0) == 3.0``, ``softmax(3.0) == 1.0``);
3. a 0-d result (a full reduction without ``keepdims``) is a NumPy scalar, for every function;
4. a slice holding +inf and no nan: ``logsumexp`` +inf, ``log_softmax`` nan at the +inf
   entries and -inf elsewhere, ``softmax`` nan;
5. ``entropy(p, q)`` (SciPy's relative entropy) is a TypeError that names ``kl_divergence``;
6. complex input is a TypeError naming the argument.

PyTorch (``torch.nn.functional.cross_entropy``):

7. probability targets with a ``ignore_index`` other than -100 raise (PyTorch raises too);
8. probability targets over zero classes: each loss is the empty sum 0, "sum" 0 (PyTorch -0),
   "mean" 0 over N > 0 items (PyTorch 2.13 gives nan);
9. negative class weights are rejected.

Expected values come from the merged-axis computation itself (the same function on an array
whose axes were moved and reshaped by NumPy), from SciPy where it is installed, and from
closed forms (log of a sum of equal terms).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import crossent
from crossent import reference

IMPLS = {"crossent": crossent, "reference": reference}
DTYPES = (np.float16, np.float32, np.float64)
FAMILY = ("logsumexp", "log_softmax", "softmax")
INF, NAN = np.inf, np.nan


def _x(shape=(2, 3, 4), dtype=np.float64, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(dtype)


# --- 1. axis: int, tuple, None ----------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("axis", [(0, 2), (2, 0), (1,), (-1, 0), None, (0, 1, 2)])
def test_tuple_and_none_axes_are_the_merged_axis(impl, axis):
    """The reduction over several axes equals the reduction over one axis of the array with
    those axes moved last and merged (bit for bit: the same slices, the same algorithm)."""
    m = IMPLS[impl]
    x = _x()
    axes = tuple(range(3)) if axis is None else tuple(sorted(a % 3 for a in axis))
    keep = [i for i in range(3) if i not in axes]
    merged = np.transpose(x, keep + list(axes)).reshape([x.shape[i] for i in keep] + [-1])
    lse = m.logsumexp(x, axis=axis)
    assert np.array_equal(lse, m.logsumexp(merged, axis=-1))
    kd = m.logsumexp(x, axis=axis, keepdims=True)
    assert kd.shape == tuple(1 if i in axes else n for i, n in enumerate(x.shape))
    for f in ("log_softmax", "softmax"):
        r = getattr(m, f)(x, axis=axis)
        flat = getattr(m, f)(merged, axis=-1)
        back = np.transpose(flat.reshape([x.shape[i] for i in keep] + [x.shape[i] for i in axes]),
                            np.argsort(keep + list(axes)))
        assert r.shape == x.shape and np.array_equal(r, back)


def test_tuple_axes_agree_with_scipy():
    special = pytest.importorskip("scipy.special")
    x = _x()
    for axis in [(0, 2), None, (1, 2)]:
        # crossent's own accuracy bound is a few ulp; SciPy's result is a naive evaluation
        np.testing.assert_allclose(crossent.logsumexp(x, axis=axis), special.logsumexp(x, axis=axis),
                                   rtol=1e-14)
        np.testing.assert_allclose(crossent.softmax(x, axis=axis), special.softmax(x, axis=axis),
                                   rtol=1e-13)


@pytest.mark.parametrize("impl", IMPLS)
def test_axis_none_of_an_empty_array_is_the_empty_sum(impl):
    r = IMPLS[impl].logsumexp(np.zeros((0, 3)), axis=None)
    assert r == -INF and np.ndim(r) == 0


# --- 2, 3. 0-d input, scalar results ----------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("axis", [-1, 0, None, ()])
def test_a_0d_input_is_one_element(impl, dtype, axis):
    m = IMPLS[impl]
    v = dtype(1.5)
    lse, ls, sm = (getattr(m, f)(v, axis=axis) for f in FAMILY)
    for r in (lse, ls, sm):
        assert isinstance(r, np.generic) and r.dtype == dtype  # a NumPy scalar, not a 0-d array
    assert lse == v and ls == 0 and sm == 1


@pytest.mark.parametrize("impl", IMPLS)
def test_every_full_reduction_is_a_numpy_scalar(impl):
    m = IMPLS[impl]
    x = np.array([0.25, 0.25, 0.5])
    results = [m.logsumexp(x), m.logsumexp(x.reshape(3, 1), axis=None), m.entropy(x),
               m.cross_entropy_pmf(x, x), m.kl_divergence(x, x),
               m.cross_entropy(x.reshape(1, 3), np.array([1])),
               m.cross_entropy(x.reshape(1, 3), np.array([1]), reduction="sum"),
               m.categorical_log_likelihood(x, [0, 2])]
    for r in results:
        assert isinstance(r, np.generic) and r.dtype == np.float64, type(r)
    # keepdims keeps an array
    assert isinstance(m.logsumexp(x, keepdims=True), np.ndarray)
    # the value of the full reduction: log(3 e^0.25 ... ) in closed form
    assert math.isclose(float(m.logsumexp(x)), math.log(2 * math.exp(0.25) + math.exp(0.5)),
                        rel_tol=1e-15)


# --- 4. +inf ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_plus_inf_follows_scipy(impl, dtype):
    m = IMPLS[impl]
    x = np.array([[INF, 1.0, -INF], [INF, INF, 0.0], [INF, NAN, 0.0], [0.0, 1.0, 2.0],
                  [-INF, -INF, -INF]], dtype=dtype)
    lse = m.logsumexp(x)
    assert lse[0] == INF and lse[1] == INF and np.isnan(lse[2]) and np.isfinite(lse[3])
    assert lse[4] == -INF
    ls = m.log_softmax(x)
    assert np.isnan(ls[0, 0]) and (ls[0, 1:] == -INF).all()
    assert np.isnan(ls[1, :2]).all() and ls[1, 2] == -INF
    assert np.isnan(ls[2]).all() and np.isnan(ls[4]).all() and np.isfinite(ls[3]).all()
    sm = m.softmax(x)
    assert np.isnan(sm[[0, 1, 2, 4]]).all() and np.isfinite(sm[3]).all()
    # the loss keeps its rule: a row with +inf is nan
    assert np.isnan(m.cross_entropy(x[:1], np.array([1]), reduction="none")).all()


def test_plus_inf_agrees_with_scipy():
    special = pytest.importorskip("scipy.special")
    x = np.array([[INF, 1.0, -INF], [INF, INF, 0.0], [INF, NAN, 0.0], [-INF, -INF, -INF]])
    with np.errstate(invalid="ignore"):
        for f in FAMILY:
            np.testing.assert_array_equal(getattr(crossent, f)(x), getattr(special, f)(x, axis=-1))


# --- 5, 6. entropy's second argument, complex input -------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_entropy_with_q_points_to_kl_divergence(impl):
    with pytest.raises(TypeError, match=r"kl_divergence\(p, q\)"):
        IMPLS[impl].entropy([0.5, 0.5], [0.25, 0.75])
    # the keyword spelling of the PMF function itself still works
    assert IMPLS[impl].entropy([0.5, 0.5], base=2) == 1.0


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("f", FAMILY)
def test_complex_input_is_a_type_error(impl, f):
    with pytest.raises(TypeError, match=r"^x .*complex"):
        getattr(IMPLS[impl], f)(np.array([1.0 + 1j, 2.0]))


# --- 7-9. PyTorch's edges of probability targets ----------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fname", ["cross_entropy", "cross_entropy_value_and_grad"])
def test_probabilities_reject_ignore_index(impl, fname):
    f = getattr(IMPLS[impl], fname)
    x, p = np.zeros((2, 3)), np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match=r"ignore_index=1 applies to class-index targets only"):
        f(x, p, ignore_index=1)
    f(x, p, ignore_index=-100)  # the default, given explicitly, is not an option that is dropped


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_probabilities_over_zero_classes_are_the_empty_sum(impl, dtype):
    m = IMPLS[impl]
    x, p = np.zeros((3, 0), dtype), np.zeros((3, 0), dtype)
    none = m.cross_entropy(x, p, reduction="none")
    assert none.dtype == dtype and none.tolist() == [0.0, 0.0, 0.0]
    assert m.cross_entropy(x, p, reduction="sum") == 0.0
    assert m.cross_entropy(x, p, reduction="mean") == 0.0  # 0 / N, N = 3
    loss, g = m.cross_entropy_value_and_grad(x, p, label_smoothing=0.1)
    assert loss == 0.0 and g.shape == (3, 0)
    # no items and no classes: the mean is 0/0
    assert np.isnan(m.cross_entropy(np.zeros((0, 0), dtype), np.zeros((0, 0), dtype)))


def test_probabilities_over_zero_classes_against_pytorch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.zeros((3, 0))
    for red in ("none", "sum"):
        want = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(x), reduction=red).numpy()
        np.testing.assert_array_equal(crossent.cross_entropy(x, x, reduction=red), want)  # -0 == 0
    with pytest.raises(RuntimeError, match="ignore_index"):  # PyTorch refuses it too
        F.cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 1 / 3), ignore_index=1)


@pytest.mark.parametrize("impl", IMPLS)
def test_negative_weights_are_rejected(impl):
    with pytest.raises(ValueError, match=r"weight must be finite and non-negative; weight\[1\] = -1"):
        IMPLS[impl].cross_entropy(np.zeros((2, 3)), np.array([0, 1]), weight=[1.0, -1.0, 1.0])


# --- logsumexp's b and return_sign --------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
def test_scale_factors_follow_scipy(impl):
    """Signs and specials as SciPy 1.17 gives them (values checked by the precision test)."""
    lse = IMPLS[impl].logsumexp
    cases = [  # (x, b, (result, sign)) from scipy.special.logsumexp(..., return_sign=True)
        ([1.0, 1.0], [1, -1], (-INF, 0.0)),  # exact cancellation
        ([1.0, 1.0, 2.0, 2.0], [1, -1, 1, -1], (-INF, 0.0)),
        ([INF, 1.0], [-1, 1], (INF, -1.0)),
        ([INF, INF], [-1, 1], (NAN, NAN)),
        ([INF, 1.0], [0, 1], (1.0, 1.0)),  # b = 0 leaves the term out, +inf too
        ([NAN, 2.0], [0, 1], (2.0, 1.0)),
        ([-INF], [1], (-INF, 0.0)),
        ([3.0], [1.0], (3.0, 1.0)),
    ]
    for x, b, want in cases:
        got = lse(x, b=b, return_sign=True)
        np.testing.assert_array_equal(np.array(got), np.array(want), err_msg=str((x, b)))
    assert np.isnan(lse([1.0, 2.0], b=[-1, -1]))  # a negative sum without return_sign
    assert lse([1.0, 2.0], b=[-1, -1], return_sign=True)[1] == -1.0
    assert lse([0.0, 1.0], return_sign=True) == (lse([0.0, 1.0]), 1.0)
    with pytest.raises(ValueError, match=r"b must be finite; b\[1\] = inf"):
        lse([1.0, 2.0], b=[1.0, INF])
    with pytest.raises(ValueError, match=r"b must broadcast with x .*\(2,\).*\(3,\)"):
        lse([1.0, 2.0], b=[1.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="return_sign"):
        lse([1.0, 2.0], return_sign=1)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("signs", ["positive", "mixed"])
def test_scale_factors_precision(dtype, signs):
    """Against the oracle's exact values: the ``LOGSUMEXP_B`` bound of ``crossent._bounds``,
    absolute, with the condition number kappa of the sum (computed at 200 bits)."""
    import mpmath

    from crossent._bounds import LOGSUMEXP_B, LOGSUMEXP_B_KAPPA
    from crossent.ulp import ulp

    rng = np.random.default_rng(7)
    x = (rng.normal(size=(120, 7)) * 6).astype(dtype)
    b = rng.normal(size=(120, 7)).astype(dtype)
    big = {np.float16: 2.0**10, np.float32: 2.0**60, np.float64: 2.0**400}[dtype]
    b[:, 0] *= big  # factors of every magnitude the format holds (scaled exactly inside)
    b[:, 1] /= big
    b[rng.random(b.shape) < 0.1] = 0
    if signs == "positive":
        b = np.abs(b)
    got, gs = crossent.logsumexp(x, b=b, return_sign=True)
    ex, es = reference.logsumexp(x, b=b, return_sign=True, exact=True)
    assert np.array_equal(gs, es)
    rdt = np.result_type(x, b)
    with mpmath.workprec(200):
        for i in range(x.shape[0]):
            if not mpmath.isfinite(ex[i]):
                assert got[i] == float(ex[i]) or (np.isnan(got[i]) and mpmath.isnan(ex[i]))
                continue
            terms = [mpmath.mpf(float(c)) * mpmath.exp(mpmath.mpf(float(v))) for v, c in zip(x[i], b[i])]
            kappa = sum(abs(t) for t in terms) / abs(sum(terms))
            if signs == "positive":
                assert kappa == 1
            err = abs(mpmath.mpf(float(got[i])) - ex[i])
            allowed = LOGSUMEXP_B.max_ulp * ulp(ex[i], rdt) + LOGSUMEXP_B_KAPPA * kappa * mpmath.mpf(2) ** -53
            assert err <= allowed, (i, float(err), float(allowed), float(kappa))
