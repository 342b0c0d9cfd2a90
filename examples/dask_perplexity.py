"""Mean loss and perplexity of a data set of logits on disk, larger than the workers' memory.

The logits (float32, ``rows x classes``) and the labels are ``.npy`` files written with
``numpy.lib.format.open_memmap``; a ``dask.distributed.LocalCluster`` of two worker processes,
each with a memory limit below the size of the logits, reads them block by block (each task
maps the file and copies its rows) and ``crossent.dask.cross_entropy`` adds the blocks' exact
partial sums: the mean is the bits ``crossent.cross_entropy`` would give on the whole array in
memory, whatever the block size. The progress bar is ``distributed.progress``.

On a multi-machine cluster the code is the same with ``Client("tcp://scheduler:8786")`` (and
the files on storage every worker can read). See ``docs/scale.md``.

Run: ``python examples/dask_perplexity.py`` (writes 1.8 GiB of logits to a temporary
directory; ``--rows``, ``--classes``, ``--block-rows``, ``--memory-limit`` change the sizes).
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time

import dask
import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, progress

import crossent.dask as cd


def write_dataset(directory, rows, classes, seed=0, step=65536):
    """Write ``logits.npy`` (float32, rows x classes) and ``labels.npy`` (int64) by blocks of
    ``step`` rows (the whole array is never in memory); returns their paths."""
    rng = np.random.default_rng(seed)
    xp, yp = os.path.join(directory, "logits.npy"), os.path.join(directory, "labels.npy")
    x = np.lib.format.open_memmap(xp, mode="w+", dtype=np.float32, shape=(rows, classes))
    y = np.lib.format.open_memmap(yp, mode="w+", dtype=np.int64, shape=(rows,))
    for s in range(0, rows, step):
        e = min(rows, s + step)
        lab = rng.integers(0, classes, e - s)
        blk = rng.standard_normal((e - s, classes), dtype=np.float32) * 2
        blk[np.arange(e - s), lab] += 3  # a model that is right more often than not
        x[s:e], y[s:e] = blk, lab
    x.flush()
    y.flush()
    del x, y
    return xp, yp


def _rows(path, start, stop):
    """Rows ``start:stop`` of an ``.npy`` file, read through a memory map."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])


def on_disk(path, block_rows):
    """A dask array of the ``.npy`` file at ``path``, one task per ``block_rows`` rows."""
    a = np.load(path, mmap_mode="r")
    shape, dtype = a.shape, a.dtype
    del a
    load = dask.delayed(_rows, pure=True)
    blocks = [da.from_delayed(load(path, s, min(s + block_rows, shape[0])),
                              shape=(min(s + block_rows, shape[0]) - s,) + shape[1:], dtype=dtype)
              for s in range(0, shape[0], block_rows)]
    return da.concatenate(blocks)


def evaluate(client, logits_path, labels_path, block_rows, show_progress=True):
    """The mean loss (a NumPy float32 scalar) and the perplexity ``exp(mean)``."""
    x, y = on_disk(logits_path, block_rows), on_disk(labels_path, block_rows)
    fut = client.compute(cd.cross_entropy(x, y))
    if show_progress:
        progress(fut)
    mean = fut.result()[()]
    return mean, math.exp(float(mean))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=480_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--block-rows", type=int, default=8192)
    ap.add_argument("--memory-limit", default="768MiB", help="per worker (2 workers)")
    ap.add_argument("--dir", default=None, help="where to write the data set (default: a temporary one)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        xp, yp = write_dataset(d, args.rows, args.classes)
        size = os.path.getsize(xp)
        print(f"logits: {args.rows} x {args.classes} float32 = {size / 2**20:.0f} MiB on disk; "
              f"workers: 2 x {args.memory_limit}")
        with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=args.memory_limit,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            t = time.perf_counter()
            mean, ppl = evaluate(client, xp, yp, args.block_rows)
            print(f"\nmean loss {float(mean):.8g} nats (float32), perplexity {ppl:.6g} "
                  f"({time.perf_counter() - t:.1f} s)")


if __name__ == "__main__":
    main()
