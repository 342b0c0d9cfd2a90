"""crossent.linear_cross_entropy(_value_and_grad): the loss of ``hidden @ weight.T + bias``
formed block by block.

What is checked: the values and gradients against ``cross_entropy(_value_and_grad)`` of the
float64 products and against PyTorch eager (``F.linear`` + ``F.cross_entropy``); every option;
the independence from ``chunk_size`` (bitwise for the loss and ``dhidden``); the accuracy
contract against the oracle applied to the exact products (``math.fsum`` of the products,
exact in float64 for float32 inputs; ``fractions.Fraction`` for float64 inputs); validation;
the memory (``tracemalloc``) against the gradients plus a quarter of the logits' size.
"""

from __future__ import annotations

import math
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

import crossent
from crossent import linear_cross_entropy as lce
from crossent import linear_cross_entropy_value_and_grad as lce_vg
from crossent._bounds import LINEAR_CROSS_ENTROPY
from crossent.linear import _SLICE_BYTES, ALIGN, block_rows

RNG = np.random.default_rng(20261130)


def _problem(N=64, H=24, V=40, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((N, H)).astype(dtype)
    W = rng.standard_normal((V, H)).astype(dtype)
    b = rng.standard_normal(V).astype(dtype)
    y = rng.integers(0, V, N)
    return h, W, b, y


def _logits64(h, W, b=None):
    z = h.astype(np.float64) @ W.astype(np.float64).T
    return z if b is None else z + b.astype(np.float64)


OPTIONS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"label_smoothing": 0.2},
    {"ignore_index": 3},
    {"class_weight": True, "reduction": "mean"},
    {"class_weight": True, "label_smoothing": 0.1, "reduction": "sum"},
    {"class_weight": True, "label_smoothing": 0.3, "ignore_index": 1, "reduction": "none"},
    {"z_loss": 1e-3, "logit_softcap": 4.0},
    {"z_loss": 0.5, "class_weight": True, "reduction": "sum"},
]


def _kw(opt, V):
    kw = dict(opt)
    if kw.pop("class_weight", False):
        kw["class_weight"] = np.random.default_rng(1).random(V) * 3
    return kw


def _ce_kw(kw):
    kw = dict(kw)
    if "class_weight" in kw:
        kw["weight"] = kw.pop("class_weight")
    return kw


# -- against cross_entropy of the float64 products ------------------------------------------


@pytest.mark.parametrize("opt", OPTIONS, ids=str)
@pytest.mark.parametrize("bias", [False, True])
def test_float64_equals_cross_entropy_of_the_products(opt, bias):
    # N is a multiple of ALIGN: every row of the whole product is in a full BLAS tile, as in
    # the blocks, so the logits, hence the losses and dhidden, are the same bits
    h, W, b, y = _problem(N=4 * ALIGN)
    y[::5] = 3
    b = b if bias else None
    kw = _kw(opt, W.shape[0])
    z = _logits64(h, W, b)
    ref_loss, G = crossent.cross_entropy_value_and_grad(z, y, **_ce_kw(kw))
    assert np.array_equal(lce(h, W, y, bias=b, **kw), ref_loss)
    res = lce_vg(h, W, y, bias=b, chunk_size=ALIGN, **kw)
    assert len(res) == (4 if bias else 3)
    assert np.array_equal(res[0], ref_loss)
    assert np.array_equal(res[1], (W.T @ G.T).T)  # the orientation linear.py uses
    np.testing.assert_allclose(res[2], G.T @ h, rtol=1e-13, atol=1e-15 * np.abs(G).sum(0).max())
    if bias:
        np.testing.assert_allclose(res[3], G.sum(0), rtol=1e-13, atol=1e-15 * np.abs(G).sum())


@pytest.mark.parametrize("dtype", [np.float32, np.float16, "bfloat16"])
def test_narrow_dtypes_round_the_float64_products(dtype):
    if dtype == "bfloat16":
        ml_dtypes = pytest.importorskip("ml_dtypes")
        dtype = ml_dtypes.bfloat16
    h, W, b, y = _problem(N=50, H=16, V=30, dtype=dtype)
    loss, dh, dW, db = lce_vg(h, W, y, bias=b, reduction="sum")
    assert loss.dtype == dh.dtype == dW.dtype == db.dtype == np.dtype(dtype)
    z = _logits64(h, W, b)
    ref, G = crossent.cross_entropy_value_and_grad(z, y, reduction="sum")
    # one rounding of values that are accurate far beyond the narrow format
    assert crossent.ulp_error(loss, ref, dtype) <= 1.0
    assert np.max(crossent.ulp_error(dh, G @ W.astype(np.float64), dtype)) <= 1.0
    assert np.max(crossent.ulp_error(dW, G.T @ h.astype(np.float64), dtype)) <= 1.0
    assert np.max(crossent.ulp_error(db, G.sum(0), dtype)) <= 1.0


def test_probability_targets():
    h, W, b, y = _problem(N=40, V=20)
    t = np.random.default_rng(2).dirichlet(np.ones(20), size=40)
    z = _logits64(h, W, b)
    ref, G = crossent.cross_entropy_value_and_grad(z, t, label_smoothing=0.1)
    loss, dh, dW, db = lce_vg(h, W, t, bias=b, label_smoothing=0.1, chunk_size=ALIGN)
    assert loss == ref
    np.testing.assert_allclose(dh, G @ W, rtol=1e-13, atol=1e-16)
    np.testing.assert_allclose(db, G.sum(0), rtol=1e-12, atol=1e-16)


def test_leading_batch_dimensions():
    h, W, b, y = _problem(N=48)
    loss, dh, dW = lce_vg(h.reshape(4, 12, -1), W, y.reshape(4, 12), reduction="none")
    assert loss.shape == (4, 12) and dh.shape == (4, 12, h.shape[1])
    ref = lce_vg(h, W, y, reduction="none")
    assert np.array_equal(loss.ravel(), ref[0]) and np.array_equal(dh.reshape(h.shape), ref[1])


def test_mean_over_nothing_is_nan_as_cross_entropy():
    h, W, b, y = _problem(N=20)
    y[:] = -100
    loss, dh, dW = lce_vg(h, W, y)
    assert np.isnan(loss)
    assert np.all(dh == 0) and np.all(dW == 0)  # every item ignored: zero gradient rows
    cw = np.zeros(W.shape[0])
    y2 = np.arange(20) % W.shape[0]
    loss, dh, dW = lce_vg(h, W, y2, class_weight=cw)
    assert np.isnan(loss) and np.isnan(dh).all()


def test_extreme_class_weights_are_scaled_back():
    h, W, b, y = _problem(N=32)
    cw = np.full(W.shape[0], 2.0**300)
    z = _logits64(h, W)
    for red in ("sum", "none"):
        ref, G = crossent.cross_entropy_value_and_grad(z, y, weight=cw, reduction=red)
        loss, dh, dW = lce_vg(h, W, y, class_weight=cw, reduction=red)
        assert np.array_equal(loss, ref) and np.array_equal(dh, G @ W)


# -- chunk_size -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("opt", [OPTIONS[0], OPTIONS[2], OPTIONS[7], OPTIONS[8]], ids=str)
def test_chunk_size_does_not_change_the_loss_nor_dhidden(dtype, opt):
    h, W, b, y = _problem(N=301, H=33, V=70, dtype=dtype, seed=3)
    kw = _kw(opt, 70)
    runs = [lce_vg(h, W, y, bias=b, chunk_size=c, **kw) for c in (1, 5, 16, 33, 100, 301, None)]
    for r in runs[1:]:
        assert np.array_equal(r[0], runs[0][0])
        assert np.array_equal(r[1], runs[0][1])
        # dweight and dbias are sums over the blocks in float64: equal to their last bits
        np.testing.assert_allclose(r[2], runs[0][2], rtol=1e-6 if dtype == np.float32 else 1e-12,
                                   atol=1e-30)
    assert np.array_equal(lce(h, W, y, bias=b, chunk_size=7, **kw), runs[0][0])


def test_partials_of_row_splits_add_up_to_the_whole():
    h, W, b, y = _problem(N=90, dtype=np.float32)
    whole = lce(h, W, y, bias=b, reduction="partial")
    parts = lce(h[:37], W, y[:37], bias=b, reduction="partial") + lce(h[37:], W, y[37:], bias=b,
                                                                        reduction="partial")
    assert parts == whole
    assert parts.mean() == lce(h, W, y, bias=b)


def test_block_rows_rule():
    assert block_rows(1000, 10, 1) == ALIGN
    assert block_rows(1000, 10, 17) == 2 * ALIGN
    assert block_rows(5, 10, 100) == ALIGN  # never more than the batch, rounded up
    # the automatic rule: the gradient pass's work memory within a quarter of the logits' size
    for N, H, V, size in [(4096, 256, 32000, 4), (4096, 256, 32000, 8), (8192, 512, 32000, 4),
                          (2048, 16, 8000, 4)]:
        r = block_rows(N, V, None, size, H)
        work = r * (8 * V + 24 * H) + 2 * _SLICE_BYTES + (4 * V * H if size < 8 else 0)
        assert r % ALIGN == 0 and r >= 16 and work <= N * V * size / 4, (N, H, V, size, r)
    assert block_rows(10, 32000, None, 4, 256) == ALIGN  # too small for the budget: MIN_ROWS


# -- accuracy contract ----------------------------------------------------------------------


def _corpus32():
    """float32 inputs: random rows, confident rows (the label is the largest of logits of
    magnitude about 50, so the loss is exp(-gap), down to about 1e-25, and an absolute error
    of the logits becomes a relative one of the loss) and near-ties."""
    rng = np.random.default_rng(5)
    N, H, V = 24, 64, 12
    h = rng.standard_normal((N, H)).astype(np.float32)
    W = rng.standard_normal((V, H)).astype(np.float32)
    h[:12] *= 6
    y = rng.integers(0, V, N)
    y[:12] = np.argmax(h[:12].astype(np.float64) @ W.astype(np.float64).T, axis=1)
    h[18:] *= np.float32(1e-3)  # near-ties
    return h, W, y


def _exact_logits32(h, W):
    """The exact products of float32 inputs, summed by math.fsum: the correctly rounded float64
    of the exact dot product (each product of two float32 is exact in float64)."""
    h64, W64 = h.astype(np.float64), W.astype(np.float64)
    return np.array([[math.fsum(h64[n] * W64[v]) for v in range(W.shape[0])] for n in range(h.shape[0])])


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_float32_within_the_bound_of_the_exact_products(reduction):
    from crossent import reference

    h, W, y = _corpus32()
    z = _exact_logits32(h, W)
    # the oracle on the float64 rounding of the exact logits: within 2**-53 |z| of them, far
    # below half an ulp of a float32 loss
    exact = reference.cross_entropy(z, y, reduction=reduction, exact=True)
    got = lce(h, W, y, reduction=reduction)
    err = np.max(crossent.ulp_error(got, exact, np.float32))
    assert err <= LINEAR_CROSS_ENTROPY["float32"].max_ulp
    if reduction == "none":
        assert np.min(got[:12]) < 1e-6  # the corpus has confident rows


def test_float64_within_the_stated_bound():
    from crossent import reference

    rng = np.random.default_rng(6)
    N, H, V = 12, 10, 9
    h = rng.standard_normal((N, H))
    W = rng.standard_normal((V, H))
    y = rng.integers(0, V, N)
    zf = [[sum((Fraction(float(h[n, k])) * Fraction(float(W[v, k])) for k in range(H)), Fraction(0))
           for v in range(V)] for n in range(N)]
    z = np.array([[float(q) for q in row] for row in zf])  # correctly rounded exact logits
    exact = reference.cross_entropy(z, y, reduction="none", exact=True)
    got = lce(h, W, y, reduction="none")
    u = 2.0**-53
    gamma = H * u / (1 - H * u)
    abs_dot = np.abs(h) @ np.abs(W).T
    for n in range(N):
        # the bounds table's float64 condition: ulps of the loss plus twice the largest
        # logit error (gamma_H sum|h W|, plus the rounding of the exact logits, u |z|)
        slack = 2 * (gamma * abs_dot[n].max() + u * np.abs(z[n]).max())
        ex = float(exact[n])
        assert abs(got[n] - ex) <= LINEAR_CROSS_ENTROPY["float64"].max_ulp * math.ulp(ex) + slack


# -- against PyTorch ------------------------------------------------------------------------


@pytest.mark.parametrize("opt", [o for o in OPTIONS if "z_loss" not in o], ids=str)
def test_against_pytorch_eager(opt):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    h, W, b, y = _problem(N=37, H=12, V=25)
    y[::6] = 3
    kw = _kw(opt, 25)
    ht, Wt, bt = (torch.tensor(a, requires_grad=True) for a in (h, W, b))
    cw = kw.get("class_weight")
    tl = F.cross_entropy(F.linear(ht, Wt, bt), torch.tensor(y), weight=None if cw is None else torch.tensor(cw),
                         ignore_index=kw.get("ignore_index", -100), reduction=kw.get("reduction", "mean"),
                         label_smoothing=kw.get("label_smoothing", 0.0))
    tl.sum().backward()
    loss, dh, dW, db = lce_vg(h, W, y, bias=b, **kw)
    np.testing.assert_allclose(loss, tl.detach().numpy(), rtol=1e-12)
    for ours, t in ((dh, ht), (dW, Wt), (db, bt)):
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-10, atol=1e-14)


# -- validation and memory ------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, exc, word",
    [
        (dict(hidden=np.float64(1.0)), ValueError, "hidden"),
        (dict(weight=np.ones(4)), ValueError, "weight"),
        (dict(weight=np.ones((5, 3))), ValueError, "weight"),
        (dict(weight=np.ones((5, 4), np.float32)), TypeError, "weight"),
        (dict(hidden=np.ones((6, 4), complex)), TypeError, "hidden"),
        (dict(bias=np.ones(4)), ValueError, "bias"),
        (dict(bias=np.ones(5, np.float32)), TypeError, "bias"),
        (dict(class_weight=np.ones(4)), ValueError, "class_weight"),
        (dict(class_weight=-np.ones(5)), ValueError, "class_weight"),
        (dict(target=np.array([0, 1, 2, 3, 4, 5])), ValueError, "target"),  # 5 is out of range
        (dict(target=np.array([0, 1, -1, 3, 4, 0])), ValueError, "target"),
        (dict(target=np.zeros(5, int)), ValueError, "target"),
        (dict(chunk_size=0), ValueError, "chunk_size"),
        (dict(chunk_size=True), TypeError, "chunk_size"),
        (dict(chunk_size=2.5), TypeError, "chunk_size"),
        (dict(reduction="avg"), ValueError, "reduction"),
        (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    ],
)
def test_bad_input_is_named(change, exc, word):
    args = dict(hidden=np.ones((6, 4)), weight=np.ones((5, 4)), target=np.zeros(6, int))
    args.update(change)
    for f in (lce, lce_vg):
        a = dict(args)
        with pytest.raises(exc, match=word):
            f(a.pop("hidden"), a.pop("weight"), a.pop("target"), **a)


def test_empty_batch():
    h, W, b, y = _problem(N=0)
    loss, dh, dW = lce_vg(h, W, y, reduction="sum")
    assert loss == 0 and dh.shape == (0, h.shape[1]) and np.all(dW == 0)
    assert np.isnan(lce(h, W, y))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_memory_is_below_gradients_plus_a_quarter_of_the_logits(dtype):
    N, H, V = 2048, 16, 8000
    h, W, b, y = _problem(N=N, H=H, V=V, dtype=dtype)
    lce_vg(h[:16], W, y[:16])  # compile outside the measurement
    tracemalloc.start()
    lce_vg(h, W, y)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    size = np.dtype(dtype).itemsize
    budget = (N * H + V * H) * size + N * V * size / 4
    assert peak < budget, (peak, budget)


# -- crossent.torch ------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_autograd_against_eager(reduction, dtype):
    torch = pytest.importorskip("torch")
    import crossent.torch as ct

    F = torch.nn.functional
    h, W, b, y = _problem(N=29, H=10, V=17)
    cw = np.random.default_rng(3).random(17)
    dt = getattr(torch, dtype)
    mk = [torch.tensor(a, dtype=dt, requires_grad=True) for a in (h, W, b)]
    ours = [torch.tensor(a, dtype=dt, requires_grad=True) for a in (h, W, b)]
    yt, cwt = torch.tensor(y), torch.tensor(cw, dtype=dt)
    kw = dict(ignore_index=4, reduction=reduction, label_smoothing=0.05)
    ref = F.cross_entropy(F.linear(*mk), yt, weight=cwt, **kw)
    got = ct.linear_cross_entropy(ours[0], ours[1], yt, ours[2], class_weight=cwt, **kw)
    assert got.dtype == dt and got.shape == ref.shape
    # a non-uniform incoming gradient for 'none' (the recomputing backward path)
    go = torch.linspace(0.5, 2.0, ref.numel(), dtype=dt).reshape(ref.shape)
    ref.backward(go)
    got.backward(go)
    tol = dict(rtol=1e-10, atol=1e-13) if dtype == "float64" else dict(rtol=2e-5, atol=1e-6)
    torch.testing.assert_close(got, ref, **tol)
    # the gradients are crossent's: those of the NumPy API, scaled by the incoming gradient
    vg = lce_vg(h.astype(dtype), W.astype(dtype), y, bias=b.astype(dtype), class_weight=cwt.numpy(), **kw)
    for o, m, g in zip(ours, mk, vg[1:]):
        torch.testing.assert_close(o.grad, m.grad, **tol)
        if reduction != "none":
            assert torch.equal(o.grad, torch.from_numpy(g) * go)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_torch_options_are_the_numpy_ones(reduction):
    """z_loss and logit_softcap through crossent.torch: the NumPy API's loss and gradients
    (scaled by the incoming gradient), both backward paths."""
    torch = pytest.importorskip("torch")
    import crossent.torch as ct

    h, W, b, y = _problem(N=21, H=9, V=13)
    kw = dict(reduction=reduction, z_loss=0.01, logit_softcap=3.0)
    ours = [torch.tensor(a, requires_grad=True) for a in (h, W, b)]
    got = ct.linear_cross_entropy(ours[0], ours[1], torch.tensor(y), ours[2], **kw)
    go = torch.linspace(0.5, 2.0, got.numel(), dtype=torch.float64).reshape(got.shape)
    got.backward(go)
    assert np.array_equal(got.detach().numpy(), lce(h, W, y, bias=b, **kw))
    if reduction == "none":  # row n of dhidden is go[n] times that row of the sum's gradient
        vg = lce_vg(h, W, y, bias=b, **dict(kw, reduction="sum"))
        np.testing.assert_allclose(ours[0].grad.numpy(), go.numpy()[:, None] * vg[1], rtol=1e-12,
                                   atol=1e-15)
    else:
        vg = lce_vg(h, W, y, bias=b, **kw)
        for o, g in zip(ours, vg[1:]):
            assert torch.equal(o.grad, torch.from_numpy(g) * go)


def test_torch_without_grad_and_errors():
    torch = pytest.importorskip("torch")
    import crossent.torch as ct

    h, W, b, y = _problem(N=8)
    with torch.no_grad():
        v = ct.linear_cross_entropy(torch.tensor(h), torch.tensor(W), torch.tensor(y))
    assert v.item() == lce(h, W, y)
    with pytest.raises(ValueError, match="reduction"):
        ct.linear_cross_entropy(torch.tensor(h), torch.tensor(W), torch.tensor(y), reduction="partial")
    with pytest.raises(TypeError, match="weight"):
        ct.linear_cross_entropy(torch.tensor(h), W, torch.tensor(y))


def test_float32_dweight_over_many_blocks_rounds_the_float64_sum():
    # 13 blocks of 16 rows: the float32 pair accumulator (hi + lo, about 48 bits) against
    # the float64 product G.T @ h of the whole batch
    h, W, b, y = _problem(N=200, H=12, V=30, dtype=np.float32, seed=9)
    loss, dh, dW = lce_vg(h, W, y, chunk_size=16, reduction="sum")
    _, G = crossent.cross_entropy_value_and_grad(_logits64(h, W), y, reduction="sum")
    exact = G.T @ h.astype(np.float64)
    assert dW.dtype == np.float32
    assert np.max(crossent.ulp_error(dW, exact, np.float32)) <= 0.5 + 2.0**-20
