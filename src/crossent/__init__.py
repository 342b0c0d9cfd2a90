"""crossent: verified numerics for the cross-entropy loss.

Fast Numba kernels (``logsumexp``, ``log_softmax``, ``softmax``, ``cross_entropy`` and its
fused gradient, ``entropy``, ``cross_entropy_pmf``, ``kl_divergence``), a correctly rounded
mpmath oracle with the same signatures (``crossent.reference``), the ULP toolkit
(``ulp_error``) and SymPy proofs of the mathematics (``crossent prove``).
"""

from ._bounds import BOUNDS
from ._partial import Partial
from ._rounding import get_rounding, rounding, set_rounding
from .binary import (
    binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_value_and_grad,
    log_sigmoid,
    softplus,
)
from .divergence import (
    entropy_logits,
    entropy_logits_value_and_grad,
    js_divergence_logits,
    js_divergence_logits_value_and_grad,
    kl_divergence_logits,
    kl_divergence_logits_value_and_grad,
)
from .loss import cross_entropy, cross_entropy_value_and_grad
from .linear import linear_cross_entropy, linear_cross_entropy_value_and_grad
from .pmf import (
    categorical_log_likelihood,
    cross_entropy_pmf,
    empirical_pmf,
    entropy,
    kl_divergence,
)
from .softmax import log_softmax, logsumexp, softmax
from .ulp import round_to_dtype, ulp_error

__version__ = "0.1.0"

__all__ = [
    "BOUNDS",
    "Partial",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_value_and_grad",
    "categorical_log_likelihood",
    "cross_entropy",
    "cross_entropy_pmf",
    "cross_entropy_value_and_grad",
    "empirical_pmf",
    "entropy",
    "entropy_logits",
    "entropy_logits_value_and_grad",
    "get_rounding",
    "js_divergence_logits",
    "js_divergence_logits_value_and_grad",
    "kl_divergence",
    "linear_cross_entropy",
    "linear_cross_entropy_value_and_grad",
    "kl_divergence_logits",
    "kl_divergence_logits_value_and_grad",
    "log_sigmoid",
    "log_softmax",
    "logsumexp",
    "reference",
    "round_to_dtype",
    "rounding",
    "set_rounding",
    "softmax",
    "softplus",
    "ulp_error",
]


def __getattr__(name):  # crossent.reference is imported on first use (mpmath-heavy, not needed by kernels)
    if name == "reference":
        import importlib

        return importlib.import_module(".reference", __name__)
    raise AttributeError(f"module 'crossent' has no attribute {name!r}")
