"""Claim 7: the identities the Numba kernels rely on.

Claim
    With m = max_i z_i = z_a (a = argmax) and s = Σ_{i≠a} exp(z_i − m) >= 0:

    1. shift invariance: logsumexp(z + c) = c + logsumexp(z);
    2. the loss split: −log softmax(z)_y = (m − z_y) + log1p(s), both terms >= 0, so the sum
       has condition number 1 (no cancellation); and log_softmax_i = −((m − z_i) + log1p(s))
       for every i (for i = a the first term is 0);
    3. the gradient entry at the label: 1 − softmax_y = (Σ_{i≠y} e^{z_i−m}) / (Σ_i e^{z_i−m}),
       a ratio of sums of nonnegative terms (no cancellation in 1 − p_y);
    4. probability targets: Σ_c t_c (−log softmax_c) = Σ_c t_c (m − z_c) + (Σ_c t_c) log1p(s),
       all terms >= 0 for t >= 0; its gradient is softmax·Σt − t;
    5. label smoothing: with t = (1 − ε) onehot_y + ε/C,
       Σ_c t_c ℓ_c = (1 − ε) ℓ_y + (ε/C) Σ_c ℓ_c  (ℓ_c = −log softmax_c >= 0);
    6. two classes: −log softmax_y = log1p(exp(−d)), d = z_y − z_other, and the overflow-free
       form max(−d, 0) + log1p(exp(−|d|));
    7. KL termwise: Σ p log(p/q) = Σ q φ(p/q) + Σ (p − q), φ(t) = t log t − t + 1 >= 0
       (φ(0) = 1 for p = 0), so each term q φ(p/q) >= 0 and small when p ≈ q.

Source
    docs/design.md#mathematics (KL = H − H is for proofs, not computing) and
    docs/design.md#accuracy; Blanchard, Higham & Higham (2021), "Accurately computing the
    log-sum-exp and softmax functions", IMA J. Numer. Anal. 41(4).

Justifies
    Kernel lines: logsumexp/log_softmax = m + log1p(s) with the max term excluded from s;
    cross_entropy's loss = (m − z_y) + log1p(s); the fused gradient's label entry computed as
    (sum without the label)/(total) instead of p_y − 1; the probability-target and
    label-smoothing paths; the binary fast path log1p(exp(−|d|)) + max(−d, 0); kl_divergence
    computed termwise as q φ(p/q) + (p − q).

Scope
    General K (Sum/IndexedBase) for 1, 4, 5, 7 and the symbolic forms of 2, 3; K = 2..8 for
    every argmax position a and label y for 2 and 3.
"""

from __future__ import annotations

import sys

import sympy as sp

import _checker

c, i, j = sp.symbols("c i j", integer=True, positive=True)
y = sp.Symbol("y", integer=True, positive=True)
K = sp.Symbol("K", integer=True, positive=True)  # number of classes (C in the docs)
z = sp.IndexedBase("z", real=True)
t = sp.IndexedBase("t", nonnegative=True)
ell = sp.IndexedBase("ell", nonnegative=True)  # ℓ_c = −log softmax_c >= 0
dist = sp.IndexedBase("delta", nonnegative=True)  # m − z_c >= 0
p = sp.IndexedBase("p", positive=True)
q = sp.IndexedBase("q", positive=True)
m, cc = sp.symbols("m c_shift", real=True)
s = sp.Symbol("s", nonnegative=True)  # s = Σ_{i≠a} exp(z_i − m)
eps = sp.Symbol("epsilon", nonnegative=True)
eps_c = sp.Symbol("epsbar", nonnegative=True)  # 1 − ε >= 0
x = sp.Symbol("x", positive=True)


def lse(zz, shift=0):
    return sp.log(sp.Sum(sp.exp(zz[j] + shift), (j, 1, K)))


def phi(u):
    """φ(u) = u log u − u + 1."""
    return u * sp.log(u) - u + 1


def build() -> _checker.Derivation:
    d = _checker.Derivation(
        title="Claim 7: identities behind the kernels",
        claim="shift invariance; loss = (m − z_y) + log1p(s) with both terms >= 0; 1 − p_y as a "
        "ratio of sums; probability-target and label-smoothing decompositions; binary "
        "log1p(exp(−d)); KL = Σ q φ(p/q) + Σ (p − q), φ >= 0",
        claim_tex=r"With $m = \max_i z_i$ (reached at $i = a$) and $s = \sum_{i \ne a} e^{z_i - m}$: "
        r"$\operatorname{logsumexp}$ is shift invariant; "
        r"$-\log \operatorname{softmax}(z)_y = (m - z_y) + \operatorname{log1p}(s)$ with both terms $\ge 0$; "
        r"$1 - p_y$ is a ratio of sums; the loss with probability targets and with label smoothing "
        r"is a sum of non-negative terms; with two classes the loss is $\operatorname{log1p}(e^{-d})$; "
        r"$D(p \Vert q) = \sum_k q_k\, \varphi(p_k / q_k) + \sum_k (p_k - q_k)$ with $\varphi \ge 0$.",
        source="docs/design.md#mathematics and docs/design.md#accuracy; Blanchard, Higham & Higham 2021",
        justifies="logsumexp/log_softmax/cross_entropy/value_and_grad/kl_divergence kernels",
        scope="general K for shift, targets, smoothing, KL; K = 2..8 (every argmax a, label y) "
        "for the max split and the label gradient",
    )
    rng = sp.Q.ge(y, 1) & sp.Q.le(y, K)
    # 1. shift invariance --------------------------------------------------------------------
    d.eq("Σ_j exp(z_j + c) = exp(c) Σ_j exp(z_j)", sp.Sum(sp.exp(z[j] + cc), (j, 1, K)),
         sp.exp(cc) * sp.Sum(sp.exp(z[j]), (j, 1, K)))
    Sx = sp.Symbol("S", positive=True)  # S = Σ_j exp(z_j) > 0
    d.eq("log(exp(c) S) = c + log S  (S = Σ_j exp(z_j) > 0): logsumexp(z + c) = c + logsumexp(z)",
         sp.log(sp.exp(cc) * Sx), cc + sp.log(Sx))

    # 2. the loss split ------------------------------------------------------------------------
    zy = sp.Symbol("z_y", real=True)
    d.cite("with c = −m: logsumexp(z) = m + log Σ_i exp(z_i − m)",
           "shift invariance above; the term i = a is exp(0) = 1, so Σ_i exp(z_i − m) = 1 + s")
    d.eq("−log softmax_y = logsumexp(z) − z_y = (m − z_y) + log1p(s)",
         (m + sp.log(1 + s)) - zy, (m - zy) + sp.log(1 + s),
         tex=r"\operatorname{logsumexp}(z) - z_y = \bigl(m + \operatorname{log1p}(s)\bigr) - z_y "
         r"= (m - z_y) + \operatorname{log1p}(s)")
    d.nonneg("log1p(s) >= 0 for s >= 0", sp.log(1 + s))
    d.nonneg("m − z_y >= 0 (m is the max): write it δ_y >= 0", dist[y])
    a_, b_ = sp.symbols("a b", nonnegative=True)
    bpos = sp.Symbol("b", positive=True)
    d.eq("condition number of a + b for a, b >= 0: (|a| + |b|)/|a + b| = 1 (no cancellation)",
         (sp.Abs(a_) + sp.Abs(bpos)) / sp.Abs(a_ + bpos), 1,
         tex=r"\frac{|a| + |b|}{|a + b|} = 1 \qquad (a \ge 0,\ b > 0)")

    def split(KK):
        es = sp.symbols(f"e1:{KK + 1}", positive=True)  # e_i = exp(z_i)
        zs = [sp.log(e) for e in es]
        out = []
        for a in range(KK):
            M = zs[a]
            sa = sum(sp.exp(zs[r] - M) for r in range(KK) if r != a)
            for yy in range(KK):
                lhs = (M - zs[yy]) + sp.log(1 + sa)
                rhs = sp.log(sum(es)) - zs[yy]
                # both real; equal iff their exponentials are equal (a rational identity in e)
                out.append(sp.cancel(sp.exp(lhs) - sp.exp(rhs)) == 0)
                # gradient at the label: 1 − softmax_y = Σ_{i≠y} e^{z_i−m} / Σ_i e^{z_i−m}
                num = sum(sp.exp(zs[r] - M) for r in range(KK) if r != yy)
                den = sum(sp.exp(zs[r] - M) for r in range(KK))
                out.append(sp.cancel((1 - es[yy] / sum(es)) - num / den) == 0)
        return out

    def split_example(KK):
        z1, z2 = sp.symbols("z1 z2", real=True)
        return (-sp.log(sp.exp(z2) / (sp.exp(z1) + sp.exp(z2))),
                (z1 - z2) + sp.log(1 + sp.exp(z2 - z1)))

    d.each_K("−log softmax_y = (m − z_y) + log1p(Σ_{i≠a} e^{z_i−m}) and "
             "1 − p_y = Σ_{i≠y} e^{z_i−m} / Σ_i e^{z_i−m}, every argmax a and label y",
             split, show=split_example,
             because="z_i = log e_i with e_i > 0; the loss check compares exp of both (real) sides")
    d.eq("log_softmax_i = −((m − z_i) + log1p(s)) for every i (for i = a, m − z_a = 0)",
         sp.Symbol("z_i", real=True) - (m + sp.log(1 + s)),
         -((m - sp.Symbol("z_i", real=True)) + sp.log(1 + s)),
         tex=r"z_i - \bigl(m + \operatorname{log1p}(s)\bigr) = -\bigl((m - z_i) + \operatorname{log1p}(s)\bigr)")

    # 3. gradient entry at the label ------------------------------------------------------------
    ey, r_ = sp.symbols("e_y r", nonnegative=True)  # e_y = exp(z_y − m) <= 1, r = Σ_{i≠y}
    tot = ey + r_
    d.eq("1 − p_y = 1 − e_y/(e_y + r) = r/(e_y + r), r = Σ_{i≠y} exp(z_i − m)",
         1 - ey / tot, r_ / tot, because="numerator and denominator are sums of nonnegative terms")

    # 4. probability targets -------------------------------------------------------------------
    L1 = sp.log(1 + s)
    lossc = dist[c] + L1  # −log softmax_c = (m − z_c) + log1p(s)
    d.eq("Σ_c t_c (−log softmax_c) = Σ_c t_c (m − z_c) + (Σ_c t_c) log1p(s)",
         sp.Sum(t[c] * lossc, (c, 1, K)),
         sp.Sum(t[c] * dist[c], (c, 1, K)) + L1 * sp.Sum(t[c], (c, 1, K)))
    d.nonneg("every term is >= 0 (t >= 0, m − z_c >= 0, log1p(s) >= 0)",
             sp.Sum(t[c] * dist[c], (c, 1, K)) + L1 * sp.Sum(t[c], (c, 1, K)))
    soft_loss = sp.Sum(t[c] * (sp.log(sp.Sum(sp.exp(z[j]), (j, 1, K))) - z[c]), (c, 1, K))
    d.eq("∂/∂z_i Σ_c t_c (−log softmax_c) = softmax_i Σ_c t_c − t_i",
         sp.Derivative(soft_loss, z[i]),
         sp.exp(z[i]) / sp.Sum(sp.exp(z[j]), (j, 1, K)) * sp.Sum(t[c], (c, 1, K)) - t[i],
         assume=sp.Q.ge(i, 1) & sp.Q.le(i, K))

    # 5. label smoothing -------------------------------------------------------------------------
    smooth = (1 - eps) * sp.KroneckerDelta(c, y) + eps / K
    d.eq("the smoothed target sums to 1", sp.Sum(smooth, (c, 1, K)), 1, assume=rng)
    d.eq("Σ_c t_c ℓ_c = (1 − ε) ℓ_y + (ε/C) Σ_c ℓ_c",
         sp.Sum(smooth * ell[c], (c, 1, K)),
         (1 - eps) * ell[y] + eps / K * sp.Sum(ell[c], (c, 1, K)), assume=rng)
    d.nonneg("both terms >= 0 for 0 <= ε <= 1 (ε̄ = 1 − ε >= 0, ℓ >= 0)",
             eps_c * ell[y] + eps / K * sp.Sum(ell[c], (c, 1, K)),
             tex=r"\bar\epsilon\, \ell_y + \frac{\epsilon}{K} \sum_{c=1}^{K} \ell_c \geq 0")
    d.eq("Σ_c ℓ_c = Σ_c (m − z_c) + C log1p(s): also a sum of nonnegative terms",
         sp.Sum(dist[c] + L1, (c, 1, K)), sp.Sum(dist[c], (c, 1, K)) + K * L1)

    # 6. two classes -----------------------------------------------------------------------------
    z1, z2 = sp.symbols("z_y z_o", real=True)
    u = sp.Symbol("u", positive=True)
    d.eq_exp("K = 2: −log softmax_y = log1p(exp(−(z_y − z_o)))",
             -sp.log(sp.exp(z1) / (sp.exp(z1) + sp.exp(z2))), sp.log(1 + sp.exp(-(z1 - z2))))
    d.eq_exp("d = −u < 0: log1p(exp(−d)) = −d + log1p(exp(d)) (no overflow of exp(−d))",
             sp.log(1 + sp.exp(u)), u + sp.log(1 + sp.exp(-u)))
    d.eq("d = u >= 0: log1p(exp(−d)) = max(−d, 0) + log1p(exp(−|d|))",
         sp.log(1 + sp.exp(-u)), sp.Max(-u, 0) + sp.log(1 + sp.exp(-sp.Abs(u))),
         tex=r"\operatorname{log1p}(e^{-u}) = \max(-u, 0) + \operatorname{log1p}(e^{-|u|}) \qquad (u > 0)")
    d.eq("d = −u < 0: max(−d, 0) + log1p(exp(−|d|)) = −d + log1p(exp(d))",
         sp.Max(u, 0) + sp.log(1 + sp.exp(-sp.Abs(-u))), u + sp.log(1 + sp.exp(-u)),
         tex=r"\max(u, 0) + \operatorname{log1p}(e^{-|-u|}) = u + \operatorname{log1p}(e^{-u}) \qquad (u > 0)")

    # 7. KL termwise -----------------------------------------------------------------------------
    pk, qk = sp.symbols("p q", positive=True)
    d.eq("p log(p/q) = q φ(p/q) + (p − q)", pk * sp.log(pk / qk), qk * phi(pk / qk) + (pk - qk))
    d.eq("Σ_k p log(p/q) = Σ_k q φ(p/q) + Σ_k (p − q)",
         sp.Sum(p[c] * sp.log(p[c] / q[c]), (c, 1, K)),
         sp.Sum(q[c] * phi(p[c] / q[c]), (c, 1, K)) + sp.Sum(p[c] - q[c], (c, 1, K)))
    d.eq("φ(x) = x·g(1/x) with g(t) = t − 1 − log t >= 0 (claim 5b)", phi(x), x * (1 / x - 1 - sp.log(1 / x)))
    d.eq("min_{x>0} φ(x) = 0", sp.minimum(phi(x), x, sp.Interval.open(0, sp.oo)), 0,
         because="so every term q φ(p/q) >= 0; φ(x) ≈ (x − 1)²/2 near x = 1",
         tex=r"\min_{x > 0}\,(x \log x - x + 1) = 0")
    d.eq("φ(x) = (x − 1)²/2 + O((x − 1)³): the terms are small, not cancelling, when p ≈ q",
         sp.series(phi(1 + sp.Symbol("h")), sp.Symbol("h"), 0, 3).removeO(), sp.Symbol("h") ** 2 / 2,
         tex=r"\varphi(1 + h) = \frac{h^2}{2} + O(h^3), \qquad \varphi(x) = x \log x - x + 1")
    d.eq("p = 0: q φ(0+) = q (lim_{x→0+} φ(x) = 1), and p log(p/q) − p + q → q as well",
         sp.Limit(phi(x), x, 0, "+"), 1)
    return d


def main(argv=None) -> int:
    return _checker.run_main(build, argv)


if __name__ == "__main__":
    sys.exit(main())
