"""crossent.torch: PyTorch's semantics, crossent's values and gradients, the custom-op contract.

- every option of ``F.cross_entropy`` (shapes, class indices and probabilities, weight,
  ignore_index, reductions, label smoothing) against PyTorch 2.x: the values to 1 ulp of
  PyTorch's float64 computation for float16/float32 inputs, to a few ulp of the terms in
  float64; the gradients bitwise equal to ``crossent.cross_entropy_value_and_grad``'s;
- ``torch.library.opcheck`` passes for every operator; ``torch.compile(fullgraph=True)``
  gives the eager bits; double backward raises, other devices raise naming the device.

Skipped with the reason when PyTorch is not installed (``pip install torch``: it is an
optional extra).
"""

from __future__ import annotations

import doctest
import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed (the optional 'torch' extra)")
ct = pytest.importorskip("crossent.torch")

import torch.nn.functional as F  # noqa: E402

import crossent  # noqa: E402

NP = {torch.float16: np.float16, torch.float32: np.float32, torch.float64: np.float64}
SHAPES = [(7,), (9, 7), (4, 7, 3, 2)]


def _np(t):
    return None if t is None else t.detach().numpy()


def _case(shape, probs, weighted, dtype, seed, ignore=False):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    cd = 1 if len(shape) > 1 else 0
    C = shape[cd]
    if probs:
        t = torch.softmax(torch.randn(shape, generator=g, dtype=torch.float64), cd).to(dtype)
    else:
        t = torch.randint(0, C, shape[:cd] + shape[cd + 1:], generator=g)
        if ignore:  # some items carry ignore_index
            t = torch.where(torch.rand(t.shape, generator=g) < 0.3, torch.full_like(t, 1), t)
    w = (torch.rand(C, generator=g, dtype=torch.float64) + 0.5).to(dtype) if weighted else None
    go = torch.rand((), generator=g, dtype=torch.float64)  # a grad_output, drawn per case
    return x, t, w, cd, g, go


GRID = [
    (shape, probs, weighted, red, eps, ignore)
    for shape, probs, weighted, red, eps in itertools.product(
        SHAPES, [False, True], [False, True], ["none", "mean", "sum"], [0.0, 0.1]
    )
    for ignore in ([False, True] if not probs else [False])
]


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
def test_every_option_matches_functional_cross_entropy(dtype):
    """Values against F.cross_entropy, gradients bitwise against the NumPy API."""
    npdt = NP[dtype]
    eps_dt = float(np.finfo(npdt).eps)
    for k, (shape, probs, weighted, red, eps, ignore) in enumerate(GRID):
        x, t, w, cd, g, _ = _case(shape, probs, weighted, dtype, seed=k, ignore=ignore)
        kw = dict(reduction=red, label_smoothing=eps, ignore_index=1 if ignore else -100)
        where = f"shape={shape} probs={probs} weight={weighted} {kw}"
        xr = x.clone().requires_grad_()
        ours = ct.cross_entropy(xr, t, w, **kw)
        theirs = F.cross_entropy(x, t, w, **kw)
        assert ours.dtype == theirs.dtype == dtype and ours.shape == theirs.shape, where
        # PyTorch in float64 as the reference (rounded once to dtype: crossent is correctly
        # rounded in practice for float16/float32, so within 1 ulp of it)
        x64 = x.double().clone().requires_grad_()  # a copy even when x is float64 already
        t64 = t.double() if probs else t
        ref = F.cross_entropy(x64, t64, None if w is None else w.double(), **kw)
        a, b = ours.detach().double().numpy(), ref.detach().numpy()
        if dtype == torch.float64:
            # PyTorch's float64 loss is a logit minus a log-sum-exp: its error is a few ulp of
            # their magnitude (|x| + log C per item), not of the loss itself
            items = 1 if red != "sum" else max(1, t.numel() if not probs else x.numel() // shape[cd])
            tol = 8 * eps_dt * (1 + float(x.abs().max()) + np.log(shape[cd])) * items
            assert np.all((np.abs(a - b) <= tol) | (np.isnan(a) & np.isnan(b))), where
        else:
            err = crossent.ulp_error(a.astype(npdt), b, npdt)
            assert np.all((err <= 1.0) | (np.isnan(a) & np.isnan(b))), f"{where}: {np.max(err)} ulp"

        # the gradient: bitwise crossent's (times the incoming gradient, here ones)
        ours.backward(torch.ones_like(ours))
        loss_np, grad_np = crossent.cross_entropy_value_and_grad(_np(x), _np(t), axis=cd, weight=_np(w), **kw)
        assert np.array_equal(ours.detach().numpy(), np.asarray(loss_np), equal_nan=True), where
        assert xr.grad.dtype == dtype and xr.grad.shape == x.shape, where
        assert np.array_equal(xr.grad.numpy(), grad_np, equal_nan=True), where
        # ... and PyTorch's gradient in float64, to 1 ulp (narrow) or a few ulp of the largest entry
        ref.backward(torch.ones_like(ref))
        ga, gb = xr.grad.double().numpy(), x64.grad.numpy()
        if dtype == torch.float64:
            assert np.max(np.abs(ga - gb), initial=0) <= 8 * eps_dt * np.max(np.abs(gb), initial=0), where
        else:
            assert np.max(crossent.ulp_error(ga.astype(npdt), gb, npdt), initial=0) <= 1.0, where


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_incoming_gradient_is_multiplied_in(red):
    """A grad_output other than 1: the chain rule on crossent's gradient, one rounding."""
    x, t, w, cd, g, _ = _case((5, 6, 3), False, True, torch.float32, seed=1)
    xr = x.clone().requires_grad_()
    loss = ct.cross_entropy(xr, t, w, reduction=red)
    go = torch.rand(loss.shape, generator=g)
    loss.backward(go)
    _, grad_np = crossent.cross_entropy_value_and_grad(_np(x), _np(t), axis=cd, weight=_np(w), reduction=red)
    expect = grad_np * (go.numpy()[:, None] if red == "none" else go.numpy())
    assert np.array_equal(xr.grad.numpy(), expect)


def test_probability_target_gradient_matches_pytorch():
    x, p, w, cd, g, _ = _case((4, 5, 3), True, True, torch.float64, seed=2)
    for red, eps in itertools.product(["none", "mean", "sum"], [0.0, 0.2]):
        p1, p2 = p.clone().requires_grad_(), p.clone().requires_grad_()
        l1 = ct.cross_entropy(x, p1, w, reduction=red, label_smoothing=eps)
        l2 = F.cross_entropy(x, p2, w, reduction=red, label_smoothing=eps)
        go = torch.rand(l1.shape, generator=g, dtype=torch.float64)
        l1.backward(go)
        l2.backward(go)
        np.testing.assert_allclose(p1.grad.numpy(), p2.grad.numpy(), rtol=1e-13, atol=1e-15, err_msg=f"{red} {eps}")
    # a target of another float dtype gets a gradient of its own dtype
    p32 = p.float().requires_grad_()
    ct.cross_entropy(x, p32, w).backward()
    assert p32.grad.dtype == torch.float32


# -- PyTorch's edge cases ------------------------------------------------------------------------


@pytest.mark.parametrize("red", ["none", "mean", "sum"])
def test_empty_batch_all_ignored_and_1d_input(red):
    x = torch.randn(0, 4, dtype=torch.float64)
    for t in (torch.zeros(0, dtype=torch.long), torch.zeros(0, 4, dtype=torch.float64)):
        a, b = ct.cross_entropy(x, t, reduction=red), F.cross_entropy(x, t, reduction=red)
        assert a.shape == b.shape and np.array_equal(a.numpy(), b.numpy(), equal_nan=True)
    x = torch.randn(3, 4, dtype=torch.float64)
    t = torch.full((3,), -100)
    a, b = ct.cross_entropy(x, t, reduction=red), F.cross_entropy(x, t, reduction=red)
    assert a.shape == b.shape and np.array_equal(a.numpy(), b.numpy(), equal_nan=True)  # nan for the mean
    # a 1-D input: one item, a 0-d class index or a 1-D probability vector
    v = torch.randn(5, dtype=torch.float64, requires_grad=True)
    for t in (torch.tensor(3), torch.softmax(torch.randn(5, dtype=torch.float64), 0)):
        a, b = ct.cross_entropy(v, t, reduction=red), F.cross_entropy(v, t, reduction=red)
        assert a.shape == b.shape == () and abs(a.item() - b.item()) <= 4e-16 * 5
        (ga,) = torch.autograd.grad(a, v)
        assert np.array_equal(ga.numpy(), crossent.cross_entropy_value_and_grad(_np(v), _np(t), axis=0, reduction=red)[1])


def test_confident_prediction_is_not_rounded_to_zero():
    logits = torch.tensor([[40.0, 0.0, 0.0]], requires_grad=True)
    loss = ct.cross_entropy(logits, torch.tensor([0]))
    loss.backward()
    assert F.cross_entropy(logits, torch.tensor([0])).item() == 0.0  # PyTorch 2.x, float32
    # crossent: the correctly rounded float32 value of 2 exp(-40) (mpmath at 60 digits: 8.4967...e-18)
    assert loss.item() == float(np.float32(2 * np.exp(-40.0)))
    assert logits.grad[0, 0].item() < 0  # the label entry of the gradient is -(1 - sigma_y), not 0


def test_errors_name_the_argument_and_mirror_pytorch():
    x, t = torch.randn(3, 4), torch.tensor([0, 1, 2])
    with pytest.raises(ValueError, match="reduction"):
        ct.cross_entropy(x, t, reduction="average")
    with pytest.raises(ValueError, match="label_smoothing"):
        ct.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index"):  # PyTorch: a RuntimeError, same reason
        ct.cross_entropy(x, torch.softmax(x, 1), ignore_index=0)
    with pytest.raises(RuntimeError):
        F.cross_entropy(x, torch.softmax(x, 1), ignore_index=0)
    with pytest.raises(ValueError, match="target"):
        ct.cross_entropy(x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="weight"):
        ct.cross_entropy(x, t, torch.ones(5))
    with pytest.raises(ValueError, match="not a class index"):
        ct.cross_entropy(x, torch.tensor([0, 1, 4]))
    with pytest.raises(TypeError, match="input"):
        ct.cross_entropy(torch.ones(3, 4, dtype=torch.long), t)
    with pytest.raises(ValueError, match="weight"):
        ct.cross_entropy(x, t, torch.ones(4, requires_grad=True))
    # ... but a weight that requires grad is fine where no graph is built
    with torch.no_grad():
        ct.cross_entropy(x, t, torch.ones(4, requires_grad=True))


def test_other_devices_get_an_error_naming_the_device():
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():  # a CUDA tensor without a GPU: only its metadata exists
        x = torch.empty(3, 4, device="cuda")
        t = torch.zeros(3, dtype=torch.long, device="cuda")
        for call in (lambda: ct.cross_entropy(x, t), lambda: ct.log_softmax(x, 1),
                     lambda: ct.softmax(x, 1), lambda: ct.logsumexp(x, 1)):
            with pytest.raises(ValueError, match=r"device cuda:0.*CPU"):
                call()


def test_double_backward_is_refused():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    loss = ct.cross_entropy(x, torch.tensor([0, 1, 2]))
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(loss, x, create_graph=True)
    # a plain backward afterwards is unaffected, and a retained graph gives the same gradient twice
    loss = ct.cross_entropy(x, torch.tensor([0, 1, 2]))
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    loss.backward()
    assert torch.equal(x.grad, 2 * first)


# -- log_softmax, softmax, logsumexp -------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, torch.float64], ids=str)
def test_softmax_family_values_are_crossents(dtype):
    g = torch.Generator().manual_seed(3)
    x = (4 * torch.randn(3, 5, 2, generator=g, dtype=torch.float64)).to(dtype)
    for dim in (0, 1, -1):
        assert np.array_equal(ct.log_softmax(x, dim).numpy(), crossent.log_softmax(_np(x), axis=dim))
        assert np.array_equal(ct.softmax(x, dim).numpy(), crossent.softmax(_np(x), axis=dim))
        for keep in (False, True):
            got = ct.logsumexp(x, dim, keep)
            assert np.array_equal(got.numpy(), crossent.logsumexp(_np(x), axis=dim, keepdims=keep))
            assert got.shape == torch.logsumexp(x.float(), dim, keep).shape
    assert ct.log_softmax(torch.tensor(2.0, dtype=dtype), 0).item() == 0.0  # 0-d, as PyTorch


def test_softmax_family_gradients_check():
    x64 = torch.randn(3, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(5)).requires_grad_()
    for fn in (lambda a: ct.log_softmax(a, 1), lambda a: ct.softmax(a, 0), lambda a: ct.logsumexp(a, -1)):
        assert torch.autograd.gradcheck(fn, (x64,))
        assert torch.autograd.gradgradcheck(fn, (x64,))  # second derivatives work for these three


# -- the custom-op contract ----------------------------------------------------------------------


def _opcheck_cases():
    g = torch.Generator().manual_seed(4)
    x2 = torch.randn(6, 5, generator=g, dtype=torch.float64)
    x4 = torch.randn(3, 5, 2, 2, generator=g)
    y2 = torch.randint(0, 5, (6,), generator=g)
    p4 = torch.softmax(torch.randn(3, 5, 2, 2, generator=g), 1)
    w = torch.rand(5, generator=g) + 0.5
    ops = torch.ops.crossent
    return [
        (ops.cross_entropy.default, (x2.requires_grad_(), y2, None, -100, "mean", 0.0, True)),
        (ops.cross_entropy.default, (x2, y2, None, -100, "sum", 0.1, False)),  # gradient recomputed
        (ops.cross_entropy.default, (x4.requires_grad_(), p4.requires_grad_(), w, -100, "none", 0.1, True)),
        (ops.log_softmax.default, (x4, 1)),
        (ops.softmax.default, (x2, 0)),
        (ops.logsumexp.default, (x4, 3, False)),
        (ops.logsumexp.default, (x2, 1, True)),
        # the loss options (z_loss, logit_softcap), with the gradient and recomputed
        (ops.cross_entropy.default, (x2, y2, w.double(), -100, "mean", 0.0, True, 1e-3, 5.0)),
        (ops.cross_entropy.default, (x4, p4, None, -100, "sum", 0.1, False, 1e-2, 3.0)),
    ]


@pytest.mark.parametrize("case", range(9))
def test_opcheck(case):
    op, args = _opcheck_cases()[case]
    result = torch.library.opcheck(op, args)
    assert set(result.values()) == {"SUCCESS"}, result


def test_compiled_training_step_matches_eager():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 5).double()
    x, y = torch.randn(16, 8, dtype=torch.float64), torch.randint(0, 5, (16,))

    def forward(model, x, y):
        return ct.cross_entropy(model(x), y, label_smoothing=0.05)

    results = []
    for fn in (forward, torch.compile(forward, fullgraph=True)):  # the backward is compiled too
        model.zero_grad()
        loss = fn(model, x, y)
        loss.backward()
        results.append((loss.detach().clone(), model.weight.grad.clone(), model.bias.grad.clone()))
    # Inductor sums the bias gradient over the batch in its own order: equal to rounding
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=0)
    # compiled, with the logits as the leaf: the gradient is the NumPy API's, bit for bit
    logits = model(x).detach().requires_grad_()
    loss = torch.compile(ct.cross_entropy, fullgraph=True)(logits, y, label_smoothing=0.05)
    loss.backward()
    want_loss, want_grad = crossent.cross_entropy_value_and_grad(_np(logits), y.numpy(), label_smoothing=0.05)
    assert loss.item() == want_loss and np.array_equal(logits.grad.numpy(), want_grad)


def test_module_is_a_drop_in():
    w = torch.tensor([1.0, 2.0, 0.5])
    m = ct.CrossEntropyLoss(w, ignore_index=2, reduction="sum", label_smoothing=0.1)
    ref = torch.nn.CrossEntropyLoss(w, ignore_index=2, reduction="sum", label_smoothing=0.1)
    x, t = torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 1])
    assert torch.equal(m(x.float(), t), ct.cross_entropy(x.float(), t, w, 2, "sum", 0.1))
    assert abs(m.double()(x, t).item() - ref.double()(x, t).item()) < 1e-14
    assert set(m.state_dict()) == set(ref.state_dict()) == {"weight"}


def test_cpu_tensors_are_viewed_not_copied():
    from crossent.torch import _to_numpy

    for dt in (torch.float16, torch.float32, torch.float64, torch.int64):
        t = torch.zeros(4, 3, dtype=dt)
        assert _to_numpy(t).__array_interface__["data"][0] == t.data_ptr()
    pytest.importorskip("ml_dtypes")
    b = torch.zeros(4, 3, dtype=torch.bfloat16)
    a = _to_numpy(b)
    assert a.dtype.name == "bfloat16" and a.__array_interface__["data"][0] == b.data_ptr()


def test_bfloat16_goes_through_the_numpy_api():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x = torch.randn(6, 5).bfloat16().requires_grad_()
    y = torch.randint(0, 5, (6,))
    loss = ct.cross_entropy(x, y)
    loss.backward()
    xb = x.detach().float().numpy().astype(ml_dtypes.bfloat16)
    want_loss, want_grad = crossent.cross_entropy_value_and_grad(xb, y.numpy())
    assert loss.dtype == torch.bfloat16
    assert loss.float().item() == float(want_loss)
    assert np.array_equal(x.grad.float().numpy(), want_grad.astype(np.float32))


def test_docstring_examples_run():
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for t in doctest.DocTestFinder().find(ct, "crossent.torch"):
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 5 and result.failed == 0
