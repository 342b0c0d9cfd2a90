"""The public testing toolkit :mod:`crossent.testing` and ``crossent accuracy --impl``.

- the toolkit measures crossent's own functions within crossent's bounds table
  (:mod:`crossent._bounds`), and deliberately broken implementations (``tests/_naive_impl.py``:
  no max shift, ``log`` of a rounded softmax, a dropped rounding error) far outside it, on the
  families designed to catch them, while the ordinary ``random`` family does not see them;
- the messages of ``assert_ulp`` name the worst index, its ULP error, and the computed and
  exact values (the exact value and the ULP count recomputed here with mpmath at 300 bits);
- a ``Report`` pickles, converts to JSON, prints as a table and plots;
- the PyTorch and JAX adapters agree with crossent on ordinary inputs in every layout, and leave
  out the cases they cannot express (skipped when PyTorch or JAX is not installed);
- the command measures a callable named ``module:callable`` and exits non-zero past
  ``--max-ulp``;
- the example kernel of the documentation (``examples/test_naive_numba_kernel.py``) is caught.

Every expected value comes from the oracle ``crossent.reference`` (through the toolkit), from
mpmath in ``mp.workprec``, or from the bounds table; none is typed in.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import pickle
import re
import sys
from pathlib import Path

import mpmath
import numpy as np
import pytest

import crossent
from crossent import testing
from crossent._bounds import bound
from crossent.cli import main as cli_main
from crossent.corpus import logits as logits_mod
from crossent.corpus import pmf as pmf_mod

import _naive_impl as naive

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(size="smoke")

#: the name the measurement library gives each public function's bound row
_ROW = {f: f for f in testing.FUNCTIONS}
_ROW["cross_entropy_value_and_grad"] = "cross_entropy_grad"


# ---------------------------------------------------------------------------------------
# the corpus


def test_families_are_the_corpus_families_each_with_what_it_catches():
    assert tuple(testing.FAMILIES["logits"]) == logits_mod.FAMILIES
    assert tuple(testing.FAMILIES["pmf"]) == pmf_mod.FAMILIES
    for kind in ("logits", "pmf"):
        for name, text in testing.FAMILIES[kind].items():
            assert len(text) > 20, (kind, name)
    with pytest.raises(TypeError):
        testing.FAMILIES["logits"]["new"] = "x"  # read-only


def test_corpus_records():
    cases = testing.logits_corpus("float32", families=["confident", "axis"], size="smoke")
    assert {c.family for c in cases} == {"confident", "axis"}
    for c in cases:
        assert c.name.startswith(c.family + "/") and c.note
        assert c.logits.dtype == np.float32
        assert set(c.options) == {"axis", "weight", "ignore_index", "reduction",
                                  "label_smoothing"}
    same = testing.logits_corpus(np.float32, families=["confident", "axis"], size="smoke")
    assert all(np.array_equal(a.logits, b.logits) for a, b in zip(cases, same))
    pcs = testing.pmf_corpus("float64", families=["perturbed"], size="smoke",
                             function="entropy")
    assert pcs and all(len(c.args) == 1 and c.family == "perturbed" for c in pcs)
    with pytest.raises(ValueError, match="dtype"):
        testing.logits_corpus("int32")
    with pytest.raises(ValueError, match="families"):
        testing.pmf_corpus("float64", families=["confident"])


# ---------------------------------------------------------------------------------------
# crossent itself, measured by the toolkit: within its own bounds


_PUBLIC = {f: getattr(crossent, f) for f in testing.FUNCTIONS}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("function", testing.FUNCTIONS)
def test_crossent_is_within_its_bounds(function, dtype):
    r = testing.measure(_PUBLIC[function], function, dtype, **SMOKE)
    b = bound(_ROW[function], dtype)
    assert r.summary["n"] > 0 and not r.skipped and not r.failed
    assert r.max_ulp <= b.max_ulp, r.table()
    assert r.summary["bound"] == b.max_ulp
    assert r.passed, r.table()


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_crossent_reductions_within_bounds(reduction):
    r = testing.measure(crossent.cross_entropy, "cross_entropy", "float16",
                        reduction=reduction, **SMOKE)
    assert r.summary["n"] == r.summary["cases"]  # one output per case
    assert r.max_ulp <= bound("cross_entropy_mean", "float16").max_ulp and r.passed


def test_gradient_reduction_option_overrides_the_cases():
    seen = []

    def spy(logits, target, **kw):
        seen.append(kw["reduction"])
        return crossent.cross_entropy_value_and_grad(logits, target, **kw)

    r = testing.measure(spy, "cross_entropy_value_and_grad", "float64", reduction="sum",
                        families=["random"], **SMOKE)
    assert set(seen) == {"sum"} and r.passed


# ---------------------------------------------------------------------------------------
# broken implementations: far outside, on the family designed to catch each


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl,function,catching", [
    (naive.naive_logsumexp, "logsumexp", "offset"),          # exp overflows: inf
    (naive.naive_softmax, "softmax", "offset"),              # inf / inf
    (naive.naive_cross_entropy, "cross_entropy", "confident"),  # log of a rounded p ~ 1
    (naive.dropped_shift_cross_entropy, "cross_entropy", "confident"),  # log(1 + tiny) = 0
])
def test_broken_implementations_are_far_outside(impl, function, catching, dtype):
    r = testing.measure(impl, function, dtype, **SMOKE)
    b = bound(_ROW[function], dtype).max_ulp
    assert not r.passed
    assert r.max_ulp > 1e6 * b, r.table()
    assert r.families[catching]["max_ulp"] > 1e6 * b, r.table()
    # the ordinary case does not show it: what a test on random logits sees
    assert r.families["random"]["max_ulp"] < 4 * b, r.table()
    assert r.worst is not None and r.worst.ulp == r.max_ulp
    assert r.worst.case.name in {c["name"] for c in r.cases}


def test_dropped_shift_is_caught_in_the_offset_family_too():
    """``m + log S`` rounded: at an offset of 1e300 the whole ``log S`` is absorbed."""
    r = testing.measure(naive.dropped_shift_cross_entropy, "cross_entropy", "float64",
                        families=["offset"], **SMOKE)
    assert r.max_ulp > 1e10


def test_worst_is_the_largest_error_and_reproducible():
    r = testing.measure(naive.naive_cross_entropy, "cross_entropy", "float64",
                        families=["confident"], **SMOKE)
    w = r.worst
    c = w.case
    out = naive.naive_cross_entropy(c.logits, c.target, **c.loss_options("none")).reshape(-1)
    assert out[w.index] == w.computed
    exact = crossent.reference.cross_entropy(c.logits, c.target, exact=True,
                                             **c.loss_options("none")).reshape(-1)[w.index]
    assert crossent.ulp_error(np.float64(w.computed), exact, "float64") == w.ulp
    assert mpmath.mpf(w.exact) == pytest.approx(exact, rel=1e-18)


# ---------------------------------------------------------------------------------------
# Report: pickle, JSON, table, plot


@pytest.fixture(scope="module")
def broken_report():
    return testing.measure(naive.naive_cross_entropy, "cross_entropy", "float32", **SMOKE)


def test_report_pickles(broken_report):
    r2 = pickle.loads(pickle.dumps(broken_report))
    assert r2.summary == broken_report.summary or json.dumps(r2.to_dict()) == json.dumps(
        broken_report.to_dict())
    assert np.array_equal(r2.errors, broken_report.errors)
    assert r2.worst.case.name == broken_report.worst.case.name
    assert repr(r2) == repr(broken_report)


def test_report_json(broken_report, tmp_path):
    text = broken_report.to_json(tmp_path / "r.json")
    d = json.loads(text)
    assert json.loads((tmp_path / "r.json").read_text()) == d
    assert d["function"] == "cross_entropy" and d["dtype"] == "float32"
    assert d["summary"]["max_ulp"] == "inf"  # the confident-wrong rows: log(0)
    assert set(d["families"]) == set(testing.FAMILIES["logits"])
    assert d["worst"]["case"] == broken_report.worst.case.name
    assert d["summary"]["n"] == broken_report.summary["n"] == broken_report.errors.size
    assert "NaN" not in text and "Infinity" not in text  # strict JSON


def test_report_table(broken_report):
    text = broken_report.table()
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["family", "cases", "outputs"]
    body = {ln.split()[0]: ln.split() for ln in lines[1:-1]}
    assert set(body) == set(testing.FAMILIES["logits"]) | {"all"}
    assert body["all"][3] == "inf"
    md = broken_report.table("markdown")
    assert md.startswith("| family |") and "| all |" in md
    with pytest.raises(ValueError, match="format"):
        broken_report.table("html")


def test_report_table_rich(broken_report):
    pytest.importorskip("rich")
    from rich.table import Table

    t = broken_report.table("rich")
    assert isinstance(t, Table) and t.row_count == len(broken_report.families) + 1


def test_report_plot(broken_report, tmp_path):
    pytest.importorskip("matplotlib")
    path = broken_report.plot(tmp_path / "r.png", families=["confident", "random"])
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_plot_without_matplotlib(broken_report, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"crossent\[testing\]"):
        broken_report.plot(tmp_path / "r.png")


# ---------------------------------------------------------------------------------------
# measure: arguments, unsupported cases, errors


def test_measure_rejects_bad_arguments():
    f = crossent.cross_entropy
    with pytest.raises(TypeError, match="unexpected options"):
        testing.measure(f, "cross_entropy", "float32", sise="smoke")
    with pytest.raises(ValueError, match="function"):
        testing.measure(f, "cross_entropy_mean", "float32")
    with pytest.raises(TypeError, match="reduction"):
        testing.measure(crossent.softmax, "softmax", "float32", reduction="mean")
    with pytest.raises(ValueError, match="reduction"):
        testing.measure(f, "cross_entropy", "float32", reduction="batchmean")
    with pytest.raises(TypeError, match="impl"):
        testing.measure("crossent.cross_entropy", "cross_entropy", "float32")
    pmf_cases = testing.pmf_corpus("float32", families=["k1"], size="smoke")
    with pytest.raises(ValueError, match="corpus"):
        testing.measure(f, "cross_entropy", "float32", corpus=pmf_cases)
    cases64 = testing.logits_corpus("float64", families=["k1"], size="smoke")
    with pytest.raises(ValueError, match="float64"):
        testing.measure(f, "cross_entropy", "float32", corpus=cases64)


def test_measure_given_corpus_and_entropy_cases():
    cases = testing.logits_corpus("float64", families=["k2", "ties"], size="smoke")
    r = testing.measure(crossent.cross_entropy, "cross_entropy", "float64", corpus=cases,
                        families=["ties"])
    assert set(r.families) == {"ties"} and r.options["size"] == "given"
    pcs = testing.pmf_corpus("float32", families=["k2"], size="smoke")  # made for (p, q)
    r = testing.measure(crossent.entropy, "entropy", "float32", corpus=pcs)
    assert r.summary["n"] > 0 and r.passed


def test_unsupported_cases_are_skipped_and_listed():
    def no_weights(logits, target, *, weight=None, **kw):
        if weight is not None:
            raise testing.Unsupported("no class weights")
        return crossent.cross_entropy(logits, target, **kw)

    r = testing.measure(no_weights, "cross_entropy", "float64",
                        families=["weighted-ignore"], **SMOKE)
    weighted = {c.name for c in testing.logits_corpus("float64", families=["weighted-ignore"],
                                                      **SMOKE) if c.weight is not None}
    assert set(r.skipped) == weighted and set(r.skipped.values()) == {"no class weights"}
    assert r.summary["cases"] == len(testing.logits_corpus(
        "float64", families=["weighted-ignore"], **SMOKE)) - len(weighted)
    assert "skipped" in r.table() and "skipped" in repr(r)


def test_errors_propagate_with_the_case_or_are_listed():
    def crashes_on_3d(logits, target, **kw):
        if logits.ndim != 2:
            raise RuntimeError("2-D only")
        return crossent.cross_entropy(logits, target, **kw)

    with pytest.raises(RuntimeError, match="2-D only") as info:
        testing.measure(crashes_on_3d, "cross_entropy", "float32", families=["axis"],
                        **SMOKE)
    assert any("axis/3d-axis1" in n for n in getattr(info.value, "__notes__", []))
    r = testing.measure(crashes_on_3d, "cross_entropy", "float32", families=["axis", "k1"],
                        on_error="skip", **SMOKE)
    assert set(r.failed) == {"axis/3d-axis1", "axis/3d-axis0", "axis/3d-axis1-prob"}
    assert all("RuntimeError: 2-D only" in v for v in r.failed.values())
    assert set(r.families) == {"k1"}


def test_wrong_output_size_is_an_error():
    def per_batch(logits, target, **kw):
        return np.atleast_1d(crossent.cross_entropy(logits, target, reduction="mean"))

    with pytest.raises(AssertionError, match="outputs"):
        testing.measure(per_batch, "cross_entropy", "float64", families=["random"], **SMOKE)


def test_a_wider_output_is_judged_rounded_and_does_not_pass():
    def widening(logits, target, **kw):
        return crossent.cross_entropy(logits.astype(np.float64), target, **kw)

    r = testing.measure(widening, "cross_entropy", "float16", families=["random"], **SMOKE)
    assert r.max_ulp <= 0.5  # float64 rounded once to float16 here: correctly rounded
    assert not r.passed  # but not the input's dtype


# ---------------------------------------------------------------------------------------
# assert_ulp and its messages


def _exact_ulps(computed: float, x, y) -> tuple:
    """(exact loss, its ULP error) of a two-or-more-class row, mpmath at 300 bits: the loss
    is log(sum exp(x)) - x_y, the error |c - e| / 2^(floor(log2 e) - 52)."""
    with mpmath.mp.workprec(300):
        xs = [mpmath.mpf(float(v)) for v in x]
        e = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in xs)) - xs[y]
        ulp = mpmath.mpf(2) ** (mpmath.floor(mpmath.log(e, 2)) - 52)
        return e, float(abs(mpmath.mpf(computed) - e) / ulp)


def test_assert_ulp_message():
    x = np.array([[1.0, 2.0, 3.0], [0.0, -50.0, -60.0], [0.0, -40.0, -45.0]])
    y = np.array([2, 0, 0])
    computed = crossent.cross_entropy(x, y, reduction="none")  # row 0: within 1 ulp
    computed[1:] = naive.naive_cross_entropy(x, y, reduction="none")[1:]
    assert computed[1] == 0.0 and computed[2] == 0.0  # the naive rows round to (-)0
    with pytest.raises(AssertionError) as info:
        testing.assert_ulp(computed, "cross_entropy", x, y, reduction="none")
    msg = str(info.value)
    # both rows are off by e/ulp(e), in [2^52, 2^53): which is worse depends on e's mantissa
    (uw, ew, iw), (un, _en, i_n) = sorted(
        [(*_exact_ulps(0.0, x[i], 0)[::-1], i) for i in (1, 2)], reverse=True)
    assert uw > un >= 2.0**52
    first, second = msg.splitlines()[:2]
    assert first.startswith("cross_entropy (float64): 2 of 3 outputs exceed 1 ulp; ")
    assert f"worst at index ({iw},): {uw:.4g} ulp, computed {computed[iw]}, exact " in first
    assert mpmath.mpf(first.rsplit("exact ", 1)[1]) == pytest.approx(ew, rel=1e-18)
    assert f"next at index ({i_n},): {un:.4g} ulp, computed {computed[i_n]}, exact" in second


def test_assert_ulp_passes_and_honours_max_ulp():
    x = np.random.default_rng(0).normal(size=(4, 7)).astype(np.float32)
    testing.assert_ulp(crossent.softmax(x), "softmax", x)  # float32: correctly rounded
    testing.assert_ulp(crossent.softmax(x), "softmax", x, max_ulp=0.5)
    two_up = np.nextafter(np.nextafter(crossent.reference.softmax(x), np.float32(2)),
                          np.float32(2))
    with pytest.raises(AssertionError, match=r"exceed 1 ulp; worst at index \("):
        testing.assert_ulp(two_up, "softmax", x)
    testing.assert_ulp(two_up, "softmax", x, max_ulp=2.5)


def test_assert_ulp_tuples_shapes_and_types():
    x = np.array([[0.0, -30.0], [2.0, 1.0]])
    y = np.array([0, 1])
    v, g = crossent.cross_entropy_value_and_grad(x, y)
    testing.assert_ulp((v, g), "cross_entropy_value_and_grad", x, y, max_ulp=4)
    with pytest.raises(AssertionError, match=r"cross_entropy_value_and_grad output 1 "
                                             r"\(float64\): 1 of 4 outputs exceed"):
        g2 = g.copy()
        g2[1, 0] *= 1 + 1e-9
        testing.assert_ulp((v, g2), "cross_entropy_value_and_grad", x, y, max_ulp=4)
    with pytest.raises(AssertionError, match="returns 2 values"):
        testing.assert_ulp(v, "cross_entropy_value_and_grad", x, y)
    with pytest.raises(AssertionError, match=r"computed has shape \(2, 1\), the exact "
                                             r"result \(2,\)"):
        testing.assert_ulp(crossent.logsumexp(x)[:, None], "logsumexp", x)
    with pytest.raises(TypeError, match="computed"):
        testing.assert_ulp(np.array([1, 2]), "logsumexp", x)
    with pytest.raises(ValueError, match="function"):
        testing.assert_ulp(v, "lse", x)
    # a scalar result: the mean loss
    testing.assert_ulp(crossent.cross_entropy(x, y), "cross_entropy", x, y)
    with pytest.raises(AssertionError, match=r"worst at index \(\): "):
        testing.assert_ulp(crossent.cross_entropy(x, y) * (1 + 1e-12), "cross_entropy", x, y)


def test_doctests_of_the_module():
    import doctest

    result = doctest.testmod(testing, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 8 and result.failed == 0


# ---------------------------------------------------------------------------------------
# the PyTorch and JAX adapters


def _inputs():
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 3.0, size=(3, 5, 4))
    y = rng.integers(0, 5, size=(3, 4))
    probs = rng.dirichlet(np.ones(5), size=(3, 4)).transpose(0, 2, 1)
    return x, y, probs


def _close(a, b):
    """The same values up to the peers' own rounding (1e-9 relative, far above it and far
    below any mistake of axis, target or smoothing semantics)."""
    assert np.shape(a) == np.shape(b)
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, np.float64),
                               rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("layout", ["native", "rows"])
@pytest.mark.parametrize("adapter", ["torch", "jax"])
def test_adapters_agree_with_crossent_on_ordinary_inputs(adapter, layout):
    pytest.importorskip(adapter)
    if adapter == "jax":
        pytest.importorskip("optax")
    make = testing.torch_impl if adapter == "torch" else testing.jax_impl
    x, y, probs = _inputs()
    for f in ("logsumexp", "log_softmax", "softmax"):
        impl = make(f, layout=layout)
        assert impl.function == f and isinstance(impl.name, str)
        for axis in (1, -1):
            _close(impl(x, axis=axis), getattr(crossent, f)(x, axis=axis))
    ce = make("cross_entropy", layout=layout)
    vg = make("cross_entropy_value_and_grad", layout=layout)
    for t in (y, probs):
        for eps in (0.0, 0.1):
            kw = dict(axis=1, label_smoothing=eps)
            _close(ce(x, t, reduction="none", **kw),
                   crossent.cross_entropy(x, t, reduction="none", **kw))
            for red in ("mean", "sum"):
                v, g = vg(x, t, reduction=red, **kw)
                v0, g0 = crossent.cross_entropy_value_and_grad(x, t, reduction=red, **kw)
                _close(v, v0)
                _close(g, g0)
    p = probs
    q = np.roll(probs, 1, axis=1)
    _close(make("kl_divergence", layout=layout)(p, q, axis=1),
           crossent.kl_divergence(p, q, axis=1))


def test_adapters_call_the_peer_unchanged():
    """The default adapters return the peer's own bits: they move data, not numerics."""
    torch = pytest.importorskip("torch")
    x, y, _probs = _inputs()
    F = torch.nn.functional
    direct = F.cross_entropy(torch.from_numpy(x), torch.from_numpy(y), reduction="none")
    got = testing.torch_impl("cross_entropy")(x, y, axis=1, reduction="none")
    assert np.array_equal(got, direct.numpy())
    direct = F.softmax(torch.from_numpy(x), dim=0).numpy()
    assert np.array_equal(testing.torch_impl("softmax")(x, axis=0), direct)
    pytest.importorskip("optax")
    import jax.numpy as jnp
    import optax

    direct = optax.softmax_cross_entropy_with_integer_labels(jnp.asarray(x), jnp.asarray(y),
                                                             axis=1)
    got = testing.jax_impl("cross_entropy")(x, y, axis=1, reduction="none")
    assert got.dtype == np.float64 and np.array_equal(got, np.asarray(direct))


def test_torch_adapter_options_and_custom_kernels():
    torch = pytest.importorskip("torch")
    x, y, _probs = _inputs()
    w = np.linspace(0.5, 2.0, 5)
    y_ign = np.where(y == 2, -100, y)
    ce = testing.torch_impl("cross_entropy")
    _close(ce(x, y_ign, axis=1, weight=w, reduction="none"),
           crossent.cross_entropy(x, y_ign, axis=1, weight=w, reduction="none"))

    def fused(input, target, reduction="mean"):  # a 2-D kernel with no other options
        assert input.ndim == 2 and target.ndim == 1
        return torch.nn.functional.cross_entropy(input, target, reduction=reduction)

    k = testing.torch_impl("cross_entropy", fused, layout="rows")
    assert k.name.endswith("fused")
    _close(k(x, y, axis=1, reduction="none"), crossent.cross_entropy(x, y, axis=1,
                                                                      reduction="none"))
    for kw in (dict(weight=w), dict(label_smoothing=0.1)):
        with pytest.raises(testing.Unsupported):
            k(x, y, axis=1, reduction="none", **kw)
    with pytest.raises(testing.Unsupported, match="ignore_index"):
        k(x, y_ign, axis=1, reduction="none")
    with pytest.raises(ValueError, match="function"):
        testing.torch_impl("entropy")
    with pytest.raises(ValueError, match="layout"):
        testing.torch_impl("softmax", layout="columns")
    r = testing.measure(k, "cross_entropy", "float32", families=["weighted-ignore"], **SMOKE)
    assert r.skipped and all("takes no" in v for v in r.skipped.values())


def test_jax_adapter_leaves_out_what_optax_cannot_express():
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    ce = testing.jax_impl("cross_entropy")
    x, y, _probs = _inputs()
    with pytest.raises(testing.Unsupported, match="weights"):
        ce(x, y, axis=1, weight=np.ones(5), reduction="none")
    with pytest.raises(testing.Unsupported, match="ignore_index"):
        ce(x, np.where(y == 2, -100, y), axis=1, reduction="none")
    r = testing.measure(ce, "cross_entropy", "float64", families=["weighted-ignore", "k1"],
                        **SMOKE)
    assert r.skipped and "k1" in r.families
    ent = testing.jax_impl("entropy")
    p = _inputs()[2]
    _close(ent(p, axis=1), crossent.entropy(p, axis=1))
    with pytest.raises(testing.Unsupported):
        ent(p, base=2.0)


# ---------------------------------------------------------------------------------------
# the command


def test_cli_impl_from_a_file(tmp_path, capsys):
    out = tmp_path / "r.json"
    plot = tmp_path / "r.png"
    args = ["accuracy", "--impl", str(ROOT / "tests" / "_naive_impl.py") +
            ":naive_cross_entropy", "--function", "cross_entropy", "--dtype", "float64",
            "--size", "smoke", "--families", "confident", "random", "--json", str(out),
            "--max-ulp", "3"]
    if importlib.util.find_spec("matplotlib") is not None:
        args += ["--plot", str(plot)]
    status = cli_main(args)
    captured = capsys.readouterr()
    assert status == 1
    assert "FAIL cross_entropy float64" in captured.err and "--max-ulp 3" in captured.err
    assert "confident" in captured.out and "random" in captured.out
    (d,) = json.loads(out.read_text())
    assert set(d["families"]) == {"confident", "random"}
    assert float(d["summary"]["max_ulp"]) > 1e12
    if "--plot" in args:
        assert plot.read_bytes()[:4] == b"\x89PNG"


def test_cli_impl_from_a_module(monkeypatch, capsys):
    monkeypatch.chdir(ROOT / "tests")
    status = cli_main(["accuracy", "--impl", "crossent:cross_entropy", "--dtype", "float32",
                       "--size", "smoke", "--families", "k2", "--max-ulp", "1",
                       "--json", "-"])
    out = capsys.readouterr().out
    assert status == 0
    assert json.loads(out[out.index("[\n"):])[0]["summary"]["passed"] is True
    status = cli_main(["accuracy", "--impl", "_naive_impl:naive_logsumexp", "--function",
                       "logsumexp", "--dtype", "float32", "--size", "smoke", "--families",
                       "random"])
    assert status == 0  # no --max-ulp: the measurement alone


@pytest.mark.parametrize("argv,message", [
    (["--impl", "nocolon"], "MODULE:CALLABLE"),
    (["--impl", "crossent:no_such_function"], "has no no_such_function"),
    (["--impl", "crossent:cross_entropy", "--function", "cross_entropy_grad"], "--impl"),
    (["--families", "confident"], "goes with --impl"),
    (["--function", "cross_entropy_value_and_grad", "--no-peers"], "name of --impl"),
])
def test_cli_argument_errors(argv, message, capsys):
    assert cli_main(["accuracy", *argv]) == 2
    assert message in capsys.readouterr().err


def test_cli_torch_adapter(capsys):
    pytest.importorskip("torch")
    status = cli_main(["accuracy", "--impl", "torch.nn.functional:cross_entropy",
                       "--adapter", "torch", "--dtype", "float64", "--size", "smoke",
                       "--families", "random", "--max-ulp", "4"])
    assert status == 0, capsys.readouterr()


# ---------------------------------------------------------------------------------------
# the documentation's example: a naive Numba kernel, caught


def _example():
    path = ROOT / "examples" / "test_naive_numba_kernel.py"
    spec = importlib.util.spec_from_file_location("test_naive_numba_kernel", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_documented_naive_numba_kernel_is_caught(monkeypatch):
    """The example's two tests fail as the page says: the per-family measurement (run here on
    the "smoke" corpus for time; the page shows the "ci" run) and the one-row assertion."""
    pytest.importorskip("numba")
    mod = _example()
    x = np.random.default_rng(2).normal(size=(5, 9))
    y = np.arange(5)
    # an honest kernel on ordinary rows: within a few ulps of crossent
    _close(mod.naive_cross_entropy(x, y, reduction="none"),
           crossent.cross_entropy(x, y, reduction="none"))
    monkeypatch.setattr(mod, "measure", functools.partial(testing.measure, size="smoke"))
    with pytest.raises(AssertionError) as info:
        mod.test_against_the_oracle()
    text = str(info.value)
    assert re.search(r"^confident\s", text, flags=re.M)
    with pytest.raises(AssertionError, match=r"worst at index \(0,\): .* computed 0\.0, exact"):
        mod.test_one_confident_row()


def test_families_table_of_the_page_is_current():
    """``docs/generated/testing_families.md`` is what ``FAMILIES`` says now."""
    sys.path.insert(0, str(ROOT / "docs" / "scripts"))
    try:
        from testing_peers import families_markdown
    finally:
        sys.path.remove(str(ROOT / "docs" / "scripts"))
    committed = (ROOT / "docs" / "generated" / "testing_families.md").read_text()
    assert committed == families_markdown(), (
        "docs/generated/testing_families.md is stale: run "
        "python docs/scripts/testing_peers.py --families-only")
