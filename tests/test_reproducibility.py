"""Results are bitwise identical whatever the thread count, however the batch is split, and
when several Python threads call crossent at once (docs/design.md#reproducibility).

The thread-count test runs the same seeded workload in two subprocesses, one with
``NUMBA_NUM_THREADS=1`` and one with ``NUMBA_NUM_THREADS=2``, and compares SHA-256 digests of
the raw bytes of every output. (Numba reads ``NUMBA_NUM_THREADS`` once, at import, so it
must be set in a fresh process.) Both share the normal Numba cache: the thread count does not
change the compiled code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import crossent

SRC = str(Path(crossent.__file__).resolve().parents[1])

WORKLOAD = r'''
import hashlib, json, sys
import numpy as np
import numba
import crossent

def digest(a):
    a = np.ascontiguousarray(np.asarray(a))
    return a.dtype.str + str(a.shape) + hashlib.sha256(a.tobytes()).hexdigest()

def workload():
    rng = np.random.default_rng(12345)
    out = {}
    for dt in (np.float64, np.float32, np.float16):
        name = np.dtype(dt).name
        x = (rng.standard_normal((3001, 129)) * 8).astype(dt)
        x[::97, 3] = -np.inf
        y = rng.integers(0, 129, 3001)
        y[::13] = -100
        p = rng.dirichlet(np.ones(129), 3001).astype(dt)
        w = rng.uniform(0.5, 2.0, 129).astype(dt)
        out[name + "/logsumexp"] = digest(crossent.logsumexp(x))
        out[name + "/log_softmax"] = digest(crossent.log_softmax(x))
        out[name + "/softmax"] = digest(crossent.softmax(x))
        out[name + "/softmax-axis0"] = digest(crossent.softmax(x[:200], axis=0))
        for red in ("none", "mean", "sum"):
            out[name + "/ce-labels-" + red] = digest(crossent.cross_entropy(x, y, weight=w, reduction=red,
                                                                          label_smoothing=0.05))
            out[name + "/ce-probs-" + red] = digest(crossent.cross_entropy(x, p, reduction=red))
        loss, g = crossent.cross_entropy_value_and_grad(x, y, weight=w)
        out[name + "/vg-labels"] = digest(loss) + digest(g)
        loss, g = crossent.cross_entropy_value_and_grad(x, p, reduction="sum", label_smoothing=0.1)
        out[name + "/vg-probs"] = digest(loss) + digest(g)
        if dt != np.float16:
            q = crossent.softmax(x)
            out[name + "/entropy"] = digest(crossent.entropy(p, base=2))
            out[name + "/cross_entropy_pmf"] = digest(crossent.cross_entropy_pmf(p, q))
            out[name + "/kl_divergence"] = digest(crossent.kl_divergence(p, q))
        tb = rng.uniform(size=x.shape).astype(dt)
        for red in ("none", "mean", "sum"):
            out[name + "/bce-" + red] = digest(crossent.binary_cross_entropy_with_logits(
                np.where(np.isinf(x), 50, x), tb, pos_weight=w, reduction=red))
        loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(x, tb, weight=w)
        out[name + "/bce-vg"] = digest(loss) + digest(g)
        out[name + "/softplus"] = digest(crossent.softplus(x)) + digest(crossent.log_sigmoid(x))
    s = rng.integers(0, 7, 100000)
    out["empirical_pmf"] = digest(crossent.empirical_pmf(s, 7))
    out["categorical_log_likelihood"] = digest(crossent.categorical_log_likelihood(
        rng.dirichlet(np.ones(7), 50), s))
    return out

if __name__ == "__main__":
    res = workload()
    res["_threads"] = numba.config.NUMBA_NUM_THREADS
    json.dump(res, sys.stdout)
'''


def _run(threads: int, tmp_path) -> dict:
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    env = dict(os.environ)
    env["NUMBA_NUM_THREADS"] = str(threads)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def test_bitwise_identical_with_1_and_2_threads(tmp_path):
    one = _run(1, tmp_path)
    two = _run(2, tmp_path)
    assert one.pop("_threads") == 1 and two.pop("_threads") == 2  # the setting took effect
    assert one.keys() == two.keys()
    differ = sorted(k for k in one if one[k] != two[k])
    assert not differ, f"outputs that depend on the thread count: {differ}"
    # and the in-process run (the default thread count) agrees with both
    ns: dict = {}
    exec(compile(WORKLOAD, "workload", "exec"), ns)
    here = ns["workload"]()
    differ = sorted(k for k in one if one[k] != here[k])
    assert not differ, f"outputs that differ from the in-process run: {differ}"


# --- whole batch or in pieces ----------------------------------------------------------------

RNG = np.random.default_rng(777)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=lambda d: np.dtype(d).name)
def test_pieces_equal_whole(dtype):
    """Row results do not depend on which other rows share the call (or its thread chunk)."""
    n, c = 2003, 67
    x = (RNG.standard_normal((n, c)) * 10).astype(dtype)
    x[::31, 5] = -np.inf
    y = RNG.integers(0, c, n)
    y[::11] = -100
    p = RNG.dirichlet(np.ones(c), n).astype(dtype)
    w = RNG.uniform(0.5, 2, c)
    cuts = [0, 1, 2, 500, 501, 1333, n]
    pieces = [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]

    def whole_and_pieces(f):
        whole = f(slice(None))
        parts = np.concatenate([f(s) for s in pieces])
        assert whole.tobytes() == parts.tobytes(), f

    whole_and_pieces(lambda s: crossent.logsumexp(x[s]))
    whole_and_pieces(lambda s: crossent.softmax(x[s]))
    whole_and_pieces(lambda s: crossent.log_softmax(x[s]))
    whole_and_pieces(lambda s: crossent.binary_cross_entropy_with_logits(x[s], p[s], reduction="none"))
    whole_and_pieces(lambda s: crossent.binary_cross_entropy_with_logits_value_and_grad(
        x[s], p[s], pos_weight=w, reduction="sum")[1])
    whole_and_pieces(lambda s: crossent.softplus(x[s]))
    whole_and_pieces(lambda s: crossent.cross_entropy(x[s], y[s], weight=w, reduction="none", label_smoothing=0.1))
    whole_and_pieces(lambda s: crossent.cross_entropy(x[s], p[s], reduction="none"))
    # the gradient of the sum: each row's gradient is its own
    whole_and_pieces(lambda s: crossent.cross_entropy_value_and_grad(x[s], y[s], weight=w, reduction="sum")[1])
    whole_and_pieces(lambda s: crossent.cross_entropy_value_and_grad(x[s], p[s], reduction="sum")[1])
    # the gradient of the mean: pieces scaled by the whole batch's denominator would need the
    # denominator; instead, 'none' gives the per-item gradient, which must match too
    whole_and_pieces(lambda s: crossent.cross_entropy_value_and_grad(x[s], y[s], reduction="none")[1])
    if dtype != np.float16:
        q = crossent.softmax(x)
        whole_and_pieces(lambda s: crossent.kl_divergence(p[s], q[s]))
        whole_and_pieces(lambda s: crossent.entropy(p[s]))


# --- concurrent calls from Python threads ----------------------------------------------------


def test_concurrent_calls_match_serial():
    """Eight Python threads calling the parallel kernels at once get the serial results.

    (Numba's "workqueue" threading layer is not thread-safe and aborts the process on
    concurrent launches; there the calls are serialized by ``_validate.parallel_guard``, see
    docs/design.md#reproducibility. This machine uses the OpenMP layer.)
    """
    jobs = []
    for i in range(16):
        dt = (np.float64, np.float32, np.float16)[i % 3]
        x = (RNG.standard_normal((1500, 97)) * 5).astype(dt)
        y = RNG.integers(0, 97, 1500)
        p = RNG.dirichlet(np.ones(97), 1500).astype(dt)
        jobs.append((x, y, p))

    def work(job):
        x, y, p = job
        loss, g = crossent.cross_entropy_value_and_grad(x, y, label_smoothing=0.1)
        res = [crossent.softmax(x), crossent.logsumexp(x), np.asarray(loss), g,
               np.asarray(crossent.cross_entropy(x, p, reduction="sum"))]
        if x.dtype != np.float16:
            res.append(crossent.kl_divergence(p, crossent.softmax(x)))
        return [r.tobytes() for r in res]

    serial = [work(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=8) as ex:
        for _ in range(3):
            assert list(ex.map(work, jobs)) == serial


_WORKQUEUE_PROBE = r"""
import numpy as np, crossent, numba
from concurrent.futures import ThreadPoolExecutor
rng = np.random.default_rng(0)
jobs = [(rng.standard_normal((800, 97)), rng.integers(0, 97, 800)) for _ in range(8)]
def work(job):
    x, y = job
    loss, g = crossent.cross_entropy_value_and_grad(x, y)
    return (np.asarray(loss).tobytes(), g.tobytes(), crossent.softmax(x).tobytes(),
            np.asarray(crossent.entropy(crossent.softmax(x))).tobytes())
serial = [work(j) for j in jobs]
with ThreadPoolExecutor(max_workers=8) as ex:
    for _ in range(3):
        assert list(ex.map(work, jobs)) == serial
print(numba.threading_layer())
"""


def test_concurrent_calls_under_the_workqueue_layer_do_not_abort():
    """Numba's workqueue layer aborts the process on concurrent parallel launches; crossent
    serializes its kernel calls under that layer (``_validate.parallel_guard``)."""
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run([sys.executable, "-c", _WORKQUEUE_PROBE], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "workqueue"
