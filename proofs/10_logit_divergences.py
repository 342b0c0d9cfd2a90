"""Claim 10: the forms of KL(softmax(x) ‖ softmax(y)) and H(softmax(x)) that the kernels evaluate, and their gradients.

Claim
    With P = softmax(x), Q = softmax(y) and δ_i = log P_i − log Q_i = (x_i − y_i) − (lse x − lse y),
    KL(P‖Q) = Σ_i P_i δ_i = Σ_i P_i φ(δ_i), φ(t) = t + e^{−t} − 1 ≥ 0 (every term non-negative,
    zero iff δ_i = 0); φ(t) = Σ_{k≥2} (−t)^k/k!; P_i φ(δ_i) = Q_i − P_i(1 − δ_i); a common error e in
    the δ_i changes the sum by e^e − 1 − e only (second order); ∂KL/∂x_j = P_j(δ_j − KL) and
    ∂KL/∂y_j = Q_j − P_j; H(softmax x) = Σ_i P_i (lse x − x_i) and ∂H/∂x_j = P_j(−log P_j − H).
    Jensen–Shannon, M = βP + (1 − β)Q: with s_i = log(M_i/P_i), r_i = log(M_i/Q_i),
    M_i/P_i = 1 + (1 − β) expm1(−δ_i), M_i/Q_i = 1 + β expm1(δ_i), KL(P‖M) = Σ_i P_i φ(−s_i)
    (and likewise for Q), so 0 ≤ JSD_β; JSD_β ≤ h(β) = −β log β − (1 − β) log(1 − β);
    ∂JSD_β/∂x_j = β P_j(log(P_j/M_j) − KL(P‖M)), ∂JSD_β/∂y_j = (1 − β) Q_j(log(Q_j/M_j) − KL(Q‖M)).
    The float64 kernel's forms: φ(−log(1 + w)) = ψ(w) = w − log1p(w) = w² Σ_k (−w)^k/(k + 2),
    e^{−δ} − 1 = −E/(1 + E) with E = e^{δ} − 1, and R ψ(w) = M − R(1 + σ) for M = R e^σ.

Source
    The definition of KL; the identity Σ_i Q_i = 1.

Justifies
    ``crossent.kernels.divergence`` (``kl_divergence_logits``, ``js_divergence_logits``,
    ``entropy_logits`` and their gradients).

Scope
    Real t; 0 < β < 1 (β = 0 and β = 1 give M = Q and M = P: JSD = 0); K = 2, 3 explicitly
    for the sums and the gradients.
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
        title="Claim 10: KL and Jensen–Shannon between two softmaxes as sums of non-negative terms",
        claim="KL(P‖Q) = Σ P_i φ(δ_i), φ(t) = t + e^{−t} − 1 ≥ 0; ∂KL/∂x_j = P_j(δ_j − KL), "
        "∂KL/∂y_j = Q_j − P_j; 0 ≤ JSD_β ≤ h(β) and its gradient",
        source="the definition of KL; Σ Q_i = 1",
        justifies="crossent.kernels.divergence (kl_divergence_logits, js_divergence_logits, "
        "entropy_logits and their gradients)",
        scope="real t; 0 < β < 1; K = 2, 3 explicitly",
    )
    delta = sp.log(P) - sp.log(Q)
    d.eq("P e^{−δ} = Q for δ = log P − log Q", P * sp.exp(-delta), Q)
    d.eq("P φ(δ) − P δ = Q − P (so the sums agree when Σ P = Σ Q = 1)",
         P * phi(delta) - P * delta, Q - P)
    d.eq("the term away from 0 (float64: δ ≤ −3 and δ ≥ 1; float32: δ ≤ −2 and δ ≥ 1): "
         "P φ(δ) = Q + P(δ − 1)", P * phi(delta), Q + P * (delta - 1))
    d.eq("a common factor: Q e^{e} = P e^{−(δ − e)} (the Q_i rescaled by e^{l − l_stats} "
         "belong to δ − (l − l_stats))", Q * sp.exp(e), P * sp.exp(-(delta - e)))
    s_ = sp.Symbol("s", positive=True)
    g_int = sp.Integral((1 - s_) * sp.exp(-tn * s_), (s_, 0, 1))
    d.eq("g(t) = φ(t)/t² = ∫_0^1 (1 − s) e^{−ts} ds (the function _phi_dd's polynomial "
         "approximates)", phi(tn) / tn**2, g_int.doit())
    for n_ in range(4):
        d.eq(f"g^({n_})(−1/2)/{n_}! = (1/{n_}!) ∫_0^1 (1 − s)(−s)^{n_} e^{{s/2}} ds, the "
             f"Taylor coefficient a_{n_} at −1/2 (|a_n| ≤ e^{{1/2}}/(n!(n+1)(n+2)))",
             sp.diff(g_int.doit(), tn, n_).subs(tn, -sp.Rational(1, 2)) / sp.factorial(n_),
             sp.integrate((1 - s_) * (-s_) ** n_ * sp.exp(s_ / 2), (s_, 0, 1)) / sp.factorial(n_))
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
    # --- Jensen–Shannon -------------------------------------------------------------------
    b = sp.Symbol("beta", positive=True)
    c = sp.Symbol("c", positive=True)  # c = 1 − β
    M = b * P + c * Q
    d.eq("M/P = 1 + (1 − β) expm1(−δ) with Q = P e^{−δ} (β + c = 1)",
         (b * P + (1 - b) * P * sp.exp(-t)) / P, 1 + (1 - b) * (sp.exp(-t) - 1))
    d.eq("M/Q = 1 + β expm1(δ) with P = Q e^{δ}",
         (b * Q * sp.exp(t) + (1 - b) * Q) / Q, 1 + b * (sp.exp(t) - 1))
    d.eq("P φ(−log(M/P)) − P log(P/M) = M − P (the sums agree: Σ M = Σ P = 1)",
         P * phi(-sp.log(M / P)) - P * sp.log(P / M), M - P)
    d.nonneg("the upper bound's step: 1/β − P/M = cQ/(β M) ≥ 0, so log(P_i/M_i) ≤ −log β",
             sp.together(1 / b - P / M))
    d.nonneg("likewise 1/c − Q/M ≥ 0, so log(Q_i/M_i) ≤ −log(1 − β)", sp.together(1 / c - Q / M))
    d.note(
        "Hence β Σ P_i log(P_i/M_i) ≤ −β log β Σ P_i = −β log β and (1 − β) Σ Q_i log(Q_i/M_i) "
        "≤ −(1 − β) log(1 − β): JSD_β ≤ h(β) (log increasing; equality when the supports of P "
        "and Q are disjoint, where M_i = βP_i or (1 − β)Q_i)."
    )

    def js_free(KK):
        Ps = sp.symbols(f"P1:{KK + 1}", positive=True)
        Qs = sp.symbols(f"Q1:{KK + 1}", positive=True)
        Ms = [b * p + c * q for p, q in zip(Ps, Qs)]
        js = sum(b * p * sp.log(p / m) + c * q * sp.log(q / m) for p, q, m in zip(Ps, Qs, Ms))
        ent = sum(b * p * sp.log(p) + c * q * sp.log(q) - m * sp.log(m)
                  for p, q, m in zip(Ps, Qs, Ms))
        out = [(sp.expand_log(js, force=True), sp.expand_log(ent, force=True))]
        out += [(sp.diff(ent, Ps[j]), b * (sp.log(Ps[j]) - sp.log(Ms[j]))) for j in range(KK)]
        out += [(sp.diff(ent, Qs[j]), c * (sp.log(Qs[j]) - sp.log(Ms[j]))) for j in range(KK)]
        return out

    d.each_K("JSD_β = Σ βP log P + (1−β)Q log Q − M log M; ∂/∂P_j = β log(P_j/M_j), "
             "∂/∂Q_j = (1 − β) log(Q_j/M_j) (P, Q free)", js_free, Ks=(2, 3))

    def js_chain(KK):
        Ps = sp.symbols(f"P1:{KK + 1}", positive=True)
        a = sp.symbols(f"a1:{KK + 1}", real=True)
        # the softmax Jacobian ∂P_i/∂x_j = P_i(δ_ij − P_j) (claim 8), with Σ P_i = 1
        return [(sum(a[i] * Ps[i] * ((1 if i == j else 0) - Ps[j]) for i in range(KK)),
                 Ps[j] * (a[j] - sum(Ps[i] * a[i] for i in range(KK)))) for j in range(KK)]

    d.each_K("chain rule through the softmax: Σ_i a_i ∂P_i/∂x_j = P_j(a_j − Σ_i P_i a_i); with "
             "a_i = β log(P_i/M_i), Σ P_i a_i = β KL(P‖M): ∂JSD_β/∂x_j = β P_j(log(P_j/M_j) − KL(P‖M))",
             js_chain, Ks=(2, 3))
    w = sp.Symbol("w", real=True)
    wp = sp.Symbol("w", positive=True)
    E = sp.Symbol("E", real=True)
    d.eq("the float64 JS term from w = M/R − 1: φ(−log(1 + w)) = w − log(1 + w) = ψ(w)",
         phi(-sp.log(1 + wp)), wp - sp.log(1 + wp))
    d.eq("ψ(w) = w² Σ_{k=0}^{N} (−w)^k/(k + 2) + O(w^{N+3}) (N = 16: the series the kernel sums)",
         sp.series(w - sp.log(1 + w), w, 0, 19).removeO(),
         w**2 * sum((-w) ** k / (k + 2) for k in range(17)))
    d.eq("e^{−δ} − 1 = −E/(1 + E) for E = e^{δ} − 1 (one exponential for both sides)",
         sp.exp(-t) - 1, (-E / (1 + E)).subs(E, sp.exp(t) - 1))
    d.eq("R ψ(w) = M − R(1 + σ) for M = R e^{σ}, w = e^{σ} − 1 (the form for w > 2^58)",
         P * ((sp.exp(t) - 1) - t), P * sp.exp(t) - P * (1 + t))
    d.note(
        "Every term P_i φ(−s_i), Q_i φ(−r_i) of JSD_β is non-negative (φ ≥ 0 above); s_i and "
        "r_i are log1p of (1 − β) expm1(−δ_i) and β expm1(δ_i), small when P ≈ Q, computed from "
        "the accurate δ_i: the value is never a difference of nearly equal quantities."
    )
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
