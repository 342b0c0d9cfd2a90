"""Every array layout gives the same answer, bit for bit, as a plain C-contiguous array.

The Python layer turns whatever it is given (Fortran order, strided or reversed views,
read-only or unaligned buffers, big-endian dtypes) into the C-contiguous native ``(rows, C)``
arrays the kernels read, so the kernels' arithmetic, and hence every bit of the result, must
not depend on the layout. Also here: the documented results for 0-d and empty inputs, and
inputs with more than 2**31 elements (64-bit index arithmetic).
"""

from __future__ import annotations


import numpy as np
import pytest

import crossent

RNG = np.random.default_rng(20240607)
DTYPES = (np.float16, np.float32, np.float64)


# ---------------------------------------------------------------------------------------------
# layouts: each takes a C-contiguous array and returns an array equal in value, other in layout


def _fortran(a):
    return np.asfortranarray(a)


def _strided(a):
    """A view taking every second element along every axis of a larger array."""
    big = np.zeros(tuple(2 * n + 1 for n in a.shape), dtype=a.dtype)
    view = big[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def _reversed(a):
    """A negative-stride view along every axis."""
    r = np.ascontiguousarray(a[tuple(slice(None, None, -1) for _ in a.shape)])
    return r[tuple(slice(None, None, -1) for _ in a.shape)]


def _readonly(a):
    b = a.copy()
    b.flags.writeable = False
    return b


def _byteswapped(a):
    """The same values in the non-native byte order (big-endian on x86)."""
    return a.astype(a.dtype.newbyteorder("S"))


def _unaligned(a):
    """The same values in a buffer whose data pointer is not aligned to the item size."""
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    b = raw[1:].view(a.dtype).reshape(a.shape)
    b[...] = a
    return b


LAYOUTS = {
    "fortran": _fortran,
    "strided": _strided,
    "reversed": _reversed,
    "readonly": _readonly,
    "byteswapped": _byteswapped,
    "unaligned": _unaligned,
}


def _check_layouts():
    """The layout helpers do what their names say (so the tests below test something)."""
    a = np.arange(12.0).reshape(3, 4)
    assert _fortran(a).flags.f_contiguous and not _fortran(a).flags.c_contiguous
    assert not _strided(a).flags.c_contiguous and not _strided(a).flags.f_contiguous
    assert _reversed(a).strides[0] < 0
    assert not _readonly(a).flags.writeable
    assert not _byteswapped(a).dtype.isnative
    assert not _unaligned(a).flags.aligned
    for f in LAYOUTS.values():
        np.testing.assert_array_equal(f(a), a)


def test_layout_helpers():
    _check_layouts()


def _same(a, b):
    """Bitwise equality of results (nan payloads compare as nan) with the same dtype and shape."""
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
        return
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    assert a.dtype.isnative and b.dtype.isnative
    na, nb = np.isnan(a), np.isnan(b)
    np.testing.assert_array_equal(na, nb)
    assert a[~na].tobytes() == b[~nb].tobytes(), (a, b)


def _logits(shape, dtype):
    x = RNG.standard_normal(shape) * 4
    x.reshape(-1)[:: max(1, x.size // 3)] = -np.inf if x.size > 3 else x.reshape(-1)[0]  # a few masks
    return x.astype(dtype)


def _probs(shape, axis, dtype):
    p = RNG.dirichlet(np.ones(shape[axis]), size=int(np.prod(shape)) // shape[axis])
    return np.moveaxis(p.reshape(tuple(np.delete(shape, axis)) + (shape[axis],)), -1, axis).astype(dtype)


def _labels(shape, axis):
    c = shape[axis]
    y = RNG.integers(0, c, size=tuple(np.delete(shape, axis)))
    y.reshape(-1)[::3] = -100
    return y


# each entry: name, function of (x, t) returning a result (or tuple of results), does it use t
def _functions(axis):
    return {
        "logsumexp": (lambda x, t: crossent.logsumexp(x, axis=axis), None),
        "logsumexp-keepdims": (lambda x, t: crossent.logsumexp(x, axis=axis, keepdims=True), None),
        "log_softmax": (lambda x, t: crossent.log_softmax(x, axis=axis), None),
        "softmax": (lambda x, t: crossent.softmax(x, axis=axis), None),
        "ce-labels-none": (lambda x, t: crossent.cross_entropy(x, t, axis=axis, reduction="none"), "labels"),
        "ce-labels-mean-w": (
            lambda x, t: crossent.cross_entropy(x, t, axis=axis, weight=np.arange(1.0, 1 + x.shape[axis]),
                                                label_smoothing=0.1),
            "labels",
        ),
        "ce-probs-sum": (lambda x, t: crossent.cross_entropy(x, t, axis=axis, reduction="sum"), "probs"),
        "vg-labels": (lambda x, t: crossent.cross_entropy_value_and_grad(x, t, axis=axis), "labels"),
        "vg-probs-none": (
            lambda x, t: crossent.cross_entropy_value_and_grad(x, t, axis=axis, reduction="none",
                                                               label_smoothing=0.2),
            "probs",
        ),
        "entropy": (lambda x, t: crossent.entropy(t, axis=axis, base=2), "probs-only"),
        "cross_entropy_pmf": (lambda x, t: crossent.cross_entropy_pmf(t, crossent.softmax(x, axis=axis),
                                                                       axis=axis), "probs"),
        "kl_divergence": (lambda x, t: crossent.kl_divergence(t, crossent.softmax(x, axis=axis), axis=axis),
                          "probs"),
        "bce-none": (lambda x, t: crossent.binary_cross_entropy_with_logits(x, t, reduction="none"), "probs"),
        "bce-vg": (lambda x, t: crossent.binary_cross_entropy_with_logits_value_and_grad(
            x, t, pos_weight=np.arange(1.0, 1 + x.shape[-1]), reduction="sum"), "probs"),
        "softplus": (lambda x, t: (crossent.softplus(x), crossent.log_sigmoid(x)), None),
    }


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape, axis", [((5, 7), -1), ((5, 7), 0), ((3, 4, 6), 1), ((2, 3, 5), -1)])
def test_layout_gives_bitwise_same_result(layout, dtype, shape, axis):
    x = _logits(shape, dtype)
    y = _labels(shape, axis)
    p = _probs(shape, axis, dtype)
    f = LAYOUTS[layout]
    for name, (fn, kind) in _functions(axis).items():
        if kind == "labels":
            base, other = fn(x, y), fn(f(x), f(y))
        elif kind in ("probs", "probs-only"):
            base, other = fn(x, p), fn(f(x), f(p))
        else:
            base, other = fn(x, None), fn(f(x), None)
        try:
            _same(base, other)
        except AssertionError as e:  # pragma: no cover - the message says which function
            raise AssertionError(f"{name}: {e}") from None


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_layout_of_the_pmf_helpers(layout):
    s = RNG.integers(0, 6, size=(4, 5))
    q = RNG.dirichlet(np.ones(6), size=3)
    f = LAYOUTS[layout]
    _same(crossent.empirical_pmf(s, 6), crossent.empirical_pmf(f(s), 6))
    _same(crossent.categorical_log_likelihood(q, s), crossent.categorical_log_likelihood(f(q), f(s)))


def _signatures():
    from crossent.kernels import loss as kl
    from crossent.kernels import pmf as kp
    from crossent.kernels import softmax as ks

    return {
        (mod.__name__, name): len(getattr(mod, name).signatures)
        for mod in (ks, kl, kp)
        for name in dir(mod)
        if hasattr(getattr(mod, name), "signatures")
    }


def test_no_layout_compiles_another_kernel_specialization():
    """Numba types read-only, unaligned and non-C arrays as distinct types; the Python layer
    hands the kernels one layout only, so no input layout triggers another compilation."""
    x = _logits((4, 5), np.float64)
    y = _labels((4, 5), -1)
    p = _probs((4, 5), -1, np.float64)
    calls = lambda x, y, p: (  # noqa: E731
        crossent.logsumexp(x), crossent.softmax(x), crossent.log_softmax(x),
        crossent.cross_entropy(x, y), crossent.cross_entropy(x, p),
        crossent.cross_entropy_value_and_grad(x, y), crossent.cross_entropy_value_and_grad(x, p),
        crossent.entropy(p), crossent.kl_divergence(p, p), crossent.cross_entropy_pmf(p, p),
    )
    calls(x, y, p)  # warm: the C-contiguous specializations exist
    before = _signatures()
    for f in LAYOUTS.values():
        calls(f(x), f(y), f(p))
    after = _signatures()
    grown = {k: (before.get(k, 0), v) for k, v in after.items() if v != before.get(k, 0)}
    assert not grown, f"new kernel specializations: {grown}"


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_zero_strided_broadcast_input(dtype):
    row = _logits((1, 9), dtype)
    view = np.broadcast_to(row, (4, 9))
    assert view.strides[0] == 0
    _same(crossent.softmax(np.ascontiguousarray(view)), crossent.softmax(view))
    _same(crossent.cross_entropy_value_and_grad(np.ascontiguousarray(view), np.array([0, 1, 2, 3])),
          crossent.cross_entropy_value_and_grad(view, np.array([0, 1, 2, 3])))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("out_layout", ["fortran", "strided", "c-axis0"])
def test_out_in_any_layout(dtype, out_layout):
    """``out=`` that is not C-contiguous (or whose class axis is not last) gets the same bits."""
    x = _logits((6, 5), dtype)
    y = _labels((6, 5), -1 if out_layout != "c-axis0" else 0)
    axis = 0 if out_layout == "c-axis0" else -1
    if axis == 0:
        y = _labels((6, 5), 0)
    base_loss, base_g = crossent.cross_entropy_value_and_grad(x, y, axis=axis)
    out = {"fortran": np.asfortranarray(np.empty_like(x)), "strided": _strided(np.empty_like(x)),
           "c-axis0": np.empty_like(x)}[out_layout]
    loss, g = crossent.cross_entropy_value_and_grad(x, y, axis=axis, out=out)
    assert g is out
    _same(base_loss, loss)
    _same(base_g, out)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_in_place_out_is_logits(dtype):
    x = _logits((6, 5), dtype)
    y = _labels((6, 5), -1)
    base = crossent.cross_entropy_value_and_grad(x, y)
    for make in (np.ascontiguousarray, np.asfortranarray):
        z = make(x.copy())
        loss, g = crossent.cross_entropy_value_and_grad(z, y, out=z)
        assert g is z
        _same(base, (loss, g))


# ---------------------------------------------------------------------------------------------
# 0-d and empty inputs: the documented results


def test_zero_d_inputs():
    """0-d inputs: the softmax family takes one element (SciPy's rule, scalar results; see
    tests/test_conventions.py); the loss and the PMF functions need a class axis: ValueError
    naming ``logits`` or ``axis``."""
    for fn, want in ((crossent.logsumexp, 1.0), (crossent.log_softmax, 0.0), (crossent.softmax, 1.0)):
        r = fn(np.float64(1.0))
        assert isinstance(r, np.float64) and r == want
    with pytest.raises(ValueError, match="logits"):
        crossent.cross_entropy(np.float64(1.0), np.int64(0))
    with pytest.raises(ValueError, match="axis"):
        crossent.entropy(np.float64(1.0))


def test_one_d_inputs_give_scalars_for_reductions():
    x = np.array([0.0, 0.0])
    assert crossent.logsumexp(x).shape == ()
    assert crossent.cross_entropy(x, np.int64(1), reduction="none").shape == ()
    loss, g = crossent.cross_entropy_value_and_grad(x, np.int64(1))
    assert g.shape == (2,)
    assert np.ndim(crossent.entropy([0.5, 0.5])) == 0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_empty_batch(dtype):
    """No items: empty outputs; 'sum' = 0 (empty sum); 'mean' = nan (0/0, as PyTorch)."""
    x = np.zeros((0, 3), dtype=dtype)
    y = np.zeros(0, dtype=np.int64)
    assert crossent.logsumexp(x).shape == (0,) and crossent.logsumexp(x).dtype == dtype
    assert crossent.softmax(x).shape == (0, 3) and crossent.log_softmax(x).shape == (0, 3)
    assert crossent.cross_entropy(x, y, reduction="none").shape == (0,)
    assert crossent.cross_entropy(x, y, reduction="sum") == 0
    assert np.isnan(crossent.cross_entropy(x, y, reduction="mean"))
    assert np.isnan(crossent.cross_entropy(x, np.zeros((0, 3), dtype), reduction="mean"))
    loss, g = crossent.cross_entropy_value_and_grad(x, y, reduction="sum")
    assert loss == 0 and g.shape == (0, 3) and g.dtype == dtype
    assert crossent.entropy(x).shape == (0,)
    assert crossent.kl_divergence(x, x).shape == (0,)
    assert crossent.categorical_log_likelihood(np.zeros((0, 3), dtype), [0, 1]).shape == (0,)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_empty_class_axis(dtype):
    """C = 0: logsumexp of an empty sum is -inf; softmax/log_softmax are empty; the entropy
    family is 0 (empty sum); a loss over no classes only admits ignored labels (0 each) or
    empty probability rows (0: the empty sum, as PyTorch)."""
    x = np.zeros((2, 0), dtype=dtype)
    lse = crossent.logsumexp(x)
    assert lse.dtype == dtype and lse.tolist() == [-np.inf, -np.inf]
    assert crossent.logsumexp(x, keepdims=True).shape == (2, 1)
    assert crossent.logsumexp(np.zeros((0,), dtype)) == -np.inf
    assert crossent.softmax(x).shape == (2, 0) and crossent.log_softmax(x).shape == (2, 0)
    assert crossent.log_softmax(np.zeros((2, 0, 4), dtype), axis=1).shape == (2, 0, 4)
    assert crossent.cross_entropy(x, np.array([-100, -100]), reduction="none").tolist() == [0.0, 0.0]
    assert np.isnan(crossent.cross_entropy(x, np.array([-100, -100])))  # all ignored, 'mean'
    with pytest.raises(ValueError, match=r"target\[0\] = 0 .*\[0, 0\)"):
        crossent.cross_entropy(x, np.array([0, -100]))
    # probabilities over no classes: the empty sum, 0 per item (PyTorch: -0; tests/test_conventions.py)
    assert crossent.cross_entropy(x, np.zeros((2, 0), dtype), reduction="none").tolist() == [0.0, 0.0]
    loss, g = crossent.cross_entropy_value_and_grad(x, np.array([-100, -100]), reduction="sum")
    assert loss == 0 and g.shape == (2, 0)
    assert crossent.entropy(x).tolist() == [0.0, 0.0]
    assert crossent.cross_entropy_pmf(x, x).tolist() == [0.0, 0.0]


# ---------------------------------------------------------------------------------------------
# more than 2**31 elements


def test_index_arithmetic_is_64_bit_without_the_memory():
    """The batch kernels index with 64-bit integers: a zero-stride view of 2**31 + 2**21
    elements (one real row, 8 KB) through a row kernel, compared with the one row. (All batch
    kernels share the ``x[n]``/``row[i]`` indexing; the slow test below runs them all.)

    The public layer copies to C order, so this calls the kernels directly on the broadcast
    view: only the output (one float64 per row, 16 MB) is real memory.
    """
    from crossent.kernels import softmax as k

    c = 1025
    rows = 2**21  # rows * c = 2**31 + 2**21 > 2**31
    row = RNG.standard_normal(c)
    x = np.broadcast_to(row, (rows, c))
    assert x.size > 2**31
    out = np.empty(rows)
    k.logsumexp_rows(x, out, False, False)
    one = np.empty(1)
    k.logsumexp_rows(row.reshape(1, c), one, False, False)
    assert (out == one[0]).all()


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@pytest.mark.slow
@pytest.mark.skipif(_mem_available() < 14 * 2**30, reason="needs about 9 GB of free memory")
def test_more_than_2_31_elements_through_the_public_api():
    """float32 logits of 2**31 + 2**21 elements (8.6 GB) through the public API, in place.

    The array repeats a 64-row block, so every row's result is known from the block alone.
    """
    c, block_rows, rows = 1025, 64, 2**21
    block = RNG.standard_normal((block_rows, c)).astype(np.float32)
    labels_block = RNG.integers(0, c, block_rows)
    x = np.empty((rows, c), dtype=np.float32)
    x.reshape(rows // block_rows, block_rows, c)[...] = block
    assert x.size > 2**31
    labels = np.tile(labels_block, rows // block_rows)
    lse = crossent.logsumexp(x)
    _same(lse[-block_rows:], crossent.logsumexp(block))
    assert (lse.reshape(-1, block_rows) == lse[:block_rows]).all()
    loss = crossent.cross_entropy(x, labels, reduction="none")
    assert (loss.reshape(-1, block_rows) == crossent.cross_entropy(block, labels_block, reduction="none")).all()
    ref_loss, ref_g = crossent.cross_entropy_value_and_grad(block, labels_block, reduction="sum")
    total, g = crossent.cross_entropy_value_and_grad(x, labels, reduction="sum", out=x)  # in place
    assert g is x
    _same(x[-block_rows:], ref_g)
    _same(x[:block_rows], ref_g)
    assert np.isfinite(total) and total > 0
