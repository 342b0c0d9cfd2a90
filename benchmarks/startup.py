"""Start-up cost of crossent: ``import crossent`` and the first call, in fresh processes.

Each measurement runs in a new interpreter with its own Numba cache directory:

- **cold**: an empty cache, so the first call compiles the kernels it needs;
- **warm**: the same directory again, so the first call loads machine code from the cache.

Usage::

    python benchmarks/startup.py [--repeats 3] [--calls cross_entropy,...] [--dtypes float32]
                                 [--shapes 64x100,64x10] [--json FILE]

``crossent compile`` fills the cache ahead of time (the "warm" column is then the first call).

Times are medians over ``--repeats`` fresh processes (absolute times on a shared machine are
noisy; the cold/warm contrast is the point).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

_PROBE = r"""
import time, json
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import crossent
t2 = time.perf_counter()
x = np.random.default_rng(0).standard_normal(({rows}, {cols})).astype(np.{dtype})
y = np.arange({rows}) % {cols}
p = crossent.softmax(x) if "(p" in "{call}" else None  # the PMF functions' input
t2b = time.perf_counter()
crossent.{call}
t3 = time.perf_counter()
print(json.dumps({{"import_numpy": t1 - t0, "import_crossent": t2 - t1, "first_call": t3 - t2b}}))
"""

CALLS = {
    "cross_entropy": "cross_entropy(x, y)",
    "cross_entropy_value_and_grad": "cross_entropy_value_and_grad(x, y)",
    "logsumexp": "logsumexp(x)",
    "log_softmax": "log_softmax(x)",
    "softmax": "softmax(x)",
    "entropy": "entropy(p)",
    "cross_entropy_pmf": "cross_entropy_pmf(p, p)",
    "kl_divergence": "kl_divergence(p, p)",
}


def run_once(cache_dir: str, call: str, dtype: str, shape=(64, 100)) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = _PROBE.format(dtype=dtype, call=CALLS[call], rows=shape[0], cols=shape[1])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(call: str = "cross_entropy", dtype: str = "float32", repeats: int = 3,
            shape=(64, 100)) -> dict:
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(run_once(d, call, dtype, shape))
            warm.append(run_once(d, call, dtype, shape))

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    return {
        "call": call,
        "dtype": dtype,
        "shape": list(shape),
        "repeats": repeats,
        "cold": {k: med(cold, k) for k in cold[0]},
        "warm": {k: med(warm, k) for k in warm[0]},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--calls", default=",".join(CALLS), help="comma-separated public functions")
    ap.add_argument("--dtypes", default="float32", help="comma-separated (default float32)")
    ap.add_argument("--shapes", default="64x100,64x10",
                    help="comma-separated ROWSxCLASSES (default 64x100 and 64x10: long and short "
                         "rows take different kernels)")
    args = ap.parse_args(argv)
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    results = [measure(c, d, args.repeats, sh) for c in args.calls.split(",")
               for d in args.dtypes.split(",") for sh in shapes]
    print(f"{'first call of':44s} {'cache':5s} {'import crossent':>16s} {'first call':>11s}")
    for r in results:
        for kind in ("cold", "warm"):
            m = r[kind]
            what = f"{r['call']} ({r['dtype']}, {r['shape'][0]}x{r['shape'][1]})"
            print(f"{what:44s} {kind:5s} {m['import_crossent']:15.3f}s {m['first_call']:10.3f}s",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
