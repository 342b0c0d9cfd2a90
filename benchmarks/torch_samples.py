"""PyTorch's own sample inputs of ``nn.functional.cross_entropy`` run through crossent.

Iterates the OpInfo entries of ``torch.testing._internal.common_methods_invocations.op_db``
named ``nn.functional.cross_entropy`` and the ModuleInfo inputs of ``nn.CrossEntropyLoss``
(``common_modules.module_db``), CPU, float32 and float64 (PyTorch's ``test_nn`` cases are
not run), calls ``crossent.cross_entropy`` on the same arrays (class axis 1, or 0 for an
unbatched 1-D input) and ``torch.nn.functional.cross_entropy``, and counts:

* ``agree``: same values (nans and infinities at the same places; finite values within
  ``rtol`` = 1e-5 for float32, 1e-12 for float64: PyTorch's own rounding, crossent's is a
  few ulp) and the same result shape;
* ``both raise``: PyTorch raises and crossent raises a ValueError/TypeError;
* ``differ``: anything else, listed with the sample.

The edges checked by name: probability targets with a non-default ``ignore_index``
(both raise), probability targets over zero classes (0 per item and for "sum"; PyTorch's
-0 compares equal), negative class weights (PyTorch accepts them, crossent rejects them:
documented, counted as ``differ: negative weight``).

    python benchmarks/torch_samples.py

``torch.testing._internal`` imports ``expecttest`` (``pip install expecttest``), which the
project's extras do not install: this script is run by hand, not by the tests.
"""

from __future__ import annotations

import collections
import sys

import numpy as np


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else t


def _compare(sample, dtype):
    import torch
    import torch.nn.functional as F

    import crossent

    x, (target,), kw = sample.input, sample.args, dict(sample.kwargs)
    axis = 1 if x.ndim >= 2 else 0
    ck = {k: (_np(v) if k == "weight" and v is not None else v) for k, v in kw.items()}
    neg_w = ck.get("weight") is not None and (np.asarray(ck["weight"]) < 0).any()
    try:
        want = F.cross_entropy(x, target, **kw)
        want_err = None
    except Exception as e:  # noqa: BLE001 - compared below
        want, want_err = None, e
    try:
        got = crossent.cross_entropy(_np(x), _np(target), axis=axis, **ck)
        got_err = None
    except (ValueError, TypeError) as e:
        got, got_err = None, e
    if want_err is not None and got_err is not None:
        return "both raise", None
    if got_err is not None:
        why = "negative weight" if neg_w else f"crossent raises: {got_err}"
        return "differ", why
    if want_err is not None:
        return "differ", f"PyTorch raises: {want_err}"
    w = _np(want)
    g = np.asarray(got)
    if w.shape != g.shape:
        return "differ", f"shape {g.shape} vs {w.shape}"
    rtol = 1e-5 if dtype == torch.float32 else 1e-12
    with np.errstate(invalid="ignore"):
        same = (np.array_equal(np.isnan(w), np.isnan(g))
                and np.array_equal(np.where(np.isinf(w), w, 0), np.where(np.isinf(g), g, 0)))
        fin = np.isfinite(w) & np.isfinite(g)
        close = np.allclose(g[fin], w[fin], rtol=rtol, atol=rtol * max(1.0, float(np.abs(w[fin]).max(initial=0))))
    if same and close:
        return "agree", None
    return "differ", f"values {g.ravel()[:4]} vs {w.ravel()[:4]}"


def _edges():
    """The edges of probability targets, by name: (label, outcome)."""
    import torch
    import torch.nn.functional as F

    import crossent

    out = []
    x, p = torch.zeros(3, 0, dtype=torch.float64), torch.zeros(3, 0, dtype=torch.float64)
    for red in ("none", "sum", "mean"):
        w = F.cross_entropy(x, p, reduction=red).numpy()
        g = crossent.cross_entropy(x.numpy(), p.numpy(), reduction=red)
        out.append((f"zero classes, probabilities, {red}: crossent {g!r}, PyTorch {w!r}",
                    "agree" if np.array_equal(g, w, equal_nan=True) else "differ (documented)"))
    try:
        F.cross_entropy(torch.zeros(2, 3), torch.full((2, 3), 1 / 3), ignore_index=1)
        t = "accepts"
    except RuntimeError:
        t = "raises"
    try:
        crossent.cross_entropy(np.zeros((2, 3)), np.full((2, 3), 1 / 3), ignore_index=1)
        c = "accepts"
    except ValueError:
        c = "raises"
    out.append((f"probabilities with ignore_index=1: crossent {c}, PyTorch {t}", "agree" if c == t else "differ"))
    return out


def main():
    import torch
    from torch.testing._internal.common_methods_invocations import op_db

    ops = [op for op in op_db if op.name == "nn.functional.cross_entropy"]
    counts = collections.Counter()
    reasons = collections.Counter()
    for op in ops:
        for dtype in (torch.float32, torch.float64):
            for sample in op.sample_inputs("cpu", dtype, requires_grad=False):
                kind, why = _compare(sample, dtype)
                counts[kind] += 1
                if why:
                    reasons[why[:120]] += 1
    # ModuleInfo of nn.CrossEntropyLoss: the constructor's keywords, the forward's (input, target)
    from types import SimpleNamespace

    from torch.testing._internal.common_modules import module_db

    for info in (m for m in module_db if m.module_cls is torch.nn.CrossEntropyLoss):
        for dtype in (torch.float32, torch.float64):
            for mi in info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False,
                                              training=False):
                if mi.forward_input is None or len(mi.forward_input.args) != 2:
                    continue
                x, target = mi.forward_input.args
                sample = SimpleNamespace(input=x, args=(target,), kwargs=dict(mi.constructor_input.kwargs))
                kind, why = _compare(sample, dtype)
                counts[kind] += 1
                if why:
                    reasons[why[:120]] += 1
    print(f"torch {torch.__version__}, OpInfo nn.functional.cross_entropy and ModuleInfo "
          f"nn.CrossEntropyLoss inputs (CPU, float32/float64): {sum(counts.values())} cases: "
          + ", ".join(f"{counts[k]} {k}" for k in ("agree", "both raise", "differ")))
    for why, n in reasons.most_common():
        print(f"  {n} x differ: {why}")
    for label, kind in _edges():
        print(f"  edge: {label}: {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
