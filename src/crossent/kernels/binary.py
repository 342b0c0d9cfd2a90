"""Kernels of the sigmoid (binary) cross-entropy, ``softplus`` and ``log_sigmoid``: elementwise,
in float64 with double-double intermediates; the Python layer is ``crossent.binary``.

With ``softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^{-|x|})`` the loss of one element
(logit ``x``, target ``t`` in [0, 1], weight ``w``, positive weight ``pw``) is

    A softplus(-x) + B softplus(x),   A = w pw t,  B = w (1 - t)

(``proofs/11_binary_cross_entropy.py``): two non-negative terms, nothing cancels. PyTorch's
form ``(1 - t) x + (1 + (pw - 1) t) softplus(-x)`` is the same number, but for ``t = 1``,
``x = 40`` it subtracts to 0 where the loss is ``4.2e-18``. ``log1p(e)`` is the double-double
logarithm of the softmax row statistics (``_log_of_sum`` with one maximum and the rest ``e``).
The gradient in ``x`` is ``B sigma(x) - A sigma(-x)`` (``= sigma(x) - t`` for ``w = pw = 1``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ._base import INF, NAN, dd_div, dd_mul, fma, jit, two_prod, two_sum
from .exp import EXP_PARTS_DD_MAX_REL_ERR, _poly_full, _reduce, exp_f64, exp_parts_dd, exp_parts_f64
from .softmax import INV_SCALE, TINY, _log_of_sum, _round_cr, _round_cr_abs, _round_sum

# below this the double-double log1p(e) is re-done scaled by 2**600 (its low part would be
# subnormal and lose digits); 2**-960 * 2**600 * any weight stays finite
_SMALL = 2.0**-960
# exp(x) for x < _X_PARTS is below exp_parts_f64's range: reduced here with k down to -2047
_X_PARTS = -1100.0
_X_ZERO = -1419.0  # below: e^x < 2**-2047, so c e^x < 2**-1023 * ... rounds to 0 for c < 2**1024


@jit
def _log1p_exp_neg(a):
    """``(Lh, Ll, Lsh, Lsl)``: ``log1p(e^{-a})`` as a double-double and scaled by ``2**600``,
    for ``0 <= a <= 1100``; ``e^{-a}`` to ``EXP_PARTS_F64_MAX_REL_ERR`` (about 1.1 u), the log
    to about ``2**-57`` relative (``_log_of_sum``: ``0.05u``)."""
    t, s = exp_parts_f64(-a)  # 2**600 e = (1 + t) s, s a power of two
    rh, rl = two_sum(s, t * s)  # t * s exact (s a power of two, normal)
    return _log_of_sum(1, rh, rl)


@jit
def _log1p_exp_neg_dd(a):
    """:func:`_log1p_exp_neg` for the correctly rounded path: ``e^{-a}`` from the
    double-double exponential (``EXP_PARTS_DD_MAX_REL_ERR``) and the double-double ``atanh``
    of ``_log_of_sum`` (``2**-94``). Not inlined, so the fast kernels do not carry it."""
    h, l, s = exp_parts_dd(-a)  # 2**600 e = (h + l) s, s a power of two: h s, l s exact
    return _log_of_sum(1, h * s, l * s, True)


#: relative error bound of a float64 value of the correctly rounded path, before its last
#: rounding (docs/accuracy.md, "Binary cross-entropy, softplus and log-sigmoid, correctly
#: rounded"): the exponential's, which ``log1p`` does not amplify (``e/((1+e) log1p(e)) <= 1``)
#: and ``x + L`` only shrinks; ``log1p``'s ``2**-94``; the double-double sums and products
#: (coefficients, ``x + L``, ``c softplus``, the sum of the two terms) below ``2**-98``
BCE_CR_REL_ERR = EXP_PARTS_DD_MAX_REL_ERR + 2.0**-94 + 2.0**-98

#: the gradient's bound on the correctly rounded path, relative to ``(|B sigma(x)| +
#: |A sigma(-x)|) / scale`` (docs/accuracy.md): ``sigma`` of the small side carries ``e``'s
#: error twice (``e`` and ``1 + e``), the large side once; the coefficients, the products,
#: the division by ``1 + e`` and by the scale are double-double steps below ``2**-100`` each
BCE_GRAD_CR_ERR = 2.0 * EXP_PARTS_DD_MAX_REL_ERR + 2.0**-98
# beyond this |x| the kernel takes e = e^{-|x|} as 0, within e^-600 < 2**-865 (its double-
# double would have subnormal digits)
_X_GRAD = 600.0


@jit
def weighted_softplus(ch, cl, x, accurate=False):
    """``(ch + cl) softplus(x)`` as a double-double, for a coefficient ``c >= 0`` (finite).

    ``c = 0`` gives 0 whatever ``x`` (the target allows any limit); ``x = +inf`` gives
    ``+inf``, ``-inf`` gives 0, nan gives nan. With ``accurate`` (the correctly rounded
    path) the log1p is ``_log1p_exp_neg_dd`` and a value below ``e^-1100`` (whose tail is
    not in double-double) is nan: the caller sends it to the oracle."""
    if x != x:
        return NAN, 0.0
    if ch == 0.0:
        return 0.0, 0.0
    if x == INF:
        return INF, 0.0
    if x >= 0.0:  # softplus = x + log1p(e^{-x}); the log is below 2**-1587 x beyond 1100
        if x > 1100.0:
            return dd_mul(ch, cl, x, 0.0)
        if accurate:
            Lh, Ll, _a, _b = _log1p_exp_neg_dd(x)
        else:
            Lh, Ll, _a, _b = _log1p_exp_neg(x)
        sh, sl = two_sum(x, Lh)
        return dd_mul(ch, cl, sh, sl + Ll)
    if x >= _X_PARTS:  # softplus = log1p(e^x)
        if accurate:
            Lh, Ll, Lsh, Lsl = _log1p_exp_neg_dd(-x)
        else:
            Lh, Ll, Lsh, Lsl = _log1p_exp_neg(-x)
        if Lh >= _SMALL:
            return dd_mul(ch, cl, Lh, Ll)
        vh, vl = dd_mul(ch, cl, Lsh, Lsl)  # scaled by 2**600: no subnormal digits lost
        return vh * INV_SCALE, vl * INV_SCALE  # one rounding when the result is subnormal
    if accurate:
        return NAN, 0.0  # the oracle decides (a tiny or zero value)
    if x < _X_ZERO:
        return 0.0, 0.0  # c e^x < 2**1024 2**-2047: rounds to 0
    # softplus = e^x (1 - e^x/2 + ...) = e^x to 2**-1100 relative: c e^x = (1 + p) mc 2**(k + kc)
    hi, lo, r, k = _reduce(x, _X_ZERO, False)  # k in [-2048, -1586]: k LN2_CW_HI exact
    p = hi + _poly_full(r, lo)  # e^r = 1 + p, to about 1.1 u
    mc, kc = math.frexp(ch)
    vh, vl = dd_mul(mc, cl * (mc / ch), 1.0, p)
    return math.ldexp(vh + vl, k + kc), 0.0  # one rounding (the result is normal or subnormal)


@jit
def _coefficients(t, w, pw):
    """``A = w pw t`` and ``B = w (1 - t)`` as double-doubles (``1 - t`` exact by TwoSum)."""
    ph, pl = two_prod(w, pw)
    ah, al = dd_mul(ph, pl, t, 0.0)
    oh, ol = two_sum(1.0, -t)
    bh, bl = dd_mul(w, 0.0, oh, ol)
    return ah, al, bh, bl


@jit
def _bce_one(x, t, w, pw, odd, cr=0.0):
    """The loss of one element, rounded once; with ``cr`` (the correctly rounded path, whose
    relative error bound is ``cr``) nan where the rounding cannot be decided."""
    accurate = cr != 0.0
    ah, al, bh, bl = _coefficients(t, w, pw)
    uh, ul = weighted_softplus(ah, al, -x, accurate)
    vh, vl = weighted_softplus(bh, bl, x, accurate)
    if uh == INF or vh == INF or uh != uh or vh != vh:
        return uh + vh
    sh, sl = two_sum(uh, vh)
    return _round_cr(sh, sl + (ul + vl), odd, cr)


@jit
def _sigmoid_pair(x):
    """``(sigma(x), sigma(-x))``, each to about 2.5 u relative, without cancellation."""
    if x != x:
        return NAN, NAN
    e = exp_f64(-abs(x))  # 0.91 ulp; exp(-inf) = 0
    d = 1.0 + e
    big = 1.0 / d
    small = e / d
    return (big, small) if x >= 0.0 else (small, big)


@jit(parallel=True)
def bce_rows(x, t, w, pw, odd, out):
    """Per-element loss: ``out[i] = A_i softplus(-x_i) + B_i softplus(x_i)`` rounded to float64
    (to odd with ``odd``, for a narrow output rounded once more)."""
    for i in prange(x.shape[0]):
        out[i] = _bce_one(x[i], t[i], w[i], pw[i], odd)


@jit(parallel=True)
def bce_grad_rows(x, t, w, pw, scale, odd, out, grad):
    """Loss as :func:`bce_rows`, and ``grad[i] = (B_i sigma(x_i) - A_i sigma(-x_i)) / scale``."""
    for i in prange(x.shape[0]):
        xi = x[i]
        out[i] = _bce_one(xi, t[i], w[i], pw[i], odd)
        sp, sn = _sigmoid_pair(xi)
        a = w[i] * pw[i] * t[i]
        b = w[i] * (1.0 - t[i])
        g = fma(b, sp, -(a * sn))
        grad[i] = g / scale


@jit(parallel=True)
def bce_rows_cr(x, t, w, pw, cr, out):
    """:func:`bce_rows` correctly rounded (float64): nan where the oracle must decide."""
    for i in prange(x.shape[0]):
        out[i] = _bce_one(x[i], t[i], w[i], pw[i], False, cr)


@jit(parallel=True)
def softplus_rows_cr(x, sign, cr, out):
    """:func:`softplus_rows` correctly rounded (float64): nan where the oracle must decide."""
    for i in prange(x.shape[0]):
        h, l = weighted_softplus(1.0, 0.0, sign * x[i], True)
        r = h if (h == INF or h != h) else _round_cr(h, l, False, cr)
        out[i] = 0.0 + sign * r


@jit(parallel=True)
def softplus_rows(x, sign, odd, out):
    """``out[i] = sign * softplus(sign * x[i])``: ``sign = 1`` softplus, ``-1`` log_sigmoid."""
    for i in prange(x.shape[0]):
        h, l = weighted_softplus(1.0, 0.0, sign * x[i])
        r = h if (h == INF or h != h) else _round_sum(h, l, odd)
        out[i] = 0.0 + sign * r  # log_sigmoid(inf) = +0, as the exact value


@jit
def _bce_grad_cr(x, t, w, pw, scale, cr):
    """``(B sigma(x) - A sigma(-x)) / scale`` of the correctly rounded path, or nan where the
    rounding cannot be decided. ``e = e^{-|x|}`` from ``exp_parts_dd``; ``sigma`` of the large
    side is ``1 / (1 + e)``, of the small side ``e / (1 + e)`` (double-double divisions). The
    two products are subtracted by TwoSum, so where they cancel the difference is exact and
    the error is absolute: ``cr (|P| + |Q|) / scale`` (``BCE_GRAD_CR_ERR``), plus
    ``2**-865 (A + B) / scale`` for ``|x| > 600`` (``e`` taken as 0) and ``2 TINY`` (steps in
    the subnormal range). An infinite value (overflowing coefficients) goes to the oracle."""
    if x != x:
        return NAN
    ah, al, bh, bl = _coefficients(t, w, pw)
    err = 0.0
    if abs(x) > _X_GRAD:
        Sh, Sl, sh, sl = 1.0, 0.0, 0.0, 0.0  # sigma(large), sigma(small)
        err = 2.0**-865 * (abs(ah) + abs(bh))
    else:
        h, l, s = exp_parts_dd(-abs(x))  # e = (h + l) s 2**-600, s a power of two
        k = s * 2.0**-600  # 2**k with e^-600 <= e: a normal power of two
        eh, el = h * k, l * k
        dh, dl = two_sum(1.0, eh)
        dl += el
        Sh, Sl = dd_div(1.0, 0.0, dh, dl)
        sh, sl = dd_div(eh, el, dh, dl)
    if x >= 0.0:  # sigma(x) is the large side
        ph, pl = dd_mul(bh, bl, Sh, Sl)
        qh, ql = dd_mul(ah, al, sh, sl)
    else:
        ph, pl = dd_mul(bh, bl, sh, sl)
        qh, ql = dd_mul(ah, al, Sh, Sl)
    dh, de = two_sum(ph, -qh)
    gh, gl = dd_div(dh, de + (pl - ql), scale, 0.0)
    err = (err + cr * (abs(ph) + abs(qh))) / scale * (1.0 + 2.0**-40)
    if ph != 0.0 or qh != 0.0 or err != 0.0:
        err += 2.0 * TINY
    r = _round_cr_abs(gh, gl, err)
    return r if r - r == 0.0 else NAN


@jit(parallel=True)
def bce_grad_rows_cr(x, t, w, pw, scale, cr, grad):
    """The gradient of :func:`bce_grad_rows` correctly rounded (float64): nan where the oracle
    must decide (the loss is :func:`bce_rows_cr`'s)."""
    for i in prange(x.shape[0]):
        grad[i] = _bce_grad_cr(x[i], t[i], w[i], pw[i], scale, cr)
