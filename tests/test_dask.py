"""``crossent.dask`` on a real cluster: bitwise the NumPy call on the whole array, for any
chunking, also after a worker process is killed mid-computation.

A ``dask.distributed.LocalCluster`` with two worker processes (one thread each) is started once
for the module and closed at the end; every computation goes through its ``Client``. The
expected values are the NumPy API's results on the whole array (the bitwise contract: the NumPy
functions are themselves validated against the oracle elsewhere). Skipped, with the reason, when
dask[distributed] is missing (the optional ``dask`` extra; CI installs it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("dask.array", reason="dask is not installed (the optional 'dask' extra)")
distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (the 'dask' extra)")

import dask  # noqa: E402
import dask.array as da  # noqa: E402

import crossent  # noqa: E402
import crossent.dask as cd  # noqa: E402

N, C = 13, 11
#: (row chunks, class chunks): one block; irregular rows; one row per block; rows and classes
#: both split; one class per chunk
CHUNKINGS = [((N,), (C,)), ((5, 7, 1), (C,)), ((1,) * N, (C,)), ((6, 7), (3, 3, 5)),
             ((4, 4, 5), (1,) * C)]
CIDS = ["whole", "irregular-rows", "one-row", "rows+classes", "rows+single-classes"]
DTYPES = [np.float64, np.float32]


@pytest.fixture(scope="module")
def client():
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import tests/
    env = {k: os.environ[k] for k in ("NUMBA_CACHE_DIR", "PYTHONPATH") if k in os.environ}
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, env=env)
    cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        cl.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def _compute(todo):
    """The whole chunking matrix runs on the synchronous scheduler (the bits cannot depend on
    the scheduler: every block is the same NumPy call); ``test_on_the_cluster`` runs a
    selection on the LocalCluster."""
    return dask.compute(*todo, scheduler="sync")


def _same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes(), (got, want)


def _data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((N, C)) * 4).astype(dtype)
    x[3, 2] = -np.inf  # a masked class
    x[5, :] = x[5, 0]  # a row of ties
    y = rng.integers(0, C, N)
    y[7] = -100  # ignored
    p = crossent.softmax(rng.standard_normal((N, C))).astype(dtype)
    q = crossent.softmax(rng.standard_normal((N, C))).astype(dtype)
    return x, y, p, q


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("chunks", CHUNKINGS, ids=CIDS)
def test_softmax_family_bitwise(chunks, dtype):
    x, *_ = _data(dtype)
    x[9, 4] = np.nan  # a nan row
    x[10, 1] = np.inf  # a +inf row (SciPy's rule: logsumexp +inf, log_softmax nan and -inf)
    x[11, :] = -np.inf  # a masked row
    dx = da.from_array(x, chunks=chunks)
    got = _compute([cd.logsumexp(dx), cd.logsumexp(dx, axis=0, keepdims=True),
                          cd.logsumexp(dx, axis=None), cd.log_softmax(dx), cd.softmax(dx),
                          cd.softmax(dx, axis=0), *cd.logsumexp(dx, b=np.arange(C) - 3.0,
                                                                return_sign=True)])
    want = [crossent.logsumexp(x), crossent.logsumexp(x, axis=0, keepdims=True),
            crossent.logsumexp(x, axis=None), crossent.log_softmax(x), crossent.softmax(x),
            crossent.softmax(x, axis=0), *crossent.logsumexp(x, b=np.arange(C) - 3.0,
                                                             return_sign=True)]
    for g, w in zip(got, want):
        _same(g, w)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("chunks", CHUNKINGS, ids=CIDS)
def test_pmf_functions_bitwise(chunks, dtype):
    _, _, p, q = _data(dtype)
    dp = da.from_array(p, chunks=chunks)
    dq = da.from_array(q, chunks=(chunks[0][::-1], chunks[1][::-1]))  # other chunks than p's
    got = _compute([cd.entropy(dp), cd.entropy(dp, base=2), cd.kl_divergence(dp, dq),
                    cd.cross_entropy_pmf(dp, dq, base=10), cd.kl_divergence(dp, q[0])])
    want = [crossent.entropy(p), crossent.entropy(p, base=2), crossent.kl_divergence(p, q),
            crossent.cross_entropy_pmf(p, q, base=10), crossent.kl_divergence(p, q[0])]
    for g, w in zip(got, want):
        _same(g, w)


LOSS_OPTIONS = [dict(), dict(weight=np.linspace(0.5, 3.0, C), label_smoothing=0.1),
                dict(weight=np.full(C, 2.0**80)),  # weights scaled by a power of two inside
                dict(z_loss=1e-3, logit_softcap=4.0)]  # the options' own kernels


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("chunks", CHUNKINGS[:2] + CHUNKINGS[3:], ids=CIDS[:2] + CIDS[3:])
def test_loss_and_gradient_bitwise(chunks, dtype):
    """Every reduction, with and without the gradient, class indices and probabilities, the
    options of LOSS_OPTIONS (one row per block: in the irregular chunking, kept short here)."""
    x, y, p, _ = _data(dtype)
    dx = da.from_array(x, chunks=chunks)
    dy, dp = da.from_array(y, chunks=chunks[0][::-1]), da.from_array(p, chunks=chunks)
    todo, want = [], []
    for opts in LOSS_OPTIONS:
        for target, dtarget in ((y, dy), (p, dp)):
            for red in ("none", "sum", "mean"):
                todo += [cd.cross_entropy(dx, dtarget, reduction=red, **opts),
                         *cd.cross_entropy_value_and_grad(dx, dtarget, reduction=red, **opts)]
                want += [crossent.cross_entropy(x, target, reduction=red, **opts),
                         *crossent.cross_entropy_value_and_grad(x, target, reduction=red, **opts)]
    got = _compute(todo)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        _same(g, w)


@pytest.mark.parametrize("chunks", [CHUNKINGS[1], CHUNKINGS[3]], ids=[CIDS[1], CIDS[3]])
def test_on_the_cluster(client, chunks):
    """Every function through the two-process cluster's Client: the NumPy call's bits."""
    x, y, p, q = _data(np.float64)
    w = np.linspace(0.5, 3.0, C)
    dx, dp, dq = (da.from_array(a, chunks=chunks) for a in (x, p, q))
    dy = da.from_array(y, chunks=chunks[0][::-1])
    todo = [cd.logsumexp(dx), cd.log_softmax(dx), cd.softmax(dx), cd.entropy(dp),
            cd.kl_divergence(dp, dq), cd.cross_entropy_pmf(dp, dq),
            cd.cross_entropy(dx, dy, weight=w), cd.cross_entropy(dx, dp, reduction="sum"),
            cd.cross_entropy(dx, dy, reduction="none"),
            *cd.cross_entropy_value_and_grad(dx, dy, weight=w),
            *cd.cross_entropy_value_and_grad(dx, dp, reduction="none")]
    want = [crossent.logsumexp(x), crossent.log_softmax(x), crossent.softmax(x),
            crossent.entropy(p), crossent.kl_divergence(p, q), crossent.cross_entropy_pmf(p, q),
            crossent.cross_entropy(x, y, weight=w), crossent.cross_entropy(x, p, reduction="sum"),
            crossent.cross_entropy(x, y, reduction="none"),
            *crossent.cross_entropy_value_and_grad(x, y, weight=w),
            *crossent.cross_entropy_value_and_grad(x, p, reduction="none")]
    got = client.compute(todo, sync=True)
    for g, wnt in zip(got, want):
        _same(g, wnt)


def test_partial_and_other_axes(client):
    """``reduction="partial"`` gives the whole batch's Partial (a delayed one); a class axis
    that is not the last and a 3-d batch chunked along both batch axes."""
    x, y, *_ = _data(np.float64)
    part = cd.cross_entropy(da.from_array(x, chunks=(6, 4)), y, reduction="partial")
    assert client.compute(part, sync=True) == crossent.cross_entropy(x, y, reduction="partial")
    rng = np.random.default_rng(1)
    x3 = rng.standard_normal((6, C, 5))
    y3 = rng.integers(0, C, (6, 5))
    dx3 = da.from_array(x3, chunks=(4, 3, 2))
    dy3 = da.from_array(y3, chunks=(1, 5))
    got = client.compute([cd.cross_entropy(dx3, dy3, axis=1),
                          *cd.cross_entropy_value_and_grad(dx3, dy3, axis=1),
                          cd.cross_entropy(dx3, dy3, axis=1, reduction="none"),
                          cd.log_softmax(dx3, axis=1), cd.logsumexp(dx3, axis=(0, 2))],
                         sync=True)
    want = [crossent.cross_entropy(x3, y3, axis=1),
            *crossent.cross_entropy_value_and_grad(x3, y3, axis=1),
            crossent.cross_entropy(x3, y3, axis=1, reduction="none"),
            crossent.log_softmax(x3, axis=1), crossent.logsumexp(x3, axis=(0, 2))]
    for g, w in zip(got, want):
        _same(g, w)


def test_zero_denominator_mean():
    """Every item ignored: a nan mean and nan gradient rows nowhere (all ignored), as NumPy;
    zero weights on the targets' classes: nan rows for the items not ignored."""
    x, y, *_ = _data(np.float64)
    w = np.ones(C)
    w[y[y >= 0]] = 0.0
    dx = da.from_array(x, chunks=(5, C))
    for kw in (dict(ignore_index=-100, weight=w), dict(ignore_index=-100)):
        tgt = y if "weight" in kw else np.full(N, -100)
        got = _compute(list(cd.cross_entropy_value_and_grad(dx, tgt, **kw)))
        for g, wnt in zip(got, crossent.cross_entropy_value_and_grad(x, tgt, **kw)):
            _same(g, wnt)


def test_bad_arguments_raise_at_call():
    x, y, *_ = _data(np.float64)
    dx = da.from_array(x, chunks=5)
    with pytest.raises(ValueError, match="target"):
        cd.cross_entropy(dx, y[:-1])
    with pytest.raises(ValueError, match="reduction"):
        cd.cross_entropy(dx, y, reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        cd.cross_entropy(dx, y, weight=np.ones(C + 1))
    with pytest.raises(ValueError, match="axis"):
        cd.log_softmax(dx, axis=2)
    with pytest.raises(TypeError, match="out"):
        cd.cross_entropy_value_and_grad(dx, y, out=np.empty_like(x))
    with pytest.raises(TypeError, match="kl_divergence"):
        cd.entropy(dx, dx)


def test_a_bad_label_raises_when_computed():
    x, y, *_ = _data(np.float64)
    y = y.copy()
    y[11] = C
    loss = cd.cross_entropy(da.from_array(x, chunks=5), y)  # values are checked per block
    with pytest.raises(ValueError, match="class index"):
        loss.compute(scheduler="sync")


def _slow_on_first_block(block, flag_dir, block_info=None):
    """Identity; the first block's task records its worker's pid and sleeps, once."""
    if block_info and block_info[0]["chunk-location"][0] == 0:
        # Dask may run this block in more than one fused task at once, on both workers: the
        # hard link claims the mark atomically, so exactly one task records its pid and sleeps.
        mark = os.path.join(flag_dir, "pid")
        tmp = f"{mark}.{os.getpid()}.{threading.get_ident()}"
        with open(tmp, "w") as f:
            f.write(str(os.getpid()))
        try:
            os.link(tmp, mark)
        except FileExistsError:
            return block
        finally:
            os.remove(tmp)
        time.sleep(30)  # killed long before
    return block


def test_killed_worker_gives_the_same_bits(client, tmp_path):
    """A worker process is killed (SIGKILL) while it runs a task of the graph: its nanny starts
    a new one, the scheduler reruns the lost tasks, and the result has the NumPy call's bits."""
    x, y, *_ = _data(np.float64)
    slow = da.from_array(x, chunks=(6, 4)).map_blocks(_slow_on_first_block, str(tmp_path),
                                                      dtype=x.dtype)
    start = time.perf_counter()
    fut = client.compute([cd.cross_entropy(slow, y), *cd.cross_entropy_value_and_grad(slow, y)])
    mark = tmp_path / "pid"
    while not mark.exists():
        assert time.perf_counter() - start < 60, "the slow task never started"
        time.sleep(0.05)
    pid = int(mark.read_text())
    assert pid != os.getpid()  # a worker process, not this one
    workers_before = set(client.scheduler_info()["workers"])
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    got = client.gather(fut)
    done = time.perf_counter()
    for g, w in zip(got, [crossent.cross_entropy(x, y), *crossent.cross_entropy_value_and_grad(x, y)]):
        _same(g, w)
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != workers_before  # a new worker replaced it
    print(f"\nkilled-worker test: kill after {killed - start:.2f} s, result {done - killed:.2f} s "
          f"after the kill")


def test_perplexity_example(client, tmp_path, capsys):
    """examples/dask_perplexity.py on a small data set on disk: its mean is the bits of the NumPy
    call on the whole array in memory, and its perplexity is exp of it."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "dask_perplexity.py"
    spec = importlib.util.spec_from_file_location("dask_perplexity", path)
    ex = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ex)
    xp, yp = ex.write_dataset(str(tmp_path), rows=3000, classes=40, step=1000)
    mean, ppl = ex.evaluate(client, xp, yp, block_rows=700)
    want = crossent.cross_entropy(np.load(xp), np.load(yp))
    _same(mean, want)
    assert ppl == np.exp(float(want))


def test_class_chunks_are_folded_not_gathered():
    """With the class axis split, logsumexp, log_softmax and softmax chain the fold's tasks
    (no rechunk of the classes); the losses gather the classes per block of rows."""
    dx = da.from_array(_data(np.float64)[0], chunks=(6, 4))
    for f in (cd.logsumexp, cd.log_softmax, cd.softmax):
        keys = [str(k) for k in dict(f(dx).__dask_graph__())]
        assert any("_fold_step" in k for k in keys) and not any("rechunk" in k for k in keys)


def test_import_crossent_does_not_import_dask():
    import subprocess

    code = "import sys, crossent; assert 'dask' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_module_example_runs():
    import doctest

    res = doctest.testmod(cd, optionflags=doctest.ELLIPSIS)
    assert res.attempted > 0 and res.failed == 0


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "int64"])
def test_folded_narrow_and_integer_inputs(dtype):
    """Class chunks folded for float16/bfloat16 (read as float32, rounded once at the end) and
    integers (read as float64), and a 1-d input: the NumPy call's bits."""
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((9, 37)) * 4).astype(dtype)
    dx = da.from_array(x, chunks=(4, 10))
    x1 = rng.standard_normal(50)
    d1 = da.from_array(x1, chunks=7)
    got = _compute([cd.logsumexp(dx), cd.log_softmax(dx), cd.softmax(dx),
                    cd.logsumexp(dx, axis=0, keepdims=True), cd.log_softmax(d1), cd.logsumexp(d1)])
    want = [crossent.logsumexp(x), crossent.log_softmax(x), crossent.softmax(x),
            crossent.logsumexp(x, axis=0, keepdims=True), crossent.log_softmax(x1),
            crossent.logsumexp(x1)]
    for g, w in zip(got, want):
        _same(g, w)
