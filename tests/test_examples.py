"""The examples in ``examples/`` run, and say what they claim (shortened: 3 epochs, 87 steps).

- float64: the loss curve of the framework's loss and the one of crossent's drop-in agree step
  by step to 1e-9 relative (measured: about 1e-12 after 87 steps);
- float32: on the trained model the framework's per-example loss, and the label entry of its
  gradient, are exactly 0 on some confident examples; crossent's are positive everywhere.

Skipped with the reason when PyTorch, JAX/optax or scikit-learn is missing (optional extras).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EPOCHS = 3


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _check(result, framework, float64_key, float32_key):
    assert result[float64_key]["steps"] == EPOCHS * 29  # 1797 examples in batches of 64
    assert result[float64_key]["max_rel_diff"] <= 1e-9, result[float64_key]
    theirs, ours = result["float32_zeros"][framework], result["float32_zeros"]["crossent"]
    assert theirs["zero_loss"] > 0 and theirs["zero_grad_at_label"] > 0, theirs
    assert ours["zero_loss"] == 0 and ours["zero_grad_at_label"] == 0 and ours["smallest_loss"] > 0, ours


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed (the optional 'torch' extra)")
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64x64 matmul gains nothing from threads; a shared machine loses
    yield torch
    torch.set_num_threads(n)


def test_digits_torch(one_torch_thread):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the 'examples' extra)")
    ex = _load("digits_torch")
    _check(ex.run(epochs=EPOCHS), "pytorch", "torch.float64", "torch.float32")


def test_digits_torch_compiled_trains_as_eager(one_torch_thread):
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the 'examples' extra)")
    ex = _load("digits_torch")
    torch = one_torch_thread
    eager, *_ = ex.train(ex.crossent.torch.cross_entropy, torch.float64, epochs=1)
    compiled, *_ = ex.train(ex.crossent.torch.cross_entropy, torch.float64, epochs=1, compile=True)
    # Inductor may order the linear layer's sums differently: equal to rounding, not bitwise
    assert np.max(np.abs(eager - compiled) / eager) <= 1e-12


def test_digits_jax():
    pytest.importorskip("jax", reason="JAX is not installed (the optional 'jax' extra)")
    pytest.importorskip("optax", reason="optax is not installed (the optional 'jax' extra)")
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the 'examples' extra)")
    ex = _load("digits_jax")
    _check(ex.run(epochs=EPOCHS), "optax", "float64", "float32")


def test_numba_softmax_regression():
    """The hand-written @njit loop calling crossent.numba gives the NumPy API's bits: every
    per-example loss of every epoch and the final weights are identical (the same forward and
    update code, the loss and gradient from the row functions vs the batch API); the mean loss
    decreases."""
    pytest.importorskip("sklearn", reason="scikit-learn is not installed (the 'examples' extra)")
    ex = _load("numba_softmax_regression")
    X, y = ex.data()
    X, y = X[:300], y[:300]  # shortened
    W1, b1 = np.zeros((X.shape[1], 10)), np.zeros(10)
    W2, b2 = W1.copy(), b1.copy()
    ours = ex.train(X, y, W1, b1, 0.5, 4)
    api = ex.train_numpy_api(X, y, W2, b2, 0.5, 4)
    assert np.array_equal(ours.view(np.uint64), api.view(np.uint64))
    assert np.array_equal(W1.view(np.uint64), W2.view(np.uint64))
    assert np.array_equal(b1.view(np.uint64), b2.view(np.uint64))
    curve = ours.mean(axis=1)
    assert np.all(np.diff(curve) < 0), curve
