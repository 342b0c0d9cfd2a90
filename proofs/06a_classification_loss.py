"""Claim 6a: the classification loss is the mean cross-entropy against one-hot targets.

Claim
    With p_n the one-hot PMF on the label y_n and q_n = softmax(f(x_n)),

        (1/N) Σ_n H(p_n, q_n) = −(1/N) Σ_n [log softmax(f(x_n))]_{y_n},

    and [log softmax(z)]_y = z_y − log Σ_j exp(z_j).

Source
    Article, "Cross-entropy loss" (both displayed forms of L(D)); docs/design.md#mathematics.

Justifies
    ``crossent.cross_entropy(logits, target)`` with integer targets and reduction="mean" (the
    kernel computes −log softmax at the label only, never the full one-hot product).

Scope
    General K and N (IndexedBase z[n, j], Sum, KroneckerDelta); K = 2..8 for every label.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

n, j, c = sp.symbols("n j c", integer=True, positive=True)
K, N = sp.symbols("K N", integer=True, positive=True)
z = sp.IndexedBase("z", real=True)  # logits z[n, j] = f(x_n)_j
y = sp.IndexedBase("y", integer=True, positive=True)  # labels in 1..K


def softmax(nn, cc):
    """softmax(z_n)_c = exp(z[n, c]) / Σ_j exp(z[n, j])."""
    return sp.exp(z[nn, cc]) / sp.Sum(sp.exp(z[nn, j]), (j, 1, K))


def log_softmax(nn, cc):
    """log softmax(z_n)_c = z[n, c] − log Σ_j exp(z[n, j])."""
    return z[nn, cc] - sp.log(sp.Sum(sp.exp(z[nn, j]), (j, 1, K)))


def one_hot(nn, cc):
    """p_n(c) = [c = y_n]."""
    return sp.KroneckerDelta(cc, y[nn])


def mean_cross_entropy():
    """(1/N) Σ_n H(p_n, q_n) with H(p, q) = −Σ_c p(c) log q(c)."""
    return sp.Sum(-sp.Sum(one_hot(n, c) * log_softmax(n, c), (c, 1, K)), (n, 1, N)) / N


def loss():
    """−(1/N) Σ_n [log softmax(z_n)]_{y_n}."""
    return -sp.Sum(log_softmax(n, y[n]), (n, 1, N)) / N


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 6a: the classification loss",
        claim="(1/N) Σ_n H(p_n, softmax(z_n)) with one-hot p_n = −(1/N) Σ_n [log softmax(z_n)]_{y_n}",
        claim_tex=r"With one-hot targets $p_n$ (all mass on the label $y_n$), "
        r"$\frac{1}{N} \sum_{n=1}^{N} H\bigl(p_n, \operatorname{softmax}(z_n)\bigr) = "
        r"-\frac{1}{N} \sum_{n=1}^{N} \bigl[\log \operatorname{softmax}(z_n)\bigr]_{y_n}$.",
        source="article, 'Cross-entropy loss'; docs/design.md#mathematics",
        justifies="cross_entropy(logits, int target, reduction='mean'): −log softmax at the label only",
        scope="general K and N; K = 2..8 for every label",
    )
    in_range = sp.Q.ge(y[n], 1) & sp.Q.le(y[n], K)
    S = sp.Sum(sp.exp(z[n, j]), (j, 1, K))
    d.positive("Σ_j exp(z_j) > 0", S, because="a non-empty sum of positive terms")
    Sp = sp.Symbol("S", positive=True)  # S = Σ_j exp(z[n, j]) > 0
    d.eq(
        "log softmax(z)_c = z_c − log Σ_j exp(z_j)",
        sp.log(sp.exp(z[n, c]) / Sp),
        z[n, c] - sp.log(Sp),
        because="log(a/S) = log a − log S for a, S > 0; log exp z = z for real z",
    )
    d.eq(
        "one-hot PMF sums to 1",
        sp.Sum(one_hot(n, c), (c, 1, K)),
        1,
        assume=in_range,
    )
    d.eq(
        "H(p_n, q_n) = −Σ_c [c = y_n] log q_n(c) = −log q_n(y_n)",
        -sp.Sum(one_hot(n, c) * log_softmax(n, c), (c, 1, K)),
        -log_softmax(n, y[n]),
        assume=in_range,
        because="the Iverson bracket keeps the label term only",
    )
    d.eq("mean over the data set", mean_cross_entropy(), loss(), assume=in_range)

    def explicit(KK):
        zs = sp.symbols(f"z1:{KK + 1}", real=True)
        Sk = sum(sp.exp(zi) for zi in zs)
        q = [sp.exp(zi) / Sk for zi in zs]
        out = []
        for label in range(KK):
            p = [1 if i == label else 0 for i in range(KK)]
            H = -sum(pi * sp.log(qi) for pi, qi in zip(p, q))
            out.append((H, -(zs[label] - sp.log(Sk))))
        return out

    d.each_K("H(onehot_y, softmax(z)) = −z_y + log Σ exp(z), every label y", explicit,
             tex=r"-\sum_{c=1}^{K} [c = y] \log \frac{e^{z_c}}{\sum_{j} e^{z_j}} = -z_y + \log \sum_{j=1}^{K} e^{z_j}"
             r"\qquad (y = 1, \ldots, K)")
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
