"""What the correctly rounded float64 mode costs: ``crossent.rounding("correct")`` against the
default mode, in one process, and how often its slow path (the oracle) runs.

For each shape and function it times the same call in both modes, interleaved (one call of each
per round, each after an untimed one of the same mode, median over the rounds), on normal
logits (standard deviation 3) and class-index targets, and prints the ratio correct / fast; the
slow path's share is counted by ``crossent._rounding.COUNTS`` over every call made. Absolute
times on a shared machine are noise: read the ratios. ``--json FILE`` writes the table.
``--pmf``: the PMF functions instead (``entropy``, ``cross_entropy_pmf``, ``kl_divergence``
on Dirichlet(1) rows, ``q`` independent of ``p``, and ``kl_divergence`` of ``q`` a 1e-3
perturbation of ``p``, where its terms have both signs). ``--grads``: the gradients whose
entries cancel (``cross_entropy_value_and_grad`` with Dirichlet(1) targets and label
smoothing, ``binary_cross_entropy_with_logits_value_and_grad`` with uniform soft targets,
``entropy_logits_value_and_grad``), the loss or value included. ``--divergence``:
``kl_divergence_logits`` and ``js_divergence_logits`` on independent normal logits (standard
deviation 3) and on near-equal rows (``Q = P (1 + rho U(-1, 1))``, ``rho`` 1e-3 and 1e-9 for
KL, 1e-3 for JS), and ``kl_divergence_logits_value_and_grad`` and ``js_divergence_logits_value_and_grad``
(``'mean'``) on the independent rows and, up to 100 classes, on the near-equal rows of 1e-3 (with many classes most of those rows
go to the oracle: docs/accuracy.md). The default set includes ``cross_entropy`` with ``z_loss`` and with
``logit_softcap``, and ``cross_entropy_value_and_grad`` with each.

Usage::

    python benchmarks/correct_rounding.py [--shapes 4096x1000] [--rounds 9] [--pmf|--grads|--divergence]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

SHAPES = ((65536, 10), (16384, 100), (4096, 1000), (256, 32000))


def _calls(x, y):
    import crossent as ce

    return {
        "logsumexp": lambda: ce.logsumexp(x, axis=-1),
        "log_softmax": lambda: ce.log_softmax(x, axis=-1),
        "softmax": lambda: ce.softmax(x, axis=-1),
        "cross_entropy (none)": lambda: ce.cross_entropy(x, y, reduction="none"),
        "cross_entropy (mean)": lambda: ce.cross_entropy(x, y),
        "cross_entropy_value_and_grad": lambda: ce.cross_entropy_value_and_grad(x, y),
        "cross_entropy (z_loss)": lambda: ce.cross_entropy(x, y, reduction="none", z_loss=1e-4),
        "cross_entropy (logit_softcap)": lambda: ce.cross_entropy(x, y, reduction="none",
                                                                  logit_softcap=30.0),
        "cross_entropy_value_and_grad (z_loss)": lambda: ce.cross_entropy_value_and_grad(
            x, y, z_loss=1e-4),
        "cross_entropy_value_and_grad (logit_softcap)": lambda: ce.cross_entropy_value_and_grad(
            x, y, logit_softcap=30.0),
    }


def _pmf_calls(rng, N, C):
    import crossent as ce

    p, q = rng.dirichlet(np.ones(C), N), rng.dirichlet(np.ones(C), N)
    near = p * (1 + 1e-3 * rng.uniform(-1, 1, p.shape))
    near /= near.sum(axis=1, keepdims=True)
    return {
        "entropy": lambda: ce.entropy(p),
        "entropy (base 2)": lambda: ce.entropy(p, base=2.0),
        "cross_entropy_pmf": lambda: ce.cross_entropy_pmf(p, q),
        "kl_divergence": lambda: ce.kl_divergence(p, q),
        "kl_divergence (near)": lambda: ce.kl_divergence(p, near),
    }


def _grad_calls(rng, N, C):
    import crossent as ce

    x = rng.standard_normal((N, C)) * 3.0
    t, y = rng.dirichlet(np.ones(C), N), rng.integers(0, C, N)
    tb = rng.uniform(size=(N, C))
    return {
        "cross_entropy_value_and_grad (probs)": lambda: ce.cross_entropy_value_and_grad(x, t),
        "cross_entropy_value_and_grad (probs, eps)":
            lambda: ce.cross_entropy_value_and_grad(x, t, label_smoothing=0.1),
        "cross_entropy_value_and_grad (labels, eps)":
            lambda: ce.cross_entropy_value_and_grad(x, y, label_smoothing=0.1),
        "binary_cross_entropy_with_logits_value_and_grad":
            lambda: ce.binary_cross_entropy_with_logits_value_and_grad(x, tb),
        "entropy_logits_value_and_grad": lambda: ce.entropy_logits_value_and_grad(x),
    }



def _divergence_calls(rng, N, C):
    import crossent as ce

    p = rng.standard_normal((N, C)) * 3.0
    q = rng.standard_normal((N, C)) * 3.0
    P = np.exp(p - p.max(axis=1, keepdims=True))
    near = {rho: np.log(P * (1 + rho * rng.uniform(-1, 1, P.shape))) for rho in (1e-3, 1e-9)}
    return {
        "kl_divergence_logits": lambda: ce.kl_divergence_logits(p, q, reduction="none"),
        "kl_divergence_logits (mean)": lambda: ce.kl_divergence_logits(p, q),
        "kl_divergence_logits (near 1e-3)": lambda: ce.kl_divergence_logits(
            p, near[1e-3], reduction="none"),
        "kl_divergence_logits (near 1e-9)": lambda: ce.kl_divergence_logits(
            p, near[1e-9], reduction="none"),
        "js_divergence_logits": lambda: ce.js_divergence_logits(p, q, reduction="none"),
        "js_divergence_logits (near 1e-3)": lambda: ce.js_divergence_logits(
            p, near[1e-3], reduction="none"),
        "kl_divergence_logits_value_and_grad": lambda: ce.kl_divergence_logits_value_and_grad(
            p, q),
        "js_divergence_logits_value_and_grad": lambda: ce.js_divergence_logits_value_and_grad(
            p, q),
    } | ({} if C > 100 else {  # near-equal rows of many classes: mostly the oracle's
        "kl_divergence_logits_value_and_grad (near 1e-3)":
            lambda: ce.kl_divergence_logits_value_and_grad(p, near[1e-3]),
        "js_divergence_logits_value_and_grad (near 1e-3)":
            lambda: ce.js_divergence_logits_value_and_grad(p, near[1e-3]),
    })


def run(shapes=SHAPES, rounds=9, seed=0, pmf=False, grads=False, divergence=False):
    import crossent as ce
    from crossent import _rounding

    rng = np.random.default_rng(seed)
    rows = []
    for N, C in shapes:
        if pmf:
            calls = _pmf_calls(rng, N, C)
        elif grads:
            calls = _grad_calls(rng, N, C)
        elif divergence:
            calls = _divergence_calls(rng, N, C)
        else:
            x = rng.standard_normal((N, C)) * 3.0
            y = rng.integers(0, C, N)
            calls = _calls(x, y)
        for name, f in calls.items():
            key = name.split(" ")[0]
            before = list(_rounding.COUNTS.get(key, [0, 0]))
            times = {"fast": [], "correct": []}
            for mode in ("fast", "correct"):  # warm-up: compilation, thread pool
                with ce.rounding(mode):
                    f()
            for _ in range(rounds):
                for mode in ("fast", "correct"):
                    with ce.rounding(mode):
                        f()
                        t0 = time.perf_counter()
                        f()
                        times[mode].append(time.perf_counter() - t0)
            after = _rounding.COUNTS.get(key, [0, 0])
            fast, correct = (statistics.median(times[m]) for m in ("fast", "correct"))
            rows.append(dict(shape=f"{N}x{C}", function=name, ratio=correct / fast,
                             fast_ms=1e3 * fast, correct_ms=1e3 * correct,
                             rows=after[0] - before[0], slow_rows=after[1] - before[1]))
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shapes", default=None, help="comma-separated ROWSxCLASSES")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--json", default=None)
    p.add_argument("--pmf", action="store_true", help="the PMF functions")
    p.add_argument("--grads", action="store_true", help="the gradients with soft coefficients")
    p.add_argument("--divergence", action="store_true",
                   help="kl_divergence_logits and js_divergence_logits")
    a = p.parse_args(argv)
    shapes = SHAPES if a.shapes is None else tuple(
        tuple(int(v) for v in s.split("x")) for s in a.shapes.split(","))
    rows = run(shapes, a.rounds, pmf=a.pmf, grads=a.grads, divergence=a.divergence)
    print(f"{'shape':>10} {'function':<48} {'correct/fast':>12} {'slow rows':>14}")
    for r in rows:
        print(f"{r['shape']:>10} {r['function']:<48} {r['ratio']:>12.2f} "
              f"{r['slow_rows']:>6} of {r['rows']}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
