"""Cost of the exact reductions (not a test): the accumulator next to the former fixed-order
double-double sums and next to a forward kernel call, in one process.

Prints, for 4096 and 65536 items, the minimum over repeated runs (µs) of: the former
``sum_fixed_order`` and ``label_weight_total`` (skipped when the kernels no longer have them),
``exact_sum``, ``exact_label_weight_sum``, and the whole reduction (``partial_of`` then
``.mean()``) in float64 and float32; then the forward call on 4096 x 1000 float32 logits and the
ratio of the whole reduction (weights + partial + mean, 4096 items) to it. Absolute times on a
shared machine are noise: read the ratios.

Run: ``python benchmarks/reductions.py [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

import crossent
from crossent._partial import exact_label_weight_sum, exact_sum, partial_of
from crossent.kernels import softmax as k


def _t(f, number, repeats):
    f()
    return min(timeit.repeat(f, number=number, repeat=repeats)) / number * 1e6


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    r = ap.parse_args(argv).repeats
    rng = np.random.default_rng(0)
    rows = {}
    for n in (4096, 65536):
        x = rng.standard_normal((n, 50)) * 4
        y = rng.integers(0, 50, n)
        y[::17] = -100
        losses = crossent.cross_entropy(x, y, reduction="none")  # float64 per-item losses
        w = rng.uniform(0.5, 2, 50)
        W = exact_label_weight_sum(y, w, True, -100)
        row = {}
        if hasattr(k, "sum_fixed_order"):
            row["former sum_fixed_order"] = _t(lambda: k.sum_fixed_order(losses), 50, r)
        row["exact_sum"] = _t(lambda: exact_sum(losses), 50, r)
        if hasattr(k, "label_weight_total"):
            row["former label_weight_total"] = _t(lambda: k.label_weight_total(y, w, True, -100), 50, r)
        row["exact_label_weight_sum"] = _t(lambda: exact_label_weight_sum(y, w, True, -100), 50, r)
        for dt in (np.float64, np.float32):
            name = f"partial_of + mean, {np.dtype(dt).name}"
            row[name] = _t(lambda dt=dt: partial_of(losses, W, dt, "weight").mean(), 50, r)
        rows[n] = row
    x = (rng.standard_normal((4096, 1000)) * 4).astype(np.float32)
    y = rng.integers(0, 1000, 4096)
    fwd = _t(lambda: crossent.cross_entropy(x, y, reduction="none"), 3, r)
    for n, row in rows.items():
        print(f"{n} items")
        for name, us in row.items():
            print(f"  {name:34s} {us:10.1f} µs")
    print(f"forward, 4096 x 1000 float32, reduction='none': {fwd:.0f} µs")
    r4 = rows[4096]
    new = r4["exact_label_weight_sum"] + r4["partial_of + mean, float32"]
    print(f"exact reduction of 4096 items / forward call: {new / fwd:.4f}")
    if "former sum_fixed_order" in r4 and "former label_weight_total" in r4:
        old = r4["former sum_fixed_order"] + r4["former label_weight_total"]
        print(f"former fixed-order sums of 4096 items / forward call: {old / fwd:.4f}")


if __name__ == "__main__":
    main()
