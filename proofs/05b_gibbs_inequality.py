"""Claim 5b: Gibbs' inequality, KL(p‖q) >= 0 with equality iff p = q, and KL(p‖p) = 0.

Claim
    For PMFs p, q: D(p‖q) >= 0, D(p‖q) = 0 iff p = q, and D(p‖p) = 0. Via the lemma
    log t <= t − 1 for t > 0 with equality iff t = 1, proven symbolically. Exactly,

        D(p‖q) = Σ_{k∈S} p(k) g(q(k)/p(k)) + Σ_{k∉S} q(k),   g(t) = t − 1 − log t >= 0,

    where S = {k : p(k) > 0} is the support of p: a sum of nonnegative terms.

    Erratum: the article says "the choice of q = p *maximizes* the cross-entropy"; since
    H(p, q) = H(p, p) + D(p‖q) >= H(p, p), q = p *minimizes* it.

Source
    Article, the two KL properties and "We proved the first inequality ... maximizes";
    docs/design.md#mathematics and docs/article-gaps.md (the erratum).

Justifies
    ``crossent.kl_divergence`` >= 0 for PMFs (the tests assert it and the kernel's termwise
    form of claim 7 keeps every term >= 0); the MLE of claim 3 being the global minimizer.

Scope
    General K (Sum over the support); the lemma for all t > 0; K = 2..8: the minimizer of
    H(p, ·) on the simplex is q = p, with Hessian diag(p/q²) positive definite.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

k = sp.Symbol("k", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
t, s = sp.symbols("t s", positive=True)
p = sp.IndexedBase("p", positive=True)  # p on its support S, indexed by k = 1..K
q = sp.IndexedBase("q", positive=True)
G = sp.IndexedBase("g", nonnegative=True)  # G[k] stands for g(q(k)/p(k)) >= 0 (the lemma)
rest = sp.Symbol("r", nonnegative=True)  # r = Σ_{k∉S} q(k) >= 0
lam = sp.Symbol("lambda", real=True)


def g(x):
    """g(t) = t − 1 − log t, the gap in log t <= t − 1."""
    return x - 1 - sp.log(x)


def kl(pp, qq):
    return sp.Sum(pp[k] * sp.log(pp[k] / qq[k]), (k, 1, K))


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 5b: Gibbs' inequality",
        claim="D(p‖q) >= 0 with equality iff p = q; D(p‖p) = 0; q = p minimizes H(p, q) "
        "(the article says 'maximizes')",
        claim_tex=r"$D(p \Vert q) \ge 0$, with equality if and only if $p = q$; $D(p \Vert p) = 0$; "
        r"$q = p$ *minimizes* $H(p, q)$ over $q$ (the article says \"maximizes\").",
        source="article, KL properties 1-2 and the sentence after them; docs/design.md#mathematics (erratum)",
        justifies="kl_divergence >= 0 (termwise form of claim 7); claim 3's global minimum",
        scope="general K (support sums); lemma for all t > 0; K = 2..8 minimizer and Hessian",
    )
    # -- the lemma log t <= t − 1 ------------------------------------------------------------
    d.eq("g(1) = 0", g(sp.S.One), 0, tex=r"g(1) = 1 - 1 - \log 1 = 0, \qquad g(t) = t - 1 - \log t")
    d.eq("g'(t) = (t − 1)/t", sp.Derivative(g(t), t), (t - 1) / t)
    d.eq(
        "g(t) = ∫_1^t (s − 1)/s ds",
        sp.Integral((s - 1) / s, (s, 1, t)),
        g(t),
        because="the integrand has the sign of s − 1, the direction of integration: g >= 0",
    )
    d.eq(
        "{t > 0 : g'(t) < 0} = (0, 1): g strictly decreasing on (0, 1]",
        sp.solve_univariate_inequality((t - 1) / t < 0, t, relational=False, domain=sp.Interval.open(0, sp.oo)),
        sp.Interval.open(0, 1),
        tex=r"\left\{t > 0 : \frac{t - 1}{t} < 0\right\} = (0, 1)",
    )
    d.eq(
        "{t > 0 : g'(t) > 0} = (1, ∞): g strictly increasing on [1, ∞)",
        sp.solve_univariate_inequality((t - 1) / t > 0, t, relational=False, domain=sp.Interval.open(0, sp.oo)),
        sp.Interval.open(1, sp.oo),
        tex=r"\left\{t > 0 : \frac{t - 1}{t} > 0\right\} = (1, \infty)",
    )
    d.positive("g''(t) = 1/t² > 0: g strictly convex", sp.diff(g(t), t, 2))
    d.eq(
        "min_{t>0} g(t) = 0",
        sp.minimum(g(t), t, sp.Interval.open(0, sp.oo)),
        0,
        because="so log t <= t − 1 for t > 0, with equality only at t = 1 (strict monotonicity "
        "on each side of 1)",
        tex=r"\min_{t > 0}\,(t - 1 - \log t) = 0",
    )
    # -- Gibbs -------------------------------------------------------------------------------
    D = kl(p, q)
    sum_gap = sp.Sum(p[k] * g(q[k] / p[k]), (k, 1, K))
    d.eq(
        "D(p‖q) over the support = Σ_S p g(q/p) + Σ_S p − Σ_S q",
        D,
        sum_gap + sp.Sum(p[k], (k, 1, K)) - sp.Sum(q[k], (k, 1, K)),
        because="p g(q/p) = q − p − p log(q/p) = q − p + p log(p/q)",
    )
    d.cite(
        "PMFs: Σ_S p = 1 and Σ_S q = 1 − r with r = Σ_{k∉S} q(k) >= 0",
        "p vanishes off its support; q sums to 1 over all K classes",
    )
    d.eq(
        "so D(p‖q) = Σ_S p(k) g(q(k)/p(k)) + r",
        (sum_gap + 1 - (1 - rest)),
        sum_gap + rest,
        tex=r"\sum_{k \in S} p_k\, g\left(\frac{q_k}{p_k}\right) + 1 - (1 - r) = \sum_{k \in S} p_k\, g\left(\frac{q_k}{p_k}\right) + r",
    )
    d.nonneg(
        "D(p‖q) >= 0: every term p(k) g(q(k)/p(k)) >= 0 and r >= 0",
        sp.Sum(p[k] * G[k], (k, 1, K)) + rest,
        because="p(k) > 0 on S and g >= 0 by the lemma (G[k] = g(q(k)/p(k)))",
    )
    d.cite(
        "equality iff p = q",
        "D = 0 forces every p(k) g(q(k)/p(k)) = 0, i.e. q(k)/p(k) = 1 on S (g = 0 only at 1), "
        "and r = 0, i.e. q = 0 off S: q = p. Conversely D(p‖p) = 0 below.",
    )
    d.eq("D(p‖p) = Σ p log 1 = 0", kl(p, p), 0)
    d.eq("g(q/p) = 0 at q = p", g(p[k] / p[k]), 0, tex=r"g\left(\frac{p_k}{p_k}\right) = g(1) = 0")
    # -- the erratum --------------------------------------------------------------------------
    d.note(
        "Erratum. The article says 'the choice of q = p maximizes the cross-entropy'. "
        "H(p, q) = H(p, p) + D(p‖q) >= H(p, p) (claim 5a and the line above): q = p MINIMIZES "
        "H(p, q) over q, uniquely."
    )
    p1, q1 = sp.symbols("p q", positive=True)
    p1c, q1c = sp.symbols("pbar qbar", positive=True)  # 1 − p > 0 and 1 − q > 0
    H2 = -p1 * sp.log(q1) - (1 - p1) * sp.log(1 - q1)
    d.eq("K = 2: dH(p, (q, 1−q))/dq vanishes at q = p", sp.diff(H2, q1).subs(q1, p1), 0,
         tex=r"\frac{d}{dq}\Bigl(-p \log q - (1 - p) \log(1 - q)\Bigr)\Big|_{q = p} = -\frac{p}{p} + \frac{1 - p}{1 - p} = 0")
    d2 = sp.diff(H2, q1, 2)
    d.eq("K = 2: d²H/dq² = p/q² + (1 − p)/(1 − q)²", d2, p1 / q1**2 + (1 - p1) / (1 - q1) ** 2)
    d.positive(
        "... > 0 for 0 < p, q < 1: the critical point q = p is a minimum, not a maximum",
        p1 / q1**2 + p1c / q1c**2,
        because="pbar = 1 − p > 0, qbar = 1 − q > 0",
    )

    def minimizer(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        Hpq = -sum(pi * sp.log(qi) for pi, qi in zip(ps, qs))
        Lag = Hpq + lam * (sum(qs) - 1)
        at = {**dict(zip(qs, ps)), lam: 1}
        grad = [(sp.diff(Lag, qi).subs(at), 0) for qi in qs]
        Hess = sp.hessian(Hpq, qs)
        return grad + [(Hess, sp.diag(*[pi / qi**2 for pi, qi in zip(ps, qs)])), Hess.is_positive_definite is True]

    d.each_K(
        "∇_q [H(p, q) + λ(Σq − 1)] = 0 at q = p, λ = Σp = 1; Hessian diag(p/q²) ≻ 0",
        minimizer,
        because="a strictly convex function on the simplex: q = p is its unique minimizer",
        tex=r"\nabla_q \Bigl[H(p, q) + \lambda \Bigl(\sum_{k} q_k - 1\Bigr)\Bigr]_{q = p,\ \lambda = 1} = 0, \qquad "
        r"\nabla_q^2 H(p, q) = \operatorname{diag}\left(\frac{p_k}{q_k^2}\right) \succ 0",
    )

    def identity(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        Dk = sum(pi * sp.log(pi / qi) for pi, qi in zip(ps, qs))
        gaps = sum(pi * g(qi / pi) for pi, qi in zip(ps, qs))
        return [(Dk, gaps + sum(ps) - sum(qs))]

    d.each_K("D(p‖q) = Σ p g(q/p) + Σ p − Σ q", identity,
             tex=r"\sum_{k=1}^{K} p_k \log \frac{p_k}{q_k} = \sum_{k=1}^{K} p_k\, g\left(\frac{q_k}{p_k}\right) + \sum_{k=1}^{K} p_k - \sum_{k=1}^{K} q_k")
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
