"""The correctly rounded float64 paths of ``kl_divergence_logits_value_and_grad`` and
``js_divergence_logits_value_and_grad``.

Where each expected value comes from: the oracle
``crossent.reference.kl_divergence_logits_value_and_grad`` (interval arithmetic in mpmath,
correctly rounded by construction; its exact cases are rows that differ by one constant and
``Q_j = P_j`` where the finite entries of the rows are one shift of each other), and
``crossent.reference.kl_divergence_logits`` for the values. The "mean" gradient divides by the
number of kept rows exactly (the oracle's ``grad_divisor``).

* independent rows and near-equal rows (``q = log(P (1 + rho U(-1, 1)))``): bit for bit;
* the kernel decides every entry of independent rows (so the kernel, not the oracle, is what
  the bit-for-bit tests check there), and what it decides is the oracle's value;
* masked classes (in ``p`` only, in both, in ``q`` only: +inf and nan rows), nan rows,
  rows shifted by a constant (zeros), dropped rows, classes far below the row's maximum,
  another class axis;
* JS (``crossent.reference.js_divergence_logits_value_and_grad``, the same construction;
  exact zeros also for ``beta`` 0 and 1 and for rows without a common class, whose JSD is
  the constant ``h(beta)``): the same families at several ``beta``.
"""

from __future__ import annotations

import numpy as np
import pytest

import crossent
from _precision import same_bits
from crossent import _rounding
from crossent import reference as oracle
from crossent.kernels import divergence as kdiv
from test_correct_rounding_kl import _fast_mode_around  # noqa: F401  (the mode restored)


def _vg(p, q, **kw):
    with crossent.rounding("correct"):
        return crossent.kl_divergence_logits_value_and_grad(p, q, **kw)


def _check(p, q, **kw):
    """Bit for bit against the oracle: the gradients, and the per-row values."""
    v, gp, gq = _vg(p, q, **kw)
    wv, wgp, wgq = oracle.kl_divergence_logits_value_and_grad(p, q, **kw)
    assert same_bits(gp, wgp), np.argwhere(~((gp == wgp) | (np.isnan(gp) & np.isnan(wgp))))[:5]
    assert same_bits(gq, wgq), np.argwhere(~((gq == wgq) | (np.isnan(gq) & np.isnan(wgq))))[:5]
    if kw.get("reduction") == "none":
        assert same_bits(v, wv)
    return v, gp, gq


def _kernel(p, q, nk=1.0):
    """The kernel alone: ``(out, gx, gy, slow)``."""
    N, C = p.shape
    out = np.empty(N)
    gx, gy = np.empty_like(p), np.empty_like(p)
    slow = np.zeros(N, dtype=np.uint8)
    kdiv.kl_divergence_logits_grad_rows_cr(p, q, np.ones(N, dtype=bool),
                                           _rounding.kl_relative_bound(C), nk, out, gx, gy, slow)
    return out, gx, gy, slow


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_independent_rows(reduction):
    rng = np.random.default_rng(21)
    p = rng.normal(scale=3.0, size=(12, 10))
    q = rng.normal(scale=3.0, size=(12, 10))
    mask = np.ones(12, dtype=bool)
    mask[4] = False
    _check(p, q, reduction=reduction, mask=mask)


def test_near_equal_rows_and_other_axis():
    rng = np.random.default_rng(22)
    p = rng.normal(scale=2.0, size=(10, 6))
    P = np.exp(p - p.max(axis=1, keepdims=True))
    rho = np.exp(rng.uniform(np.log(1e-9), np.log(0.3), size=(10, 1)))
    q = np.log(P * (1.0 + rho * rng.uniform(-1.0, 1.0, size=p.shape)))
    _check(p, q, reduction="mean")
    p3 = np.moveaxis(p.reshape(2, 5, 6), 2, 1)  # classes on axis 1
    q3 = np.moveaxis(q.reshape(2, 5, 6), 2, 1)
    _check(p3, q3, axis=1, reduction="none")


def test_kernel_decides_independent_rows_and_agrees_with_the_oracle():
    """On independent rows (3 to 300 classes) the rounding test decides every value and entry
    (were its bound far too wide, every row would go to the oracle and the other tests could
    not tell); the decided rows are the oracle's, bit for bit, also divided by 7."""
    rng = np.random.default_rng(23)
    for C in (3, 40, 300):
        p = rng.normal(scale=3.0, size=(6, C))
        q = rng.normal(scale=3.0, size=(6, C))
        for nk in (1, 7):
            out, gx, gy, slow = _kernel(p, q, float(nk))
            assert not slow.any(), (C, nk)
            wv, wgx, wgy = oracle.kl_divergence_logits_value_and_grad(
                p, q, reduction="none", grad_divisor=nk)
            assert same_bits(out, wv) and same_bits(gx, wgx) and same_bits(gy, wgy), (C, nk)


def test_special_rows_and_classes():
    """-inf in p only (``gp = 0``, ``gq = Q``), in both (0, 0), in q only (+inf: nan rows),
    no finite entry and a nan (nan rows), a shifted copy (zeros, exactly), a class 800 and
    one 1200 below the row's maximum (the exponential's clamp), a permutation (``Q_0 = P_0``
    exactly: 0), dropped rows (zeros)."""
    rng = np.random.default_rng(24)
    p = rng.normal(size=(10, 5))
    q = rng.normal(size=(10, 5))
    p[0, 1] = -np.inf
    p[1, 2] = q[1, 2] = -np.inf
    q[2, 3] = -np.inf
    p[3] = -np.inf
    q[4, 0] = np.nan
    q[5] = p[5] + 2.0 ** -3  # exact shift
    p[6, 4] = p[6].max() - 800.0
    p[7, 4] = p[7].max() - 1200.0
    p[8] = [0.0, 1.0, 2.0, -1.0, 0.5]
    q[8] = [0.0, 2.0, 1.0, 0.5, -1.0]
    mask = np.ones(10, dtype=bool)
    mask[9] = False
    v, gp, gq = _check(p, q, reduction="none", mask=mask)
    assert v[2] == np.inf and np.isnan(gp[2]).all() and np.isnan(gq[2]).all()
    assert np.isnan(v[3]) and np.isnan(gp[3]).all() and np.isnan(v[4])
    assert v[5] == 0.0 and not gp[5].any() and not gq[5].any()
    assert gp[0, 1] == 0.0 and gq[0, 1] > 0.0 and gp[1, 2] == 0.0 and gq[1, 2] == 0.0
    assert gq[8, 0] == 0.0 and gp[8, 0] != 0.0
    assert not gp[9].any() and not gq[9].any() and v[9] == 0.0


def test_mean_of_no_kept_rows():
    p = np.zeros((2, 3))
    v, gp, gq = _vg(p, p + 1.0, reduction="mean", mask=np.zeros(2, dtype=bool))
    assert np.isnan(v) and not gp.any() and not gq.any()


def test_fast_mode_and_float32_unchanged():
    """float32 in the correct mode is the fast mode's (the mode covers float64 results);
    float64 in the fast mode is within the gradient's stated 8u (absolute) of the correct
    mode's."""
    rng = np.random.default_rng(25)
    p = rng.normal(size=(5, 8))
    q = rng.normal(size=(5, 8))
    f32 = crossent.kl_divergence_logits_value_and_grad(p.astype(np.float32), q.astype(np.float32))
    c32 = _vg(p.astype(np.float32), q.astype(np.float32))
    for a, b in zip(f32, c32):
        assert same_bits(a, b)
    fast = crossent.kl_divergence_logits_value_and_grad(p, q, reduction="sum")
    cr = _vg(p, q, reduction="sum")
    for a, b in zip(fast[1:], cr[1:]):
        assert np.max(np.abs(a - b)) <= 8 * 2.0**-53


# ---------------------------------------------------------------------------------------
# Jensen-Shannon


def _js_check(p, q, **kw):
    with crossent.rounding("correct"):
        v, gp, gq = crossent.js_divergence_logits_value_and_grad(p, q, **kw)
    wv, wgp, wgq = oracle.js_divergence_logits_value_and_grad(p, q, **kw)
    assert same_bits(gp, wgp), np.argwhere(~((gp == wgp) | (np.isnan(gp) & np.isnan(wgp))))[:5]
    assert same_bits(gq, wgq), np.argwhere(~((gq == wgq) | (np.isnan(gq) & np.isnan(wgq))))[:5]
    if kw.get("reduction") == "none":
        assert same_bits(v, wv)
    return v, gp, gq


@pytest.mark.parametrize("beta", [0.5, 0.1, 0.9])
def test_js_independent_and_near_equal_rows(beta):
    """Independent rows ('mean' with a dropped row, 'sum') and near-equal rows ('none'): bit
    for bit, and the kernel decides every independent row (the slow-path count)."""
    rng = np.random.default_rng(31)
    p = rng.normal(scale=3.0, size=(12, 10))
    q = rng.normal(scale=3.0, size=(12, 10))
    mask = np.ones(12, dtype=bool)
    mask[5] = False
    before = list(_rounding.COUNTS.get("js_divergence_logits_value_and_grad", [0, 0]))
    _js_check(p, q, beta=beta, reduction="mean", mask=mask)
    _js_check(p, q, beta=beta, reduction="sum")
    after = _rounding.COUNTS["js_divergence_logits_value_and_grad"]
    assert after[0] - before[0] == 23 and after[1] == before[1]
    P = np.exp(p - p.max(axis=1, keepdims=True))
    rho = np.exp(rng.uniform(np.log(1e-6), np.log(0.3), size=(12, 1)))
    near = np.log(P * (1.0 + rho * rng.uniform(-1.0, 1.0, size=p.shape)))
    _js_check(p, near, beta=beta, reduction="none")


def test_js_special_rows_and_classes():
    """A class masked in one row (``log beta``, ``log(1 - beta)``), in both, no class in
    common (zeros: JSD is h(beta)), nan and empty rows (nan), a shifted copy (zeros), a
    class 800 below the maximum, ``beta`` 0 and 1 (zeros), another class axis."""
    rng = np.random.default_rng(32)
    p = rng.normal(size=(8, 6))
    q = rng.normal(size=(8, 6))
    p[0, 1] = -np.inf
    q[0, 2] = -np.inf
    p[1, 3] = q[1, 3] = -np.inf
    p[2, :3] = -np.inf
    q[2, 3:] = -np.inf
    p[3, 0] = np.nan
    q[4] = -np.inf
    p[5] = [0.25, -1.5, 2.0, 0.75, -0.5, 1.0]  # dyadic: the shift is exact
    q[5] = p[5] - 0.5
    p[6, 5] = p[6].max() - 800.0
    v, gp, gq = _js_check(p, q, beta=0.3, reduction="none")
    assert gp[0, 1] == 0.0 and gq[0, 2] == 0.0 and gq[0, 1] != 0.0 and gp[0, 2] != 0.0
    assert not gp[2].any() and not gq[2].any() and v[2] > 0.0
    assert np.isnan(gp[3]).all() and np.isnan(gq[4]).all()
    assert v[5] == 0.0 and not gp[5].any() and not gq[5].any()
    for b in (0.0, 1.0):
        _v, gp, gq = _js_check(p[5:], q[5:] + 1.0, beta=b, reduction="sum")
        assert not gp.any() and not gq.any()
    p3 = np.moveaxis(p[6:8].reshape(1, 2, 6), 2, 1)
    q3 = np.moveaxis(q[6:8].reshape(1, 2, 6), 2, 1)
    _js_check(p3, q3, beta=0.7, axis=1, reduction="none")
