"""Certified error bounds of ``crossent.kernels.exp.exp_f64`` and ``exp_f64_short``.

Claim
-----
For every float64 ``x <= 0`` (and ``x = -inf``), the value ``z`` returned by ``exp_f64(x)``
satisfies

* ``|z - e^x| <= EXP_F64_MAX_REL_ERR * e^x`` when ``e^x >= 2^-1022`` (normal outputs), and
* ``|z - e^x| <= EXP_F64_MAX_ULP_ERR * ulp(e^x)`` for every output (subnormal ones included),

and the same holds for ``exp_f64_short`` with ``EXP_F64_SHORT_MAX_REL_ERR`` /
``EXP_F64_SHORT_MAX_ULP_ERR``, whether or not LLVM fuses the polynomial's multiply-adds into FMAs.
``exp(0) = exp(-0.0) = 1`` exactly and ``exp(x) = 0`` for ``x <= -746``.

Source: the kernel ``src/crossent/kernels/exp.py`` (each step below names the line it justifies);
the method is Cody & Waite's reduction with a minimax polynomial (Muller, *Elementary Functions*,
3rd ed., ch. 11), the rounding analysis is the running error analysis of Higham, *Accuracy and
Stability of Numerical Algorithms*, 2nd ed., sec. 3.1 and 5.1, done on intervals in the style of
CORE-MATH's error analyses.

Method
------
All real-number statements are checked with ``mpmath.iv`` interval arithmetic at 160 bits, so
every number printed is an enclosure, not an estimate.

1. Constants: ``LN2_CW_HI`` has 42 significant bits, so ``k*LN2_CW_HI`` is exact for ``|k| <= 1082``;
   ``delta3 = ln2 - LN2_CW_HI - LN2_CW_LO`` is tiny.
2. Reduction: ``k = round(x*LOG2E)`` by the shift trick (one FMA), ``|x log2(e) - k| <= 1/2 + tiny``, so
   ``|r*| = |x - k ln2| <= R*``; ``hi = x - k*LN2_CW_HI`` is exact; ``r = fl(hi - lo)``.
3. Approximation: ``|e^r - P(r)| / e^r`` on ``|r| <= R`` with ``P(r) = 1 + r + r^2 Q(r)`` (the
   float64 coefficients), on 1024 subintervals, each with a degree-7 Taylor model of
   ``e^r - P(r)`` about its midpoint and an interval bound of the 8th derivative (the naive interval
   evaluation of ``e^r - P(r)`` would lose everything to cancellation).
4. Evaluation: on 2048 subintervals of the computed ``r``, enclose every intermediate value of the
   kernel and bound each rounding by half an ulp of the largest value in its enclosure; propagate
   the errors through Horner's rule (unfused, which also bounds the fused evaluation).
5. Total: the absolute error of ``y`` against ``e^{r*}``, divided by ``e^{r*}`` (relative) and by
   ``ulp(e^{r*})`` (ulp), maximised over the subintervals; ``z = y 2^k1 2^k2`` keeps both for
   normal outputs (exact scaling) and adds half an ulp of the subnormal grid below ``2^-1022``.

Run ``python proofs/exp_error_bound.py`` (``--markdown`` prints the derivation as Markdown).
Exit status 0 means every assertion held.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import re
import struct
import sys
from pathlib import Path

import mpmath
from mpmath import iv


def _load_kernel_module():
    """The kernel module (its constants are plain floats; importing it compiles nothing)."""
    pkg = Path(__file__).resolve().parents[1] / "src" / "crossent" / "kernels"
    if (pkg / "exp.py").exists():  # a checkout: prove the files next to this script
        import importlib
        import importlib.util

        # the kernels package alone (exp.py imports its base module relatively), not crossent
        name = "_crossent_kernels"
        spec = importlib.util.spec_from_file_location(name, pkg / "__init__.py",
                                                      submodule_search_locations=[str(pkg)])
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
        return importlib.import_module(name + ".exp")
    from crossent.kernels import exp  # an installed wheel (proofs ship as crossent/_proofs)

    return exp


K = _load_kernel_module()

PREC = 160  # bits of the interval arithmetic
N_APPROX = 1024  # subintervals for the approximation error
N_EVAL = 1024  # subintervals for the rounding analysis
TAYLOR_ORDER = 7  # Taylor model degree of e^r - P(r) about each midpoint
K_MIN = -2020  # a lower bound of k: x >= X_MIN_PARTS = -1100 after the clamp of exp_parts_* gives k >= -1587 (exp_f64: -750, k >= -1082)
U = 2.0**-53  # unit roundoff of float64
INFLATE = 1 + 2.0**-140  # covers the round-to-nearest sums of mpf bounds at PREC bits


@contextlib.contextmanager
def ivprec(bits):
    """Set ``mpmath.iv``'s precision (and mp's, for the mpf bounds) inside a block only.

    Sums of the (mpf) error bounds round to nearest at ``bits`` bits; the totals are inflated by
    ``1 + 2^-(bits - 10)`` to cover those roundings.
    """
    old = iv.prec
    iv.prec = bits
    try:
        with mpmath.workprec(bits):
            yield
    finally:
        iv.prec = old


def _lines():
    """The derivation's lines, in Markdown with TeX math between ``$...$``."""
    out = []

    def say(text=""):
        out.append(text)

    return out, say


_PLAIN = [(r"\mathrm{", "{"), (r"\text{", "{"), (r"\operatorname{", "{"), (r"\,", " "), (r"\ ", " "),
          (r"\cdot", "*"), (r"\le", "<="), (r"\ge", ">="), (r"\ne", "!="), (r"\approx", "~"),
          (r"\gg", ">>"), (r"\infty", "inf"), (r"\in", "in"), (r"\pm", "+-"), (r"\min", "min"),
          (r"\max", "max"), (r"\ln", "ln"), (r"\log", "log"), (r"\delta", "delta"),
          (r"\sigma", "sigma"), (r"\ell", "l"), (r"\dots", "..."), ("$", ""), ("`", ""), ("**", ""),
          ("{", ""), ("}", "")]


def plain(line: str) -> str:
    """A Markdown line of the derivation as terminal text (TeX macros spelled out)."""
    line = re.sub(r"\^\{([^{}]*[ +*/][^{}]*)\}", r"^(\1)", line)  # 2^{k + 600} -> 2^(k + 600)
    for tex, text in _PLAIN:
        line = line.replace(tex, text)
    return line.lstrip("# ") if line.startswith("#") else line


def hull_abs(v):
    """Upper bound (mpf) of |v| over an interval ``v`` (exact: mp.prec >= iv.prec)."""
    v = iv.mpf(v)
    return max(mpmath.mpf(abs(v.a).b), mpmath.mpf(abs(v.b).b))


def half_ulp(m):
    """Upper bound of the rounding error of round-to-nearest float64 for any |value| <= m."""
    m = mpmath.mpf(m)
    if m == 0:
        return mpmath.mpf(0)
    if m < mpmath.mpf(2) ** -1022:
        return mpmath.mpf(2) ** -1075
    _, e = mpmath.frexp(m)  # m = f 2^e, f in [1/2, 1): ulp(v) <= 2^(e-1-52) for |v| <= m
    return mpmath.mpf(2) ** (e - 54)


def ulp_lower(v):
    """Lower bound of ulp(t) over a positive interval ``v`` of normal numbers."""
    _, e = mpmath.frexp(mpmath.mpf(v.a.a))
    return mpmath.mpf(2) ** (e - 53)


def widen(v, e):
    return v + iv.mpf([-e, e])


def f64_bits(x):
    return struct.unpack("<q", struct.pack("<d", x))[0]


def significant_bits(x):
    m, _ = math.frexp(x)
    n = 0
    while m != int(m):
        m *= 2
        n += 1
    return n


# ----------------------------------------------------------------------------------------------
# Step 1-2: constants and reduction
# ----------------------------------------------------------------------------------------------
def reduction_facts(say):
    ln2 = iv.log(2)
    log2e = 1 / ln2
    say("## 1. Constants (the kernel's module constants)")
    say(r"Notation: $c_{\mathrm{hi}}$ = `LN2_CW_HI` and $c_{\mathrm{lo}}$ = `LN2_CW_LO` (Cody and "
        r"Waite's split of $\ln 2$), $\sigma$ = `SHIFT`, $L$ = `LOG2E` ($\approx \log_2 e$), "
        r"$u = 2^{-53}$; $\mathrm{fl}(\cdot)$ is a float64 operation rounded to nearest.")
    say("")
    nb = significant_bits(K.LN2_CW_HI)
    assert nb <= 42, nb
    m_hi = int(K.LN2_CW_HI * 2.0**42)
    assert m_hi == K.LN2_CW_HI * 2.0**42 and abs(K_MIN) * m_hi < 2**53
    say(f"- $c_{{\\mathrm{{hi}}}}$ = `{K.LN2_CW_HI.hex()}` has {nb} significant bits, so "
        f"$k\\,c_{{\\mathrm{{hi}}}}$ is exact for $|k| \\le {abs(K_MIN)}$ "
        f"(as $|k|\\,c_{{\\mathrm{{hi}}}}\\,2^{{42}} < 2^{{53}}$).")
    d3 = ln2 - K.LN2_CW_HI - K.LN2_CW_LO
    d3_abs = hull_abs(d3)
    assert d3_abs < mpmath.mpf(2) ** -100
    say(f"- $\\delta_3 = |\\ln 2 - c_{{\\mathrm{{hi}}}} - c_{{\\mathrm{{lo}}}}| \\le "
        f"2^{{{float(mpmath.log(d3_abs, 2)):.1f}}}$.")
    assert f64_bits(K.SHIFT) == K.SHIFT_BITS and K.SHIFT == 1.5 * 2.0**52
    say(r"- `SHIFT_BITS` is the int64 view of $\sigma = 1.5 \cdot 2^{52}$.")
    dlog2e = hull_abs(iv.mpf(K.LOG2E) - log2e)
    assert dlog2e <= U * K.LOG2E
    say("")
    say("## 2. Reduction (kernel: `t = fma(x, LOG2E, SHIFT)` ... `r = hi - lo`)")
    xmax = max(abs(K.X_MIN), abs(K.X_MIN_PARTS))  # the widest clamp of the four functions
    # t = fl(x*LOG2E + SHIFT) by one FMA, i.e. SHIFT + round(x*LOG2E): a = x*LOG2E exactly and
    # |a - x log2e| <= |x| |LOG2E - log2e|; the bound below also allows a rounded product
    # (a = fl(x*LOG2E), + u |x LOG2E|), so it covers an unfused evaluation as well
    a_err = xmax * dlog2e + U * xmax * K.LOG2E * (1 + U)
    a_max = xmax * K.LOG2E * (1 + U)
    assert a_max < 2**51
    # SHIFT + a lies in [2^52, 2^53) where ulp = 1: t = SHIFT + round(a), |k - a| <= 1/2
    k_min = -math.floor(a_max + 0.5)
    assert k_min >= K_MIN, (k_min, K_MIN)
    say(f"- $x \\in [{K.X_MIN_PARTS:g}, 0]$, the widest clamp (`X_MIN_PARTS`, of `exp_parts_*`; "
        f"`exp_f64` clamps at `X_MIN` $= {K.X_MIN:g}$; $-\\infty$ goes to the clamp): "
        f"$|\\mathrm{{fl}}(x L)| \\le {float(a_max):.3f} < 2^{{51}}$, so "
        f"$t = \\sigma + \\mathrm{{round}}(x L)$ (one FMA; $\\mathrm{{ulp}}(t) = 1$), "
        f"$k_f = t - \\sigma$ is exact (Sterbenz) and $k \\ge {k_min} \\ge k_{{\\min}} = {K_MIN}$.")
    kp_min = -math.floor(abs(K.X_MIN_PARTS) * K.LOG2E * (1 + U) + 0.5)
    assert kp_min + K.PARTS_SCALE_EXP >= -1022 and K.PARTS_SCALE_EXP + 1023 < 2047
    say(f"- `exp_parts_*` ($x \\in [{K.X_MIN_PARTS:g}, 0]$): $k \\in [{kp_min}, 0]$, so their scale "
        f"$2^{{k + {K.PARTS_SCALE_EXP}}}$ (`PARTS_SCALE_EXP` $= {K.PARTS_SCALE_EXP}$) is a normal power "
        f"of two (exponent $\\ge {kp_min + K.PARTS_SCALE_EXP} \\ge -1022$ and "
        f"$\\le {K.PARTS_SCALE_EXP} \\le 1023$).")
    say(r"- The int64 view of $t$ is `SHIFT_BITS` $+\ k$ (the significand field of $t$ is "
        r"$2^{51} + k$), so `k = view(t) - SHIFT_BITS` is exact.")
    dk = mpmath.mpf(0.5) + a_err  # |x log2e - k|
    r_star = (ln2 * dk).b
    mant, ex = f"{float(a_err):.3g}".split("e")
    say(f"- $|x \\log_2 e - k| \\le 1/2 + {mant} \\cdot 10^{{{int(ex)}}}$, so "
        f"$|r^*| = |x - k \\ln 2| \\le R^* = {float(r_star)!r}$.")
    # hi = x - k*LN2_CW_HI exact: k = 0 -> hi = x; k != 0 -> |x| >= x0, both operands are
    # multiples of q = min(ulp(x), 2^-42) and |hi| < 2^53 q
    x0 = (mpmath.mpf(0.5) / (1 + 2 * U) / (K.LOG2E * (1 + U)))
    assert x0 > 0.25
    hi_max = r_star + abs(K_MIN) * (ln2 - K.LN2_CW_HI).b
    assert hi_max < 0.5 and xmax < 2048
    say(f"- $r_{{\\mathrm{{hi}}}} = \\mathrm{{fma}}(-k_f, c_{{\\mathrm{{hi}}}}, x)$ (`hi`) is exact "
        f"($x - k_f c_{{\\mathrm{{hi}}}}$ is representable): for $k = 0$ it is $x$; for $k \\ne 0$, "
        f"$|x| \\ge {float(x0):.4f} > 1/4$, so $\\mathrm{{ulp}}(x) \\ge 2^{{-54}}$, and $|x| < 2^{{11}}$, "
        f"so $\\mathrm{{ulp}}(x) \\le 2^{{-42}}$; both $x$ and $k\\,c_{{\\mathrm{{hi}}}}$ are multiples "
        f"of $\\min(\\mathrm{{ulp}}(x), 2^{{-42}}) \\ge 2^{{-54}}$, and "
        f"$|r_{{\\mathrm{{hi}}}}| \\le {float(hi_max):.6f} < 2^{{53}} \\cdot 2^{{-54}}$.")
    lo_max = abs(K_MIN) * K.LN2_CW_LO * (1 + U)
    e_lo = half_ulp(lo_max)
    r_rnd = half_ulp(hi_max + lo_max)
    r_max = hi_max + lo_max + r_rnd
    say(f"- $r_{{\\mathrm{{lo}}}} = \\mathrm{{fl}}(k_f c_{{\\mathrm{{lo}}}})$ (`lo`): "
        f"$|r_{{\\mathrm{{lo}}}}| \\le 2^{{{float(mpmath.log(lo_max, 2)):.2f}}}$, rounding error "
        f"$\\le 2^{{{float(mpmath.log(e_lo, 2)):.0f}}}$; $r = \\mathrm{{fl}}(r_{{\\mathrm{{hi}}}} - "
        f"r_{{\\mathrm{{lo}}}})$: rounding error $\\le 2^{{{float(mpmath.log(r_rnd, 2)):.0f}}}$; "
        f"$|r| \\le {float(r_max)!r}$.")
    kd3 = abs(K_MIN) * d3_abs
    return dict(r_max=r_max, hi_max=hi_max, lo_max=lo_max, e_lo=e_lo, r_rnd=r_rnd, kd3=kd3)


# ----------------------------------------------------------------------------------------------
# Step 3: approximation error
# ----------------------------------------------------------------------------------------------
def poly_coeffs(q):
    return [mpmath.mpf(1), mpmath.mpf(1)] + [mpmath.mpf(c) for c in q]  # P(r) = sum p_j r^j


def taylor_shift(p, m):
    """Coefficients of P(m + h) in h (intervals), by repeated synthetic division."""
    c = [iv.mpf(v) for v in p]
    n = len(c)
    for i in range(n):
        for j in range(n - 2, i - 1, -1):
            c[j] = c[j] + m * c[j + 1]
    return c


def approx_error(q, R, n_sub):
    """Upper bound of max |e^r - P(r)| / e^r over |r| <= R (rigorous, intervals)."""
    p = poly_coeffs(q)
    deg = len(p) - 1
    order = TAYLOR_ORDER
    worst = mpmath.mpf(0)
    R = iv.mpf(R).b
    w = 2 * R / n_sub
    fact = [math.factorial(i) for i in range(order + 2)]
    for i in range(n_sub):
        lo_ = -R + i * w
        hi_ = lo_ + w
        m = iv.mpf((lo_ + hi_) / 2)
        h = iv.mpf([-(w / 2), w / 2])
        whole = iv.mpf([lo_, hi_])
        em = iv.exp(m)
        sh = taylor_shift(p, m)
        acc = iv.mpf(0)
        hp = iv.mpf(1)
        for j in range(order + 1):
            pj = sh[j] if j <= deg else 0
            acc += (em / fact[j] - pj) * hp
            hp = hp * h
        # remainder: (e^xi - P^(order+1)(xi)) h^(order+1)/(order+1)!, xi in `whole`
        dp = iv.mpf(0)
        for j in range(deg, order, -1):  # P^(order+1)(xi) by Horner on the derivative
            coef = iv.mpf(p[j]) * (math.factorial(j) // math.factorial(j - order - 1))
            dp = dp * whole + coef
        rem = (iv.exp(whole) - dp) * hp / fact[order + 1]
        err = (acc + rem) / iv.exp(whole)
        worst = max(worst, hull_abs(err))
    return worst * INFLATE


# ----------------------------------------------------------------------------------------------
# Step 4-5: rounding errors of the evaluation and the total
# ----------------------------------------------------------------------------------------------
def square_and_horner(qs, r):
    """Enclosures of ``r2 = fl(r*r)`` and of Horner's ``q_j = fl(fl(q_{j+1} r) + c_j)`` on the
    interval ``r``, with bounds of their errors against ``r^2`` and ``Q(r)`` (unfused: a fused
    evaluation has fewer roundings): ``(r2, e_r2, q, e_q)``."""
    r2x = r * r
    e_r2 = half_ulp(hull_abs(r2x))
    qv = qs[-1]
    e_q = mpmath.mpf(0)
    for c in reversed(qs[:-1]):
        prod = qv * r
        e_prod = half_ulp(hull_abs(prod))
        sm = widen(prod, e_prod + e_q * hull_abs(r)) + c
        e_q = e_q * hull_abs(r) + e_prod + half_ulp(hull_abs(sm))
        qv = widen(sm, half_ulp(hull_abs(sm)))
    return widen(r2x, e_r2), e_r2, qv, e_q


def evaluation_error(q, red, approx, n_sub):
    """Max over the computed r of (absolute error of y against e^{r*}) / e^{r*} and / ulp."""
    R = red["r_max"]
    lo_max, e_lo, r_rnd, kd3 = red["lo_max"], red["e_lo"], red["r_rnd"], red["kd3"]
    lo_iv = iv.mpf([-lo_max, lo_max])
    dr = r_rnd + e_lo + kd3  # |r - r*|
    w = 2 * R / n_sub
    worst_rel = mpmath.mpf(0)
    worst_ulp = mpmath.mpf(0)
    worst_rnd = mpmath.mpf(0)
    delta_at_1 = mpmath.mpf(0)  # max delta where e^{r*} = 1 is possible
    worst_parts = mpmath.mpf(0)  # exp_parts: |(1 + fl(hi + tail)) - e^{r*}| / e^{r*}
    qs = [iv.mpf(c) for c in q]
    for i in range(n_sub):
        r = iv.mpf([-R + i * w, -R + (i + 1) * w])  # the computed r (a float64 in here)
        hi = widen(r + lo_iv, r_rnd)  # hi = r + lo + rounding of r (exact float64)
        r2, e_r2, qv, e_q = square_and_horner(qs, r)
        # s = fl(r2 * q)
        sx = r2 * qv
        e_s = hull_abs(r2) * e_q + hull_abs(qv) * e_r2 + half_ulp(hull_abs(sx))
        s = widen(sx, half_ulp(hull_abs(sx)))
        # tail = fl(s - lo); (sh, sl) = Fast2Sum(1, hi) exact; v = fl(sl + tail); y = fl(sh + v)
        tail = s - lo_iv
        e_tail = half_ulp(hull_abs(tail))
        tail = widen(tail, e_tail)
        assert hull_abs(hi) < 1  # Fast2Sum(1, hi) needs |hi| <= 1
        sl_max = mpmath.mpf(2) ** -53  # |sl| <= ulp(sh)/2 <= 2^-53 (sh < 2)
        e_v = half_ulp(sl_max + hull_abs(tail))
        # |h(r) - h(r*)| <= max|e^rho - 1| |r - r*| (h(r) = e^r - 1 - r)
        rho = widen(r, dr)
        e_shift = hull_abs(iv.exp(rho) - 1) * dr
        ex = iv.exp(rho)  # encloses e^{r*}
        e_approx = approx * hull_abs(ex)
        # exp_parts_*: t = fl(hi + tail), 1 + t taken exactly by the caller
        e_t = half_ulp(hull_abs(hi + tail))
        parts = (e_t + e_tail + e_s + e_shift + e_lo + kd3 + e_approx) * INFLATE
        worst_parts = max(worst_parts, parts / mpmath.mpf(ex.a.a))
        # delta: |(sh + v) - e^{r*}| before the last rounding
        delta = (e_v + e_tail + e_s + e_shift + e_lo + kd3 + e_approx) * INFLATE
        y = widen(1 + hi + tail, e_v)
        # last rounding fl(sh + v): if e^{r*} >= 1 it is <= 1/2 ulp of the enclosure of y and
        # ulp(e^{r*}) >= 2^-52; if e^{r*} < 1 it is <= 2^-54 when y < 1, and when y >= 1 it is
        # <= y - 1 <= delta (1 is a float), while ulp(e^{r*}) = 2^-53 (e^{r*} >= 1/2).
        cases = []
        if ex.a <= 1 <= ex.b:
            delta_at_1 = max(delta_at_1, delta)
        if ex.b >= 1:  # e^{r*} >= 1 possible
            e_y = half_ulp(hull_abs(y))
            cases.append((e_y, mpmath.mpf(2) ** -52, max(mpmath.mpf(1), mpmath.mpf(ex.a.a))))
        if ex.a < 1:  # e^{r*} < 1 possible
            assert ex.a > 0.5
            e_y = min(half_ulp(hull_abs(y)), max(mpmath.mpf(2) ** -54, delta))
            cases.append((e_y, mpmath.mpf(2) ** -53, mpmath.mpf(ex.a.a)))
        for e_y, ulp_e, e_min in cases:
            total = (e_y + delta) * INFLATE
            worst_rel = max(worst_rel, total / e_min)
            worst_ulp = max(worst_ulp, total / ulp_e)
        rounding = e_v + e_tail + e_s + e_shift + e_lo + kd3 + max(c[0] for c in cases)
        worst_rnd = max(worst_rnd, rounding / mpmath.mpf(ex.a.a))
    return worst_rel, worst_ulp, worst_rnd, delta_at_1, worst_parts


def parts_fma_error(q, red, approx, n_sub):
    """Max over the computed r of |(1 + t) - e^{r*}| / e^{r*} for ``exp_parts_f64_short``:
    ``r = fl(hi - kf*LN2_CW_LO)`` (one FMA), ``r2 = fl(r*r)``, Horner for Q (unfused bound),
    ``t = fl(r + r2 q)`` (one FMA), ``1 + t`` taken exactly by the caller."""
    R = red["r_max"]
    dr = red["r_rnd"] + red["kd3"]  # |r - r*|: the FMA's rounding and k*delta3
    w = 2 * R / n_sub
    qs = [iv.mpf(c) for c in q]
    worst = mpmath.mpf(0)
    for i in range(n_sub):
        r = iv.mpf([-R + i * w, -R + (i + 1) * w])
        r2, e_r2, qv, e_q = square_and_horner(qs, r)
        # t = fl(r + r2 qv): the exact argument is within e_arg of r + r^2 Q(r)
        e_arg = hull_abs(r2) * e_q + hull_abs(qv) * e_r2
        e_t = half_ulp(hull_abs(r + r2 * qv))
        rho = widen(r, dr)
        ex = iv.exp(rho)  # encloses e^{r*}
        e_shift = hull_abs(ex) * dr  # |e^r - e^{r*}|
        total = (e_t + e_arg + e_shift + approx * hull_abs(iv.exp(r))) * INFLATE
        worst = max(worst, total / mpmath.mpf(ex.a.a))
    return worst


def certify(name, q, rel_const, ulp_const, parts_const, red, say, parts_fma=False):
    R_fit = red["r_max"]
    approx = approx_error(q, R_fit, N_APPROX)
    rel, ulp_normal, rnd, delta_at_1, parts = evaluation_error(q, red, approx, N_EVAL)
    if parts_fma:  # exp_parts_f64_short evaluates t in its own (FMA) way
        parts = parts_fma_error(q, red, approx, N_EVAL)
    # subnormal e^x < 2^-1022: 2^k ulp(e^{r*}) <= 2^-1075 (e^{r*} >= 1 forces k <= -1023,
    # e^{r*} in [1/2, 1) forces k <= -1022), so the error of y 2^k is <= ulp_normal / 2 units of
    # 2^-1074, plus 1/2 for the one rounding onto the subnormal grid.
    # e^x >= 2^-1022 > y 2^k would need a power of two (1) between y and e^{r*}, i.e. r* ~ 0,
    # y <= 1 - 2^-53 < 1 <= e^{r*}, which needs delta + 2^-54 >= 2^-53 near r* = 0. Where delta
    # is smaller than that the case is excluded; otherwise (the short polynomial) it costs a whole
    # ulp_normal (y 2^k is then within ulp_normal ulps of e^x, plus one rounding).
    boundary_excluded = delta_at_1 < mpmath.mpf(2) ** -54
    ulp_sub = mpmath.mpf(0.5) + (ulp_normal / 2 if boundary_excluded else ulp_normal)
    ulp_all = max(ulp_normal, ulp_sub)
    lg = lambda v: float(mpmath.log(v, 2))  # noqa: E731
    say(f"**`{name}`**, a polynomial of degree {len(q) + 1}:")
    say("")
    say(f"- approximation: $\\max_{{|r| \\le {float(R_fit):.6f}}} |e^r - P(r)| / e^r \\le "
        f"2^{{{lg(approx):.2f}}}$ ({N_APPROX} subintervals, Taylor models of order {TAYLOR_ORDER}).")
    say(f"- roundings ($r$, $r^2$, Horner, $s$, tail, $s_l$ + tail, $y$, $r_{{\\mathrm{{lo}}}}$, the "
        f"shift of $r$ to $r^*$) relative to $e^{{r^*}}$: $\\le {float(rnd / U):.4f}\\,u$.")
    say(f"- total relative error of $y$ (normal outputs): $\\le {float(rel / U):.4f}\\,u = "
        f"2^{{{lg(rel):.3f}}}$ (module constant: ${rel_const / U:.4f}\\,u = 2^{{{math.log2(rel_const):.3f}}}$).")
    say(f"- ulp error, normal outputs: $\\le {float(ulp_normal):.4f}$ ulp (the scaling by "
        f"$2^{{k_1}} 2^{{k_2}}$ is exact).")
    if boundary_excluded:
        say(f"- ulp error, subnormal outputs: $\\le 1/2 + (\\text{{normal bound}})/2 = "
            f"{float(ulp_sub):.4f}$ ulp ($2^k \\mathrm{{ulp}}(e^{{r^*}}) \\le 2^{{-1075}}$, then one "
            f"rounding onto the $2^{{-1074}}$ grid); an exact value $\\ge 2^{{-1022}}$ computed below "
            f"it would need $\\delta + 2^{{-54}} \\ge 2^{{-53}}$ at $r^* \\approx 0$, but there "
            f"$\\delta \\le 2^{{{lg(delta_at_1):.2f}}}$.")
    else:
        say(f"- ulp error, subnormal outputs: $\\le 1/2 + (\\text{{normal bound}}) = "
            f"{float(ulp_sub):.4f}$ ulp.")
    say(f"- every output: $\\le {float(ulp_all):.4f}$ ulp (module constant: {ulp_const}).")
    form = (r"$t = \mathrm{fl}(r + \mathrm{fl}(r^2) Q(r))$ with $r = \mathrm{fl}(r_{\mathrm{hi}} - "
            r"k_f c_{\mathrm{lo}})$, FMAs" if parts_fma else r"$t = \mathrm{fl}(r_{\mathrm{hi}} + \text{tail})$")
    say(f"- `exp_parts` variant, {form}: $|(1 + t) - e^{{r^*}}| / e^{{r^*}} \\le "
        f"{float(parts / U):.4f}\\,u = 2^{{{lg(parts):.3f}}}$ (module constant: "
        f"${parts_const / U:.4f}\\,u$).")
    assert parts <= parts_const, (name, float(parts), parts_const)
    assert parts_const <= parts * 1.05, "parts constant is not tight"
    assert rel <= rel_const, (name, float(rel), rel_const)
    assert rel_const <= rel * 1.05, "constant is not tight"
    assert ulp_all <= ulp_const, (name, float(ulp_all), ulp_const)
    # x <= -746: e^x (1 + rel) < 2^-1075, so the last product rounds to 0
    with ivprec(PREC):
        assert (iv.exp(-746) * (1 + rel)).b < mpmath.mpf(2) ** -1075
    say(r"- $x \le -746$: $e^x (1 + \text{rel}) < 2^{-1075}$, so the result rounds to $+0$.")
    say("")
    return dict(approx=approx, rel=rel, ulp_normal=ulp_normal, ulp_all=ulp_all)


def derive():
    out, say = _lines()
    with ivprec(PREC):
        say("# Error bound of the vectorized exp (`crossent.kernels.exp`)")
        say("")
        red = reduction_facts(say)
        say("")
        say("## 3-5. Approximation, evaluation, total")
        say(r"$u = 2^{-53}$. Rounding errors are bounded by half an ulp of the enclosure of each "
            r"value, per subinterval; every $ab + c$ of the polynomial is counted unfused (a fused "
            r"evaluation has fewer roundings).")
        say("")
        assert K.Q_FULL[0] == 0.5 or abs(K.Q_FULL[0] - 0.5) < 1e-12
        full = certify("exp_f64", K.Q_FULL, K.EXP_F64_MAX_REL_ERR, K.EXP_F64_MAX_ULP_ERR,
                       K.EXP_PARTS_F64_MAX_REL_ERR, red, say)
        short = certify("exp_f64_short", K.Q_SHORT, K.EXP_F64_SHORT_MAX_REL_ERR,
                        K.EXP_F64_SHORT_MAX_ULP_ERR, K.EXP_PARTS_F64_SHORT_MAX_REL_ERR, red, say,
                        parts_fma=True)
        assert K.EXP_F64_SHORT_MAX_REL_ERR <= 2.0**-40
        say("## Special values")
        say(r"- $x = 0$ or $-0.0$: $t = \sigma$, $k = 0$, $r_{\mathrm{hi}} = x$, $r_{\mathrm{lo}} = 0$, "
            r"$r = x$, $s = \pm 0$, tail $= \pm 0$, $s_h = 1$, $s_l = 0$, $y = 1$, "
            r"$2^{k_1} = 2^{k_2} = 1$: $\exp(0) = 1$ exactly.")
        say(r"- $x = -\infty$: clamped to `X_MIN` $= -750$ (a select): $k = -1082$, result 0 "
            r"($x \le -746$).")
        say("- $x$ = NaN: both clamps compare false; NaN propagates through every operation.")
        assert -1082 >> 1 == -541 and -1082 - (-1082 >> 1) == -541
        say(r"- $k_1 = k \gg 1$ and $k_2 = k - k_1$ lie in $[-541, 0]$ for $k \in [-1082, 0]$: "
            r"$2^{k_1}$ and $2^{k_2}$ are normal and $y\,2^{k_1}$ ($y \ge 0.7$) is normal, so only "
            r"the last product rounds.")
    return out, full, short


def print_derivation(doc, derive, ok, argv=None, text=plain):
    """The command line of a derivation script: ``derive()`` returns ``(lines, *results)``;
    prints the lines as Markdown (``--markdown``, for the docs) or as terminal text (through
    ``text``) followed by ``ok(*results)``. Returns the exit status 0 (``derive`` raises
    where a step does not hold)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print the derivation as Markdown")
    args = ap.parse_args(argv)
    out, *results = derive()
    if args.markdown:
        print("\n".join(out))
    else:
        for line in out:
            print(text(line))
        print(ok(*results))
    return 0


def main(argv=None):
    return print_derivation(__doc__, derive,
                            lambda full, short: "OK: exp_f64 and exp_f64_short error bounds "
                            "certified.", argv)


if __name__ == "__main__":
    sys.exit(main())
