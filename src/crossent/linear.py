r"""The cross-entropy of a linear layer's output without its logits: ``hidden @ weight.T + bias``
is formed block of rows by block of rows (float64 products through NumPy's BLAS), each block
goes through the fused kernels of :mod:`crossent.kernels.loss`, and the gradients are
accumulated from it, so the ``N x V`` logits never exist. ``docs/linear-cross-entropy.md``
gives the design, the measurements and the accuracy contract."""

from __future__ import annotations

import copy
import os

import numpy as np

from . import _rounding
from ._validate import as_float_array, as_int, cast_result, parallel_guard
from .kernels import linear as _kl
from .kernels import loss as _k
from .loss import _option_rows, _Problem

__all__ = ["linear_cross_entropy", "linear_cross_entropy_value_and_grad"]

#: the largest block of float64 logits the automatic rule allows, in bytes
BLOCK_BYTES = 256 << 20
#: the fewest rows a block has (unless the batch has fewer): BLAS runs well from here on
MIN_ROWS = 16
#: blocks are a multiple of this many rows (see block_rows)
ALIGN = 16
#: the rows of ``weight`` in one float64 slice: the scratch of the ``dweight`` product and,
#: for narrow inputs, of a float64 slice of ``weight`` (each a (slice, H) float64 array)
_SLICE_BYTES = 2 << 20


def _free_memory() -> int:
    """Available physical memory in bytes (``os.sysconf``), or 0 when it cannot be read."""
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0


def block_rows(n_rows: int, n_classes: int, chunk_size=None, itemsize: int = 8,
               n_features: int = 0) -> int:
    """Rows per block: ``chunk_size`` if given (rounded up to a multiple of ``ALIGN``), else
    the automatic rule.

    The rule spends at most a quarter of the logits' size (``n_rows x n_classes`` entries of
    ``itemsize`` bytes; 90% of it less 8 MiB, the rest a margin for temporaries) on the work
    memory of the gradient pass: a block of float64 logits
    (``8 V`` bytes a row), three ``(rows, H)`` float64 arrays (the block's ``hidden``, its
    ``dhidden`` and a product's result: ``24 H`` bytes a row), two float64 slices of
    ``_SLICE_BYTES`` and, for inputs narrower than float64, the ``lo`` half of the ``dweight``
    accumulator (``4 V H`` bytes). The block also takes at most ``BLOCK_BYTES`` and 1/16 of
    the free memory. The rows are rounded down to a multiple of ``ALIGN``, at least
    ``MIN_ROWS``, and never more than the batch has (rounded up).

    Why large blocks: the gradient pass adds each block's ``dweight`` (``V x H``) into the
    accumulator, a memory-bound pass over it per block, so fewer blocks are faster (measured
    in docs/linear-cross-entropy.md).

    Why a multiple of ``ALIGN``: BLAS computes a product in tiles of a few rows, and the rows
    of a partial tile go through an edge kernel that can sum in another order. With every
    block a whole number of tiles (the last one padded with zero rows) each row of the logits
    and of ``dhidden`` is computed by the same code whatever the block size, so its bits do
    not depend on ``chunk_size``. 16 is a multiple of the tile widths of OpenBLAS's
    double-precision kernels (2, 4 and 8).
    """
    if chunk_size is not None:
        rows = as_int(chunk_size, "chunk_size")
        if rows < 1:
            raise ValueError(f"chunk_size must be a positive number of rows, got {rows}")
        rows = max(1, min(rows, n_rows))
        return -(-rows // ALIGN) * ALIGN
    fixed = 2 * _SLICE_BYTES + (4 * n_classes * n_features if itemsize < 8 else 0)
    # 90% of what is left, less 8 MiB: room for NumPy's temporaries and the libraries' own
    # buffers (measured: the resident set exceeds this count by 3 to 5 MB)
    budget = min(int((n_rows * n_classes * itemsize // 4 - fixed) * 0.9) - (8 << 20), BLOCK_BYTES)
    free = _free_memory()
    if free:
        budget = min(budget, free // 16)
    rows = max(budget, 0) // (8 * max(n_classes, 1) + 24 * n_features) // ALIGN * ALIGN
    return min(max(rows, MIN_ROWS), -(-max(n_rows, 1) // ALIGN) * ALIGN)


class _Linear:
    """Validated inputs of one call: ``h`` (N, H), ``w`` (V, H), ``b`` (V,) or None, the loss
    problem ``p`` (target, class weights and options, without logits)."""

    def __init__(self, hidden, weight, target, bias, chunk_size, class_weight, ignore_index,
                 reduction, label_smoothing, z_loss=0.0, logit_softcap=None):
        h = as_float_array(hidden, "hidden")
        if h.ndim == 0:
            raise ValueError("hidden must have at least one dimension (the features), got a 0-d array")
        w = as_float_array(weight, "weight")
        if w.ndim != 2:
            raise ValueError(f"weight must be 2-D, (classes, features) as in torch.nn.functional.linear, "
                             f"got shape {w.shape}")
        if w.shape[1] != h.shape[-1]:
            raise ValueError(f"weight must have shape (V, {h.shape[-1]}) (one row per class, one column "
                             f"per feature of hidden), got {w.shape}")
        if w.dtype != h.dtype:
            raise TypeError(f"weight has dtype {w.dtype} but hidden has dtype {h.dtype}: give both the "
                            f"same dtype")
        V = w.shape[0]
        b = None
        if bias is not None:
            b = as_float_array(bias, "bias")
            if b.shape != (V,):
                raise ValueError(f"bias must have shape ({V},) (one entry per class), got {b.shape}")
            if b.dtype != h.dtype:
                raise TypeError(f"bias has dtype {b.dtype} but hidden has dtype {h.dtype}: give both "
                                f"the same dtype")
        cw = None
        if class_weight is not None:  # the rules of cross_entropy's weight, named for this function
            cw = as_float_array(class_weight, "class_weight").astype(np.float64)
            if cw.shape != (V,):
                raise ValueError(f"class_weight must have shape ({V},) (one entry per class), got {cw.shape}")
            bad = np.flatnonzero(~(np.isfinite(cw) & (cw >= 0)))
            if bad.size:
                raise ValueError(f"class_weight must be finite and non-negative; "
                                 f"class_weight[{bad[0]}] = {cw[bad[0]]}")
        # the logits' shape without their values: validates target and the options as
        # cross_entropy does (a zero-stride view, no memory)
        shape = h.shape[:-1] + (V,)
        fake = np.broadcast_to(np.zeros((), dtype=h.dtype), shape)
        self.p = _Problem(fake, target, -1, cw, ignore_index, reduction, label_smoothing, z_loss,
                          logit_softcap, rows=False)
        self.dtype = h.dtype
        self.hidden_shape = h.shape
        self.h = h.reshape(-1, h.shape[-1])
        self.w = w
        self.b = b
        self.N, self.H, self.V = self.h.shape[0], h.shape[-1], V
        self.rows = block_rows(self.N, V, chunk_size, h.dtype.itemsize, self.H)

    def blocks(self):
        """``(start, stop)`` of each block of rows."""
        for s in range(0, self.N, self.rows):
            yield s, min(s + self.rows, self.N)


def _slices(w, scratch):
    """``(v0, v1, w64)`` for consecutive slices of the rows of ``w``: ``w64`` is
    ``w[v0:v1]`` converted to float64 (exactly) in ``scratch``, which it overwrites."""
    V, step = w.shape[0], scratch.shape[0]
    for v0 in range(0, V, step):
        v1 = min(v0 + step, V)
        ws = scratch[: v1 - v0]
        ws[...] = w[v0:v1]
        yield v0, v1, ws


def _run(L: _Linear, grad: bool, row_scale=None):
    p = L.p
    N, H, V = L.N, L.H, L.V
    R = L.rows
    losses = np.empty(N, dtype=np.float64)
    # float64 weights are used as they are; narrower ones are converted a slice of rows at a
    # time (``_slices``), so that no float64 copy of the whole weight exists
    w64 = L.w if L.dtype == np.float64 else None
    sl = max(1, _SLICE_BYTES // (8 * max(H, 1)))
    wsl = None if w64 is not None else np.empty((min(sl, V), H), dtype=np.float64)
    b64 = None if L.b is None else L.b.astype(np.float64)
    if grad:
        f64 = L.dtype == np.float64
        dh = np.empty((N, H), dtype=L.dtype)
        # the dweight accumulator: the float64 result itself, or for narrower inputs a float32
        # pair hi + lo (hi is the float32 result itself; half the memory of a float64 array)
        if f64:
            dw = np.zeros((V, H), dtype=np.float64)
        else:
            dw = np.zeros((V, H), dtype=np.float32)
            dw_lo = np.zeros((V, H), dtype=np.float32)
        db = np.zeros(V, dtype=np.float64) if L.b is not None else None
        tmp = np.empty((min(sl, V), H), dtype=np.float64)
        dhb = None if f64 else np.empty((R, H), dtype=np.float64)
        den = p.denominator
    if V == 0:  # no classes (probabilities over none): each loss is the empty sum, 0
        losses[:] = 0.0
    else:
        buf = np.empty((R, V), dtype=np.float64)
        hb = np.empty((R, H), dtype=np.float64)
    for s in range(0, N if V else 0, R):
        e = min(s + R, N)
        n = e - s
        # a block always has R rows (a multiple of ALIGN), the last one padded with zero rows,
        # so that every row goes through the same BLAS micro-kernel (see block_rows)
        hb[:n] = L.h[s:e]
        hb[n:] = 0.0
        if w64 is not None:
            lg = np.matmul(hb, w64.T, out=buf)
        else:
            lg = buf
            for v0, v1, ws in _slices(L.w, wsl):
                np.matmul(hb, ws.T, out=lg[:, v0:v1])
        if b64 is not None:
            lg += b64
        rows, out, t = lg[:n], losses[s:e], p.target[s:e]
        if p.options:  # z_loss / logit_softcap: the options' kernels, which copy each row
            # before writing its gradient, so the gradient may overwrite the logits in place
            pb = copy.copy(p)
            pb.x, pb.target = rows, t
            out[:] = _option_rows(pb, (den or 1.0) if grad else 1.0, rows if grad else None)
            if not grad:
                continue
        elif not grad:
            with parallel_guard():
                if p.labels_mode:
                    _k.cross_entropy_labels_rows(rows, t, p.weight, p.has_weight, p.ignore_index,
                                                 p.eps, p.odd, p.fast, out)
                else:
                    _k.cross_entropy_probs_rows(rows, t, p.weight, p.has_weight, p.eps, p.odd,
                                                p.fast, out)
            continue
        else:  # the gradient of the block's logits, in place (the kernels allow it)
            with parallel_guard():
                if p.labels_mode:
                    _k.cross_entropy_labels_grad_rows(rows, t, p.weight, p.has_weight,
                                                      p.ignore_index, p.eps, den or 1.0, p.odd,
                                                      p.fast, out, rows)
                else:
                    _k.cross_entropy_probs_grad_rows(rows, t, p.weight, p.has_weight, p.eps, den,
                                                     p.odd, p.fast, out, rows)
        if p.labels_mode and den == 0.0:  # a 'mean' over zero weight: nan rows, as cross_entropy
            rows[t != p.ignore_index] = np.nan
        lg[n:] = 0.0
        if row_scale is not None:  # the gradient of sum_n row_scale[n] loss_n ('none' only)
            rows *= row_scale[s:e, None]
        with np.errstate(over="ignore"):
            if p.unscale:
                np.ldexp(rows, p.unscale, out=rows)
            # G @ W, not (W^T G^T)^T: the latter ran 7 times faster here, but its rows then
            # depended on the block size
            if f64:
                dh[s:e] = cast_result((lg @ w64)[:n], L.dtype)
        if f64:
            for v0 in range(0, V, tmp.shape[0]):
                v1 = min(v0 + tmp.shape[0], V)
                np.matmul(lg[:, v0:v1].T, hb, out=tmp[: v1 - v0])
                dw[v0:v1] += tmp[: v1 - v0]
        else:  # per float64 slice of the weight: G W summed over the slices in order, G^T h
            dhb[:] = 0.0
            for v0, v1, ws in _slices(L.w, wsl):
                dhb += lg[:, v0:v1] @ ws
                np.matmul(lg[:, v0:v1].T, hb, out=tmp[: v1 - v0])
                _kl.add_to_float32_pair(tmp[: v1 - v0], dw[v0:v1], dw_lo[v0:v1])
            with np.errstate(over="ignore"):
                dh[s:e] = cast_result(dhb[:n], L.dtype)
        if db is not None:
            db += lg.sum(axis=0)
    loss = p.reduce(losses)
    if not grad:
        return loss
    dh = dh.reshape(L.hidden_shape)
    with np.errstate(over="ignore"):
        if not f64 and L.dtype != np.float32:  # hi is float32's rounding; others round hi + lo
            dw = cast_result(dw.astype(np.float64) + dw_lo, L.dtype)
        res = (loss, dh, dw)
        if db is not None:
            res += (db if f64 else cast_result(db, L.dtype),)
    return res


def linear_cross_entropy(hidden, weight, target, *, bias=None, chunk_size=None, class_weight=None,
                         ignore_index=-100, reduction="mean", label_smoothing=0.0, z_loss=0.0,
                         logit_softcap=None):
    r"""The cross-entropy of the logits ``hidden @ weight.T + bias``, without forming them.

    The same loss as ``cross_entropy(hidden @ weight.T + bias, target, ...)`` (class axis
    last), with the products in float64, and the logits computed and consumed a block of rows
    at a time: the memory is that of one block, not of the ``N x V`` logits.

    Parameters
    ----------
    hidden : array_like
        The features, shape ``(..., H)`` (float16, bfloat16, float32 or float64).
    weight : array_like
        The projection, shape ``(V, H)``, as in ``torch.nn.functional.linear``; the dtype of
        ``hidden``.
    target : array_like
        Class indices of shape ``hidden.shape[:-1]``, or probabilities of shape
        ``hidden.shape[:-1] + (V,)`` (these are ``N x V`` themselves).
    bias : array_like, optional
        Shape ``(V,)``, the dtype of ``hidden``.
    chunk_size : int, optional
        Rows (tokens) per block, rounded up to a multiple of 16. Default: the largest block
        whose work memory fits in a quarter of the logits' size (with a margin; at most 256 MiB
        and 1/16 of the free memory; at least 16 rows; see :func:`block_rows`). The loss does
        not depend on it (see Notes).
    class_weight : array_like, optional
        Per-class weights, shape ``(V,)``: ``cross_entropy``'s ``weight``, renamed because
        ``weight`` is the projection here (the name of ``torch.nn.functional.linear``).
    ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As for :func:`crossent.cross_entropy` (``reduction='partial'`` included; the z-loss
        and the soft-cap apply to the float64 products, through the options' kernels).

    Returns
    -------
    numpy scalar, ndarray or Partial
        As :func:`crossent.cross_entropy`, in the dtype of ``hidden``.

    Notes
    -----
    Each block's logits :math:`z_{nv} = \sum_k h_{nk} W_{vk} + b_v` are formed in float64
    (NumPy's matmul, BLAS), and the loss kernels of :func:`crossent.cross_entropy` run on
    these float64 rows, rounding to the dtype of ``hidden`` once. The per-item losses are
    reduced by the exact sums of ``reduction='sum'``/``'mean'``, so the result does not depend
    on ``chunk_size`` (a row's products do not depend on the block it is in;
    ``tests/test_linear_cross_entropy.py`` checks it).

    Accuracy: float32, float16 and bfloat16 products are exact in float64 and their
    accumulation errs by at most about :math:`H\,2^{-53}\sum_k |h_{nk} W_{vk}|`; the loss is
    then within 1 ulp of the loss of the exact products (the bounds table's
    ``linear_cross_entropy`` row) unless the dot products cancel by a factor near
    :math:`2^{29}/H`. In float64 the logits carry the error of a float64 dot product,
    :math:`\lvert \hat z - z\rvert \le \gamma_H \sum_k |h_{nk} W_{vk}|`, and the loss moves by
    at most twice that (its derivative in each logit has absolute value at most 1 per item):
    a bound in the conditioning of the dot products, not in ulp of the loss.

    Examples
    --------
    >>> import numpy as np, crossent
    >>> h = np.array([[1.0, 2.0], [0.5, -1.0]]); W = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> float(crossent.linear_cross_entropy(h, W, np.array([2, 0])))
    0.4359873742761626
    """
    _rounding.unsupported("linear_cross_entropy")
    L = _Linear(hidden, weight, target, bias, chunk_size, class_weight, ignore_index, reduction,
                label_smoothing, z_loss, logit_softcap)
    return _run(L, grad=False)


def linear_cross_entropy_value_and_grad(hidden, weight, target, *, bias=None, chunk_size=None,
                                        class_weight=None, ignore_index=-100, reduction="mean",
                                        label_smoothing=0.0, z_loss=0.0, logit_softcap=None):
    r"""The loss of :func:`linear_cross_entropy` and its gradients, without forming the logits.

    Parameters
    ----------
    hidden, weight, target, bias, chunk_size, class_weight, ignore_index, reduction, label_smoothing, z_loss, logit_softcap
        As for :func:`linear_cross_entropy`.

    Returns
    -------
    loss : numpy scalar, ndarray or Partial
        As :func:`linear_cross_entropy`.
    dhidden : ndarray
        The gradient in ``hidden`` (its shape and dtype).
    dweight : ndarray
        The gradient in ``weight``, shape ``(V, H)``.
    dbias : ndarray
        The gradient in ``bias``, shape ``(V,)``; returned only when ``bias`` is given.

    Notes
    -----
    With :math:`G` the gradient of the loss in the logits (the fused gradient of
    :func:`crossent.cross_entropy_value_and_grad`, formed block by block in place of the
    block's logits),

    .. math:: \frac{\partial \ell}{\partial h} = G W,\qquad
              \frac{\partial \ell}{\partial W} = G^\top h,\qquad
              \frac{\partial \ell}{\partial b} = \textstyle\sum_n G_{n\cdot},

    three products per block, in float64, rounded once to the dtype of ``hidden``. For
    ``reduction='none'`` and ``'partial'`` the gradients are those of the sum of the per-item
    losses (as :func:`crossent.cross_entropy_value_and_grad`).

    The rows of ``dhidden`` do not depend on ``chunk_size``; ``dweight`` and ``dbias`` are
    sums over the blocks in float64, so their last float64 bits do (rarely the last bit of a
    float32 result). Memory beyond the inputs and the results: one block of float64 logits,
    the accumulator of ``dweight`` beyond the result (none for float64; for narrower inputs a
    float32 array ``lo`` such that the float32 pair ``hi + lo`` carries about 48 bits), and two
    2 MiB scratch slices (narrower inputs are converted to float64 a slice of ``weight`` at a
    time).

    Examples
    --------
    >>> import numpy as np, crossent
    >>> h = np.array([[1.0, 2.0]]); W = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> loss, dh, dW = crossent.linear_cross_entropy_value_and_grad(h, W, np.array([1]))
    >>> dh.shape, dW.shape
    ((1, 2), (2, 2))
    """
    _rounding.unsupported("linear_cross_entropy_value_and_grad")
    L = _Linear(hidden, weight, target, bias, chunk_size, class_weight, ignore_index, reduction,
                label_smoothing, z_loss, logit_softcap)
    return _run(L, grad=True)
