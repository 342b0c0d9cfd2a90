"""``crossent compile``: fill Numba's on-disk cache ahead of time, for containers and CI.

crossent's kernels are compiled by Numba on their first call, once per input type, and the
machine code is cached on disk (in ``__pycache__`` next to the kernels, or in
``NUMBA_CACHE_DIR``). A fresh container or CI job pays that compilation on its first call of
each function (seconds per function); ``crossent compile`` pays it once, when the image is
built::

    NUMBA_CACHE_DIR=/opt/numba-cache crossent compile --dtypes float32
    # and in the image's environment: NUMBA_CACHE_DIR=/opt/numba-cache

It calls each named function on small inputs of each named dtype, on every path an ordinary
call can take: short rows (the short-row kernels) and long rows (the wide kernels), a tiny
batch (one thread) and a larger one (the thread pool). The cache is valid for the same
crossent, Numba and CPU; a mismatch only means that the first calls compile again.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["FUNCTIONS", "compile_functions", "add_arguments", "main_from_args"]

FUNCTIONS = ("cross_entropy", "cross_entropy_value_and_grad", "logsumexp", "log_softmax",
             "softmax", "entropy", "cross_entropy_pmf", "kl_divergence")
DTYPES = ("float32", "float64")
# (rows, classes): short rows and long rows, each as a tiny batch (one thread) and a larger one
_SHAPES = ((8, 10), (4096, 10), (8, 200), (256, 200))


def _calls(name, x, y):
    import crossent

    if name == "cross_entropy":
        return [lambda: crossent.cross_entropy(x, y), lambda: crossent.cross_entropy(x, y, reduction="none")]
    if name == "cross_entropy_value_and_grad":
        return [lambda: crossent.cross_entropy_value_and_grad(x, y)]
    if name in ("logsumexp", "log_softmax", "softmax"):
        f = getattr(crossent, name)
        return [lambda: f(x)]
    p = crossent.softmax(x)
    if name == "entropy":
        return [lambda: crossent.entropy(p)]
    return [lambda: getattr(crossent, name)(p, p)]


def compile_functions(functions=FUNCTIONS, dtypes=DTYPES, progress=None) -> dict:
    """Call each function on each dtype and shape of ``_SHAPES``; returns ``{function: seconds}``."""
    for f in functions:
        if f not in FUNCTIONS:
            raise ValueError(f"functions: {f!r} is not one of {', '.join(FUNCTIONS)}")
    for d in dtypes:
        if d not in DTYPES:
            raise ValueError(f"dtypes: {d!r} is not one of {', '.join(DTYPES)}")
    rng = np.random.default_rng(0)
    times = {}
    for name in functions:
        t0 = time.perf_counter()
        for d in dtypes:
            for n, c in _SHAPES:
                x = rng.standard_normal((n, c)).astype(d)
                y = rng.integers(0, c, n)
                for call in _calls(name, x, y):
                    call()
        times[name] = time.perf_counter() - t0
        if progress:
            progress(f"{name}: {times[name]:.1f} s")
    return times


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help=f"comma-separated, among {','.join(DTYPES)} (default both)")
    parser.add_argument("--functions", default=",".join(FUNCTIONS),
                        help="comma-separated public functions (default all: "
                             f"{','.join(FUNCTIONS)})")


def main_from_args(args) -> int:
    functions = [f.strip() for f in args.functions.split(",") if f.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    import numba

    print(f"compiling into {numba.config.CACHE_DIR or 'the package __pycache__'}", file=sys.stderr)
    times = compile_functions(functions, dtypes, progress=print)
    print(f"done in {sum(times.values()):.1f} s")
    return 0
