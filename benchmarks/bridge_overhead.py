"""Overhead per call of the PyTorch and JAX bridges on a small batch, next to the frameworks' own
loss and to crossent's NumPy API, in one process.

For a 64 x 10 batch (the size where the fixed cost of a call dominates) in float32, the median
time of one call, in microseconds, of:

- PyTorch (eager): ``F.cross_entropy`` vs ``crossent.torch.cross_entropy``, forward only (no
  graph) and forward + ``backward()``;
- JAX (``jit``): the mean of ``optax.softmax_cross_entropy_with_integer_labels`` vs the mean of
  ``crossent.jax.softmax_cross_entropy_with_integer_labels``, forward and ``value_and_grad``;
- crossent's NumPy API (``cross_entropy``, ``cross_entropy_value_and_grad``): what the bridges
  call, so the difference is the bridge's own cost.

Rounds are interleaved (one timed batch of calls of every implementation per round) so that
machine drift hits all alike; each implementation is warmed up first (JIT compilation), and each
timed batch follows an untimed batch of the same implementation, so that no library is timed while
another library's worker threads are still spinning (as ``crossent bench`` does).

Run: ``python benchmarks/bridge_overhead.py [--rounds 15] [--calls 200] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

import crossent


def _cases(n, c, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c)).astype(dtype)
    y = rng.integers(0, c, n)
    cases = {
        "numpy: cross_entropy": lambda: crossent.cross_entropy(x, y),
        "numpy: cross_entropy_value_and_grad": lambda: crossent.cross_entropy_value_and_grad(x, y),
    }
    try:
        import torch
        import torch.nn.functional as F

        import crossent.torch as ct
    except ImportError:
        pass
    else:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        xg = xt.clone().requires_grad_()

        def fb(fn):
            def call():
                fn(xg, yt).backward()
                xg.grad = None
            return call

        cases.update({
            "torch forward: F.cross_entropy": lambda: F.cross_entropy(xt, yt),
            "torch forward: crossent.torch.cross_entropy": lambda: ct.cross_entropy(xt, yt),
            "torch forward+backward: F.cross_entropy": fb(F.cross_entropy),
            "torch forward+backward: crossent.torch.cross_entropy": fb(ct.cross_entropy),
        })
    try:
        import jax
        import optax

        import crossent.jax as cj
    except ImportError:
        pass
    else:
        xj, yj = jax.numpy.asarray(x), jax.numpy.asarray(y)
        for name, fn in (("optax", optax.softmax_cross_entropy_with_integer_labels),
                         ("crossent.jax", cj.softmax_cross_entropy_with_integer_labels)):
            f = jax.jit(lambda a, b, fn=fn: fn(a, b).mean())
            vg = jax.jit(jax.value_and_grad(lambda a, b, fn=fn: fn(a, b).mean()))
            cases[f"jax jit forward: {name}"] = lambda f=f: f(xj, yj).block_until_ready()
            cases[f"jax jit value_and_grad: {name}"] = lambda vg=vg: jax.block_until_ready(vg(xj, yj))
    return cases


def measure(n=64, c=10, dtype=np.float32, rounds=15, calls=200):
    cases = _cases(n, c, dtype)
    for fn in cases.values():  # warm-up: compilation, caches
        for _ in range(20):
            fn()
    times = {k: [] for k in cases}
    for _ in range(rounds):
        for k, fn in cases.items():
            for _ in range(calls):  # settle: the previous library's threads go back to sleep
                fn()
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            times[k].append((time.perf_counter() - t0) / calls * 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def markdown(res):
    """The framework's loss next to the bridge, with the NumPy API call the bridge makes."""
    rows = [("PyTorch eager, forward", "torch forward: F.cross_entropy", "torch forward: crossent.torch.cross_entropy",
             "numpy: cross_entropy"),
            ("PyTorch eager, forward + backward", "torch forward+backward: F.cross_entropy",
             "torch forward+backward: crossent.torch.cross_entropy", "numpy: cross_entropy_value_and_grad"),
            ("JAX jit, forward", "jax jit forward: optax", "jax jit forward: crossent.jax", "numpy: cross_entropy"),
            ("JAX jit, value_and_grad", "jax jit value_and_grad: optax", "jax jit value_and_grad: crossent.jax",
             "numpy: cross_entropy_value_and_grad")]
    out = ["| 64 × 10 float32, µs per call | framework's loss | crossent bridge | crossent NumPy API |",
           "|---|---|---|---|"]
    for label, a, b, c in rows:
        if a in res and b in res:
            out.append(f"| {label} | {res[a]:.0f} | {res[b]:.0f} | {res[c]:.0f} |")
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description="Overhead per call of crossent.torch and crossent.jax")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--markdown", action="store_true", help="print the results as a Markdown table")
    args = p.parse_args(argv)
    res = measure(rounds=args.rounds, calls=args.calls)
    print("64 x 10 float32, median microseconds per call")
    for k, v in res.items():
        print(f"  {k:55s} {v:9.1f}")
    if args.markdown:
        print(markdown(res))
    if args.json:
        import os

        env = {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS") if k in os.environ}
        meta = {"shape": [64, 10], "dtype": "float32", "rounds": args.rounds, "calls": args.calls,
                "machine": platform.machine(), "python": platform.python_version(), "cpus": os.cpu_count(),
                "environment": env}
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "microseconds": res}, f, indent=1)


if __name__ == "__main__":
    main()
