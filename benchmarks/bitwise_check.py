"""Bitwise old-vs-new check of every kernel-backed public function.

A refactoring of the kernels must not change a single bit of any result. This script runs
every public function that reaches a Numba kernel on a fixed set of inputs and either saves
the outputs or compares them with saved ones, bit for bit (nan payloads and the sign of zero
included)::

    python benchmarks/bitwise_check.py --save before.npz     # with the old code
    python benchmarks/bitwise_check.py --compare before.npz  # with the new code

The inputs: the adversarial corpora (``crossent.corpus.logits.cases(size="ci")`` and
``crossent.corpus.pmf.cases(size="ci")``) in float64, float32 and float16, and seeded random
batches of 1, 2, 3, 10, 100, 1000 and 4097 classes (37 rows, so more than one task of rows),
with -inf masks. The functions and options:

* ``logsumexp``, ``log_softmax``, ``softmax``;
* ``cross_entropy`` with reduction none/mean/sum and ``cross_entropy_value_and_grad`` (loss
  and gradient), each with and without class weights, label smoothing 0, 0.1 and 1.0, with and
  without an ``ignore_index`` that hits some rows, for class indices and probability targets
  (the corpus cases also with their own options);
* ``entropy``, ``cross_entropy_pmf``, ``kl_divergence`` with base None, 2 and 10 (the corpus
  cases also with their own base).

A call that raises is recorded by its exception type, so a change of behaviour there is a
difference too. ``--compare`` prints the number of arrays compared and every difference, and
exits with status 1 if there is one. Not part of CI: a tool for kernel changes (a full run
takes about a minute once the kernels are compiled).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

import crossent
from crossent.corpus import logits as logits_corpus
from crossent.corpus import pmf as pmf_corpus

DTYPES = (np.float64, np.float32, np.float16)
SMOOTHING = (0.0, 0.1, 1.0)
CLASSES = (1, 2, 3, 10, 100, 1000, 4097)
ROWS = 37  # more than one task of rows (ROWS_PER_TASK = 32)
BASES = (None, 2.0, 10.0)


def _record(out, key, thunk):
    """Store the outputs of ``thunk()`` under ``key`` (a tuple is stored element-wise), or the
    type of the exception it raised."""
    if key in out or key + "#0" in out or key + "!raised" in out:
        raise KeyError(f"duplicate key {key}")
    try:
        r = thunk()
    except Exception as e:  # noqa: BLE001 - recorded, and compared like a result
        out[key + "!raised"] = np.array(type(e).__name__)
        return
    if isinstance(r, tuple):
        for j, v in enumerate(r):
            out[f"{key}#{j}"] = np.array(v)
    else:
        out[key] = np.array(r)


def _loss_options(weight, eps, ignore_index):
    """The option grid of the loss functions: (name, kwargs)."""
    for w in (None, "w"):
        for e in eps:
            for ig in ignore_index:
                kw = dict(label_smoothing=e)
                if w is not None:
                    kw["weight"] = weight
                if ig is not None:
                    kw["ignore_index"] = ig
                yield f"w={w is not None},eps={e},ig={ig}", kw


def _softmax_family(out, key, x, axis):
    _record(out, key + "/logsumexp", lambda: crossent.logsumexp(x, axis=axis))
    _record(out, key + "/log_softmax", lambda: crossent.log_softmax(x, axis=axis))
    _record(out, key + "/softmax", lambda: crossent.softmax(x, axis=axis))


def _losses(out, key, x, t, axis, grid):
    for name, kw in grid:
        k = f"{key}/{name}"
        for red in ("none", "mean", "sum"):
            _record(out, f"{k}/ce-{red}",
                    lambda: crossent.cross_entropy(x, t, axis=axis, reduction=red, **kw))
        for red in ("mean", "sum"):
            _record(out, f"{k}/vg-{red}",
                    lambda: crossent.cross_entropy_value_and_grad(x, t, axis=axis, reduction=red, **kw))


def logits_cases(out):
    for dt in DTYPES:
        name = np.dtype(dt).name
        for case in logits_corpus.cases(size="ci", seed=0, dtype=dt):
            key = f"{name}/{case.name}"
            x, t, ax = case.logits, case.target, case.axis
            _softmax_family(out, key, x, ax)
            # the case with its own options
            for red in ("none", "mean", "sum"):
                _record(out, f"{key}/own/ce-{red}",
                        lambda: crossent.cross_entropy(x, t, **case.loss_options(red)))
            _record(out, f"{key}/own/vg", lambda: crossent.cross_entropy_value_and_grad(x, t, **case.options))
            # the option grid
            C = x.shape[ax]
            rng = np.random.default_rng([7, C])
            w = rng.uniform(0.0, 3.0, C).astype(dt)
            if case.probability_target:
                ig = (None,)
            else:
                ig = (None, int(t.reshape(-1)[0])) if t.size else (None,)
            _losses(out, key + "/grid", x, t, ax, _loss_options(w, SMOOTHING, ig))


def random_cases(out):
    for dt in DTYPES:
        name = np.dtype(dt).name
        for C in CLASSES:
            rng = np.random.default_rng([2024, C])
            for scale in (1.0, 30.0):
                key = f"{name}/random/C={C}/scale={scale}"
                x = (rng.standard_normal((ROWS, C)) * scale).astype(dt)
                if C > 1:
                    x[rng.random((ROWS, C)) < 0.1] = -np.inf
                y = rng.integers(0, C, ROWS)
                p = rng.dirichlet(np.ones(C), ROWS).astype(dt)
                w = rng.uniform(0.0, 3.0, C).astype(dt)
                _softmax_family(out, key, x, -1)
                _losses(out, key + "/labels", x, y, -1,
                        _loss_options(w, SMOOTHING, (None, int(y[0]))))
                _losses(out, key + "/probs", x, p, -1, _loss_options(w, SMOOTHING, (None,)))


PMF_FUNCTIONS = {
    "entropy": crossent.entropy,
    "cross_entropy_pmf": crossent.cross_entropy_pmf,
    "kl_divergence": crossent.kl_divergence,
}


def pmf_cases(out):
    for dt in DTYPES:
        name = np.dtype(dt).name
        for fname, fn in PMF_FUNCTIONS.items():
            for case in pmf_corpus.cases(size="ci", seed=0, dtype=dt, function=fname):
                key = f"{name}/{fname}/{case.name}"
                _record(out, key + "/own", lambda: fn(*case.args, **case.kwargs))
                for b in BASES:
                    _record(out, f"{key}/base={b}", lambda: fn(*case.args, base=b, axis=case.axis))
            for K in CLASSES:
                rng = np.random.default_rng([99, K])
                p = rng.dirichlet(np.full(K, 0.5), ROWS).astype(dt)
                q = rng.dirichlet(np.full(K, 0.5), ROWS).astype(dt)
                args = (p,) if fname == "entropy" else (p, q)
                for b in BASES:
                    _record(out, f"{name}/{fname}/random/K={K}/base={b}", lambda: fn(*args, base=b))


def run() -> dict:
    out: dict[str, np.ndarray] = {}
    with np.errstate(all="ignore"):
        logits_cases(out)
        random_cases(out)
        pmf_cases(out)
    return out


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.kind in "USO":
        return bool(np.all(a == b))
    return np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def compare(new: dict, path: str) -> int:
    with np.load(path, allow_pickle=False) as f:
        old = {k: f[k] for k in f.files}
    diffs = []
    for k in sorted(set(old) | set(new)):
        if k not in old:
            diffs.append(f"{k}: new output (not in {path})")
        elif k not in new:
            diffs.append(f"{k}: missing (in {path} only)")
        elif not _same(old[k], new[k]):
            a, b = old[k], new[k]
            if a.dtype.kind == "f" and a.shape == b.shape and a.dtype == b.dtype:
                n = int(np.count_nonzero(a.reshape(-1).view(np.uint8).reshape(a.size, -1)
                                         != b.reshape(-1).view(np.uint8).reshape(b.size, -1)) if a.size else 0)
                diffs.append(f"{k}: {n} bytes differ (of {a.nbytes})")
            else:
                diffs.append(f"{k}: {a.dtype}{a.shape} {a if a.dtype.kind in 'US' else ''} -> "
                             f"{b.dtype}{b.shape} {b if b.dtype.kind in 'US' else ''}")
    both = len(set(old) & set(new))
    elements = sum(new[k].size for k in set(old) & set(new))
    print(f"compared {both} arrays ({elements} values) with {path}: {len(diffs)} differences")
    for d in diffs[:200]:
        print("  " + d)
    return 1 if diffs else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="FILE.npz", help="write the outputs to FILE.npz")
    g.add_argument("--compare", metavar="FILE.npz", help="compare the outputs with FILE.npz")
    args = ap.parse_args(argv)
    out = run()
    if args.save:
        np.savez_compressed(args.save, **out)
        raised = sum(k.endswith("!raised") for k in out)
        print(f"saved {len(out)} arrays ({raised} of them exceptions) to {args.save}")
        return 0
    return compare(out, args.compare)


if __name__ == "__main__":
    sys.exit(main())
