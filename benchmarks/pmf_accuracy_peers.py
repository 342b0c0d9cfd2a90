"""ULP accuracy of entropy / cross-entropy / KL of PMFs: crossent against its peers.

Every case of the adversarial corpus :mod:`crossent.corpus.pmf` is run through crossent and
through SciPy (``scipy.stats.entropy``, ``scipy.special.rel_entr`` / ``kl_div`` summed),
PyTorch (``torch.nn.functional.kl_div``) and optax (``optax.kl_divergence``), plus the
textbook forms ``H(p,q) - H(p,p)`` (the identity of the article) for reference; each output is
compared with the exact value of ``crossent.reference`` in ULPs of the input format.

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

import mpmath
import numpy as np

import crossent.pmf as cpmf
from crossent import reference as ref
from crossent.corpus import pmf as corpus
from crossent.ulp import ulp_error


class Skip(Exception):
    pass


def _nats(base):
    return 1.0 if base is None else math.log(base)


def peers():
    out = {}
    try:
        import scipy.special as sps
        import scipy.stats as st

        out["scipy.stats.entropy"] = {
            "entropy": lambda p, base, axis: st.entropy(p, base=base, axis=axis),
            "kl_divergence": lambda p, q, base, axis: st.entropy(p, q, base=base, axis=axis),
        }
        out["scipy.special.rel_entr (sum)"] = {
            "kl_divergence": lambda p, q, base, axis: np.sum(sps.rel_entr(p, q), axis=axis) / _nats(base),
        }
        out["scipy.special.kl_div (sum)"] = {
            "kl_divergence": lambda p, q, base, axis: np.sum(sps.kl_div(p, q), axis=axis) / _nats(base),
        }
        out["scipy.special.entr (sum)"] = {
            "entropy": lambda p, base, axis: np.sum(sps.entr(p), axis=axis) / _nats(base),
        }
    except ImportError:
        pass
    try:
        import torch
        import torch.nn.functional as F

        tdt = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32,
               np.dtype(np.float16): torch.float16}

        def t_kl(p, q, base, axis):
            if base is not None:
                raise Skip
            pt, qt = torch.from_numpy(np.array(p)), torch.from_numpy(np.array(q))
            return F.kl_div(torch.log(qt), pt, reduction="none").sum(dim=axis).numpy()

        def t_kl_logtarget(p, q, base, axis):
            if base is not None:
                raise Skip
            pt, qt = torch.from_numpy(np.array(p)), torch.from_numpy(np.array(q))
            return F.kl_div(torch.log(qt), torch.log(pt), reduction="none", log_target=True).sum(dim=axis).numpy()

        def t_ent(p, base, axis):
            if base is not None:
                raise Skip
            return torch.distributions.Categorical(probs=torch.from_numpy(np.moveaxis(np.array(p), axis, -1)),
                                                   validate_args=False).entropy().numpy()

        del tdt
        out["torch.nn.functional.kl_div"] = {"kl_divergence": t_kl}
        out["torch kl_div(log_target=True)"] = {"kl_divergence": t_kl_logtarget}
        out["torch Categorical.entropy"] = {"entropy": t_ent}
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import optax

        def o_kl(p, q, base, axis):
            if base is not None or axis not in (-1, p.ndim - 1):
                raise Skip
            return np.asarray(optax.kl_divergence(jnp.log(jnp.asarray(q)), jnp.asarray(p)))

        def o_kl_log(p, q, base, axis):
            if base is not None or axis not in (-1, p.ndim - 1):
                raise Skip
            with np.errstate(divide="ignore"):
                lp = np.log(p)
            return np.asarray(optax.losses.kl_divergence_with_log_targets(jnp.log(jnp.asarray(q)), jnp.asarray(lp)))

        out["optax.kl_divergence"] = {"kl_divergence": o_kl}
        out["optax.losses.kl_divergence_with_log_targets"] = {"kl_divergence": o_kl_log}
    except ImportError:
        pass
    # the article's identity, evaluated with crossent's own accurate pieces: the cancellation
    # alone, no sloppy arithmetic
    out["H(p,q) - H(p,p) (crossent parts)"] = {
        "kl_divergence": lambda p, q, base, axis: (cpmf.cross_entropy_pmf(p, q, base=base, axis=axis)
                                                  - cpmf.entropy(p, base=base, axis=axis)),
    }
    return out


def run(size="ci", dtypes=("float64", "float32"), seed=0):
    impls = {"crossent": {f: (lambda f: (lambda *a, base, axis: getattr(cpmf, f)(*a, base=base, axis=axis)))(f)
                          for f in corpus.FUNCTIONS}}
    impls.update(peers())
    rows = []
    for dt in dtypes:
        for fn in corpus.FUNCTIONS:
            errs = {name: [] for name in impls}
            for case in corpus.cases(size=size, seed=seed, dtype=dt, function=fn):
                with mpmath.workprec(256):  # the oracle builds exact mpf values in this context
                    exact = np.asarray(getattr(ref, fn)(*case.args, exact=True, **case.kwargs),
                                       dtype=object).reshape(-1)
                for name, fns in impls.items():
                    if fn not in fns:
                        continue
                    try:
                        with np.errstate(all="ignore"):
                            got = np.asarray(fns[fn](*case.args, base=case.base, axis=case.axis))
                    except Skip:
                        continue
                    got = got.astype(dt).reshape(-1)  # a peer returning wider floats is rounded once
                    errs[name].append(ulp_error(got, exact, dt))
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
