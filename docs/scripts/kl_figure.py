"""The KL-from-logits figure of docs/divergences.md: ULP error of KL(softmax(p) || softmax(q))
against log10(delta), q = p + delta * z (z standard normal), for crossent, PyTorch
(``F.kl_div(log_softmax(q), log_softmax(p), log_target=True)``) and JAX/optax
(``optax.losses.kl_divergence_with_log_targets``), against the oracle ``crossent.reference``
(exact values at 256 bits), in float64 and float32.

Run: ``python docs/scripts/kl_figure.py`` (writes docs/figures/kl_ulp_vs_delta.png and
docs/data/kl_ulp_vs_delta.json). A negative value (the frameworks' KL of nearly equal rows) is
counted as such and its ULP error is plotted like any other.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mpmath
import numpy as np

import crossent
from crossent import reference as ref
from crossent.ulp import ulp_error

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure_divergences import peers  # noqa: E402  (the peers' calling code, one copy)

ROWS, C = 20, 50
DELTAS = {"float64": [10.0**-k for k in range(0, 16)], "float32": [10.0**-k for k in range(0, 8)]}


def measure(seed=0):
    impls = {"crossent": lambda p, q: crossent.kl_divergence_logits(p, q, reduction="none")}
    impls.update(peers())
    out = {"rows": ROWS, "classes": C, "series": {}}
    for dt, deltas in DELTAS.items():
        rng = np.random.default_rng([seed, np.dtype(dt).itemsize])
        ser = {k: {"log10_delta": [], "max_ulp": [], "median_ulp": [], "negative": []} for k in impls}
        for delta in deltas:
            p = rng.normal(scale=3.0, size=(ROWS, C)).astype(dt)
            q = (p.astype(np.float64) + delta * rng.normal(size=p.shape)).astype(dt)
            with mpmath.workprec(256):
                exact = ref.kl_divergence_logits(p, q, reduction="none", exact=True)
            for name, f in impls.items():
                got = np.asarray(f(p, q)).astype(dt)
                e = np.asarray(ulp_error(got, exact, dt), dtype=np.float64)
                s = ser[name]
                s["log10_delta"].append(float(np.log10(delta)))
                s["max_ulp"].append(float(e.max()))
                s["median_ulp"].append(float(np.median(e)))
                s["negative"].append(int((got < 0).sum()))
        out["series"][dt] = ser
    return out


def plot(data, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (dt, ser) in zip(axes, data["series"].items()):
        for name, s in ser.items():
            y = np.maximum(np.array(s["max_ulp"]), 1e-2)
            ax.plot(s["log10_delta"], y, marker="o", ms=3, label=name)
        ax.set_yscale("log")
        ax.axhline(4.0 if dt == "float64" else 1.0, color="gray", ls=":", lw=1)
        ax.set_xlabel("log10(delta),  q = p + delta z")
        ax.set_ylabel("max ULP error over the rows")
        ax.set_title(f"KL(softmax p || softmax q), {dt}, {data['rows']} rows x {data['classes']}")
        ax.invert_xaxis()
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main():
    data = measure()
    (ROOT / "docs" / "data").mkdir(exist_ok=True)
    (ROOT / "docs" / "data" / "kl_ulp_vs_delta.json").write_text(json.dumps(data, indent=1))
    plot(data, ROOT / "docs" / "figures" / "kl_ulp_vs_delta.png")
    for dt, ser in data["series"].items():
        print(dt)
        for name, s in ser.items():
            print(f"  {name:40s} max ulp {max(s['max_ulp']):.3g}  negative values "
                  f"{sum(s['negative'])}/{ROWS * len(s['negative'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
