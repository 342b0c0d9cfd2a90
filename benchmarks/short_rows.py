"""Where the short-row kernels stop winning: kernel against kernel, one thread, per row length.

For each row length ``C`` and input kind it times the short-row kernel
(``crossent.kernels.short``) and the wide-row kernel on the same ``(N, C)`` batch (one thread,
interleaved, median of the CPU time of the calling thread, which a loaded machine disturbs less
than wall time) and prints the ratio short / wide per output kind: a value per row (the loss,
logsumexp) and a row per row (the fused gradient, softmax). ``SHORT_MAX_C`` in
``crossent/kernels/short.py`` is set from this table.

Usage::

    NUMBA_NUM_THREADS=1 python benchmarks/short_rows.py [--classes 8,16,24,32,48,64,96,128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np


def _median_times(funcs, rounds):
    ts = [[] for _ in funcs]
    for _ in range(rounds):
        for i, f in enumerate(funcs):
            f()
            t0 = time.thread_time()
            f()
            ts[i].append(time.thread_time() - t0)
    return [statistics.median(t) for t in ts]


def measure(C, dtype, elements=1 << 20, rounds=9, seed=0):
    """``{output kind: short / wide}`` for rows of ``C`` classes."""
    from crossent.kernels import loss as kl
    from crossent.kernels import short as ks
    from crossent.kernels import softmax as ksm

    rng = np.random.default_rng(seed)
    N = max(elements // C, 1)
    x = (rng.standard_normal((N, C)) * 3).astype(dtype)
    y = rng.integers(0, C, N)
    w = np.ones(1)
    fast = dtype != np.float64
    o, st, g = np.empty(N), np.empty(N, np.uint8), np.empty((N, C), dtype)
    s2, l1 = np.empty((N, C), dtype), np.empty((N, 1), dtype)
    funcs = {
        "loss": (lambda: ks.cross_entropy_labels_short(x, y, w, False, -100, fast, fast, o, st, False,
                                                        1.0, g, False),
                 lambda: kl.cross_entropy_labels_rows(x, y, w, False, -100, 0.0, fast, fast, o)),
        "loss+grad": (lambda: ks.cross_entropy_labels_short(x, y, w, False, -100, fast, fast, o, st,
                                                             False, 1.0, g, True),
                      lambda: kl.cross_entropy_labels_grad_rows(x, y, w, False, -100, 0.0, 1.0, fast,
                                                                fast, o, g)),
        "logsumexp": (lambda: ks.softmax_family_short(x, ks.LOGSUMEXP, l1, fast, fast, st, False),
                      lambda: ksm.logsumexp_rows(x, l1[:, 0], fast, fast)),
        "softmax": (lambda: ks.softmax_family_short(x, ks.SOFTMAX, s2, fast, fast, st, False),
                    lambda: ksm.softmax_rows(x, s2, fast, fast)),
    }
    flat = [f for pair in funcs.values() for f in pair]
    t = _median_times(flat, rounds)
    return {k: t[2 * i] / t[2 * i + 1] for i, k in enumerate(funcs)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", default="8,16,24,32,48,64,96,128")
    ap.add_argument("--rounds", type=int, default=9)
    args = ap.parse_args(argv)
    from crossent.kernels.short import SHORT_MAX_C

    print("short / wide (below 1: the short-row kernel is faster)")
    print(f"{'dtype':8s} {'C':>4s} {'loss':>6s} {'loss+grad':>10s} {'logsumexp':>10s} {'softmax':>8s}")
    for dtype in (np.float64, np.float32):
        for C in (int(c) for c in args.classes.split(",")):
            r = measure(C, dtype, rounds=args.rounds)
            print(f"{np.dtype(dtype).name:8s} {C:4d} {r['loss']:6.2f} {r['loss+grad']:10.2f} "
                  f"{r['logsumexp']:10.2f} {r['softmax']:8.2f}", flush=True)
    print(f"SHORT_MAX_C (fast = float32/float16, rows_out = gradient/softmax): {SHORT_MAX_C}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
