"""Softmax regression on scikit-learn's digits with a hand-written ``@numba.njit`` training
loop that calls ``crossent.numba.cross_entropy_grad_row`` for each example (float64,
full-batch gradient descent on the mean loss).

The same training written with the NumPy API (``crossent.cross_entropy_value_and_grad`` on
the whole batch, the same forward and update code) gives the same bits: every per-example
loss and the final weights are identical (``tests/test_examples.py`` checks it).

Run (from a clone, with ``pip install scikit-learn`` and crossent installed)::

    python examples/numba_softmax_regression.py     # 50 epochs
"""

from __future__ import annotations

import numba
import numpy as np
from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

import crossent
import crossent.numba as cn


@numba.njit
def forward(X, W, b, logits):
    """``logits = X @ W + b`` with plain loops (a fixed order: the same bits every run)."""
    N, D = X.shape
    C = W.shape[1]
    for n in range(N):
        for c in range(C):
            s = b[c]
            for d in range(D):
                s += X[n, d] * W[d, c]
            logits[n, c] = s


@numba.njit
def update(X, grad, W, b, lr):
    """One gradient step: ``W -= lr X^T grad``, ``b -= lr sum_n grad[n]``."""
    N, D = X.shape
    C = W.shape[1]
    for c in range(C):
        gb = 0.0
        for n in range(N):
            gb += grad[n, c]
        b[c] -= lr * gb
        for d in range(D):
            s = 0.0
            for n in range(N):
                s += X[n, d] * grad[n, c]
            W[d, c] -= lr * s


@numba.njit
def train(X, y, W, b, lr, epochs):
    """Gradient descent on the mean cross-entropy; returns the per-example losses of every
    epoch (``epochs x N``), computed before that epoch's step."""
    N = X.shape[0]
    C = W.shape[1]
    logits = np.empty((N, C))
    grad = np.empty((N, C))
    losses = np.empty((epochs, N))
    scale = 1.0 / N  # the gradient of the mean: (softmax - onehot) / N for each row
    for e in range(epochs):
        forward(X, W, b, logits)
        for n in range(N):
            losses[e, n] = cn.cross_entropy_grad_row(logits[n], y[n], scale, grad[n])
        update(X, grad, W, b, lr)
    return losses


def train_numpy_api(X, y, W, b, lr, epochs):
    """The same training with the NumPy API for the loss and its gradient."""
    N, C = X.shape[0], W.shape[1]
    logits = np.empty((N, C))
    losses = np.empty((epochs, N))
    weight = np.full(C, 1.0 / N)  # class weight 1/N with reduction="sum": grad of the mean
    for e in range(epochs):
        forward(X, W, b, logits)
        losses[e] = crossent.cross_entropy(logits, y, reduction="none")
        _, grad = crossent.cross_entropy_value_and_grad(logits, y, weight=weight, reduction="sum")
        update(X, grad, W, b, lr)
    return losses


def data():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y.astype(np.int64)


def main(epochs=50, lr=0.5):
    X, y = data()
    W, b = np.zeros((X.shape[1], 10)), np.zeros(10)
    losses = train(X, y, W, b, lr, epochs)
    curve = losses.mean(axis=1)
    for e in range(0, epochs, max(1, epochs // 10)):
        print(f"epoch {e:3d}  mean loss {curve[e]:.6f}")
    logits = np.empty((X.shape[0], 10))
    forward(X, W, b, logits)
    print(f"training accuracy {np.mean(logits.argmax(1) == y):.3f}")
    return curve


if __name__ == "__main__":
    main()
