"""Claim 11: the sigmoid cross-entropy is the 2-class softmax cross-entropy; its gradient is
σ(x) − t; the kernel's form is a sum of two non-negative terms equal to PyTorch's form.

Claim
    With σ(x) = 1/(1 + e^{−x}) and softplus(x) = log(1 + e^x):

    1. −t log σ(x) − (1 − t) log(1 − σ(x)) is the softmax cross-entropy of the 2-class logits
       (x, 0) against the target (t, 1 − t);
    2. −log σ(x) = softplus(−x), −log(1 − σ(x)) = softplus(x), and
       softplus(x) = max(x, 0) + log(1 + e^{−|x|}) on both signs of x;
    3. with A = w p t, B = w (1 − t) the loss A softplus(−x) + B softplus(x) (the kernel's form,
       two non-negative terms for t in [0, 1], w, p ≥ 0) equals PyTorch's
       w [(1 − t) x + (1 + (p − 1) t) softplus(−x)];
    4. d/dx [A softplus(−x) + B softplus(x)] = B σ(x) − A σ(−x), which is σ(x) − t for
       w = p = 1; σ(−x) = 1 − σ(x) and σ(x) = e^{x}/(1 + e^{x}) (the kernel's σ from e^{−|x|}).

Source
    PyTorch's documentation of ``BCEWithLogitsLoss`` (the loss with ``pos_weight``);
    docs/binary.md.

Justifies
    ``crossent.kernels.binary``: ``_bce_one`` (A softplus(−x) + B softplus(x)),
    ``weighted_softplus`` (max(x, 0) + log1p(e^{−|x|})), ``bce_grad_rows`` (B σ(x) − A σ(−x)).

Scope
    Real x (both signs separately for the |x| form), t, w, p symbols; finite values.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

x = sp.Symbol("x", real=True)
xp = sp.Symbol("x_p", positive=True)  # x > 0
t, w, p = sp.symbols("t w p", nonnegative=True)


def sigma(v):
    return 1 / (1 + sp.exp(-v))


def softplus(v):
    return sp.log(1 + sp.exp(v))


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 11: sigmoid cross-entropy",
        claim="BCE = 2-class softmax CE; gradient σ(x) − t; A softplus(−x) + B softplus(x) = "
              "PyTorch's (1 − t) x + (1 + (p − 1) t) softplus(−x)",
        source="PyTorch BCEWithLogitsLoss; docs/binary.md",
        justifies="crossent.kernels.binary: _bce_one, weighted_softplus, bce_grad_rows",
        scope="real x, t, w, p; the |x| form for x > 0 and x < 0 separately",
    )
    z = sp.exp(x) + sp.exp(0)
    d.eq("softmax((x, 0))_1 = σ(x)", sp.exp(x) / z, sigma(x),
         because="divide numerator and denominator by e^x")
    d.eq("softmax((x, 0))_2 = 1 − σ(x) = σ(−x)", 1 / z, sigma(-x))
    d.eq("1 − σ(x) = σ(−x)", 1 - sigma(x), sigma(-x))
    d.eq("softplus(x) − softplus(−x) = x", sp.expand_log(sp.log((1 + sp.exp(x)) / (1 + sp.exp(-x))), force=True),
         x, because="(1 + e^x)/(1 + e^{−x}) = e^x")
    ce2 = -t * (x - sp.log(z)) - (1 - t) * (0 - sp.log(z))
    d.eq("2-class softmax CE = t softplus(−x) + (1 − t) softplus(x) (the added term is 0 by the previous step)",
         ce2, t * softplus(-x) + (1 - t) * softplus(x) + t * (softplus(x) - softplus(-x) - x),
         because="−log softmax_c = log(e^x + 1) − z_c")
    d.eq("−log σ(x) = softplus(−x)", -sp.log(sigma(x)), softplus(-x),
         because="log(1/a) = −log a, a > 0")
    d.eq("−log(1 − σ(x)) = softplus(x)", -sp.log(sigma(-x)), softplus(x))
    d.eq("softplus(x) = x + log(1 + e^{−x}) for x > 0 (max(x, 0) = x, |x| = x)",
         softplus(xp), xp + sp.log(1 + sp.exp(-xp)),
         because="1 + e^x = e^x (1 + e^{−x})")
    d.eq("softplus(−x) = 0 + log(1 + e^{−x}) for x > 0 (the negative side: max = 0, |−x| = x)",
         softplus(-xp), sp.log(1 + sp.exp(-xp)))
    A = w * p * t
    B = w * (1 - t)
    kernel = A * softplus(-x) + B * softplus(x)
    torch = w * ((1 - t) * x + (1 + (p - 1) * t) * softplus(-x))
    d.eq("kernel form = PyTorch's form (softplus(x) = x + softplus(−x))",
         kernel.subs(softplus(x), x + softplus(-x)), torch)
    d.nonneg("A = w p t ≥ 0", A)
    d.nonneg("softplus(x) ≥ 0", softplus(x), because="1 + e^x ≥ 1")
    d.eq("d/dx softplus(x) = σ(x)", sp.diff(softplus(x), x), sigma(x))
    d.eq("d/dx kernel form = B σ(x) − A σ(−x)", sp.diff(kernel, x), B * sigma(x) - A * sigma(-x))
    d.eq("w = p = 1: the gradient is σ(x) − t",
         (B * sigma(x) - A * sigma(-x)).subs({w: 1, p: 1}), sigma(x) - t)
    d.eq("σ(x) = 1/(1 + e^{−x}) = e^x/(1 + e^x) (the kernel's σ(x), σ(−x) from e^{−|x|})",
         sigma(x), sp.exp(x) / (1 + sp.exp(x)))
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
