"""Micro-benchmark of the vectorizable exp against math.exp and np.exp (not a test).

One process, 1e6 negative float64 values, each variant timed as a plain ``for i in range(n)``
loop (NumPy's ``np.exp(x, out=out)`` for NumPy), medians of repeated runs, printed as ns per
element and as ratios to ``exp_f64``. Absolute times on a shared machine are noise: read the
ratios.

The last two variants are the exponentials of the softmax kernels' terms: ``exp_parts_f64``
(the default float64 mode, relative ``0.75u``) and ``exp_parts_dd`` (the correctly rounded
mode, ``2**-83.5``); their ratio is what the correct mode pays per element before any sum,
logarithm or rounding test (docs/accuracy.md, "Correct rounding").

Run: ``python benchmarks/exp_micro.py [--n 1000000] [--repeats 21]``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numba
import numpy as np

try:
    from crossent.kernels.exp import exp_f64, exp_f64_short, exp_parts_dd, exp_parts_f64
except ImportError:  # a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from crossent.kernels.exp import exp_f64, exp_f64_short, exp_parts_dd, exp_parts_f64


@numba.njit(cache=True)
def loop_math_exp(x, out):
    for i in range(x.size):
        out[i] = math.exp(x[i])


@numba.njit(cache=True)
def loop_exp_f64(x, out):
    for i in range(x.size):
        out[i] = exp_f64(x[i])


@numba.njit(cache=True)
def loop_exp_f64_short(x, out):
    for i in range(x.size):
        out[i] = exp_f64_short(x[i])


@numba.njit(cache=True)
def loop_parts_f64(x, out):
    # the default float64 kernels' terms: (1 + t) s, 2^600-scaled
    for i in range(x.size):
        t, sc = exp_parts_f64(x[i])
        out[i] = (1.0 + t) * sc


@numba.njit(cache=True)
def loop_parts_dd(x, out):
    # the correctly rounded mode's terms: (h + l) s to 2^-83.5 (both parts used, so none of
    # the double-double arithmetic is dead code)
    for i in range(x.size):
        h, lo, sc = exp_parts_dd(x[i])
        out[i] = (h + lo) * sc


def numpy_exp(x, out):
    np.exp(x, out=out)


VARIANTS = {
    "math.exp (numba loop)": loop_math_exp,
    "np.exp": numpy_exp,
    "exp_f64 (numba loop)": loop_exp_f64,
    "exp_f64_short (numba loop)": loop_exp_f64_short,
    "exp_parts_f64 (default terms)": loop_parts_f64,
    "exp_parts_dd (correct mode)": loop_parts_dd,
}


def measure(n=1_000_000, repeats=21, seed=0):
    """Median ns/element of each variant (interleaved repeats, so drift hits all alike)."""
    x = -np.random.default_rng(seed).uniform(0.0, 50.0, n)
    out = np.empty_like(x)
    times = {name: [] for name in VARIANTS}
    for f in VARIANTS.values():  # compile and warm up
        f(x, out)
    for _ in range(repeats):
        for name, f in VARIANTS.items():
            t0 = time.perf_counter_ns()
            f(x, out)
            times[name].append((time.perf_counter_ns() - t0) / n)
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=21)
    args = ap.parse_args(argv)
    res = measure(args.n, args.repeats)
    ref = res["exp_f64 (numba loop)"]
    print(f"n = {args.n}, median of {args.repeats} runs; ratio = time / time(exp_f64)")
    print(f"{'variant':30s} {'ns/elem':>9s} {'ratio':>7s}")
    for name, t in res.items():
        print(f"{name:30s} {t:9.3f} {t / ref:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
