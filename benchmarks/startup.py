"""Start-up cost of crossent: ``import crossent`` and the first call, in fresh processes.

Each measurement runs in a new interpreter with its own Numba cache directory:

- **cold**: an empty cache, so the first call compiles the kernels it needs;
- **warm**: the same directory again, so the first call loads machine code from the cache.

Usage::

    python benchmarks/startup.py [--repeats 3] [--json FILE]

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
x = np.random.default_rng(0).standard_normal((64, 100)).astype(np.{dtype})
y = np.arange(64) % 100
crossent.{call}
t3 = time.perf_counter()
print(json.dumps({{"import_numpy": t1 - t0, "import_crossent": t2 - t1, "first_call": t3 - t2}}))
"""

CALLS = {
    "cross_entropy": "cross_entropy(x, y)",
    "cross_entropy_value_and_grad": "cross_entropy_value_and_grad(x, y)",
    "softmax": "softmax(x)",
}


def run_once(cache_dir: str, call: str, dtype: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = _PROBE.format(dtype=dtype, call=CALLS[call])
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(call: str = "cross_entropy", dtype: str = "float32", repeats: int = 3) -> dict:
    cold, warm = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(run_once(d, call, dtype))
            warm.append(run_once(d, call, dtype))

    def med(rows, key):
        return statistics.median(r[key] for r in rows)

    return {
        "call": call,
        "dtype": dtype,
        "repeats": repeats,
        "cold": {k: med(cold, k) for k in cold[0]},
        "warm": {k: med(warm, k) for k in warm[0]},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    results = [measure(c, "float32", args.repeats) for c in CALLS]
    print(f"{'first call of':32s} {'cache':5s} {'import crossent':>16s} {'first call':>11s}")
    for r in results:
        for kind in ("cold", "warm"):
            m = r[kind]
            print(f"{r['call'] + ' (' + r['dtype'] + ')':32s} {kind:5s} "
                  f"{m['import_crossent']:15.3f}s {m['first_call']:10.3f}s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
