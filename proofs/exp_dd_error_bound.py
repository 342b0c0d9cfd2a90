"""Certified error bound of the double-double exponential ``crossent.kernels.exp.exp_parts_dd``.

Claim
-----
For every float64 ``x`` in ``[-1100, 0]`` (and ``x = -inf``, clamped to ``X_MIN_PARTS = -1100``),
``exp_parts_dd(x)`` returns ``(h, l, s)`` with ``s = 2^(k + 600)`` a normal power of two and

    ``|(h + l) - 2^(j/16) e^{r*}| <= EXP_PARTS_DD_MAX_REL_ERR * 2^(j/16) e^{r*}``,

where ``k' = 16 k + j`` (``0 <= j < 16``) is the integer the kernel computes and
``r* = x - k' ln2/16`` exactly, so that ``(h + l) s = 2^600 e^x (1 + eps)``,
``|eps| <= EXP_PARTS_DD_MAX_REL_ERR``. Moreover ``h`` lies in ``[0.97, 2]`` and
``|l| <= ulp(h)/2`` (the caller's Ziv rounding test relies on all three). The analysis assumes no
contraction inside the error-free transformations (the module is compiled without ``fastmath``);
every other ``a*b + c`` is counted unfused, which also bounds a fused evaluation.

Source: the kernel ``src/crossent/kernels/exp.py`` (``exp_parts_dd`` and its constants ``DD_*``);
the method is Tang's table-driven exponential with a double-double evaluation (Muller,
*Elementary Functions*, 3rd ed., ch. 11; Tang, ACM TOMS 15, 1989), the error-free transformations
are Dekker's and Knuth's (Muller et al., *Handbook of Floating-Point Arithmetic*, 2nd ed., ch. 4),
the rounding analysis is Higham's running error analysis (*Accuracy and Stability of Numerical
Algorithms*, 2nd ed., sec. 3.1), done on intervals as ``proofs/exp_error_bound.py`` does.

Method
------
All real-number statements are checked with ``mpmath.iv`` interval arithmetic at 160 bits, so
every number printed is an enclosure, not an estimate. The helpers (interval hull, half an ulp,
the Markdown output) are those of ``proofs/exp_error_bound.py``.

1. Constants: ``DD_C1`` has at most 38 significant bits, ``DD_C1 + DD_C2 + DD_C3`` is within
   ``2^-150`` of ``ln2/16``; each table pair ``(T_hi, T_lo)`` is within ``2^-106`` relative of ``2^(j/16)``.
2. Reduction: ``k' = round(16 x / ln2)`` by the shift trick, ``|k'| < 2^15``; ``x - k' C1`` is
   exact, ``k' C2`` is split exactly (TwoProduct), ``r = r_h + r_l`` is within ``2^-110`` of
   ``r*``, ``|r| <= ln2/32 (1 + 2^-40)``.
3. Exact steps: every TwoProduct (exact up to ``2^-1074`` when a product underflows), every
   Fast2Sum (its precondition ``|a| >= |b|`` checked on the enclosures, down to the smallest
   subnormal ``r_h`` by dyadic shells), the final renormalization.
4. Approximation: the Taylor polynomial to ``r^10`` (Lagrange remainder), the linear treatment
   of ``r_l`` (``r_l e^{r_h}`` replaced by ``r_l (1 + a_h)``), the term ``T_lo * low`` the kernel
   leaves out.
5. Roundings: on 1024 subintervals of the computed ``r_h`` and for each of the 16 table entries,
   every intermediate value is enclosed and each rounding bounded by half an ulp of the largest
   value of its enclosure (or by the value itself, when it is smaller); errors propagate through
   the products and sums as in a running error analysis.
6. Total: the absolute error of ``h + l`` against ``2^(j/16) e^{r*}`` divided by a lower bound of
   ``2^(j/16) e^{r*}``, maximised over the cells.

Run ``python proofs/exp_dd_error_bound.py`` (``--markdown`` prints the derivation as Markdown).
Exit status 0 means every assertion held.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import mpmath
from mpmath import iv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from exp_error_bound import (INFLATE, K, PREC, U, _lines, half_ulp, hull_abs,  # noqa: E402
                             ivprec, plain, print_derivation,
                             significant_bits, widen)

N_EVAL = 1024  # subintervals of [-R_h, R_h] for the rounding analysis (an even number: 0 is an end)
UNDERFLOW = mpmath.mpf(2) ** -1070  # absolute: the TwoProducts and the halving of s_h when they underflow


_PLAIN_MORE = [(r"\lfloor", "floor("), (r"\rfloor", ")"), (r"\leftarrow", "<-"), (r"\subset", "in"),
               (r"\varepsilon", "eps"), (r"\qquad", "   "), (r"\rho", "rho"), (r"\hat ", ""),
               (r"\bmod", "mod")]


def plain_text(line: str) -> str:
    """:func:`exp_error_bound.plain` with the few more macros this derivation uses."""
    for tex, text in _PLAIN_MORE:
        line = line.replace(tex, text)
    return plain(line)


def lg(v):
    return float(mpmath.log(v, 2))


def rnd_err(m):
    """Bound of |RN(y) - y| for any real |y| <= m: half an ulp, and never more than |y| (0 is a
    float)."""
    m = mpmath.mpf(m)
    return min(half_ulp(m), m)


def mig(v):
    """Lower bound of |t| over an interval ``v`` (0 if it contains 0)."""
    v = iv.mpf(v)
    a, b = mpmath.mpf(v.a.a), mpmath.mpf(v.b.b)
    if a <= 0 <= b:
        return mpmath.mpf(0)
    return min(abs(a), abs(b))


TINY = mpmath.mpf(2) ** -1074  # every float64 is an integer multiple of it


def snap(z):
    """The interval ``z`` shrunk to the multiples of 2^-1074 it contains: it still encloses every
    float64 in ``z`` (needed where subnormal values meet: an enclosure widened twice by half
    the subnormal spacing would reach 0)."""
    z = iv.mpf(z)
    a = mpmath.ceil(mpmath.mpf(z.a.a) / TINY) * TINY
    b = mpmath.floor(mpmath.mpf(z.b.b) / TINY) * TINY
    return iv.mpf([a, b])


def fl(z):
    """(enclosure of RN(y), bound of |RN(y) - y|) for every real y in ``z``."""
    r = rnd_err(hull_abs(z))
    return snap(widen(z, r)), r


class V:
    """A computed float64 value: ``v`` encloses it, ``e`` bounds |computed - ideal|, the ideal
    being the same expression evaluated exactly on the ideal inputs."""

    __slots__ = ("v", "e")

    def __init__(self, v, e=0):
        self.v = iv.mpf(v)
        self.e = mpmath.mpf(e)


def sym(m):
    return V(iv.mpf([-m, m]))


def const(c, exact):
    """A float64 constant standing for the real number ``exact``."""
    return V(iv.mpf(c), hull_abs(iv.mpf(c) - exact))


def rounded(z, e_in):
    """RN of a real enclosed by ``z``, whose ideal counterpart is within ``e_in`` of it."""
    v, r = fl(z)
    return V(v, e_in + r)


def add(a, b):
    return rounded(a.v + b.v, a.e + b.e)


def mul(a, b):
    return rounded(a.v * b.v, hull_abs(a.v) * b.e + (hull_abs(b.v) + b.e) * a.e)


# ----------------------------------------------------------------------------------------------
# Step 1-2: constants and reduction
# ----------------------------------------------------------------------------------------------
def constants_and_reduction(say):
    ln2 = iv.log(2)
    step = ln2 / K.DD_TABLE_SIZE
    say("## 1. Constants (the kernel's module constants)")
    say(r"Notation: $C_1, C_2, C_3$ = `DD_C1`, `DD_C2`, `DD_C3` (a three-part split of "
        r"$\ln 2 / 16$), $L$ = `DD_INV_STEP` ($\approx 16/\ln 2$), $\sigma$ = `SHIFT`, "
        r"$T_j = 2^{j/16}$ and its double-double $(T_{h}, T_{l})$ = `DD_TABLE_HI[j]`, "
        r"`DD_TABLE_LO[j]`; $u = 2^{-53}$; $\mathrm{fl}(\cdot)$ is a float64 operation rounded "
        r"to nearest.")
    say("")
    assert K.DD_TABLE_SIZE == 16 == 1 << K.DD_TABLE_BITS
    nb = significant_bits(K.DD_C1)
    assert nb <= K.DD_STEP_BITS == 38, nb
    m1 = int(K.DD_C1 * 2.0**42)
    assert m1 == K.DD_C1 * 2.0**42 and m1 < 2**38  # C1 is a multiple of 2^-42
    x_max = abs(K.X_MIN_PARTS)
    dinv = hull_abs(iv.mpf(K.DD_INV_STEP) - 16 / ln2)
    assert dinv <= U * K.DD_INV_STEP
    a_max = x_max * K.DD_INV_STEP  # |x L| (exact in the FMA)
    kmax = math.floor(a_max + 0.5)
    assert kmax < 2**15 and kmax * m1 < 2**53
    say(f"- $C_1$ = `{K.DD_C1.hex()}` has {nb} significant bits and is a multiple of $2^{{-42}}$: "
        f"$k' C_1$ is exact for $|k'| < 2^{{15}}$ ($|k'| \\cdot C_1 2^{{42}} < 2^{{53}}$).")
    delta = step - K.DD_C1 - K.DD_C2 - K.DD_C3
    d_abs = hull_abs(delta)
    assert d_abs < mpmath.mpf(2) ** -150
    c1_err = hull_abs(step - K.DD_C1)
    say(f"- $|\\ln 2/16 - C_1| \\le 2^{{{lg(c1_err):.1f}}}$, $|C_2| \\le 2^{{{lg(abs(K.DD_C2)):.1f}}}$, "
        f"$|C_3| \\le 2^{{{lg(abs(K.DD_C3)):.1f}}}$, and "
        f"$\\delta = |\\ln 2/16 - C_1 - C_2 - C_3| \\le 2^{{{lg(d_abs):.1f}}}$.")
    say(f"- $|L - 16/\\ln 2| \\le 2^{{{lg(dinv):.1f}}} \\le u L$.")
    # the table: |T_h + T_l - 2^(j/16)| <= 2^-106 2^(j/16), checked exactly at 160 bits
    tau = []
    for j in range(16):
        tj = iv.mpf(2) ** (iv.mpf(j) / 16)
        th, tl = K.DD_TABLE_HI[j], K.DD_TABLE_LO[j]
        assert 1 <= th < 2 and abs(tl) <= 2.0**-53
        tau_j = hull_abs(iv.mpf(th) + tl - tj)
        assert tau_j <= mpmath.mpf(2) ** -106 * mpmath.mpf(tj.a.a), j
        tau.append(tau_j)
    tau_rel = max(t / mpmath.mpf(2) ** (mpmath.mpf(j) / 16) for j, t in enumerate(tau))
    say(f"- The 16 table pairs: $T_h \\in [1, 2)$, $|T_l| \\le 2^{{-53}}$ and "
        f"$|T_h + T_l - 2^{{j/16}}| \\le 2^{{{lg(tau_rel):.2f}}}\\, 2^{{j/16}} \\le 2^{{-106}}\\, "
        f"2^{{j/16}}$ (each checked at 160 bits).")
    say("")

    say("## 2. Reduction (kernel: `t = fma(x, DD_INV_STEP, SHIFT)` ... `rl = rl - (e2 + kf * DD_C3)`)")
    assert a_max < 2**51
    say(f"- $x \\in [{K.X_MIN_PARTS:g}, 0]$ ($-\\infty$ and anything below are clamped to "
        f"`X_MIN_PARTS` by a select): $|x L| \\le {a_max:.3f} < 2^{{51}}$, so "
        f"$t = \\sigma + \\mathrm{{round}}(x L)$ (one FMA, $\\mathrm{{ulp}}(t) = 1$), "
        f"$k_f = t - \\sigma$ is exact (Sterbenz) and $k' = k_f \\in [-{kmax}, 0]$, "
        f"$|k'| < 2^{{15}}$; the int64 view of $t$ minus `SHIFT_BITS` is $k'$ exactly.")
    k_min = -((kmax + 15) // 16)  # floor(-kmax / 16)
    assert k_min + K.PARTS_SCALE_EXP >= -1022 and K.PARTS_SCALE_EXP <= 1023
    say(f"- $j = k' \\bmod 16 \\in [0, 15]$ and $k = k' \\gg 4 = \\lfloor k'/16 \\rfloor "
        f"\\in [{k_min}, 0]$, $16 k + j = k'$: the scale $s = 2^{{k + {K.PARTS_SCALE_EXP}}}$ is a "
        f"normal power of two (exponent $\\ge {k_min + K.PARTS_SCALE_EXP}$), and "
        f"$x = k \\ln 2 + j \\ln 2/16 + r^*$, so $(h + l) s = 2^{{{K.PARTS_SCALE_EXP}}} e^x "
        f"(h + l)/(T_j e^{{r^*}})$.")
    dk = mpmath.mpf(0.5) + x_max * dinv
    r_star = mpmath.mpf((step * dk).b)
    say(f"- $|16 x/\\ln 2 - k'| \\le 1/2 + |x|\\,|L - 16/\\ln 2| \\le 1/2 + "
        f"2^{{{lg(x_max * dinv):.1f}}}$, so $|r^*| \\le R^* = {float(r_star)!r}$ "
        f"($\\ln 2/32 = {float(mpmath.mpf(ln2.b.b) / 32)!r}$).")
    x0 = mpmath.mpf(0.5) / K.DD_INV_STEP
    hi_max = r_star + kmax * c1_err
    assert x0 > 2.0**-6 and x_max < 2**11 and hi_max < 2.0**-5
    say(f"- $r_0 = \\mathrm{{fma}}(-k_f, C_1, x)$ (`hi`) is exact: for $k' = 0$ it is $x$; for "
        f"$k' \\ne 0$, $|x| \\ge 1/(2L) = {float(x0):.5f} > 2^{{-6}}$, so "
        f"$\\mathrm{{ulp}}(x) \\ge 2^{{-58}}$, and $|x| < 2^{{11}}$, so "
        f"$\\mathrm{{ulp}}(x) \\le 2^{{-42}}$: $x$ and $k' C_1$ are multiples of "
        f"$\\min(\\mathrm{{ulp}}(x), 2^{{-42}}) \\ge 2^{{-58}}$ and $|r_0| \\le "
        f"{float(hi_max):.6f} < 2^{{-5}} = 2^{{53}} \\cdot 2^{{-58}}$.")
    p2_max = kmax * abs(K.DD_C2) * (1 + U)
    e2_max = half_ulp(p2_max)
    say(f"- $(p_2, e_2)$ = TwoProduct$(k_f, C_2)$: $p_2 + e_2 = k' C_2$ exactly (FMA; the product is "
        f"0 or above $2^{{-45}}$, no underflow), $|p_2| \\le 2^{{{lg(p2_max):.2f}}}$, "
        f"$|e_2| \\le 2^{{{lg(e2_max):.0f}}}$.")
    kc3 = kmax * abs(K.DD_C3)
    e_kc3 = rnd_err(kc3)
    d_max = e2_max + kc3 + e_kc3
    e_d = rnd_err(d_max)
    d_max += e_d
    hp = r_star + kmax * d_abs + e2_max + kc3  # |r_0 - p_2| = |r* + k' delta + e2 + k' C3|
    e_rh = half_ulp(hp)
    R_h = (hp + e_rh) * INFLATE  # |r_h| (r_h = fl(r_0 - p_2)); INFLATE: the mpf sums round
    rl0 = e_rh  # |r_l| after TwoSum: the rounding error of r_h
    e_rl = rnd_err(rl0 + d_max)
    rl_max = (rl0 + d_max + e_rl) * INFLATE
    dr = (e_kc3 + e_d + e_rl + kmax * d_abs) * INFLATE  # |r_h + r_l - r*|
    say(f"- $(r_h, r_l)$ = TwoSum$(r_0, -p_2)$ is exact, then $r_l \\leftarrow \\mathrm{{fl}}(r_l - "
        f"\\mathrm{{fl}}(e_2 + \\mathrm{{fl}}(k_f C_3)))$ (three roundings, at most "
        f"$2^{{{lg(e_kc3):.0f}}}$, $2^{{{lg(e_d):.0f}}}$, $2^{{{lg(e_rl):.0f}}}$): with "
        f"$r^* = r_0 - p_2 - e_2 - k' C_3 - k'\\delta$, $|r_h + r_l - r^*| \\le d_r = "
        f"2^{{{lg(dr):.2f}}}$.")
    assert R_h < 2.0**-5 and rl_max < 2.0**-58 and dr < mpmath.mpf(2) ** -108
    say(f"- $|r_h| \\le R_h = {float(R_h)!r} = (\\ln 2/32)(1 + 2^{{{lg(R_h / (mpmath.mpf(ln2.a.a) / 32) - 1):.1f}}})$ "
        f"and $|r_l| \\le 2^{{{lg(rl_max):.2f}}}$.")
    return dict(R_h=R_h, rl_max=rl_max, dr=dr, tau=tau)


# ----------------------------------------------------------------------------------------------
# Step 3-5: the evaluation, on a cell of r_h
# ----------------------------------------------------------------------------------------------
S6 = 1.0 / 6.0
S24 = 1.0 / 24.0


def evaluate_rh(R, rl_max, checks_only=False):
    """Enclosures and error bounds of everything that depends on r_h in ``R`` (not on j)."""
    rh = V(R)
    rl = sym(rl_max)
    # (sh, sl) = TwoProduct(rh, rh); (ch, cl) = TwoProduct(sh, rh); (fh, fl) = TwoProduct(sh, sh)
    # (the low parts are the rounding errors of the high parts)
    S, e_sl = fl(R * R)
    CH, e_cl = fl(S * R)
    FH, e_fl = fl(S * S)
    # c3 = fl(ch/6), c4 = fl(fh/24) (the multiplications by fl(1/6), fl(1/24))
    C3, eta3 = fl(CH * S6)
    C4, eta4 = fl(FH * S24)
    # Fast2Sums (rh, sh/2), (ah1, c3), (ah2, c4), with their preconditions |a| >= |b|
    half_sh, _ = fl(S / 2)
    AH1, e_al = fl(R + half_sh)
    AH2, e_a3 = fl(AH1 + C3)
    AH, e_a4 = fl(AH2 + C4)
    pre = (mig(R) >= hull_abs(half_sh), mig(AH1) >= hull_abs(C3), mig(AH2) >= hull_abs(C4))
    if checks_only:
        return pre
    # c3l = fl(fl(fma(-c3, 6, ch) + fl(cl + fl(sl rh))) fl(1/6)), ideal rh^3/6 - c3:
    # c3 = ch fl(1/6) + eta, so ch - 6 c3 = ch (1 - 6 fl(1/6)) - 6 eta (one rounding, the FMA)
    m1 = rounded(CH * (1 - 6 * iv.mpf(S6)) + iv.mpf([-6 * eta3, 6 * eta3]), 0)
    m4 = add(m1, add(sym(e_cl), mul(sym(e_sl), rh)))  # ideal ch - 6c3 + cl + sl rh = rh^3 - 6c3
    c3l = mul(m4, const(S6, iv.mpf(1) / 6))
    # c4l = fl(fl(fma(-c4, 24, fh) + fl(fl + 2 fl(sh sl))) fl(1/24)), ideal rh^4/24 - c4
    # (fh + fl + 2 sh sl = rh^4 - sl^2: the kernel leaves sl^2/24 out)
    n1 = rounded(FH * (1 - 24 * iv.mpf(S24)) + iv.mpf([-24 * eta4, 24 * eta4]), 0)
    n2 = mul(V(S), sym(e_sl))
    n2 = V(2 * n2.v, 2 * n2.e)  # exact doubling
    n4 = add(n1, add(sym(e_fl), n2))
    c4l = mul(n4, const(S24, iv.mpf(1) / 24))
    c4l.e += e_sl**2 / 24
    # q = Horner of DD_Q[6..1], ideal Q*(rh) = sum_{n=5}^{10} rh^(n-5)/n!
    q = const(K.DD_Q[6], iv.mpf(1) / math.factorial(10))
    for i in range(5, 0, -1):
        q = add(mul(q, rh), const(K.DD_Q[i], iv.mpf(1) / math.factorial(i + 4)))
    # fh as rh^4: fh = sh^2 - fl, sh = rh^2 - sl
    e_fh = e_fl + 2 * hull_abs(R * R) * e_sl + e_sl**2
    p5 = mul(mul(V(FH, e_fh), rh), q)  # fl(fl(fh rh) q), ideal rh^5 Q*(rh)
    # low = ((al + a3) + a4) + (fl(sl/2) + ((c3l + c4l) + ((rl + rl ah) + p5)))
    v2 = add(rl, mul(rl, V(AH)))
    v7 = add(add(c3l, c4l), add(v2, p5))
    v9 = add(mul(sym(e_sl), const(0.5, 0.5)), v7)
    w2 = add(add(sym(e_al), sym(e_a3)), sym(e_a4))
    low = add(w2, v9)
    # ah + ideal(low) = P_10(rh) - 1 + rl (1 + ah); against e^(rh + rl) - 1:
    ex = hull_abs(iv.exp(R))
    ex_xi = max(ex, 1)  # e^xi, xi between 0 and r_h (the Lagrange remainders)
    trunc = ex_xi * hull_abs(R) ** 11 / math.factorial(11)
    d_ah = (e_al + e_a3 + e_a4 + e_sl / 2 + hull_abs(c3l.v) + c3l.e + hull_abs(c4l.v) + c4l.e
            + ex_xi * hull_abs(R) ** 5 / 120)  # |ah - (e^rh - 1)|
    lin = rl_max * d_ah
    rl2 = ex * mpmath.mpf((iv.exp(rl_max) - 1 - rl_max).b)
    return dict(pre=pre, AH=AH, low=low, p5_err=p5.e, trunc=trunc, lin=lin, rl2=rl2)


def evaluate_j(j, th, tl, tau, red, R, ev):
    """The table part, ``h + l`` for entry ``j``: absolute error bounds by term and the relative
    total against ``T_j e^{r*}``."""
    tj = iv.mpf(2) ** (iv.mpf(j) / 16)
    AH, low = ev["AH"], ev["low"]
    PH, e_pl = fl(th * AH)  # (ph, pl) = TwoProduct(th, ah)
    assert th >= hull_abs(PH)  # Fast2Sum(th, ph)
    H1, e_e = fl(th + PH)
    # l = fl(e + fl(pl + fl(tl + fl(fl(th low) + fl(tl ah)))))
    z3 = add(mul(V(th), V(low.v)), mul(V(tl), V(AH)))
    l1 = add(sym(e_e), add(sym(e_pl), add(V(tl), z3)))
    assert mig(H1) >= hull_abs(l1.v)  # Fast2Sum(h1, l1), the renormalization
    H, _ = fl(H1 + l1.v)
    dr, rl_max = red["dr"], red["rl_max"]
    rho = R + iv.mpf([-rl_max - dr, rl_max + dr])  # encloses r*
    tjb = mpmath.mpf(tj.b)
    terms = dict(
        table=tau * hull_abs(1 + AH + low.v),
        low_roundings=tjb * (low.e - ev["p5_err"]),
        r5_term=tjb * ev["p5_err"],
        truncation=tjb * ev["trunc"],
        rl_linear=tjb * (ev["lin"] + ev["rl2"]),
        tl_low=abs(tl) * hull_abs(low.v),
        l_roundings=l1.e,
        reduction=tjb * hull_abs(iv.exp(rho)) * dr,
        underflow=UNDERFLOW,
    )
    denom = mpmath.mpf((tj * iv.exp(rho)).a.a)  # lower bound of T_j e^{r*}
    return terms, denom, H


def derive():
    out, say = _lines()
    with ivprec(PREC):
        say("# Error bound of the double-double exp (`crossent.kernels.exp.exp_parts_dd`)")
        say("")
        red = constants_and_reduction(say)
        R_h, rl_max = red["R_h"], red["rl_max"]
        say("")
        say("## 3. Exact steps")
        # Fast2Sum preconditions near 0: dyadic shells down to the smallest subnormal
        w = 2 * R_h / N_EVAL
        n0 = int(mpmath.floor(-mpmath.log(w, 2)))
        shells = 0
        for n in range(n0, 1074):
            for s in (1, -1):
                lo_, hi_ = mpmath.mpf(2) ** -(n + 1), mpmath.mpf(2) ** -n
                cell = iv.mpf([lo_, hi_]) if s > 0 else iv.mpf([-hi_, -lo_])
                assert all(evaluate_rh(cell, rl_max, checks_only=True)), n
                shells += 1
        say(r"- TwoProduct (`two_prod`, one FMA) is exact unless the product underflows, when its "
            r"error is at most $2^{-1074}$; so is the halving of $s_h$. The four TwoProducts after "
            r"the reduction ($r_h^2$, $s_h r_h$, $s_h^2$, $T_h a_h$) and the halving enter $h + l$ with weights "
            r"below 2 each: at most $2^{-1070}$ absolute in all. TwoSum is always exact.")
        say(r"- Fast2Sum$(a, b)$ (`fast_two_sum`) is exact when $|a| \ge |b|$. Checked on the "
            r"enclosures of every cell below for $(r_h, s_h/2)$, $(a_1, c_3)$, $(a_2, c_4)$ "
            r"($a_1 = \mathrm{fl}(r_h + s_h/2)$, $a_2 = \mathrm{fl}(a_1 + c_3)$, "
            r"$a_h = \mathrm{fl}(a_2 + c_4)$: the leading terms of $e^{r_h} - 1$), $(T_h, p_h)$ and the renormalization "
            r"$(h_1, l_1)$; the cells that touch 0 are covered by "
            f"{shells} dyadic shells $2^{{-n-1}} \\le |r_h| \\le 2^{{-n}}$, ${n0} \\le n \\le 1073$ "
            r"(down to the smallest subnormal), and $r_h = 0$ makes every term 0.")
        say("- So $r_h^2 = s_h + s_l$, $r_h^3 = c_h + c_l + s_l r_h$, $s_h^2 = f_h + f_l$, "
            "$a_h + a_l + a_3 + a_4 = r_h + s_h/2 + c_3 + c_4$, $T_h a_h = p_h + p_l$, "
            "$h_1 + e = T_h + p_h$ and the returned $h + l = h_1 + l_1$, with $|l| \\le "
            "\\mathrm{ulp}(h)/2$ (Fast2Sum's error is the rounding error of $h = \\mathrm{fl}(h_1 + l_1)$).")
        say("")
        say("## 4. Approximation")
        say(r"With $a_h + \mathrm{low}^*$ the kernel's sum evaluated exactly (each rounding below "
            r"removed), the exact identities above give")
        say("")
        say("$$")
        say(r"a_h + \mathrm{low}^* = P_{10}(r_h) - 1 + r_l (1 + a_h) - s_l^2/24, \qquad "
            r"h + l = (T_h + T_l)(1 + a_h + \mathrm{low}) - T_l\,\mathrm{low} + \varepsilon_l,")
        say("$$")
        say("")
        say(r"with $P_{10}$ the Taylor polynomial of $e^r$ to $r^{10}$ and $\varepsilon_l$ the "
            r"rounding errors of $l_1$. Against $T_j e^{r_h + r_l}$ this leaves: the table error "
            r"$|T_h + T_l - T_j|$; the truncation $|e^{r_h} - P_{10}(r_h)| \le e^{|r_h|} "
            r"|r_h|^{11}/11!$; the linear treatment of $r_l$, $|r_l|\,|1 + a_h - e^{r_h}| + "
            r"e^{r_h} (e^{|r_l|} - 1 - |r_l|)$, with $|a_h - (e^{r_h} - 1)|$ bounded by "
            r"$|a_l| + |a_3| + |a_4| + |s_l|/2 + |c_{3l}^*| + |c_{4l}^*| + e^{|r_h|} |r_h|^5/120$ "
            r"($c_{3l}^* = r_h^3/6 - c_3$ and $c_{4l}^* = r_h^4/24 - c_4$, what `c3l` and `c4l` "
            r"approximate); "
            r"the term $T_l\,\mathrm{low}$ the kernel leaves out; the shift from $r_h + r_l$ to "
            r"$r^*$, at most $T_j e^{\max \rho} d_r$.")
        say("")
        say("## 5. Roundings and total")
        say(f"On {N_EVAL} subintervals of $[-R_h, R_h]$ and for each $j$, every value is enclosed "
            "and every rounding bounded by half an ulp of the largest value of its enclosure (and "
            "by that value, if smaller); the bounds propagate through the sums and products "
            "($|\\hat a \\hat b - ab| \\le |\\hat a| e_b + (|\\hat b| + e_b) e_a$). The "
            "coefficients `DD_Q` and the multipliers $\\mathrm{fl}(1/6)$, $\\mathrm{fl}(1/24)$ "
            "carry their own error against $1/n!$.")
        say("")
        worst, worst_terms, worst_cell = mpmath.mpf(0), None, None
        term_max = {}
        h_lo, h_hi = mpmath.mpf(2), mpmath.mpf(0)
        for i in range(N_EVAL):
            R = iv.mpf([-R_h + i * w, -R_h + (i + 1) * w])
            ev = evaluate_rh(R, rl_max)
            if mig(R) > 0:
                assert all(ev["pre"]), (i, ev["pre"])
            for j in range(16):
                terms, denom, H = evaluate_j(j, K.DD_TABLE_HI[j], K.DD_TABLE_LO[j], red["tau"][j],
                                             red, R, ev)
                h_lo, h_hi = min(h_lo, mpmath.mpf(H.a.a)), max(h_hi, mpmath.mpf(H.b.b))
                rel = sum(terms.values()) * INFLATE / denom
                for name, v in terms.items():
                    term_max[name] = max(term_max.get(name, 0), v / denom)
                if rel > worst:
                    worst, worst_terms, worst_cell = rel, terms, (i, j, denom)
        assert h_lo >= 0.97 and h_hi <= 2, (h_lo, h_hi)
        labels = dict(
            table="table pair $T_h + T_l$ against $2^{j/16}$",
            low_roundings="roundings of the low part (its sums, $c_{3l}$, $c_{4l}$, $r_l a_h$)",
            r5_term=r"$\mathrm{fl}(\mathrm{fl}(f_h r_h) q)$ against $r_h^5 Q(r_h)$ ($f_h \ne r_h^4$, "
                    r"Horner, `DD_Q`)",
            truncation=r"Taylor truncation after $r^{10}$",
            rl_linear=r"$r_l e^{r_h}$ taken as $r_l (1 + a_h)$",
            tl_low=r"$T_l\,\mathrm{low}$ left out",
            l_roundings=r"roundings of $l_1$ ($T_h \mathrm{low}$, $T_l a_h$ and the sums)",
            reduction=r"$r_h + r_l$ against $r^*$",
            underflow="underflow in the TwoProducts",
        )
        i, j, denom = worst_cell
        say("| term | at the worst cell | max over the cells |")
        say("|---|---|---|")
        for name, label in labels.items():
            v = worst_terms[name] / denom
            at = f"$2^{{{lg(v):.2f}}}$" if v > 0 else "0"
            say(f"| {label} | {at} | $2^{{{lg(term_max[name]):.2f}}}$ |")
        say("")
        const_ = K.EXP_PARTS_DD_MAX_REL_ERR
        say(f"- total: $|(h + l) - T_j e^{{r^*}}| \\le 2^{{{lg(worst):.3f}}}\\, T_j e^{{r^*}}$ "
            f"(the worst cell: $j = {j}$, $r_h \\in [{float(-R_h + i * w):.5f}, "
            f"{float(-R_h + (i + 1) * w):.5f}]$); module constant `EXP_PARTS_DD_MAX_REL_ERR` "
            f"$= 2^{{{math.log2(const_):.3f}}}$.")
        say(f"- $h \\in [{float(h_lo):.4f}, {float(h_hi):.4f}] \\subset [0.97, 2]$ and "
            r"$|l| \le \mathrm{ulp}(h)/2$.")
        assert worst <= const_, (float(worst), const_)
        assert const_ <= 2 * worst, "constant is not within a factor 2 of the derived bound"
        say("")
        say("## Special values")
        say(r"- $x = 0$ or $-0.0$: $k' = 0$, $r_h = \pm 0$, every term is $\pm 0$, $h = 1$, "
            r"$l = \pm 0$, $s = 2^{600}$: $e^0\, 2^{600}$ exactly.")
        say(f"- $x = -\\infty$ or $x < {K.X_MIN_PARTS:g}$: clamped to `X_MIN_PARTS` (a select), the "
            f"bound holds for $e^{{{K.X_MIN_PARTS:g}}}$; NaN compares false and propagates.")
    return out, worst, term_max


def main(argv=None):
    return print_derivation(__doc__, derive,
                            lambda worst, _: f"OK: exp_parts_dd error bound certified "
                            f"(2^{lg(worst):.3f}).", argv, text=plain_text)


if __name__ == "__main__":
    sys.exit(main())
