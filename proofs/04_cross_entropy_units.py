"""Claim 4: the cross-entropy of PMFs and its units.

Claim
    H(p, q) = −E_{X~p}[log q(X)] = −Σ_k p(k) log q(k) >= 0; with logarithms to base b,
    H_b(p, q) = H(p, q)/ln b, so nats (base e), bits (base 2) and bans/hartleys (base 10)
    convert by H_bits = H_nats/ln 2, H_bans = H_nats/ln 10, H_bits = H_bans·log2 10.

Source
    Article, "The cross-entropy between q relative to p ..." (definition; "the choice of
    logarithm base yields different units", whose list is missing from the text);
    docs/design.md#mathematics (units by log base).

Justifies
    ``crossent.cross_entropy_pmf(p, q, base=...)`` and ``crossent.entropy(p, base=...)``:
    compute in nats, divide once by ln(base) (``base=None`` means nats).

Scope
    General K (Sum); the expectation form is checked with sympy.stats for K = 2..8.
"""

from __future__ import annotations

import sys

import sympy as sp
from sympy.stats import E, FiniteRV

import _checker

k = sp.Symbol("k", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
p = sp.IndexedBase("p", nonnegative=True)
q = sp.IndexedBase("q", positive=True)
b = sp.Symbol("b", positive=True)  # the base of the logarithm, b > 1


def cross_entropy(base=None):
    """H_b(p, q) = −Σ_k p(k) log_b q(k) (natural log when base is None)."""
    log = sp.log(q[k]) if base is None else sp.log(q[k], base)
    return -sp.Sum(p[k] * log, (k, 1, K))


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 4: cross-entropy and its units",
        claim="H(p, q) = −Σ_k p(k) log q(k) >= 0; H_b = H/ln b: bits = nats/ln 2, "
        "bans = nats/ln 10, bits = bans·log2(10)",
        claim_tex=r"$H(p, q) = -\sum_{k=1}^{K} p(k) \log q(k) \ge 0$; in base $b$, $H_b = H / \ln b$: "
        r"bits $=$ nats$/\ln 2$, bans $=$ nats$/\ln 10$, bits $=$ bans$\cdot\log_2 10$.",
        source="article, definition of H(p, q) and 'units' (list missing from the text); "
        "docs/design.md#mathematics",
        justifies="cross_entropy_pmf / entropy with base=: compute in nats, divide by ln(base)",
        scope="general K; the expectation form for K = 2..8",
    )

    def expectation(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        X = FiniteRV("X", {i + 1: ps[i] for i in range(KK)})
        minus_log_q = sp.Piecewise(*[(-sp.log(qs[i]), sp.Eq(X, i + 1)) for i in range(KK)])
        return [(E(minus_log_q), -sum(pi * sp.log(qi) for pi, qi in zip(ps, qs)))]

    def example(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        return sp.Symbol("E_p[-log q(X)]"), -sum(pi * sp.log(qi) for pi, qi in zip(ps, qs))

    d.each_K(
        "−E_{X~p}[log q(X)] = −Σ_k p(k) log q(k) (the expectation of a finite random variable)",
        expectation,
        show=example,
        tex=r"\mathbb{E}_{X \sim p}\left[-\log q(X)\right] = -\sum_{k=1}^{K} p_k \log q_k",
    )
    N = sp.Symbol("N", positive=True)
    d.eq(
        "H(p, q) = −ℓ(q)/N (the negated log-likelihood of claim 2, per sample)",
        -(N * sp.Sum(p[k] * sp.log(q[k]), (k, 1, K))) / N,
        cross_entropy(),
        tex=r"-\frac{\ell(q)}{N} = -\frac{N \sum_{k=1}^{K} p_k \log q_k}{N} = H(p, q)",
    )
    a = sp.IndexedBase("a", nonnegative=True)  # q(k) = exp(−a_k) with a_k >= 0 since q(k) <= 1
    d.eq("−log q(k) = a_k for q(k) = e^{−a_k}, a_k = −log q(k) >= 0 as 0 < q(k) <= 1", -sp.log(sp.exp(-a[k])), a[k],
         tex=r"-\log e^{-a_k} = a_k")
    d.nonneg("H(p, q) = Σ_k p(k) a_k >= 0", sp.Sum(p[k] * a[k], (k, 1, K)), because="p >= 0, a >= 0")
    d.eq(
        "base b: H_b(p, q) = −Σ p log_b q = H(p, q)/ln b",
        cross_entropy(b),
        cross_entropy() / sp.log(b),
        because="log_b x = ln x / ln b; the constant leaves the sum",
    )
    d.eq("bits: H_2 = H_nats/ln 2", cross_entropy(2), cross_entropy() / sp.log(2))
    d.eq("bans (hartleys): H_10 = H_nats/ln 10", cross_entropy(10), cross_entropy() / sp.log(10))
    d.eq("bits from bans: H_2 = H_10·log2(10)", cross_entropy(2), cross_entropy(10) * sp.log(10, 2))
    d.eq("1 nat = 1/ln 2 bits = log2(e) bits", sp.log(sp.E, 2), 1 / sp.log(2),
         tex=r"\log_2 e = \frac{1}{\ln 2}")
    d.eq("1 ban = log2(10) bits = ln 10 nats", sp.log(10, 2) * sp.log(2), sp.log(10))
    d.eq(
        "a fair coin: H(u, u) = ln 2 nats = 1 bit",
        -2 * sp.Rational(1, 2) * sp.log(sp.Rational(1, 2), 2),
        1,
        tex=r"-2 \cdot \tfrac{1}{2} \log_2 \tfrac{1}{2} = 1",
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
