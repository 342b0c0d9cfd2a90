"""PyTorch, JAX and SciPy behind crossent's signatures, for measuring them like crossent.

:func:`torch_impl` and :func:`jax_impl` make one PyTorch or JAX function (the library's own, or
a third-party kernel with the same calling convention) callable like the crossent function it
implements: NumPy arrays in and out, crossent's keywords, the class axis where the library
wants it. They are public as :func:`crossent.testing.torch_impl` and
:func:`crossent.testing.jax_impl`; :func:`load_peers` assembles one implementation per peer
from them for ``crossent accuracy`` and ``benchmarks/pmf_accuracy_peers.py``, so that the sweep,
the documentation's peer tables and a user's measurement all call the peers the same way. Where
a function has no equivalent of an option or a case (optax has no class weights) the adapter
raises :class:`crossent._measure.Unsupported`, and the case is left out of the measurement.
The peers are imported lazily: one that is not installed is left out by :func:`load_peers`,
never faked.

What the adapters call by default:

``pytorch``
    ``torch.logsumexp``, ``F.log_softmax``, ``F.softmax``, ``F.cross_entropy`` (class axis
    moved to dimension 1, the gradient by ``backward()``), ``F.kl_div(log q, p).sum(axis)``.
``jax``
    ``jax.scipy.special.logsumexp``, ``jax.nn.log_softmax``, ``jax.nn.softmax``, optax's
    ``softmax_cross_entropy[_with_integer_labels]`` (with ``smooth_labels``; the gradient by
    ``jax.value_and_grad``), ``optax.kl_divergence(log q, p)``, ``sum(entr(p))``; with
    ``jax_enable_x64`` so that float64 stays float64.
``scipy``
    ``scipy.special.logsumexp``, ``log_softmax``, ``softmax``, ``scipy.stats.entropy``.

:func:`pmf_forms` adds the other ways the same libraries offer to compute entropy and KL
(``rel_entr``, ``kl_div``, ``entr`` summed, ``log_target=True``, ``Categorical.entropy``, ...).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from crossent._measure import Unsupported

__all__ = ["PEERS", "TORCH_FUNCTIONS", "JAX_FUNCTIONS", "LAYOUTS", "Forms", "torch_impl",
           "jax_impl", "load_peers", "pmf_forms"]

PEERS = ("pytorch", "jax", "scipy")
_SOFTMAX = ("logsumexp", "log_softmax", "softmax")
_LOSS = ("cross_entropy", "cross_entropy_value_and_grad")
#: the crossent functions each adapter can stand for
TORCH_FUNCTIONS = _SOFTMAX + _LOSS + ("kl_divergence",)
JAX_FUNCTIONS = TORCH_FUNCTIONS + ("entropy",)
#: "native": the library's own convention; "rows": 2-D (rows, classes) arrays, no axis argument
LAYOUTS = ("native", "rows")


def _class_axis_to_1(logits, target, axis):
    """Logits (and probability targets) with the class axis at dimension 1, as PyTorch wants;
    class-index targets keep their layout (the logits' axes without the class axis, in order)."""
    ax = axis % logits.ndim
    x = np.moveaxis(logits, ax, 1) if logits.ndim > 1 else logits
    t = np.moveaxis(target, ax, 1) if target.dtype.kind == "f" else target
    return np.ascontiguousarray(x), np.ascontiguousarray(t)


def _to_rows(a, axis):
    """``a`` as a contiguous 2-D (rows, classes) array, classes last."""
    m = np.moveaxis(a, axis % a.ndim, -1)
    return np.ascontiguousarray(m.reshape(-1, m.shape[-1]))


def _from_rows(out, shape, axis):
    """Undo :func:`_to_rows` for an output of the input's shape."""
    ax = axis % len(shape)
    moved = tuple(np.delete(np.array(shape), ax)) + (shape[ax],)
    return np.moveaxis(np.asarray(out).reshape(moved), -1, ax)


def _item_shape(shape, axis):
    return tuple(np.delete(np.array(shape, dtype=np.int64), axis % len(shape)).tolist())


def _name(fn) -> str:
    mod = getattr(fn, "__module__", None) or ""
    qual = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    return f"{mod}.{qual}" if mod else qual


def _loss_keywords(fn, target, **kw) -> dict:
    """The loss keywords ``fn`` is called with: every one its signature takes. One it does not
    take must keep its default (no weights, no smoothing, no label equal to ``ignore_index``),
    else the case is :class:`Unsupported`; ``reduction`` is always needed."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):  # no signature to read: pass everything
        return kw
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return kw
    out = {}
    for k, v in kw.items():
        if k in params:
            out[k] = v
        elif (k == "reduction" or (k == "weight" and v is not None)
              or (k == "label_smoothing" and v != 0.0)
              or (k == "ignore_index" and target.dtype.kind != "f" and np.any(target == v))):
            raise Unsupported(f"{_name(fn)} takes no {k!r} keyword")
    return out


def _adapter(impl, function, name, peer):
    impl.function, impl.peer, impl.name = function, peer, name
    impl.__name__ = impl.__qualname__ = f"{peer}_{function}"
    impl.__doc__ = f"{impl.name} called like crossent.{function} (NumPy in and out)."
    return impl


def _check(function, functions, layout, what):
    if function not in functions:
        raise ValueError(f"function: {what} stands for one of {functions}, not {function!r}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout: one of {LAYOUTS}, not {layout!r}")


# ---------------------------------------------------------------------------------------
# PyTorch


def torch_impl(function: str = "cross_entropy", fn=None, *, layout: str = "native",
               device=None):
    """A PyTorch function called like the crossent function ``function``.

    Parameters
    ----------
    function : str
        The crossent function ``fn`` computes: ``"logsumexp"``, ``"log_softmax"``,
        ``"softmax"``, ``"cross_entropy"``, ``"cross_entropy_value_and_grad"`` (the gradient
        by ``backward()`` of ``fn``'s reduced loss) or ``"kl_divergence"``.
    fn : callable, optional
        The function to measure, with PyTorch's calling convention for ``function``:
        ``torch.logsumexp(x, dim=)``, ``F.log_softmax(x, dim=)``, ``F.softmax(x, dim=)``,
        ``F.cross_entropy(input, target, weight=, ignore_index=, reduction=,
        label_smoothing=)`` (class dimension 1; class-index targets as int64), or
        ``F.kl_div(log_q, p, reduction="none")`` (summed over the class axis here).
        Default: that PyTorch function itself. Loss keywords ``fn`` does not take are not
        passed; cases that need them (weights, smoothing, ignored labels) are left out.
    layout : {"native", "rows"}
        ``"native"``: PyTorch's convention above. ``"rows"``: ``fn`` takes 2-D
        ``(rows, classes)`` tensors (the class axis moved last, the other axes flattened) and
        no ``dim`` (``fn(x)``; ``fn(input, target, **keywords)`` with 1-D targets), as most
        fused kernels do; the outputs are reshaped back.
    device : str or torch.device, optional
        Where the input tensors are placed (``"cuda"`` for a GPU kernel); the outputs are
        copied back to the CPU.

    Returns
    -------
    callable
        ``impl(*args, **kwargs)`` with the signature of ``crossent.<function>``, NumPy arrays
        in and out; ``impl.name`` names ``fn``. Cases ``fn`` cannot express raise
        :class:`crossent.testing.Unsupported`.
    """
    _check(function, TORCH_FUNCTIONS, layout, "torch_impl")
    import torch
    import torch.nn.functional as F

    default = {"logsumexp": torch.logsumexp, "log_softmax": F.log_softmax,
               "softmax": F.softmax, "cross_entropy": F.cross_entropy,
               "cross_entropy_value_and_grad": F.cross_entropy, "kl_divergence": F.kl_div}
    name = (f"torch.{'' if function == 'logsumexp' else 'nn.functional.'}"
            f"{default[function].__name__}" if fn is None else _name(fn))
    fn = default[function] if fn is None else fn
    call = fn
    if layout == "rows" and fn is default[function] and function in _SOFTMAX:
        def call(t):
            return fn(t, dim=-1)

    def tensor(a):
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t if device is None else t.to(device)

    def array(t):
        t = t.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()

    if function in _SOFTMAX:
        def impl(x, axis=-1):
            x = np.asarray(x)
            if layout == "native":
                return array(fn(tensor(x), dim=axis))
            out = array(call(tensor(_to_rows(x, axis))))
            if function == "logsumexp":
                return out.reshape(_item_shape(x.shape, axis))
            return _from_rows(out, x.shape, axis)

    elif function == "kl_divergence":
        def impl(p, q, *, base=None, axis=-1):
            if base is not None:
                raise Unsupported("F.kl_div: natural logarithm only")
            p, q = np.asarray(p), np.asarray(q)
            if layout == "rows":
                out = fn(torch.log(tensor(_to_rows(q, axis))), tensor(_to_rows(p, axis)),
                         reduction="none").sum(dim=-1)
                return array(out).reshape(_item_shape(p.shape, axis))
            return array(fn(torch.log(tensor(q)), tensor(p), reduction="none").sum(dim=axis))

    else:
        grad = function == "cross_entropy_value_and_grad"

        def impl(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                 reduction="mean", label_smoothing=0.0):
            x, t = np.asarray(logits), np.asarray(target)
            kw = _loss_keywords(fn, t, weight=weight, ignore_index=ignore_index,
                                reduction=reduction, label_smoothing=label_smoothing)
            if kw.get("weight") is not None:
                kw["weight"] = tensor(weight)
            if layout == "rows":
                x2 = _to_rows(x, axis)
                t2 = _to_rows(t, axis) if t.dtype.kind == "f" else t.reshape(-1)
            else:
                x2, t2 = _class_axis_to_1(x, t, axis)
            xt = tensor(x2)
            if grad:
                xt = xt.clone().requires_grad_(True)
            out = fn(xt, tensor(t2 if t2.dtype.kind == "f" else t2.astype(np.int64)), **kw)
            if reduction == "none" and layout == "rows":
                value = array(out).reshape(_item_shape(x.shape, axis))
            else:
                value = array(out)
            if not grad:
                return value
            out.backward()
            g = array(xt.grad)
            if layout == "rows":
                return value, _from_rows(g, x.shape, axis)
            return value, (np.moveaxis(g, 1, axis % x.ndim) if x.ndim > 1 else g)

    return _adapter(impl, function, name, "pytorch")


# ---------------------------------------------------------------------------------------
# JAX


def _jax_modules():
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64
    import jax.numpy as jnp
    import jax.scipy.special as jsp

    return jax, jnp, jsp


def jax_impl(function: str = "cross_entropy", fn=None, *, soft_fn=None,
             layout: str = "native"):
    """A JAX function called like the crossent function ``function``.

    Parameters
    ----------
    function : str
        The crossent function ``fn`` computes: ``"logsumexp"``, ``"log_softmax"``,
        ``"softmax"``, ``"cross_entropy"``, ``"cross_entropy_value_and_grad"`` (the gradient
        by ``jax.value_and_grad`` of the reduced loss), ``"kl_divergence"`` or
        ``"entropy"``.
    fn : callable, optional
        The function to measure, with the JAX/optax calling convention for ``function``:
        ``logsumexp(x, axis=)`` (as ``jax.scipy.special``), ``log_softmax(x, axis=)``,
        ``softmax(x, axis=)`` (as ``jax.nn``), a per-item loss with integer labels
        ``fn(logits, labels, axis=)`` (as ``optax.softmax_cross_entropy_with_integer_labels``),
        ``kl(log_q, p, axis=)`` (as ``optax.kl_divergence``) or ``entropy(p, axis=)``.
        Default: those library functions (entropy: ``sum(jax.scipy.special.entr(p))``).
    soft_fn : callable, optional
        For the loss: the per-item loss with probability targets ``soft_fn(logits, probs,
        axis=)`` (as ``optax.softmax_cross_entropy``), used for probability targets and label
        smoothing (``optax.smooth_labels`` of the one-hot targets). Default:
        ``optax.softmax_cross_entropy`` when ``fn`` is the default, otherwise none (those
        cases are left out). Class weights and ignored labels have no optax equivalent and
        are always left out; ``"mean"`` is the mean over items.
    layout : {"native", "rows"}
        ``"native"``: the convention above. ``"rows"``: ``fn`` takes 2-D ``(rows, classes)``
        arrays (class axis last) and no ``axis``; the outputs are reshaped back.

    Returns
    -------
    callable
        ``impl(*args, **kwargs)`` with the signature of ``crossent.<function>``, NumPy arrays
        in and out; ``impl.name`` names ``fn``.

    Notes
    -----
    Enables ``jax_enable_x64`` (a process-wide JAX setting) so that float64 inputs are
    computed in float64.
    """
    _check(function, JAX_FUNCTIONS, layout, "jax_impl")
    jax, jnp, jsp = _jax_modules()
    if function in _LOSS or function == "kl_divergence":
        import optax
    given = fn is not None
    name = _name(fn) if given else {
        "logsumexp": "jax.scipy.special.logsumexp", "log_softmax": "jax.nn.log_softmax",
        "softmax": "jax.nn.softmax",
        "cross_entropy": "optax.softmax_cross_entropy[_with_integer_labels]",
        "cross_entropy_value_and_grad": "optax.softmax_cross_entropy[_with_integer_labels]",
        "kl_divergence": "optax.kl_divergence", "entropy": "jax.scipy.special.entr (summed)",
    }[function]
    if not given:
        if function in _LOSS:
            fn = optax.softmax_cross_entropy_with_integer_labels
            soft_fn = optax.softmax_cross_entropy if soft_fn is None else soft_fn
        else:
            fn = {"logsumexp": jsp.logsumexp, "log_softmax": jax.nn.log_softmax,
                  "softmax": jax.nn.softmax,
                  "kl_divergence": optax.kl_divergence if function == "kl_divergence" else None,
                  "entropy": _jax_entropy}[function]

    def run(f, *arrays, axis):
        """``f`` on the arrays with the class axis ``axis`` (rows: last, and a library
        default is told so)."""
        if layout == "native":
            return f(*(jnp.asarray(a) for a in arrays), axis=axis)
        rows = [jnp.asarray(_to_rows(np.asarray(a), axis)) for a in arrays]
        return f(*rows) if given else f(*rows, axis=-1)

    def unrows(out, shape, axis, per_item):
        out = np.asarray(out)
        if layout == "native":
            return out
        return out.reshape(_item_shape(shape, axis)) if per_item else _from_rows(out, shape, axis)

    if function in _SOFTMAX:
        def impl(x, axis=-1):
            x = np.asarray(x)
            return unrows(run(fn, x, axis=axis), x.shape, axis, function == "logsumexp")

    elif function == "entropy":
        def impl(p, *, base=None, axis=-1):
            if base is not None:
                raise Unsupported("natural logarithm only")
            p = np.asarray(p)
            return unrows(run(fn, p, axis=axis), p.shape, axis, True)

    elif function == "kl_divergence":
        def impl(p, q, *, base=None, axis=-1):
            if base is not None:
                raise Unsupported("natural logarithm only")
            p, q = np.asarray(p), np.asarray(q)
            if layout == "native":
                return np.asarray(fn(jnp.log(jnp.asarray(q)), jnp.asarray(p), axis=axis))
            out = fn(jnp.log(jnp.asarray(_to_rows(q, axis))), jnp.asarray(_to_rows(p, axis)))
            return unrows(out, p.shape, axis, True)

    else:
        grad = function == "cross_entropy_value_and_grad"

        def reduced(logits, target, axis, weight, ignore_index, reduction, label_smoothing):
            """The loss as a function of the logits (a JAX array), and its input."""
            if weight is not None:
                raise Unsupported("optax has no class weights")
            t = np.asarray(target)
            c = logits.shape[axis]
            if t.dtype.kind != "f" and np.any(t == ignore_index):
                raise Unsupported("optax has no ignore_index")
            if t.dtype.kind != "f" and not label_smoothing:
                f, tt = fn, t
            else:
                if soft_fn is None:
                    raise Unsupported("no soft-target loss given (soft_fn)")
                f = soft_fn
                # one-hot rows for labels; optax.smooth_labels smooths over the last axis
                t = (np.eye(c, dtype=logits.dtype)[t] if t.dtype.kind != "f"
                     else np.moveaxis(t, axis, -1))
                if label_smoothing:
                    t = np.asarray(optax.smooth_labels(jnp.asarray(t), label_smoothing))
                tt = np.moveaxis(t, -1, axis)
            tt = np.asarray(tt)
            if layout == "rows":
                tt = _to_rows(tt, axis) if tt.dtype.kind == "f" else tt.reshape(-1)

                def per_item(x):
                    return f(x, jnp.asarray(tt))

                x0 = jnp.asarray(_to_rows(logits, axis))
            else:
                def per_item(x):
                    return f(x, jnp.asarray(tt), axis=axis)

                x0 = jnp.asarray(logits)
            if reduction == "none":
                return per_item, x0
            if reduction == "mean":
                return (lambda x: jnp.mean(per_item(x))), x0
            return (lambda x: jnp.sum(per_item(x))), x0

        def impl(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                 reduction="mean", label_smoothing=0.0):
            x = np.asarray(logits)
            f, x0 = reduced(x, target, axis, weight, ignore_index, reduction, label_smoothing)
            if not grad:
                return unrows(f(x0), x.shape, axis, True)
            v, g = jax.value_and_grad(f)(x0)
            return np.asarray(v), unrows(g, x.shape, axis, False)

    return _adapter(impl, function, name, "jax")


def _jax_entropy(p, axis=-1):
    """``sum(jax.scipy.special.entr(p), axis)``: JAX's entropy of a PMF array."""
    import jax.numpy as jnp
    import jax.scipy.special as jsp

    return jnp.sum(jsp.entr(p), axis=axis)


class _ScipyPeer:
    name = "scipy"

    def __init__(self):
        import scipy.special
        import scipy.stats

        self.sp, self.stats = scipy.special, scipy.stats

    def logsumexp(self, x, axis=-1):
        return np.asarray(self.sp.logsumexp(x, axis=axis))

    def log_softmax(self, x, axis=-1):
        return np.asarray(self.sp.log_softmax(x, axis=axis))

    def softmax(self, x, axis=-1):
        return np.asarray(self.sp.softmax(x, axis=axis))

    def cross_entropy(self, *a, **k):
        raise Unsupported("scipy has no classification cross-entropy")

    def cross_entropy_value_and_grad(self, *a, **k):
        raise Unsupported("scipy has no gradients")

    def entropy(self, p, *, base=None, axis=-1):
        return np.asarray(self.stats.entropy(p, base=base, axis=axis))

    def kl_divergence(self, p, q, *, base=None, axis=-1):
        return np.asarray(self.stats.entropy(p, q, base=base, axis=axis))

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("scipy has no cross-entropy of two PMF arrays")


def _torch_peer():
    return Forms(**{f: torch_impl(f) for f in TORCH_FUNCTIONS})


def _jax_peer():
    return Forms(**{f: jax_impl(f) for f in JAX_FUNCTIONS})


_PEER_CLASSES = {"pytorch": _torch_peer, "jax": _jax_peer, "scipy": _ScipyPeer}


def load_peers(names=PEERS) -> dict:
    """The installed peers as ``{name: implementation}`` (built from :func:`torch_impl`,
    :func:`jax_impl` and SciPy's functions); missing ones are left out."""
    out = {}
    for n in names:
        try:
            out[n] = _PEER_CLASSES[n]()
        except ImportError:
            continue
    return out


# ---------------------------------------------------------------------------------------
# the other forms of entropy and KL that the same libraries offer


class Forms:
    """An implementation given function by function, with crossent's signatures; every
    function it is not given raises :class:`~crossent._measure.Unsupported`."""

    def __init__(self, **functions):
        self._functions = functions

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        fn = self._functions.get(name)
        if fn is None:
            def unsupported(*args, **kwargs):
                raise Unsupported(f"{name} is not one of this form's functions")

            return unsupported
        return fn


def _nats(base):
    return 1.0 if base is None else math.log(base)


def _natural_log_only(base):
    if base is not None:
        raise Unsupported("natural logarithm only")


def pmf_forms() -> dict:
    """``{label: Forms}``: entropy and KL as the installed libraries' other functions compute
    them (beyond the adapters of :func:`load_peers`); libraries not installed are left out."""
    out = {}
    try:
        import scipy.special as sps
    except ImportError:
        pass
    else:
        out["scipy.special.rel_entr (sum)"] = Forms(
            kl_divergence=lambda p, q, *, base=None, axis=-1:
                np.sum(sps.rel_entr(p, q), axis=axis) / _nats(base))
        out["scipy.special.kl_div (sum)"] = Forms(
            kl_divergence=lambda p, q, *, base=None, axis=-1:
                np.sum(sps.kl_div(p, q), axis=axis) / _nats(base))
        out["scipy.special.entr (sum)"] = Forms(
            entropy=lambda p, *, base=None, axis=-1: np.sum(sps.entr(p), axis=axis) / _nats(base))
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        pass
    else:
        def kl_log_target(p, q, *, base=None, axis=-1):
            _natural_log_only(base)
            pt, qt = torch.from_numpy(np.array(p)), torch.from_numpy(np.array(q))
            return F.kl_div(torch.log(qt), torch.log(pt), reduction="none",
                            log_target=True).sum(dim=axis).numpy()

        def categorical_entropy(p, *, base=None, axis=-1):
            _natural_log_only(base)
            probs = torch.from_numpy(np.moveaxis(np.array(p), axis, -1))
            return torch.distributions.Categorical(probs=probs, validate_args=False).entropy().numpy()

        out["torch kl_div(log_target=True)"] = Forms(kl_divergence=kl_log_target)
        out["torch Categorical.entropy"] = Forms(entropy=categorical_entropy)
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import optax
    except ImportError:
        pass
    else:
        def kl_with_log_targets(p, q, *, base=None, axis=-1):
            _natural_log_only(base)
            if axis not in (-1, p.ndim - 1):
                raise Unsupported("last axis only")
            with np.errstate(divide="ignore"):
                lp = np.log(p)
            return np.asarray(optax.losses.kl_divergence_with_log_targets(
                jnp.log(jnp.asarray(q)), jnp.asarray(lp)))

        out["optax kl_divergence_with_log_targets"] = Forms(kl_divergence=kl_with_log_targets)
    return out
