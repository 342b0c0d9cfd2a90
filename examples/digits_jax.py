"""Softmax regression on scikit-learn's digits, trained twice with JAX and optax: once with
``optax.softmax_cross_entropy_with_integer_labels``, once with
``crossent.jax.softmax_cross_entropy_with_integer_labels`` (the only change in the script),
from the same initial weights and the same mini-batches, each step under ``jax.jit``.

In float64 the two loss curves agree step by step to about 1e-12 relative. In float32, after
training, optax's per-example loss is exactly 0 on the most confident examples, and so is the
label entry of its gradient; crossent's are not.

Run (from a clone, with ``pip install jax optax scikit-learn`` and crossent installed)::

    python examples/digits_jax.py              # 10 epochs of Adam, 290 steps

The float64 run needs ``jax_enable_x64``, which this script turns on.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

import crossent.jax

jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64 (else JAX uses float32)


def train(loss_fn, dtype, epochs=10, lr=0.03, batch=64, seed=0):
    """Adam on mini-batches of a linear model (softmax regression); returns the loss per step."""
    X, y = load_digits(return_X_y=True)
    X = jnp.asarray(X, dtype)  # pixel intensities 0..16, not rescaled: confident soon
    y = jnp.asarray(y)
    bound = 1 / np.sqrt(X.shape[1])  # the initialization of torch.nn.Linear
    kw, kb = jax.random.split(jax.random.key(seed))
    params = {"w": jax.random.uniform(kw, (X.shape[1], 10), dtype, -bound, bound),
              "b": jax.random.uniform(kb, (10,), dtype, -bound, bound)}
    opt = optax.adam(lr)
    state = opt.init(params)

    def loss_of(p, xb, yb):
        return loss_fn(xb @ p["w"] + p["b"], yb).mean()

    @jax.jit
    def step(p, s, xb, yb):
        loss, grads = jax.value_and_grad(loss_of)(p, xb, yb)
        updates, s = opt.update(grads, s, p)
        return optax.apply_updates(p, updates), s, loss

    rng = np.random.default_rng(seed)
    curve = []
    for _ in range(epochs):
        perm = rng.permutation(len(X))
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            params, state, loss = step(params, state, X[idx], y[idx])
            curve.append(float(loss))
    return np.array(curve), params, X, y


def confident_zeros(params, X, y):
    """Per-example losses, and label entries of their gradient, that are exactly 0."""
    logits = X @ params["w"] + params["b"]
    counts = {}
    for name, fn in (("optax", optax.softmax_cross_entropy_with_integer_labels),
                     ("crossent", crossent.jax.softmax_cross_entropy_with_integer_labels)):
        losses, pullback = jax.vjp(lambda z: fn(z, y), logits)
        (grad,) = pullback(jnp.ones_like(losses))
        at_label = jnp.take_along_axis(grad, y[:, None], axis=1)
        counts[name] = {
            "zero_loss": int((losses == 0).sum()),
            "zero_grad_at_label": int((at_label == 0).sum()),
            "smallest_loss": float(losses.min()),
        }
    return counts


def max_relative_difference(a, b):
    return float(np.max(np.abs(a - b) / np.abs(a)))


def run(epochs=10):
    """Both trainings in float64 and float32; the curves' agreement and the float32 zeros."""
    out = {}
    for dtype in (jnp.float64, jnp.float32):
        theirs, params, X, y = train(optax.softmax_cross_entropy_with_integer_labels, dtype, epochs=epochs)
        ours, *_ = train(crossent.jax.softmax_cross_entropy_with_integer_labels, dtype, epochs=epochs)
        out[jnp.dtype(dtype).name] = {"steps": len(ours), "max_rel_diff": max_relative_difference(theirs, ours),
                                      "final_loss": (float(theirs[-1]), float(ours[-1]))}
        if dtype == jnp.float32:
            out["float32_zeros"] = confident_zeros(params, X, y)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    r = run(args.epochs)
    for dt in ("float64", "float32"):
        print(f"{dt}: {r[dt]['steps']} steps, loss curves' max relative difference {r[dt]['max_rel_diff']:.3g}, "
              f"final loss {r[dt]['final_loss'][0]:.6g} (optax) / {r[dt]['final_loss'][1]:.6g} (crossent)")
    for name, c in r["float32_zeros"].items():
        print(f"float32 model, {name:8s}: loss exactly 0 on {c['zero_loss']} of 1797 examples, label entry "
              f"of the gradient exactly 0 on {c['zero_grad_at_label']}; smallest loss {c['smallest_loss']:.3g}")


if __name__ == "__main__":
    main()
