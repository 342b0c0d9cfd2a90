"""``crossent.numba``: the row functions give the batch API's bits for the same row, called
from a user's ``@numba.njit`` function, for float32/float64 rows, contiguous or strided, with
-inf masks and nan rows.

Provenance: the expected values are the batch API's own results on ``x[None]`` (the kernels
validated against the oracle by the precision tests); the checks are bitwise.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

import crossent
from crossent import numba as cn


@numba.njit
def _user_rows(x, labels, scale, out_lsm, out_sm, out_g):
    """A user's own loop over the rows of a 2-D array (rows may be strided views)."""
    n = x.shape[0]
    lse = np.empty(n, dtype=x.dtype)
    loss = np.empty(n, dtype=x.dtype)
    gloss = np.empty(n, dtype=x.dtype)
    for i in range(n):
        lse[i] = cn.logsumexp_row(x[i])
        cn.log_softmax_row(x[i], out_lsm[i])
        cn.softmax_row(x[i], out_sm[i])
        loss[i] = cn.cross_entropy_row(x[i], labels[i])
        gloss[i] = cn.cross_entropy_grad_row(x[i], labels[i], scale, out_g[i])
    return lse, loss, gloss


def _rows(rng, n, c, dtype):
    x = (rng.standard_normal((n, c)) * rng.choice([0.5, 3.0, 30.0], size=(n, 1))).astype(dtype)
    if c > 1:
        x[1, rng.integers(0, c, max(1, c // 3))] = -np.inf  # a masked row (label kept finite)
    x[2, rng.integers(0, c)] = np.nan
    x[3, :] = -np.inf
    labels = rng.integers(0, c, n)
    if c > 1:
        labels[1] = int(np.flatnonzero(np.isfinite(x[1]))[0])
    return x, labels


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(
        a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("c", [1, 2, 7, 33, 1000, 4097])
@pytest.mark.parametrize("strided", [False, True])
def test_row_functions_match_the_batch_api(dtype, c, strided):
    rng = np.random.default_rng(c)
    n = 6
    x, labels = _rows(rng, n, c, dtype)
    scale = 0.375 if c % 2 else 1.0 / 3.0
    xs = np.repeat(x, 2, axis=1)[:, ::2] if strided else x  # every row strided (stride 2)
    assert np.array_equal(xs, x, equal_nan=True)
    outs = [np.zeros((n, 2 * c), dtype)[:, ::2] if strided else np.zeros((n, c), dtype)
            for _ in range(3)]
    lse, loss, gloss = _user_rows(xs, labels, scale, *outs)
    assert _same(lse, crossent.logsumexp(x))
    assert _same(outs[0], crossent.log_softmax(x))
    assert _same(outs[1], crossent.softmax(x))
    want = crossent.cross_entropy(x, labels, reduction="none")
    assert _same(loss, want) and _same(gloss, want)
    for i in range(n):  # the gradient: 'sum' with class weight `scale`, row by row
        _, g = crossent.cross_entropy_value_and_grad(x[i:i + 1], labels[i:i + 1],
                                                     weight=np.full(c, scale), reduction="sum")
        assert _same(outs[2][i], g[0]), (i, outs[2][i][:4], g[0][:4])


def test_results_have_the_row_dtype_and_bad_input_raises():
    x32 = np.array([0.0, 1.0, 2.0], np.float32)

    @numba.njit
    def f(x):
        return cn.logsumexp_row(x), cn.cross_entropy_row(x, 2)

    a, b = f(x32)
    assert f.overloads[f.signatures[0]].signature.return_type.types[0] == numba.float32
    assert np.float32(a) == crossent.logsumexp(x32)
    with pytest.raises(ValueError, match="label"):
        cn.cross_entropy_row(x32, 3)
    with pytest.raises(ValueError, match="label"):
        cn.cross_entropy_grad_row(x32, -1, 1.0, np.empty(3, np.float32))
    with pytest.raises(ValueError, match="length"):
        cn.softmax_row(x32, np.empty(2, np.float32))
    assert cn.logsumexp_row(np.empty(0)) == -np.inf  # the log of an empty sum, as the API


def test_in_place_softmax():
    """``out`` may be ``x`` itself."""
    x = np.random.default_rng(1).standard_normal(50)
    want = crossent.softmax(x)
    cn.softmax_row(x, x)
    assert _same(x, want)
