"""The accuracy table: the one place where crossent states its error bounds.

Every public function has a bound in ULPs of the *output* format, per dtype, measured as
``crossent.ulp_error(computed, exact, dtype)`` with ``exact`` the value that
``crossent.reference`` computes from the exact input floats. The precision tests
(``tests/test_precision_*.py``), ``crossent accuracy`` (through :mod:`crossent._measure`) and
the documentation (``docs/accuracy.md``) all read this table; nothing else states a bound.

``max_ulp``
    the largest ULP error allowed for any output of the adversarial corpus.
``min_correctly_rounded``
    the fraction of outputs that must be correctly rounded (ULP error <= 0.5) where the
    analysis says "correctly rounded in practice" (float32/float16 computed in float64).
``condition``
    when the bound only holds under a condition, the condition in words, with the absolute
    bound that applies where it does not hold; the docs print it next to the bound.
``analysis``
    the section of ``docs/accuracy.md`` that derives the bound.
``check``
    for a row with a condition, the function that applies it:
    ``check(case, exact, dtype) -> (held, scale)`` takes a corpus case, the flat exact
    outputs (:func:`crossent._measure.exact_values`) and the dtype name, and returns the mask
    of outputs where the condition holds (judged in ULPs of their exact value) and, for the
    others, the power of two the absolute error is measured in (``max_ulp`` of them allowed).
    The checks live here, next to the words they implement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["Bound", "BOUNDS", "CORRECT_ROUNDING", "bound"]


@dataclass(frozen=True)
class Bound:
    max_ulp: float
    min_correctly_rounded: float | None = None
    condition: str | None = None
    analysis: str = ""
    check: Callable | None = None


# ---------------------------------------------------------------------------------------
# the conditions (the words are in the rows below; these functions apply them)


def _finite(e) -> bool:
    import mpmath

    return bool(mpmath.isfinite(e))


def _logsumexp_condition(case, exact, dtype):
    """``BOUNDS["logsumexp"]["float64"]`` condition: ``max(x) >= 0`` or
    ``|logsumexp(x)| >= L/3`` with ``L = logsumexp(x) - max(x) = log S``.

    Where it fails, ``max(x) < 0`` and ``log S`` cancel, and the table bounds the *absolute*
    error by ``max_ulp * ulp(L)`` (docs/accuracy.md#logsumexp: the error is at most
    ``1/2 ulp(result) + 0.8002 u L``).
    """
    import mpmath

    from crossent.ulp import ulp

    with np.errstate(invalid="ignore"):
        m = np.max(case.logits.astype(np.float64), axis=case.axis).reshape(-1)
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    for i, e in enumerate(exact):
        if not _finite(e) or not np.isfinite(m[i]) or m[i] >= 0.0:
            continue
        with mpmath.mp.workprec(256):
            L = mpmath.mpf(e) - mpmath.mpf(float(m[i]))
        if abs(e) >= L / 3:
            continue
        held[i] = False
        scale[i] = ulp(L, dtype)
    return held, scale

def _grad_condition(case, exact, dtype):
    """``BOUNDS["cross_entropy_grad"]`` condition (every dtype): one-hot targets.

    With soft targets (probabilities, or label smoothing) the gradient entry of item n,
    class i is ``s_n (A_n p_i - B_ni)`` with ``A_n = sum_c w_c t_nc``, ``B_ni = w_i t_ni``
    and ``s_n`` the reduction's scale (1 for "sum"; for "mean" 1/sum of w[y_n] over kept
    items with labels, 1/N with probabilities); the table's absolute bound
    ``max_ulp * (ulp(p_i) + ulp(t_i))`` is applied to the two terms as they enter that
    difference, ``max_ulp * (ulp(s A p_i) + ulp(s B_i))`` (with w = 1, s = 1 this is the
    table's statement).
    """
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    if case.one_hot:
        return held, scale
    import mpmath

    from crossent import reference as ref
    from crossent.ulp import ulp

    ax = case.axis % case.logits.ndim
    x = np.moveaxis(case.logits, ax, -1)
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    p = np.moveaxis(ref.softmax(case.logits, axis=case.axis, exact=True), ax, -1).reshape(-1, c)
    w = [1] if case.weight is None else [mpmath.mpf(float(v)) for v in case.weight]
    wc = (lambda i: w[0]) if case.weight is None else (lambda i: w[i])
    with mpmath.mp.workprec(256):
        eps = mpmath.mpf(float(case.label_smoothing))
        if case.probability_target:
            # smoothing applies to probability targets too: t' = (1 - eps) t + eps / C
            tt = np.moveaxis(case.target, ax, -1).reshape(-1, c)
            T = [[(1 - eps) * mpmath.mpf(float(v)) + eps / c for v in row] for row in tt]
            keep = [True] * len(T)
            denom = mpmath.mpf(len(T))
        else:
            y = case.target.reshape(-1)
            T, keep = [], []
            denom = mpmath.mpf(0)
            for yn in y:
                if yn == case.ignore_index:
                    T.append([mpmath.mpf(0)] * c)
                    keep.append(False)
                    continue
                row = [eps / c] * c
                row[int(yn)] = (1 - eps) + eps / c
                T.append(row)
                keep.append(True)
                denom += wc(int(yn))
        if case.reduction != "sum" and denom == 0:
            return held, scale  # every item ignored: the gradient is 0 (or nan), judged in ULPs
        s = 1 if case.reduction == "sum" else 1 / denom
        grad_rows = scale.reshape(rows.shape)
        held2 = held.reshape(rows.shape)
        for n in range(rows.shape[0]):
            if not keep[n]:
                continue  # an ignored item's gradient is exactly 0: judged in ULPs
            A = mpmath.fsum(wc(i) * T[n][i] for i in range(c))
            for i in range(c):
                a = s * A * p[n, i]
                b = s * wc(i) * T[n][i]
                if not (_finite(a) and _finite(b)):
                    continue  # a nan/inf entry is judged in ULPs (both must agree exactly)
                held2[n, i] = False
                grad_rows[n, i] = ulp(a, dtype) + ulp(b, dtype)
    # entries come back in the layout with the class axis last: restore the case's layout
    if ax != case.logits.ndim - 1:
        shp = x.shape
        held = np.moveaxis(held.reshape(shp), -1, ax).reshape(-1)
        scale = np.moveaxis(scale.reshape(shp), -1, ax).reshape(-1)
    return held, scale


def _kl_condition(case, exact, dtype):
    """``BOUNDS["kl_divergence"]["float64"]`` condition: ``|D| >= (1/2) sum_k T_k``.

    ``D = sum_k T_k + sum_k (p_k - q_k)`` with ``T_k = p_k log(p_k/q_k) - p_k + q_k >= 0``
    (``T_k = q_k`` where ``p_k = 0``), all divided by ``log(base)``. The kernel sums the
    ``T_k`` with a relative error of about ``1.7 u`` and the differences exactly; where the
    differences cancel more than half of ``sum_k T_k`` that error is no longer small next to
    ``D``, and the table bounds the *absolute* error by ``max_ulp * ulp(sum_k T_k)``
    (docs/accuracy_pmf.md, "Sum"). Rows with an infinite or nan result are judged in ULPs.
    """
    import mpmath

    from crossent.ulp import ulp

    base, axis = case.kwargs["base"], case.kwargs["axis"]
    p, q = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in case.args))
    p = np.moveaxis(p, axis, -1).reshape(-1, p.shape[axis])
    q = np.moveaxis(q, axis, -1).reshape(-1, q.shape[axis])
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    for i, e in enumerate(exact):
        if not _finite(e):
            continue
        with mpmath.mp.workprec(320):
            terms = [mpmath.mpf(qk) if pk == 0.0 else
                     pk * mpmath.log(mpmath.mpf(pk) / qk) - pk + qk
                     for pk, qk in zip(p[i].tolist(), q[i].tolist())]
            total = mpmath.fsum(terms)
            if base is not None:
                total /= abs(mpmath.log(base))
            if 2 * abs(e) >= total:
                continue
        held[i] = False
        scale[i] = ulp(total, dtype)
    return held, scale


def _options_grad_condition(case, exact, dtype):
    """``BOUNDS["cross_entropy_options_grad"]`` (every dtype): a normwise bound, per item.

    The gradient row of item n is ``s_n (A'_n p_i - a_ni) dz_i`` with ``A'_n = A_n + 2 z w_n
    lse_n`` (``lse_n`` of the capped logits), ``dz_i = 1 - tanh^2(x_i/c) <= 1`` and ``s_n``
    the reduction's scale. Every finite entry of a row that is not ignored is judged by its
    absolute error against ``eps * G_n``, ``G_n = s_n (A_n + 2 z w_n |lse_n| + max_c a_nc)``
    (``eps = 2**(1-p)``, the format's machine epsilon): a bound on the whole row, whatever
    cancels inside ``A' p_i - a_i``. nan/inf entries and ignored rows are judged in ULPs.
    """
    import mpmath

    from crossent.ulp import float_format

    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    ax = case.axis % case.logits.ndim
    x = np.moveaxis(np.asarray(case.logits, dtype=np.float64), ax, -1)
    c = x.shape[-1]
    rows = x.reshape(-1, c)
    epsf = mpmath.mpf(2) ** (1 - float_format(dtype).p)
    z, cap = case.z_loss, case.logit_softcap
    w = None if case.weight is None else [float(v) for v in np.asarray(case.weight, np.float64)]
    eps = case.label_smoothing
    with mpmath.mp.workprec(128):
        coefs, wn = [], []
        if case.probability_target:
            tt = np.moveaxis(np.asarray(case.target, np.float64), ax, -1).reshape(-1, c)
            for row in tt:
                coefs.append([(w[i] if w else 1) * ((1 - eps) * mpmath.mpf(row[i]) + mpmath.mpf(eps) / c)
                              for i in range(c)])
                wn.append(1)
            denom = len(coefs)
        else:
            denom = 0
            for yn in case.target.reshape(-1):
                if yn == case.ignore_index:
                    coefs.append(None)
                    wn.append(0)
                    continue
                a = [(w[i] if w else 1) * mpmath.mpf(eps) / c for i in range(c)]
                a[int(yn)] += (w[int(yn)] if w else 1) * (1 - mpmath.mpf(eps))
                coefs.append(a)
                wn.append(w[int(yn)] if w else 1)
                denom += wn[-1]
        if case.reduction == "mean" and denom == 0:
            return held, scale
        s = 1 if case.reduction == "sum" else 1 / mpmath.mpf(denom)
        held2 = held.reshape(rows.shape)
        scale2 = scale.reshape(rows.shape)
        for n in range(rows.shape[0]):
            if coefs[n] is None:
                continue
            zs = [mpmath.mpf(v) if cap is None else cap * mpmath.tanh(mpmath.mpf(v) / cap)
                  for v in rows[n].tolist()]
            fin = [v for v in zs if mpmath.isfinite(v)]
            if len(fin) != len(zs) and (cap is not None or any(v != v or v > 0 for v in zs)):
                continue  # nan or +inf rows: judged in ULPs
            if not fin:
                continue
            lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in fin))
            A = mpmath.fsum(coefs[n])
            G = s * (A + 2 * z * wn[n] * abs(lse) + max(coefs[n]))
            for i in range(c):
                e = exact.reshape(rows.shape)[n, i]
                if not _finite(e) or not mpmath.isfinite(G):
                    continue
                held2[n, i] = False
                scale2[n, i] = epsf * G
    if ax != case.logits.ndim - 1:
        shp = x.shape
        held = np.moveaxis(held.reshape(shp), -1, ax).reshape(-1)
        scale = np.moveaxis(scale.reshape(shp), -1, ax).reshape(-1)
    return held, scale


def _bce_grad_condition(case, exact, dtype):
    """``BOUNDS["binary_cross_entropy_grad"]`` condition (every dtype): normwise.

    The gradient entry ``(B sigma(x) - A sigma(-x)) / s`` (``A = w p t``, ``B = w (1 - t)``,
    ``s`` the mean's count or 1) cancels where the two terms are close (a soft target near
    ``sigma(x)``); the bound is ``max_ulp`` ulp of the larger term, absolute, everywhere:
    ``held`` is False for every finite entry and ``scale`` is ``ulp(max(B sigma(x),
    A sigma(-x)) / s)``. Infinite and nan entries are judged in ULPs.
    """
    import mpmath

    from crossent.ulp import ulp

    x = np.asarray(case.logits, dtype=np.float64).reshape(-1)
    t = np.broadcast_to(np.asarray(case.target, dtype=np.float64), case.logits.shape).reshape(-1)
    w = np.broadcast_to(1.0 if case.weight is None else np.asarray(case.weight, dtype=np.float64),
                        case.logits.shape).reshape(-1)
    pw = np.broadcast_to(1.0 if case.pos_weight is None
                         else np.asarray(case.pos_weight, dtype=np.float64),
                         case.logits.shape).reshape(-1)
    s = x.size if case.reduction == "mean" else 1
    held = np.ones(exact.shape, dtype=bool)
    scale = np.full(exact.shape, np.nan, dtype=object)
    for i, e in enumerate(exact):
        if not _finite(e) or not np.isfinite(x[i]):
            continue
        with mpmath.mp.workprec(256):
            sp = 1 / (1 + mpmath.exp(-mpmath.mpf(float(x[i]))))
            sn = 1 / (1 + mpmath.exp(mpmath.mpf(float(x[i]))))  # sigma(-x), no 1 - sigma(x)
            a = mpmath.mpf(float(w[i])) * mpmath.mpf(float(pw[i])) * mpmath.mpf(float(t[i])) * sn
            b = mpmath.mpf(float(w[i])) * (1 - mpmath.mpf(float(t[i]))) * sp
            held[i] = False
            scale[i] = ulp(max(a, b) / s, dtype)
    return held, scale


# ---------------------------------------------------------------------------------------
# the table

_SOFT_GRAD_NARROW = (
    "one-hot targets (integer labels without label smoothing); with soft targets the entry "
    "A p_i - a_i is computed in float64 and rounded once, and the bound is 1 ulp(A p_i) + "
    "1 ulp(a_i) absolute where the two terms cancel"
)

_F32 = Bound(max_ulp=1.0, min_correctly_rounded=0.999, analysis="narrow-formats")
_F16 = Bound(max_ulp=1.0, min_correctly_rounded=0.999, analysis="narrow-formats")
# bfloat16 (ml_dtypes): widened exactly to float32, computed as float32 is (float64 inside),
# rounded once to 8 bits through float32 rounded to odd
_BF16 = Bound(max_ulp=1.0, min_correctly_rounded=0.999, analysis="narrow-formats")

BOUNDS: dict[str, dict[str, Bound]] = {
    "logsumexp": {
        "float64": Bound(
            max_ulp=3.0,
            condition="max(x) >= 0 or |logsumexp(x)| >= L/3, where L = logsumexp(x) - max(x) "
            "= log(sum exp(x - max)); otherwise max(x) and L cancel and the absolute error is "
            "at most 3 ulp(L)",
            analysis="logsumexp",
            check=_logsumexp_condition,
        ),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    "log_softmax": {"float64": Bound(3.0, analysis="log-softmax"), "float32": _F32, "float16": _F16, "bfloat16": _BF16},
    "softmax": {"float64": Bound(3.0, analysis="softmax"), "float32": _F32, "float16": _F16, "bfloat16": _BF16},
    "cross_entropy": {
        "float64": Bound(3.0, analysis="loss"),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    "cross_entropy_mean": {
        "float64": Bound(3.0, analysis="reductions"),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    "cross_entropy_grad": {
        "float64": Bound(
            4.0,
            condition="one-hot targets (integer labels without label smoothing); with soft "
            "targets the entry p_i - t_i is ill-conditioned where p_i ~ t_i and the bound is "
            "4 ulp(p_i) + 4 ulp(t_i) absolute",
            analysis="gradient",
            check=_grad_condition,
        ),
        # computed in float64 and rounded once: correctly rounded unless A*p_i and a_i cancel
        # to below the float64 error of the two terms
        "float32": Bound(1.0, 0.999, condition=_SOFT_GRAD_NARROW, analysis="narrow-formats",
                         check=_grad_condition),
        "float16": Bound(1.0, 0.999, condition=_SOFT_GRAD_NARROW, analysis="narrow-formats",
                         check=_grad_condition),
        "bfloat16": Bound(1.0, 0.999, condition=_SOFT_GRAD_NARROW, analysis="narrow-formats",
                          check=_grad_condition),
    },
    "entropy": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16, "bfloat16": _BF16},
    "cross_entropy_pmf": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16, "bfloat16": _BF16},
    "kl_divergence": {
        "float64": Bound(
            4.0,
            condition="|D| >= (1/2) sum_k T_k with T_k = p_k log(p_k/q_k) - p_k + q_k >= 0: the "
            "sum of the differences p_k - q_k does not cancel most of sum_k T_k; otherwise the "
            "absolute error is at most 4 ulp(sum_k T_k)",
            analysis="kl",
            check=_kl_condition,
        ),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    "categorical_log_likelihood": {"float64": Bound(4.0, analysis="pmf"), "float32": _F32, "float16": _F16, "bfloat16": _BF16},
    # the loss options (z_loss, logit_softcap; docs/loss-options.md): the per-item loss and
    # the reductions against the exact composite function of the given floats
    "cross_entropy_options": {
        "float64": Bound(3.0, analysis="loss-options"),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    "cross_entropy_options_mean": {
        "float64": Bound(3.0, analysis="loss-options"),
        "float32": _F32,
        "float16": _F16,
        "bfloat16": _BF16,
    },
    # the gradient with the options: normwise, per item (see _options_grad_condition)
    "cross_entropy_options_grad": {
        dt: Bound(
            k,
            condition="normwise per item: |g_i - g*_i| <= max_ulp * eps * s (A + 2 z w |lse| + "
            "max_c a_c) for every entry of the item's row (eps the format's machine epsilon)",
            analysis="loss-options-gradient",
            check=_options_grad_condition,
        )
        for dt, k in (("float64", 4.0), ("float32", 1.0), ("float16", 1.0), ("bfloat16", 1.0))
    },
    # sum of non-negative terms P_i phi(delta_i), each a double-double from P_i and Q_i kept as
    # double-doubles (1.5002u): no condition (p ~ q included) for rows of up to 2**21 classes.
    # Derived 0.5 + 2.246 + 0.009 = 2.76 ulp (the worst term Q_i + P_i (delta_i - 1) at
    # delta_i = -3, a cancellation of 1.5; P_i phi(delta_i) within 2.04u; l's second order
    # 0.009u), docs/scripts/divergence_error_budget.py
    "kl_divergence_logits": {"float64": Bound(3.0, analysis="kl-logits"), "float32": _F32,
                             "float16": _F16, "bfloat16": _BF16},
    # beta sum P_i psi(w_i) + (1 - beta) sum Q_i psi(v_i), non-negative terms, each in
    # double-double from P_i, Q_i kept as double-doubles (1.5002u): no condition (p ~ q
    # included) for rows of up to 2**21 classes. Derived 0.5 + 1.5002 + 0.018 = 2.02 ulp
    # (0.018u: l's error squared), docs/scripts/divergence_error_budget.py
    "js_divergence_logits": {"float64": Bound(3.0, analysis="kl-logits"), "float32": _F32,
                             "float16": _F16, "bfloat16": _BF16},
    # float64: always through the correctly rounded path (the fast kernel's derived budget,
    # 0.5 + 2.5002 + 1.8002 = 4.80 ulp in nats and 6.80 with a base,
    # docs/scripts/divergence_error_budget.py, is above the family's 3 ulp); the narrow
    # formats use the fast kernel (sum of non-negative terms P_i (-log P_i), no condition)
    "entropy_logits": {"float64": Bound(0.5, 1.0, analysis="correct-rounding"), "float32": _F32,
                       "float16": _F16, "bfloat16": _BF16},
    # the sigmoid cross-entropy (per element, and its exact sum and mean), softplus, log_sigmoid
    "binary_cross_entropy": {"float64": Bound(3.0, analysis="binary"), "float32": _F32, "float16": _F16,
                             "bfloat16": _BF16},
    "binary_cross_entropy_grad": {
        dt: Bound(
            9.0 if dt == "float64" else 1.0,
            condition="normwise: the entry B sigma(x) - A sigma(-x) (A = w p t, B = w (1 - t)) "
            "cancels where the target is near sigma(x); the absolute error is at most "
            f"{9 if dt == 'float64' else 1} ulp of the larger of the two terms",
            analysis="binary",
            check=_bce_grad_condition,
        )
        for dt in ("float64", "float32", "float16", "bfloat16")
    },
    "softplus": {"float64": Bound(3.0, analysis="binary"), "float32": _F32, "float16": _F16,
                 "bfloat16": _BF16},
    "log_sigmoid": {"float64": Bound(3.0, analysis="binary"), "float32": _F32, "float16": _F16,
                    "bfloat16": _BF16},
}


#: The contract of rounding mode ``"correct"`` (:mod:`crossent._rounding`): the float64 results
#: of these functions are correctly rounded, every one (0.5 ulp, 100%), by the rounding test
#: and the oracle's slow path (docs/accuracy.md#correct-rounding). ``cross_entropy`` is the
#: per-item loss; a mean or sum in that mode is the exact sum of the correctly rounded
#: per-item values, rounded once, and keeps the ``cross_entropy_mean`` row of ``BOUNDS``.
#: ``cross_entropy_options``: the per-item loss with ``z_loss`` or ``logit_softcap`` (its sums
#: as ``cross_entropy``'s). ``cross_entropy_grad`` (the gradient): not with those options.
#: ``entropy``, ``cross_entropy_pmf``, ``kl_divergence``: every base.
CORRECT_ROUNDING = {
    f: {"float64": Bound(0.5, 1.0, analysis="correct-rounding")}
    for f in ("logsumexp", "log_softmax", "softmax", "cross_entropy", "cross_entropy_grad",
              "binary_cross_entropy", "binary_cross_entropy_grad", "softplus", "log_sigmoid",
              "entropy_logits", "entropy", "cross_entropy_pmf", "kl_divergence",
              "categorical_log_likelihood", "kl_divergence_logits", "js_divergence_logits",
              "cross_entropy_options")
}


def bound(function: str, dtype, rounding: str = "fast") -> Bound:
    """The stated bound of ``function`` for outputs of ``dtype`` (in rounding mode
    ``rounding``: ``"correct"`` takes :data:`CORRECT_ROUNDING` where it has the entry)."""
    dt = np.dtype(dtype).name
    if rounding == "correct" and dt in CORRECT_ROUNDING.get(function, {}):
        return CORRECT_ROUNDING[function][dt]
    return BOUNDS[function][dt]


#: ``logsumexp(x, b=...)`` (every dtype; the result dtype is that of ``x`` and ``b`` together).
#: The sum :math:`S = \sum_i b_i e^{x_i}` may cancel when the factors have mixed signs, so the
#: bound is absolute and scales with the condition number
#: :math:`\kappa = \sum_i |b_i| e^{x_i} / |S|` (1 when the factors have one sign): the
#: computed :math:`\log|S|` is within ``max_ulp`` ulp of the result plus
#: ``LOGSUMEXP_B_KAPPA`` :math:`\kappa\,2^{-53}` of the exact value. Each term carries the
#: exp's error (<= 0.75u relative, to :math:`\sum_i |b_i| e^{x_i}`), the signed double-double
#: sum adds about :math:`u^2` of the same, and :math:`\log` turns a relative error of the sum
#: into an absolute one; measured (tests/test_conventions.py): at most 0.51 ulp for
#: :math:`\kappa = 1` and 0.2 :math:`\kappa\,2^{-53}` beyond half an ulp for mixed signs.
LOGSUMEXP_B = Bound(
    max_ulp=1.0,
    condition="absolute error <= 1 ulp(result) + kappa * 2**-53, kappa = sum|b_i| e^{x_i} / "
    "|sum b_i e^{x_i}| (the sum's condition number; 1 when every b_i has one sign)",
    analysis="logsumexp",
)
LOGSUMEXP_B_KAPPA = 1.0


#: ``linear_cross_entropy`` (``crossent.linear``): the loss of ``hidden @ weight.T + bias``,
#: measured against the loss of the exact products (docs/linear-cross-entropy.md). The logits
#: are float64 dot products: for float32/float16/bfloat16 inputs every product is exact in
#: float64 and the sum errs by at most :math:`\gamma_H \sum_k |h_k W_{vk}|` (plus
#: :math:`2^{-53}|b_v|` for a bias), far below the narrow format's ulp unless the dot products
#: cancel; in float64 that error is of the loss's own order, and the bound says so: it is the
#: kernels' 3 ulp plus twice the logits' largest error (the loss's gradient in the logits,
#: A sigma - a, has 1-norm at most 2 A, A the item's weight).
LINEAR_CROSS_ENTROPY = {
    "float64": Bound(
        3.0,
        condition="absolute error per item <= 3 ulp(loss) + 2 max_v |dz_v| with |dz_v| <= "
        "gamma_H sum_k |h_k W_vk| + 2**-53 |b_v| (the float64 dot products' error: it depends on "
        "their conditioning, not on the loss)",
    ),
    "float32": Bound(
        1.0, 0.999,
        condition="the dot products do not cancel: gamma_H sum_k |h_k W_vk| stays below about "
        "2**-29 of the loss's ulp scale (true unless sum|h W| exceeds |loss| 2**29 / H)",
    ),
    "float16": _F16,
    "bfloat16": _BF16,
}
