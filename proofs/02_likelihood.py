"""Claim 2: the likelihood of N categorical samples.

Claim
    For IID samples X_1..X_N of Categorical(q) on {1..K} with empirical PMF
    p(k) = (1/N) Σ_n [X_n = k],

        L(q) = Π_n q(X_n) = Π_k q(k)^{N p(k)},      ℓ(q) = log L(q) = N Σ_k p(k) log q(k).

Source
    "Motivating the cross-entropy loss", section "Categorical distribution likelihood": the
    article states ℓ(q) but the equation for L(q) is missing from its text
    (docs/design.md#mathematics, docs/article-gaps.md). Here both are derived.

Justifies
    ``crossent.categorical_log_likelihood(q, samples)`` computes N Σ_k p(k) log q(k) from the
    counts (one log per class instead of one per sample), and ``crossent.empirical_pmf``.
    It is also the link ℓ(q) = −N H(p, q) used in claim 4.

Scope
    General K and N (IndexedBase, Sum, KroneckerDelta for the Iverson bracket); the product form
    is also checked exactly for K = 2..8 and every sample sequence of length N = 1..3.
"""

from __future__ import annotations

import itertools
import sys

import sympy as sp

import _checker

k, n = sp.symbols("k n", integer=True, positive=True)
K, N = sp.symbols("K N", integer=True, positive=True)
q = sp.IndexedBase("q", positive=True)
X = sp.IndexedBase("X", integer=True, positive=True)


def indicator(x, kk):
    """The Iverson bracket [x = k]."""
    return sp.KroneckerDelta(x, kk)


def empirical_pmf(kk=k):
    """p(k) = (1/N) Σ_n [X_n = k]."""
    return sp.Sum(indicator(X[n], kk), (n, 1, N)) / N


def log_q_of_sample():
    """log q(X_n) written as Σ_k [X_n = k] log q(k) (only the k = X_n term survives)."""
    return sp.Sum(indicator(X[n], k) * sp.log(q[k]), (k, 1, K))


def log_likelihood_by_sample():
    """log L = Σ_n log q(X_n), with log q(X_n) as the indicator sum."""
    return sp.Sum(log_q_of_sample(), (n, 1, N))


def log_likelihood_by_class():
    """ℓ(q) = N Σ_k p(k) log q(k)."""
    return N * sp.Sum(empirical_pmf() * sp.log(q[k]), (k, 1, K))


def likelihood_by_sample(samples, qs):
    """Π_n q(X_n) for an explicit sample sequence (classes 1..K)."""
    return sp.Mul(*[qs[x - 1] for x in samples])


def likelihood_by_class(samples, qs):
    """Π_k q(k)^{N p(k)} for an explicit sample sequence."""
    NN = len(samples)
    pmf = [sp.Rational(samples.count(c), NN) for c in range(1, len(qs) + 1)]
    return sp.Mul(*[qk ** (NN * pk) for qk, pk in zip(qs, pmf)])


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 2: likelihood of N categorical samples",
        claim="L(q) = Π_n q(X_n) = Π_k q(k)^{N p(k)} and ℓ(q) = N Σ_k p(k) log q(k), "
        "p the empirical PMF",
        claim_tex=r"$L(q) = \prod_{n=1}^{N} q(X_n) = \prod_{k=1}^{K} q(k)^{N p(k)}$ and "
        r"$\ell(q) = \log L(q) = N \sum_{k=1}^{K} p(k) \log q(k)$, where $p$ is the empirical PMF.",
        source="article, 'Categorical distribution likelihood' (the L(q) equation is missing "
        "from its text); docs/design.md#mathematics",
        justifies="categorical_log_likelihood = N Σ_k p(k) log q(k) from counts; empirical_pmf",
        scope="general K and N; product form also exhaustively for K = 2..8, N = 1..3",
    )
    in_range = sp.Q.ge(X[n], 1) & sp.Q.le(X[n], K)

    d.define("empirical PMF", sp.Function("p")(k), empirical_pmf())
    d.eq(
        "the empirical PMF sums to 1",
        sp.Sum(indicator(X[n], k), (k, 1, K)),
        1,
        because="for each n exactly one k in 1..K equals X_n",
        assume=in_range,
    )
    d.eq(
        "the Iverson bracket selects q(X_n)",
        log_q_of_sample(),
        sp.log(q[X[n]]),
        assume=in_range,
        because="Σ_k [X_n = k] log q(k) keeps only k = X_n (1 <= X_n <= K); i.e. "
        "q(X_n) = Π_k q(k)^[X_n = k]",
    )
    d.eq(
        "log of the product is the sum of logs",
        sp.log(sp.Product(q[X[n]], (n, 1, N)).rewrite(sp.Sum)),
        sp.Sum(sp.log(q[X[n]]), (n, 1, N)),
        because="q > 0, so log Π_n q(X_n) = Σ_n log q(X_n)",
        tex=r"\log \prod_{n=1}^{N} q(X_n) = \sum_{n=1}^{N} \log q(X_n)",
    )
    by_sample = log_likelihood_by_sample()
    swapped = sp.Sum(sp.Sum(indicator(X[n], k) * sp.log(q[k]), (n, 1, N)), (k, 1, K))
    d.eq("exchange the finite sums over n and k", by_sample, swapped)
    collected = sp.Sum(sp.log(q[k]) * sp.Sum(indicator(X[n], k), (n, 1, N)), (k, 1, K))
    d.eq("log q(k) does not depend on n", swapped, collected)
    d.eq(
        "Σ_n [X_n = k] = N p(k)",
        collected,
        log_likelihood_by_class(),
        because="definition of the empirical PMF",
    )
    d.eq(
        "ℓ(q) = N Σ_k p(k) log q(k)",
        by_sample,
        log_likelihood_by_class(),
        because="the chain above, end to end",
    )
    pk = sp.IndexedBase("p", nonnegative=True)
    d.eq(
        "L(q) = Π_k q(k)^{N p(k)} (taking exp of ℓ; log is injective on q > 0)",
        sp.exp(N * sp.Sum(pk[k] * sp.log(q[k]), (k, 1, K))),
        sp.exp(sp.Sum(sp.log(q[k] ** (N * pk[k])), (k, 1, K))),
        because="N p(k) log q(k) = log q(k)^{N p(k)} for q(k) > 0, and "
        "exp Σ_k log a_k = Π_k a_k (the next step)",
    )
    d.eq(
        "a product of positive factors is the exponential of the sum of their logs",
        sp.Product(q[k] ** (N * pk[k]), (k, 1, K)).rewrite(sp.Sum),
        sp.exp(sp.Sum(sp.log(q[k] ** (N * pk[k])), (k, 1, K))),
        tex=r"\prod_{k=1}^{K} q_k^{N p_k} = \exp \sum_{k=1}^{K} \log q_k^{N p_k}",
    )

    def exhaustive(KK):
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        items = []
        for NN in (1, 2, 3):
            for samples in itertools.product(range(1, KK + 1), repeat=NN):
                items.append((likelihood_by_sample(list(samples), qs), likelihood_by_class(list(samples), qs)))
        return items

    def example(KK):
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        s = [1, 2, 1]
        return likelihood_by_sample(s, qs), likelihood_by_class(s, qs)

    d.each_K(
        "Π_n q(X_n) = Π_k q(k)^{N p(k)} for every sample sequence of length N = 1..3",
        exhaustive,
        show=example,
        because="exact comparison of the two products for all K^N sequences",
        tex=r"\prod_{n=1}^{N} q(X_n) = \prod_{k=1}^{K} q(k)^{N p(k)}, \qquad "
        r"\text{e.g. } X = (1, 2, 1):\ q_1 q_2 q_1 = q_1^{3 \cdot 2/3}\, q_2^{3 \cdot 1/3}",
    )
    d.eq(
        "ℓ(q) = −N H(p, q) (link to claim 4)",
        log_likelihood_by_class(),
        -N * (-sp.Sum(empirical_pmf() * sp.log(q[k]), (k, 1, K))),
        because="so maximizing the likelihood is minimizing the cross-entropy H(p, q)",
        tex=r"N \sum_{k=1}^{K} p(k) \log q(k) = -N\,H(p, q), \qquad H(p, q) = -\sum_{k=1}^{K} p(k) \log q(k)",
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
