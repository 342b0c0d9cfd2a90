"""``crossent accuracy``: the ULP sweep of crossent (and its peers) against the oracle.

Every function of the softmax family and of the classification loss is run on the adversarial
corpus (:mod:`crossent.corpus.logits`), and the PMF functions on :mod:`crossent.corpus.pmf`;
each output is compared with the exact value that :mod:`crossent.reference` computes from the
same input floats, in ULPs of the output format (:func:`crossent.ulp.ulp_error`). The bound
each result is judged against comes from the accuracy table :mod:`crossent._bounds`; nothing
here states a number.

The same measurement code serves the precision tests (``tests/test_precision_*.py``): they call
:func:`measure` case by case and assert on the :class:`Measurement` it returns.

Conditional bounds (a :class:`~crossent._bounds.Bound` with a ``condition``) are implemented
here, next to their use, in :func:`_logsumexp_condition` and :func:`_grad_condition`: where
the condition holds the output is judged in ULPs of its exact value; where it does not, the
table's alternative absolute bound is checked instead (``Measurement.alt_ratio``) and the
output is left out of the max/median ULP statistics.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass

import numpy as np

from crossent._bounds import BOUNDS, bound

__all__ = [
    "SOFTMAX_FUNCTIONS",
    "LOSS_FUNCTIONS",
    "PMF_FUNCTIONS",
    "FUNCTIONS",
    "Measurement",
    "measure",
    "exact_values",
    "computed_values",
    "summarize",
    "run_sweep",
    "add_arguments",
    "main_from_args",
]

SOFTMAX_FUNCTIONS = ("logsumexp", "log_softmax", "softmax")
LOSS_FUNCTIONS = ("cross_entropy", "cross_entropy_mean", "cross_entropy_grad")
PMF_FUNCTIONS = ("entropy", "cross_entropy_pmf", "kl_divergence")
FUNCTIONS = SOFTMAX_FUNCTIONS + LOSS_FUNCTIONS + PMF_FUNCTIONS
DTYPES = ("float64", "float32", "float16")
PEERS = ("pytorch", "jax", "scipy")
_REDUCTIONS = ("mean", "sum")  # the two outputs of "cross_entropy_mean" per case


class Unsupported(Exception):
    """An implementation has no equivalent of this function/option combination."""


# ---------------------------------------------------------------------------------------
# evaluation


def computed_values(impl, function: str, case) -> np.ndarray:
    """Run ``function`` of ``impl`` (the crossent module, a peer adapter or a test double)
    on ``case``; a flat array of the outputs, in the order of :func:`exact_values`.

    Raises :class:`Unsupported` when ``impl`` cannot express the case.
    """
    if function in PMF_FUNCTIONS:
        return np.asarray(getattr(impl, function)(*case.args, **case.kwargs)).reshape(-1)
    x, t = case.logits, case.target
    if function in SOFTMAX_FUNCTIONS:
        out = getattr(impl, function)(x, axis=case.axis)
        return np.asarray(out).reshape(-1)
    if function == "cross_entropy":
        out = impl.cross_entropy(x, t, **case.loss_options("none"))
        return np.asarray(out).reshape(-1)
    if function == "cross_entropy_mean":
        vals = [impl.cross_entropy(x, t, **case.loss_options(r)) for r in _REDUCTIONS]
        return np.stack([np.asarray(v) for v in vals]).reshape(-1)
    if function == "cross_entropy_grad":
        _loss, g = impl.cross_entropy_value_and_grad(x, t, **case.options)
        return np.asarray(g).reshape(-1)
    if function in PMF_FUNCTIONS:
        return np.asarray(getattr(impl, function)(*case.args, **case.kwargs)).reshape(-1)
    raise ValueError(f"function: unknown function {function!r}")


def exact_values(function: str, case) -> np.ndarray:
    """The exact outputs (object array of ``mpf``) from ``crossent.reference``, flat."""
    from crossent import reference as ref

    if function in PMF_FUNCTIONS:
        out = getattr(ref, function)(*case.args, exact=True, **case.kwargs)
        arr = np.empty(np.shape(out), dtype=object)
        arr[...] = out
        return arr.reshape(-1)
    x, t = case.logits, case.target
    if function in SOFTMAX_FUNCTIONS:
        out = getattr(ref, function)(x, axis=case.axis, exact=True)
    elif function == "cross_entropy":
        out = ref.cross_entropy(x, t, exact=True, **case.loss_options("none"))
    elif function == "cross_entropy_mean":
        out = [ref.cross_entropy(x, t, exact=True, **case.loss_options(r)) for r in _REDUCTIONS]
    elif function == "cross_entropy_grad":
        out = ref.cross_entropy_value_and_grad(x, t, exact=True, **case.options)[1]
    elif function in PMF_FUNCTIONS:
        out = getattr(ref, function)(*case.args, exact=True, **case.kwargs)
    else:
        raise ValueError(f"function: unknown function {function!r}")
    arr = np.empty(np.shape(out) if not isinstance(out, list) else (len(out),), dtype=object)
    if isinstance(out, list):
        arr[:] = out
    else:
        arr[...] = out
    return arr.reshape(-1)


# ---------------------------------------------------------------------------------------
# conditions (next to their use: see the Bound.condition strings in crossent._bounds)


def _logsumexp_condition(case, exact, dtype):
    """``BOUNDS["logsumexp"]`` condition: ``max(x) >= 0`` or ``|logsumexp(x)| >= L/3`` with
    ``L = logsumexp(x) - max(x) = log S``.

    Where it fails, ``max(x) < 0`` and ``log S`` cancel, and the table bounds the *absolute*
    error by ``max_ulp * ulp(L)`` (docs/accuracy.md#logsumexp: the error is at most
    ``1/2 ulp(result) + 0.7501 u L``). Returns ``(held, scale)``: the mask of outputs where
    the ULP bound applies, and for the others the power of two ``ulp(L)`` that the absolute
    error is measured in.
    """
    import mpmath

    from crossent.ulp import ulp

    with np.errstate(invalid="ignore"):
        m = np.max(case.logits.astype(np.float64), axis=case.axis).reshape(-1)
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    for i, e in enumerate(exact):
        if not _finite(e) or not np.isfinite(m[i]) or m[i] >= 0.0:
            continue
        with mpmath.mp.workprec(256):
            L = mpmath.mpf(e) - mpmath.mpf(float(m[i]))
        if abs(e) >= L / 3:
            continue
        held[i] = False
        scale[i] = ulp(L, dtype)
    return held, scale


def _grad_condition(case, exact, dtype):
    """``BOUNDS["cross_entropy_grad"]`` condition: one-hot targets.

    With soft targets (probabilities, or label smoothing) the gradient entry of item n,
    class i is ``s_n (A_n p_i - B_ni)`` with ``A_n = sum_c w_c t_nc``, ``B_ni = w_i t_ni``
    and ``s_n`` the reduction's scale (1 for "sum"; for "mean" 1/sum of w[y_n] over kept
    items with labels, 1/N with probabilities); the table's absolute bound
    ``max_ulp * (ulp(p_i) + ulp(t_i))`` is applied to the two terms as they enter that
    difference, ``max_ulp * (ulp(s A p_i) + ulp(s B_i))`` (with w = 1, s = 1 this is the
    table's statement). Returns ``(held, scale)`` as :func:`_logsumexp_condition`.
    """
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    if case.one_hot:
        return held, scale
    import mpmath

    from crossent import reference as ref
    from crossent.ulp import ulp

    ax = case.axis % case.logits.ndim
    x = np.moveaxis(case.logits, ax, -1)
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    p = np.moveaxis(ref.softmax(case.logits, axis=case.axis, exact=True), ax, -1).reshape(-1, c)
    w = [1] if case.weight is None else [mpmath.mpf(float(v)) for v in case.weight]
    wc = (lambda i: w[0]) if case.weight is None else (lambda i: w[i])
    with mpmath.mp.workprec(256):
        eps = mpmath.mpf(float(case.label_smoothing))
        if case.probability_target:
            # smoothing applies to probability targets too: t' = (1 - eps) t + eps / C
            tt = np.moveaxis(case.target, ax, -1).reshape(-1, c)
            T = [[(1 - eps) * mpmath.mpf(float(v)) + eps / c for v in row] for row in tt]
            keep = [True] * len(T)
            denom = mpmath.mpf(len(T))
        else:
            y = case.target.reshape(-1)
            T, keep = [], []
            denom = mpmath.mpf(0)
            for yn in y:
                if yn == case.ignore_index:
                    T.append([mpmath.mpf(0)] * c)
                    keep.append(False)
                    continue
                row = [eps / c] * c
                row[int(yn)] = (1 - eps) + eps / c
                T.append(row)
                keep.append(True)
                denom += wc(int(yn))
        if case.reduction != "sum" and denom == 0:
            return held, scale  # every item ignored: the gradient is 0 (or nan), judged in ULPs
        s = 1 if case.reduction == "sum" else 1 / denom
        grad_rows = scale.reshape(rows.shape)
        held2 = held.reshape(rows.shape)
        for n in range(rows.shape[0]):
            if not keep[n]:
                continue  # an ignored item's gradient is exactly 0: judged in ULPs
            A = mpmath.fsum(wc(i) * T[n][i] for i in range(c))
            for i in range(c):
                a = s * A * p[n, i]
                b = s * wc(i) * T[n][i]
                if not (_finite(a) and _finite(b)):
                    continue  # a nan/inf entry is judged in ULPs (both must agree exactly)
                held2[n, i] = False
                grad_rows[n, i] = ulp(a, dtype) + ulp(b, dtype)
    # entries come back in the layout with the class axis last: restore the case's layout
    if ax != case.logits.ndim - 1:
        shp = x.shape
        held = np.moveaxis(held.reshape(shp), -1, ax).reshape(-1)
        scale = np.moveaxis(scale.reshape(shp), -1, ax).reshape(-1)
    return held, scale


_CONDITIONS = {
    "logsumexp": _logsumexp_condition,
    "cross_entropy_grad": _grad_condition,
}


def _finite(e) -> bool:
    import mpmath

    return bool(mpmath.isfinite(e))


# ---------------------------------------------------------------------------------------
# measurement


@dataclass
class Measurement:
    """ULP errors of one implementation on one case for one function.

    Attributes
    ----------
    errors : ndarray of float64
        ``ulp_error(computed, exact, dtype)`` for every output.
    held : ndarray of bool
        Where the bound's condition holds (all True for unconditional bounds); the ULP
        statistics are over these outputs.
    alt_ratio : ndarray of float64
        For outputs where the condition fails: the absolute error divided by the table's
        alternative scale (compare with ``max_ulp``); nan where the condition holds.
    dtype_ok : bool
        The implementation returned the input's dtype.
    """

    function: str
    case: str
    dtype: str
    errors: np.ndarray
    held: np.ndarray
    alt_ratio: np.ndarray
    dtype_ok: bool = True

    @property
    def max_ulp(self) -> float:
        e = self.errors[self.held]
        return float(e.max()) if e.size else 0.0

    @property
    def max_alt(self) -> float:
        a = self.alt_ratio[~self.held]
        return float(a.max()) if a.size else 0.0

    def worst(self, k: int = 3) -> list:
        """The ``k`` worst output indices with their errors (for failure messages)."""
        e = np.where(self.held, self.errors, -1.0)
        idx = np.argsort(e)[::-1][:k]
        return [(int(i), float(self.errors[i])) for i in idx]


def measure(impl, function: str, case, exact=None) -> Measurement:
    """Measure ``impl`` on ``case`` for ``function`` against the oracle.

    ``exact`` may be passed to reuse oracle values (from :func:`exact_values`). Raises
    :class:`Unsupported` if ``impl`` cannot express the case.
    """
    from crossent.ulp import ulp, ulp_error

    dtype = np.dtype(case.dtype).name
    got = computed_values(impl, function, case)
    dtype_ok = got.dtype == case.dtype
    if exact is None:
        exact = exact_values(function, case)
    if got.shape != exact.shape:
        raise AssertionError(
            f"{function} on {case.name}: {got.size} outputs, the oracle has {exact.size}"
        )
    exact = _tame(exact, dtype)
    if not dtype_ok:
        # judge the value a user would get by casting (peers that widen float16)
        got = got.astype(case.dtype) if got.dtype.kind == "f" else got
    errors = np.asarray(ulp_error(got, exact, dtype), dtype=np.float64)
    held = np.ones(errors.shape, dtype=bool)
    alt = np.full(errors.shape, np.nan)
    cond = _CONDITIONS.get(function)
    if cond is not None and BOUNDS[function][dtype].condition is not None:
        held, scale = cond(case, exact, dtype)
        for i in np.flatnonzero(~held):
            if not math.isfinite(errors[i]):
                alt[i] = errors[i]
            else:
                # |c - e| = errors * ulp(e) exactly up to the float rounding of errors
                alt[i] = float(errors[i] * ulp(exact[i], dtype) / scale[i])
    return Measurement(function, case.name, dtype, errors, held, alt, dtype_ok)


def _tame(exact: np.ndarray, dtype: str) -> np.ndarray:
    """Replace exact values far below the smallest subnormal by ``±2**(qmin - 61)``.

    The oracle can return values such as ``exp(-1e284)`` (softmax of a row offset by
    1e300 with a spread of a few ulp); their ULP in the format is the smallest subnormal
    ``2**qmin``, and moving the exact value by less than ``2**(qmin - 60)`` changes any
    ULP error by less than ``2**-60``. The replacement keeps ``ulp_error`` from building
    integers with astronomically many bits when it subtracts them exactly.
    """
    import mpmath

    from crossent.ulp import float_format

    limit = float_format(dtype).qmin - 60
    out = None
    for i, e in enumerate(exact):
        t = getattr(e, "_mpf_", None)
        if t is None or not t[1]:
            continue
        sign, _man, exp, bc = t
        if exp + bc < limit:
            if out is None:
                out = exact.copy()
            out[i] = mpmath.mpf((sign, 1, limit - 1, 1))
    return exact if out is None else out


def summarize(measurements, function: str, dtype, implementation: str = "crossent") -> dict:
    """One row of the sweep: max/median ULP, correctly rounded fraction, pass/fail."""
    dtype = np.dtype(dtype).name
    b = bound(function, dtype)
    ms = list(measurements)
    if ms:
        errs = np.concatenate([m.errors[m.held] for m in ms])
        alts = np.concatenate([m.alt_ratio[~m.held] for m in ms])
        all_errs = np.concatenate([m.errors for m in ms])
    else:
        errs = alts = all_errs = np.empty(0)
    n = int(all_errs.size)
    max_ulp = float(errs.max()) if errs.size else float("nan")
    median_ulp = float(np.median(errs)) if errs.size else float("nan")
    frac = float(np.mean(all_errs <= 0.5)) if n else float("nan")
    max_alt = float(alts.max()) if alts.size else None
    passed = bool(n) and max_ulp <= b.max_ulp and all(m.dtype_ok for m in ms)
    if max_alt is not None:
        passed = passed and max_alt <= b.max_ulp
    if b.min_correctly_rounded is not None and n:
        passed = passed and frac >= b.min_correctly_rounded
    return dict(
        function=function,
        dtype=dtype,
        implementation=implementation,
        max_ulp=max_ulp,
        median_ulp=median_ulp,
        frac_correctly_rounded=frac,
        n=n,
        n_conditional=int(alts.size),
        max_conditional=max_alt,
        cases=len(ms),
        bound=b.max_ulp,
        min_correctly_rounded=b.min_correctly_rounded,
        passed=passed,
    )


# ---------------------------------------------------------------------------------------
# peers (imported lazily; a peer that is not installed is skipped, never faked)


def _move_class_axis_to_1(case):
    ax = case.axis % case.logits.ndim
    x = np.moveaxis(case.logits, ax, 1) if case.logits.ndim > 1 else case.logits
    t = case.target
    if case.probability_target:
        t = np.moveaxis(t, ax, 1)
    elif ax != 1 and case.logits.ndim > 2:
        # labels have the logits' shape without the class axis; PyTorch wants (N, d1, ...)
        # which is the remaining axes in order: unchanged
        pass
    return np.ascontiguousarray(x), np.ascontiguousarray(t)


class _TorchPeer:
    name = "pytorch"

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F

    def _t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a))

    def _np(self, t, dtype):
        return t.detach().numpy()

    def logsumexp(self, x, axis=-1):
        return self._np(self.torch.logsumexp(self._t(x), dim=axis), x.dtype)

    def log_softmax(self, x, axis=-1):
        return self._np(self.F.log_softmax(self._t(x), dim=axis), x.dtype)

    def softmax(self, x, axis=-1):
        return self._np(self.F.softmax(self._t(x), dim=axis), x.dtype)

    def _args(self, logits, target, axis, weight):
        from types import SimpleNamespace

        case = SimpleNamespace(logits=logits, target=target, axis=axis,
                               probability_target=np.asarray(target).dtype.kind == "f")
        x, t = _move_class_axis_to_1(case)
        xt = self._t(x)
        tt = self._t(t) if case.probability_target else self._t(t.astype(np.int64))
        wt = None if weight is None else self._t(weight)
        return xt, tt, wt

    def cross_entropy(self, logits, target, *, axis=-1, weight=None, ignore_index=-100,
                      reduction="mean", label_smoothing=0.0):
        xt, tt, wt = self._args(logits, target, axis, weight)
        out = self.F.cross_entropy(xt, tt, weight=wt, ignore_index=ignore_index,
                                   reduction=reduction, label_smoothing=label_smoothing)
        if reduction == "none" and logits.ndim > 2:
            pass  # (N, d1, ...) is the labels' layout already
        return self._np(out, logits.dtype)

    def cross_entropy_value_and_grad(self, logits, target, *, axis=-1, weight=None,
                                     ignore_index=-100, reduction="mean", label_smoothing=0.0):
        xt, tt, wt = self._args(logits, target, axis, weight)
        xt = xt.clone().requires_grad_(True)
        out = self.F.cross_entropy(xt, tt, weight=wt, ignore_index=ignore_index,
                                   reduction=reduction, label_smoothing=label_smoothing)
        out.backward()
        g = xt.grad.detach().numpy()
        ax = axis % logits.ndim
        if logits.ndim > 1:
            g = np.moveaxis(g, 1, ax)
        return out.detach().numpy(), g

    # PMF functions
    def kl_divergence(self, p, q, *, base=None, axis=-1):
        if base is not None:
            raise Unsupported("base")
        qt = self._t(q)
        out = self.F.kl_div(self.torch.log(qt), self._t(p), reduction="none").sum(dim=axis)
        return self._np(out, p.dtype)

    def entropy(self, *a, **k):
        raise Unsupported("torch has no entropy of a PMF array")

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("torch has no cross-entropy of two PMF arrays")


class _JaxPeer:
    name = "jax"

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jax.scipy.special as jsp

        self.jax, self.jnp, self.jsp = jax, jnp, jsp
        try:
            import optax
        except ImportError:  # jax without optax: the softmax family only
            optax = None
        self.optax = optax

    def _a(self, x):
        return self.jnp.asarray(x)

    def logsumexp(self, x, axis=-1):
        return np.asarray(self.jsp.logsumexp(self._a(x), axis=axis))

    def log_softmax(self, x, axis=-1):
        return np.asarray(self.jax.nn.log_softmax(self._a(x), axis=axis))

    def softmax(self, x, axis=-1):
        return np.asarray(self.jax.nn.softmax(self._a(x), axis=axis))

    def _loss_fn(self, target, axis, weight, ignore_index, reduction, label_smoothing, c):
        if self.optax is None:
            raise Unsupported("optax not installed")
        if weight is not None:
            raise Unsupported("optax has no class weights")
        optax, jnp = self.optax, self.jnp
        t = np.asarray(target)
        if t.dtype.kind != "f":
            if np.any(t == ignore_index):
                raise Unsupported("optax has no ignore_index")
            if label_smoothing:
                onehot = np.moveaxis(np.eye(c, dtype=np.float64)[t], -1, axis)

                def per_item(x):
                    tt = optax.smooth_labels(jnp.asarray(onehot.astype(x.dtype)), label_smoothing)
                    return optax.softmax_cross_entropy(x, tt, axis=axis)
            else:

                def per_item(x):
                    return optax.softmax_cross_entropy_with_integer_labels(
                        x, jnp.asarray(t), axis=axis)
        else:

            def per_item(x):
                tt = jnp.asarray(t)
                if label_smoothing:
                    tt = optax.smooth_labels(tt, label_smoothing)
                return optax.softmax_cross_entropy(x, tt, axis=axis)

        if reduction == "none":
            return per_item
        if reduction == "mean":
            return lambda x: jnp.mean(per_item(x))
        return lambda x: jnp.sum(per_item(x))

    def cross_entropy(self, logits, target, *, axis=-1, weight=None, ignore_index=-100,
                      reduction="mean", label_smoothing=0.0):
        f = self._loss_fn(target, axis, weight, ignore_index, reduction, label_smoothing,
                          logits.shape[axis])
        return np.asarray(f(self._a(logits)))

    def cross_entropy_value_and_grad(self, logits, target, *, axis=-1, weight=None,
                                     ignore_index=-100, reduction="mean", label_smoothing=0.0):
        f = self._loss_fn(target, axis, weight, ignore_index, reduction, label_smoothing,
                          logits.shape[axis])
        v, g = self.jax.value_and_grad(f)(self._a(logits))
        return np.asarray(v), np.asarray(g)

    def kl_divergence(self, p, q, *, base=None, axis=-1):
        if self.optax is None or base is not None or axis not in (-1, p.ndim - 1):
            raise Unsupported("optax.kl_divergence: natural log, last axis")
        return np.asarray(self.optax.kl_divergence(self.jnp.log(self._a(q)), self._a(p)))

    def entropy(self, p, *, base=None, axis=-1):
        if base is not None:
            raise Unsupported("base")
        return np.asarray(self.jnp.sum(self.jsp.entr(self._a(p)), axis=axis))

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("jax has no cross-entropy of two PMF arrays")


class _ScipyPeer:
    name = "scipy"

    def __init__(self):
        import scipy.special
        import scipy.stats

        self.sp, self.stats = scipy.special, scipy.stats

    def logsumexp(self, x, axis=-1):
        return np.asarray(self.sp.logsumexp(x, axis=axis))

    def log_softmax(self, x, axis=-1):
        return np.asarray(self.sp.log_softmax(x, axis=axis))

    def softmax(self, x, axis=-1):
        return np.asarray(self.sp.softmax(x, axis=axis))

    def cross_entropy(self, *a, **k):
        raise Unsupported("scipy has no classification cross-entropy")

    def cross_entropy_value_and_grad(self, *a, **k):
        raise Unsupported("scipy has no gradients")

    def entropy(self, p, *, base=None, axis=-1):
        return np.asarray(self.stats.entropy(p, base=base, axis=axis))

    def kl_divergence(self, p, q, *, base=None, axis=-1):
        return np.asarray(self.stats.entropy(p, q, base=base, axis=axis))

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("scipy has no cross-entropy of two PMF arrays")


_PEER_CLASSES = {"pytorch": _TorchPeer, "jax": _JaxPeer, "scipy": _ScipyPeer}


def load_peers(names=PEERS) -> dict:
    """The installed peers as ``{name: adapter}``; missing ones are left out."""
    out = {}
    for n in names:
        try:
            out[n] = _PEER_CLASSES[n]()
        except ImportError:
            continue
    return out


# ---------------------------------------------------------------------------------------
# the sweep


def _corpus(function: str, size: str, seed: int, dtype):
    if function in PMF_FUNCTIONS:
        try:
            from crossent.corpus import pmf
        except ImportError:  # an installation without the PMF corpus: skip, say so
            return None
        return pmf.cases(size=size, seed=seed, dtype=dtype, function=function)
    from crossent.corpus import logits

    cs = logits.cases(size=size, seed=seed, dtype=dtype)
    if function in SOFTMAX_FUNCTIONS:
        cs = distinct_inputs(cs)
    return cs


def distinct_inputs(cs):
    """Cases with distinct (logits, axis): the softmax family ignores targets and options."""
    import hashlib

    seen, out = set(), []
    for c in cs:
        key = (c.logits.shape, c.axis, hashlib.sha1(np.ascontiguousarray(c.logits)).digest())
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


class _Progress:
    """``rich.progress`` when rich is importable, else a plain line on stderr."""

    def __init__(self, total: int, enabled: bool):
        self.enabled, self.total, self.done = enabled, total, 0
        self._rich = None
        if not enabled:
            return
        try:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
            self._rich.start()
            self._task = self._rich.add_task("accuracy", total=total)
        except ImportError:
            self._rich = None

    def advance(self, description: str):
        self.done += 1
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, advance=1, description=description[:48])
        elif self.done == self.total or self.done % max(1, self.total // 50) == 0:
            print(f"\raccuracy {self.done}/{self.total} {description[:48]:<48}", end="",
                  file=sys.stderr, flush=True)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
        elif self.enabled:
            print(file=sys.stderr)


def run_sweep(size: str = "ci", dtypes=DTYPES, functions=FUNCTIONS, peers=True,
              progress=True, seed: int = 0, implementations=None) -> list[dict]:
    """Measure every implementation on the corpus; one row per (function, dtype, impl).

    Parameters
    ----------
    size : {"smoke", "ci", "full"}
        Corpus size (see :func:`crossent.corpus.logits.cases`).
    dtypes, functions : iterables of str
        What to sweep. A (function, dtype) without an entry in the accuracy table is skipped.
    peers : bool or iterable of str
        Also measure the installed peers (``True``: all of PyTorch, JAX, SciPy).
    progress : bool
        Show a progress bar (rich if installed, else plain text on stderr).
    implementations : dict, optional
        ``{name: impl}`` to measure instead of ``{"crossent": crossent}``; an impl provides
        the public functions with crossent's signatures. The tests use it to check that a
        wrong implementation is reported failing.

    Returns
    -------
    list of dict
        Rows ``{function, dtype, implementation, max_ulp, median_ulp,
        frac_correctly_rounded, n, bound, passed, ...}``. Rows of peers are judged against
        crossent's bound for information; only crossent's rows decide the exit status.
    """
    if implementations is None:
        import crossent

        implementations = {"crossent": crossent}
    impls = dict(implementations)
    if peers:
        impls.update(load_peers(PEERS if peers is True else tuple(peers)))
    dtypes = [np.dtype(d).name for d in dtypes]
    for f in functions:
        if f not in FUNCTIONS:
            raise ValueError(f"functions: unknown function {f!r}; known: {FUNCTIONS}")

    plan = []
    skipped_pmf = False
    for f in functions:
        for dt in dtypes:
            if dt not in BOUNDS[f]:
                continue
            cs = _corpus(f, size, seed, dt)
            if cs is None:
                skipped_pmf = True
                continue
            plan.append((f, dt, cs))
    if skipped_pmf:
        print("accuracy: crossent.corpus.pmf is not available; PMF functions skipped",
              file=sys.stderr)

    bar = _Progress(sum(len(cs) for _f, _d, cs in plan), progress)
    results: dict = {}
    try:
        for f, dt, cs in plan:
            for case in cs:
                bar.advance(f"{f} {dt} {case.name}")
                try:
                    exact = exact_values(f, case)
                except Exception as exc:  # the oracle failed: nothing can be judged
                    results.setdefault((f, dt, "oracle-errors"), []).append(
                        f"{case.name}: {type(exc).__name__}: {exc}"[:200])
                    continue
                for name, impl in impls.items():
                    try:
                        m = measure(impl, f, case, exact=exact)
                    except Unsupported:
                        continue
                    except Exception as exc:  # a peer that crashes on a case: skip the case
                        if name in implementations:
                            raise
                        results.setdefault((f, dt, name, "errors"), []).append(
                            f"{case.name}: {type(exc).__name__}")
                        continue
                    results.setdefault((f, dt, name), []).append(m)
    finally:
        bar.close()

    rows = []
    for f, dt, _cs in plan:
        for name in impls:
            ms = results.get((f, dt, name))
            if not ms and not (name in implementations and results.get((f, dt, "oracle-errors"))):
                continue
            row = summarize(ms, f, dt, implementation=name)
            row["peer"] = name not in implementations
            row["case_errors"] = results.get((f, dt, name, "errors"), [])
            # cases the oracle could not evaluate are unverified: the row cannot pass
            row["oracle_errors"] = results.get((f, dt, "oracle-errors"), [])
            if row["oracle_errors"]:
                row["passed"] = False
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------
# CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``crossent accuracy``."""
    parser.add_argument("--size", choices=("smoke", "ci", "full"), default="ci",
                        help="corpus size (default: ci; full has K up to 1e6)")
    parser.add_argument("--dtype", action="append", choices=DTYPES, default=None,
                        help="restrict to this dtype (repeatable; default: all)")
    parser.add_argument("--function", action="append", choices=FUNCTIONS, default=None,
                        help="restrict to this function (repeatable; default: all)")
    parser.add_argument("--no-peers", action="store_true",
                        help="do not measure PyTorch, JAX and SciPy")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the rows as JSON to FILE")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _fmt_ulp(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf"
    if v >= 1e6:
        return f"{v:.1e}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}"


def format_table(rows) -> tuple[list[str], list[list[str]]]:
    """Header and cells: function x dtype, crossent then each peer (max / median ULP)."""
    own = [r for r in rows if not r.get("peer")]
    peer_names = []
    for r in rows:
        if r.get("peer") and r["implementation"] not in peer_names:
            peer_names.append(r["implementation"])
    by = {(r["function"], r["dtype"], r["implementation"]): r for r in rows}
    header = ["function", "dtype", "bound", "crossent max/med", "CR %", "pass"]
    header += [f"{p} max/med" for p in peer_names]
    cells = []
    keys = []
    for r in rows:
        k = (r["function"], r["dtype"])
        if k not in keys:
            keys.append(k)
    for f, dt in keys:
        mine = [r for r in own if (r["function"], r["dtype"]) == (f, dt)]
        b = bound(f, dt)
        line = [f, dt, f"{_fmt_ulp(b.max_ulp)}" + (" *" if b.condition else "")]
        if mine:
            r = mine[0]
            line += [f"{_fmt_ulp(r['max_ulp'])} / {_fmt_ulp(r['median_ulp'])}",
                     f"{100 * r['frac_correctly_rounded']:.2f}",
                     "ok" if r["passed"] else "FAIL"]
        else:
            line += ["-", "-", "-"]
        for p in peer_names:
            r = by.get((f, dt, p))
            line.append("-" if r is None else
                        f"{_fmt_ulp(r['max_ulp'])} / {_fmt_ulp(r['median_ulp'])}")
        cells.append(line)
    return header, cells


def print_table(rows, file=None) -> None:
    header, cells = format_table(rows)
    note = ("ULP errors against crossent.reference on the adversarial corpus; bound from "
            "crossent._bounds (* conditional: outputs outside the condition are checked "
            "against the stated absolute bound instead); CR = correctly rounded outputs. "
            "Peers are measured on the cases they can express.")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="crossent accuracy", caption=note)
        for h in header:
            t.add_column(h, justify="left" if h in ("function", "dtype") else "right")
        for line in cells:
            style = "red" if "FAIL" in line else None
            t.add_row(*line, style=style)
        Console(file=file).print(t)
        return
    except ImportError:
        pass
    out = file or sys.stdout
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)), file=out)
    print(note, file=out)


def main_from_args(args) -> int:
    """Run ``crossent accuracy``; 0 when every crossent row meets its bound, else 1."""
    rows = run_sweep(
        size=args.size,
        dtypes=args.dtype or DTYPES,
        functions=args.function or FUNCTIONS,
        peers=not args.no_peers,
        progress=not args.no_progress,
        seed=args.seed,
    )
    print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)
    failed = [r for r in rows if not r.get("peer") and not r["passed"]]
    for r in failed:
        for msg in r.get("oracle_errors", []):
            print(f"ORACLE ERROR {r['function']} {r['dtype']} {msg}", file=sys.stderr)
        print(f"FAIL {r['function']} {r['dtype']}: max {r['max_ulp']} ulp, "
              f"{100 * r['frac_correctly_rounded']:.3f}% correctly rounded (bound "
              f"{r['bound']} ulp, {r['min_correctly_rounded']})", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:  # pragma: no cover - `python -m crossent._accuracy`
    p = argparse.ArgumentParser(prog="crossent accuracy", description=__doc__.split("\n")[0])
    add_arguments(p)
    return main_from_args(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
