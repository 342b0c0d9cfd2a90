"""Smoke test of the benchmark harness (``crossent bench``): structure, not speed.

No timing is asserted (times on a shared machine are noise); the test checks that every case
has every implementation, that the ratios are consistent with the medians, that skipped peers
are reported rather than faked, and that the JSON round-trips.
"""

from __future__ import annotations

import argparse
import json

import pytest

from crossent import _bench


@pytest.fixture(scope="module")
def quick_result():
    # the installed peers are included (JIT compilation of each case dominates the time)
    return _bench.run_bench(shapes=[(8, 16)], dtypes=["float32", "float64"], repeats=1,
                            quick=True)


def test_rows_cover_every_case(quick_result):
    res = quick_result
    assert set(res) == {"meta", "peers", "skipped", "rows"}
    impls = {"crossent", "numpy-sum", *res["peers"]}
    cases = {(tuple(r["shape"]), r["dtype"], r["mode"]) for r in res["rows"]}
    assert cases == {(s, d, m) for s in [(8, 16)] for d in ["float32", "float64"]
                     for m in _bench.MODES}
    for case in cases:
        got = {r["impl"] for r in res["rows"]
               if (tuple(r["shape"]), r["dtype"], r["mode"]) == case}
        assert got == impls


def test_ratios_are_consistent(quick_result):
    rows = quick_result["rows"]
    by_case = {}
    for r in rows:
        by_case.setdefault((tuple(r["shape"]), r["dtype"], r["mode"]), {})[r["impl"]] = r
    for case, impls in by_case.items():
        n, c = case[0]
        read = impls["numpy-sum"]["seconds"]
        peers = [impls[p]["seconds"] for p in _bench.PEERS if p in impls]
        for r in impls.values():
            assert r["seconds"] > 0
            assert r["ns_per_element"] == pytest.approx(r["seconds"] / (n * c) * 1e9)
            assert r["ratio_to_read"] == pytest.approx(r["seconds"] / read)
            if peers:
                assert r["ratio_to_fastest_peer"] == pytest.approx(r["seconds"] / min(peers))
            else:
                assert r["ratio_to_fastest_peer"] is None
        if peers:  # the fastest peer has ratio 1
            assert min(impls[p]["ratio_to_fastest_peer"] for p in _bench.PEERS
                       if p in impls) == pytest.approx(1.0)


def test_missing_peers_are_skipped_not_faked(quick_result):
    res = quick_result
    for name in _bench.PEERS:
        assert (name in res["peers"]) != (name in res["skipped"])
        if name in res["skipped"]:
            assert not any(r["impl"] == name for r in res["rows"])
    assert "crossent" not in res["skipped"]


def test_json_round_trip_and_summary(quick_result):
    again = json.loads(json.dumps(quick_result))
    assert again["rows"] == quick_result["rows"]
    assert "cases" in _bench.summary_line(quick_result)


def test_cli_writes_json_and_plot(tmp_path):
    parser = argparse.ArgumentParser()
    _bench.add_arguments(parser)
    out = tmp_path / "r.json"
    png = tmp_path / "r.png"
    args = parser.parse_args(["--quick", "--shapes", "4x10", "--dtypes", "float64",
                              "--repeats", "1", "--no-peers", "--json", str(out),
                              "--plot", str(png)])
    assert _bench.main_from_args(args) == 0
    res = json.loads(out.read_text())
    assert {r["impl"] for r in res["rows"]} == {"crossent", "numpy-sum"}
    assert res["peers"] == {} and res["meta"]["repeats"] == 1
    pytest.importorskip("matplotlib")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("kwargs, word", [
    ({"dtypes": ["float16"]}, "dtypes"),
    ({"repeats": 0}, "repeats"),
    ({"peers": ["tensorflow"]}, "peers"),
])
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        _bench.run_bench(shapes=[(2, 3)], **kwargs)


def test_bad_shape_names_the_argument():
    with pytest.raises(ValueError, match="shapes"):
        _bench._parse_shape("12by4")
    assert _bench._parse_shape("4096x1000") == (4096, 1000)


def test_each_timed_run_follows_a_run_of_the_same_implementation():
    # the timed call of an implementation must not come right after another library's call,
    # whose worker threads may still be spinning (see the module docstring of crossent._bench)
    calls = []
    _bench._time_cases({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}, repeats=3)
    assert calls.count("a") == calls.count("b") == _bench.WARMUP + 3 * (1 + _bench.SETTLE)
    assert _bench.SETTLE >= 1
    timed = calls[2 * _bench.WARMUP:]
    for k in range(0, len(timed), 1 + _bench.SETTLE):  # each group: settle calls, then the timed one
        group = timed[k:k + 1 + _bench.SETTLE]
        assert len(set(group)) == 1, group
