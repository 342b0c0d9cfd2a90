r"""crossent on Dask arrays: the NumPy API's functions, bitwise equal to the NumPy call on the
whole array, for any chunking.

Every function takes dask arrays (NumPy arrays and array-likes are wrapped with
``dask.array.asarray``) with the signature of its NumPy counterpart and returns dask arrays, a
0-d dask array for a ``"sum"`` or ``"mean"``, or a ``dask.delayed`` :class:`crossent.Partial`
for ``reduction="partial"``. Nothing is computed before ``.compute()`` (or a ``Client``'s
``compute``), except the validation of the arguments that do not depend on the values.

How the results stay bitwise equal to NumPy's:

* Rows are independent: each block of rows is computed by the NumPy function (or by the same
  kernels), so a row's bits do not depend on the block it is in.
* Class chunks of ``logsumexp``, ``log_softmax`` and ``softmax`` along one axis are folded: per
  block of rows, a chain of tasks (one chunk each) forms the exact max, then continues the
  whole-row kernel's fixed-lane double-double sum from chunk to chunk, each element in the
  lane of its position in the whole row (:mod:`crossent.kernels.chunked`): the same additions
  in the same order as on the whole row. The losses, their gradient, the PMF functions and
  ``logsumexp`` with ``b``, ``return_sign`` or several axes gather the class axis (the reduced
  axes) into one chunk per block of rows first (``rechunk``): a block then holds whole rows.
* ``"sum"`` and ``"mean"`` are exact sums (:class:`crossent.Partial`) of the blocks, added in a
  tree (exact, in any order) and rounded once: the NumPy call's rounding of the same exact sum.
* The gradient of a ``"mean"`` divides by the whole batch's sum of weights: that sum is formed
  first (exactly, from the blocks), then handed to every block's gradient kernel.

Values that only a block can check (a label out of range, a nan weight in a PMF) raise when the
graph is computed, with the position inside the block. See ``docs/scale.md``.

The rounding mode (:func:`crossent.rounding`) is the one in effect when the function is called
(the graph is built): it is captured then and set inside every task, which runs on a worker
thread or process outside the caller's context. In mode ``"correct"`` every block's NumPy call
is correctly rounded (class chunks are gathered, not folded: the fold is the fast kernels'
algorithm) and the ``"sum"``/``"mean"`` are the exact sums of the blocks' correctly rounded
items, rounded once, as the NumPy call's; the gradient of a ``"mean"`` divides by the whole
batch's exact weight total (with ``z_loss`` and ``logit_softcap`` too). What the NumPy
function refuses in that mode raises ``NotImplementedError`` when the graph is built.

Examples
--------
>>> import numpy as np, dask.array as da, crossent, crossent.dask as cd
>>> rng = np.random.default_rng(0)
>>> x, y = rng.standard_normal((1000, 50)), rng.integers(0, 50, 1000)
>>> loss = cd.cross_entropy(da.from_array(x, chunks=(300, 20)), da.from_array(y, chunks=300))
>>> bool(loss.compute() == crossent.cross_entropy(x, y))
True
"""

from __future__ import annotations

import functools

import dask
import dask.array as da
import numpy as np

from . import _rounding
from . import loss as _loss
from . import pmf as _pmf
from .softmax import log_softmax as _np_log_softmax
from .softmax import logsumexp as _np_logsumexp
from .softmax import softmax as _np_softmax
from ._partial import SCALE_BITS, round_ratio
from ._validate import as_float_array, cast_result, check_no_q, compute_dtype, work_dtype

__all__ = [
    "cross_entropy",
    "cross_entropy_pmf",
    "cross_entropy_value_and_grad",
    "entropy",
    "kl_divergence",
    "log_softmax",
    "logsumexp",
    "softmax",
]


# ----------------------------------------------------------------------------- helpers
def _as_dask(x, name: str):
    if isinstance(x, da.Array):
        return x
    try:
        return da.asarray(x)
    except Exception as exc:  # ragged lists and the like: the NumPy layer's kind of error
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from None


def _axes(axis, ndim: int) -> tuple:
    """The reduced axes (already validated by a call of the NumPy function on a tiny array)."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted({int(a) % max(ndim, 1) for a in items})) if ndim else ()


def _ones(x, dtype=None):
    """A tiny array with ``x``'s number of dimensions (and dtype): the input of the NumPy call
    that validates the arguments and gives the result's dtype. It is a PMF ([1.0]) and a row of
    logits, so every value rule holds."""
    return np.ones((1,) * x.ndim, dtype=x.dtype if dtype is None else dtype)


def _whole_rows(x, axes):
    """``x`` with the ``axes`` in one chunk each: every block holds whole rows."""
    return x.rechunk({a: -1 for a in axes}) if axes else x


def _arr(f):
    """``f``'s result as an ndarray (a 0-d result of the NumPy API is a NumPy scalar), in the
    rounding mode of the call that builds the graph (:func:`_in_mode`)."""
    return functools.partial(_call_arr, _rounding.get_rounding(), f)


def _call_arr(mode, f, *args, **kwargs):
    with _rounding.rounding(mode):
        return np.asarray(f(*args, **kwargs))


def _in_mode(f):
    """``f`` run in the rounding mode of the call that builds the graph: a task runs on a
    worker thread (or process), outside the caller's ``contextvars`` context, so the mode
    is captured here and set again inside the task (it is part of the task's arguments, so
    graphs built in different modes never share a key)."""
    return functools.partial(_call_in, _rounding.get_rounding(), f)


def _call_in(mode, f, *args, **kwargs):
    with _rounding.rounding(mode):
        return f(*args, **kwargs)


def _tree_sum(items):
    """The sum of a list of delayed values, added pairwise (a tree of depth log2 n)."""
    items = list(items)
    if not items:
        raise ValueError("nothing to sum")
    add = dask.delayed(_add, pure=True)
    while len(items) > 1:
        items = [add(*items[i:i + 2]) for i in range(0, len(items), 2)]
    return items[0]


def _add(a, b=0):
    return a + b


def _first(block):
    """The one object of a block of per-block objects (shape (1, ..., 1))."""
    return block.reshape(-1)[0]


def _per_block(f, out_ind, *args, **kwargs):
    """``f`` on every block (``args`` as for ``dask.array.blockwise``), each result one object:
    the delayed objects, one per block, in a flat list."""
    def one(*blocks):
        res = np.empty((1,) * len(out_ind), dtype=object)
        res.reshape(-1)[0] = f(*blocks)
        return res
    objs = da.blockwise(one, out_ind, *args, dtype=object, concatenate=True,
                        adjust_chunks={i: 1 for i in out_ind}, meta=np.empty((0,) * len(out_ind), object),
                        **kwargs)
    return [dask.delayed(_first, pure=True)(d) for d in objs.to_delayed().reshape(-1)]


# ----------------------------------------------------------------------------- class chunks
# A row split into class chunks: its statistics are folded chunk after chunk in row order
# (crossent.kernels.chunked), bitwise those of the whole row. Each task holds one chunk.
def _kernels():
    from .kernels import chunked

    return chunked


def _rows_of(block):
    """A block with the classes last as the kernels' ``(rows, c)`` array."""
    a = as_float_array(block, "x")
    return np.ascontiguousarray(a.astype(compute_dtype(a.dtype), copy=False)).reshape(
        -1, a.shape[-1]), a.dtype


def _fold_init(R):
    k = _kernels()
    return (np.full(R, -np.inf), np.zeros(R, np.int64), np.zeros((R, k.STATE)),
            np.zeros(R, np.int64))


def _max_step(state, block):
    """Pass 1 on one chunk: a new state (a task's inputs are never changed: it may be rerun)."""
    m, flags, acc, cnt = (a.copy() for a in state)
    rows, _ = _rows_of(block)
    _kernels().chunk_max(rows, m, flags)
    return m, flags, acc, cnt


def _fold_step(state, block, start):
    """Pass 2 on the chunk whose first class is ``start``."""
    m, flags, acc, cnt = (a.copy() for a in state)
    rows, dtype = _rows_of(block)
    _kernels().fold_terms(rows, start, m, acc, cnt, dtype != np.float64)
    return m, flags, acc, cnt


def _fold_finish(state, dtype):
    """``(status, stats, lse, posinf)``: the rows' statistics, their logsumexp, and the rows
    holding +inf and no nan (SciPy's rule, as the NumPy layer applies it)."""
    m, flags, acc, cnt = state
    k = _kernels()
    R = m.shape[0]
    status, stats, lse = np.empty(R, np.int64), np.empty((R, 7)), np.empty(R, work_dtype(dtype))
    narrow = np.dtype(dtype) != np.float64
    k.finish_stats(m, flags, acc, cnt, narrow, narrow, status, stats, lse)
    posinf = (flags & k.HAS_POSINF).astype(bool) & ~(flags & k.HAS_NAN).astype(bool)
    return status, stats, lse, posinf


def _lse_block(fin, shape, dtype):
    _, _, lse, posinf = fin
    lse = lse.copy()
    lse[posinf] = np.inf
    return np.asarray(cast_result(lse.reshape(shape), dtype))


def _chunk_out(fin, block, kind):
    status, stats, _, posinf = fin
    rows, dtype = _rows_of(block)
    out = np.empty(rows.shape, work_dtype(dtype))
    narrow = dtype != np.float64
    if kind == "log_softmax":
        _kernels().log_softmax_chunk(rows, status, stats, narrow, out)
        for n in np.flatnonzero(posinf):
            out[n] = np.where(np.isposinf(rows[n]), np.nan, -np.inf)
    else:
        _kernels().softmax_chunk(rows, status, stats, narrow, out)
    return cast_result(out.reshape(block.shape), dtype)


def _folded(x, axis, kind, dtype, keepdims=False):  # noqa: C901
    """``kind`` ("logsumexp", "log_softmax", "softmax") along the int ``axis`` of ``x`` whose
    classes are in several chunks: per block of rows, a chain of tasks along the class chunks
    (the max, then the fold), then the outputs of each chunk."""
    ax = int(axis) % x.ndim
    fdt = as_float_array(np.zeros(1, x.dtype), "x").dtype  # integers are read as float64
    xm = da.moveaxis(x, ax, -1)
    blocks = xm.to_delayed()
    starts = np.concatenate([[0], np.cumsum(xm.chunks[-1])]).tolist()
    d = functools.partial(dask.delayed, pure=True)
    out = np.empty(xm.numblocks[:-1], dtype=object)
    for idx in np.ndindex(*xm.numblocks[:-1]):
        bshape = tuple(xm.chunks[i][j] for i, j in enumerate(idx))
        st = d(_fold_init)(int(np.prod(bshape, dtype=np.int64)))
        chunks = [blocks[idx + (j,)] for j in range(xm.numblocks[-1])]
        for c in chunks:
            st = d(_max_step)(st, c)
        for c, s0 in zip(chunks, starts):
            st = d(_fold_step)(st, c, s0)
        fin = d(_fold_finish)(st, fdt)
        if kind == "logsumexp":
            out[idx] = da.from_delayed(d(_lse_block)(fin, bshape, dtype), shape=bshape,
                                       dtype=dtype)
        else:
            out[idx] = [da.from_delayed(d(_chunk_out)(fin, c, kind), shape=bshape + (w,),
                                        dtype=dtype)
                        for c, w in zip(chunks, xm.chunks[-1])]
    if kind == "logsumexp":
        res = da.block(out.tolist()) if out.ndim else out[()]
        return da.expand_dims(res, ax) if keepdims else res
    return da.moveaxis(da.block(out.tolist()), -1, ax)


def _foldable(x, axis):
    """The class axis is one int axis split into several chunks (else the rows are gathered)."""
    if x.ndim == 0 or isinstance(axis, tuple) and len(axis) != 1:
        return False
    ax = axis[0] if isinstance(axis, tuple) else axis
    return isinstance(ax, (int, np.integer)) and len(x.chunks[int(ax) % x.ndim]) > 1


# ----------------------------------------------------------------------------- softmax family
def logsumexp(x, axis=-1, keepdims=False, *, b=None, return_sign=False):
    """:func:`crossent.logsumexp` of a dask array: the same bits for any chunking.

    Parameters
    ----------
    x, axis, keepdims, b, return_sign
        As :func:`crossent.logsumexp`; ``x`` and ``b`` may be dask arrays.

    Returns
    -------
    dask.array.Array
        The result (and its sign with ``return_sign=True``); 0-d when every axis is reduced
        without ``keepdims``.
    """
    x = _as_dask(x, "x")
    if b is not None:
        b = _as_dask(b, "b")
        meta = _np_logsumexp(_ones(x), axis, keepdims, b=_ones(b), return_sign=return_sign)
        shape = np.broadcast_shapes(x.shape, b.shape)
        x, b = da.broadcast_to(x, shape), da.broadcast_to(b, shape)
    else:
        meta = _np_logsumexp(_ones(x), axis, keepdims, return_sign=return_sign)
    dtype = (meta[0] if return_sign else meta).dtype
    if b is None and not return_sign and _foldable(x, axis) and _rounding.get_rounding() == "fast":
        ax = axis[0] if isinstance(axis, tuple) else axis
        return _folded(x, ax, "logsumexp", dtype, keepdims)
    axes = _axes(axis, x.ndim)
    x = _whole_rows(x, axes)
    ins = [x] if b is None else [x, b.rechunk(x.chunks)]

    mode = _rounding.get_rounding()

    def run(which, *blocks):
        kw = {} if b is None else {"b": blocks[1]}
        with _rounding.rounding(mode):
            r = _np_logsumexp(blocks[0], axis, keepdims, return_sign=return_sign, **kw)
        return np.asarray(r[which] if return_sign else r)

    if keepdims:
        chunks = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
        outs = [da.map_blocks(functools.partial(run, w), *ins, chunks=chunks, dtype=dtype)
                for w in range(2 if return_sign else 1)]
    else:
        outs = [da.map_blocks(functools.partial(run, w), *ins, drop_axis=axes, dtype=dtype)
                for w in range(2 if return_sign else 1)]
    return tuple(outs) if return_sign else outs[0]


def _rowwise(f, x, axis, kind):
    x = _as_dask(x, "x")
    dtype = f(_ones(x), axis).dtype
    if _foldable(x, axis) and _rounding.get_rounding() == "fast":
        return _folded(x, axis[0] if isinstance(axis, tuple) else axis, kind, dtype)
    x = _whole_rows(x, _axes(axis, x.ndim))
    return x.map_blocks(_arr(f), axis, dtype=dtype)


def log_softmax(x, axis=-1):
    """:func:`crossent.log_softmax` of a dask array: the same bits for any chunking.

    Parameters
    ----------
    x, axis
        As :func:`crossent.log_softmax`.

    Returns
    -------
    dask.array.Array
    """
    return _rowwise(_np_log_softmax, x, axis, "log_softmax")


def softmax(x, axis=-1):
    """:func:`crossent.softmax` of a dask array: the same bits for any chunking.

    Parameters
    ----------
    x, axis
        As :func:`crossent.softmax`.

    Returns
    -------
    dask.array.Array
    """
    return _rowwise(_np_softmax, x, axis, "softmax")


# ----------------------------------------------------------------------------- PMF functions
def _pmf_call(f, arrays, names, axis, **kw):
    arrs = [_as_dask(a, n) for a, n in zip(arrays, names)]
    dtype = np.asarray(f(*[_ones(a) for a in arrs], axis=axis, **kw)).dtype
    shape = np.broadcast_shapes(*[a.shape for a in arrs])
    arrs = [da.broadcast_to(a, shape) for a in arrs]
    ax = _axes(axis, len(shape))
    first = _whole_rows(arrs[0], ax)
    arrs = [first] + [a.rechunk(first.chunks) for a in arrs[1:]]
    return da.map_blocks(_arr(functools.partial(f, axis=axis, **kw)), *arrs, drop_axis=ax,
                         dtype=dtype)


def entropy(p, *q, base=None, axis=-1, check=None):
    """:func:`crossent.entropy` of a dask array: the same bits for any chunking.

    Parameters
    ----------
    p, base, axis, check
        As :func:`crossent.entropy`.

    Returns
    -------
    dask.array.Array
    """
    check_no_q(q)
    return _pmf_call(_pmf.entropy, [p], ["p"], axis, base=base, check=check)


def cross_entropy_pmf(p, q, *, base=None, axis=-1, check=None):
    """:func:`crossent.cross_entropy_pmf` of dask arrays: the same bits for any chunking.

    Parameters
    ----------
    p, q, base, axis, check
        As :func:`crossent.cross_entropy_pmf`.

    Returns
    -------
    dask.array.Array
    """
    return _pmf_call(_pmf.cross_entropy_pmf, [p, q], ["p", "q"], axis, base=base, check=check)


def kl_divergence(p, q, *, base=None, axis=-1, check=None):
    """:func:`crossent.kl_divergence` of dask arrays: the same bits for any chunking.

    Parameters
    ----------
    p, q, base, axis, check
        As :func:`crossent.kl_divergence`.

    Returns
    -------
    dask.array.Array
    """
    return _pmf_call(_pmf.kl_divergence, [p, q], ["p", "q"], axis, base=base, check=check)


# ----------------------------------------------------------------------------- the loss
class _Spec:
    """The keyword arguments of one loss call: all a block's task needs (small, picklable)."""

    def __init__(self, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                 logit_softcap):
        self.kw = dict(axis=axis, weight=weight, ignore_index=ignore_index,
                       label_smoothing=label_smoothing, z_loss=z_loss, logit_softcap=logit_softcap)
        self.reduction = reduction
        self.mode = _rounding.get_rounding()  # the tasks run in the mode of the call

    def problem(self, xb, tb, reduction=None):
        k = self.kw
        return _loss._Problem(xb, tb, k["axis"], k["weight"], k["ignore_index"],
                              self.reduction if reduction is None else reduction,
                              k["label_smoothing"], k["z_loss"], k["logit_softcap"])


class _Loss:
    """The dask inputs of a loss call, validated and laid out for ``blockwise``: the class axis
    in one chunk, the target's blocks aligned with the logits' rows."""

    def __init__(self, logits, target, axis, weight, ignore_index, reduction, label_smoothing,
                 z_loss, logit_softcap):
        x = _as_dask(logits, "logits")
        t = _as_dask(target, "target")
        self.spec = _Spec(axis, weight, ignore_index, reduction, label_smoothing, z_loss,
                          logit_softcap)
        kw = self.spec.kw
        labels = t.dtype.kind in "iu"
        # the arguments' rules on one row with the real class count (the values are checked
        # per block, when the graph runs)
        if x.ndim == 0 or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
            _loss.cross_entropy(np.ones((1,) * x.ndim), np.zeros((1,) * x.ndim), axis=axis)
        ax = int(axis) % x.ndim
        mshape = [1] * x.ndim
        mshape[ax] = x.shape[ax]
        mx = np.zeros(mshape, dtype=x.dtype)
        if labels:
            mt = np.full((1,) * (x.ndim - 1), 0 if x.shape[ax] else ignore_index, dtype=t.dtype)
        else:
            mt = np.zeros(mshape, dtype=t.dtype)
        with _rounding.rounding("fast"):  # the arguments' rules; the mode's: check_mode
            loss, grad = _loss.cross_entropy_value_and_grad(mx, mt, reduction=reduction, **kw)
        self.meta = (mx, mt)
        self.dtype = loss.dtype
        self.grad_dtype = grad.dtype
        batch = x.shape[:ax] + x.shape[ax + 1:]
        want = batch if labels else x.shape
        if t.shape != want:
            what = "class indices" if labels else "probabilities"
            raise ValueError(f"target holds {what}, so its shape must be {want} (logits "
                             f"{x.shape}, axis {axis}), got {t.shape}")
        self.ax, self.labels, self.reduction = ax, labels, reduction
        self.x = x.rechunk({ax: -1})
        self.xind = tuple(range(x.ndim))
        self.bind = tuple(i for i in self.xind if i != ax)
        # the target's blocks are the logits' rows (and whole rows of probabilities)
        self.t = t.rechunk(tuple(self.x.chunks[i] for i in self.bind) if labels else self.x.chunks)
        self.tind = self.bind if labels else self.xind
        self.n_items = int(np.prod(batch, dtype=np.int64))

    def check_mode(self, f):
        """Raise now what ``f`` (the NumPy function) refuses in the current rounding mode."""
        f(*self.meta, reduction=self.reduction, **self.spec.kw)

    def args(self):
        return (self.x, self.xind, self.t, self.tind)

    def finish(self, total):
        """The reduced loss from the delayed sum of the blocks' partials."""
        if self.reduction == "partial":
            return total
        rnd = dask.delayed(_round, pure=True)(total, self.reduction)
        return da.from_delayed(rnd, shape=(), dtype=self.dtype)


def _round(total, reduction):
    return np.asarray(total.sum() if reduction == "sum" else total.mean())


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, logit_softcap=None):
    """:func:`crossent.cross_entropy` of dask arrays: the same bits for any chunking.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As :func:`crossent.cross_entropy`; ``logits`` and ``target`` may be dask arrays
        (``weight`` is a small array of one entry per class).

    Returns
    -------
    dask.array.Array or dask.delayed.Delayed
        Per-item losses for ``'none'``; a 0-d dask array for ``'sum'`` and ``'mean'``; a
        delayed :class:`crossent.Partial` for ``'partial'``.

    Notes
    -----
    ``'sum'`` and ``'mean'`` are the exact sums of the blocks' :class:`crossent.Partial`,
    added in a tree and rounded once: the bits of the NumPy call on the whole batch.
    """
    L = _Loss(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
              logit_softcap)
    L.check_mode(_loss.cross_entropy)
    if reduction == "none":
        f = functools.partial(_loss.cross_entropy, reduction="none", **L.spec.kw)
        return da.blockwise(_arr(f), L.bind, *L.args(), dtype=L.dtype, concatenate=True,
                            align_arrays=True)
    f = functools.partial(_loss.cross_entropy, reduction="partial", **L.spec.kw)
    return L.finish(_tree_sum(_per_block(_in_mode(f), L.bind, *L.args(), align_arrays=True)))


def _weight_total(spec, xb, tb):
    return spec.problem(xb, tb, "mean").weight_total


def _den_of(total_weight):
    return np.float64(round_ratio(total_weight, 1 << SCALE_BITS, np.float64))


def _total_of(total_weight):
    """The whole batch's exact weight total as a 0-d object array (the correctly rounded
    gradient divides by the exact sum, not by its rounding)."""
    res = np.empty((), dtype=object)
    res[()] = total_weight
    return res


class _Pair:
    """A block's (loss or Partial, gradient) carried through dask as one object."""

    __slots__ = ("loss", "grad")

    def __init__(self, loss, grad):
        self.loss, self.grad = loss, grad


def _grad_block(spec, xb, tb, *den):
    """The block's loss (its Partial unless ``'none'``) and gradient rows, with the whole
    batch's denominator ``den`` for a ``'mean'``."""
    p = spec.problem(xb, tb)
    total = None
    if den and den[0].dtype == object:  # the exact total (labels)
        total = den[0][()]
        den = (_den_of(total),)
    elif den and not p.labels_mode:  # probabilities: the whole batch's item count, exactly
        total = int(den[0]) << (SCALE_BITS - p.item_unscale)
    with _rounding.rounding(spec.mode):
        losses, g = _loss._value_and_grad(p, None, float(den[0]) if den else p.denominator,
                                          total)
    if p.reduction != "none":
        p.reduction = "partial"
    return _Pair(np.asarray(p.reduce(losses)) if p.reduction == "none" else p.reduce(losses), g)


def _grad_of(pair):
    return pair.grad


def _loss_of(pair, axis=None):
    return pair.loss if axis is None else np.expand_dims(pair.loss, axis)


def cross_entropy_value_and_grad(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                                 reduction="mean", label_smoothing=0.0, z_loss=0.0,
                                 logit_softcap=None, out=None):
    """:func:`crossent.cross_entropy_value_and_grad` of dask arrays: the same bits for any
    chunking.

    Parameters
    ----------
    logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As :func:`crossent.cross_entropy`.
    out : None
        Dask arrays are immutable: only ``None`` is accepted.

    Returns
    -------
    loss : dask.array.Array or dask.delayed.Delayed
        As :func:`cross_entropy`.
    dlogits : dask.array.Array
        The gradient, chunked as ``logits`` with the class axis in one chunk.

    Notes
    -----
    For ``'mean'`` the divisor of the gradient is the exact sum of the weights of the whole
    batch rounded once, as in the NumPy call: for class-index targets it is formed first from
    the blocks (a pass that reads each block's targets and validates its logits), then every
    block's gradient is computed with it; for probabilities it is the number of items.
    """
    if out is not None:
        raise TypeError(f"out must be None for dask arrays (they are immutable), got "
                        f"{type(out).__name__}")
    L = _Loss(logits, target, axis, weight, ignore_index, reduction, label_smoothing, z_loss,
              logit_softcap)
    L.check_mode(_loss.cross_entropy_value_and_grad)
    dargs = ()
    if reduction == "mean":
        if L.labels:
            W = _tree_sum(_per_block(functools.partial(_weight_total, L.spec), L.bind, *L.args(),
                                     align_arrays=True))
            den = da.from_delayed(dask.delayed(_total_of, pure=True)(W), shape=(), dtype=object)
        else:
            den = da.from_array(np.float64(L.n_items))
        dargs = (den, ())
    meta = np.empty((0,) * len(L.xind), dtype=object)
    pairs = da.blockwise(functools.partial(_grad_block, L.spec), L.xind, *L.args(), *dargs,
                         dtype=object, concatenate=True, align_arrays=True, meta=meta)
    grad = pairs.map_blocks(_grad_of, dtype=L.grad_dtype,
                            meta=np.empty((0,) * len(L.xind), dtype=L.grad_dtype))
    if reduction == "none":
        # the class axis is kept with length 1 (dropping it would concatenate the pairs)
        chunks = tuple((1,) if i == L.ax else c for i, c in enumerate(pairs.chunks))
        loss = pairs.map_blocks(_loss_of, L.ax, chunks=chunks, dtype=L.dtype,
                                meta=np.empty((0,) * len(L.xind), dtype=L.dtype))
        return da.squeeze(loss, axis=L.ax), grad
    parts = [dask.delayed(_loss_of, pure=True)(d) for d in pairs.to_delayed().reshape(-1)]
    return L.finish(_tree_sum(parts)), grad
