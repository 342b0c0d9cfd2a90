"""The float64 error budgets of ``js_divergence_logits``, ``kl_divergence_logits`` and
``entropy_logits`` (docs/accuracy.md#kl-logits).

Jensen-Shannon (``_js_sums_dd`` in ``crossent/kernels/divergence.py``): every term is
``R psi(w)``, ``R`` a probability of the row (P or Q) kept as a double-double (the softmax's
``eps_T + eps_S = 1.5002 u``, no rounding), ``w = M/R - 1`` and ``psi(w) = w - log1p(w)``
evaluated in double-double (every step below ``2**-70`` relative, ``JS_DD_STEPS``); where
``w > 2**58`` the term is ``M - R (1 + sigma)`` with ``M = beta P + (1 - beta) Q`` from the two
probabilities (1.5002 u). Those terms, and those of the classes masked in one row, do not go
through ``delta``: they would move at first order with the error of the anchor's ``l`` if it
were not the ``l`` of the computed probabilities; as in KL it is (``L_SHIFT_DD``). The value
is a sum of non-negative terms in double-double, rounded once: ``0.5 ulp`` plus the worst
term's relative bound.

KL (``_kl_term_dd``): every term is a double-double, from ``P`` and ``Q`` kept as
double-doubles (``EPS_R_DD``, no rounding) and ``delta`` a double-double accurate to
``u**2``; ``l`` comes from the row statistics with ``L_p``, ``L_q`` to ``2**-90``, so it is the
``l`` of the computed probabilities and the sums' errors enter at second order only
(``KL_L2``; the forms that take ``Q`` directly do not move at first order). Branch by branch:

* ``KL_LOW < delta < 1``: ``P phi(delta)``, ``phi`` by ``_phi_dd`` (``_phi_dd_eval``: the
  running error bound of its Horner steps, below ``0.32u`` of ``phi``): ``EPS_R_DD`` plus it;
* otherwise ``Q + P (delta - 1)``: each part within ``EPS_R_DD`` of itself, so the term within
  ``EPS_R_DD (Q + P |delta - 1|) / (P phi)`` (at most ``1.5 EPS_R_DD`` at ``delta = -3``, and
  ``EPS_R_DD`` for ``delta >= 1``, where both parts are non-negative).

The double-double products and sums add below ``2**-40 u`` per term. The terms are summed in
double-double (``dd_sum2``) and rounded once (0.5 ulp).

Entropy term ``P (-log P)`` (the fast float64 kernel, which the default mode no longer uses):
``R`` the softmax's ``eps_T + eps_S`` (1.5002) and its rounding (1), 2.5002; the
log-softmax's relative 1.8002, the product's error kept by an FMA; with a base, the division
by ``log(b)`` from libm ``log`` (at most 1 ulp of its result, relative 2: glibc's published
maximum known errors for double on x86_64).
Run: ``python docs/scripts/divergence_error_budget.py``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

EPS_R = 2.5002  # softmax probability rounded to a double, relative, units of u
#: the probability as a double-double from the row statistics (eps_T + eps_S), units of u
EPS_R_DD = 1.5002
LIBM = 2.0  # 1 ulp of the result, relative


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


PHI_MID_DEGREE = 25
#: the lower end of ``_phi_dd``'s interval (``KL_LOW`` in the kernel)
KL_LOW = -3.0
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


def _phi_exact(t):
    return t + math.expm1(-t) if abs(t) > 1e-3 else t * t / 2 - t**3 / 6 + t**4 / 24


def _phi_dd_eval(t):
    """(phi(t), bound of the absolute error of ``_phi_dd(t)`` in units of u),
    ``KL_LOW < t < 1``: ``h = t + 1/2`` a double-double (exact to ``u**2``); the FMA Horner
    steps for the coefficients 25 to 3 in ``hh`` (one rounding per step and each
    coefficient's own rounding), ``hh`` standing for ``h`` there (``|hl| <= u (|h| + |t|)``
    times the derivative of that part); the double-double steps 2, 1, 0 (their coefficients
    and arithmetic to ``2**-45 u``); the Taylor remainder (``phi_mid_tail`` on
    ``|h| <= 5/2``); ``t**2`` and the product in double-double (``2**-45 u``). A running error
    analysis, first order in u."""
    h = t + 0.5
    a = abs(h)
    g, eg, dg = _MID[-1], _MID_ERR[-1], 0.0
    for j in range(PHI_MID_DEGREE - 1, 2, -1):
        dg = dg * h + g  # the derivative of the double part in h
        gn = g * h + _MID[j]
        eg = a * eg + _MID_ERR[j] + abs(gn)
        g = gn
    eg += abs(dg) * (a + abs(t))  # hh for h in the double part
    for j in (2, 1, 0):
        g = g * h + float(_MID_EXACT[j])
        eg = a * eg + abs(g) * 2.0**-45
    eg += phi_mid_tail(PHI_MID_DEGREE, -KL_LOW - 0.5) * 2.0**53
    w = t * t
    return _phi_exact(t), w * eg + abs(w * g) * 2.0**-45


#: the largest class count the bounds cover. An error ``e`` of ``l = log(Q_k / P_k)`` against
#: the computed probabilities shifts every ``delta_i`` alike; the computed sums are stationary
#: in that shift except for the terms that take a probability directly (KL: ``Q + P (delta -
#: 1)``; JS: the M form and the masked classes), which move by ``e`` times about their value.
#: The float64 kernels recompute ``L_p``, ``L_q`` to ``2**-90`` (``_log_dd``; the statistics'
#: are within ``0.05u`` relative, ``0.1u log C`` in ``l``, 1.46u at ``2**21`` classes), and
#: where ``l`` comes from the s2 pass the ``Q_i`` are rescaled to it: ``e`` is the logs' error.
KL_C_MAX = 2**21
L_SHIFT_DD = 2.0**-90 * 2 * math.log(KL_C_MAX) * 2**53  # e, units of u
#: the double-double products and sums of a KL term (two-term products with the low parts'
#: product dropped, TwoSums), relative, units of u
KL_DD_STEPS = 2.0**-40


def kl_term_bound(delta):
    """Relative error bound (units of u) of the KL term ``P phi(delta)`` (``_kl_term_dd``),
    first order in u."""
    t = delta
    if KL_LOW < t < 1.0:  # P phi(delta), phi by _phi_dd
        phi, ef = _phi_dd_eval(t)
        return EPS_R_DD + ef / phi + KL_DD_STEPS
    # Q + P (delta - 1), both parts as double-doubles (EPS_R_DD each), delta - 1 exact to u**2
    phi = _phi_exact(t)
    return EPS_R_DD * (math.exp(-t) + abs(t - 1)) / phi + KL_DD_STEPS + L_SHIFT_DD * math.exp(-t) / phi


def _grid():
    return np.concatenate([-np.geomspace(40.0, 1e-9, 40001), np.geomspace(1e-9, 700.0, 40001)])


#: the double-double steps of a JS term (E = expm1(+-delta), w = a E, psi by its series or
#: w - log(1 + w) with the Newton log, the product by R): each below 2**-70 relative
JS_DD_STEPS = 2.0**-70 * 2**53


def js_term_bound(m_form):
    """Relative error bound (units of u) of one JS term: ``R psi(w)``, or (``m_form``)
    ``M - R (1 + sigma)`` for ``w > 2**58``, where ``R (1 + sigma) < 2**-52.6 M`` and the
    anchor's shift ``L_SHIFT_DD`` enters at first order."""
    if m_form:
        # M's error relative to the term (M <= (1 + 2**-52) term); R (1 + sigma) (R 2.5002,
        # 1 + sigma from libm's log1p with two roundings, the product: at most 8 u of it)
        # times its share; the anchor's shift
        return EPS_R_DD * (1.0 + 2.0**-52) + 8.0 * 2.0**-52.6 + L_SHIFT_DD + JS_DD_STEPS
    return EPS_R_DD + JS_DD_STEPS


#: the error of the statistics' ``l`` (units of u): the two sums' exponentials (1.5) and the
#: logarithms (``L_SHIFT_DD``). Besides the first-order shift of the forms that take a probability
#: directly, it adds ``e**2 / 2`` to KL and at most ``beta (1 - beta) e**2`` to JSD (their second
#: derivatives in a common shift of every ``delta_i``: ``sum_i Q_i = 1`` and
#: ``beta (1 - beta) (2 - sum_i P_i Q_i / M_i)``). The kernels keep that ``l`` only where
#: ``|l| > 2**-12`` (then KL >= ``P_k phi(-l) >= 2**-46`` for rows of up to ``KL_C_MAX`` classes,
#: JSD >= ``beta (1 - beta)`` times that) or where the value is above ``2**-40`` (times
#: ``beta (1 - beta)``); elsewhere ``l`` is recomputed to ``u |l|`` plus a few ``u`` times the
#: recomputing pass's terms, which are then small (``_s2_pass``).
E_L = 1.5 + L_SHIFT_DD
#: the worst second-order part, relative to the value, in units of u (the margin ``1 + 2**-10``
#: covers the ``1 - O(|l|)`` of the lower bounds)
KL_L2 = (E_L * 2.0**-53) ** 2 / 2 / 2.0**-46 * 2**53 * (1 + 2.0**-10)
JS_L2 = 2 * KL_L2
#: the double-double sum of ``n <= KL_C_MAX`` non-negative double-double terms
#: (``dd_sum2``): relative ``n**2 u**2``, in units of u
KL_SUM = KL_C_MAX**2 * 2.0**-53


def js_bound():
    """(the JS float64 bound in ulp, the largest term bound in u, whether it is the M form).
    The two sums and ``beta KP + (1 - beta) KQ`` are double-double (``n u**2``), unscaled by
    a power of two and rounded once (0.5 ulp)."""
    vals = [js_term_bound(False), js_term_bound(True)]
    i = int(np.argmax(vals))
    return 0.5 + vals[i] + JS_L2 + 2.0**-40, vals[i], bool(i)


def kl_bound():
    """(the KL float64 bound in ulp, the largest term bound in u, the delta where it is)."""
    grid = _grid()
    vals = np.array([kl_term_bound(float(s)) for s in grid])
    i = int(np.argmax(vals))
    return 0.5 + vals[i] + KL_L2 + KL_SUM, vals[i], grid[i]


def entropy_bound():
    """(the entropy float64 bound in ulp with a base, the same in nats): P_i's 2.5002u and
    -log P_i's 1.8002u (L's error and one rounding), the final rounding, and 2u for the
    rounded log(base)."""
    h = EPS_R + 1.8002
    return 0.5 + h + LIBM, 0.5 + h


def main():
    ordinary, mform = js_term_bound(False), js_term_bound(True)
    print(f"js_divergence_logits: term bound {ordinary:.4f} u (R psi(w)), {mform:.4f} u "
          f"(M - R(1 + sigma), w > 2**58, rows up to {KL_C_MAX} classes): bound "
          f"{js_bound()[0]:.3f} ulp ({0.5 + ordinary + JS_L2:.3f} without an M-form term; "
          f"both with l's second order, {JS_L2:.3f} u)")
    grid = _grid()
    kv = np.array([kl_term_bound(float(s)) for s in grid])
    k = int(np.argmax(kv))
    print(f"kl_divergence_logits: max term bound {kv[k]:.3f} u at delta = {grid[k]:.4g}, "
          f"near-equal {kv[np.abs(grid) < 1e-3].max():.3f} u, l's second order {KL_L2:.4f} u, "
          f"the sum {KL_SUM:.4f} u: bound {kl_bound()[0]:.3f} ulp")
    h = EPS_R + 1.8002
    print(f"entropy_logits: term bound {h:.4f} u: bound {0.5 + h:.3f} ulp (nats), "
          f"{0.5 + h + LIBM:.3f} ulp with a base (log(b) within 2u)")


if __name__ == "__main__":
    main()
