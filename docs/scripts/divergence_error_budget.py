"""The float64 error budgets of ``js_divergence_logits``, ``kl_divergence_logits`` and
``entropy_logits`` (docs/accuracy.md#kl-logits).

Every term of the Jensen-Shannon row is ``R phi(-sigma)``, ``R`` a probability of the row
(P or Q), ``sigma = log(1 + a expm1(t)) = log(M / R)`` (``a`` is ``1 - beta`` or ``beta``).
This script adds up, to first order in ``u = 2**-53``, the relative error bound of one term as
a function of ``sigma`` (the bound depends on nothing else), branch by branch as the kernel
(``crossent/kernels/divergence.py``: ``_log1p_a_expm1``, ``_kl_term``, ``_phi_small``) takes
them, and prints its maximum over a fine grid. Model, in units of ``u``:

* ``R``: the softmax's ``eps_T + eps_S`` (1.5002) and its rounding (1): 2.5002;
* libm ``expm1``, ``log1p``, ``log``, ``exp``: at most 1 ulp of their result, i.e. relative 2
  (glibc's published maximum known errors for double on x86_64);
* every other floating-point operation: relative 1 (round to nearest).

The value is a sum of non-negative terms, kept in double-double and rounded once, so its
error is at most ``0.5 ulp + max_term_bound * u * |JSD|``, i.e. ``0.5 + max_term_bound`` ulp.
The same model gives the KL term ``P phi(delta)`` (``_kl_term_v``: ``delta`` a double-double,
accurate to ``u**2`` apart from the common shift by ``l``'s error, ``KL_C_MAX``, so the
evaluation of ``phi``, the probabilities and that shift count; ``phi`` by
the fixed-degree polynomial ``_phi_mid`` on ``-2 < delta < 1``, no libm function) and the entropy term
``P (-log P)`` (the log-softmax's relative 1.8002, the product's error kept by an FMA; with a
base, the division by ``log(b)``, itself from libm ``log``).
Run: ``python docs/scripts/divergence_error_budget.py``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

EPS_R = 2.5002  # softmax probability, relative, units of u
LIBM = 2.0  # 1 ulp of the result, relative
_PHI_TERMS = 28


def _phi_eval(t):
    """(phi(t), bound of the absolute rounding error of ``_phi_small(t)`` in units of u),
    by a running error analysis of the kernel's two Horner chains (coefficients rounded)."""
    a = abs(t)
    n = 10 if a < 0.0625 else (16 if a < 0.5 else _PHI_TERMS)
    c = [1.0 / math.factorial(k + 2) for k in range(_PHI_TERMS + 1)]
    ec = [0.0 if k == 0 else c[k] for k in range(_PHI_TERMS + 1)]  # 1/2 exact, others rounded
    w, ew = t * t, t * t  # w = fl(t*t): one rounding
    se, ese = c[n], ec[n]
    so, eso = c[n - 1], ec[n - 1]

    def mul_add(x, ex, y, ey, z, ez):  # fl(fl(x*y) + z), errors propagated, values >= 0
        p = x * y
        ep = x * ey + y * ex + p
        s = p + z
        return s, ep + ez + abs(s)

    for j in range(n // 2 - 1, 0, -1):
        se, ese = mul_add(se, ese, w, ew, c[2 * j], ec[2 * j])
        so, eso = mul_add(so, eso, w, ew, c[2 * j - 1], ec[2 * j - 1])
    se, ese = mul_add(se, ese, w, ew, c[0], ec[0])
    q = t * so
    eq = abs(t) * eso + abs(q)
    d = se - q
    ed = ese + eq + abs(d)
    f = w * d
    ef = w * ed + abs(d) * ew + abs(f)
    exact = t + math.expm1(-t) if abs(t) > 1e-3 else t * t / 2 - t**3 / 6 + t**4 / 24
    return exact, ef


def term_bound(sigma):
    """First-order relative error bound (units of u) of the term ``R phi(-sigma)``."""
    w = math.expm1(sigma)  # a expm1(t) = M/R - 1
    # sigma: _log1p_a_expm1
    if w >= -0.5:
        # log1p(w (1 + e1)) (1 + e2): |e1|, |e2| <= 2; kappa = w / ((1 + w) log1p(w))
        kappa = 1.0 if w == 0 else w / ((1 + w) * math.log1p(w))
        dsig = LIBM * (1 + kappa) * abs(sigma)
    else:
        # log(v), v = (1 - a) + a exp(t): exp, its (1 + tl) factor, the product by a, the
        # sum (share of a e^t in v at most 1): v within 5 + 1; log within 2 |sigma|
        dsig = 6.0 + LIBM * abs(sigma)
    t = -sigma  # phi's argument
    dphi = abs(-math.expm1(-t)) * dsig  # |phi'(t)| |d sigma|
    if t <= -2.0:
        # M - R (1 - t), M = fma(beta, P, fl(1 - beta) Q): P, Q (2.5002), fl(1 - beta), the
        # product, the FMA: 5.5002 of M; R (1 + sigma) with two roundings; the difference.
        # M is taken directly, so the anchor's l error (a shift of every delta, L_SHIFT as
        # in KL; |d sigma / d delta| <= 1) moves this term by up to e M beyond the exact
        # value's (stationary) change
        phi = math.exp(sigma) - 1 - sigma
        num = ((EPS_R + 3 + L_SHIFT) * math.exp(sigma) + (1 + sigma) * (EPS_R + 2) + dsig)
        return num / phi + 1.0
    if t < 1.0:
        phi, ef = _phi_eval(t)
    else:  # (t - 1) + exp(-t): the subtraction, exp (2), the sum
        phi = t - 1 + math.exp(-t)
        ef = (t - 1) + LIBM * math.exp(-t) + phi
    # R (f + dl (dh - f)): the sum and the product round once each
    return EPS_R + (dphi + ef) / phi + 2.0


def _phi_mid_coefs():
    """``PHI_MID_COEF`` of the kernel, recomputed here (the same exact rational sums, rounded
    once): the Taylor coefficients of ``g(t) = phi(t) / t**2`` at ``t = -1/2``."""
    def coef(n, terms=40):
        s = Fraction(0)
        for k in range(n, n + terms):
            s += Fraction(math.comb(k, n), 2 ** (k - n) * math.factorial(k + 2))
        return (-1) ** n * s

    exact = [coef(n) for n in range(PHI_MID_DEGREE + 1)]
    return [float(c) for c in exact], exact


PHI_MID_DEGREE = 20
_MID, _MID_EXACT = _phi_mid_coefs()
# coefficient rounding errors in units of u (|c - fl(c)| / u, at most |c|)
_MID_ERR = [abs(float((c - Fraction(f)) * 2**53)) for c, f in zip(_MID_EXACT, _MID)]


def phi_mid_tail(degree=PHI_MID_DEGREE, radius=1.5):
    """Bound of the Taylor remainder of ``g`` at ``-1/2`` on ``|h| <= radius``:
    ``a_n = (1/n!) int_0^1 (1 - s) (-s)**n e**(s/2) ds``, so ``|a_n| <= e**(1/2) / (n! (n + 1)
    (n + 2))``; the sum over ``n > degree`` of those times ``radius**n`` (a rigorous tail:
    the terms decrease faster than geometrically)."""
    return sum(math.exp(0.5) * radius**n / (math.factorial(n) * (n + 1) * (n + 2))
               for n in range(degree + 1, degree + 60))


def _phi_mid_eval(t):
    """(phi(t), bound of the absolute error of ``_phi_mid(t)`` in units of u), ``-2 < t < 1``:
    ``h = fl(t + 1/2)`` (one rounding), Horner by FMA in ``h`` (one rounding per step), the
    coefficients' own roundings, the Taylor remainder (``phi_mid_tail``), ``fl(t*t)`` and the
    last product; a running error analysis, first order in u."""
    h = t + 0.5
    eh = abs(h)  # h = fl(t + 1/2): |error| <= u |h|
    g, eg = _MID[-1], _MID_ERR[-1]
    for j in range(PHI_MID_DEGREE - 1, -1, -1):
        gn = g * h + _MID[j]
        eg = abs(h) * eg + abs(g) * eh + _MID_ERR[j] + abs(gn)
        g = gn
    eg += phi_mid_tail() * 2.0**53
    w = t * t
    f = w * g
    ef = w * eg + g * w + abs(f)  # w = fl(t*t) and the product: one rounding each
    exact = t + math.expm1(-t) if abs(t) > 1e-3 else t * t / 2 - t**3 / 6 + t**4 / 24
    return exact, ef


#: the largest class count the KL bound covers: the error ``e`` of ``l = log(Q_k / P_k)``
#: (``0.05 u`` relative in each of ``L_p, L_q <= log C``, the row statistics' logsumexp) shifts
#: every ``delta_i`` alike. The exact sum is stationary in that shift, but the forms with
#: ``Q_i`` taken directly (``delta <= -2`` and ``delta >= 1``) are not: each moves by
#: ``e Q_i``, i.e. ``e e**-delta / phi(delta)`` relative to its term. Rows closer than
#: ``|l| <= 2**-20`` recompute ``l`` to ``u |l|`` and have no such term.
KL_C_MAX = 2**21
L_SHIFT = 0.05 * 2 * math.log(KL_C_MAX)  # e, units of u


def kl_term_bound(delta):
    """First-order relative error bound (units of u) of the KL term ``P phi(delta)``
    (``_kl_term_v(P, Q, dh, dl, masked)``), with the shift by ``l``'s error (``L_SHIFT``)
    where the term takes ``Q`` directly."""
    t = delta
    if t <= -2.0:  # Q - P (1 - delta): Q (2.5002), P (1 - delta) with two roundings, the difference
        phi = math.exp(-t) - 1 + t
        return (EPS_R * math.exp(-t) + (1 - t) * (EPS_R + 2) + L_SHIFT * math.exp(-t)) / phi + 1.0
    if t < 1.0:  # P (f + dl (dh - f)): f by _phi_mid; the sum and the product
        phi, ef = _phi_mid_eval(t)
        return EPS_R + ef / phi + 2.0
    # fma(P, (dh - 1) + dl, Q) = P (t - 1) + Q, Q = P e**-t: two non-negative parts; t - 1 with
    # two roundings (2), P and Q (2.5002 each), the FMA (1)
    phi = t - 1 + math.exp(-t)
    return ((t - 1) * (EPS_R + 2) + math.exp(-t) * (EPS_R + L_SHIFT)) / phi + 1.0


def _grid():
    return np.concatenate([-np.geomspace(40.0, 1e-9, 40001), np.geomspace(1e-9, 700.0, 40001)])


def js_bound():
    """(the JS float64 bound in ulp, the largest term bound in u, the sigma where it is)."""
    grid = _grid()
    vals = np.array([term_bound(float(s)) for s in grid])
    i = int(np.argmax(vals))
    return 0.5 + vals[i], vals[i], grid[i]


def kl_bound():
    """(the KL float64 bound in ulp, the largest term bound in u, the delta where it is)."""
    grid = _grid()
    vals = np.array([kl_term_bound(float(s)) for s in grid])
    i = int(np.argmax(vals))
    return 0.5 + vals[i], vals[i], grid[i]


def entropy_bound():
    """(the entropy float64 bound in ulp with a base, the same in nats): P_i's 2.5002u and
    -log P_i's 1.8002u (L's error and one rounding), the final rounding, and 2u for the
    rounded log(base)."""
    h = EPS_R + 1.8002
    return 0.5 + h + LIBM, 0.5 + h


def main():
    grid = _grid()
    vals = np.array([term_bound(float(s)) for s in grid])
    i = int(np.argmax(vals))
    print(f"max term bound {vals[i]:.3f} u at sigma = {grid[i]:.6g}")
    for lo, hi, name in ((-40, -0.6932, "log of the sum (w < -1/2)"),
                         (-0.6931, 2.0, "log1p, phi series / (t-1)+exp(-t)"),
                         (2.0, 700, "M - R(1 + sigma)")):
        m = (grid > lo) & (grid < hi)
        j = int(np.argmax(np.where(m, vals, -1)))
        print(f"  {name:36s} max {vals[j]:.3f} u at sigma = {grid[j]:.4g}")
    near = np.abs(grid) < 1e-3
    print(f"  near-equal rows (|sigma| < 1e-3)     max {vals[near].max():.3f} u")
    print(f"js_divergence_logits bound: 0.5 + {vals[i]:.3f} = {0.5 + vals[i]:.3f} ulp")
    kv = np.array([kl_term_bound(float(s)) for s in grid])
    k = int(np.argmax(kv))
    print(f"kl_divergence_logits: max term bound {kv[k]:.3f} u at delta = {grid[k]:.4g}, "
          f"near-equal {kv[np.abs(grid) < 1e-3].max():.3f} u: bound {0.5 + kv[k]:.3f} ulp")
    h = EPS_R + 1.8002
    print(f"entropy_logits: term bound {h:.4f} u: bound {0.5 + h:.3f} ulp (nats), "
          f"{0.5 + h + LIBM:.3f} ulp with a base (log(b) within 2u)")


if __name__ == "__main__":
    main()
