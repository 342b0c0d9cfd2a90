"""A zero denominator reaches the kernels as an IEEE division, never as an exception.

``cross_entropy_value_and_grad(x, [0], weight=np.zeros(3))`` (reduction "mean") divides the
gradient by the sum of the items' weights, which is 0. The kernels once used Numba's default
error model, under which that division raised ``ZeroDivisionError`` inside a parallel region:
the interpreter saw a ``SystemError``. Every kernel is now compiled with
``error_model="numpy"`` (``crossent.kernels._base.jit``; ``tests/test_kernel_base.py`` checks
every dispatcher), so the division gives nan.

Expected values are PyTorch's (2.13.0, ``torch.nn.functional.cross_entropy`` and
``backward``; re-checked by :func:`test_agrees_with_pytorch` when torch is installed):

* class indices, every weight 0, "mean": the divisor ``sum_n w[y_n]`` is 0, so the loss is
  ``0/0 = nan`` and the gradient of every non-ignored item is nan (ignored items: 0);
* class indices, "sum": no division, loss 0 and gradient 0;
* probability targets: "mean" divides by the number of items, not by the weights, so the loss
  is 0 and the gradient 0 with zero weights (PyTorch gives a loss of -0.0: the sign is not
  compared).
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent

DTYPES = (np.float16, np.float32, np.float64)
ids = lambda d: np.dtype(d).name  # noqa: E731
SMOOTHING = (0.0, 0.1, 1.0)

X = np.array([[0.1, 0.2, 0.3], [1.0, -2.0, 0.5], [3.0, 3.0, -40.0]])
LABELS = np.array([0, 2, 1])
PROBS = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])


def _case(dtype, probabilities):
    x = X.astype(dtype)
    t = PROBS.astype(dtype) if probabilities else LABELS
    return x, t, np.zeros(3, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("eps", SMOOTHING)
def test_labels_mean_over_zero_weights_is_nan(dtype, eps):
    x, y, w = _case(dtype, False)
    loss = crossent.cross_entropy(x, y, weight=w, label_smoothing=eps)
    assert loss.dtype == dtype and np.isnan(loss)
    loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w, label_smoothing=eps)
    assert loss.dtype == dtype and np.isnan(loss)
    assert g.dtype == dtype and g.shape == x.shape and np.isnan(g).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
def test_the_reported_call(dtype):
    """The call of the report: one item, label 0, three zero weights."""
    loss, g = crossent.cross_entropy_value_and_grad(X[:1].astype(dtype), [0], weight=np.zeros(3, dtype))
    assert np.isnan(loss) and np.isnan(g).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("eps", SMOOTHING)
def test_ignored_items_keep_a_zero_gradient(dtype, eps):
    x, y, w = _case(dtype, False)
    y = y.copy()
    y[1] = -100
    loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w, label_smoothing=eps)
    assert np.isnan(loss)
    assert (g[1] == 0).all()
    assert np.isnan(g[[0, 2]]).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("eps", SMOOTHING)
def test_labels_sum_over_zero_weights_is_zero(dtype, eps):
    x, y, w = _case(dtype, False)
    assert crossent.cross_entropy(x, y, weight=w, label_smoothing=eps, reduction="sum") == 0
    loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w, label_smoothing=eps, reduction="sum")
    assert loss == 0 and (g == 0).all()


@pytest.mark.parametrize("dtype", DTYPES, ids=ids)
@pytest.mark.parametrize("eps", SMOOTHING)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_probability_targets_with_zero_weights_are_zero(dtype, eps, reduction):
    x, t, w = _case(dtype, True)
    assert crossent.cross_entropy(x, t, weight=w, label_smoothing=eps, reduction=reduction) == 0
    loss, g = crossent.cross_entropy_value_and_grad(x, t, weight=w, label_smoothing=eps, reduction=reduction)
    assert loss == 0 and (g == 0).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=ids)
@pytest.mark.parametrize("eps", SMOOTHING)
@pytest.mark.parametrize("probabilities", [False, True], ids=["labels", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_agrees_with_pytorch(dtype, eps, probabilities, reduction):
    torch = pytest.importorskip("torch")
    x, t, w = _case(dtype, probabilities)
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(xt, torch.tensor(t), weight=torch.tensor(w),
                                            label_smoothing=eps, reduction=reduction)
    ref.backward()
    loss, g = crossent.cross_entropy_value_and_grad(x, t, weight=w, label_smoothing=eps, reduction=reduction)
    np.testing.assert_array_equal(loss, ref.detach().numpy())  # nan == nan, -0.0 == 0.0 here
    np.testing.assert_array_equal(g, xt.grad.numpy())
