r"""crossent from JAX: ``jax.custom_vjp`` functions over ``jax.pure_callback``.

The functions run crossent's NumPy API on the host and work under ``jit``, ``grad``,
``value_and_grad`` and ``vmap``; values and gradients are bitwise those of the NumPy API.
:func:`cross_entropy` has crossent's signature; :func:`softmax_cross_entropy_with_integer_labels`
and :func:`softmax_cross_entropy` are drop-in replacements for optax's losses of those names.

Batching (``vmap``): every callback uses ``vmap_method="expand_dims"``, so a vmapped call is
one host call that receives the whole batch (unbatched arguments with a leading axis of
length 1). The class axis is kept as a negative index, so the row-wise functions
(:func:`log_softmax`, :func:`softmax`, :func:`logsumexp` and the per-item loss) make one
crossent call over all the rows, which gives the bits of separate calls (crossent's
results do not depend on how a batch is split). A reduced loss (``'mean'``, ``'sum'``) or a
batched ``weight`` is computed per batch element, in a loop inside that one host call.

Rounding mode: every function takes ``rounding=`` (``"fast"``, the default, or ``"correct"``),
the mode of its host calls: with ``"correct"`` the float64 values, and the loss's gradient in the
logits (crossent's fused gradient), are correctly rounded; the vector-Jacobian products of
:func:`log_softmax`, :func:`softmax` and :func:`logsumexp`, and the gradient in probability
targets, are JAX arithmetic on crossent's values. ``crossent.rounding("correct")`` does not reach
the host calls (they run on JAX's threads, after tracing), so without ``rounding=`` it raises.

Not supported: forward-mode differentiation (``jvp``, ``jacfwd``: a ``custom_vjp``
function has no JVP), second derivatives of the loss, and gradients with respect to
``weight`` (both raise). ``docs/bridges.md`` has the details.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np

from . import _rounding
from . import cross_entropy as _np_cross_entropy
from . import cross_entropy_value_and_grad as _np_value_and_grad
from . import log_softmax as _np_log_softmax
from . import logsumexp as _np_logsumexp
from . import softmax as _np_softmax
from ._validate import loss_options

__all__ = [
    "cross_entropy",
    "log_softmax",
    "logsumexp",
    "softmax",
    "softmax_cross_entropy",
    "softmax_cross_entropy_with_integer_labels",
]

_VMAP = "expand_dims"
_REDUCTIONS = ("none", "mean", "sum")
#: optax's integer-label loss ignores no label: an ignore_index no int64 label can equal but one
_NO_IGNORE = -(2**63)

_SECOND_ORDER = (
    "crossent.jax.cross_entropy has no second derivatives: its gradient is crossent's fused "
    "first-order gradient, computed on the host. Use optax's loss where second derivatives are needed."
)


def _float_array(x, name: str, fn: str):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_:
        x = x.astype(jnp.asarray(1.0).dtype)  # the default float, as crossent makes ints float64
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"crossent.jax.{fn}: {name} must have a real floating-point dtype, got {x.dtype}")
    return x


def _neg_axis(axis, ndim: int, fn: str) -> int:
    """The axis as a negative index: it still names the class axis when vmap adds leading axes."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"crossent.jax.{fn}: axis must be an integer, got {axis!r}")
    if ndim == 0:
        raise ValueError(f"crossent.jax.{fn}: the input must have at least one dimension (the axis), got 0-d")
    if not -ndim <= axis < ndim:
        raise ValueError(f"crossent.jax.{fn}: axis={axis} is out of range for an input with {ndim} dimensions")
    return int(axis) % ndim - ndim


# -- log_softmax, softmax, logsumexp ------------------------------------------------------------


def _mode(rounding, fn: str) -> str:
    """The rounding mode of a call: ``rounding`` when given (``"fast"`` or ``"correct"``), else
    ``"fast"``. Without it, ``crossent.rounding("correct")`` in effect raises: the host calls
    run on JAX's threads after tracing, where the caller's context (and its mode) is not in
    effect, and a mode read while tracing would be frozen into a jitted function."""
    if rounding is None:
        if _rounding.get_rounding() == "correct":
            raise NotImplementedError(
                f"crossent.jax.{fn} does not follow crossent.rounding('correct'): its host calls "
                "run on JAX's threads, after tracing, outside the caller's context; pass "
                "rounding='correct' (a static argument, part of the trace)")
        return "fast"
    if not isinstance(rounding, str) or rounding not in _rounding.MODES:
        raise ValueError(f"crossent.jax.{fn}: rounding must be None or one of "
                         f"{_rounding.MODES}, got {rounding!r}")
    return rounding


def _rowwise_call(np_fn, x, axis, shape, mode, **kw):
    def host(a):
        with _rounding.rounding(mode):  # on JAX's thread: the call's mode, set here
            return np_fn(np.asarray(a), axis=axis, **kw)

    return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, x.dtype), x, vmap_method=_VMAP)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _softmax(x, axis, mode):
    return _rowwise_call(_np_softmax, x, axis, x.shape, mode)


def _softmax_fwd(x, axis, mode):
    y = _softmax(x, axis, mode)  # through the custom_vjp itself: the residual is differentiable
    return y, y


def _softmax_bwd(axis, mode, y, g):
    return (y * (g - jnp.sum(g * y, axis=axis, keepdims=True)),)


_softmax.defvjp(_softmax_fwd, _softmax_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _log_softmax(x, axis, mode):
    return _rowwise_call(_np_log_softmax, x, axis, x.shape, mode)


def _log_softmax_fwd(x, axis, mode):
    return _log_softmax(x, axis, mode), x


def _log_softmax_bwd(axis, mode, x, g):
    return (g - _softmax(x, axis, mode) * jnp.sum(g, axis=axis, keepdims=True),)


_log_softmax.defvjp(_log_softmax_fwd, _log_softmax_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _logsumexp(x, axis, keepdims, mode):
    shape = list(x.shape)
    if keepdims:
        shape[axis] = 1
    else:
        del shape[axis]
    return _rowwise_call(_np_logsumexp, x, axis, tuple(shape), mode, keepdims=keepdims)


def _logsumexp_fwd(x, axis, keepdims, mode):
    return _logsumexp(x, axis, keepdims, mode), x


def _logsumexp_bwd(axis, keepdims, mode, x, g):
    return ((g if keepdims else jnp.expand_dims(g, axis)) * _softmax(x, axis, mode),)


_logsumexp.defvjp(_logsumexp_fwd, _logsumexp_bwd)


def log_softmax(x, axis=-1, *, rounding=None):
    r"""Logarithm of the softmax along ``axis``: :func:`crossent.log_softmax` for JAX.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 (integers become the default float dtype).
    axis : int, optional
        The class axis (default: the last).
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        ``x - logsumexp(x, axis, keepdims=True)`` in the dtype of ``x``.

    Notes
    -----
    The values are crossent's (within 1 ulp in float32/float16, 3 ulp in float64). The
    vector-Jacobian product is

    .. math:: \bar x_i = g_i - \sigma(x)_i \sum_j g_j,

    with :math:`\sigma(x)` from :func:`softmax` (so ``grad`` of ``grad`` works).

    Examples
    --------
    >>> import jax.numpy as jnp, crossent.jax
    >>> crossent.jax.log_softmax(jnp.array([0.0, -20.0], jnp.float32)).tolist()  # jax.nn.log_softmax: [0.0, -20.0]
    [-2.06115369216775e-09, -20.0]
    """
    mode = _mode(rounding, "log_softmax")
    x = _float_array(x, "x", "log_softmax")
    return _log_softmax(x, _neg_axis(axis, x.ndim, "log_softmax"), mode)


def softmax(x, axis=-1, *, rounding=None):
    r"""Softmax along ``axis``: :func:`crossent.softmax` for JAX.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 (integers become the default float dtype).
    axis : int, optional
        The class axis (default: the last).
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        Probabilities along ``axis`` in the dtype of ``x``.

    Notes
    -----
    The values are crossent's (within 1 ulp in float32/float16, 3 ulp in float64). With
    :math:`y = \sigma(x)` the vector-Jacobian product is

    .. math:: \bar x_i = y_i \Bigl(g_i - \sum_j g_j y_j\Bigr).

    Examples
    --------
    >>> import jax.numpy as jnp, crossent.jax
    >>> crossent.jax.softmax(jnp.zeros(4, jnp.float32)).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    mode = _mode(rounding, "softmax")
    x = _float_array(x, "x", "softmax")
    return _softmax(x, _neg_axis(axis, x.ndim, "softmax"), mode)


def logsumexp(x, axis=-1, keepdims=False, *, rounding=None):
    r"""Logarithm of the sum of exponentials along ``axis``: :func:`crossent.logsumexp` for JAX.

    Parameters
    ----------
    x : array_like
        float16, float32 or float64 (integers become the default float dtype).
    axis : int, optional
        The axis to reduce (default: the last; one axis).
    keepdims : bool, optional
        Keep the reduced axis with length 1.
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        ``log(sum(exp(x), axis))`` in the dtype of ``x``.

    Notes
    -----
    The values are crossent's (float64 within 3 ulp where :math:`\max x \ge 0`,
    float32/float16 within 1 ulp). The vector-Jacobian product is :math:`g\,\sigma(x)`,
    with :math:`\sigma(x)` from :func:`softmax`.

    Examples
    --------
    >>> import jax.numpy as jnp, crossent.jax
    >>> crossent.jax.logsumexp(jnp.zeros((2, 4), jnp.float32)).tolist()  # log 4
    [1.3862943649291992, 1.3862943649291992]
    """
    mode = _mode(rounding, "logsumexp")
    x = _float_array(x, "x", "logsumexp")
    if not isinstance(keepdims, (bool, np.bool_)):
        raise TypeError(f"crossent.jax.logsumexp: keepdims must be a bool, got {keepdims!r}")
    return _logsumexp(x, _neg_axis(axis, x.ndim, "logsumexp"), bool(keepdims), mode)


# -- cross_entropy ------------------------------------------------------------------------------


def _ce_host(opts, want_grad, logits, target, weight=None):
    """crossent on the host, for one call or a vmapped batch of calls (leading axes)."""
    axis, ndim, ignore_index, reduction, eps, z, cap, mode = opts
    with _rounding.rounding(mode):  # on JAX's thread: the call's mode, set here
        return _ce_host_in(axis, ndim, ignore_index, reduction, eps, z, cap, want_grad, logits,
                           target, weight)


def _ce_host_in(axis, ndim, ignore_index, reduction, eps, z, cap, want_grad, logits, target,
                weight):
    kw = dict(axis=axis, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps)
    if z or cap is not None:  # the options' keywords only when set (the plain call otherwise)
        kw.update(z_loss=z, logit_softcap=cap)
    fn = _np_value_and_grad if want_grad else _np_cross_entropy
    x, t = np.asarray(logits), np.asarray(target)
    w = None if weight is None else np.asarray(weight)
    lead = x.ndim - ndim  # axes added by vmap ("expand_dims": length 1 where unbatched)
    if lead == 0:
        return fn(x, t, weight=w, **kw)
    batch = np.broadcast_shapes(x.shape[:lead], t.shape[:lead], *([] if w is None else [w.shape[:lead]]))
    x = np.broadcast_to(x, batch + x.shape[lead:])
    t = np.broadcast_to(t, batch + t.shape[lead:])
    if reduction == "none" and (w is None or all(n == 1 for n in w.shape[:lead])):
        # per-item losses: the batch is more rows, one call (the bits of separate calls)
        return fn(x, t, weight=None if w is None else w.reshape(-1), **kw)
    if w is not None:
        w = np.broadcast_to(w, batch + w.shape[lead:])
    parts = [fn(x[i], t[i], weight=None if w is None else w[i], **kw) for i in np.ndindex(batch)]
    if not want_grad:
        return np.stack(parts).reshape(batch + np.shape(parts[0]))
    losses, grads = zip(*parts)
    return (np.stack(losses).reshape(batch + np.shape(losses[0])),
            np.stack(grads).reshape(batch + grads[0].shape))


def _ce_call(opts, want_grad, logits, target, weight):
    axis, ndim, _, reduction, _, _, _, _ = opts
    loss_shape = logits.shape[:axis % ndim] + logits.shape[axis % ndim + 1:] if reduction == "none" else ()
    out = jax.ShapeDtypeStruct(loss_shape, logits.dtype)
    if want_grad:
        out = (out, jax.ShapeDtypeStruct(logits.shape, logits.dtype))
    args = (logits, target) if weight is None else (logits, target, weight)
    return jax.pure_callback(functools.partial(_ce_host, opts, want_grad), out, *args, vmap_method=_VMAP)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _ce_value_and_grad(opts, logits, target, weight):
    """The loss and its gradient (the forward pass of the VJP); refuses to be differentiated."""
    return _ce_call(opts, True, logits, target, weight)


@_ce_value_and_grad.defjvp
def _(opts, primals, tangents):
    raise NotImplementedError(_SECOND_ORDER)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _ce(opts, logits, target, weight):
    return _ce_call(opts, False, logits, target, weight)


def _ce_fwd(opts, logits, target, weight):
    # symbolic zeros: each argument says whether it is differentiated ("perturbed")
    if weight is not None and weight.perturbed:
        raise ValueError(
            "crossent.jax.cross_entropy is not differentiable with respect to weight: "
            "wrap it in jax.lax.stop_gradient"
        )
    x, t = logits.value, target.value
    w = None if weight is None else weight.value
    if logits.perturbed:
        loss, dlogits = _ce_value_and_grad(opts, x, t, w)
    else:
        loss, dlogits = _ce(opts, x, t, w), None
    soft = target.perturbed  # only a float (probability) target can be
    return loss, (dlogits, x if soft else None, w if soft else None, t if soft else None)


def _ce_bwd(opts, res, g):
    dlogits, x, w, t = res
    axis, ndim, _, reduction, eps, _, cap, mode = opts
    if isinstance(g, jax.custom_derivatives.SymbolicZero):
        return None, None, None
    g = jnp.expand_dims(g, axis) if reduction == "none" else g
    d_logits = None if dlogits is None else dlogits * g
    d_target = None
    if x is not None:
        # d/dt_c of sum_c w_c ((1 - eps) t_c + eps / C) (-log softmax_c): -(1 - eps) w_c log softmax_c
        xc = x if cap is None else (cap * jnp.tanh(x / cap)).astype(x.dtype)  # the capped logits
        d = _log_softmax(xc, axis, mode) * -(1.0 - eps)
        if w is not None:
            d = d * w.reshape((-1,) + (1,) * (-axis - 1)).astype(d.dtype)
        if reduction == "mean":
            d = d / (x.size // x.shape[axis])
        d_target = (d * g).astype(t.dtype)
    return d_logits, d_target, None


_ce.defvjp(_ce_fwd, _ce_bwd, symbolic_zeros=True)


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, logit_softcap=None, rounding=None):
    r"""Softmax cross-entropy: :func:`crossent.cross_entropy` for JAX, with its gradient.

    Parameters
    ----------
    logits : array_like
        float16, float32 or float64, the classes on ``axis``.
    target : array_like
        Integer class indices (the shape of ``logits`` without ``axis``) or float
        probabilities (the shape of ``logits``).
    axis, weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As for :func:`crossent.cross_entropy`. ``weight`` is not differentiated (asking for
        its gradient raises: wrap it in ``jax.lax.stop_gradient``).
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        The loss in the dtype of ``logits``: per item for ``'none'``, else a scalar.

    Notes
    -----
    The value is :func:`crossent.cross_entropy`'s and the gradient in ``logits`` is
    :func:`crossent.cross_entropy_value_and_grad`'s (times the incoming cotangent), both
    computed in one host call when the gradient is wanted:

    .. math:: \frac{\partial L}{\partial z_i} = \frac{A\,\sigma(z)_i - a_i}{D}.

    Probability targets that are differentiated get :math:`-(1-\varepsilon)\,w_c
    \log\sigma(z)_c / D`. Values that only the data can reveal (a label out of range, a
    negative probability) are found on the host and raise there, as a runtime error of
    the computation.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, crossent.jax
    >>> logits = jnp.array([[30.0, 0.0, 0.0], [0.0, 1.0, 2.0]], jnp.float32)
    >>> labels = jnp.array([0, 2])
    >>> crossent.jax.cross_entropy(logits, labels, reduction="none").tolist()  # optax: [0.0, 0.40760589]
    [1.8715245824439675e-13, 0.40760597586631775]
    >>> jax.grad(crossent.jax.cross_entropy)(logits, labels)[0].tolist()  # optax: [0.0, 4.7e-14, 4.7e-14]
    [-9.357622912219837e-14, 4.6788114561099187e-14, 4.6788114561099187e-14]
    """
    fn = "cross_entropy"
    mode = _mode(rounding, fn)
    x = _float_array(logits, "logits", fn)
    ax = _neg_axis(axis, x.ndim, fn)
    C = x.shape[ax]
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"crossent.jax.{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"crossent.jax.{fn}: label_smoothing must be a real number, got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"crossent.jax.{fn}: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"crossent.jax.{fn}: ignore_index must be an integer, got {ignore_index!r}")
    if not -(2**63) <= int(ignore_index) < 2**63:
        raise ValueError(f"crossent.jax.{fn}: ignore_index must fit in an int64, got {ignore_index}")
    t = jnp.asarray(target)
    batch = x.shape[:ax % x.ndim] + x.shape[ax % x.ndim + 1:]
    if jnp.issubdtype(t.dtype, jnp.floating):
        if t.shape != x.shape:
            raise ValueError(
                f"crossent.jax.{fn}: target holds probabilities ({t.dtype}), so it must have the shape "
                f"of logits {x.shape}, got {t.shape}"
            )
    elif jnp.issubdtype(t.dtype, jnp.integer):
        if t.shape != batch:
            raise ValueError(
                f"crossent.jax.{fn}: target holds class indices, so its shape must be logits.shape "
                f"without axis {axis}: expected {batch}, got {t.shape}"
            )
    else:
        raise TypeError(f"crossent.jax.{fn}: target must hold integer class indices or float probabilities, got {t.dtype}")
    w = None
    if weight is not None:
        w = _float_array(weight, "weight", fn)
        if w.shape != (C,):
            raise ValueError(f"crossent.jax.{fn}: weight must have shape ({C},), got {w.shape}")
    try:
        z, cap = loss_options(z_loss, logit_softcap)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"crossent.jax.{fn}: {exc}") from None
    opts = (ax, x.ndim, int(ignore_index), reduction, float(label_smoothing), z,
            cap if cap else None, mode)
    return _ce(opts, x, t, w)


def softmax_cross_entropy_with_integer_labels(logits, labels, axis=-1, *, rounding=None):
    r"""Per-example softmax cross-entropy with integer labels, as optax's, by crossent.

    Parameters
    ----------
    logits : array_like
        float16, float32 or float64, the classes on ``axis``.
    labels : array_like
        Integer class indices in ``[0, C)``, the shape of ``logits`` without ``axis``.
    axis : int, optional
        The class axis (default: the last; one axis).
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        The loss of each example: ``logits.shape`` without ``axis``, the dtype of ``logits``.

    Notes
    -----
    :func:`cross_entropy` with ``reduction='none'``: per example
    :math:`-\log\sigma(z)_y = (m - z_y) + \operatorname{log1p}(s)` (see
    :func:`crossent.cross_entropy`), where optax computes
    :math:`\operatorname{logsumexp}(z) - z_y` and rounds a loss below half an ulp of it to 0.
    No label is ignored; a label outside ``[0, C)`` is an error (optax returns an
    unspecified value for it).

    Examples
    --------
    >>> import jax.numpy as jnp, crossent.jax
    >>> crossent.jax.softmax_cross_entropy_with_integer_labels(jnp.array([[20.0, 0.0]], jnp.float32), jnp.array([0])).tolist()
    [2.06115369216775e-09]
    """
    fn = "softmax_cross_entropy_with_integer_labels"
    _mode(rounding, fn)
    lab = jnp.asarray(labels)
    if not jnp.issubdtype(lab.dtype, jnp.integer):
        raise TypeError(f"crossent.jax.{fn}: labels must have an integer dtype, got {lab.dtype}")
    return cross_entropy(logits, lab, axis=axis, reduction="none", ignore_index=_NO_IGNORE,
                         rounding=rounding)


def softmax_cross_entropy(logits, labels, axis=-1, *, rounding=None):
    r"""Per-example softmax cross-entropy with probability labels, as optax's, by crossent.

    Parameters
    ----------
    logits : array_like
        float16, float32 or float64, the classes on ``axis``.
    labels : array_like
        Probabilities (finite, non-negative), broadcastable to the shape of ``logits``.
    axis : int, optional
        The class axis (default: the last; one axis).
    rounding : {None, "fast", "correct"}, optional
        The rounding mode of crossent's host call (:func:`crossent.rounding`, a static
        argument): ``"correct"`` gives correctly rounded float64 values. None (the default)
        is ``"fast"``, and raises ``NotImplementedError`` while ``crossent.rounding("correct")``
        is in effect (that mode does not reach the host calls, which run on JAX's threads).

    Returns
    -------
    jax.Array
        The loss of each example: ``logits.shape`` without ``axis``, the dtype of ``logits``.

    Notes
    -----
    :func:`cross_entropy` with probability targets and ``reduction='none'``:
    :math:`\sum_c t_c\,(-\log\sigma(z)_c)`, a sum of non-negative terms. Differentiable in
    ``logits`` and in ``labels``. Negative labels are an error (optax accepts them).

    Examples
    --------
    >>> import jax.numpy as jnp, crossent.jax
    >>> crossent.jax.softmax_cross_entropy(jnp.zeros((1, 4), jnp.float32), jnp.array([[0.5, 0.5, 0.0, 0.0]], jnp.float32)).tolist()
    [1.3862943649291992]
    """
    fn = "softmax_cross_entropy"
    _mode(rounding, fn)
    x = _float_array(logits, "logits", fn)
    lab = jnp.asarray(labels)
    if not jnp.issubdtype(lab.dtype, jnp.floating):
        raise TypeError(f"crossent.jax.{fn}: labels must be float probabilities, got {lab.dtype}")
    try:
        lab = jnp.broadcast_to(lab, x.shape)
    except ValueError:
        raise ValueError(f"crossent.jax.{fn}: labels of shape {lab.shape} do not broadcast to logits' {x.shape}") from None
    return cross_entropy(x, lab, axis=axis, reduction="none", rounding=rounding)
