r"""crossent from PyTorch: ``torch.library`` custom operators over crossent's NumPy API.

``crossent.torch.cross_entropy`` takes the arguments of ``torch.nn.functional.cross_entropy``
and gives its semantics (class dimension 1, or 0 for a 1-D input; class indices or
probabilities; ``weight``, ``ignore_index``, ``reduction``, ``label_smoothing``; the result in
the input's dtype) with crossent's accuracy. The backward pass returns crossent's fused
gradient, bitwise equal to :func:`crossent.cross_entropy_value_and_grad`'s. The operators are
registered with ``torch.library.custom_op`` (with a fake implementation and an autograd
formula), so they run in eager mode and under ``torch.compile(fullgraph=True)``.

What runs where: tensors must be on the CPU (crossent's kernels are CPU kernels); a tensor on
another device gets a ``ValueError`` that names the device. A CPU tensor is handed to the
kernels as a NumPy view, without a copy, when its class dimension is the last one and it is
C-contiguous (the ``(N, C)`` case); otherwise crossent makes one transposed copy. Not
supported: second derivatives of ``cross_entropy`` (a ``RuntimeError`` says so), gradients
with respect to ``weight`` (as in PyTorch). ``docs/bridges.md`` has the details.
"""

from __future__ import annotations

import numbers
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from . import cross_entropy as _np_cross_entropy
from . import cross_entropy_value_and_grad as _np_value_and_grad
from . import log_softmax as _np_log_softmax
from . import logsumexp as _np_logsumexp
from . import softmax as _np_softmax
from ._validate import loss_options

__all__ = ["CrossEntropyLoss", "cross_entropy", "linear_cross_entropy", "log_softmax", "logsumexp", "softmax"]

_REDUCTIONS = ("none", "mean", "sum")
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)

_DOUBLE_BACKWARD = (
    "crossent.torch.cross_entropy does not support double backward (create_graph=True, "
    "second derivatives): its backward pass is crossent's fused first-order gradient. Use "
    "torch.nn.functional.cross_entropy where second derivatives are needed."
)


# -- tensors <-> NumPy arrays, without copies ---------------------------------------------------


def _to_numpy(t: Tensor) -> np.ndarray:
    """A NumPy view of a CPU tensor (bfloat16 as ``ml_dtypes.bfloat16``): no copy."""
    t = t.detach()
    if t.dtype == torch.bfloat16:
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - ml_dtypes comes with jax; torch does not need it
            raise TypeError("a bfloat16 tensor needs the ml_dtypes package (pip install ml_dtypes)") from None
        return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    return t.numpy()


def _from_numpy(a) -> Tensor:
    """A tensor sharing the memory of a fresh NumPy result (bfloat16 through an int16 view)."""
    a = np.asarray(a)
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _check_tensor(t, name: str, fn: str, *, floating: bool = True) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"crossent.torch.{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type != "cpu":
        raise ValueError(
            f"crossent.torch.{fn}: {name} is on device {t.device}, but crossent's kernels run on "
            f"the CPU only: move it with .cpu() (or use PyTorch's own function on {t.device.type})"
        )
    if floating and t.dtype not in _FLOATS:
        raise TypeError(
            f"crossent.torch.{fn}: {name} must be float16, bfloat16, float32 or float64, got {t.dtype}"
        )


def _check_dim(dim, ndim: int, fn: str) -> int:
    if isinstance(dim, (bool, np.bool_)) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"crossent.torch.{fn}: dim must be an integer, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(f"crossent.torch.{fn}: dim={dim} is out of range for a {ndim}-D input")
    return int(dim) % n


# -- log_softmax, softmax, logsumexp ------------------------------------------------------------


@torch.library.custom_op("crossent::log_softmax", mutates_args=(), device_types="cpu")
def _log_softmax_op(input: Tensor, dim: int) -> Tensor:
    return _from_numpy(np.ascontiguousarray(_np_log_softmax(_to_numpy(input), axis=dim)))


@torch.library.custom_op("crossent::softmax", mutates_args=(), device_types="cpu")
def _softmax_op(input: Tensor, dim: int) -> Tensor:
    return _from_numpy(np.ascontiguousarray(_np_softmax(_to_numpy(input), axis=dim)))


@torch.library.custom_op("crossent::logsumexp", mutates_args=(), device_types="cpu")
def _logsumexp_op(input: Tensor, dim: int, keepdim: bool) -> Tensor:
    return _from_numpy(np.ascontiguousarray(_np_logsumexp(_to_numpy(input), axis=dim, keepdims=keepdim)))


@_log_softmax_op.register_fake
def _(input, dim):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@_softmax_op.register_fake
def _(input, dim):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@_logsumexp_op.register_fake
def _(input, dim, keepdim):
    shape = list(input.shape)
    if keepdim:
        shape[dim] = 1
    else:
        del shape[dim]
    return input.new_empty(shape)


# The backward formulas are written with differentiable operations (the ops above and
# arithmetic), so these three functions also have correct second derivatives.


def _save_input(ctx, inputs, output):
    ctx.dim = inputs[1]
    ctx.keepdim = inputs[2] if len(inputs) > 2 else True
    ctx.save_for_backward(inputs[0])


def _log_softmax_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    return grad - _softmax_op(x, ctx.dim) * grad.sum(ctx.dim, keepdim=True), None


def _softmax_setup(ctx, inputs, output):
    ctx.dim = inputs[1]
    ctx.save_for_backward(output)


def _softmax_backward(ctx, grad):
    (y,) = ctx.saved_tensors
    return y * (grad - (grad * y).sum(ctx.dim, keepdim=True)), None


def _logsumexp_backward(ctx, grad):
    (x,) = ctx.saved_tensors
    g = grad if ctx.keepdim else grad.unsqueeze(ctx.dim)
    return g * _softmax_op(x, ctx.dim), None, None


_log_softmax_op.register_autograd(_log_softmax_backward, setup_context=_save_input)
_softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)
_logsumexp_op.register_autograd(_logsumexp_backward, setup_context=_save_input)


def _rowwise(op, fn, input, dim, *extra):
    _check_tensor(input, "input", fn)
    d = _check_dim(dim, input.dim(), fn)
    if input.dim() == 0:  # a 0-d tensor is one slice of one element, as in PyTorch
        return op(input.reshape(1), 0, *extra).reshape(())
    return op(input, d, *extra)


def log_softmax(input: Tensor, dim: int) -> Tensor:
    r"""Logarithm of the softmax along ``dim``, by crossent's kernel.

    Parameters
    ----------
    input : Tensor
        A CPU tensor of float16, bfloat16, float32 or float64.
    dim : int
        The dimension to normalize over.

    Returns
    -------
    Tensor
        ``input - logsumexp(input, dim, keepdim=True)``, contiguous, in the input's dtype.

    Notes
    -----
    The values are :func:`crossent.log_softmax`'s (within 1 ulp in float32/float16, 3 ulp
    in float64). The gradient is

    .. math:: \frac{\partial \ell}{\partial x_i} = g_i - \sigma(x)_i \sum_j g_j,

    with :math:`\sigma(x)` from :func:`softmax` (differentiable again: second derivatives
    work).

    Examples
    --------
    >>> import torch, crossent.torch
    >>> crossent.torch.log_softmax(torch.tensor([0.0, -50.0], dtype=torch.float64), 0).tolist()
    [-1.9287498479639178e-22, -50.0]
    """
    return _rowwise(_log_softmax_op, "log_softmax", input, dim)


def softmax(input: Tensor, dim: int) -> Tensor:
    r"""Softmax along ``dim``, by crossent's kernel.

    Parameters
    ----------
    input : Tensor
        A CPU tensor of float16, bfloat16, float32 or float64.
    dim : int
        The dimension to normalize over.

    Returns
    -------
    Tensor
        Probabilities summing to 1 along ``dim``, contiguous, in the input's dtype.

    Notes
    -----
    The values are :func:`crossent.softmax`'s (within 1 ulp in float32/float16, 3 ulp in
    float64). With :math:`y = \sigma(x)` the gradient is

    .. math:: \frac{\partial \ell}{\partial x_i} = y_i\Bigl(g_i - \sum_j g_j y_j\Bigr).

    Examples
    --------
    >>> import torch, crossent.torch
    >>> crossent.torch.softmax(torch.zeros(2, 4), 1).tolist()
    [[0.25, 0.25, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]
    """
    return _rowwise(_softmax_op, "softmax", input, dim)


def logsumexp(input: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    r"""Logarithm of the sum of exponentials along ``dim``, by crossent's kernel.

    Parameters
    ----------
    input : Tensor
        A CPU tensor of float16, bfloat16, float32 or float64.
    dim : int
        The dimension to reduce (one dimension; ``torch.logsumexp`` also takes a tuple).
    keepdim : bool, optional
        Keep the reduced dimension with length 1.

    Returns
    -------
    Tensor
        ``log(sum(exp(input), dim))`` in the input's dtype.

    Notes
    -----
    The values are :func:`crossent.logsumexp`'s (float64 within 3 ulp where
    :math:`\max x \ge 0`; float32/float16 within 1 ulp). The gradient is
    :math:`g\,\sigma(x)` with :math:`\sigma(x)` from :func:`softmax`.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> crossent.torch.logsumexp(torch.zeros(3, 2, dtype=torch.float64), 1).tolist()
    [0.6931471805599453, 0.6931471805599453, 0.6931471805599453]
    """
    if not isinstance(keepdim, (bool, np.bool_)):
        raise TypeError(f"crossent.torch.logsumexp: keepdim must be a bool, got {keepdim!r}")
    return _rowwise(_logsumexp_op, "logsumexp", input, dim, bool(keepdim))


# -- cross_entropy ------------------------------------------------------------------------------


def _class_dim(ndim: int) -> int:
    return 1 if ndim >= 2 else 0


@torch.library.custom_op("crossent::cross_entropy", mutates_args=(), device_types="cpu")
def _cross_entropy_op(
    input: Tensor,
    target: Tensor,
    weight: Optional[Tensor],
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
    keep_grad: bool,
    z_loss: float = 0.0,
    logit_softcap: Optional[float] = None,
) -> tuple[Tensor, Tensor]:
    """The loss, and crossent's fused gradient of it when ``keep_grad`` (else an empty tensor)."""
    kw = dict(
        axis=_class_dim(input.dim()),
        weight=None if weight is None else _to_numpy(weight),
        ignore_index=ignore_index,
        reduction=reduction,
        label_smoothing=label_smoothing,
    )
    if z_loss or logit_softcap is not None:  # the options' keywords only when set
        kw.update(z_loss=z_loss, logit_softcap=logit_softcap)
    x, t = _to_numpy(input), _to_numpy(target)
    if not keep_grad:
        return _from_numpy(_np_cross_entropy(x, t, **kw)), input.new_empty(0)
    # the gradient is written into the tensor that autograd will return (directly when the
    # class dimension is last and contiguous, through one buffer otherwise)
    grad = torch.empty_like(input, memory_format=torch.contiguous_format)
    loss, _ = _np_value_and_grad(x, t, out=_to_numpy(grad), **kw)
    return _from_numpy(loss), grad


@_cross_entropy_op.register_fake
def _(input, target, weight, ignore_index, reduction, label_smoothing, keep_grad, z_loss=0.0, logit_softcap=None):
    cd = _class_dim(input.dim())
    shape = list(input.shape[:cd]) + list(input.shape[cd + 1:]) if reduction == "none" else []
    grad = torch.empty_like(input, memory_format=torch.contiguous_format) if keep_grad else input.new_empty(0)
    return input.new_empty(shape), grad


def _cross_entropy_setup(ctx, inputs, output):
    input, target, weight, ignore_index, reduction, label_smoothing, keep_grad = inputs[:7]
    z_loss, cap = tuple(inputs[7:]) + (0.0, None)[len(inputs) - 7:]  # defaults when not passed
    ctx.mark_non_differentiable(output[1])
    ctx.options = (ignore_index, reduction, label_smoothing)
    ctx.extra = (z_loss, cap)
    ctx.keep_grad = keep_grad
    ctx.cd = _class_dim(input.dim())
    ctx.target_dtype = target.dtype
    soft_grad = target.is_floating_point() and target.requires_grad
    # keep the input only when the backward needs it: to recompute the gradient (keep_grad
    # False) or for the gradient in probability targets
    ctx.save_for_backward(
        input if (soft_grad or not keep_grad) else None,
        None if keep_grad else target,
        weight,
        output[1] if keep_grad else None,
    )


def _cross_entropy_backward(ctx, grad_loss, _grad_dlogits):
    if torch.is_grad_enabled():  # create_graph=True: the result would not be differentiable
        raise RuntimeError(_DOUBLE_BACKWARD)
    input, target, weight, dlogits = ctx.saved_tensors
    ignore_index, reduction, eps = ctx.options
    cd = ctx.cd
    g = grad_loss.unsqueeze(cd) if reduction == "none" else grad_loss
    grad_input = grad_target = None
    if ctx.needs_input_grad[0]:
        if not ctx.keep_grad:
            dlogits = _cross_entropy_op(input, target, weight, *ctx.options, True, *ctx.extra)[1]
        grad_input = dlogits * g
    if ctx.needs_input_grad[1]:
        # d/dt_c of sum_c w_c ((1 - eps) t_c + eps / C) (-log softmax_c): -(1 - eps) w_c log softmax_c
        cap = ctx.extra[1]
        xc = input if cap is None else cap * torch.tanh(input / cap)  # the capped logits
        d = _log_softmax_op(xc, cd) * -(1.0 - eps)
        if weight is not None:
            d = d * weight.reshape([-1] + [1] * (input.dim() - cd - 1))
        if reduction == "mean":
            d = d / (input.numel() // max(input.shape[cd], 1))
        grad_target = (d * g).to(ctx.target_dtype)
    return grad_input, grad_target, None, None, None, None, None, None, None


_cross_entropy_op.register_autograd(_cross_entropy_backward, setup_context=_cross_entropy_setup)


def cross_entropy(input: Tensor, target: Tensor, weight: Optional[Tensor] = None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0, *, z_loss: float = 0.0,
                  logit_softcap: Optional[float] = None) -> Tensor:
    r"""``torch.nn.functional.cross_entropy`` computed by crossent: a drop-in replacement.

    Parameters
    ----------
    input : Tensor
        Logits on the CPU, float16, bfloat16, float32 or float64: shape ``(C,)``, ``(N, C)``
        or ``(N, C, d1, ..., dK)`` (the classes on dimension 1, or 0 for a 1-D input).
    target : Tensor
        Class indices (an integer dtype) with the shape of ``input`` without the class
        dimension (0-d for a 1-D input), or probabilities (a float dtype) with the shape of
        ``input``.
    weight : Tensor, optional
        Per-class weights, shape ``(C,)``, finite and non-negative.
    ignore_index : int, optional
        Class indices equal to it contribute nothing; only for class-index targets (as in
        PyTorch, another value with probability targets is an error).
    reduction : {'mean', 'sum', 'none'}, optional
        ``'mean'`` divides by :math:`\sum_n w_{y_n}` over non-ignored items (class indices)
        or by the number of items :math:`N d_1 \cdots d_K` (probabilities).
    label_smoothing : float, optional
        :math:`\varepsilon \in [0, 1]`: the target becomes
        :math:`(1 - \varepsilon)\,t + \varepsilon / C`.
    z_loss, logit_softcap : optional, keyword-only
        As for :func:`crossent.cross_entropy`: :math:`z\,\operatorname{lse}^2` added per
        item, logits capped to :math:`c\tanh(x/c)` first (docs: *Loss options*).

    Returns
    -------
    Tensor
        The loss in the input's dtype: per item for ``'none'`` (shape of ``input`` without
        the class dimension), else 0-d.

    Notes
    -----
    The values are :func:`crossent.cross_entropy`'s with ``axis`` the class dimension: per
    item :math:`-\log\sigma(z)_y = (m - z_y) + \operatorname{log1p}(s)`, within 3 ulp in
    float64 and 1 ulp in float32/float16, where PyTorch rounds a loss below half an ulp of
    the log-sum-exp to 0. The backward pass returns crossent's fused gradient,

    .. math:: \frac{\partial L}{\partial z_i} = \frac{A\,\sigma(z)_i - a_i}{D},

    bitwise equal to :func:`crossent.cross_entropy_value_and_grad`'s (times the incoming
    gradient). When ``input`` requires grad, the forward computes this gradient with the loss
    in one pass and keeps it for the backward: one tensor of the input's size and dtype, the
    memory PyTorch's own ``cross_entropy`` keeps for its log-softmax. Probability targets
    that require grad get :math:`-(1-\varepsilon)\,w_c \log\sigma(z)_c / D`.

    Differences from PyTorch: tensors must be on the CPU; ``weight`` and probability targets
    must be finite and non-negative (PyTorch accepts negative ones); any integer dtype holds
    class indices (PyTorch takes int64 and uint8); second derivatives raise a
    ``RuntimeError``.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> logits = torch.tensor([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0]], dtype=torch.float64)
    >>> crossent.torch.cross_entropy(logits, torch.tensor([0, 2]), reduction="none").tolist()
    [3.8574996959278356e-22, 0.4076059644443803]
    >>> torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]), reduction="none").tolist()
    [-0.0, 0.4076059644443804]
    """
    fn = "cross_entropy"
    _check_tensor(input, "input", fn)
    _check_tensor(target, "target", fn, floating=False)
    if input.dim() == 0:
        raise ValueError(f"crossent.torch.{fn}: input must have at least one dimension (the classes), got a 0-d tensor")
    cd = _class_dim(input.dim())
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"crossent.torch.{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"crossent.torch.{fn}: label_smoothing must be a real number, got {label_smoothing!r}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"crossent.torch.{fn}: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"crossent.torch.{fn}: ignore_index must be an integer, got {ignore_index!r}")
    batch = tuple(input.shape[:cd]) + tuple(input.shape[cd + 1:])
    if target.is_floating_point():
        if tuple(target.shape) != tuple(input.shape):
            raise ValueError(
                f"crossent.torch.{fn}: target holds probabilities ({target.dtype}), so it must have the "
                f"shape of input {tuple(input.shape)}, got {tuple(target.shape)}"
            )
        if ignore_index != -100:
            raise ValueError(f"crossent.torch.{fn}: ignore_index is only for class-index targets (as in PyTorch)")
    elif target.dtype.is_complex or target.dtype == torch.bool:
        raise TypeError(f"crossent.torch.{fn}: target must hold integer class indices or float probabilities, got {target.dtype}")
    elif tuple(target.shape) != batch:
        raise ValueError(
            f"crossent.torch.{fn}: target holds class indices, so its shape must be input's without "
            f"dimension {cd}: expected {batch}, got {tuple(target.shape)}"
        )
    if weight is not None:
        _check_tensor(weight, "weight", fn)
        if tuple(weight.shape) != (input.shape[cd],):
            raise ValueError(f"crossent.torch.{fn}: weight must have shape ({input.shape[cd]},), got {tuple(weight.shape)}")
        if weight.requires_grad and torch.is_grad_enabled():
            raise ValueError(
                f"crossent.torch.{fn}: weight requires grad, but the loss is not differentiable with "
                f"respect to weight (nor is PyTorch's): pass weight.detach()"
            )
    try:
        z, cap = loss_options(z_loss, logit_softcap)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"crossent.torch.{fn}: {exc}") from None
    keep_grad = input.requires_grad and torch.is_grad_enabled()
    loss, _ = _cross_entropy_op(input, target, weight, int(ignore_index), reduction, float(label_smoothing),
                                keep_grad, z, cap if cap else None)
    return loss


class CrossEntropyLoss(torch.nn.Module):
    r"""``torch.nn.CrossEntropyLoss`` computed by :func:`cross_entropy`: a drop-in module.

    Parameters
    ----------
    weight : Tensor, optional
        Per-class weights, shape ``(C,)`` (kept as a buffer, as in PyTorch).
    ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As for :func:`cross_entropy` (keyword-only: PyTorch's deprecated ``size_average``
        and ``reduce`` arguments are not taken).

    Notes
    -----
    ``forward(input, target)`` returns :func:`cross_entropy` of its arguments with the
    module's options; see there for the mathematics, :math:`-\log\sigma(z)_y` per item.

    Examples
    --------
    >>> import torch, crossent.torch
    >>> loss = crossent.torch.CrossEntropyLoss(reduction="sum")
    >>> loss(torch.zeros(2, 4, dtype=torch.float64), torch.tensor([1, 3])).item()  # 2 log 4
    2.772588722239781
    """

    def __init__(self, weight: Optional[Tensor] = None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0, z_loss: float = 0.0, logit_softcap: Optional[float] = None):
        super().__init__()
        self.register_buffer("weight", weight)
        self.ignore_index = ignore_index
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.z_loss = z_loss
        self.logit_softcap = logit_softcap

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing,
                             z_loss=self.z_loss, logit_softcap=self.logit_softcap)

    def extra_repr(self) -> str:
        s = f"ignore_index={self.ignore_index}, reduction={self.reduction!r}, label_smoothing={self.label_smoothing}"
        if self.z_loss or self.logit_softcap is not None:
            s += f", z_loss={self.z_loss}, logit_softcap={self.logit_softcap}"
        return s


# -- the linear cross-entropy without the logits ------------------------------------------------


class _LinearCrossEntropy(torch.autograd.Function):
    """crossent's blockwise linear cross-entropy: the forward pass computes the loss and, for
    ``'mean'``/``'sum'``, the fused gradients at once (kept for the backward pass); for
    ``'none'`` the backward pass recomputes them with each item's gradient scaled by its
    incoming gradient. The logits never exist."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, target, class_weight, kw):
        from .linear import linear_cross_entropy_value_and_grad as _vg
        from .linear import linear_cross_entropy as _lce

        args = (_to_numpy(hidden), _to_numpy(weight), _to_numpy(target))
        nkw = dict(kw, bias=None if bias is None else _to_numpy(bias),
                   class_weight=None if class_weight is None else _to_numpy(class_weight))
        need = any(ctx.needs_input_grad[:3])
        ctx.kw = nkw
        ctx.has_bias = bias is not None
        if need and kw["reduction"] != "none":
            res = _vg(*args, **nkw)
            ctx.grads = tuple(_from_numpy(g) for g in res[1:])
            return _from_numpy(np.asarray(res[0]))
        ctx.grads = None
        ctx.save_for_backward(hidden, weight, bias, target)
        return _from_numpy(np.asarray(_lce(*args, **nkw)))

    @staticmethod
    def backward(ctx, grad_loss):
        if torch.is_grad_enabled():
            raise RuntimeError(_DOUBLE_BACKWARD.replace("cross_entropy", "linear_cross_entropy"))
        if ctx.grads is not None:
            grads = ctx.grads
            g = grad_loss
        else:  # reduction 'none': recompute with the rows scaled by the incoming gradient
            from .linear import _Linear, _run

            hidden, weight, bias, target = ctx.saved_tensors
            L = _Linear(_to_numpy(hidden), _to_numpy(weight), _to_numpy(target), ctx.kw["bias"],
                        ctx.kw.get("chunk_size"), ctx.kw["class_weight"], ctx.kw["ignore_index"],
                        "none", ctx.kw["label_smoothing"], ctx.kw["z_loss"], ctx.kw["logit_softcap"])
            scale = grad_loss.detach().to(torch.float64).reshape(-1).numpy()
            grads = tuple(_from_numpy(a) for a in _run(L, True, row_scale=scale)[1:])
            g = None
        out = [None] * 6
        for i, gr in enumerate(grads):
            if ctx.needs_input_grad[i]:
                out[i] = gr if g is None else gr * g
        return tuple(out)


def linear_cross_entropy(input: Tensor, weight: Tensor, target: Tensor, bias: Optional[Tensor] = None, *,
                         class_weight: Optional[Tensor] = None, ignore_index: int = -100,
                         reduction: str = "mean", label_smoothing: float = 0.0,
                         chunk_size: Optional[int] = None, z_loss: float = 0.0,
                         logit_softcap: Optional[float] = None) -> Tensor:
    r"""``F.cross_entropy(F.linear(input, weight, bias), target, ...)`` without the logits.

    :func:`crossent.linear_cross_entropy` with autograd: the gradients in ``input``,
    ``weight`` and ``bias`` are crossent's fused ones (three float64 products per block of
    rows). ``input`` is ``(..., H)`` (the classes come last, where ``F.linear`` puts them),
    ``weight`` ``(V, H)``, ``target`` class indices of shape ``input.shape[:-1]`` (or
    probabilities ``(..., V)``); ``class_weight`` is ``F.cross_entropy``'s ``weight``, renamed
    because ``weight`` is the projection; ``z_loss`` and ``logit_softcap`` as in
    :func:`cross_entropy`. CPU tensors only; no second derivatives.

    Examples
    --------
    >>> import torch, crossent.torch as ct
    >>> h = torch.ones(2, 3, requires_grad=True); W = torch.eye(3, requires_grad=True)
    >>> loss = ct.linear_cross_entropy(h, W, torch.tensor([0, 2]))
    >>> loss.backward(); tuple(W.grad.shape)
    (3, 3)
    """
    fn = "linear_cross_entropy"
    for name, t in (("input", input), ("weight", weight), ("bias", bias), ("class_weight", class_weight)):
        if t is not None:
            _check_tensor(t, name, fn)
    _check_tensor(target, "target", fn, floating=False)
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"crossent.torch.{fn}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=label_smoothing,
              chunk_size=chunk_size, z_loss=z_loss, logit_softcap=logit_softcap)
    return _LinearCrossEntropy.apply(input, weight, bias, target, class_weight, kw)
