"""Accuracy of the sigmoid cross-entropy against the oracle: crossent, PyTorch's
``binary_cross_entropy_with_logits`` and optax's ``sigmoid_binary_cross_entropy`` (JAX), on the
corpus ``crossent.corpus.binary`` (reduction "none", every element), and the figure
``docs/figures/bce_ulp_vs_logit.png`` (ULP error against the logit, hard targets on the
target's side, float64).

    python benchmarks/binary_peers.py [--figure]

Prints a Markdown table (max ULP, fraction correctly rounded) per dtype; docs/binary.md quotes it.
"""

from __future__ import annotations

import sys

import numpy as np

import crossent
import crossent.reference
from crossent import reference as ref
from crossent.corpus import binary as corpus


def _torch(x, t, w, pw):
    import torch

    f = torch.nn.functional.binary_cross_entropy_with_logits
    tt = lambda a: None if a is None else torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return f(tt(x), tt(t), weight=tt(w), pos_weight=tt(pw), reduction="none").numpy()


def _optax(x, t, w, pw):
    import jax

    jax.config.update("jax_enable_x64", True)
    import optax

    if pw is not None:
        return None  # optax has no pos_weight
    r = np.asarray(optax.sigmoid_binary_cross_entropy(x, t))
    return r if w is None else (r * w).astype(x.dtype)


PEERS = {"crossent": lambda x, t, w, pw: crossent.binary_cross_entropy_with_logits(
    x, t, weight=w, pos_weight=pw, reduction="none"), "PyTorch": _torch, "optax": _optax}


def measure():
    rows = []
    for dt in ("float64", "float32", "float16"):
        errs = {k: [] for k in PEERS}
        bad = {k: [0, 0] for k in PEERS}  # [returned 0 for a non-zero loss, returned nan]
        for c in corpus.cases(dt):
            if c.reduction != "none":
                continue
            exact = ref.binary_cross_entropy_with_logits(c.logits, c.target, exact=True, **c.kwargs())
            for name, f in PEERS.items():
                if name == "optax" and dt == "float16":
                    continue
                got = f(c.logits, c.target, c.weight, c.pos_weight)
                if got is None:
                    continue
                g = np.asarray(got, dtype=np.float64).reshape(-1)
                ex = np.asarray(crossent.reference.binary_cross_entropy_with_logits(
                    c.logits, c.target, reduction="none", **{k: v for k, v in c.kwargs().items()
                                                             if k != "reduction"}),
                    dtype=np.float64).reshape(-1)
                bad[name][0] += int(np.sum((g == 0) & (ex != 0)))
                bad[name][1] += int(np.sum(np.isnan(g) & ~np.isnan(ex)))
                fin = np.isfinite(c.logits.reshape(-1)) & (g == g)
                e = np.asarray(crossent.ulp_error(g.astype(dt)[fin], np.asarray(exact).reshape(-1)[fin], dt),
                               dtype=float)
                errs[name].append(e)
        for name, e in errs.items():
            if e:
                e = np.concatenate(e)
                rows.append((dt, name, e.size, float(np.max(e)), float(np.mean(e <= 0.5)),
                             bad[name][0], bad[name][1]))
    return rows


def figure(path="docs/figures/bce_ulp_vs_logit.png"):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.linspace(-60.0, 60.0, 481)
    t = (x > 0).astype(np.float64)  # the target on the logit's side: loss softplus(-|x|)
    exact = ref.binary_cross_entropy_with_logits(x, t, reduction="none", exact=True)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, f in PEERS.items():
        e = np.asarray(crossent.ulp_error(f(x, t, None, None), exact, "float64"), dtype=float)
        ax.semilogy(x, np.maximum(e, 1e-3), ".", ms=3, label=name)
    ax.set_xlabel("logit x (target 1 for x > 0, 0 for x < 0)")
    ax.set_ylabel("ULP error (float64), floored at 1e-3")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    print("| dtype | implementation | finite-logit outputs | max ULP | correctly rounded "
          "| 0 for a non-zero loss | nan for a defined loss |")
    print("|---|---|---|---|---|---|---|")
    for dt, name, n, mx, cr, z, nn in measure():
        print(f"| {dt} | {name} | {n} | {mx:.3g} | {100 * cr:.2f}% | {z} | {nn} |")
    if "--figure" in sys.argv:
        figure()
