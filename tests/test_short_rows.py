"""The short-row kernels (crossent.kernels.short) and the per-call fast paths.

Their accuracy is checked against the oracle by the precision tests (tests/test_precision_*.py,
whose corpora are mostly rows of a few classes); here: that special rows, ignored items, tails
of blocks and both thread paths give what the wide kernels give, that a row's bits do not
depend on its batch, and that the fast paths return the generic path's bits and still reject
bad labels.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent
from crossent import _partial
from crossent.kernels import loss as kl
from crossent.kernels import short as ks
from crossent.kernels import softmax as ksm

DTYPES = (np.float64, np.float32)


def _batch(n, c, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((n, c)) * 4).astype(dtype)
    return x, rng.integers(0, c, n)


def _with_specials(x):
    x = x.copy()
    x[1, 2] = np.nan
    x[4, 0] = np.inf
    x[6, :] = -np.inf
    x[7, 3] = -np.inf  # a masked class (not special: the short kernel handles it)
    x[9, :] = 7.0  # every entry the max
    return x


@pytest.mark.parametrize("dtype", DTYPES)
def test_short_rows_take_the_short_kernel(dtype):
    # the dispatch this file tests: 10 classes are short for every kind, 200 for none
    fast = dtype != np.float64
    assert ks.is_short(10, fast, False) and ks.is_short(10, fast, True)
    assert not ks.is_short(200, fast, False) and not ks.is_short(200, fast, True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_rows_match_the_wide_kernel(dtype):
    x, y = _batch(37, 10, dtype)  # 37: two whole blocks of 16 and a tail of 5
    x = _with_specials(x)
    y[3] = -100  # ignored
    fast = dtype != np.float64
    w = np.ones(1)
    for grad in (False, True):
        o_s, st = np.empty(37), np.empty(37, np.uint8)
        g_s = np.full(x.shape, 123.0, dtype)
        ks.cross_entropy_labels_short(x, y, w, False, -100, fast, fast, o_s, st, False, 1.0, g_s, grad)
        assert st.tolist() == [1 if n in (1, 4, 6) else 0 for n in range(37)]
        o_w, g_w = np.empty(37), np.empty(x.shape, dtype)
        if grad:
            kl.cross_entropy_labels_grad_rows(x, y, w, False, -100, 0.0, 1.0, fast, fast, o_w, g_w)
        else:
            kl.cross_entropy_labels_rows(x, y, w, False, -100, 0.0, fast, fast, o_w)
        ok = st == 0
        # the short path is not bitwise the wide one, but within the bound of the loss
        np.testing.assert_allclose(o_s[ok], o_w[ok], rtol=4e-16 if not fast else 2e-15, atol=0)
        assert o_s[3] == 0.0 and o_s[7] == o_w[7]
        if grad:
            assert np.array_equal(g_s[ok], g_w[ok])  # the same formula, the same terms
            assert not g_s[3].any()
        # through the public API the special rows are the wide kernel's
        if grad:
            loss, g = crossent.cross_entropy_value_and_grad(x, y, reduction="none")
            assert np.array_equal(g[~ok], g_w[~ok].astype(dtype), equal_nan=True)
        else:
            loss = crossent.cross_entropy(x, y, reduction="none")
        assert np.array_equal(loss[~ok], o_w[~ok].astype(dtype), equal_nan=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", ["logsumexp", "log_softmax", "softmax"])
def test_softmax_family_special_rows_match_the_wide_kernel(dtype, func):
    x, _ = _batch(37, 10, dtype)
    x = _with_specials(x)
    special = np.zeros(37, bool)
    special[[1, 4, 6]] = True
    got = getattr(crossent, func)(x)
    wide = {"logsumexp": ksm.logsumexp_rows, "log_softmax": ksm.log_softmax_rows,
            "softmax": ksm.softmax_rows}[func]
    narrow = dtype != np.float64
    ref = np.empty(37 if func == "logsumexp" else x.shape, dtype)
    wide(x, ref, narrow, narrow)
    # the special rows (a nan; a +inf; every entry -inf) follow the documented rules
    # (SciPy's), which the wrappers apply after either kernel
    if func == "logsumexp":
        assert np.isnan(got[1]) and got[4] == np.inf and got[6] == -np.inf
    elif func == "softmax":
        assert np.isnan(got[special]).all()
    else:
        assert np.isnan(got[1]).all() and np.isnan(got[6]).all()
        assert np.isnan(got[4, 0]) and (got[4, 1:] == -np.inf).all()
    finite = ~special
    np.testing.assert_allclose(got[finite], ref[finite], rtol=8e-16 if not narrow else 1.2e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("func", ["cross_entropy", "grad", "logsumexp", "softmax", "log_softmax"])
def test_a_rows_bits_do_not_depend_on_its_batch(dtype, func):
    # a large batch (thread pool), its rows one by one and in odd splits (one thread, tails)
    x, y = _batch(5000, 10, dtype, seed=3)

    def f(a, b):
        if func == "cross_entropy":
            return crossent.cross_entropy(a, b, reduction="none")
        if func == "grad":
            return crossent.cross_entropy_value_and_grad(a, b, reduction="none")[1]
        return getattr(crossent, func)(a)

    whole = f(x, y)
    assert ks.is_parallel(*x.shape)
    parts = np.concatenate([f(x[i:j], y[i:j]) for i, j in [(0, 1), (1, 18), (18, 4000), (4000, 5000)]])
    assert np.array_equal(whole, parts)
    rows = np.concatenate([f(x[i:i + 1], y[i:i + 1]) for i in range(0, 5000, 499)])
    assert np.array_equal(whole[::499], rows)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("data", ["plain", "specials", "spread", "correct"])
def test_the_fast_path_returns_the_generic_paths_bits(dtype, reduction, data):
    x, y = _batch(10, 10, dtype)
    mode = "fast"
    if data == "specials":  # rows the wide kernel redoes, and losses of +inf and nan
        x = _with_specials(x)
        y[7] = 3
    elif data == "spread":  # losses of very different magnitudes: their exact sum needs more
        x[:, 0] = np.array([60, 0, 700, -40, 0, 0, 300, -700, 0, 5], dtype=dtype)  # than 2 floats
        y[:] = 0
    elif data == "correct":
        mode = "correct"  # honoured by the fast paths (float64: correctly rounded)
    # int32 labels (or a list) go the generic way; int64 ones the fast way; axis=(1,) for
    # the softmax family
    with crossent.rounding(mode):
        for fast_call, slow_call in [
            (lambda: crossent.cross_entropy(x, y, reduction=reduction),
             lambda: crossent.cross_entropy(x, y.astype(np.int32), reduction=reduction)),
            (lambda: crossent.cross_entropy_value_and_grad(x, y, reduction=reduction),
             lambda: crossent.cross_entropy_value_and_grad(x, y.tolist(), reduction=reduction)),
            (lambda: crossent.logsumexp(x), lambda: crossent.logsumexp(x, axis=(1,))),
            (lambda: crossent.softmax(x), lambda: crossent.softmax(x, axis=(1,))),
            (lambda: crossent.log_softmax(x), lambda: crossent.log_softmax(x, axis=(1,))),
        ]:
            a, b = fast_call(), slow_call()
            for u, v in zip(a if isinstance(a, tuple) else (a,),
                            b if isinstance(b, tuple) else (b,)):
                assert type(u) is type(v) and u.dtype == v.dtype
                assert np.array_equal(u, v, equal_nan=True)
                assert np.array_equal(np.signbit(u), np.signbit(v))


def test_the_fast_path_still_rejects_bad_labels_and_honours_ignore_index():
    x, y = _batch(8, 10, np.float64)
    bad = y.copy()
    bad[5] = 10
    with pytest.raises(ValueError, match="target"):
        crossent.cross_entropy(x, bad)
    bad[5] = -1
    with pytest.raises(ValueError, match="target"):
        crossent.cross_entropy(x, bad)
    with pytest.raises(ValueError, match="ignore_index"):
        crossent.cross_entropy(x, y, ignore_index=2**70)
    # bad arguments next to common ones still get the generic errors, naming them
    with pytest.raises(ValueError, match="reduction"):
        crossent.cross_entropy(x, y, reduction="avg")
    with pytest.raises(ValueError, match="axis"):
        crossent.cross_entropy(x, y, axis=2)
    with pytest.raises(TypeError, match="z_loss"):
        crossent.cross_entropy(x, y, z_loss=False)
    with pytest.raises(ValueError, match="target"):
        crossent.cross_entropy(x, y[:7])
    with pytest.raises(ValueError, match="axis"):
        crossent.softmax(x, axis=2)
    # an ignore_index inside [0, C) ignores those items (the generic path)
    keep = y != y[0]
    got = crossent.cross_entropy(x, y, ignore_index=int(y[0]), reduction="sum")
    assert got == crossent.cross_entropy(x[keep], y[keep], reduction="sum")


def test_small_exact_sums_are_the_bins_sums():
    # exact_sum of up to _SMALL values adds Python integers; the bins give the same integers
    rng = np.random.default_rng(7)
    for k in range(300):
        n = int(rng.integers(0, _partial._SMALL + 1))
        v = rng.standard_normal(n) * 10.0 ** rng.integers(-320, 300, n)
        if n and k % 3 == 0:
            v[rng.integers(0, n)] = rng.choice([np.nan, np.inf, -np.inf, 5e-324, -0.0])
        bins = _partial._bins()
        _partial._x.accumulate(v.view(np.int64), bins)
        ref = (_partial._total(bins), int(np.isnan(v).sum()), int((v == np.inf).sum()),
               int((v == -np.inf).sum()))
        assert _partial._exact_sum_small(v) == ref
    # sums that are not two floats (the fsum route gives way to the loop), an intermediate
    # overflow in fsum, and inf + -inf (fsum raises ValueError)
    big = np.finfo(np.float64).max
    for v in ([1.0, 2.0**-60, 2.0**-200], [big, big, -big], [np.inf, -np.inf, 1.0], [big, big]):
        v = np.array(v)
        bins = _partial._bins()
        _partial._x.accumulate(v.view(np.int64), bins)
        assert _partial._exact_sum_small(v)[0] == _partial._total(bins)


def test_compile_command(capsys):
    from crossent import _compile, cli

    assert cli.main(["compile", "--functions", "softmax", "--dtypes", "float64"]) == 0
    assert "softmax" in capsys.readouterr().out
    with pytest.raises(ValueError, match="functions"):
        _compile.compile_functions(["no_such_function"])
    with pytest.raises(ValueError, match="dtypes"):
        _compile.compile_functions(["softmax"], ["int8"])


def test_per_call_bench_rows():
    from crossent import _bench

    rows = _bench.run_per_call(peers=(), rounds=1)
    assert {(r["function"], r["impl"]) for r in rows} >= {("cross_entropy", "crossent"),
                                                          ("logsumexp", "crossent")}
    assert all(r["microseconds"] > 0 and r["shape"] == list(_bench.CALL_SHAPE) for r in rows)
    assert "crossent" in _bench.format_per_call(rows)
