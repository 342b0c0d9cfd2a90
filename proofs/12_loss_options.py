"""Claim 12: the chain rules and identities of the loss options (z-loss and logit soft-cap).

Claim
    With the capped logits ζ_i = c tanh(x_i / c) (c > 0), lse = log Σ_j exp(ζ_j), the
    coefficients a_c >= 0, A = Σ_c a_c, the item weight w >= 0 and z >= 0, the loss of one item
    is ℓ = Σ_c a_c (lse − ζ_c) + z w lse².

    1. soft-cap: d/dx [c tanh(x/c)] = 1 − tanh²(x/c); the form the kernels evaluate, for
       a = |x|/c >= 0 and E = expm1(2a): tanh a = E/(E + 2), 1 − tanh² a = 4(E + 1)/(E + 2)²,
       and tanh is odd;
    2. z-loss: ∂/∂ζ_i (z w lse²) = 2 z w lse softmax_i, so
       ∂ℓ/∂ζ_i = (A + 2 z w lse) softmax_i − a_i;
    3. together: ∂ℓ/∂x_i = ((A + 2 z w lse) softmax_i − a_i) (1 − tanh²(x_i/c));
    4. the kernels' form: with M = max ζ and L = log Σ_j exp(ζ_j − M),
       ℓ = Σ_c a_c (M − ζ_c) + A L + z w (M + L)², three non-negative terms;
    5. the constants of the double-double tanh: the Taylor series of expm1 on |r| <= 0.35 cut
       after 23 terms leaves less than 2^-114 relative; beyond a = 40, 1 − tanh a < 2^-114;
       below a = 2^-60, |tanh a − a| < 2^-120 a.

Source
    PaLM (Chowdhery et al. 2022, sec. 5: z_loss = 1e-4 log² Z); Gemma 2 (Gemma Team 2024,
    logit soft-capping: logits ← soft_cap · tanh(logits / soft_cap)); docs/loss-options.md.

Justifies
    crossent.kernels.options: _softcap_dd/_softcap_f64 (value and derivative), _expm1_dd
    (EXPM1_TERMS, SOFTCAP_ONE, SOFTCAP_TINY), _loss_dd + _with_z (the loss), _grad_dd (the
    gradient); the oracle's interval evaluation of the same forms.

Scope
    Symbolic in x, c, a, E, z, w, M, L; general K for 2 (Sum); K = 2..4 with explicit
    symbols for 3 and 4.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

i, j, k = sp.symbols("i j k", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)
zeta = sp.IndexedBase("zeta", real=True)
x = sp.Symbol("x", real=True)
c = sp.Symbol("c", positive=True)
a = sp.Symbol("a", nonnegative=True)
zl, w = sp.symbols("z w", nonnegative=True)


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 12: z-loss and soft-cap chain rules",
        claim="d/dx c tanh(x/c) = 1 − tanh²(x/c) = 4(E+1)/(E+2)², tanh a = E/(E+2) (E = expm1(2a)); "
        "∂ z w lse²/∂ζ_i = 2 z w lse softmax_i; the combined gradient; the kernels' split of the "
        "loss into non-negative terms; the constants of the double-double tanh",
        source="PaLM (z-loss), Gemma 2 (soft-capping); docs/loss-options.md",
        justifies="crossent.kernels.options and the oracle's options path",
        scope="symbolic; general K for the z-loss gradient, K = 2..4 for the combined gradient",
    )
    # 1. soft-cap ---------------------------------------------------------------------------
    d.eq("d/dx [c tanh(x/c)] = 1 − tanh²(x/c)", sp.diff(c * sp.tanh(x / c), x),
         1 - sp.tanh(x / c) ** 2)
    E = sp.exp(2 * a) - 1  # expm1(2a)
    d.eq("tanh a = E/(E + 2), E = expm1(2a) = e^{2a} − 1",
         sp.tanh(a).rewrite(sp.exp), E / (E + 2))
    d.eq("1 − tanh² a = 4(E + 1)/(E + 2)²", (1 - sp.tanh(a) ** 2).rewrite(sp.exp),
         4 * (E + 1) / (E + 2) ** 2)
    d.eq("1 − tanh a = 2/(E + 2) (the kernels' c − c tanh a beyond SOFTCAP_ONE)",
         (1 - sp.tanh(a)).rewrite(sp.exp), 2 / (E + 2))
    d.eq("tanh is odd: c tanh(−|x|/c) = −c tanh(|x|/c)", sp.tanh(-a), -sp.tanh(a))
    d.eq("the limits: c tanh(±∞/c) = ±c (a −inf logit becomes −c)",
         sp.limit(c * sp.tanh(x / c), x, -sp.oo), -c)
    d.nonneg("0 <= 1 − tanh² (the derivative never flips a gradient's sign)",
             4 * sp.exp(2 * a) / (sp.exp(2 * a) + 1) ** 2)

    # 2. z-loss -----------------------------------------------------------------------------
    S = sp.Sum(sp.exp(zeta[j]), (j, 1, K))
    lse = sp.log(S)
    rng = sp.Q.ge(i, 1) & sp.Q.le(i, K)
    d.eq("∂/∂ζ_i (z w lse²) = 2 z w lse softmax_i", sp.Derivative(zl * w * lse**2, zeta[i]),
         2 * zl * w * lse * sp.exp(zeta[i]) / S, assume=rng)

    # 3. the combined gradient ------------------------------------------------------------------
    def combined(KK):
        xs = sp.symbols(f"x1:{KK + 1}", real=True)
        As = sp.symbols(f"a1:{KK + 1}", nonnegative=True)
        zs = [c * sp.tanh(v / c) for v in xs]
        Ssum = sum(sp.exp(v) for v in zs)
        L = sp.log(Ssum)
        loss = sum(As[r] * (L - zs[r]) for r in range(KK)) + zl * w * L**2
        A = sum(As)
        out = []
        for r in range(KK):
            p = sp.exp(zs[r]) / Ssum
            rhs = ((A + 2 * zl * w * L) * p - As[r]) * (1 - sp.tanh(xs[r] / c) ** 2)
            out.append((sp.diff(loss, xs[r]), rhs))
        return out

    d.each_K("∂ℓ/∂x_i = ((A + 2 z w lse) softmax_i − a_i)(1 − tanh²(x_i/c))", combined,
             Ks=range(2, 5), show=lambda KK: combined(KK)[0])

    # 4. the kernels' split -----------------------------------------------------------------------
    def split(KK):
        zs = sp.symbols(f"zeta1:{KK + 1}", real=True)
        As = sp.symbols(f"a1:{KK + 1}", nonnegative=True)
        M = sp.Symbol("M", real=True)
        L = sp.log(sum(sp.exp(v - M) for v in zs))
        lse_ = sp.log(sum(sp.exp(v) for v in zs))
        lhs = sum(As[r] * (lse_ - zs[r]) for r in range(KK)) + zl * w * lse_**2
        rhs = sum(As[r] * (M - zs[r]) for r in range(KK)) + sum(As) * L + zl * w * (M + L) ** 2
        # lse = M + L for any real M: the exponentials of both are equal
        return [(sp.expand(sp.exp(lse_)), sp.expand(sp.exp(M + L))),
                (lhs.subs(lse_, M + L), rhs)]

    d.each_K("ℓ = Σ a_c (M − ζ_c) + A L + z w (M + L)², L = log Σ exp(ζ_j − M)", split,
             Ks=range(2, 5), show=lambda KK: split(KK)[1])
    Mz = sp.Symbol("M", real=True)
    Lz = sp.Symbol("L", nonnegative=True)
    d.nonneg("z w (M + L)² >= 0: added to the non-negative loss terms without cancellation",
             zl * w * (Mz + Lz) ** 2)

    # 5. the constants ---------------------------------------------------------------------------
    d.holds("expm1's Taylor tail on |r| <= 0.35 after 23 terms: 0.35^24/24! · 2 < 2^-114 "
            "(the tail is below twice its first term)",
            sp.Rational(35, 100) ** 24 / sp.factorial(24) * 2 < sp.Rational(1, 2**114))
    d.holds("beyond a = 40: 1 − tanh a = 2/(e^{2a} + 1) < 2 e^{-80} < 2^-114",
            2 * sp.exp(-80) < sp.Rational(1, 2**114))
    d.cite("|tanh a − a| <= a³/3 for a >= 0", "alternating Taylor series of tanh with "
           "decreasing terms for 0 <= a <= 1 (tanh a = a − a³/3 + 2a⁵/15 − ...)")
    d.holds("below a = 2^-60: a³/3 < 2^-120 a", sp.Rational(1, 2**120) / 3 < sp.Rational(1, 2**120))
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
