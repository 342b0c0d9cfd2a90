"""Law of large numbers for the die: the empirical PMF converges to q.

Rolls a fixed (unfair) K-sided die N times for N = 10 .. 10^7 (seeded), computes the empirical
PMF p_N = ``crossent.empirical_pmf`` (the article's equation 1) and plots, on log-log axes, the
total-variation distance TV(p_N, q) = 1/2 sum_k |p_N(k) - q(k)| and max_k |p_N(k) - q(k)|
against N, averaged over repetitions, with the N^-1/2 guide of the central limit theorem
(E|p_N(k) - q(k)| ~ sqrt(2 q(k)(1 - q(k)) / (pi N))).

Writes ``docs/figures/lln.png``. Run: ``python docs/scripts/lln_figure.py [--out PATH]``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

import crossent

SEED = 20240611
K = 6
Q = np.array([0.30, 0.10, 0.15, 0.20, 0.05, 0.20])  # the unfair die (sums to 1)
NS = np.unique(np.logspace(1, 7, 25).astype(np.int64))
REPS = 20


def distances(seed: int = SEED):
    """Mean TV and max-abs distances over ``REPS`` runs for each N in ``NS``."""
    rng = np.random.default_rng(seed)
    tv = np.zeros(NS.size)
    mx = np.zeros(NS.size)
    for _ in range(REPS):
        for i, n in enumerate(NS):
            x = rng.choice(K, size=int(n), p=Q)
            d = np.abs(crossent.empirical_pmf(x, K) - Q)
            tv[i] += 0.5 * d.sum() / REPS
            mx[i] += d.max() / REPS
    return tv, mx


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[1] / "figures" / "lln.png"
    ap.add_argument("--out", type=Path, default=default)
    a = ap.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tv, mx = distances()
    # CLT guide: E TV ~ 1/2 sum_k sqrt(2 q(1-q) / (pi N))
    c = 0.5 * sum(math.sqrt(2 * qk * (1 - qk) / math.pi) for qk in Q)
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    ax.loglog(NS, tv, "o-", ms=4, label=r"TV$(p_N, q) = \frac{1}{2}\sum_k |p_N(k) - q(k)|$")
    ax.loglog(NS, mx, "s-", ms=4, label=r"$\max_k |p_N(k) - q(k)|$")
    ax.loglog(NS, c / np.sqrt(NS), "k--", lw=1, label=r"$c\,N^{-1/2}$ (CLT)")
    ax.set_xlabel("number of rolls $N$")
    ax.set_ylabel(f"distance (mean of {REPS} runs)")
    ax.set_title(f"Empirical PMF of a {K}-sided die converges to $q$")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
