"""Measurement of ULP errors against the oracle: the library under ``crossent accuracy`` and the
precision tests.

An *implementation* is any object with crossent's public functions and signatures (the
``crossent`` module itself, a peer adapter of :mod:`crossent._peers`, a test double). A *case*
is one input of the adversarial corpus (:mod:`crossent.corpus.logits` for the softmax family
and the loss, :mod:`crossent.corpus.pmf` for the PMF functions). :func:`measure` runs one
function of an implementation on one case, computes the exact outputs with
:mod:`crossent.reference` from the same input floats, and returns the ULP error of every output
(:func:`crossent.ulp.ulp_error`) as a :class:`Measurement`; :func:`summarize` turns the
measurements of one (function, dtype) into one row judged against the accuracy table.

Every bound, and every condition a bound carries, comes from :mod:`crossent._bounds`: where a
row has a condition, its ``check`` decides output by output where the condition holds; outputs
outside it are judged against the row's absolute bound instead (``Measurement.alt_ratio``) and
left out of the max/median ULP statistics. Nothing here states a number.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from crossent._bounds import BOUNDS, bound

__all__ = [
    "SOFTMAX_FUNCTIONS",
    "LOSS_FUNCTIONS",
    "PMF_FUNCTIONS",
    "DIVERGENCE_FUNCTIONS",
    "FUNCTIONS",
    "OPTION_FUNCTIONS",
    "DTYPES",
    "Unsupported",
    "Measurement",
    "cases",
    "distinct_inputs",
    "computed_values",
    "exact_values",
    "measure",
    "summarize",
    "format_ulp",
]

SOFTMAX_FUNCTIONS = ("logsumexp", "log_softmax", "softmax")
#: "cross_entropy" is the per-item loss, "cross_entropy_mean" the two reductions (mean, sum),
#: "cross_entropy_grad" the gradient of ``cross_entropy_value_and_grad``
LOSS_FUNCTIONS = ("cross_entropy", "cross_entropy_mean", "cross_entropy_grad")
PMF_FUNCTIONS = ("entropy", "cross_entropy_pmf", "kl_divergence")
#: per row of logits (``reduction="none"``), on :mod:`crossent.corpus.divergence`
DIVERGENCE_FUNCTIONS = ("kl_divergence_logits", "js_divergence_logits", "entropy_logits")
FUNCTIONS = SOFTMAX_FUNCTIONS + LOSS_FUNCTIONS + PMF_FUNCTIONS + DIVERGENCE_FUNCTIONS
#: the loss functions measured on the options corpus (:mod:`crossent.corpus.options`:
#: ``z_loss`` and ``logit_softcap`` set), each measured as the loss function it names
OPTION_FUNCTIONS = ("cross_entropy_options", "cross_entropy_options_mean",
                    "cross_entropy_options_grad")
_OPTION_BASE = dict(zip(OPTION_FUNCTIONS, LOSS_FUNCTIONS))
DTYPES = ("float64", "float32", "float16")
_REDUCTIONS = ("mean", "sum")  # the two outputs of "cross_entropy_mean" per case


def format_ulp(v, digits=None) -> str:
    """An ULP error as the tables and messages print it: ``-`` for none, ``inf``, two decimals
    below 100, an integer below 1e6, then one significant digit and an exponent; with
    ``digits``, that many significant digits (failure messages, where the exact value matters)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if math.isinf(v):
        return "inf"
    if digits is not None:
        return f"{v:.{digits}g}"
    if v >= 1e6:
        return f"{v:.1e}"
    if v >= 100:
        return f"{v:.0f}"
    return f"{v:.2f}"


class Unsupported(Exception):
    """An implementation has no equivalent of this function/option combination."""


# ---------------------------------------------------------------------------------------
# the corpus of a function


def cases(function: str, size: str = "ci", seed: int = 0, dtype="float64") -> list:
    """The corpus cases that ``function`` is measured on, in ``dtype``.

    The PMF functions take :func:`crossent.corpus.pmf.cases`; the loss functions take
    :func:`crossent.corpus.logits.cases`; the softmax family takes the logits cases with
    distinct inputs (:func:`distinct_inputs`), since it ignores targets and loss options.
    """
    if function in OPTION_FUNCTIONS:
        from crossent.corpus import options

        return options.cases(size=size, seed=seed, dtype=dtype)
    if function not in FUNCTIONS:
        raise ValueError(f"function: unknown function {function!r}; known: {FUNCTIONS}")
    if function in PMF_FUNCTIONS:
        from crossent.corpus import pmf

        return pmf.cases(size=size, seed=seed, dtype=dtype, function=function)
    if function in DIVERGENCE_FUNCTIONS:
        from crossent.corpus import divergence

        return divergence.calls(function, size="full" if size == "full" else "ci", seed=seed,
                                dtype=dtype)
    from crossent.corpus import logits

    cs = logits.cases(size=size, seed=seed, dtype=dtype)
    return distinct_inputs(cs) if function in SOFTMAX_FUNCTIONS else cs


def distinct_inputs(cs) -> list:
    """Cases with distinct (logits, axis): the softmax family ignores targets and options."""
    seen, out = set(), []
    for c in cs:
        key = (c.logits.shape, c.axis, hashlib.sha1(np.ascontiguousarray(c.logits)).digest())
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------
# evaluation


def computed_values(impl, function: str, case, reductions=_REDUCTIONS) -> np.ndarray:
    """Run ``function`` of ``impl`` on ``case``; a flat array of the outputs, in the order of
    :func:`exact_values`.

    ``reductions`` are the reductions ``"cross_entropy_mean"`` computes, one output each (both
    by default). Raises :class:`Unsupported` when ``impl`` cannot express the case.
    """
    function = _OPTION_BASE.get(function, function)
    if function in PMF_FUNCTIONS or function in DIVERGENCE_FUNCTIONS:
        return np.asarray(getattr(impl, function)(*case.args, **case.kwargs)).reshape(-1)
    x, t = case.logits, case.target
    if function in SOFTMAX_FUNCTIONS:
        out = getattr(impl, function)(x, axis=case.axis)
    elif function == "cross_entropy":
        out = impl.cross_entropy(x, t, **case.loss_options("none"))
    elif function == "cross_entropy_mean":
        vals = [impl.cross_entropy(x, t, **case.loss_options(r)) for r in reductions]
        out = np.stack([np.asarray(v) for v in vals])
    elif function == "cross_entropy_grad":
        out = impl.cross_entropy_value_and_grad(x, t, **case.options)[1]
    else:
        raise ValueError(f"function: unknown function {function!r}")
    return np.asarray(out).reshape(-1)


def exact_values(function: str, case, reductions=_REDUCTIONS) -> np.ndarray:
    """The exact outputs (object array of ``mpf``) from ``crossent.reference``, flat."""
    from crossent import reference as ref

    function = _OPTION_BASE.get(function, function)
    if function in PMF_FUNCTIONS or function in DIVERGENCE_FUNCTIONS:
        out = getattr(ref, function)(*case.args, exact=True, **case.kwargs)
    elif function in SOFTMAX_FUNCTIONS:
        out = getattr(ref, function)(case.logits, axis=case.axis, exact=True)
    elif function == "cross_entropy":
        out = ref.cross_entropy(case.logits, case.target, exact=True, **case.loss_options("none"))
    elif function == "cross_entropy_mean":
        out = [ref.cross_entropy(case.logits, case.target, exact=True, **case.loss_options(r))
               for r in reductions]
    elif function == "cross_entropy_grad":
        out = ref.cross_entropy_value_and_grad(case.logits, case.target, exact=True,
                                               **case.options)[1]
    else:
        raise ValueError(f"function: unknown function {function!r}")
    if isinstance(out, list):
        arr = np.empty(len(out), dtype=object)
        arr[:] = out
    else:
        arr = np.empty(np.shape(out), dtype=object)
        arr[...] = out
    return arr.reshape(-1)


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
    computed : ndarray
        The outputs judged (flat, in the input's dtype: a wider result is rounded to it).
    """

    function: str
    case: str
    dtype: str
    errors: np.ndarray
    held: np.ndarray
    alt_ratio: np.ndarray
    dtype_ok: bool = True
    computed: np.ndarray | None = None

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


def measure(impl, function: str, case, exact=None, reductions=_REDUCTIONS) -> Measurement:
    """Measure ``impl`` on ``case`` for ``function`` against the oracle.

    ``exact`` may be passed to reuse oracle values (from :func:`exact_values`, with the same
    ``reductions``). Raises :class:`Unsupported` if ``impl`` cannot express the case.
    """
    from crossent.ulp import ulp, ulp_error

    dtype = np.dtype(case.dtype).name
    got = computed_values(impl, function, case, reductions)
    dtype_ok = got.dtype == case.dtype
    if exact is None:
        exact = exact_values(function, case, reductions)
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
    row = BOUNDS[function].get(dtype)
    if row is not None and row.check is not None:
        held, scale = row.check(case, exact, dtype)
        for i in np.flatnonzero(~held):
            if not math.isfinite(errors[i]):
                alt[i] = errors[i]
            else:
                # |c - e| = errors * ulp(e) exactly up to the float rounding of errors
                alt[i] = float(errors[i] * ulp(exact[i], dtype) / scale[i])
    return Measurement(function, case.name, dtype, errors, held, alt, dtype_ok, got)


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


def summarize(measurements, function: str, dtype, implementation: str = "crossent",
              rounding: str = "fast") -> dict:
    """One row of the sweep: max/median ULP, correctly rounded fraction, pass/fail (against
    the bound of rounding mode ``rounding``)."""
    dtype = np.dtype(dtype).name
    b = bound(function, dtype, rounding)
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
