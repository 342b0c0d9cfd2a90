"""PyTorch, JAX and SciPy behind crossent's signatures, for measuring them like crossent.

Each adapter provides the public functions of crossent with crossent's signatures, NumPy in and
NumPy out, and calls the peer's own function for each; where the peer has no equivalent of a
function or of an option it raises :class:`crossent._measure.Unsupported`. The peers are
imported lazily: one that is not installed is left out by :func:`load_peers`, never faked.
``crossent accuracy`` (:mod:`crossent._accuracy`) and ``benchmarks/pmf_accuracy_peers.py`` both
measure through these adapters.

What each adapter calls:

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

import math

import numpy as np

from crossent._measure import Unsupported

__all__ = ["PEERS", "Forms", "load_peers", "pmf_forms"]

PEERS = ("pytorch", "jax", "scipy")


def _class_axis_to_1(logits, target, axis):
    """Logits (and probability targets) with the class axis at dimension 1, as PyTorch wants;
    class-index targets keep their layout (the logits' axes without the class axis, in order)."""
    ax = axis % logits.ndim
    x = np.moveaxis(logits, ax, 1) if logits.ndim > 1 else logits
    t = np.moveaxis(target, ax, 1) if target.dtype.kind == "f" else target
    return np.ascontiguousarray(x), np.ascontiguousarray(t)


class _TorchPeer:
    name = "pytorch"

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.torch, self.F = torch, F

    def _t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a))

    def logsumexp(self, x, axis=-1):
        return self.torch.logsumexp(self._t(x), dim=axis).numpy()

    def log_softmax(self, x, axis=-1):
        return self.F.log_softmax(self._t(x), dim=axis).numpy()

    def softmax(self, x, axis=-1):
        return self.F.softmax(self._t(x), dim=axis).numpy()

    def _loss(self, logits, target, axis, weight, grad, **options):
        """``(logits tensor, F.cross_entropy(...))``, the logits tracked by autograd if grad."""
        target = np.asarray(target)
        x, t = _class_axis_to_1(logits, target, axis)
        tt = self._t(t) if t.dtype.kind == "f" else self._t(t.astype(np.int64))
        wt = None if weight is None else self._t(weight)
        xt = self._t(x).clone().requires_grad_(True) if grad else self._t(x)
        return xt, self.F.cross_entropy(xt, tt, weight=wt, **options)

    def cross_entropy(self, logits, target, *, axis=-1, weight=None, ignore_index=-100,
                      reduction="mean", label_smoothing=0.0):
        _x, out = self._loss(logits, target, axis, weight, False, ignore_index=ignore_index,
                             reduction=reduction, label_smoothing=label_smoothing)
        return out.numpy()

    def cross_entropy_value_and_grad(self, logits, target, *, axis=-1, weight=None,
                                     ignore_index=-100, reduction="mean", label_smoothing=0.0):
        xt, out = self._loss(logits, target, axis, weight, True, ignore_index=ignore_index,
                             reduction=reduction, label_smoothing=label_smoothing)
        out.backward()
        g = xt.grad.detach().numpy()
        if logits.ndim > 1:
            g = np.moveaxis(g, 1, axis % logits.ndim)
        return out.detach().numpy(), g

    def kl_divergence(self, p, q, *, base=None, axis=-1):
        if base is not None:
            raise Unsupported("base")
        out = self.F.kl_div(self.torch.log(self._t(q)), self._t(p), reduction="none").sum(dim=axis)
        return out.numpy()

    def entropy(self, *a, **k):
        raise Unsupported("torch has no entropy of a PMF array")

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("torch has no cross-entropy of two PMF arrays")


class _JaxPeer:
    name = "jax"

    def __init__(self):
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import jax.scipy.special as jsp

        self.jax, self.jnp, self.jsp = jax, jnp, jsp
        try:
            import optax
        except ImportError:  # jax without optax: the softmax family only
            optax = None
        self.optax = optax

    def _a(self, x):
        return self.jnp.asarray(x)

    def logsumexp(self, x, axis=-1):
        return np.asarray(self.jsp.logsumexp(self._a(x), axis=axis))

    def log_softmax(self, x, axis=-1):
        return np.asarray(self.jax.nn.log_softmax(self._a(x), axis=axis))

    def softmax(self, x, axis=-1):
        return np.asarray(self.jax.nn.softmax(self._a(x), axis=axis))

    def _loss_fn(self, target, axis, weight, ignore_index, reduction, label_smoothing, c):
        if self.optax is None:
            raise Unsupported("optax not installed")
        if weight is not None:
            raise Unsupported("optax has no class weights")
        optax, jnp = self.optax, self.jnp
        t = np.asarray(target)
        if t.dtype.kind != "f":
            if np.any(t == ignore_index):
                raise Unsupported("optax has no ignore_index")
            if label_smoothing:
                onehot = np.moveaxis(np.eye(c, dtype=np.float64)[t], -1, axis)

                def per_item(x):
                    tt = optax.smooth_labels(jnp.asarray(onehot.astype(x.dtype)), label_smoothing)
                    return optax.softmax_cross_entropy(x, tt, axis=axis)
            else:

                def per_item(x):
                    return optax.softmax_cross_entropy_with_integer_labels(
                        x, jnp.asarray(t), axis=axis)
        else:

            def per_item(x):
                tt = jnp.asarray(t)
                if label_smoothing:
                    tt = optax.smooth_labels(tt, label_smoothing)
                return optax.softmax_cross_entropy(x, tt, axis=axis)

        if reduction == "none":
            return per_item
        if reduction == "mean":
            return lambda x: jnp.mean(per_item(x))
        return lambda x: jnp.sum(per_item(x))

    def cross_entropy(self, logits, target, *, axis=-1, weight=None, ignore_index=-100,
                      reduction="mean", label_smoothing=0.0):
        f = self._loss_fn(target, axis, weight, ignore_index, reduction, label_smoothing,
                          logits.shape[axis])
        return np.asarray(f(self._a(logits)))

    def cross_entropy_value_and_grad(self, logits, target, *, axis=-1, weight=None,
                                     ignore_index=-100, reduction="mean", label_smoothing=0.0):
        f = self._loss_fn(target, axis, weight, ignore_index, reduction, label_smoothing,
                          logits.shape[axis])
        v, g = self.jax.value_and_grad(f)(self._a(logits))
        return np.asarray(v), np.asarray(g)

    def kl_divergence(self, p, q, *, base=None, axis=-1):
        if self.optax is None or base is not None or axis not in (-1, p.ndim - 1):
            raise Unsupported("optax.kl_divergence: natural log, last axis")
        return np.asarray(self.optax.kl_divergence(self.jnp.log(self._a(q)), self._a(p)))

    def entropy(self, p, *, base=None, axis=-1):
        if base is not None:
            raise Unsupported("base")
        return np.asarray(self.jnp.sum(self.jsp.entr(self._a(p)), axis=axis))

    def cross_entropy_pmf(self, *a, **k):
        raise Unsupported("jax has no cross-entropy of two PMF arrays")


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


_PEER_CLASSES = {"pytorch": _TorchPeer, "jax": _JaxPeer, "scipy": _ScipyPeer}


def load_peers(names=PEERS) -> dict:
    """The installed peers as ``{name: adapter}``; missing ones are left out."""
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
