"""The softmax cross-entropy loss and its fused gradient: validated, reshaped, dispatched to
:mod:`crossent.kernels.loss`. Semantics follow ``torch.nn.functional.cross_entropy``."""

from __future__ import annotations

import functools

import numpy as np

from . import _rounding
from ._partial import (SCALE_BITS, exact_label_weight_sum, exact_sum, partial_of, round_ratio,
                       rounded_mean, rounded_sum, special_sum)
from ._validate import (
    cast_result,
    check_out,
    compute_dtype,
    is_narrow,
    loss_inputs,
    loss_options,
    parallel_guard,
    to_rows,
)
from .kernels import loss as _k
from .kernels import short as _ks

__all__ = ["cross_entropy", "cross_entropy_value_and_grad"]

# class weights outside this range are scaled into [1/2, 1) first (see _Problem)
_W_LO, _W_HI = 2.0**-64, 2.0**64
_F64 = np.dtype(np.float64)
_COMMON_DTYPES = (np.dtype(np.float32), _F64)  # native byte order
_I64, _U64 = np.dtype(np.int64), np.dtype(np.uint64)
_NO_WEIGHT = np.ones(1, dtype=np.float64)  # the kernels' weight argument when there is none
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_max = np.maximum.reduce  # ndarray.max() without its Python wrapper
_FEW = 64  # up to this many labels, their range is checked on a Python list


class _Problem:
    """Validated inputs of one call, as C-contiguous ``(rows, C)`` arrays (the rules are
    :func:`crossent._validate.loss_inputs`, shared with the oracle)."""

    def __init__(self, logits, target, axis, weight, ignore_index, reduction, label_smoothing,
                 z_loss=0.0, logit_softcap=None, rows=True):
        v = loss_inputs(logits, target, axis, weight, ignore_index, reduction, label_smoothing)
        # the training options (docs/loss-options.md); the default ones take the plain kernels
        self.z, self.cap = loss_options(z_loss, logit_softcap)
        self.options = self.z != 0.0 or self.cap != 0.0
        a = v.logits
        self.dtype = a.dtype
        # a narrow output is rounded from float64: the per-item losses are rounded to odd
        # first (only for reduction='none': a sum is rounded once from its exact value)
        self.odd = a.dtype != np.float64 and v.reduction == "none"
        # float32/float16 inputs: the kernels' fast path (short exp, no error terms), which is
        # accurate to about 2**-45 relative: enough for a narrow output
        self.fast = a.dtype != np.float64
        self.axis = v.axis
        self.C = v.C
        self.eps = v.eps
        self.reduction = v.reduction
        self.ignore_index = v.ignore_index
        self.batch_shape = v.batch_shape
        # rows=False: the logits are not given (crossent.linear forms them block by block);
        # ``x`` is then an empty placeholder that only carries the number of rows
        self.x = (to_rows(a.astype(compute_dtype(a.dtype), copy=False), v.axis) if rows else
                  np.empty((int(np.prod(v.batch_shape)), 0), dtype=compute_dtype(a.dtype)))
        self.logits = a
        self.labels_mode = v.labels is not None
        if self.labels_mode:
            self.target = v.labels
        else:
            self.target = to_rows(v.probs.astype(np.float64), v.axis)
        self.has_weight = v.weight is not None
        self.weight = v.weight if self.has_weight else np.ones(1, dtype=np.float64)
        # Weights of extreme magnitude are scaled by a power of two into [1/2, 1) (exact): the
        # kernels keep the softmax terms scaled by 2**600 and need w * 2**600 to stay normal.
        # Every result is linear in the weights, so it is scaled back by ``unscale`` (exact,
        # unless it overflows or is subnormal); the mean over class indices is a ratio of
        # weighted sums and does not change at all.
        # The reductions keep the losses of scaled weights scaled: their exact sums carry the
        # power of two (``Partial.exp``), so sums and partials do not depend on the scaling.
        self.unscale = 0
        self.item_unscale = 0
        wmax = float(self.weight.max()) if self.weight.size else 0.0
        if self.has_weight and wmax > 0 and not _W_LO <= wmax <= _W_HI:
            k = int(np.frexp(wmax)[1])
            self.weight = np.ldexp(self.weight, -k)
            self.item_unscale = k
            self.unscale = 0 if (self.labels_mode and self.reduction == "mean") else k

    @classmethod
    def common(cls, logits, target, axis, weight, ignore_index, reduction, label_smoothing):
        """The validated problem of the common call, built without the generic machinery, or
        ``None`` (then :meth:`__init__` validates): ``(N, C)`` C-contiguous, aligned, writeable,
        native float32/float64 logits with the classes last; int64 class indices ``(N,)``,
        every one in ``[0, C)`` and ``ignore_index`` outside it (so none is ignored and none is
        out of range: anything else, such as a label to ignore or to reject, goes the generic
        way); no weight, no
        smoothing, reduction ``'mean'``, ``'sum'`` or ``'none'``. The attributes are those
        ``__init__`` sets for the same arguments."""
        if (type(logits) is not np.ndarray or type(target) is not np.ndarray or weight is not None
                or logits.ndim != 2 or target.ndim != 1 or type(axis) is not int
                or axis not in (-1, 1) or target.dtype != _I64
                or logits.dtype not in _COMMON_DTYPES or type(label_smoothing) not in (float, int)
                or label_smoothing != 0 or type(ignore_index) is not int
                or type(reduction) is not str or reduction not in ("mean", "sum", "none")):
            return None
        n, c = logits.shape
        f = logits.flags
        if (n == 0 or c == 0 or target.shape[0] != n or not f.c_contiguous or not f.aligned
                or not f.writeable or not target.flags.c_contiguous):
            return None
        # a label outside [0, C) is a huge unsigned integer: one maximum instead of a min and
        # a max, over a Python list for a few labels (a NumPy reduction costs microseconds)
        u = target.view(_U64)
        if (0 <= ignore_index < c or not _I64_MIN <= ignore_index <= _I64_MAX
                or (max(u.tolist()) if n <= _FEW else _max(u)) >= c):
            return None
        p = _CommonProblem.__new__(_CommonProblem)  # its class holds the constant attributes
        p.dtype = logits.dtype
        p.fast = logits.dtype != _F64
        p.odd = p.fast and reduction == "none"
        p.C = c
        p.reduction = reduction
        p.ignore_index = ignore_index
        p.batch_shape = (n,)
        p.x = p.logits = logits
        p.target = target
        # the cached properties, known here: no weight and no item ignored, so the mean's
        # divisor is the count n (exact: n << SCALE_BITS units), and float(n) rounded
        p.weight_total = n << SCALE_BITS
        p.denominator = float(n) if reduction == "mean" else 1.0
        return p

    # -- helpers -------------------------------------------------------------------------
    @functools.cached_property
    def weight_total(self) -> int:
        """The exact divisor of the mean in units of ``2**(item_unscale - 1074)`` (those of the
        kernels' per-item losses): the sum of the kernels' ``weight[y_n]`` over the non-ignored
        items (class indices) or the number of items (probabilities)."""
        if not self.labels_mode:
            return self.x.shape[0] << (SCALE_BITS - self.item_unscale)
        return exact_label_weight_sum(self.target, self.weight, self.has_weight, self.ignore_index)

    @functools.cached_property
    def denominator(self) -> float:
        """The divisor the gradient kernels use for a mean (1 for the other reductions): the
        exact sum of the weights the kernels see, rounded once (for probability targets, N)."""
        if self.reduction != "mean":
            return 1.0
        if not self.labels_mode:
            return float(self.x.shape[0])
        return float(round_ratio(self.weight_total, 1 << SCALE_BITS, np.float64))

    def reduce(self, losses: np.ndarray):
        """Reduce float64 per-row losses: exact sums (order-independent), rounded once (an
        overflow to inf is the rounded value: no warning)."""
        dt = self.dtype
        if self.reduction == "none":
            if self.item_unscale:  # (np.ldexp costs about 12 ns per item: only when needed)
                with np.errstate(over="ignore"):
                    losses = np.ldexp(losses, self.item_unscale)
            return cast_result(losses.reshape(self.batch_shape), dt)
        if self.reduction == "partial":
            return partial_of(losses, self.weight_total, dt,
                              "weight" if self.labels_mode else "count", exp=self.item_unscale)
        # the steps of Partial.sum() and .mean(), without building the Partial
        total, nan, pos_inf, neg_inf = exact_sum(losses)
        special = special_sum(nan, pos_inf, neg_inf)
        if self.reduction == "sum":
            return rounded_sum(total, self.item_unscale, special, dt)
        return rounded_mean(total, self.weight_total, special, dt)


class _CommonProblem(_Problem):
    """A problem built by :meth:`_Problem.common`: the attributes that are the same for every
    common call are class attributes (setting them on each instance costs time)."""

    axis = 1
    eps = 0.0
    labels_mode = True
    has_weight = False
    weight = _NO_WEIGHT
    unscale = item_unscale = 0
    z, cap, options = 0.0, 0.0, False  # the default options (see _problem)


def _option_rows(p: _Problem, den: float, grad, rS: float = 0.0, den_lo=None) -> np.ndarray:
    """Per-row losses (and gradient rows into ``grad`` if given) with the z-loss or the
    soft-cap set: :mod:`crossent.kernels.options`. ``rS > 0``: the correctly rounded path
    (float64; a loss is nan where it or an entry of its gradient row is undecided), with the
    gradient's divisor ``den + den_lo`` (a double-double; ``den_lo`` a float for the correctly
    rounded gradient, None otherwise, which keeps that gradient out of the default kernel)."""
    from .kernels import options as _ko

    N = p.x.shape[0]
    out = np.empty(N, dtype=np.float64)
    want = grad is not None
    g = grad if want else np.empty((N, 0))
    if N == 0:
        return out
    if p.labels_mode:
        with parallel_guard():
            _ko.options_labels_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index, p.eps,
                                    p.z, p.cap, p.odd, p.fast, den, want, out, g, rS, den_lo)
    elif p.C == 0:  # probabilities over no classes: the empty sum 0, plus z lse^2 = z (-inf)^2
        out[:] = np.inf if p.z > 0.0 else 0.0
    else:
        # the z term is not weighted for probability targets: it takes the weights' scaling
        # (a power of two, exact) so that unscaling the whole loss restores it
        z = float(np.ldexp(p.z, -p.item_unscale))
        with parallel_guard():
            _ko.options_probs_rows(p.x, p.target, p.weight, p.has_weight, p.eps, z, p.cap,
                                   p.odd, p.fast, den, want, out, g, rS, den_lo)
    return out


def _short_rows(p: _Problem, grad: bool) -> bool:
    """Whether the short-row kernels (:mod:`crossent.kernels.short`) take this call: class
    indices, no smoothing, and rows of at most ``SHORT_MAX_C`` classes (the measured
    crossover). The choice depends on the row length, dtype and function only, so a row gets
    the same bits in any batch."""
    return p.labels_mode and p.eps == 0.0 and _ks.is_short(p.C, p.fast, grad)


def _short_labels(p: _Problem, out, den=1.0, grad=None):
    """The short-row kernel for class indices (loss, and the gradient when ``grad`` is given);
    its special rows (nan, +inf, every entry -inf) are redone by the wide kernel."""
    n, c = p.x.shape
    stat = np.empty(n, dtype=np.uint8)
    g = p.x if grad is None else grad
    parallel = _ks.is_parallel(n, c)
    with parallel_guard(parallel):
        _ks.cross_entropy_labels_short(p.x, p.target, p.weight, p.has_weight, p.ignore_index,
                                       p.odd, p.fast, out, stat, parallel, den, g,
                                       grad is not None)
    if not np.count_nonzero(stat):  # (cheaper than stat.any() on a few rows)
        return
    idx = np.flatnonzero(stat)
    x, y = p.x[idx], p.target[idx]
    o = np.empty(idx.size)
    with parallel_guard():
        if grad is None:
            _k.cross_entropy_labels_rows(x, y, p.weight, p.has_weight, p.ignore_index, p.eps,
                                         p.odd, p.fast, o)
        else:
            gs = np.empty(x.shape, dtype=grad.dtype)
            _k.cross_entropy_labels_grad_rows(x, y, p.weight, p.has_weight, p.ignore_index, p.eps,
                                              den, p.odd, p.fast, o, gs)
            grad[idx] = gs
    out[idx] = o


def _problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
             logit_softcap) -> _Problem:
    """The validated problem: the fast path of the common call (default options) when it
    applies, the full validation otherwise (a bool or any other unusual ``z_loss`` goes there
    and gets its error)."""
    args = (logits, target, axis, weight, ignore_index, reduction, label_smoothing)
    plain = logit_softcap is None and type(z_loss) in (float, int) and z_loss == 0
    return (plain and _Problem.common(*args)) or _Problem(*args, z_loss, logit_softcap)


def _losses_correct(p: _Problem) -> np.ndarray:
    """Per-row float64 losses, correctly rounded (``crossent._rounding``): the wide kernels
    with the double-double exponential and the rounding test, and the oracle for the rows
    whose rounding they cannot decide."""
    if p.options:
        return _option_losses_correct(p)
    N = p.x.shape[0]
    out = np.empty(N, dtype=np.float64)
    if N == 0 or not p.labels_mode and p.C == 0:  # probabilities over no classes: 0 each
        out[:] = 0.0
        return out
    slow = np.zeros(N, dtype=np.uint8)
    cr = _rounding.relative_bound(p.C)
    with parallel_guard():
        if p.labels_mode:
            _k.cross_entropy_labels_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index,
                                         p.eps, False, False, out, cr, slow)
        else:
            _k.cross_entropy_probs_rows(p.x, p.target, p.weight, p.has_weight, p.eps, False,
                                        False, out, cr, slow)
    idx = np.flatnonzero(slow)
    _rounding.count("cross_entropy", N, idx.size)
    if idx.size:
        from . import reference

        kw = {"ignore_index": p.ignore_index} if p.labels_mode else {}
        # the weights as the kernels saw them (scaled by 2**-item_unscale): the oracle's
        # losses carry the same power of two, which reduce() takes back
        out[idx] = reference.cross_entropy(p.x[idx], p.target[idx], reduction="none",
                                           weight=p.weight if p.has_weight else None,
                                           label_smoothing=p.eps, **kw)
    return out


def _option_losses_correct(p: _Problem) -> np.ndarray:
    """:func:`_losses_correct` with the z-loss or the soft-cap: the options kernel on the
    double-double exponential with its error bound (``_loss_error``), the oracle for the rows
    it leaves undecided (nan: also the rows whose value is nan)."""
    out = _option_rows(p, 1.0, None, _rounding.relative_bound(p.C))
    idx = np.flatnonzero(np.isnan(out))
    _rounding.count("cross_entropy", p.x.shape[0], idx.size)
    if idx.size:
        from . import reference

        kw = {"ignore_index": p.ignore_index} if p.labels_mode else {}
        out[idx] = reference.cross_entropy(p.x[idx], p.target[idx], reduction="none",
                                           weight=p.weight if p.has_weight else None,
                                           label_smoothing=p.eps, z_loss=p.z,
                                           logit_softcap=p.cap if p.cap > 0.0 else None, **kw)
    return out


def _check_correct(p: _Problem, name: str) -> None:
    """In rounding mode "correct", refuse (any dtype) what has no correctly rounded path:
    class weights beyond ``2**±64`` (they are scaled by a power of two inside and the results
    scaled back, which rounds a second time where either is subnormal)."""
    if _rounding.get_rounding() != "correct":
        return
    if p.item_unscale:
        _rounding.unsupported(f"{name} (with class weights beyond 2**-64 .. 2**64 in "
                              "magnitude: the loss is linear in the weights, scale them)")


def _losses(p: _Problem) -> np.ndarray:
    if _rounding.get_rounding() == "correct":  # its refusals, and its path for float64
        _check_correct(p, "cross_entropy")
        if _rounding.correct(p.dtype):
            return _losses_correct(p)
    if p.options:
        return _option_rows(p, 1.0, None)
    out = np.empty(p.x.shape[0], dtype=np.float64)
    if p.x.shape[0] == 0:
        return out
    if _short_rows(p, False):
        _short_labels(p, out)
    elif p.labels_mode:
        with parallel_guard():
            _k.cross_entropy_labels_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index, p.eps,
                                         p.odd, p.fast, out)
    elif p.C == 0:  # probabilities over no classes: each loss is the empty sum, 0
        out[:] = 0.0
    else:
        with parallel_guard():
            _k.cross_entropy_probs_rows(p.x, p.target, p.weight, p.has_weight, p.eps, p.odd, p.fast,
                                        out)
    return out


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, logit_softcap=None):
    r"""Softmax cross-entropy between logits and a target, accurate to a few ulp.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities, shape ``(N, d1, ..., C)`` with the classes on
        ``axis`` (float16, bfloat16, float32 or float64; integers become float64).
    target : array_like
        Either integer class indices with the shape of ``logits`` without ``axis``, or float
        probabilities with the shape of ``logits``.
    axis : int, optional
        The class axis (default: the last).
    weight : array_like, optional
        Per-class weights, shape ``(C,)``, finite and non-negative (bools and integers
        become float64), of any magnitude: weights beyond :math:`2^{\pm 64}` are scaled by a
        power of two inside (exact) and the results scaled back. Negative weights are
        rejected: they make the loss unbounded below (docs: *Input rules*).
    ignore_index : int, optional
        Class-index targets equal to this value contribute nothing (default -100). With
        probability targets it cannot apply: any other value raises ``ValueError``, as in
        PyTorch. Probabilities over zero classes give the empty sum, 0, per item.
    reduction : {'mean', 'sum', 'none', 'partial'}, optional
        ``'mean'`` divides the weighted sum by :math:`\sum_n w_{y_n}` over non-ignored items
        (class indices) or by the number of items (probabilities). A zero denominator (all
        items ignored, or weights that sum to 0 over the items) gives nan, and with
        :func:`cross_entropy_value_and_grad` nan gradient rows for the items not ignored,
        as PyTorch. ``'sum'`` and ``'mean'`` are computed from exact sums of the per-item
        values (and of the weights), rounded once: the bits do not depend on the row order,
        the thread count or the batch split. ``'partial'`` returns those exact sums as a
        :class:`crossent.Partial`, to be added to the partials of other batches.
    label_smoothing : float, optional
        :math:`\varepsilon \in [0, 1]`: the target becomes
        :math:`(1-\varepsilon)\,t + \varepsilon / C`.
    z_loss : float, optional
        :math:`z \ge 0` (finite): adds :math:`z\,\operatorname{lse}(x_n)^2` to each item's
        loss (PaLM's auxiliary loss), weighted like the item (:math:`w_{y_n}` for class
        indices, 1 for probabilities), untouched by label smoothing, nothing for ignored
        items. Default 0: no term (the plain path, bitwise).
    logit_softcap : float, optional
        :math:`c > 0` (finite): every logit :math:`x` becomes :math:`c\tanh(x/c)` before
        anything else (Gemma 2), -inf included (it becomes :math:`-c`). Default None: no cap.
        Semantics and accuracy: docs *Loss options*.

    Returns
    -------
    ndarray, numpy scalar or Partial
        The loss in the dtype of ``logits``: per item for ``'none'``, a scalar for ``'sum'``
        and ``'mean'``, a :class:`crossent.Partial` for ``'partial'``.

    Notes
    -----
    For one item with logits :math:`z`, :math:`m = \max_i z_i` and
    :math:`s = \sum_i e^{z_i - m} - 1`,

    .. math:: -\log\sigma(z)_y = (m - z_y) + \operatorname{log1p}(s),

    a sum of two non-negative terms: nothing cancels, so a confident prediction whose true
    loss is 1e-20 gets 1e-20 (PyTorch, JAX and SciPy return 0). With soft targets
    :math:`a_c = w_c t_c`, the loss :math:`\sum_c a_c(-\log\sigma(z)_c)` is a sum of
    non-negative terms, summed in double-double. The mean and sum are summed in a fixed
    order in double-double, so results do not depend on the thread count.

    Accuracy (``crossent._bounds``): per-item loss and mean/sum within 3 ulp in float64;
    within 1 ulp and correctly rounded in practice in float32/float16 (computed in
    float64 inside). In rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64
    per-item losses are correctly rounded (0.5 ulp; with ``z_loss`` and ``logit_softcap``
    too), and a mean or sum is their exact sum rounded once. -inf logits mask classes; a target class whose logit is -inf gives
    +inf; a row with nan or +inf, or with only -inf, gives nan.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> logits = np.array([[50.0, 0.0, 0.0], [0.0, 1.0, 2.0]])
    >>> crossent.cross_entropy(logits, np.array([0, 2]), reduction="none").tolist()
    [3.8574996959278356e-22, 0.4076059644443803]
    """
    p = _problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                 logit_softcap)
    return p.reduce(_losses(p))


def cross_entropy_value_and_grad(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                                 reduction="mean", label_smoothing=0.0, out=None, z_loss=0.0,
                                 logit_softcap=None):
    r"""The loss of :func:`cross_entropy` and its gradient in the logits, in one pass.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As for :func:`cross_entropy`.
    out : ndarray, optional
        Where to write the gradient: the shape and dtype of ``logits``, writeable. It may
        be ``logits`` itself (in place).

    Returns
    -------
    loss : ndarray, numpy scalar or Partial
        As :func:`cross_entropy`.
    dlogits : ndarray
        The gradient of the reduced loss (of the sum of the per-item losses for
        ``reduction='none'`` and ``'partial'``: divide it by the total weight of all the
        batches for the gradient of their mean) with respect to ``logits``; ``out`` if given.

    Notes
    -----
    .. math:: \frac{\partial}{\partial z_i} \sum_c a_c\,(-\log\sigma(z)_c) = A\,\sigma(z)_i - a_i,
              \qquad A = \sum_c a_c,

    divided by the mean's denominator (the exact sum of the weights, rounded once). For one-hot targets the entry at the label is
    computed as :math:`-w_y (S - e^{z_y - m}) / S` (no cancellation, even when
    :math:`\sigma(z)_y \approx 1`). Accuracy: float64 entries within 4 ulp for one-hot
    targets; with soft targets :math:`A\sigma_i - a_i` cancels where they are close, and
    the error is a few ulp of :math:`A\sigma_i` and of :math:`a_i`. Ignored items get a
    zero gradient row; a ``'mean'`` with a zero denominator gives nan rows for the others.
    In rounding mode ``"correct"`` (:func:`crossent.rounding`) the float64 gradient (every
    option, ``z_loss`` and ``logit_softcap`` included) is correctly rounded, with the mean's
    exact divisor.
    Memory: only the gradient is allocated (none when ``out`` is given and the class axis is
    last and contiguous).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> loss, g = crossent.cross_entropy_value_and_grad(np.array([[0.0, 0.0]]), np.array([1]))
    >>> float(loss), g.tolist()
    (0.6931471805599453, [[0.5, -0.5]])
    """
    p = _problem(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                 logit_softcap)
    _check_correct(p, "cross_entropy_value_and_grad")
    check_out(out, p.logits.shape, p.logits.dtype)
    losses, grad = _value_and_grad(p, out, p.denominator)
    return p.reduce(losses), grad


def _value_and_grad(p: _Problem, out, den: float, total=None):
    """The float64 per-row losses and the gradient (``out`` if given) of a validated problem,
    with ``den`` the divisor of a mean's gradient (1 otherwise). ``crossent.dask`` calls it
    on one block of rows with the denominator of the whole batch, and its exact weight total
    ``total`` (default ``p.weight_total``: for the correctly rounded gradient)."""
    if p.options:
        return _options_value_and_grad(p, out, den, total)
    a = p.logits
    # write straight into out when it can hold the (rows, C) layout; else into a buffer
    direct = (
        out is not None
        and p.unscale == 0
        and p.axis == a.ndim - 1
        and out.flags.c_contiguous
        and not is_narrow(out.dtype)
        and out.dtype.isnative
    )
    if direct:
        grad = out.reshape(p.x.shape)  # may alias p.x (in place): the kernel allows it
    else:  # float16/bfloat16, or scaled weights: float64, rounded once at the end
        work = np.float64 if is_narrow(a.dtype) or p.unscale else a.dtype
        grad = np.empty(p.x.shape, dtype=work)
    losses = np.empty(p.x.shape[0], dtype=np.float64)
    # a zero denominator (a 'mean' whose weights sum to 0): the loss is nan, and so is every
    # gradient row of an item that is not ignored (0/0, as PyTorch); the kernels never
    # divide by 0 (they run with 1 and those rows are overwritten)
    if p.x.shape[0]:
        if _rounding.correct(p.dtype):
            _grad_correct(p, losses, den, grad, total)
        elif _short_rows(p, True):
            _short_labels(p, losses, den or 1.0, grad)
            if den == 0.0:
                grad[p.target != p.ignore_index] = np.nan
        elif p.labels_mode:
            with parallel_guard():
                _k.cross_entropy_labels_grad_rows(p.x, p.target, p.weight, p.has_weight, p.ignore_index,
                                                  p.eps, den or 1.0, p.odd, p.fast, losses, grad)
            if den == 0.0:
                grad[p.target != p.ignore_index] = np.nan
        elif p.C == 0:  # probabilities over no classes: losses 0 (the empty sum), no gradient
            losses[:] = 0.0
        else:  # den = N > 0 here
            with parallel_guard():
                _k.cross_entropy_probs_grad_rows(p.x, p.target, p.weight, p.has_weight, p.eps, den,
                                                 p.odd, p.fast, losses, grad)
    if direct:
        return losses, out
    if out is None and grad.dtype == a.dtype and not p.unscale and p.axis == a.ndim - 1:
        return losses, grad.reshape(a.shape)  # nothing to move, scale or round
    moved = np.moveaxis(a, p.axis, -1).shape
    with np.errstate(over="ignore"):  # overflow to inf is the rounded value
        if p.unscale:
            np.ldexp(grad, p.unscale, out=grad)
        g = cast_result(np.moveaxis(grad.reshape(moved), -1, p.axis), a.dtype)
    if out is None:
        return losses, g
    out[...] = g  # already in the dtype of out (float64 rounded once by cast_result)
    return losses, out


def _grad_correct(p: _Problem, losses, den: float, grad, total=None) -> None:
    """The correctly rounded loss and gradient (no options: ``crossent._rounding``): class
    indices without smoothing take the kernel of one-hot rows, probability targets and label
    smoothing that of soft coefficients (an absolute bound per entry, since ``A p_i - a_i``
    cancels where the target is near the softmax); the mean's divisor (the whole batch's weight total ``total`` when
    given, for a block of a larger batch) goes to the kernel as the double-double of
    its exact value (``den`` is that value rounded), the rows the rounding test cannot decide
    are recomputed by the oracle with the same exact divisor."""
    exact_den, dh, dl = _exact_divisor(p, den, total)
    slow = np.zeros(p.x.shape[0], dtype=np.uint8)
    # in place (out is the logits): the slow path needs the logits after the kernel
    g = np.empty_like(grad) if np.shares_memory(grad, p.x) else grad
    cr = _rounding.relative_bound(p.C)
    if not p.labels_mode and p.C == 0:  # probabilities over no classes: losses 0, no gradient
        losses[:] = 0.0
    elif p.labels_mode and p.eps == 0.0:
        with parallel_guard():
            _k.cross_entropy_labels_grad_rows(p.x, p.target, p.weight, p.has_weight,
                                              p.ignore_index, 0.0, dh, False, False, losses, g,
                                              cr, slow, dl)
    else:  # soft coefficients: probability targets, or label smoothing
        labels = p.target if p.labels_mode else np.empty(0, dtype=np.int64)
        t = np.empty((0, 0)) if p.labels_mode else p.target
        with parallel_guard():
            _k.cross_entropy_soft_grad_rows_cr(p.x, labels, t, p.weight, p.has_weight,
                                               p.ignore_index, p.eps, dh, dl, cr, losses, g, slow)
    idx = np.flatnonzero(slow)
    _rounding.count("cross_entropy_value_and_grad", p.x.shape[0], idx.size)
    if idx.size:
        from . import reference

        kw = {"ignore_index": p.ignore_index} if p.labels_mode else {}
        loss_s, grad_s = reference.cross_entropy_value_and_grad(
            p.x[idx], p.target[idx], weight=p.weight if p.has_weight else None,
            reduction="none", label_smoothing=p.eps, grad_scale=1 / exact_den, **kw)
        losses[idx] = loss_s
        g[idx] = grad_s
    if g is not grad:
        grad[...] = g
    if den == 0.0:
        grad[p.target != p.ignore_index] = np.nan


def _exact_divisor(p: _Problem, den: float, total=None):
    """``(D, dh, dl)``: the gradient's exact divisor ``D`` (a Fraction: the mean's weight
    total, of the whole batch when ``total`` is given; 1 for the sum's gradient, and for a
    zero divisor, whose rows become nan afterwards) and its double-double ``dh + dl``."""
    from fractions import Fraction

    if p.reduction == "mean" and den != 0.0:
        D = Fraction(p.weight_total if total is None else total, 1 << SCALE_BITS)
    else:
        D = Fraction(1)
    dh = float(D)
    return D, dh, float(D - Fraction(dh))


def _options_grad_correct(p: _Problem, den: float, grad, total=None) -> np.ndarray:
    """The correctly rounded loss and gradient with the z-loss or the soft-cap: the options
    kernel with its rounding test per entry (``_grad_dd_cr``) and the mean's divisor as the
    double-double of its exact value; the rows it leaves undecided (nan loss) from the oracle,
    with the same exact divisor."""
    exact_den, dh, dl = _exact_divisor(p, den, total)
    losses = _option_rows(p, dh, grad, _rounding.relative_bound(p.C), dl)
    idx = np.flatnonzero(np.isnan(losses))
    _rounding.count("cross_entropy_value_and_grad", p.x.shape[0], idx.size)
    if idx.size:
        from . import reference

        kw = {"ignore_index": p.ignore_index} if p.labels_mode else {}
        loss_s, grad_s = reference.cross_entropy_value_and_grad(
            p.x[idx], p.target[idx], weight=p.weight if p.has_weight else None,
            reduction="none", label_smoothing=p.eps, z_loss=p.z,
            logit_softcap=p.cap if p.cap > 0.0 else None, grad_scale=1 / exact_den, **kw)
        losses[idx] = loss_s
        grad[idx] = grad_s
    return losses


def _options_value_and_grad(p: _Problem, out, den: float, total=None):
    """:func:`_value_and_grad` with the z-loss or the soft-cap set: the gradient in float64
    (scaled back and rounded once at the end); correctly rounded in the mode "correct"."""
    a = p.logits
    grad = np.empty(p.x.shape, dtype=np.float64)
    if _rounding.correct(p.dtype):
        losses = _options_grad_correct(p, den, grad, total)
    else:
        losses = _option_rows(p, den or 1.0, grad)
    if p.labels_mode and den == 0.0:
        grad[p.target != p.ignore_index] = np.nan
    moved = np.moveaxis(a, p.axis, -1).shape
    with np.errstate(over="ignore"):
        if p.unscale:
            np.ldexp(grad, p.unscale, out=grad)
        g = cast_result(np.moveaxis(grad.reshape(moved), -1, p.axis), a.dtype)
    if out is None:
        return losses, g
    out[...] = g
    return losses, out
