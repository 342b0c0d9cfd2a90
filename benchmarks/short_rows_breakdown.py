"""Where the time of the short-row loss kernel goes, pass by pass, against the read floor.

One thread, the CPU time of the calling thread, interleaved, median of ``--rounds``; ns per
logit element on an ``(N, C)`` batch (about 2**20 elements). The rows, each built on the
previous one and timed on its own:

* ``read``: NumPy's sum of the batch (one read of the logits: the floor of any loss);
* ``exp``: the kernels' own vectorized exp (``exp_parts_f64_short`` for float32,
  ``exp_parts_f64`` for float64) over the logits as one contiguous float64 array: the
  arithmetic of the terms alone, without the transposition, the max or the sums;
* ``stats``: ``_block_stats`` on every block (copy transposed, max, terms and their sum, log);
* ``loss``: ``_loss_block`` on every block (the stats, then the target gather, the loss lanes and
  the write-out);
* ``kernel``: ``cross_entropy_labels_short`` on one thread (the loss blocks, the scratch and the
  loop).

The differences between rows are what each pass costs. Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/short_rows_breakdown.py [--classes 10] [--dtype float32]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _median_times(funcs, rounds):
    ts = [[] for _ in funcs]
    for f in funcs:
        f()
    for _ in range(rounds):
        for i, f in enumerate(funcs):
            t0 = time.thread_time()
            f()
            ts[i].append(time.thread_time() - t0)
    return [statistics.median(t) for t in ts]


def measure(C, dtype, elements=1 << 20, rounds=15, seed=0):
    """``{row: ns per element}`` for the loss of ``(elements // C, C)`` rows."""
    from numba import njit  # not cached: the drivers are closures over the dtype's exp

    from crossent.kernels import exp as ke
    from crossent.kernels import short as ks
    from crossent.kernels._base import fma

    fast = np.dtype(dtype) != np.float64
    exp_parts = ke.exp_parts_f64_short if fast else ke.exp_parts_f64

    @njit(error_model="numpy")
    def exp_pass(a, out):  # pragma: no cover - compiled
        for i in range(a.size):
            t, s = exp_parts(a[i])
            out[i] = fma(t, s, s)

    @njit(error_model="numpy")
    def stats_pass(x, fast, w):  # pragma: no cover - compiled
        for b in range((x.shape[0] + ks.R - 1) // ks.R):
            ks._block_stats(x, b * ks.R, fast, w)

    @njit(error_model="numpy")
    def loss_pass(x, y, wt, fast, out, stat, w, g):  # pragma: no cover - compiled
        for b in range((x.shape[0] + ks.R - 1) // ks.R):
            ks._loss_block(x, y, wt, False, -100, fast, fast, out, stat, b * ks.R, w, 1.0, g,
                           False)

    rng = np.random.default_rng(seed)
    N = max(elements // C, 1)
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    y = rng.integers(0, C, N)
    wt = np.ones(1)
    d = (x.astype(np.float64) - x.max(axis=1, keepdims=True)).reshape(-1)
    e = np.empty_like(d)
    o, st = np.empty(N), np.empty(N, np.uint8)
    w = ks._scratch(C)
    rows = {
        "read": lambda: x.sum(),
        "exp": lambda: exp_pass(d, e),
        "stats": lambda: stats_pass(x, fast, w),
        "loss": lambda: loss_pass(x, y, wt, fast, o, st, w, x),
        "kernel": lambda: ks.cross_entropy_labels_short(x, y, wt, False, -100, fast, fast, o, st,
                                                        False, 1.0, x, False),
    }
    t = _median_times(list(rows.values()), rounds)
    return {k: 1e9 * v / (N * C) for k, v in zip(rows, t)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", default="10,24")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args(argv)
    print("ns per element, one thread (each row includes the ones above it, except exp)")
    for dt in args.dtype.split(","):
        for C in (int(c) for c in args.classes.split(",")):
            r = measure(C, np.dtype(dt), rounds=args.rounds)
            print(f"{dt:8s} C={C:3d} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
