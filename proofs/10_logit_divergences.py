"""Claim 10: the forms of KL(softmax(x) ‖ softmax(y)) and H(softmax(x)) that the kernels evaluate, and their gradients.

Claim
    With P = softmax(x), Q = softmax(y) and δ_i = log P_i − log Q_i = (x_i − y_i) − (lse x − lse y),
    KL(P‖Q) = Σ_i P_i δ_i = Σ_i P_i φ(δ_i), φ(t) = t + e^{−t} − 1 ≥ 0 (every term non-negative,
    zero iff δ_i = 0); φ(t) = Σ_{k≥2} (−t)^k/k!; P_i φ(δ_i) = Q_i − P_i(1 − δ_i); a common error e in
    the δ_i changes the sum by e^e − 1 − e only (second order); ∂KL/∂x_j = P_j(δ_j − KL) and
    ∂KL/∂y_j = Q_j − P_j; H(softmax x) = Σ_i P_i (lse x − x_i) and ∂H/∂x_j = P_j(−log P_j − H).

Source
    The definition of KL; the identity Σ_i Q_i = 1.

Justifies
    ``crossent.kernels.divergence`` (``kl_divergence_logits`` and its gradient).

Scope
    Real t; K = 2, 3 explicitly for the sums and the gradients.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

t = sp.Symbol("t", real=True)
tn = sp.Symbol("t", real=True, nonzero=True)  # t = 0 is the step φ(0) = 0
e = sp.Symbol("e", real=True)
u = sp.Symbol("u", positive=True)
P = sp.Symbol("P", positive=True)
Q = sp.Symbol("Q", positive=True)


def phi(v):
    return v + sp.exp(-v) - 1


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 10: KL between two softmaxes as a sum of non-negative terms",
        claim="KL(P‖Q) = Σ P_i φ(δ_i), φ(t) = t + e^{−t} − 1 ≥ 0; ∂KL/∂x_j = P_j(δ_j − KL), "
        "∂KL/∂y_j = Q_j − P_j",
        source="the definition of KL; Σ Q_i = 1",
        justifies="crossent.kernels.divergence (kl_divergence_logits and its gradient)",
        scope="real t; K = 2, 3 explicitly",
    )
    delta = sp.log(P) - sp.log(Q)
    d.eq("P e^{−δ} = Q for δ = log P − log Q", P * sp.exp(-delta), Q)
    d.eq("P φ(δ) − P δ = Q − P (so the sums agree when Σ P = Σ Q = 1)",
         P * phi(delta) - P * delta, Q - P)
    d.eq("the term for δ ≤ −2: P φ(δ) = Q − P(1 − δ)", P * phi(delta), Q - P * (1 - delta))
    d.eq("φ(t) = t² ∫_0^1 u e^{−(1−u)t} du for t ≠ 0 (Taylor's remainder)",
         phi(tn), tn**2 * sp.Integral(u * sp.exp(-(1 - u) * tn), (u, 0, 1)).doit())
    d.nonneg("the integrand t² u e^{−(1−u)t} is ≥ 0 for u in (0, 1], so φ(t) ≥ 0",
             t**2 * u * sp.exp(-(1 - u) * t))
    d.eq("φ(0) = 0", phi(sp.S.Zero), 0)
    d.eq("φ'(t) = 1 − e^{−t} (zero only at t = 0: φ(t) = 0 iff t = 0)", sp.diff(phi(t), t),
         1 - sp.exp(-t))
    d.eq("φ(t) = Σ_{k=2}^{N} (−t)^k/k! + O(t^{N+1}) (N = 12: the series the kernel sums)",
         sp.series(phi(t), t, 0, 13).removeO(),
         sum((-t) ** k / sp.factorial(k) for k in range(2, 13)))

    def rows(KK):
        xs = sp.symbols(f"x1:{KK + 1}", real=True)
        ys = sp.symbols(f"y1:{KK + 1}", real=True)
        Sx = sum(sp.exp(v) for v in xs)
        Sy = sum(sp.exp(v) for v in ys)
        Ps = [sp.exp(v) / Sx for v in xs]
        Qs = [sp.exp(v) / Sy for v in ys]
        ds = [(a - b) - (sp.log(Sx) - sp.log(Sy)) for a, b in zip(xs, ys)]
        return xs, ys, Ps, Qs, ds

    def sums(KK):
        xs, ys, Ps, Qs, ds = rows(KK)
        kl = sum(p * dd for p, dd in zip(Ps, ds))
        return [
            (sum(p * phi(dd) for p, dd in zip(Ps, ds)), kl),
            # a common shift e of every δ_i: only e^e − 1 − e (second order) is added
            (sum(p * phi(dd - e) for p, dd in zip(Ps, ds)), kl + sp.exp(e) - 1 - e),
        ]

    d.each_K("Σ P_i φ(δ_i) = Σ P_i δ_i = KL, and a common shift adds e^e − 1 − e", sums,
             Ks=(2, 3))

    def grads(KK):
        xs, ys, Ps, Qs, ds = rows(KK)
        kl = sum(p * dd for p, dd in zip(Ps, ds))
        out = []
        for j in range(KK):
            out.append((sp.diff(kl, xs[j]), Ps[j] * (ds[j] - kl)))
            out.append((sp.diff(kl, ys[j]), Qs[j] - Ps[j]))
        return out

    d.each_K("∂KL/∂x_j = P_j(δ_j − KL), ∂KL/∂y_j = Q_j − P_j", grads, Ks=(2, 3))
    def entropy(KK):
        xs, ys, Ps, Qs, ds = rows(KK)
        Sx = sum(sp.exp(v) for v in xs)
        nl = [sp.log(Sx) - v for v in xs]  # −log P_i = (m − x_i) + log S, here with m = 0
        H = sum(p * v for p, v in zip(Ps, nl))
        return ([(H, -sum(p * sp.log(p) for p in Ps))]
                + [(sp.diff(H, xs[j]), Ps[j] * (nl[j] - H)) for j in range(KK)])

    d.each_K("H(softmax x) = Σ P_i(−log P_i), −log P_i = lse x − x_i; ∂H/∂x_j = P_j(−log P_j − H)",
             entropy, Ks=(2, 3))
    d.note(
        "Every term P_i φ(δ_i) is non-negative, so the sum never cancels and is never negative; "
        "the logsumexp difference c = lse x − lse y enters only through δ_i, and an error in "
        "it is a common shift, which the last identity shows to be second order."
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
