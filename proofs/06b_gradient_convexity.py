"""Claim 6b: gradient and curvature of the loss in the logits; the loss is convex.

Claim
    For ℓ(z) = −log softmax(z)_y:
    ∂ℓ/∂z_i = softmax(z)_i − [i = y]  (gradient softmax(z) − e_y), and the Hessian is
    H = diag(s) − s sᵀ (s = softmax(z)), which is positive semidefinite:
    vᵀ H v = Σ_i s_i v_i² − (Σ_i s_i v_i)² = Σ_i s_i (v_i − v̄)², v̄ = Σ_i s_i v_i
    (the variance of v under s) >= 0; so the loss is convex in z. H·1 = 0 (shift invariance),
    so it is not strictly convex.

Source
    docs/design.md#mathematics (classification loss); the fused kernel
    ``cross_entropy_value_and_grad``.

Justifies
    ``cross_entropy_value_and_grad``: dlogits = (softmax(z) − onehot_y)/N (× weight) computed
    from the same exp(z − m) as the loss; convexity for optimisation.

Scope
    General K (Sum/IndexedBase): gradient, Hessian entries, the variance form of vᵀHv and its
    sign; K = 2..8: SymPy's hessian of ℓ equals diag(s) − s sᵀ, vᵀHv is the variance, H·1 = 0.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

i, j, l = sp.symbols("i j l", integer=True, positive=True)
y = sp.Symbol("y", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
z = sp.IndexedBase("z", real=True)
v = sp.IndexedBase("v", real=True)
s = sp.IndexedBase("s", positive=True)  # s_i = softmax(z)_i, Σ_i s_i = 1


def lse():
    return sp.log(sp.Sum(sp.exp(z[l]), (l, 1, K)))


def loss():
    """ℓ(z) = −log softmax(z)_y = log Σ_l exp(z_l) − z_y."""
    return lse() - z[y]


def softmax(ii):
    return sp.exp(z[ii]) / sp.Sum(sp.exp(z[l]), (l, 1, K))


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 6b: gradient and convexity in the logits",
        claim="∇_z(−log softmax(z)_y) = softmax(z) − e_y; Hessian diag(s) − s sᵀ ⪰ 0 (vᵀHv is "
        "a variance), so the loss is convex",
        claim_tex=r"$\nabla_z \bigl(-\log \operatorname{softmax}(z)_y\bigr) = \operatorname{softmax}(z) - e_y$; "
        r"the Hessian $\operatorname{diag}(s) - s s^{\mathsf{T}}$ is positive semidefinite "
        r"($v^{\mathsf{T}} H v$ is a variance), so the loss is convex in $z$.",
        source="docs/design.md#mathematics and the fused value-and-grad kernel",
        justifies="cross_entropy_value_and_grad: dlogits = softmax(z) − onehot(y) (scaled)",
        scope="general K; K = 2..8 (full Hessian, variance form, H·1 = 0)",
    )
    rng = sp.Q.ge(i, 1) & sp.Q.le(i, K) & sp.Q.ge(j, 1) & sp.Q.le(j, K) & sp.Q.ge(y, 1) & sp.Q.le(y, K)
    grad_i = softmax(i) - sp.KroneckerDelta(i, y)
    d.eq("∂ℓ/∂z_i = softmax(z)_i − [i = y]", sp.Derivative(loss(), z[i]), grad_i, assume=rng)
    d.eq(
        "Σ_i softmax(z)_i = 1",
        sp.Sum(sp.exp(z[i]), (i, 1, K)) / sp.Sum(sp.exp(z[l]), (l, 1, K)),
        1,
        because="the numerator and the denominator are the same sum",
    )
    d.eq(
        "Σ_i ∂ℓ/∂z_i = Σ_i s_i − 1 = 0 (the gradient is orthogonal to 1)",
        sp.Sum(s[i] - sp.KroneckerDelta(i, y), (i, 1, K)),
        sp.Sum(s[i], (i, 1, K)) - 1,
        assume=rng,
        because="s_i = softmax(z)_i and Σ_i s_i = 1",
    )
    hess_ij = softmax(i) * sp.KroneckerDelta(i, j) - softmax(i) * softmax(j)
    d.eq("∂²ℓ/∂z_i∂z_j = s_i [i = j] − s_i s_j", sp.Derivative(loss(), z[i], z[j]), hess_ij, assume=rng)
    # quadratic form with s as symbols: Σ_i Σ_j v_i (s_i δ_ij − s_i s_j) v_j
    quad = sp.Sum(sp.Sum(v[i] * (s[i] * sp.KroneckerDelta(i, j) - s[i] * s[j]) * v[j], (j, 1, K)), (i, 1, K))
    m1 = sp.Sum(s[i] * v[i], (i, 1, K))  # v̄
    m2 = sp.Sum(s[i] * v[i] ** 2, (i, 1, K))
    d.eq("vᵀHv = Σ s_i v_i² − (Σ s_i v_i)²", quad, m2 - m1**2, assume=rng)
    vbar = sp.Symbol("vbar", real=True)
    one = sp.Sum(s[i], (i, 1, K))
    var = sp.Sum(s[i] * (v[i] - vbar) ** 2, (i, 1, K))
    d.eq(
        "Σ s_i (v_i − v̄)² = Σ s v² − 2 v̄ Σ s v + v̄² Σ s",
        var,
        m2 - 2 * vbar * m1 + vbar**2 * one,
    )
    d.eq(
        "with Σ s = 1 and v̄ = Σ s v: Σ s_i (v_i − v̄)² = Σ s v² − (Σ s v)² = vᵀHv",
        (m2 - 2 * vbar * m1 + vbar**2 * 1).subs(vbar, m1),
        m2 - m1**2,
        tex=r"\Bigl(\sum_i s_i v_i^2 - 2 \bar v \sum_i s_i v_i + \bar v^2\Bigr)\Big|_{\bar v = \sum_i s_i v_i} "
        r"= \sum_i s_i v_i^2 - \Bigl(\sum_i s_i v_i\Bigr)^2",
    )
    d.nonneg(
        "vᵀHv = Σ s_i (v_i − v̄)² >= 0: H is positive semidefinite, the loss is convex in z",
        var,
        because="s_i > 0 and squares are >= 0",
    )
    d.eq(
        "H·1: Σ_j H_ij = Σ_j (s_i [i = j] − s_i s_j) = s_i (1 − Σ_j s_j) = 0 (shift invariance)",
        sp.Sum(s[i] * sp.KroneckerDelta(i, j) - s[i] * s[j], (j, 1, K)),
        s[i] * (1 - sp.Sum(s[j], (j, 1, K))),
        assume=rng,
        because="and Σ_j s_j = 1",
    )

    def explicit(KK):
        zs = sp.symbols(f"z1:{KK + 1}", real=True)
        es = sp.symbols(f"e1:{KK + 1}")  # e_i = exp(z_i) (generators of the ring below)
        back = {sp.exp(zi): ei for zi, ei in zip(zs, es)}
        # exact arithmetic in Z[e, v], after clearing the denominators S, S² (S = Σ e > 0)
        R, *gens = sp.ring(",".join([f"e{r}" for r in range(1, KK + 1)] + [f"v{r}" for r in range(1, KK + 1)]), sp.ZZ)
        E, V = gens[:KK], gens[KK:]
        S = sum(E)
        S_expr = sum(es)

        def times(expr, power):  # expr·S^power as an element of the ring (must be polynomial)
            return R.from_expr(sp.cancel(sp.together(expr.subs(back) * S_expr**power)))

        out = []
        ell = None
        for label in (0, KK - 1):
            ell = sp.log(sum(sp.exp(zi) for zi in zs)) - zs[label]
            for r, zi in enumerate(zs):  # S·∂ℓ/∂z_r = e_r − [r = y] S
                out.append(times(sp.diff(ell, zi), 1) == E[r] - (S if r == label else 0))
        H = sp.hessian(ell, zs)
        HS2 = [[(E[r] * S if r == c else 0) - E[r] * E[c] for c in range(KK)] for r in range(KK)]
        out += [times(H[r, c], 2) == HS2[r][c] for r in range(KK) for c in range(KK)]
        # S³·vᵀHv = Σ_r e_r (S v_r − Σ_c e_c v_c)²  (i.e. vᵀHv = Σ s_r (v_r − v̄)²)
        w = sum(E[c] * V[c] for c in range(KK))
        quadS2 = sum(HS2[r][c] * V[r] * V[c] for r in range(KK) for c in range(KK))
        out.append(S * quadS2 == sum(E[r] * (S * V[r] - w) ** 2 for r in range(KK)))
        out += [sum(HS2[r]) == 0 for r in range(KK)]  # H·1 = 0
        return out

    def example(KK):
        zs = sp.symbols(f"z1:{KK + 1}", real=True)
        ell = sp.log(sum(sp.exp(zi) for zi in zs)) - zs[0]
        return sp.hessian(ell, zs), sp.Symbol("diag(s) - s s^T")

    d.each_K(
        "gradient = softmax − e_y; hessian(ℓ) = diag(s) − s sᵀ; vᵀHv = Σ s (v − v̄)²; H·1 = 0",
        explicit,
        show=example,
        because="exp(z_i) renamed e_i after differentiating; with S = Σ e_i > 0 each check, "
        "multiplied by a power of S, is an exact polynomial identity in Z[e, v]",
        tex=r"\nabla_z \ell = s - e_y, \quad \nabla_z^2 \ell = \operatorname{diag}(s) - s s^{\mathsf{T}}, \quad "
        r"v^{\mathsf{T}} (\nabla_z^2 \ell)\, v = \sum_i s_i (v_i - \bar v)^2, \quad (\nabla_z^2 \ell)\,\mathbf{1} = 0",
    )
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
