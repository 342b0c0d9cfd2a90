"""The documentation: its examples run, its generated parts match the code, and it builds.

- the doctest examples in the docstrings of the public modules run and pass;
- every public function's docstring has the parts the API reference promises (Notes with the
  math, an accuracy statement where the bounds table has one, and a runnable example);
- the examples of the home page and the tutorial pages (``docs/tutorial/*.md``) run and pass;
- the bounds table included by ``docs/accuracy.md`` is the one ``crossent._bounds`` states now;
- every public name of ``crossent`` is in the API reference.

The built site itself (``mkdocs build --strict``, and what a reader sees in it) is checked by
``tests/test_site.py``.

A public module that does not exist yet is skipped with the reason, not failed: the modules are
written in parallel and this file must not block their authors. Once a module exists, its
examples must pass.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "scripts"))

PUBLIC_MODULES = ["crossent.softmax", "crossent.loss", "crossent.pmf", "crossent.ulp", "crossent.reference",
                  "crossent.linear", "crossent.binary",
                  "crossent.divergence", "crossent._rounding"]

#: public functions (module, name) that the API reference documents
PUBLIC_FUNCTIONS = [
    ("crossent.softmax", "logsumexp"),
    ("crossent.softmax", "log_softmax"),
    ("crossent.softmax", "softmax"),
    ("crossent.loss", "cross_entropy"),
    ("crossent.loss", "cross_entropy_value_and_grad"),
    ("crossent.binary", "binary_cross_entropy_with_logits"),
    ("crossent.binary", "binary_cross_entropy_with_logits_value_and_grad"),
    ("crossent.binary", "softplus"),
    ("crossent.binary", "log_sigmoid"),
    ("crossent.pmf", "entropy"),
    ("crossent.pmf", "cross_entropy_pmf"),
    ("crossent.pmf", "kl_divergence"),
    ("crossent.pmf", "empirical_pmf"),
    ("crossent.pmf", "categorical_log_likelihood"),
    ("crossent.ulp", "ulp_error"),
    ("crossent.ulp", "round_to_dtype"),
    ("crossent.linear", "linear_cross_entropy"),
    ("crossent.linear", "linear_cross_entropy_value_and_grad"),
    ("crossent.divergence", "kl_divergence_logits"),
    ("crossent.divergence", "kl_divergence_logits_value_and_grad"),
    ("crossent.divergence", "js_divergence_logits"),
    ("crossent.divergence", "js_divergence_logits_value_and_grad"),
    ("crossent.divergence", "entropy_logits"),
    ("crossent.divergence", "entropy_logits_value_and_grad"),
]

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_or_skip(name: str):
    try:
        spec = importlib.util.find_spec(name)
    except ModuleNotFoundError:
        spec = None
    if spec is None:
        pytest.skip(f"{name} does not exist yet")
    return importlib.import_module(name)


# ---------------------------------------------------------------------------------------------
# docstring examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("modname", PUBLIC_MODULES)
def test_docstring_examples_run(modname):
    mod = _module_or_skip(modname)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    tests = [t for t in finder.find(mod, modname) if t.examples]
    if not tests:
        pytest.fail(f"{modname} has no doctest examples at all")
    for t in tests:
        runner.run(t)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {modname}"


def _bounded_functions() -> set[str]:
    from crossent._bounds import BOUNDS

    from gen_pages import API_BOUNDS

    return {f for f, keys in API_BOUNDS.items() if any(k in BOUNDS for k in keys)}


@pytest.mark.parametrize("modname,name", PUBLIC_FUNCTIONS, ids=[n for _, n in PUBLIC_FUNCTIONS])
def test_public_docstring_has_math_bound_and_example(modname, name):
    mod = _module_or_skip(modname)
    fn = getattr(mod, name, None)
    assert fn is not None, f"{modname}.{name} is missing"
    doc = fn.__doc__ or ""
    sections = set(re.findall(r"^\s*(\w[\w ]*)\n\s*-{3,}\s*$", doc, flags=re.M))
    assert "Examples" in sections and ">>>" in doc, f"{name}: no runnable Examples section"
    assert "Notes" in sections, f"{name}: no Notes section (the mathematics goes there)"
    assert "math" in doc, f"{name}: Notes without math (.. math:: or :math:)"
    if name in _bounded_functions():
        assert re.search(r"\bulps?\b", doc, flags=re.I), f"{name}: the accuracy bound is not stated"


# ---------------------------------------------------------------------------------------------
# the tutorial's examples, the generated includes, the API page
# ---------------------------------------------------------------------------------------------

TUTORIAL_PAGES = [DOCS / "index.md"] + sorted((DOCS / "tutorial").glob("*.md"))


@pytest.mark.parametrize("page", TUTORIAL_PAGES, ids=[p.relative_to(DOCS).as_posix() for p in TUTORIAL_PAGES])
def test_tutorial_examples_run(page):
    text = page.read_text()
    if ">>>" not in text:
        pytest.skip("no examples on this page")
    crossent = _module_or_skip("crossent")
    for name in set(re.findall(r"crossent\.(\w+)\(", text)):
        if not hasattr(crossent, name):
            pytest.skip(f"crossent.{name} does not exist yet")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {page.name}"


def test_bounds_table_include_is_current():
    from gen_pages import bounds_table

    committed = (DOCS / "generated" / "bounds_table.md").read_text().splitlines()
    assert committed[1:] == bounds_table().splitlines(), (
        "docs/generated/bounds_table.md is stale: run python docs/scripts/gen_pages.py"
    )


def test_accuracy_page_has_a_section_for_every_analysis_anchor():
    from crossent._bounds import BOUNDS

    page = (DOCS / "accuracy.md").read_text()
    anchors = set(re.findall(r"\{#([\w-]+)\}", page))
    wanted = {b.analysis for rows in BOUNDS.values() for b in rows.values() if b.analysis}
    assert wanted <= anchors, f"docs/accuracy.md lacks sections {sorted(wanted - anchors)}"


def test_api_page_lists_every_public_name():
    crossent = _module_or_skip("crossent")
    api = (DOCS / "api.md").read_text()
    documented = set(re.findall(r"^::: crossent\.(?:\w+\.)*(\w+)$", api, flags=re.M))
    missing = [
        n for n in crossent.__all__
        if n not in documented and n not in ("BOUNDS",) and callable(getattr(crossent, n, None))
    ]
    assert not missing, f"docs/api.md does not document {missing}"


def test_griffe_math_rewrites_rst_math():
    pytest.importorskip("griffe")
    import griffe_math

    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for t in doctest.DocTestFinder().find(griffe_math):
        runner.run(t)
    assert runner.summarize(verbose=False).failed == 0
    md = griffe_math.rst_to_markdown("x\n\n.. math:: a^2\n\ny :math:`b` :func:`f`")
    assert "$$\na^2\n$$" in md and "$b$" in md and "`f`" in md and ".. math" not in md
