"""Smoke tests of the ``crossent accuracy`` sweep (:mod:`crossent._accuracy`), of the
measurement under it (:mod:`crossent._measure`) and of the peers' adapters
(:mod:`crossent._peers`).

The sweep is checked on the "smoke" corpus with the oracle itself as the implementation
(rounded outputs: at most 1/2 ulp, so every row must pass) and with deliberately wrong
implementations built from the oracle (10 ulp off; one ulp off on the wrong side of the exact
value), which must be reported failing. Expected values: the oracle ``crossent.reference``.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import pytest

from crossent import _accuracy as acc
from crossent import _measure, _peers
from crossent import reference as ref
from crossent._bounds import bound


def _nudge(a, steps):
    """Move every finite nonzero entry ``steps`` floats away from zero (exactly)."""
    a = np.array(a, copy=True)
    flat = a.reshape(-1)
    for _ in range(abs(steps)):
        toward = np.where(flat > 0, np.inf, -np.inf) if steps > 0 else 0.0
        moved = np.nextafter(flat, toward).astype(a.dtype)
        flat[...] = np.where(np.isfinite(flat) & (flat != 0), moved, flat)
    return a


class _TenUlpOff:
    """The oracle's correctly rounded outputs moved by 10 ulp: must fail every bound."""

    def logsumexp(self, x, axis=-1):
        return _nudge(ref.logsumexp(x, axis=axis), 10)

    def log_softmax(self, x, axis=-1):
        return _nudge(ref.log_softmax(x, axis=axis), 10)

    def softmax(self, x, axis=-1):
        return _nudge(ref.softmax(x, axis=axis), 10)

    def cross_entropy(self, logits, target, **kw):
        return _nudge(ref.cross_entropy(logits, target, **kw), 10)

    def cross_entropy_value_and_grad(self, logits, target, **kw):
        v, g = ref.cross_entropy_value_and_grad(logits, target, **kw)
        return _nudge(v, 10), _nudge(g, 10)


class _OtherNeighbour:
    """softmax returning the float on the *other* side of the exact value: error in
    (1/2, 1] ulp, inside a 1-ulp bound but never correctly rounded."""

    def softmax(self, x, axis=-1):
        r = ref.softmax(x, axis=axis)
        e = ref.softmax(x, axis=axis, exact=True)
        out = r.copy()
        flat, ef = out.reshape(-1), e.reshape(-1)
        for i in range(flat.size):
            if ef[i] == 0 or flat[i] == ef[i]:
                continue
            direction = -np.inf if flat[i] > ef[i] else np.inf
            flat[i] = np.nextafter(flat[i], direction)
        return out


_KEYS = {"function", "dtype", "implementation", "max_ulp", "median_ulp",
         "frac_correctly_rounded", "n", "bound", "passed"}


def test_sweep_rows_with_the_oracle_as_implementation():
    fns = ("logsumexp", "cross_entropy", "cross_entropy_mean", "cross_entropy_grad")
    rows = acc.run_sweep(size="smoke", dtypes=("float16",), functions=fns,
                         peers=False, progress=False, implementations={"oracle": ref})
    assert {(r["function"], r["dtype"]) for r in rows} == {(f, "float16") for f in fns}
    for r in rows:
        assert _KEYS <= set(r)
        assert r["implementation"] == "oracle"
        assert r["n"] > 0
        assert r["bound"] == bound(r["function"], r["dtype"]).max_ulp
        assert r["max_ulp"] <= 0.5  # correctly rounded
        assert r["frac_correctly_rounded"] == 1.0
        assert r["passed"], r


def test_ten_ulp_off_is_reported_failing():
    fns = ("log_softmax", "cross_entropy_mean", "cross_entropy_grad")
    rows = acc.run_sweep(size="smoke", dtypes=("float64",), functions=fns, peers=False,
                         progress=False, implementations={"fake": _TenUlpOff()})
    assert len(rows) == len(fns)
    for r in rows:
        assert not r["passed"], r
        # 10 floats away from zero is 10 ulp of the exact value inside a binade, and up to 20
        # where the nudge crosses into the next binade (whose spacing is twice as large)
        assert 9 <= r["max_ulp"] <= 20.5, r


def test_not_correctly_rounded_is_reported_failing():
    """Inside the float32 max-ULP bound, but below the correctly rounded fraction."""
    b = bound("softmax", "float32")
    (r,) = acc.run_sweep(size="smoke", dtypes=("float32",), functions=("softmax",),
                         peers=False, progress=False,
                         implementations={"fake": _OtherNeighbour()})
    assert r["max_ulp"] <= b.max_ulp
    assert r["frac_correctly_rounded"] < b.min_correctly_rounded
    assert not r["passed"]


def test_pmf_functions_are_swept():
    rows = acc.run_sweep(size="smoke", dtypes=("float64",), functions=_measure.PMF_FUNCTIONS,
                         peers=False, progress=False, implementations={"oracle": ref})
    assert {r["function"] for r in rows} == set(_measure.PMF_FUNCTIONS)
    assert all(r["passed"] and r["n"] > 0 for r in rows)


def test_plain_progress_without_rich(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "rich.progress", None)  # import fails: plain fallback
    rows = acc.run_sweep(size="smoke", dtypes=("float16",), functions=("logsumexp",),
                         peers=False, progress=True, implementations={"oracle": ref})
    assert rows and rows[0]["passed"]
    assert "accuracy" in capsys.readouterr().err


def test_main_exit_status_and_json(monkeypatch, tmp_path, capsys):
    p = argparse.ArgumentParser()
    acc.add_arguments(p)
    out = tmp_path / "rows.json"
    args = p.parse_args(["--size", "smoke", "--dtype", "float64", "--function", "softmax",
                         "--no-peers", "--no-progress", "--json", str(out)])
    row = dict(function="softmax", dtype="float64", implementation="crossent", max_ulp=0.4,
               median_ulp=0.1, frac_correctly_rounded=1.0, n=10, bound=3.0, passed=True,
               min_correctly_rounded=None, peer=False)
    monkeypatch.setattr(acc, "run_sweep", lambda **kw: [dict(row)])
    assert acc.main_from_args(args) == 0
    assert json.loads(out.read_text())[0]["function"] == "softmax"
    monkeypatch.setattr(acc, "run_sweep", lambda **kw: [dict(row, passed=False, max_ulp=10.0)])
    assert acc.main_from_args(args) == 1
    assert "FAIL softmax float64" in capsys.readouterr().err
    # a failing peer row does not change the exit status
    peer = dict(row, implementation="pytorch", peer=True, passed=False)
    monkeypatch.setattr(acc, "run_sweep", lambda **kw: [dict(row), peer])
    assert acc.main_from_args(args) == 0


def test_missing_peer_is_skipped_not_faked(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert "pytorch" not in _peers.load_peers(("pytorch",))


def test_scipy_peer_rows():
    pytest.importorskip("scipy")
    rows = acc.run_sweep(size="smoke", dtypes=("float64",), functions=("logsumexp",),
                         peers=("scipy",), progress=False, implementations={"oracle": ref})
    names = {r["implementation"] for r in rows}
    assert names == {"oracle", "scipy"}
    sc = [r for r in rows if r["implementation"] == "scipy"][0]
    assert sc["peer"] and sc["n"] > 0


def test_unknown_function_is_rejected():
    with pytest.raises(ValueError, match="functions"):
        acc.run_sweep(size="smoke", functions=("nope",), peers=False, progress=False)
