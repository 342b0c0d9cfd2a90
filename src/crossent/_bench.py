"""``crossent bench``: cross-entropy speed side by side with PyTorch (CPU) and JAX/optax.

Every implementation runs in this one process on the same data; each measurement is the median
of repeated runs, interleaved (one run of every implementation per round) so that the drift of a
shared machine hits all of them alike. Each timed run comes right after an untimed run of the
same implementation (``SETTLE``): the libraries' worker threads keep spinning for a while after a
call (OpenMP in Numba and PyTorch, Eigen's pool in JAX), and a run timed right after another
library's would be charged for its threads (measured: a JAX call right after crossent's took 30%
longer, a PyTorch call 18% longer). Reported per case (shape, dtype, mode):

``ns_per_element``
    median seconds / (rows * classes), in nanoseconds.
``ratio_to_fastest_peer``
    time / time of the fastest installed peer (PyTorch, JAX) on the same case; ``None`` when no
    peer is installed.
``ratio_to_read``
    time / time of one read of the array (``numpy.sum`` over the logits): how many passes over
    memory the implementation costs.

Per call (``per_call``, default runs only): a tiny batch (``CALL_SHAPE``, 8x10 float64), where a
training or RL loop pays the fixed cost of every call: microseconds per call of
``cross_entropy`` (mean) and ``logsumexp`` (last axis), crossent's NumPy API against PyTorch's
(and SciPy's ``logsumexp``), each the median over rounds of ``CALL_BATCH`` back-to-back calls,
with PyTorch imported in the process (its thread pool and Numba's both loaded).

Modes: ``forward`` is the per-item loss (``reduction="none"``); ``fwd+bwd`` is the mean loss and
its gradient with respect to the logits (crossent's fused ``cross_entropy_value_and_grad``,
PyTorch's ``loss.backward()``, JAX's ``jax.value_and_grad`` under ``jit``). ``kl fwd+bwd`` is
the KL divergence between the softmaxes of two logit arrays (``q = p + noise``), averaged over
rows, and its gradients in both: crossent's ``kl_divergence_logits_value_and_grad``, PyTorch's
``F.kl_div(log_softmax(q), log_softmax(p), log_target=True, reduction="batchmean")`` with
``backward()`` to both inputs, JAX's ``jit(value_and_grad)`` of the same formula in both
arguments.

Peers that are not installed are skipped and listed as skipped, never faked. Absolute times on a
shared machine are noise: read the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone

import numpy as np

__all__ = ["DEFAULT_SHAPES", "QUICK_SHAPES", "run_bench", "summary_line", "write_plot",
           "add_arguments", "main_from_args", "run_per_call", "format_per_call"]

DEFAULT_SHAPES = ((4096, 1000), (256, 32000), (64, 128000), (65536, 10), (16384, 100))
QUICK_SHAPES = ((256, 1000), (16, 8000))
DEFAULT_DTYPES = ("float32", "float64")
DEFAULT_REPEATS = 15
QUICK_REPEATS = 5
WARMUP = 2  # untimed calls first: JIT compilation, allocator and thread-pool start-up
SETTLE = 1  # untimed calls of the same implementation right before each timed one (see above)
MODES = ("forward", "fwd+bwd", "kl fwd+bwd")
PEERS = ("torch", "jax")
TORCH_THREADS = 2


# ----------------------------------------------------------------------------------------------
# implementations: each factory takes (logits, labels, mode) and returns a zero-argument callable
# that runs the computation to completion (and returns something, so nothing is optimised away)
# ----------------------------------------------------------------------------------------------
def _crossent(logits, labels, mode):
    import crossent

    if mode == "kl fwd+bwd":  # labels is the second logit array here
        return lambda: crossent.kl_divergence_logits_value_and_grad(logits, labels)
    if mode == "forward":
        return lambda: crossent.cross_entropy(logits, labels, reduction="none")
    return lambda: crossent.cross_entropy_value_and_grad(logits, labels)


def _numpy_read(logits, labels, mode):
    return lambda: logits.sum()


def _torch_module():
    import torch

    torch.set_num_threads(TORCH_THREADS)
    return torch


def _torch(logits, labels, mode):
    torch = _torch_module()
    import torch.nn.functional as F

    if mode == "kl fwd+bwd":
        tp = torch.from_numpy(logits.copy()).requires_grad_(True)
        tq = torch.from_numpy(labels.copy()).requires_grad_(True)

        def run_kl():
            tp.grad = tq.grad = None
            loss = F.kl_div(F.log_softmax(tq, -1), F.log_softmax(tp, -1), log_target=True,
                            reduction="batchmean")
            loss.backward()
            return loss, tp.grad, tq.grad

        return run_kl
    y = torch.from_numpy(labels.astype(np.int64))
    if mode == "forward":
        t = torch.from_numpy(logits)

        def run():
            with torch.no_grad():
                return F.cross_entropy(t, y, reduction="none")

        return run
    t = torch.from_numpy(logits.copy()).requires_grad_(True)

    def run():
        t.grad = None
        loss = F.cross_entropy(t, y)
        loss.backward()
        return loss, t.grad

    return run


def _jax_modules(need_x64):
    import jax

    if need_x64:
        # without x64, JAX silently computes float64 input in float32: that would be a fake
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax

    return jax, jnp, optax


def _jax(logits, labels, mode):
    jax, jnp, optax = _jax_modules(logits.dtype == np.float64)
    x = jax.device_put(jnp.asarray(logits))
    if x.dtype != logits.dtype:
        raise RuntimeError(f"JAX turned {logits.dtype} into {x.dtype}")
    if mode == "kl fwd+bwd":
        xq = jax.device_put(jnp.asarray(labels))

        def kl(p, q):
            lp = jax.nn.log_softmax(p, axis=-1)
            lq = jax.nn.log_softmax(q, axis=-1)
            return jnp.sum(jnp.exp(lp) * (lp - lq), axis=-1).mean()

        gk = jax.jit(jax.value_and_grad(kl, argnums=(0, 1)))

        def run_kl():
            v, (gp, gq) = gk(x, xq)
            return v.block_until_ready(), gp.block_until_ready(), gq.block_until_ready()

        return run_kl
    y = jax.device_put(jnp.asarray(labels.astype(np.int32)))
    ce = optax.softmax_cross_entropy_with_integer_labels
    if mode == "forward":
        f = jax.jit(ce)
        return lambda: f(x, y).block_until_ready()
    g = jax.jit(jax.value_and_grad(lambda lg, lb: ce(lg, lb).mean()))

    def run():
        loss, grad = g(x, y)
        return loss.block_until_ready(), grad.block_until_ready()

    return run


_IMPLS = {"crossent": _crossent, "torch": _torch, "jax": _jax, "numpy-sum": _numpy_read}


def _peer_versions(peers):
    """{peer: version} of the installed peers and {peer: reason} of the skipped ones."""
    found, skipped = {}, {}
    for name in peers:
        try:
            if name == "torch":
                found[name] = _torch_module().__version__
            elif name == "jax":
                import jax
                import optax

                found[name] = f"jax {jax.__version__}, optax {optax.__version__}"
            else:
                raise ValueError(f"peers: unknown peer {name!r} (known: {', '.join(PEERS)})")
        except ImportError as exc:
            skipped[name] = f"not installed ({exc.__class__.__name__}: {exc})"
    return found, skipped


def _time_cases(funcs, repeats):
    """Median seconds of each callable, rounds interleaved; ``WARMUP`` untimed calls first, and
    ``SETTLE`` untimed calls of the same callable before each timed one."""
    for f in funcs.values():
        for _ in range(WARMUP):
            f()  # compile / JIT / allocate
    times = {name: [] for name in funcs}
    for _ in range(repeats):
        for name, f in funcs.items():
            for _ in range(SETTLE):
                f()  # the previous implementation's threads have stopped spinning; ours run
            t0 = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}


def _parse_shape(text):
    try:
        n, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"shapes: {text!r} is not ROWSxCLASSES (e.g. 4096x1000)") from None
    if n < 1 or c < 1:
        raise ValueError(f"shapes: {text!r} must have positive sizes")
    return n, c


def run_bench(shapes=None, dtypes=None, repeats=None, *, quick=False, peers=PEERS, seed=0,
              include_crossent=True, progress=None) -> dict:
    """Time crossent and the installed peers on every (shape, dtype, mode).

    Parameters
    ----------
    shapes : sequence of (int, int), optional
        (rows, classes); default ``DEFAULT_SHAPES`` (``QUICK_SHAPES`` with ``quick``).
    dtypes : sequence of str, optional
        Subset of ``("float32", "float64")``; default both.
    repeats : int, optional
        Timed runs per implementation and case (medians are reported); default 15 (5 quick).
    quick : bool
        Small shapes and few repeats (used by ``crossent verify``).
    peers : sequence of str
        Peers to try, among ``("torch", "jax")``; the ones not installed are skipped.
    seed : int
        Seed of the logits (normal, scale 3) and labels (uniform); the same data for everyone.
    include_crossent : bool
        Time crossent itself (False measures the peers only).
    progress : callable, optional
        Called with a one-line message before each case.

    Returns
    -------
    dict
        ``{"meta": {...}, "peers": {name: version}, "skipped": {name: reason},
        "rows": [{"shape", "dtype", "mode", "impl", "seconds", "ns_per_element",
        "ratio_to_fastest_peer", "ratio_to_read"}, ...]}`` (JSON-serialisable).
    """
    if shapes is None:
        shapes = QUICK_SHAPES if quick else DEFAULT_SHAPES
    shapes = [tuple(int(v) for v in s) for s in shapes]
    dtypes = list(DEFAULT_DTYPES if dtypes is None else dtypes)
    for d in dtypes:
        if d not in DEFAULT_DTYPES:
            raise ValueError(f"dtypes: {d!r} is not one of {DEFAULT_DTYPES}")
    if repeats is None:
        repeats = QUICK_REPEATS if quick else DEFAULT_REPEATS
    if int(repeats) < 1:
        raise ValueError("repeats: must be at least 1")
    repeats = int(repeats)
    found, skipped = _peer_versions(list(peers))

    impls = (["crossent"] if include_crossent else []) + [p for p in PEERS if p in found]
    rng = np.random.default_rng(seed)
    rows = []
    for n, c in shapes:
        base = rng.standard_normal((n, c)) * 3.0
        labels = rng.integers(0, c, n)
        noise = rng.standard_normal((n, c)) * 0.1  # q = p + noise for the KL
        for dtype in dtypes:
            logits = np.ascontiguousarray(base.astype(dtype))
            for mode in MODES:
                if progress:
                    progress(f"{n}x{c} {dtype} {mode}")
                second = (np.ascontiguousarray((base + noise).astype(dtype))
                          if mode == "kl fwd+bwd" else labels)
                funcs = {"numpy-sum": _numpy_read(logits, labels, mode)}
                for name in impls:
                    try:
                        funcs[name] = _IMPLS[name](logits, second, mode)
                    except (ImportError, RuntimeError) as exc:
                        skipped.setdefault(name, f"{exc.__class__.__name__}: {exc}")
                med = _time_cases(funcs, repeats)
                peer_times = [med[p] for p in PEERS if p in med]
                fastest = min(peer_times) if peer_times else None
                for name, sec in med.items():
                    rows.append({
                        "shape": [n, c],
                        "dtype": dtype,
                        "mode": mode,
                        "impl": name,
                        "seconds": sec,
                        "ns_per_element": sec / (n * c) * 1e9,
                        "ratio_to_fastest_peer": None if fastest is None else sec / fastest,
                        "ratio_to_read": sec / med["numpy-sum"],
                    })
    return {
        "meta": _meta(repeats, quick, seed),
        "peers": found,
        "skipped": skipped,
        "rows": rows,
    }


def _meta(repeats, quick, seed):
    import numba

    import crossent

    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.get_num_threads(),
        "torch_threads": TORCH_THREADS,
        "crossent": getattr(crossent, "__version__", "unknown"),
        "repeats": repeats,
        "settle": SETTLE,
        "quick": quick,
        "seed": seed,
        "statistic": "median",
        "note": "absolute times on a shared machine are noise; compare ratios",
    }


def summary_line(res: dict) -> str:
    """One line for ``crossent verify``: crossent's worst and best ratio to the fastest peer."""
    mine = [r for r in res["rows"] if r["impl"] == "crossent"]
    if not mine:
        return "crossent not measured"
    ratios = [r["ratio_to_fastest_peer"] for r in mine if r["ratio_to_fastest_peer"] is not None]
    reads = [r["ratio_to_read"] for r in mine]
    peers = ", ".join(res["peers"]) or "none installed"
    if ratios:
        return (f"{len(mine)} cases; crossent / fastest peer ({peers}): "
                f"{min(ratios):.2f}x .. {max(ratios):.2f}x; / one read: "
                f"{min(reads):.1f}x .. {max(reads):.1f}x")
    return (f"{len(mine)} cases; no peer installed; crossent / one read: "
            f"{min(reads):.1f}x .. {max(reads):.1f}x")


def format_table(res: dict) -> str:
    """Plain-text table of the rows (one line per implementation and case)."""
    head = f"{'shape':>12s} {'dtype':8s} {'mode':10s} {'impl':10s} {'ns/elem':>9s} " \
           f"{'/fastest peer':>13s} {'/one read':>9s}"
    lines = [head, "-" * len(head)]
    for r in res["rows"]:
        shape = f"{r['shape'][0]}x{r['shape'][1]}"
        rp = r["ratio_to_fastest_peer"]
        lines.append(f"{shape:>12s} {r['dtype']:8s} {r['mode']:10s} {r['impl']:10s} "
                     f"{r['ns_per_element']:9.3f} {('-' if rp is None else f'{rp:.2f}'):>13s} "
                     f"{r['ratio_to_read']:9.2f}")
    for name, why in res["skipped"].items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def write_plot(res: dict, path) -> bool:
    """Grouped bars of ns/element per case and implementation; False if matplotlib is absent."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    cases = []
    for r in res["rows"]:
        key = (tuple(r["shape"]), r["dtype"], r["mode"])
        if key not in cases:
            cases.append(key)
    impls = []
    for r in res["rows"]:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    val = {(tuple(r["shape"]), r["dtype"], r["mode"], r["impl"]): r["ns_per_element"]
           for r in res["rows"]}
    width = 0.8 / max(len(impls), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(cases)), 4.8))
    x = np.arange(len(cases))
    for j, name in enumerate(impls):
        ys = [val.get(case + (name,), np.nan) for case in cases]
        ax.bar(x + (j - (len(impls) - 1) / 2) * width, ys, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels([f"{n}x{c}\n{d} {m}" for (n, c), d, m in cases], fontsize=7)
    ax.set_ylabel("ns per element (median)")
    ax.set_yscale("log")
    ax.set_title("cross-entropy and KL from logits, one process, same data "
                 "(numpy-sum = one read of p)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and few repeats (seconds, as in crossent verify)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed runs per case (median reported; default {DEFAULT_REPEATS}, "
                             f"{QUICK_REPEATS} with --quick)")
    parser.add_argument("--shapes", default=None,
                        help="comma-separated ROWSxCLASSES (default "
                             + ",".join(f"{n}x{c}" for n, c in DEFAULT_SHAPES) + ")")
    parser.add_argument("--dtypes", default=None, help="comma-separated, default float32,float64")
    parser.add_argument("--no-peers", action="store_true", help="measure crossent only")
    parser.add_argument("--no-per-call", action="store_true",
                        help="skip the per-call timing of a tiny batch (run by default without "
                             "--quick and --shapes)")
    parser.add_argument("--json", metavar="FILE", default=None, help="write the results as JSON")
    parser.add_argument("--plot", metavar="FILE", default=None,
                        help="write a bar chart (PNG; needs matplotlib)")


def main_from_args(args) -> int:
    shapes = None if not args.shapes else [_parse_shape(s) for s in args.shapes.split(",")]
    dtypes = None if not args.dtypes else [d.strip() for d in args.dtypes.split(",")]
    res = run_bench(shapes, dtypes, args.repeats, quick=args.quick,
                    peers=() if args.no_peers else PEERS,
                    progress=lambda m: print(f"  timing {m}", file=sys.stderr))
    if not args.quick and not args.shapes and not args.no_per_call:
        res["per_call"] = run_per_call(peers=() if args.no_peers else PEERS)
    print(format_table(res))
    if res.get("per_call"):
        print(format_per_call(res["per_call"]))
    print(summary_line(res))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
        print(f"wrote {args.json}")
    if args.plot:
        if write_plot(res, args.plot):
            print(f"wrote {args.plot}")
        else:
            print("plot skipped: matplotlib is not installed", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------------
# per-call overhead on a tiny batch
# ----------------------------------------------------------------------------------------------
CALL_SHAPE = (8, 10)
CALL_BATCH = 200  # calls per timed round: the per-call time is the round's time / CALL_BATCH
CALL_ROUNDS = 15


def _per_call_funcs(function, x, y, peers):
    """{impl: zero-argument callable} for one function on the tiny batch."""
    import crossent

    funcs = {}
    if function == "cross_entropy":
        funcs["crossent"] = lambda: crossent.cross_entropy(x, y)
    else:
        funcs["crossent"] = lambda: crossent.logsumexp(x, axis=-1)
    if "torch" in peers:
        try:
            torch = _torch_module()
            import torch.nn.functional as F

            t, ty = torch.from_numpy(x), torch.from_numpy(y)

            def run_torch():
                with torch.no_grad():
                    if function == "cross_entropy":
                        return F.cross_entropy(t, ty)
                    return torch.logsumexp(t, -1)

            funcs["torch"] = run_torch
        except ImportError:
            pass
    if function == "logsumexp":
        try:
            from scipy.special import logsumexp

            funcs["scipy"] = lambda: logsumexp(x, axis=-1)
        except ImportError:
            pass
    return funcs


def run_per_call(peers=PEERS, rounds=CALL_ROUNDS, seed=0) -> list:
    """Microseconds per call on a ``CALL_SHAPE`` float64 batch: ``cross_entropy`` (mean) and
    ``logsumexp``, crossent against PyTorch (and SciPy); medians over ``rounds`` rounds of
    ``CALL_BATCH`` calls, implementations interleaved. Rows: ``{"function", "shape",
    "dtype", "impl", "microseconds", "ratio_to_torch"}``."""
    rng = np.random.default_rng(seed)
    n, c = CALL_SHAPE
    x = rng.standard_normal((n, c)) * 3.0
    y = rng.integers(0, c, n)
    rows = []
    for function in ("cross_entropy", "logsumexp"):
        funcs = _per_call_funcs(function, x, y, peers)
        times = {name: [] for name in funcs}
        for f in funcs.values():
            for _ in range(WARMUP * 10):
                f()
        for _ in range(rounds):
            for name, f in funcs.items():
                f()
                t0 = time.perf_counter()
                for _ in range(CALL_BATCH):
                    f()
                times[name].append((time.perf_counter() - t0) / CALL_BATCH)
        med = {name: statistics.median(v) for name, v in times.items()}
        for name, sec in med.items():
            rows.append({"function": function, "shape": [n, c], "dtype": "float64", "impl": name,
                         "microseconds": sec * 1e6,
                         "ratio_to_torch": sec / med["torch"] if "torch" in med else None})
    return rows


def format_per_call(rows: list) -> str:
    """Plain-text table of ``run_per_call``'s rows."""
    head = f"{'function':14s} {'shape':>6s} {'impl':9s} {'us/call':>8s} {'/torch':>7s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        rt = r["ratio_to_torch"]
        lines.append(f"{r['function']:14s} {r['shape'][0]}x{r['shape'][1]:<4d} {r['impl']:9s} "
                     f"{r['microseconds']:8.2f} {('-' if rt is None else f'{rt:.2f}'):>7s}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="crossent bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return main_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
