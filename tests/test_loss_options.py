"""Semantics of the loss options ``z_loss`` and ``logit_softcap``: the defaults are bitwise
the plain loss, the z term is weighted like the item, the cap is applied before everything
else (its derivative in the gradient), and the properties the closed forms imply.

Provenance: the bitwise references are crossent's own plain calls (no options); the gradient
references are PyTorch's autograd of the same composite (``torch 2.x``, float64), compared
normwise; the property bounds follow from the definitions (stated in each test).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import crossent
from crossent.corpus import logits as plain_corpus

U64 = 2.0**-53


def _same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16"])
def test_default_options_are_bitwise_the_plain_loss(dtype):
    """z_loss=0.0 and logit_softcap=None take the plain kernels: the same bits for every
    reduction, and for the gradient, on the plain corpus (smoke size)."""
    for c in plain_corpus.cases("smoke", dtype=dtype):
        for red in ("none", "mean", "sum"):
            o = c.loss_options(red)
            assert _same_bits(crossent.cross_entropy(c.logits, c.target, **o),
                              crossent.cross_entropy(c.logits, c.target, z_loss=0.0,
                                                     logit_softcap=None, **o)), c.name
        l1, g1 = crossent.cross_entropy_value_and_grad(c.logits, c.target, **c.options)
        l2, g2 = crossent.cross_entropy_value_and_grad(c.logits, c.target, z_loss=0.0,
                                                       logit_softcap=None, **c.options)
        assert _same_bits(l1, l2) and _same_bits(g1, g2), c.name


def test_z_term_is_weighted_like_the_item():
    """With class weights the z term of item n is multiplied by w[y_n]; ignored items add
    nothing; label smoothing leaves it alone; the mean divides by the sum of w[y_n]."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 4))
    y = np.array([0, 1, 2, 3, -100])
    w = np.array([0.5, 2.0, 0.0, 3.0])
    z = 0.25
    lse = np.log(np.exp(x).sum(axis=1))
    for eps in (0.0, 0.3):
        plain = crossent.cross_entropy(x, y, weight=w, label_smoothing=eps, reduction="none")
        opt = crossent.cross_entropy(x, y, weight=w, label_smoothing=eps, reduction="none", z_loss=z)
        wy = np.where(y >= 0, w[np.maximum(y, 0)], 0.0)
        np.testing.assert_allclose(opt - plain, z * wy * lse**2, rtol=1e-12, atol=0)
        assert opt[-1] == 0.0
        mean = crossent.cross_entropy(x, y, weight=w, label_smoothing=eps, z_loss=z)
        np.testing.assert_allclose(mean, opt.sum() / wy.sum(), rtol=1e-14)


def test_z_term_of_probability_targets_is_unweighted():
    """Probability targets: the item has no weight of its own, the z term is z lse^2 and
    the mean divides by N."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 3))
    t = rng.dirichlet(np.ones(3), size=4)
    w = np.array([0.5, 2.0, 1.5])
    lse = np.log(np.exp(x).sum(axis=1))
    plain = crossent.cross_entropy(x, t, weight=w, reduction="none")
    opt = crossent.cross_entropy(x, t, weight=w, reduction="none", z_loss=0.1)
    np.testing.assert_allclose(opt - plain, 0.1 * lse**2, rtol=1e-12)


def test_softcap_is_applied_first():
    """The capped loss is the plain loss of the capped logits (computed here by NumPy, so
    to about 1e-15)."""
    rng = np.random.default_rng(3)
    x = rng.normal(0.0, 40.0, size=(6, 5))
    y = rng.integers(0, 5, size=6)
    capped = 30.0 * np.tanh(x / 30.0)
    np.testing.assert_allclose(
        crossent.cross_entropy(x, y, reduction="none", logit_softcap=30.0),
        crossent.cross_entropy(capped, y, reduction="none"), rtol=1e-13)


def _torch_composite(x, y, w, z, c, eps, reduction):
    torch = pytest.importorskip("torch")
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    zt = xt if c is None else c * torch.tanh(xt / c)
    lse = torch.logsumexp(zt, dim=1)
    wt = None if w is None else torch.tensor(w)
    ce = torch.nn.functional.cross_entropy(zt, torch.tensor(y), weight=wt, reduction="none",
                                           label_smoothing=eps)
    wy = torch.ones(len(y), dtype=torch.float64) if w is None else wt[torch.tensor(y)]
    per = ce + z * wy * lse**2
    tot = per.sum() if reduction == "sum" else per.sum() / wy.sum()
    tot.backward()
    return tot.item(), xt.grad.numpy()


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)),
                 elements=st.floats(-200, 200)),
    z=st.sampled_from([0.0, 1e-4, 0.5]),
    c=st.sampled_from([None, 1.0, 30.0]),
    eps=st.sampled_from([0.0, 0.2]),
    weighted=st.booleans(),
    reduction=st.sampled_from(["mean", "sum"]),
    data=st.data(),
)
def test_value_and_gradient_match_autograd_of_the_composite(x, z, c, eps, weighted, reduction, data):
    """Against PyTorch's autograd of the same composite in float64: the loss to 1e-12
    relative plus PyTorch's own cancellation (16 u of the magnitudes it subtracts), the gradient normwise, |g - g_torch| <= 1e-12 (|A'| + max a) / D per row
    (PyTorch's own float64 error dominates)."""
    n, k = x.shape
    y = np.array(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    w = np.linspace(0.5, 2.0, k) if weighted else None
    loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w, z_loss=z, logit_softcap=c,
                                                    label_smoothing=eps, reduction=reduction)
    tl, tg = _torch_composite(x, y, w, z, c, eps, reduction)
    zc = x if c is None else c * np.tanh(x / c)
    lse = np.log(np.exp(zc - zc.max(1, keepdims=True)).sum(1)) + zc.max(1)
    wy = np.ones(n) if w is None else w[y]
    D = 1.0 if reduction == "sum" else wy.sum()
    # PyTorch forms each loss as lse - z_y: its error is absolute, a few ulp of the magnitudes
    # it subtracts (x = [[11, 0]], label 0: 5e-12 relative on a loss of 1.7e-5)
    mags = (wy * (np.abs(lse) + np.abs(zc).max(1) + z * lse**2)).sum() / D
    assert abs(loss - tl) <= 1e-12 * abs(tl) + 16 * 2.0**-53 * mags
    scale = (wy * (1 + 2 * z * np.abs(lse)) + (1 if w is None else w.max())) / D
    assert np.all(np.abs(g - tg).max(axis=1) <= 1e-12 * scale)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(2, 5)),
                 elements=st.floats(-1e300, 1e300)),
    c=st.floats(0.5, 50.0),
)
def test_softcap_bounds_the_loss(x, c):
    """With every capped logit in [-c, c] the per-item loss is at most 2c + log C and at
    least log(1 + (C-1) e^{-2c}) > 0, whatever the logits (up to 1e300)."""
    n, k = x.shape
    y = np.zeros(n, dtype=np.int64)
    loss = crossent.cross_entropy(x, y, reduction="none", logit_softcap=c)
    assert np.all(loss <= 2 * c + np.log(k) + 1e-12)
    assert np.all(loss >= np.log1p((k - 1) * np.exp(-2 * c)) * (1 - 1e-12))


@settings(max_examples=30, deadline=None)
@given(x=hnp.arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(1, 5)),
                    elements=st.floats(-50, 50)),
       z=st.floats(1e-6, 1.0))
def test_zloss_only_adds(x, z):
    """z lse^2 >= 0: the loss with the z term is never below the plain loss."""
    y = np.zeros(x.shape[0], dtype=np.int64)
    assert np.all(crossent.cross_entropy(x, y, reduction="none", z_loss=z)
                  >= crossent.cross_entropy(x, y, reduction="none"))


def test_bridges_are_bitwise_crossent():
    """crossent.torch and crossent.jax give crossent's bits with the options (loss and
    gradient), keyword-only."""
    torch = pytest.importorskip("torch")
    import crossent.torch as ct

    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 20.0, size=(4, 6))
    y = rng.integers(0, 6, size=4)
    kw = dict(z_loss=1e-3, logit_softcap=15.0)
    loss, g = crossent.cross_entropy_value_and_grad(x, y, **kw)
    xt = torch.tensor(x, requires_grad=True)
    lt = ct.cross_entropy(xt, torch.tensor(y), **kw)
    lt.backward()
    assert lt.item() == loss and np.array_equal(xt.grad.numpy(), g)
    assert ct.CrossEntropyLoss(**kw)(torch.tensor(x), torch.tensor(y)).item() == loss
    with pytest.raises(TypeError):
        ct.cross_entropy(xt, torch.tensor(y), None, -100, "mean", 0.0, 1e-3)  # keyword-only
    jax = pytest.importorskip("jax")
    import crossent.jax as cj

    jax.config.update("jax_enable_x64", True)  # float64 stays float64 (as in test_bridge_jax)
    xj = jax.numpy.asarray(x)
    assert float(cj.cross_entropy(xj, y, **kw)) == loss
    gj = jax.grad(lambda a: cj.cross_entropy(a, y, **kw))(xj)
    assert np.array_equal(np.asarray(gj), g)
