"""The accuracy table: the one place where crossent states its error bounds.

Every public function has a bound in ULPs of the *output* format, per dtype, measured as
``crossent.ulp_error(computed, exact, dtype)`` with ``exact`` the value that
``crossent.reference`` computes from the exact input floats. The precision tests
(``tests/test_precision_*.py``), ``crossent accuracy`` and the documentation
(``docs/accuracy.md``) all read this table; nothing else states a bound.

``max_ulp``
    the largest ULP error allowed for any output of the adversarial corpus.
``min_correctly_rounded``
    the fraction of outputs that must be correctly rounded (ULP error <= 0.5) where the
    analysis says "correctly rounded in practice" (float32/float16 computed in float64).
``condition``
    when the bound only holds under a condition, the condition in words; the tests only
    apply the bound where the condition holds and the docs print it next to the bound.
``analysis``
    the section of ``docs/accuracy.md`` that derives the bound.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bound", "BOUNDS", "bound"]


@dataclass(frozen=True)
class Bound:
    max_ulp: float
    min_correctly_rounded: float | None = None
    condition: str | None = None
    analysis: str = ""


_SOFT_GRAD_NARROW = (
    "one-hot targets (integer labels without label smoothing); with soft targets the entry "
    "A p_i - a_i is computed in float64 and rounded once, and the bound is 1 ulp(A p_i) + "
    "1 ulp(a_i) absolute where the two terms cancel"
)

_F32 = Bound(max_ulp=1.0, min_correctly_rounded=0.999, analysis="narrow-formats")
_F16 = Bound(max_ulp=1.0, min_correctly_rounded=0.999, analysis="narrow-formats")

BOUNDS: dict[str, dict[str, Bound]] = {
    "logsumexp": {
        "float64": Bound(
            max_ulp=3.0,
            condition="max(x) >= 0 or |logsumexp(x)| >= L/3, where L = logsumexp(x) - max(x) "
            "= log(sum exp(x - max)); otherwise max(x) and L cancel and the absolute error is "
            "at most 3 ulp(L)",
            analysis="logsumexp",
        ),
        "float32": _F32,
        "float16": _F16,
    },
    "log_softmax": {"float64": Bound(3.0, analysis="log-softmax"), "float32": _F32, "float16": _F16},
    "softmax": {"float64": Bound(3.0, analysis="softmax"), "float32": _F32, "float16": _F16},
    "cross_entropy": {
        "float64": Bound(3.0, analysis="loss"),
        "float32": _F32,
        "float16": _F16,
    },
    "cross_entropy_mean": {
        "float64": Bound(3.0, analysis="reductions"),
        "float32": _F32,
        "float16": _F16,
    },
    "cross_entropy_grad": {
        "float64": Bound(
            4.0,
            condition="one-hot targets (integer labels without label smoothing); with soft "
            "targets the entry p_i - t_i is ill-conditioned where p_i ~ t_i and the bound is "
            "4 ulp(p_i) + 4 ulp(t_i) absolute",
            analysis="gradient",
        ),
        # computed in float64 and rounded once: correctly rounded unless A*p_i and a_i cancel
        # to below the float64 error of the two terms
        "float32": Bound(1.0, 0.999, condition=_SOFT_GRAD_NARROW, analysis="narrow-formats"),
        "float16": Bound(1.0, 0.999, condition=_SOFT_GRAD_NARROW, analysis="narrow-formats"),
    },
    "entropy": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16},
    "cross_entropy_pmf": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16},
    "kl_divergence": {
        "float64": Bound(
            4.0,
            condition="sum_k (p_k - q_k) does not cancel most of sum_k T_k (always true for "
            "p and q that each sum to 1 within rounding); see the analysis",
            analysis="kl",
        ),
        "float32": _F32,
        "float16": _F16,
    },
    "categorical_log_likelihood": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16},
}


def bound(function: str, dtype) -> Bound:
    """The stated bound of ``function`` for outputs of ``dtype``."""
    import numpy as np

    return BOUNDS[function][np.dtype(dtype).name]
