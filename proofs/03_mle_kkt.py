"""Claim 3: the maximum-likelihood estimate of a categorical parameter is the empirical PMF.

Claim
    The program  min_q −ℓ(q) = −N Σ_k p(k) log q(k)  subject to  Σ_k q(k) = 1, q(k) >= 0
    has the global minimizer q̂ = p. Proof by the KKT conditions:

    * Lagrangian  𝓛 = −N Σ_k p(k) log q(k) + λ (Σ_k q(k) − 1) − Σ_k μ_k q(k);
    * stationarity  −N p(k)/q(k) + λ − μ_k = 0;
    * classes with p(k) > 0 need q(k) > 0 (else −ℓ = +∞), so μ_k = 0 by complementary
      slackness and q(k) = N p(k)/λ; primal feasibility gives λ = N, so q(k) = p(k);
    * classes with p(k) = 0: stationarity gives μ_k = λ = N > 0 (dual feasible), and
      complementary slackness μ_k q(k) = 0 gives q(k) = 0 = p(k);
    * sufficiency: the Hessian of −ℓ is diag(N p(k)/q(k)^2) ⪰ 0, so the objective is convex,
      the constraints are affine, and a KKT point is a global minimizer.

Source
    Article, "Proposition" and its proof (stationarity only: it omits q >= 0, the classes with
    p(k) = 0, the value of λ, and sufficiency); docs/design.md#mathematics.

Justifies
    Fitting a categorical model by minimizing the cross-entropy loss (the MLE); the reference
    tests of ``crossent.categorical_log_likelihood`` (it is largest at q = p).

Scope
    General K (IndexedBase/Sum): Lagrangian derivative, multiplier, slackness, Hessian and its
    quadratic form. Explicit K = 2..8: the stationarity system solved by SymPy has the unique
    solution q = p, λ = N; the KKT point with a zero class; the Hessian is PSD.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

i, j, k = sp.symbols("i j k", integer=True, positive=True)
K, N = sp.symbols("K N", integer=True, positive=True)
lam = sp.Symbol("lambda", real=True)
q = sp.IndexedBase("q", positive=True)
p = sp.IndexedBase("p", nonnegative=True)
mu = sp.IndexedBase("mu", nonnegative=True)
v = sp.IndexedBase("v", real=True)


def objective():
    """−ℓ(q) = −N Σ_k p(k) log q(k)."""
    return -N * sp.Sum(p[k] * sp.log(q[k]), (k, 1, K))


def lagrangian():
    """𝓛(q, λ, μ) = −ℓ(q) + λ (Σ_k q(k) − 1) − Σ_k μ_k q(k)."""
    return objective() + lam * (sp.Sum(q[k], (k, 1, K)) - 1) - sp.Sum(mu[k] * q[k], (k, 1, K))


def stationarity(jj=j):
    """∂𝓛/∂q(j) as the article writes it (with the multiplier of q >= 0 added)."""
    return -N * p[jj] / q[jj] + lam - mu[jj]


def hessian_entry():
    """∂²(−ℓ)/∂q(i)∂q(j) = δ_ij N p(i)/q(i)^2."""
    return sp.KroneckerDelta(i, j) * N * p[i] / q[i] ** 2


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 3: the MLE is the empirical PMF (KKT)",
        claim="argmin { −ℓ(q) : Σ q = 1, q >= 0 } = p, the empirical PMF; the KKT point is the "
        "global minimizer because −ℓ is convex",
        claim_tex=r"$\operatorname{arg\,min}_q \{-\ell(q) : \sum_{k} q(k) = 1,\ q \ge 0\} = p$, the empirical PMF; "
        r"the KKT point is the global minimizer because $-\ell$ is convex.",
        source="article, 'Proposition' and proof (stationarity only); docs/design.md#mathematics",
        justifies="minimizing cross-entropy fits the MLE; tests of categorical_log_likelihood",
        scope="general K (derivative, λ, slackness, Hessian); K = 2..8 (unique solution, PSD)",
    )
    in_range = sp.Q.ge(j, 1) & sp.Q.le(j, K) & sp.Q.ge(i, 1) & sp.Q.le(i, K)
    L = lagrangian()
    d.define("Lagrangian", sp.Symbol("𝓛"), L, because="multiplier λ for Σ q = 1, μ_k >= 0 for q(k) >= 0")
    d.eq(
        "stationarity ∂𝓛/∂q(j) = −N p(j)/q(j) + λ − μ_j",
        sp.Derivative(L, q[j]),
        stationarity(),
        assume=in_range,
    )

    # -- classes with p(j) > 0 ----------------------------------------------------------------
    pj, qj, Np = sp.symbols("p_j q_j N", positive=True)
    sol = sp.solve(sp.Eq(-Np * pj / qj + lam, 0), qj)
    d.cite(
        "p(j) > 0 forces q(j) > 0, hence μ_j = 0",
        "−N p(j) log q(j) = +∞ at q(j) = 0, so a minimizer has q(j) > 0, and complementary "
        "slackness μ_j q(j) = 0 gives μ_j = 0",
    )
    d.eq(
        "stationarity with μ_j = 0 gives q(j) = N p(j)/λ",
        sp.Tuple(*sol),
        sp.Tuple(Np * pj / lam),
        because="the only solution in q(j) of −N p(j)/q(j) + λ = 0",
        tex=r"-\frac{N p_j}{q_j} + \lambda = 0 \iff q_j = \frac{N p_j}{\lambda}",
    )
    d.eq(
        "primal feasibility: Σ_k N p(k)/λ = (N/λ) Σ_k p(k)",
        sp.Sum(N * p[k] / lam, (k, 1, K)),
        (N / lam) * sp.Sum(p[k], (k, 1, K)),
    )
    lam_sol = sp.solve(sp.Eq(N / lam, 1), lam)
    d.eq(
        "with Σ_k p(k) = 1, N/λ = 1 has the unique solution λ = N",
        sp.Tuple(*lam_sol),
        sp.Tuple(N),
        because="the only solution in λ of N/λ = 1",
        tex=r"\frac{N}{\lambda} = 1 \iff \lambda = N",
    )
    d.eq("q(j) = N p(j)/λ at λ = N is p(j)", sp.Subs(Np * pj / lam, lam, Np), pj)

    # -- classes with p(j) = 0 ----------------------------------------------------------------
    qz = sp.Symbol("q_j", nonnegative=True)
    d.eq(
        "p(j) = 0: stationarity reads λ − μ_j = 0, so μ_j = N",
        sp.Tuple(*sp.solve(stationarity().subs({p[j]: 0, lam: N}), mu[j])),
        sp.Tuple(N),
        because="dual feasible: μ_j = N > 0",
        tex=r"-\frac{N \cdot 0}{q_j} + N - \mu_j = 0 \iff \mu_j = N",
    )
    d.eq(
        "p(j) = 0: complementary slackness μ_j q(j) = 0 with μ_j = N > 0 gives q(j) = 0 = p(j)",
        sp.Tuple(*sp.solve(sp.Eq(N * qz, 0), qz)),
        sp.Tuple(0),
        because="the only solution q(j) >= 0 of N q(j) = 0",
        tex=r"N q_j = 0,\ q_j \ge 0 \iff q_j = 0",
    )

    # -- the KKT point satisfies every condition ---------------------------------------------
    mu_hat = sp.Piecewise((N, sp.Eq(p[j], 0)), (0, True))
    d.eq(
        "complementary slackness at (q, μ) = (p, N [p = 0])",
        mu_hat * p[j],
        0,
        because="μ_j q(j) = N [p(j) = 0] p(j) vanishes in both cases",
    )
    d.eq(
        "stationarity at q = p, λ = N, μ_j = 0 for p(j) > 0",
        sp.Subs(-N * pj / qj + lam - mu[j], (qj, lam, mu[j]), (pj, N, 0)),
        0,
    )

    # -- sufficiency: convexity ---------------------------------------------------------------
    d.eq(
        "Hessian of −ℓ: ∂²(−ℓ)/∂q(i)∂q(j) = δ_ij N p(i)/q(i)^2",
        sp.Derivative(objective(), q[i], q[j]),
        hessian_entry(),
        assume=in_range,
    )
    quad = sp.Sum(sp.Sum(v[i] * hessian_entry() * v[j], (j, 1, K)), (i, 1, K))
    quad_diag = sp.Sum(N * p[i] * v[i] ** 2 / q[i] ** 2, (i, 1, K))
    d.eq("quadratic form vᵀ H v = Σ_i N p(i) v_i² / q(i)²", quad, quad_diag, assume=in_range)
    d.nonneg(
        "vᵀ H v >= 0: the Hessian diag(N p/q²) is positive semidefinite",
        quad_diag,
        because="each term N p(i) v_i²/q(i)² >= 0",
    )
    d.cite(
        "KKT conditions are sufficient for a convex program",
        "−ℓ is convex on {q : q(k) > 0 where p(k) > 0} (PSD Hessian), the constraints are "
        "affine, so any KKT point is a global minimizer (Boyd & Vandenberghe 2004, §5.5.3). "
        "Independently, claim 5b shows −ℓ(q) + ℓ(p) = N·KL(p‖q) >= 0.",
    )

    # -- explicit K ---------------------------------------------------------------------------
    def solve_system(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        last = {ps[-1]: 1 - sum(ps[:-1])}
        eqs = [(N * pk - lam * qk).subs(last) for pk, qk in zip(ps, qs)] + [sum(qs) - 1]
        sols = sp.solve(eqs, list(qs) + [lam], dict=True)
        out = [len(sols) == 1]
        if len(sols) == 1:
            out += [(sols[0][qk], pk.subs(last)) for qk, pk in zip(qs, ps)] + [(sols[0][lam], N)]
        return out

    d.each_K(
        "stationarity (times q(k)) + Σ q = 1 has the unique solution q = p, λ = N",
        solve_system,
        because="solved exactly, with p(K) = 1 − Σ_{k<K} p(k); one solution only",
        tex=r"N p_k - \lambda q_k = 0\ (k = 1, \ldots, K),\ \ \sum_{k=1}^{K} q_k = 1 \iff q = p,\ \lambda = N",
    )

    def zero_class(KK):
        ps = list(sp.symbols(f"p1:{KK}", positive=True)) + [sp.S.Zero]
        qs = sp.symbols(f"q1:{KK + 1}", nonnegative=True)
        mus = sp.symbols(f"mu1:{KK + 1}", nonnegative=True)
        f = -N * sum(pk * sp.log(qk) for pk, qk in zip(ps[:-1], qs[:-1]))  # 0·log q(K) = 0
        Lag = f + lam * (sum(qs) - 1) - sum(m * qk for m, qk in zip(mus, qs))
        point = {**{qk: pk for qk, pk in zip(qs, ps)}, lam: N, **{m: 0 for m in mus[:-1]}, mus[-1]: N}
        grad = [sp.diff(Lag, qk).subs(point) for qk in qs]
        slack = [(m * qk).subs(point) for m, qk in zip(mus, qs)]
        return [(g, 0) for g in grad] + [(s, 0) for s in slack]

    d.each_K(
        "with p(K) = 0 the point q = p, λ = N, μ = (0, …, 0, N) satisfies stationarity and slackness",
        zero_class,
        tex=r"\frac{\partial \mathcal{L}}{\partial q_k} = 0,\ \ \mu_k q_k = 0\ \ (k = 1, \ldots, K)"
        r"\quad \text{at } q = p,\ \lambda = N,\ \mu = (0, \ldots, 0, N)",
    )

    def hessian_psd(KK):
        ps = sp.symbols(f"p1:{KK + 1}", positive=True)
        qs = sp.symbols(f"q1:{KK + 1}", positive=True)
        f = -N * sum(pk * sp.log(qk) for pk, qk in zip(ps, qs))
        H = sp.hessian(f, qs)
        D = sp.diag(*[N * pk / qk**2 for pk, qk in zip(ps, qs)])
        return [(H, D), H.is_positive_semidefinite is True]

    d.each_K("Hessian of −ℓ equals diag(N p/q²) and is PSD", hessian_psd,
             tex=r"\nabla_q^2 (-\ell) = \operatorname{diag}\left(\frac{N p_k}{q_k^2}\right) \succeq 0")
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
