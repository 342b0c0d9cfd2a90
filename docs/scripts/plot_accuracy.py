"""Measure and plot the two accuracy figures of docs/accuracy.md.

Both figures are measurements made when this script runs, never typed-in numbers: each
implementation is called on the same input floats and its output is compared with the exact
value that :mod:`crossent.reference` computes from those floats, in ULPs of the output format
(:func:`crossent.ulp.ulp_error`). Peers that are not installed are left out of the figure (and
the script says so), never estimated.

``docs/figures/ulp_vs_gap.png``
    the per-row loss of a confident, correct prediction, logits ``[0, -g + c_1, ..., -g + c_9]``
    (K = 10, offsets ``c_j`` in [-1, 0]), against the confidence gap ``g`` from 0.25 to 740
    (float64) or 105 (float32, beyond which the loss underflows): crossent, PyTorch (``torch.nn.functional.cross_entropy``), JAX/optax
    (``optax.softmax_cross_entropy_with_integer_labels``) and SciPy
    (``-scipy.special.log_softmax(z)[y]``).
``docs/figures/ulp_vs_kl_eps.png``
    ``D(p || q)`` with ``p`` a seeded Dirichlet PMF on 100 classes and ``q = p (1 + eps xi)``
    renormalized (``xi`` uniform in [-1, 1]), against ``eps`` from 1e-1 to 1e-8, float64:
    crossent, SciPy (``scipy.stats.entropy(p, q)``), PyTorch
    (``torch.nn.functional.kl_div(log q, p, reduction="none")`` summed per row), optax
    (``optax.kl_divergence(log q, p)``) and the textbook ``H(p, q) - H(p, p)``.

The data of both figures are also written to ``docs/data/accuracy_figures.json``.
Run from the repository root: ``python docs/scripts/plot_accuracy.py`` (about a minute).
"""

from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
FIG = ROOT / "docs" / "figures"
DATA = ROOT / "docs" / "data"
sys.path.insert(0, str(ROOT / "src"))

import crossent  # noqa: E402
from crossent import reference  # noqa: E402
from crossent.testing import jax_impl, torch_impl  # noqa: E402
from crossent.ulp import ulp_error  # noqa: E402

SEED = 20240531
K = 10
#: the gap range of each format: up to where the true loss ~ 9 e^-g leaves the subnormal range
GAPS = {
    "float64": np.concatenate([np.linspace(0.25, 10, 40), np.linspace(10.5, 740, 120)]),
    "float32": np.concatenate([np.linspace(0.25, 10, 40), np.linspace(10.5, 105, 80)]),
}
EPS = np.geomspace(1e-1, 1e-8, 36)


# ---------------------------------------------------------------------------------------------
# implementations: the peers through crossent.testing's adapters (the ones `crossent accuracy`
# and the "Test your own kernel" page use), left out when not installed
# ---------------------------------------------------------------------------------------------


def _adapter(make, function):
    """``make(function)`` (``torch_impl``/``jax_impl``), or None when the library is missing."""
    try:
        return make(function)
    except ImportError:
        return None


def _scipy():
    try:
        import scipy.special
        import scipy.stats

        return scipy
    except Exception:
        return None


def loss_impls():
    impls = {"crossent": lambda z, y: np.asarray(crossent.cross_entropy(z, y, reduction="none"))}
    for label, make in (("PyTorch", torch_impl), ("JAX (optax)", jax_impl)):
        f = _adapter(make, "cross_entropy")
        if f is not None:
            impls[label] = functools.partial(f, reduction="none")
    sc = _scipy()
    if sc is not None:
        impls["SciPy"] = lambda z, y: -np.take_along_axis(
            sc.special.log_softmax(z, axis=-1), y[:, None], axis=-1)[:, 0]
    return impls


def kl_impls():
    impls = {"crossent": lambda p, q: np.asarray(crossent.kl_divergence(p, q))}
    sc = _scipy()
    if sc is not None:
        impls["SciPy (stats.entropy)"] = lambda p, q: np.array(
            [sc.stats.entropy(pi, qi) for pi, qi in zip(p, q)])
    for label, make in (("PyTorch (kl_div)", torch_impl), ("JAX (optax)", jax_impl)):
        f = _adapter(make, "kl_divergence")
        if f is not None:
            impls[label] = f
    impls["H(p,q) - H(p,p)"] = lambda p, q: -(p * np.log(q)).sum(-1) + (p * np.log(p)).sum(-1)
    return impls


# ---------------------------------------------------------------------------------------------
# the two sweeps
# ---------------------------------------------------------------------------------------------


def gap_inputs(dtype) -> tuple[np.ndarray, np.ndarray]:
    gaps = GAPS[dtype]
    offsets = np.linspace(0.0, -1.0, K - 1)
    z = np.zeros((len(gaps), K))
    z[:, 1:] = -gaps[:, None] + offsets[None, :]
    return z.astype(dtype), np.zeros(len(gaps), dtype=np.int64)


def kl_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    p = rng.dirichlet(np.ones(100), size=len(EPS))
    p /= p.sum(-1, keepdims=True)
    xi = rng.uniform(-1, 1, size=p.shape)
    q = p * (1 + EPS[:, None] * xi)
    q /= q.sum(-1, keepdims=True)
    return p, q


def measure(impls, args, exact, dtype) -> dict[str, list[float]]:
    out = {}
    for name, f in impls.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                got = np.asarray(f(*args), dtype=np.float64).astype(dtype)
            out[name] = [float(e) for e in ulp_error(got, exact, dtype)]
        except Exception as exc:  # a peer that cannot run this case is left out, and said so
            print(f"  {name}: skipped ({type(exc).__name__}: {exc})")
    return out


def plot(ax, x, series, xlabel, title, logx=False):
    markers = "o^sDvx"
    for (name, errs), m in zip(series.items(), markers):
        errs = np.asarray(errs)
        shown = np.where(np.isfinite(errs), np.maximum(errs, 0.0), np.nan)
        ax.plot(x, shown, m, ms=3.5, alpha=0.8, label=name, linestyle="none",
                markerfacecolor="none" if name != "crossent" else None)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    if logx:
        ax.set_xscale("log")
        ax.invert_xaxis()
    ax.set_xlabel(xlabel)
    ax.set_ylabel("ULP error (symlog; 0.5 = correctly rounded)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIG.mkdir(parents=True, exist_ok=True)
    DATA.mkdir(parents=True, exist_ok=True)
    data = {"seed": SEED, "gap": {"x": {d: g.tolist() for d, g in GAPS.items()}}, "kl": {"x": EPS.tolist()}}

    impls = loss_impls()
    print("loss vs confidence gap: " + ", ".join(impls))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, dtype in zip(axes, ("float64", "float32")):
        z, y = gap_inputs(dtype)
        exact = reference.cross_entropy(z, y, reduction="none", exact=True)
        series = measure(impls, (z, y), exact, dtype)
        data["gap"][dtype] = series
        plot(ax, GAPS[dtype], series, "confidence gap g (logit of the label minus the others)",
             f"per-row loss, K = {K}, {dtype}")
    fig.tight_layout()
    fig.savefig(FIG / "ulp_vs_gap.png", dpi=90)
    plt.close(fig)

    impls = kl_impls()
    print("KL vs eps: " + ", ".join(impls))
    p, q = kl_inputs()
    exact = reference.kl_divergence(p, q, exact=True)
    series = measure(impls, (p, q), exact, "float64")
    data["kl"]["float64"] = series
    fig, ax = plt.subplots(figsize=(6, 3.8))
    plot(ax, EPS, series, "ε (q = p(1 + ε ξ), renormalized)", "D(p‖q), 100 classes, float64",
         logx=True)
    fig.tight_layout()
    fig.savefig(FIG / "ulp_vs_kl_eps.png", dpi=90)
    plt.close(fig)

    (DATA / "accuracy_figures.json").write_text(json.dumps(data, indent=0))
    for name in ("gap", "kl"):
        for dtype, series in data[name].items():
            if dtype == "x":
                continue
            for impl, errs in series.items():
                e = np.asarray(errs)
                print(f"  {name:4s} {dtype:8s} {impl:24s} max {np.nanmax(e):10.3g}  median {np.nanmedian(e):10.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
