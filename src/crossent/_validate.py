"""The input rules of crossent, written once: validation and reshaping shared by the public
wrappers and by the oracle :mod:`crossent.reference`.

Kernels assume validated input; every check lives here or in the thin public layer. Each
failure is a ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, bad value)
whose message names the argument (and, for a bad entry, its index and value).

Nothing here computes a result: the helpers convert, compare and count, so the oracle can use
them without depending on the kernels (it imports this module, never :mod:`crossent.kernels`).
Because both sides call the same helpers in the same order, the public functions and the
oracle accept exactly the same inputs and raise the same errors; ``tests/test_validation.py``
checks that on one table. The rules are written out in ``docs/input-rules.md``.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import operator
import sys
import threading
from dataclasses import dataclass

import numpy as np

__all__ = [
    "as_float_array",
    "as_int",
    "normalize_axis",
    "ReductionAxes",
    "reduction_axes",
    "to_rows",
    "from_rows",
    "scalar_if_0d",
    "scale_factors",
    "check_no_q",
    "compute_dtype",
    "is_bfloat16",
    "is_narrow",
    "work_dtype",
    "result_dtype",
    "cast_result",
    "check_base",
    "check_mode",
    "check_probabilities",
    "check_pmf_sums",
    "pmf_inputs",
    "loglik_inputs",
    "as_num_classes",
    "as_samples",
    "LossInputs",
    "loss_inputs",
    "check_out",
    "parallel_guard",
    "loss_options",
    "BinaryInputs",
    "binary_inputs",
    "check_beta",
]

_FLOAT_DTYPES = (np.float16, np.float32, np.float64)
REDUCTIONS = ("none", "mean", "sum", "partial")


def _where(flat_index: int, shape: tuple) -> str:
    """``"i, j"``: the multi-index of a flat (C-order) position, for messages."""
    return ", ".join(str(int(j)) for j in np.unravel_index(int(flat_index), shape))


def is_bfloat16(dtype) -> bool:
    """Whether ``dtype`` is ``ml_dtypes.bfloat16``.

    ml_dtypes is not imported here: a bfloat16 array can only exist once ml_dtypes is loaded,
    so when it is absent from ``sys.modules`` nothing is bfloat16.
    """
    m = sys.modules.get("ml_dtypes")
    return m is not None and np.dtype(dtype) == np.dtype(m.bfloat16)


def as_float_array(x, name: str) -> np.ndarray:
    """``x`` as a native-byte-order float16/bfloat16/float32/float64 ndarray.

    Booleans and integers become float64 (as ``scipy.special.logsumexp`` does); complex,
    object, string and datetime inputs raise ``TypeError``. Other float widths
    (longdouble) are rejected rather than silently rounded. bfloat16 is
    ``ml_dtypes.bfloat16`` (NumPy kind ``"V"``).
    """
    try:
        a = np.asarray(x)
    except Exception as exc:  # ragged nested lists and the like
        raise TypeError(f"{name} must be array-like of real numbers: {exc}") from None
    kind = a.dtype.kind
    if kind in "biu":
        return a.astype(np.float64)
    if kind == "V" and is_bfloat16(a.dtype):
        return a
    if kind != "f":
        raise TypeError(f"{name} must have a real floating-point dtype, got dtype {a.dtype}")
    if a.dtype.type not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} has dtype {a.dtype}; crossent supports float16, bfloat16, float32 and float64"
        )
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    return a


def as_int(value, name: str) -> int:
    """An integer parameter: a Python or NumPy integer, not a bool (as PyTorch's int
    arguments: ``dim=True`` is a ``TypeError`` there too)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got a bool ({value!r})")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {value!r}") from None


def normalize_axis(axis, ndim: int, name: str = "axis") -> int:
    """A non-negative axis index, as ``numpy.lib.array_utils.normalize_axis_index``."""
    ax = as_int(axis, name)
    if ndim == 0:
        raise ValueError(f"{name}={ax} is out of range for a 0-d input (it has no class axis)")
    if not -ndim <= ax < ndim:
        raise ValueError(f"{name}={ax} is out of range for an input with {ndim} dimensions")
    return ax % ndim


@dataclass(frozen=True)
class ReductionAxes:
    """The axes a function of the softmax family works along, merged into one.

    ``shape`` is the input's, ``axes`` the sorted, distinct, non-negative axes, ``batch`` the
    shape without them and ``K`` the product of their lengths (1 for no axes, so a 0-d input
    is one slice of one element).
    """

    shape: tuple
    axes: tuple
    batch: tuple
    K: int

    def merged(self, a: np.ndarray) -> np.ndarray:
        """``a`` with the axes moved last (in order) and merged: shape ``batch + (K,)``."""
        keep = [i for i in range(a.ndim) if i not in self.axes]
        return np.transpose(a, keep + list(self.axes)).reshape(self.batch + (self.K,))

    def unmerged(self, r: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`merged` for a result that keeps the axes (the input's shape)."""
        keep = [i for i in range(len(self.shape)) if i not in self.axes]
        perm = keep + list(self.axes)
        r = r.reshape(self.batch + tuple(self.shape[i] for i in self.axes))
        return np.transpose(r, np.argsort(perm)) if perm else r

    def reduced(self, r: np.ndarray, keepdims: bool) -> np.ndarray:
        """A result of shape ``batch`` with the axes dropped, or kept with length 1."""
        if not keepdims:
            return r.reshape(self.batch)
        return r.reshape(tuple(1 if i in self.axes else n for i, n in enumerate(self.shape)))


def reduction_axes(axis, shape: tuple, name: str = "axis") -> ReductionAxes:
    """The ``axis`` of ``logsumexp``, ``log_softmax`` and ``softmax``, as NumPy reductions
    take it: an integer, a tuple of distinct integers, or ``None`` (every axis).

    A 0-d input is one element (as in SciPy): ``axis`` may then be ``None``, ``0``, ``-1``
    or a tuple of those, and the result is 0-d.
    """
    ndim = len(shape)
    if axis is None:
        axes = tuple(range(ndim))
    else:
        items = axis if isinstance(axis, tuple) else (axis,)
        vals = [as_int(v, name) for v in items]
        n = max(ndim, 1)  # a 0-d input is taken as the one element of a 1-d one
        for v in vals:
            if not -n <= v < n:
                raise ValueError(f"{name}={axis} is out of range for an input with {ndim} dimensions")
        axes = sorted({v % n for v in vals})
        if len(axes) != len(vals):
            raise ValueError(f"{name}={axis} repeats an axis")
        axes = tuple(axes) if ndim else ()
    batch = tuple(n for i, n in enumerate(shape) if i not in axes)
    K = int(np.prod([shape[i] for i in axes], dtype=np.int64))
    return ReductionAxes(tuple(shape), axes, batch, K)


def scale_factors(x: np.ndarray, b, return_sign):
    """``logsumexp``'s ``b`` and ``return_sign``: ``return_sign`` a bool; ``b`` ``None`` or
    real, finite, broadcastable with ``x``. Returns ``(x, b)`` broadcast to one shape: ``x``
    in the result dtype (``numpy.result_type`` of ``x`` and ``b``, as SciPy) and ``b`` as
    float64 (or ``None``)."""
    if not isinstance(return_sign, (bool, np.bool_)):
        raise TypeError(f"return_sign must be True or False, got {return_sign!r}")
    if b is None:
        return x, None
    bf = as_float_array(b, "b")
    try:
        shape = np.broadcast_shapes(x.shape, bf.shape)
    except ValueError:
        raise ValueError(
            f"b must broadcast with x (as in SciPy), got x.shape={x.shape} and b.shape={bf.shape}"
        ) from None
    x = np.broadcast_to(x, shape)
    bad = np.flatnonzero(~np.isfinite(bf))
    if bad.size:
        i = int(bad[0])
        at = f"b[{_where(i, bf.shape)}]" if bf.ndim else "b"
        raise ValueError(f"b must be finite; {at} = {bf.reshape(-1)[i]}")
    x = x.astype(np.result_type(x.dtype, bf.dtype), copy=False)
    return x, np.broadcast_to(bf.astype(np.float64), x.shape)


def scalar_if_0d(r):
    """One rule for every function: a 0-d result is a NumPy scalar (as NumPy's reductions
    and SciPy return); arrays are returned as they are."""
    return r[()] if isinstance(r, np.ndarray) and r.ndim == 0 else r


def check_no_q(q, fname: str = "entropy") -> None:
    """``entropy`` takes one PMF. SciPy's ``entropy(pk, qk)`` is the relative entropy: point
    to :func:`crossent.kl_divergence` instead of accepting or ignoring a second PMF."""
    if q:
        raise TypeError(
            f"{fname}() takes one PMF p (base, axis and check are keywords); for SciPy's "
            f"entropy(p, q), the relative entropy D(p || q), use kl_divergence(p, q)"
        )


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
    """The dtype a kernel reads: float16 and bfloat16 are widened to float32 (exactly) at the
    boundary."""
    return np.dtype(np.float32) if is_narrow(dtype) else dtype


def is_narrow(dtype) -> bool:
    """float16 or bfloat16: formats whose results are computed in float64 and rounded once by
    :func:`cast_result`."""
    return np.dtype(dtype) == np.float16 or is_bfloat16(dtype)


def work_dtype(dtype) -> np.dtype:
    """The dtype of the kernels' output buffer for a result of ``dtype``: float64 for the
    narrow formats (rounded once at the end by :func:`cast_result`), else ``dtype``."""
    return np.dtype(np.float64) if is_narrow(dtype) else np.dtype(dtype)


def result_dtype(*arrays) -> np.dtype:
    """``numpy.result_type`` that knows bfloat16: bfloat16 with bfloat16 stays bfloat16, with
    any other float (float16 included, as in JAX) it promotes as float32 would."""
    dts = [a.dtype for a in arrays]
    if not any(is_bfloat16(d) for d in dts):
        return np.result_type(*arrays)
    if all(is_bfloat16(d) for d in dts):
        return dts[0]
    return np.result_type(*(np.float32 if is_bfloat16(d) else d for d in dts))


def _round_to_odd_float32(v: np.ndarray) -> np.ndarray:
    """float64 -> float32 rounded to odd: the nearest float32, or where that is inexact, of the
    two float32 neighbours of ``v`` the one whose last significand bit is 1 (a finite ``v``
    beyond float32's range gives the largest finite float32 of its sign: odd)."""
    with np.errstate(over="ignore", invalid="ignore"):
        y = v.astype(np.float32)
        inexact = (y.astype(np.float64) != v) & ~np.isnan(v)
    bits = y.view(np.uint32)
    fix = inexact & ((bits & 1) == 0)
    if fix.any():
        # the neighbour toward v: one step away from zero when |v| > |y|, toward zero otherwise
        # (sign-magnitude bits; a signed zero steps to the smallest subnormal of its sign and
        # an infinity from overflow back to the largest finite number)
        away = np.abs(v) > np.abs(y.astype(np.float64))
        bits = np.where(fix, np.where(away, bits + np.uint32(1), bits - np.uint32(1)), bits)
    return bits.view(np.float32)


def cast_result(values, dtype):
    """Round float64 results once to ``dtype``: NumPy's cast (to nearest, ties to even) except
    for bfloat16.

    ml_dtypes' float64 -> bfloat16 cast rounds twice (through float32) and can be wrong next to
    a bfloat16 midpoint. Here a float64 value reaches bfloat16 through float32 rounded to odd,
    whose cast to bfloat16 (to nearest) is the correct rounding of the float64 value (24 >= 8 + 2
    bits: Boldo and Melquiond 2008). A float64 value that is itself the round-to-odd of an
    exact value (the kernels' narrow outputs) is thus rounded correctly from the exact value.
    A NumPy scalar gives a scalar; anything else an array.
    """
    dtype = np.dtype(dtype)
    scalar = np.ndim(values) == 0 and not isinstance(values, np.ndarray)
    a = np.asarray(values)
    if is_bfloat16(dtype):
        res = _round_to_odd_float32(a.astype(np.float64, copy=False)).astype(dtype)
    else:
        with np.errstate(over="ignore"):
            res = a.astype(dtype, copy=False)
    return res[()] if scalar else res


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


# ---------------------------------------------------------------------------------------------
# probabilities (the PMF functions, categorical_log_likelihood and probability targets)


def check_mode(check):
    """The ``check`` keyword of the PMF functions: ``None`` (default: every entry finite and
    non-negative), ``True`` (also every row sums to 1) or ``False`` (no check at all)."""
    if check is None or isinstance(check, (bool, np.bool_)):
        return None if check is None else bool(check)
    raise TypeError(f"check must be None, True or False, got {check!r}")


_INF_BITS = {2: 0x7C00, 4: 0x7F800000, 8: 0x7FF0000000000000}  # +inf of float16/32/64
_BF16_INF_BITS = 0x7F80


def check_probabilities(a: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` naming ``name`` and the first bad index unless every entry of
    ``a`` is finite and non-negative.

    The cheap pass of the PMF functions: one vectorized maximum over the bits. As unsigned
    integers, the non-negative finite floats are exactly those below the bits of +inf
    (a sign bit makes any negative value, nan or -0.0 larger); only when that fails is the
    input searched (-0.0 passes there).
    """
    if a.size == 0:
        return
    inf_bits = _BF16_INF_BITS if is_bfloat16(a.dtype) else _INF_BITS[a.itemsize]
    if a.view(f"u{a.itemsize}").max() < inf_bits:
        return
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~(np.isfinite(a) & (a >= 0)))
    if bad.size == 0:
        return  # -0.0 entries
    i = int(bad[0])
    at = f"{name}[{_where(i, a.shape)}]" if a.ndim else name
    raise ValueError(f"{name} must be finite and non-negative; {at} = {a.reshape(-1)[i]}")


def check_pmf_sums(a: np.ndarray, axis: int, name: str, dtype) -> None:
    """The ``check=True`` rule: every slice of ``a`` along ``axis`` sums to 1 within ``K eps``
    (``eps`` of ``dtype``, the argument's own format; ``K eps`` bounds the error of normalizing
    by a floating-point sum).
    An empty class axis sums to 0 and fails. Run after :func:`check_probabilities`."""
    k = a.shape[axis]
    eps = 2.0**-7 if is_bfloat16(dtype) else float(np.finfo(dtype).eps)  # bfloat16: p = 8
    tol = max(k, 1) * eps
    # float64 sum: error <= log2(K) 2**-53 per row, far below tol
    sums = np.asarray(np.sum(a, axis=axis, dtype=np.float64))
    bad = np.flatnonzero(~(np.abs(sums - 1.0) <= tol))  # also catches an inf sum
    if bad.size:
        i = int(bad[0])
        idx = [str(int(j)) for j in np.unravel_index(i, sums.shape)] if sums.ndim else []
        idx.insert(axis, ":")
        raise ValueError(
            f"{name} does not sum to 1 along the class axis: {name}[{', '.join(idx)}] sums to "
            f"{float(sums.reshape(-1)[i])!r}, outside the tolerance K*eps = {tol:.3g} "
            f"(K = {k}, dtype {np.dtype(dtype).name})"
        )


def pmf_inputs(arrays, names, axis, base, check):
    """The operands of ``entropy`` (one array) or ``cross_entropy_pmf``/``kl_divergence``
    (two, broadcast against each other), validated in this order: ``check``, ``base``, the
    dtypes, the shapes, ``axis``, then the entries (unless ``check=False``) and the row sums
    (``check=True``).

    Returns ``(arrays, dtype, shape, axis, base)``: the float arrays as given (not
    broadcast), the result dtype, the broadcast shape, the normalized axis and the base
    (``None`` or a float).
    """
    mode = check_mode(check)
    b = check_base(base)
    arrs = [as_float_array(a, n) for a, n in zip(arrays, names)]
    dtype = result_dtype(*arrs)
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrs))
    except ValueError:
        got = " and ".join(f"{n}.shape={a.shape}" for a, n in zip(arrs, names))
        raise ValueError(f"{' and '.join(names)} must have broadcastable shapes, got {got}") from None
    ax = normalize_axis(axis, len(shape), "axis")
    if mode is not False:
        for a, n in zip(arrs, names):
            check_probabilities(a, n)
    if mode:  # each argument within the rounding of its own format
        for a, n in zip(arrs, names):
            check_pmf_sums(np.broadcast_to(a, shape), ax, n, a.dtype)
    return arrs, dtype, shape, ax, b


def as_num_classes(num_classes) -> int:
    """``num_classes``: an integer (not a bool) of at least 1."""
    k = as_int(num_classes, "num_classes")
    if k < 1:
        raise ValueError(f"num_classes must be at least 1, got {k}")
    return k


def as_samples(samples, num_classes: int) -> np.ndarray:
    """Categorical samples (class indices in ``0 .. num_classes - 1``, any shape) as a flat
    int64 array. An empty float array (``[]``) counts as no samples."""
    try:
        s = np.asarray(samples)
    except Exception as exc:
        raise TypeError(f"samples must be array-like of integers: {exc}") from None
    if s.dtype.kind not in "iu":
        if s.dtype.kind == "f" and s.size == 0:
            s = s.astype(np.int64)
        else:
            raise TypeError(f"samples must have an integer dtype (class indices), got {s.dtype}")
    s = s.reshape(-1)
    if s.size == 0:
        return s.astype(np.int64)
    lo, hi = int(s.min()), int(s.max())
    if lo < 0 or hi >= num_classes:
        bad = lo if lo < 0 else hi
        raise ValueError(f"samples contains {bad}, outside the classes 0..{num_classes - 1}")
    return s.astype(np.int64)  # in range, so a uint64 fits


def loglik_inputs(q, samples, check):
    """``categorical_log_likelihood``'s operands: ``q`` (float, classes on the last axis,
    at least one class) and the samples (flat int64), checked as :func:`pmf_inputs`."""
    mode = check_mode(check)
    a = as_float_array(q, "q")
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"q must have a non-empty class axis (the last), got shape {a.shape}")
    s = as_samples(samples, a.shape[-1])
    if mode is not False:
        check_probabilities(a, "q")
    if mode:
        check_pmf_sums(a, a.ndim - 1, "q", a.dtype)
    return a, s


# ---------------------------------------------------------------------------------------------
# the classification loss


@dataclass(frozen=True)
class LossInputs:
    """The validated arguments of ``cross_entropy`` / ``cross_entropy_value_and_grad``.

    ``labels`` (flat int64, C order of ``batch_shape``) is set for class-index targets,
    ``probs`` (float, the shape of ``logits``) for probability targets.
    """

    logits: np.ndarray
    axis: int
    C: int
    batch_shape: tuple
    reduction: str
    eps: float
    ignore_index: int
    weight: np.ndarray | None
    labels: np.ndarray | None
    probs: np.ndarray | None


def loss_inputs(logits, target, axis, weight, ignore_index, reduction, label_smoothing) -> LossInputs:
    """Validate the loss's arguments, in this order: ``logits``, ``axis``, ``reduction``,
    ``label_smoothing``, ``ignore_index``, ``weight``, ``target``."""
    a = as_float_array(logits, "logits")
    if a.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis), got a 0-d array")
    ax = normalize_axis(axis, a.ndim, "axis")
    C = a.shape[ax]
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, numbers.Real):
        raise TypeError(f"label_smoothing must be a real number, got {label_smoothing!r}")
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    ii = as_int(ignore_index, "ignore_index")
    if not -(2**63) <= ii < 2**63:  # the kernels compare it as an int64 (PyTorch: the same)
        raise ValueError(f"ignore_index must fit in an int64, got {ii}")
    batch_shape = a.shape[:ax] + a.shape[ax + 1:]

    # weight: per-class, finite, non-negative (bools and integers become float64)
    w = None
    if weight is not None:
        w = as_float_array(weight, "weight").astype(np.float64)
        if w.shape != (C,):
            raise ValueError(f"weight must have shape ({C},) (one entry per class), got {w.shape}")
        bad = np.flatnonzero(~(np.isfinite(w) & (w >= 0)))
        if bad.size:
            raise ValueError(f"weight must be finite and non-negative; weight[{bad[0]}] = {w[bad[0]]}")
        w = np.ascontiguousarray(w)

    try:
        t = target if isinstance(target, np.ndarray) else np.asarray(target)
    except Exception as exc:  # ragged nested lists
        raise TypeError(f"target must be array-like of class indices or probabilities: {exc}") from None
    labels = probs = None
    if t.dtype.kind in "iu":
        if t.shape != batch_shape:
            raise ValueError(
                f"target holds class indices, so its shape must be logits.shape without axis "
                f"{ax}: expected {batch_shape}, got {t.shape}"
            )
        flat = t.reshape(-1)
        if flat.dtype == np.uint64 and flat.size and flat.max() > np.iinfo(np.int64).max:
            i = int(np.argmax(flat))
            raise ValueError(f"target[{_where(i, t.shape)}] = {flat[i]} is not a class index in [0, {C})")
        lab = flat.astype(np.int64)
        bad = np.flatnonzero(((lab < 0) | (lab >= C)) & (lab != ii))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"target[{_where(i, t.shape)}] = {lab[i]} is not "
                f"a class index in [0, {C}) nor ignore_index={ii}"
            )
        labels = np.ascontiguousarray(lab)
    elif t.dtype.kind == "f" or is_bfloat16(t.dtype):
        tf = as_float_array(t, "target")
        if tf.shape != a.shape:
            hint = "; class indices need an integer dtype" if tf.shape == batch_shape else ""
            raise ValueError(
                f"target has dtype {t.dtype}, so it holds probabilities and must have the shape of "
                f"logits {a.shape}, got {tf.shape}{hint}"
            )
        check_probabilities(tf, "target")
        if ii != -100:  # as PyTorch: an option that cannot apply is not silently dropped
            raise ValueError(
                f"ignore_index={ii} applies to class-index targets only; target holds "
                f"probabilities (dtype {t.dtype}): leave ignore_index at its default -100 "
                f"(give an item zero probabilities to leave it out of a sum)"
            )
        probs = tf
    else:
        raise TypeError(
            f"target must hold integer class indices or float probabilities, got dtype {t.dtype}"
        )
    return LossInputs(a, ax, C, batch_shape, reduction, eps, ii, w, labels, probs)


def check_out(out, shape: tuple, dtype) -> None:
    """``out=`` of ``cross_entropy_value_and_grad``: ``None`` or a writeable ndarray with the
    shape and dtype of the logits (either byte order)."""
    if out is None:
        return
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape or out.dtype.newbyteorder("=") != dtype:
        raise ValueError(
            f"out must have the shape and dtype of logits {shape} {np.dtype(dtype)}, "
            f"got {out.shape} {out.dtype}"
        )
    if not out.flags.writeable:
        raise ValueError("out must be writeable")


_WORKQUEUE_LOCK = threading.Lock()
_LAYER_IS_THREAD_SAFE = None  # unknown until Numba has launched a parallel region
_NO_GUARD = contextlib.nullcontext()  # reusable


def parallel_guard(parallel=True):
    """A context for calling a ``parallel=True`` kernel.

    Numba's ``workqueue`` threading layer (its fallback when neither TBB nor OpenMP is
    available) is not thread-safe: concurrent launches from several Python threads abort the
    process. Under that layer (or before the layer is known) kernel calls are serialized by a
    lock; under ``omp`` or ``tbb`` the guard does nothing. ``parallel=False``: the kernel is
    told to run on the calling thread (its serial branch launches no parallel region), so
    there is nothing to guard.
    """
    global _LAYER_IS_THREAD_SAFE
    if not parallel:
        return _NO_GUARD
    if _LAYER_IS_THREAD_SAFE is None:
        import numba

        try:
            _LAYER_IS_THREAD_SAFE = numba.threading_layer() != "workqueue"
        except ValueError:  # no parallel region launched yet
            return _WORKQUEUE_LOCK
    return contextlib.nullcontext() if _LAYER_IS_THREAD_SAFE else _WORKQUEUE_LOCK


def loss_options(z_loss, logit_softcap) -> tuple:
    """``(z, c)`` of the loss's two training options: ``z_loss`` a finite real ``>= 0`` and
    ``logit_softcap`` ``None`` (``c = 0.0``: no cap) or a finite real ``> 0``. Bools are not
    numbers here (``TypeError``); everything else wrong is a ``ValueError`` naming the
    argument."""
    if isinstance(z_loss, (bool, np.bool_)) or not isinstance(z_loss, numbers.Real):
        raise TypeError(f"z_loss must be a real number, got {z_loss!r}")
    z = float(z_loss)
    if not (math.isfinite(z) and z >= 0.0):  # math, not numpy: torch.compile traces this
        raise ValueError(f"z_loss must be finite and >= 0, got {z_loss!r}")
    if logit_softcap is None:
        return z, 0.0
    if isinstance(logit_softcap, (bool, np.bool_)) or not isinstance(logit_softcap, numbers.Real):
        raise TypeError(f"logit_softcap must be None or a real number, got {logit_softcap!r}")
    c = float(logit_softcap)
    if not (math.isfinite(c) and c > 0.0):
        raise ValueError(f"logit_softcap must be None or finite and > 0, got {logit_softcap!r}")
    return z, c


def divergence_inputs(p_logits, q_logits, axis, reduction, mask):
    """Validate the arguments of the logit divergences, in this order: ``p_logits``,
    ``q_logits`` (same shape; one float dtype, the wider of the two), ``axis``, ``reduction``,
    ``mask`` (booleans of the batch shape, or None). Returns ``(p, q, axis, batch_shape, keep)``
    with ``keep`` the flat boolean mask (all True without one)."""
    p = as_float_array(p_logits, "p_logits")
    q = as_float_array(q_logits, "q_logits")
    if p.shape != q.shape:
        raise ValueError(f"p_logits and q_logits must have the same shape, got {p.shape} and {q.shape}")
    if p.ndim == 0:
        raise ValueError("p_logits must have at least one dimension (the class axis), got a 0-d array")
    dt = result_dtype(p, q)
    p, q = p.astype(dt, copy=False), q.astype(dt, copy=False)
    ax = normalize_axis(axis, p.ndim, "axis")
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    batch_shape = p.shape[:ax] + p.shape[ax + 1:]
    if mask is None:
        keep = np.ones(int(np.prod(batch_shape, dtype=np.int64)), dtype=np.bool_)
    else:
        m = np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"mask must be a boolean array, got dtype {m.dtype}")
        if m.shape != batch_shape:
            raise ValueError(f"mask must have the batch shape {batch_shape} (p_logits.shape without "
                             f"axis {ax}), got {m.shape}")
        keep = np.ascontiguousarray(m.reshape(-1))
    return p, q, ax, batch_shape, keep


def check_beta(beta) -> float:
    """The mixture weight of ``js_divergence_logits``: a real number in [0, 1]."""
    if isinstance(beta, (bool, np.bool_)) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"beta must be a real number in [0, 1], got {beta!r}")
    b = float(beta)
    if not 0.0 <= b <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta!r}")
    return b


def entropy_logits_inputs(logits, axis, base):
    """Validate ``entropy_logits``'s arguments, in this order: ``logits``, ``axis``, ``base``.
    Returns ``(a, axis, batch_shape, base)``."""
    a = as_float_array(logits, "logits")
    if a.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis), got a 0-d array")
    ax = normalize_axis(axis, a.ndim, "axis")
    b = check_base(base)
    return a, ax, a.shape[:ax] + a.shape[ax + 1:], b

@dataclass(frozen=True)
class BinaryInputs:
    """Validated inputs of the binary cross-entropy: ``logits`` (its dtype kept) and the
    float64 ``target``, ``weight``, ``pos_weight`` broadcast to its shape."""

    logits: np.ndarray
    target: np.ndarray
    weight: np.ndarray
    pos_weight: np.ndarray
    reduction: str


def _broadcast_to(v, name: str, shape: tuple, hint: str) -> np.ndarray:
    try:
        return np.broadcast_to(v, shape)
    except ValueError:
        raise ValueError(f"{name} of shape {v.shape} does not broadcast to {hint} {shape}") from None


def binary_inputs(logits, target, weight, pos_weight, reduction) -> BinaryInputs:
    """Validate the binary cross-entropy's arguments, in this order: ``logits``, ``reduction``,
    ``target`` (the shape of ``logits``, entries in [0, 1]), ``weight`` (broadcastable to
    that shape), ``pos_weight`` (broadcastable along the last axis), both finite and
    non-negative."""
    a = as_float_array(logits, "logits")
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    t = as_float_array(target, "target")
    if t.shape != a.shape:
        raise ValueError(f"target must have the shape of logits {a.shape}, got {t.shape}")
    t = t.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~((t >= 0) & (t <= 1)))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"target must lie in [0, 1]; target[{_where(i, t.shape)}] = {t.reshape(-1)[i]}")
    out = [t]
    for name, v in (("weight", weight), ("pos_weight", pos_weight)):
        if v is None:
            out.append(np.ones(a.shape))
            continue
        v = as_float_array(v, name).astype(np.float64)
        if name == "pos_weight" and v.ndim > a.ndim:
            raise ValueError(f"pos_weight has {v.ndim} dimensions, more than logits ({a.ndim})")
        v = _broadcast_to(v, name, a.shape, "the shape of logits")
        check_probabilities(np.ascontiguousarray(v), name)
        out.append(v)
    return BinaryInputs(a, out[0], out[1], out[2], reduction)
