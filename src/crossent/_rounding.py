"""The rounding mode: ``"fast"`` (the default) or ``"correct"``.

In ``"correct"`` mode the functions that support it return every float64 result correctly
rounded (the float nearest to the exact value of the function at the input floats), by Ziv's
strategy: the kernels evaluate the result as a double-double with the double-double
exponential (``crossent.kernels.exp.exp_parts_dd``) and a proven relative error bound
(:func:`relative_bound`), round it to nearest when every value within that bound rounds to the
same float (``crossent.kernels.softmax._round_cr``), and mark the row otherwise; the marked
rows are recomputed by the oracle (``crossent.reference``), which rounds correctly by
construction. A correctly rounded result is unique, so it is the same on every machine and in
every version. The mode is a :mod:`contextvars` variable, like NumPy's ``errstate``: it holds
in the current thread (a new thread starts in ``"fast"`` mode) and in the tasks of the current
``asyncio`` context. ``docs/accuracy.md`` ("Correct rounding in float64") has the
error budget and the measured cost.
"""

from __future__ import annotations

import contextlib
import contextvars

from .kernels.exp import EXP_PARTS_DD_MAX_REL_ERR

__all__ = ["MODES", "get_rounding", "set_rounding", "rounding", "relative_bound",
           "pmf_bound", "logsumexp_b_bound", "SUPPORTED"]

MODES = ("fast", "correct")

#: the public functions whose float64 results are correctly rounded in "correct" mode; every
#: other function raises NotImplementedError there rather than return a result that is not
SUPPORTED = ("logsumexp", "log_softmax", "softmax", "cross_entropy",
             "cross_entropy_value_and_grad", "binary_cross_entropy_with_logits",
             "binary_cross_entropy_with_logits_value_and_grad", "softplus",
             "log_sigmoid", "entropy_logits", "entropy_logits_value_and_grad", "entropy",
             "cross_entropy_pmf", "kl_divergence", "categorical_log_likelihood",
             "kl_divergence_logits", "kl_divergence_logits_value_and_grad",
             "js_divergence_logits", "js_divergence_logits_value_and_grad")

_MODE = contextvars.ContextVar("crossent_rounding", default="fast")

#: rows sent to the slow path, per function, since the process started (for the benchmarks
#: and the docs' measurement of how often the slow path runs): {name: [rows, slow rows]}
COUNTS: dict[str, list[int]] = {}


def _check(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"rounding mode must be one of {MODES}, got {mode!r}")
    return mode


def get_rounding() -> str:
    """The current rounding mode, ``"fast"`` or ``"correct"``.

    Returns
    -------
    str
        ``"fast"`` unless :func:`set_rounding` or :func:`rounding` changed it in this context.
    """
    return _MODE.get()


def set_rounding(mode: str) -> str:
    """Set the rounding mode of the current context (thread); return the previous one.

    Parameters
    ----------
    mode : {"fast", "correct"}
        ``"correct"``: float64 results correctly rounded (see :func:`rounding`).

    Returns
    -------
    str
        The mode that was in effect before.
    """
    old = _MODE.get()
    _MODE.set(_check(mode))
    return old


@contextlib.contextmanager
def rounding(mode: str):
    """Context manager: run a block in rounding mode ``mode``, then restore the previous mode.

    Parameters
    ----------
    mode : {"fast", "correct"}
        ``"fast"`` (the default mode): float64 results within the bounds of ``crossent.BOUNDS``
        (a few ulp). ``"correct"``: the float64 results of ``logsumexp``, ``log_softmax``,
        ``softmax``, ``cross_entropy``, ``cross_entropy_value_and_grad``,
        ``binary_cross_entropy_with_logits`` (and its ``_value_and_grad``),
        ``entropy_logits`` (and its ``_value_and_grad``), ``entropy``,
        ``cross_entropy_pmf``, ``kl_divergence``, ``categorical_log_likelihood``,
        ``kl_divergence_logits`` (and
        ``logsumexp`` with ``b``, ``softplus``, ``log_sigmoid``; ``crossent.dask`` with the
        mode of the call that builds its graph) are correctly rounded (0.5 ulp), at a
        measured cost (``docs/accuracy.md``); the other functions, and those options, raise
        ``NotImplementedError`` in this mode.
        float32/float16/bfloat16 results are the same in both modes (correctly rounded in
        practice, within 1 ulp by proof).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> with crossent.rounding("correct"):
    ...     v = crossent.logsumexp(np.array([0.5, 1.5, -2.0]))
    >>> float(v) == float(crossent.reference.logsumexp(np.array([0.5, 1.5, -2.0])))
    True
    """
    token = _MODE.set(_check(mode))
    try:
        yield
    finally:
        _MODE.reset(token)


def correct(dtype) -> bool:
    """Whether a result of this (NumPy) dtype goes through the correctly rounded path."""
    return _MODE.get() == "correct" and dtype == "float64"


def unsupported(name: str) -> None:
    """Raise for a function that has no correctly rounded path, in "correct" mode."""
    if _MODE.get() == "correct":
        raise NotImplementedError(
            f"{name} has no correctly rounded path: in rounding mode 'correct' only "
            f"{', '.join(SUPPORTED)} are available (crossent.reference gives correctly "
            "rounded values at the oracle's speed)")


def relative_bound(C: int) -> float:
    """The relative error bound of a float64 result of the correctly rounded path, before
    its last rounding, for rows of ``C`` classes (``docs/accuracy.md``): each term of the
    sum ``S`` within ``EXP_PARTS_DD_MAX_REL_ERR + 2**-85`` (the exponential, the shift's
    rounding error carried to first order), the double-double sum of ``C`` non-negative
    terms within ``C 2**-103``, ``log S`` within ``2**-94`` relative, and the double-double
    arithmetic after it within ``2**-100``; a relative error ``d`` of ``S`` is a relative
    error ``d`` of ``log S`` (``S >= 1``) and of every loss, which adds non-negative
    multiples of ``log S`` to exact non-negative terms."""
    return EXP_PARTS_DD_MAX_REL_ERR + 2.0**-85 + C * 2.0**-103 + 2.0**-94 + 2.0**-100


def entropy_relative_bound(C: int) -> float:
    """The relative error bound of ``entropy_logits``'s correctly rounded path before its
    last rounding (``docs/accuracy.md``): ``H = sum_i P_i (-log P_i)``, non-negative terms;
    ``P_i = T_i / S`` carries the errors of a term and of ``S``, ``-log P_i = (m - x_i) + log S``
    (two non-negative parts) that of ``log S``, each at most :func:`relative_bound`; the
    products, the double-double sum of ``C`` terms and the division by ``ln b`` add below
    ``C 2**-103 + 2**-98``."""
    return 3.0 * relative_bound(C) + C * 2.0**-103 + 2.0**-98


def kl_relative_bound(C: int) -> float:
    """The relative error of each ``P_i`` and ``Q_i`` (and of ``log S``) on the correctly
    rounded path of ``kl_divergence_logits``, for rows of ``C`` classes: a term
    ``T_i`` and the sum ``S`` (:func:`relative_bound` each), ``1/S`` and the product below
    ``2**-100``. The kernel adds, row by row, the errors of ``phi``, of ``delta_i`` and of
    the log ratio ``l`` to the bound it tests (``docs/accuracy.md``)."""
    return 2.0 * relative_bound(C) + 2.0**-100


def pmf_bound(K: int) -> tuple[float, float]:
    """``(rel, abs)``: the error bound of a float64 row of ``entropy``, ``cross_entropy_pmf``
    or ``kl_divergence`` on the correctly rounded path, before its last rounding, for rows of
    ``K`` classes: ``|computed - exact| <= rel A / |ln b| + abs / min(1, |ln b|)``, with
    ``A`` the float64 sum of the terms' magnitudes ``|p_k log q_k|`` (``|p_k log(p_k/q_k)|``)
    (``docs/accuracy.md``, "Correct rounding of the PMF functions"; the kernel's comment
    ``crossent.kernels.pmf``). ``rel``: the logarithm ``2**-85`` (a margin over ``_atanh_dd``'s
    ``2**-98`` and the reduction's ``2**-100``), the product
    ``p (Lh + Ll)`` ``2**-105``, the double-double sum of ``K`` terms ``K 2**-103`` (each step
    ``5.01 u**2`` of the magnitudes so far), the division by ``ln b`` ``2**-103``; times
    ``1 + (K + 4) 2**-52`` for the rounding of ``A`` and of the terms' high parts it sums.
    ``abs``: ``2**-1072`` per term (a product ``p log q`` in the subnormal range: TwoProduct's
    error term, ``p Ll`` and their sum rounded on the subnormal grid, ``3 2**-1075``) and
    ``8 2**-1072`` for the division, carried over ``|ln b| < 1``."""
    rel = (2.0**-85 + 2.0**-105 + K * 2.0**-103 + 2.0**-103) * (1.0 + (K + 4) * 2.0**-52)
    return rel, (K + 8) * 2.0**-1072


def logsumexp_b_bound(C: int) -> tuple[float, float]:
    """``(rel, abs)``: the error bound of the scaled sum ``S_c`` of ``logsumexp(x, b=...)``'s
    correctly rounded path (``crossent.kernels.scaled``), rows of ``C`` classes:
    ``|S_c - S| <= rel A + abs`` with ``A`` the float64 sum of the terms' magnitudes
    ``|b_i| e^{x_i - m}`` (scaled). ``rel``: the exponential ``EXP_PARTS_DD_MAX_REL_ERR +
    2**-85``, the product by ``b_i`` and the error terms' additions ``2**-92``, the
    double-double sum ``C 2**-103``; times ``1 + (C + 4) 2**-52`` (the rounding of ``A``) and
    ``1 + 2**-50`` (the true terms next to the computed ones). ``abs``: ``2**-1072`` per term
    (a subnormal product). The kernel turns it into a bound on ``log|S|``: an absolute error
    ``E`` of ``S`` is an absolute error ``E / |S|`` of ``log|S|``, so a cancelling sum fails the
    rounding test (``docs/accuracy.md``)."""
    rel = ((EXP_PARTS_DD_MAX_REL_ERR + 2.0**-85 + 2.0**-92 + C * 2.0**-103)
           * (1.0 + (C + 4) * 2.0**-52) * (1.0 + 2.0**-50))
    return rel, C * 2.0**-1072


def count(name: str, rows: int, slow: int) -> None:
    c = COUNTS.setdefault(name, [0, 0])
    c[0] += rows
    c[1] += slow
