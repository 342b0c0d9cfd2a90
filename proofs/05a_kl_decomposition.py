"""Claim 5a: KL(p‖q) = H(p, q) − H(p, p).

Claim
    D_KL(p‖q) = E_p[log p(X)/q(X)] = Σ_k p(k) log(p(k)/q(k)) = H(p, q) − H(p, p), with the
    convention 0·log 0 = 0 (classes with p(k) = 0 contribute 0 to every side).

Source
    Article, "The Kullback–Leibler (KL) divergence ..."; docs/design.md#mathematics (and:
    this identity is for proofs, not for computing: it cancels catastrophically when p ≈ q).

Justifies
    The definition tested by ``crossent.kl_divergence`` (the kernel uses the termwise form of
    claim 7, not this difference), and ``reference.kl_divergence``.

Scope
    General K (Sum over the support, p(k) > 0); the limits for p(k) = 0; K = 2..8 explicitly.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

k = sp.Symbol("k", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
p = sp.IndexedBase("p", positive=True)  # the support of p: classes with p(k) = 0 are treated apart
q = sp.IndexedBase("q", positive=True)
b = sp.Symbol("b", positive=True)


def H(pp, qq):
    """H(p, q) = −Σ_k p(k) log q(k)."""
    return -sp.Sum(pp[k] * sp.log(qq[k]), (k, 1, K))


def kl(pp, qq):
    """D(p‖q) = Σ_k p(k) log(p(k)/q(k))."""
    return sp.Sum(pp[k] * sp.log(pp[k] / qq[k]), (k, 1, K))


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 5a: KL(p‖q) = H(p, q) − H(p, p)",
        claim="D_KL(p‖q) = Σ_k p(k) log(p(k)/q(k)) = H(p, q) − H(p, p)",
        claim_tex=r"$D_{\mathrm{KL}}(p \Vert q) = \sum_{k=1}^{K} p(k) \log \frac{p(k)}{q(k)} = H(p, q) - H(p, p)$.",
        source="article, KL divergence paragraph; docs/design.md#mathematics",
        justifies="the definition tested for kl_divergence (computed termwise, claim 7)",
        scope="general K; K = 2..8 explicitly",
    )
    d.eq(
        "log(p/q) = log p − log q (p, q > 0)",
        sp.log(p[k] / q[k]),
        sp.log(p[k]) - sp.log(q[k]),
    )
    d.eq("D(p‖q) = Σ p log p − Σ p log q", kl(p, q), sp.Sum(p[k] * sp.log(p[k]), (k, 1, K)) + H(p, q))
    d.eq("Σ p log p = −H(p, p)", sp.Sum(p[k] * sp.log(p[k]), (k, 1, K)), -H(p, p),
         tex=r"\sum_{k=1}^{K} p_k \log p_k = -H(p, p), \qquad H(p, p) = -\sum_{k=1}^{K} p_k \log p_k")
    d.eq("D(p‖q) = H(p, q) − H(p, p)", kl(p, q), H(p, q) - H(p, p))
    t = sp.Symbol("t", positive=True)
    c = sp.Symbol("c", positive=True)
    d.eq("0·log 0 = 0: lim_{t→0+} t log t = 0", sp.Limit(t * sp.log(t), t, 0, "+"), 0)
    d.eq(
        "a class with p(k) = 0 adds 0 to D: lim_{t→0+} t log(t/c) = 0 (c = q(k) > 0)",
        sp.Limit(t * sp.log(t / c), t, 0, "+"),
        0,
    )
    d.eq(
        "... and 0 to H(p, q): lim_{t→0+} t log c = 0",
        sp.Limit(t * sp.log(c), t, 0, "+"),
        0,
    )
    d.eq(
        "units: D_b = D/ln b, like H (claim 4)",
        sp.Sum(p[k] * sp.log(p[k] / q[k], b), (k, 1, K)),
        kl(p, q) / sp.log(b),
    )

    def explicit(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        D = sum(pi * sp.log(pi / qi) for pi, qi in zip(ps, qs))
        Hpq = -sum(pi * sp.log(qi) for pi, qi in zip(ps, qs))
        Hpp = -sum(pi * sp.log(pi) for pi in ps)
        return [(D, Hpq - Hpp)]

    d.each_K("Σ p log(p/q) = H(p, q) − H(p, p)", explicit,
             tex=r"\sum_{k=1}^{K} p_k \log \frac{p_k}{q_k} = -\sum_{k=1}^{K} p_k \log q_k + \sum_{k=1}^{K} p_k \log p_k")
    d.note(
        "The identity is for proofs, not for computing: when p ≈ q, H(p, q) and H(p, p) agree "
        "in their leading digits and the difference cancels catastrophically (docs/design.md#mathematics). "
        "crossent.kl_divergence uses the termwise form of claim 7."
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
