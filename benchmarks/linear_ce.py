"""crossent.linear_cross_entropy_value_and_grad next to PyTorch eager (F.linear + F.cross_entropy,
forward and backward): peak extra memory and time.

    python benchmarks/linear_ce.py                      # (4096, 256, 32000) and (8192, 512, 32000)
    python benchmarks/linear_ce.py --shapes 4096x256x32000 --dtypes float32 --repeats 3
    python benchmarks/linear_ce.py --chunks 16,64,256   # the block size's effect on crossent

Memory: each measurement runs in a fresh subprocess. Extra memory = the high-water mark of the
resident set (``VmHWM`` in ``/proc/self/status``, Linux) during the call minus the resident set
just before it (inputs built, code compiled by a warm-up call on a tiny problem), for both
libraries alike; crossent's NumPy allocations are also traced (``tracemalloc``). Both include
the returned gradients. The budget printed is the size of the gradients plus a quarter of the
logits' (N x V in the input dtype).

Time: both libraries in one process, interleaved repetitions, the median of each, and their
ratio (PyTorch time / crossent time: above 1 means crossent is faster). On a shared machine
read the ratio, not the absolute times.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

_CHILD = r"""
import json, resource, sys, tracemalloc
import numpy as np
lib, N, H, V, dt, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
chunk = None if chunk == "auto" else int(chunk)
rng = np.random.default_rng(0)
h = (rng.standard_normal((N, H)) / np.sqrt(H)).astype(dt)
W = rng.standard_normal((V, H)).astype(dt)
y = rng.integers(0, V, N)
def rss():  # current resident set, bytes
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
if lib == "crossent":
    import crossent
    crossent.linear_cross_entropy_value_and_grad(h[:16], W[:64], y[:16] % 64)  # compile/warm
    base = rss()
    tracemalloc.start()
    out = crossent.linear_cross_entropy_value_and_grad(h, W, y, chunk_size=chunk)
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
else:
    import torch
    torch.set_num_threads(2)
    F = torch.nn.functional
    ht, Wt, yt = torch.from_numpy(h), torch.from_numpy(W), torch.from_numpy(y)
    a, b = ht[:16].clone().requires_grad_(), Wt[:64].clone().requires_grad_()
    F.cross_entropy(F.linear(a, b), yt[:16] % 64).backward()  # warm
    ht.requires_grad_(); Wt.requires_grad_()
    base = rss()
    loss = F.cross_entropy(F.linear(ht, Wt), yt)
    loss.backward()
    traced = None
# the high-water mark of this process's resident set: VmHWM (not getrusage's ru_maxrss, which
# Linux carries over from the parent process across fork and exec: after a timing run in the
# parent, the child reported the parent's peak)
with open("/proc/self/status") as f:
    peak = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(json.dumps({"extra": peak - base, "traced": traced}))
"""


def measure_memory(lib, N, H, V, dtype, chunk="auto"):
    r = subprocess.run([sys.executable, "-c", _CHILD, lib, str(N), str(H), str(V), dtype, str(chunk)],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def measure_time(N, H, V, dtype, repeats, chunk=None):
    import torch

    import crossent

    torch.set_num_threads(2)
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    h = (rng.standard_normal((N, H)) / np.sqrt(H)).astype(dtype)
    W = rng.standard_normal((V, H)).astype(dtype)
    y = rng.integers(0, V, N)
    ht = torch.from_numpy(h).requires_grad_()
    Wt = torch.from_numpy(W).requires_grad_()
    yt = torch.from_numpy(y)

    def run_torch():
        ht.grad = Wt.grad = None
        F.cross_entropy(F.linear(ht, Wt), yt).backward()

    def run_crossent():
        crossent.linear_cross_entropy_value_and_grad(h, W, y, chunk_size=chunk)

    # warm up (compile, first-touch) on a tiny problem: a full-size warm-up would double the run
    a, b = torch.zeros(16, H, requires_grad=True, dtype=ht.dtype), torch.zeros(64, H, requires_grad=True, dtype=ht.dtype)
    F.cross_entropy(F.linear(a, b), yt[:16] % 64).backward()
    crossent.linear_cross_entropy_value_and_grad(h[:16], W[:64], y[:16] % 64)
    tt, tc = [], []
    for _ in range(repeats):
        for f, acc in ((run_torch, tt), (run_crossent, tc)):
            t0 = time.perf_counter()
            f()
            acc.append(time.perf_counter() - t0)
    return float(np.median(tt)), float(np.median(tc))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="4096x256x32000,8192x512x32000", help="NxHxV,...")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--chunks", default="auto", help="crossent chunk_size values (rows), or auto")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--no-time", action="store_true")
    args = ap.parse_args(argv)
    MB = 1e6
    print("| shape (N, H, V) | dtype | chunk | budget MB | crossent extra MB (traced) | "
          "PyTorch extra MB | PyTorch s | crossent s | speed ratio (torch/crossent) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for shape in args.shapes.split(","):
        N, H, V = (int(v) for v in shape.split("x"))
        for dt in args.dtypes.split(","):
            size = np.dtype(dt).itemsize
            budget = (N * H + V * H) * size + N * V * size / 4
            tmem = None
            for chunk in args.chunks.split(","):
                cm = tm = "-"
                if not args.no_memory:
                    c = measure_memory("crossent", N, H, V, dt, chunk)
                    cm = f"{c['extra'] / MB:.0f} ({c['traced'] / MB:.0f})"
                    if tmem is None:
                        tmem = measure_memory("torch", N, H, V, dt)["extra"] / MB
                    tm = f"{tmem:.0f}"
                ts = cs = ratio = "-"
                if not args.no_time:
                    t, c2 = measure_time(N, H, V, dt, args.repeats, None if chunk == "auto" else int(chunk))
                    ts, cs, ratio = f"{t:.2f}", f"{c2:.2f}", f"{t / c2:.2f}"
                print(f"| ({N}, {H}, {V}) | {dt} | {chunk} | {budget / MB:.0f} | {cm} | {tm} | {ts} | {cs} | {ratio} |",
                      flush=True)


if __name__ == "__main__":
    main()
