"""Claim 1: the empirical PMF is unbiased, has variance q(k)(1 − q(k))/N, and converges a.s.

Claim
    With X_1..X_N IID Categorical(q) and p(k) = (1/N) Σ_n Y_n, Y_n = [X_n = k]:
    E p(k) = q(k), Var p(k) = q(k)(1 − q(k))/N <= 1/(4N), and p(k) → q(k) almost surely
    (the article's law-of-large-numbers step).

Source
    Article, "Categorical distribution likelihood" (p(k) converges a.s. to E Y_1 = q(k));
    docs/design.md#mathematics.

Justifies
    Reading the empirical PMF as an estimate of q (``crossent.empirical_pmf``), and the
    sampling tolerances used by tests that draw categorical samples.

Scope
    General N (moment generating function (1 − q + q e^t)^N, symbolic N); the reduction of
    a categorical sample to Bernoulli indicators is checked exhaustively for K = 2..8 and every
    sequence of length N = 1..3.
"""

from __future__ import annotations

import itertools
import sys

import sympy as sp

import _checker

n, j = sp.symbols("n j", integer=True, positive=True)
N = sp.Symbol("N", integer=True, positive=True)
q = sp.Symbol("q", positive=True)  # q = q(k) = P(X_n = k)
t = sp.Symbol("t", real=True)
eps = sp.Symbol("epsilon", positive=True)


def mgf_indicator():
    """E e^{tY} for Y = [X = k] ~ Bernoulli(q)."""
    return (1 - q) + q * sp.exp(t)


def mgf_count():
    """E e^{tS} for S = Σ_n Y_n, independent Y_n: the product of N identical factors."""
    return mgf_indicator() ** N


def moment(mgf, r):
    """The r-th moment: d^r/dt^r mgf at t = 0."""
    return sp.diff(mgf, t, r).subs(t, 0)


def central_fourth_moment():
    """E (S − Nq)^4 from the MGF of S − Nq, e^{−tNq} M_S(t)."""
    return moment(sp.exp(-t * N * q) * mgf_count(), 4)


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 1: the empirical PMF is unbiased, variance q(1−q)/N",
        claim="E p(k) = q(k), Var p(k) = q(k)(1 − q(k))/N <= 1/(4N), and p(k) → q(k) a.s.",
        claim_tex=r"$\mathbb{E}\,p(k) = q(k)$, $\operatorname{Var} p(k) = q(k)\,(1 - q(k))/N \le 1/(4N)$, "
        r"and $p(k) \to q(k)$ almost surely.",
        source="article, 'Categorical distribution likelihood' (law of large numbers); "
        "docs/design.md#mathematics",
        justifies="empirical_pmf as an estimator of q; sampling tolerances in tests",
        scope="general N (symbolic MGF); categorical → Bernoulli reduction exhaustively for "
        "K = 2..8, N = 1..3",
    )
    qk = sp.IndexedBase("q", positive=True)
    kk = sp.Symbol("k", integer=True, positive=True)
    K = sp.Symbol("K", integer=True, positive=True)
    d.eq(
        "P(Y_n = 1) = P(X_n = k) = Σ_j q(j) [j = k] = q(k)",
        sp.Sum(qk[j] * sp.KroneckerDelta(j, kk), (j, 1, K)),
        qk[kk],
        assume=sp.Q.ge(kk, 1) & sp.Q.le(kk, K),
        because="so Y_n = [X_n = k] ~ Bernoulli(q(k)); write q = q(k) below",
    )
    d.eq("E Y = 1·q + 0·(1 − q) = q", 1 * q + 0 * (1 - q), moment(mgf_indicator(), 1),
         tex=r"1 \cdot q + 0 \cdot (1 - q) = M_Y'(0), \qquad M_Y(t) = \mathbb{E}\,e^{tY} = 1 - q + q e^{t}")
    d.eq(
        "linearity: E p(k) = (1/N) Σ_n E Y_n = q",
        sp.Sum(q, (n, 1, N)) / N,
        q,
        because="E Y_n = q for every n; the estimator is unbiased",
    )
    d.cite(
        "independence: M_S(t) = E e^{tS} = Π_n E e^{tY_n} = (1 − q + q e^t)^N",
        "the Y_n are independent because the X_n are",
        sp.Eq(sp.Symbol("M_S"), mgf_count()),
    )
    d.eq("E S = M_S'(0) = N q", moment(mgf_count(), 1), N * q,
         tex=r"M_S'(0) = N q, \qquad M_S(t) = (1 - q + q e^{t})^{N}")
    d.eq("E S² = M_S''(0) = N q + N(N − 1) q²", moment(mgf_count(), 2), N * q + N * (N - 1) * q**2)
    var_S = moment(mgf_count(), 2) - moment(mgf_count(), 1) ** 2
    d.eq("Var S = E S² − (E S)² = N q (1 − q)", var_S, N * q * (1 - q))
    d.eq("Var p(k) = Var S / N² = q(1 − q)/N", var_S / N**2, q * (1 - q) / N)
    d.eq("1/4 − q(1 − q) = (q − 1/2)²", sp.Rational(1, 4) - q * (1 - q), (q - sp.Rational(1, 2)) ** 2)
    d.nonneg("(q − 1/2)² >= 0, so Var p(k) <= 1/(4N)", (q - sp.Rational(1, 2)) ** 2)
    d.eq("Var p(k) → 0 as N → ∞", sp.limit(q * (1 - q) / N, N, sp.oo), 0,
         tex=r"\lim_{N \to \infty} \frac{q(1 - q)}{N} = 0")

    # -- almost sure convergence via the fourth moment and Borel–Cantelli ---------------------
    s = sp.Symbol("sigma2", nonnegative=True)  # σ² = q(1 − q) ∈ [0, 1/4]
    u = sp.Symbol("u", nonnegative=True)  # u = 1/4 − σ² >= 0
    E4 = central_fourth_moment()
    d.eq(
        "E (S − Nq)⁴ = N σ²(1 − 6σ²) + 3 N² σ⁴, σ² = q(1 − q)",
        E4,
        (N * s * (1 - 6 * s) + 3 * N**2 * s**2).subs(s, q * (1 - q)),
        because="fourth derivative at 0 of the MGF of S − Nq, e^{−tNq} M_S(t)",
    )
    bound = sp.Rational(7, 16) * N**2
    slack = bound - (N * s * (1 - 6 * s) + 3 * N**2 * s**2)
    certificate = N * (N - 1) / 4 + N * u + 3 * N**2 * u * (sp.Rational(1, 4) + s) + 6 * N * s**2
    d.eq(
        "7N²/16 − E(S − Nq)⁴ written as a sum of nonnegative terms (u = 1/4 − σ² >= 0)",
        slack,
        certificate.subs(u, sp.Rational(1, 4) - s),
    )
    d.nonneg("so E (S − Nq)⁴ <= 7N²/16", certificate, because="N >= 1, σ² >= 0, u >= 0")
    d.eq(
        "Markov: P(|p(k) − q| >= ε) <= E(S − Nq)⁴/(N ε)⁴ <= 7/(16 N² ε⁴)",
        bound / (N * eps) ** 4,
        sp.Rational(7, 16) / (N**2 * eps**4),
        tex=r"\frac{7 N^{2} / 16}{(N \varepsilon)^{4}} = \frac{7}{16 N^{2} \varepsilon^{4}}",
    )
    d.eq("Σ_N 1/N² converges (= π²/6)", sp.Sum(1 / N**2, (N, 1, sp.oo)), sp.pi**2 / 6)
    d.cite(
        "Borel–Cantelli",
        "Σ_N P(|p(k) − q| >= ε) < ∞ for every ε > 0, so |p(k) − q| >= ε happens finitely often "
        "a.s., i.e. p(k) → q(k) almost surely (strong law of large numbers)",
    )

    # -- exhaustive check of the reduction ----------------------------------------------------
    def exhaustive(KK):
        # exact polynomial arithmetic in Q[q1..q_{K-1}] (sparse ring; q_K = 1 − Σ_{k<K} q_k)
        R, *gens = sp.ring(",".join(f"q{i}" for i in range(1, KK)), sp.QQ)
        qs = list(gens) + [1 - sum(gens)]
        items = []
        for NN in (1, 2, 3):
            for c in (1, KK):  # the first and last class (the last carries the constraint)
                mean, second = R(0), R(0)
                for seq in itertools.product(range(KK), repeat=NN):
                    prob = R(1)
                    for x in seq:
                        prob *= qs[x]
                    pk = sp.Rational(seq.count(c - 1), NN)
                    mean += prob * pk
                    second += prob * pk**2
                qc = qs[c - 1]
                items.append((mean - qc) == 0)
                items.append((second - mean**2 - qc * (1 - qc) * sp.Rational(1, NN)) == 0)
        return items

    d.each_K(
        "E p(k) = q(k) and Var p(k) = q(k)(1 − q(k))/N by enumerating all K^N samples, N = 1..3",
        exhaustive,
        because="with Σ_k q(k) = 1 (q(K) = 1 − Σ_{k<K} q(k)); classes k = 1 and k = K",
        tex=r"\mathbb{E}\,p(k) = q(k), \qquad \operatorname{Var} p(k) = \frac{q(k)\,(1 - q(k))}{N}",
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
