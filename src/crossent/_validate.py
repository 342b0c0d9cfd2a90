"""Validation and reshaping shared by the public wrappers.

Kernels assume validated input; every check lives here or in the thin public layer. Each
failure is a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
whose message names the argument.
"""

from __future__ import annotations

import contextlib
import operator
import threading

import numpy as np

__all__ = [
    "as_float_array",
    "normalize_axis",
    "to_rows",
    "from_rows",
    "compute_dtype",
    "check_base",
    "parallel_guard",
]

_FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a native-byte-order float16/float32/float64 ndarray.

    Booleans and integers become float64 (as ``scipy.special.logsumexp`` does); complex,
    object, string and datetime inputs raise ``TypeError``. Other float widths
    (longdouble) are rejected rather than silently rounded.
    """
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be array-like of real numbers: {exc}") from None
    kind = a.dtype.kind
    if kind in "biu":
        return a.astype(np.float64)
    if kind != "f":
        raise TypeError(f"{name} must have a real floating-point dtype, got dtype {a.dtype}")
    if a.dtype.type not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} has dtype {a.dtype}; crossent supports float16, float32 and float64"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """A non-negative axis index, as ``numpy.lib.array_utils.normalize_axis_index``."""
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {axis!r}") from None
    if ndim == 0:
        raise ValueError(f"{name}={ax} is out of range for a 0-d input (it has no class axis)")
    if not -ndim <= ax < ndim:
        raise ValueError(f"{name}={ax} is out of range for an input with {ndim} dimensions")
    return ax % ndim


def to_rows(a: np.ndarray, axis: int) -> np.ndarray:
    """A C-contiguous 2-D view ``(rows, C)`` of ``a`` with ``axis`` last.

    No copy when ``axis`` is already last and ``a`` is C-contiguous, aligned and writeable;
    otherwise one copy (documented: a class axis that is not last costs a transposed copy, and
    a read-only or unaligned input is copied rather than compiled for).
    """
    moved = np.moveaxis(a, axis, -1)
    c = moved.shape[-1]
    if c == 0:  # reshape(-1, 0) is ambiguous (any row count fits 0 elements): count the rows
        return np.empty((int(np.prod(moved.shape[:-1])), 0), dtype=a.dtype)
    # C-contiguous, aligned and writeable: Numba types read-only and unaligned arrays as distinct
    # types, so passing one through would compile every kernel a second time (tens of seconds);
    # copying such an input once costs far less
    return np.require(moved, requirements=["C", "A", "W"]).reshape(-1, c)


def from_rows(rows: np.ndarray, shape_moved: tuple, axis: int) -> np.ndarray:
    """Inverse of :func:`to_rows` for an output with the class axis kept."""
    return np.moveaxis(rows.reshape(shape_moved), -1, axis)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel reads: float16 is widened to float32 (exactly) at the boundary."""
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_base(base) -> float | None:
    """Validate a logarithm base: ``None`` (nats) or a positive real number other than 1."""
    if base is None:
        return None
    if isinstance(base, (bool, np.bool_)) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be None or a positive real number, got {base!r}")
    b = float(base)
    if not (b > 0 and b != 1 and np.isfinite(b)):
        raise ValueError(f"base must be a positive finite number other than 1, got {base!r}")
    return b


_WORKQUEUE_LOCK = threading.Lock()
_LAYER_IS_THREAD_SAFE = None  # unknown until Numba has launched a parallel region


def parallel_guard():
    """A context for calling a ``parallel=True`` kernel.

    Numba's ``workqueue`` threading layer (its fallback when neither TBB nor OpenMP is
    available) is not thread-safe: concurrent launches from several Python threads abort the
    process. Under that layer (or before the layer is known) kernel calls are serialized by a
    lock; under ``omp`` or ``tbb`` the guard does nothing.
    """
    global _LAYER_IS_THREAD_SAFE
    if _LAYER_IS_THREAD_SAFE is None:
        import numba

        try:
            _LAYER_IS_THREAD_SAFE = numba.threading_layer() != "workqueue"
        except ValueError:  # no parallel region launched yet
            return _WORKQUEUE_LOCK
    return contextlib.nullcontext() if _LAYER_IS_THREAD_SAFE else _WORKQUEUE_LOCK
