"""Row functions for a user's own ``@numba.njit`` code: the kernels of the batch API, one row
at a time.

Each function takes one 1-D float32 or float64 array (contiguous or strided) and computes what
the batch API computes for that row, bit for bit (``tests/test_bridge_numba.py``):

============================================ ===================================================
``logsumexp_row(x)``                         ``crossent.logsumexp(x)``
``log_softmax_row(x, out)``                  ``crossent.log_softmax(x)`` into ``out``
``softmax_row(x, out)``                      ``crossent.softmax(x)`` into ``out``
``cross_entropy_row(x, label)``              ``crossent.cross_entropy(x[None], [label],
                                             reduction="none")[0]``
``cross_entropy_grad_row(x, label, scale,    returns the loss of ``cross_entropy_row``, writes
out)``                                       ``scale * (softmax(x) - onehot(label))``: the
                                             gradient of ``cross_entropy_value_and_grad`` with
                                             ``reduction="sum"`` and the class weight ``scale``
============================================ ===================================================

The scalar results have the dtype of ``x`` (float32 rows: the float64 value rounded to odd,
then to float32, as the batch API does); ``out`` has the length of ``x``, any float dtype
(float32 or float64 as the batch API's output; it may be ``x`` itself). They are ordinary
Numba dispatchers: callable from ``@njit`` functions (compiled into them) and from Python.

Costs: each call allocates its scratch rows (two of ``C`` float64 rounded up to 32, as a task
of the batch kernels does once per 32 rows), and a strided ``x`` or ``out`` is copied into a
contiguous row first (the row machinery reads and writes contiguous memory).
A bad ``label`` (outside ``0 .. C-1``) or an ``out`` of the wrong length raises ``ValueError``;
the functions never read or write out of bounds.
"""

from __future__ import annotations

import numpy as np

from .kernels.loss import _label_loss
# the kernels' own helpers and decorator, as kernels.softmax has them (bridges do not reach
# into the kernel base)
from .kernels.softmax import (DD_ACC, INF, NAN, OK, _fill, _log_softmax_row, _round_sum,
                              _row_stats, _scale_dd, _scaled_terms, _term_of, _term_rows,
                              fast_two_sum, fma, jit, two_sum)

__all__ = ["logsumexp_row", "log_softmax_row", "softmax_row", "cross_entropy_row",
           "cross_entropy_grad_row"]


@jit
def _as_result(x, r):
    """``r`` (float64) in the dtype of ``x``: float32 rows get the float32 cast of the
    round-to-odd value, as the batch kernels' float32 outputs."""
    res = np.empty(1, dtype=x.dtype)
    res[0] = r
    return res[0]


@jit
def _stats(x):
    """The batch kernels' row statistics of ``x`` (copied when strided) and the scratch rows:
    ``(row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast)``."""
    row = np.ascontiguousarray(x)
    fast = x.itemsize == 4  # float32 rows: the batch API's narrow path (fast exp, round to odd)
    bt, be = _term_rows(row.shape[0])
    acc = np.empty(DD_ACC)
    st, m, hi, lo, Lh, Ll, Lsh, Lsl = _row_stats(row, bt, be, acc, fast)
    return row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast


@jit
def _check_out(x, out):
    if out.shape[0] != x.shape[0]:
        raise ValueError("out must have the length of x")


@jit
def logsumexp_row(x):
    """``log(sum(exp(x)))`` of a 1-D float32/float64 array, as :func:`crossent.logsumexp`."""
    if x.shape[0] == 0:
        return _as_result(x, -INF)
    row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast = _stats(x)
    if st != OK:
        return _as_result(x, NAN if st == 1 else -INF)  # 1: NAN_ROW, else all -inf
    a, b = two_sum(m, Lh)
    return _as_result(x, _round_sum(a, b + Ll, fast))


@jit
def log_softmax_row(x, out):
    """Write ``log_softmax(x)`` into ``out`` (as :func:`crossent.log_softmax`)."""
    _check_out(x, out)
    if x.shape[0] == 0:
        return
    row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast = _stats(x)
    o = np.empty(row.shape[0], dtype=out.dtype)  # contiguous; copied to out (may alias x)
    if st != OK:
        _fill(o, NAN)
    else:
        _log_softmax_row(row, m, Lh, Ll, fast, o)
    out[:] = o


@jit
def softmax_row(x, out):
    """Write ``softmax(x)`` into ``out`` (as :func:`crossent.softmax`)."""
    _check_out(x, out)
    if x.shape[0] == 0:
        return
    row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast = _stats(x)
    o = np.empty(row.shape[0], dtype=out.dtype)
    if st != OK:
        _fill(o, NAN)
    else:
        ch, cl = _scale_dd(1.0, 0.0, hi, lo, 1.0)
        _scaled_terms(bt, be, ch, cl, o, fast)
    out[:] = o


@jit
def _check_label(x, label):
    if label < 0 or label >= x.shape[0]:
        raise ValueError("label must be a class index in [0, len(x))")


@jit
def cross_entropy_row(x, label):
    """``-log_softmax(x)[label]``, as ``crossent.cross_entropy(x[None], [label],
    reduction="none")[0]``."""
    _check_label(x, label)
    row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast = _stats(x)
    if st != OK:
        return _as_result(x, NAN)
    empty = np.empty(0)
    r = _label_loss(row, label, m, Lh, Ll, Lsh, Lsl, 1.0, 0.0, empty, False, empty, empty, empty,
                    acc, fast)
    return _as_result(x, r)


@jit
def cross_entropy_grad_row(x, label, scale, out):
    """The loss of :func:`cross_entropy_row`; writes ``scale * (softmax(x) - onehot(label))``
    into ``out`` (as the gradient of ``crossent.cross_entropy_value_and_grad`` with
    ``reduction="sum"`` and class weight ``scale``: ``scale / S`` in double-double, each
    entry rounded once; the label's entry as ``-scale (S - e^{x_y - m}) / S``, no
    cancellation). ``scale`` is a finite float64 with ``2**-64 <= scale <= 2**64`` (or 0)."""
    _check_label(x, label)
    _check_out(x, out)
    row, st, m, hi, lo, Lh, Ll, Lsh, Lsl, bt, be, acc, fast = _stats(x)
    o = np.empty(row.shape[0], dtype=out.dtype)
    if st != OK:
        _fill(o, NAN)
        out[:] = o
        return _as_result(x, NAN)
    empty = np.empty(0)
    loss = _label_loss(row, label, m, Lh, Ll, Lsh, Lsl, 1.0, 0.0, empty, False, empty, empty,
                       empty, acc, fast)
    w = np.float64(scale)
    ch, cl = _scale_dd(w, 0.0, hi, lo, 1.0)
    ty = _term_of(bt[label])
    a, b = two_sum(hi, -ty)
    rh, rl = fast_two_sum(a, (b + lo) - (0.0 if fast else be[label]))
    gy = -fma(ch, rh, ch * rl + cl * rh)
    _scaled_terms(bt, be, ch, cl, o, fast)
    o[label] = gy
    out[:] = o
    return _as_result(x, loss)
