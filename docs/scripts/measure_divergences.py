"""Measure kl_divergence_logits next to PyTorch and JAX/optax on rows with p ~ q (the table in
docs/divergences.md): ULP errors against the oracle ``crossent.reference`` (exact, 256 bits),
the fraction of negative values, and KL(p, p). Run: ``python docs/scripts/measure_divergences.py``."""

from __future__ import annotations

import mpmath
import numpy as np

import crossent
from crossent import reference as ref
from crossent.ulp import ulp_error


def peers():
    out = {}
    try:
        import torch
        import torch.nn.functional as F

        def tkl(p, q):
            P, Q = torch.from_numpy(p), torch.from_numpy(q)
            return F.kl_div(F.log_softmax(Q, -1), F.log_softmax(P, -1), log_target=True,
                            reduction="none").sum(-1).numpy()

        out[f"PyTorch {torch.__version__}"] = tkl
    except ImportError:
        pass
    try:
        import jax
        import optax

        jax.config.update("jax_enable_x64", True)

        def jkl(p, q):
            lp, lq = jax.nn.log_softmax(p, -1), jax.nn.log_softmax(q, -1)
            return np.asarray(optax.losses.kl_divergence_with_log_targets(lq, lp))

        out[f"JAX {jax.__version__} / optax {optax.__version__}"] = jkl
    except ImportError:
        pass
    return out


def main(rows=50, C=100, seed=0):
    impls = {"crossent": lambda p, q: crossent.kl_divergence_logits(p, q, reduction="none")}
    impls.update(peers())
    rng = np.random.default_rng(seed)
    print("| relative gap | " + " | ".join(f"{k} max ulp (negative)" for k in impls) + " |")
    print("|---|" + "---|" * len(impls))
    for eps in (1e-1, 1e-3, 1e-6, 1e-9, 1e-12, 1e-15):
        p = rng.normal(scale=3.0, size=(rows, C))
        q = p * (1 + eps * rng.uniform(-1, 1, p.shape))
        with mpmath.workprec(256):
            exact = ref.kl_divergence_logits(p, q, reduction="none", exact=True)
        cells = []
        for f in impls.values():
            got = np.asarray(f(p, q), dtype=np.float64)
            e = ulp_error(got, exact, "float64")
            cells.append(f"{e.max():.3g} ({int((got < 0).sum())}/{rows})")
        print(f"| {eps:g} | " + " | ".join(cells) + " |")
    p = rng.normal(scale=3.0, size=(rows, C))
    print("\nKL(p, p) over", rows, "rows: " + "; ".join(
        f"{k}: max |value| {np.abs(np.asarray(f(p, p.copy()), dtype=np.float64)).max():.3g}"
        for k, f in impls.items()))


if __name__ == "__main__":
    main()
