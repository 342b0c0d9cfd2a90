"""ULP accuracy of entropy / cross-entropy / KL of PMFs: crossent against its peers.

Every case of the adversarial corpus :mod:`crossent.corpus.pmf` is run through crossent, through
the peers' adapters of :mod:`crossent._peers` (``pytorch``: ``F.kl_div``; ``jax``:
``optax.kl_divergence`` and ``sum(entr(p))``; ``scipy``: ``scipy.stats.entropy``), through the
other forms those libraries offer (:func:`crossent._peers.pmf_forms`: ``rel_entr``, ``kl_div``
and ``entr`` summed, ``kl_div(log_target=True)``, ``Categorical.entropy``,
``kl_divergence_with_log_targets``), and through the textbook ``H(p,q) - H(p,p)`` evaluated
with crossent's own accurate parts (the cancellation alone). Each output is compared with the
exact value of ``crossent.reference`` in ULPs of the input format, by
:func:`crossent._measure.measure`; a peer returning a wider float is rounded once to the
input's format first.

Peers that are not installed are skipped. Inputs a peer cannot take (a base other than e for
torch/optax, a class axis that is not last for optax) are skipped for that peer; the ``n``
column says how many outputs each row measured.

Run::

    PYTHONPATH=src python benchmarks/pmf_accuracy_peers.py [--size ci] [--dtype float64 float32]
"""

from __future__ import annotations

import argparse
import math
import sys

import numpy as np

import crossent
from crossent._measure import PMF_FUNCTIONS, Unsupported, cases, exact_values, measure
from crossent._peers import Forms, load_peers, pmf_forms
from crossent.corpus import pmf as corpus


def implementations() -> dict:
    """``{label: implementation}``: crossent, the installed peers and their other forms."""
    impls = {"crossent": crossent}
    impls.update(load_peers())
    impls.update(pmf_forms())
    # the article's identity, evaluated with crossent's own accurate pieces: the cancellation
    # alone, no sloppy arithmetic
    impls["H(p,q) - H(p,p) (crossent parts)"] = Forms(
        kl_divergence=lambda p, q, *, base=None, axis=-1:
            crossent.cross_entropy_pmf(p, q, base=base, axis=axis)
            - crossent.entropy(p, base=base, axis=axis))
    return impls


def run(size="ci", dtypes=("float64", "float32"), seed=0):
    impls = implementations()
    rows = []
    for dt in dtypes:
        for fn in PMF_FUNCTIONS:
            errs = {name: [] for name in impls}
            for case in cases(fn, size, seed, dt):
                exact = exact_values(fn, case)
                for name, impl in impls.items():
                    try:
                        with np.errstate(all="ignore"):
                            errs[name].append(measure(impl, fn, case, exact=exact).errors)
                    except Unsupported:
                        continue
            for name, e in errs.items():
                if not e:
                    continue
                e = np.concatenate(e)
                fin = e[np.isfinite(e)]
                rows.append(dict(dtype=dt, function=fn, impl=name, n=e.size,
                                 max=float(e.max()), median=float(np.median(e)),
                                 cr=float(np.mean(e <= 0.5)), n_inf=int(e.size - fin.size)))
    return rows


def fmt_ulp(x):
    if math.isinf(x):
        return "inf"
    if x == 0:
        return "0"
    if x < 100:
        return f"{x:.3g}"
    return f"{x:.1e}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="ci", choices=corpus.SIZES)
    ap.add_argument("--dtype", nargs="+", default=["float64", "float32"])
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    rows = run(a.size, a.dtype, a.seed)
    print("| dtype | function | implementation | n | max ULP | median ULP | correctly rounded | wrong inf/nan |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dtype']} | {r['function']} | {r['impl']} | {r['n']} | {fmt_ulp(r['max'])} | "
              f"{fmt_ulp(r['median'])} | {100 * r['cr']:.1f}% | {r['n_inf']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
