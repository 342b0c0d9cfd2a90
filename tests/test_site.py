"""The documentation site, built and read the way a reader sees it.

The site is built once (``mkdocs build --strict``, skipped with the reason when the docs extra is
not installed) and every page is read by ``docs/scripts/site_check.py``, which fails on:

- raw TeX outside a rendered formula (math is rendered to MathML at build time, so a reader
  without network access sees formulas: no script fetches a renderer);
- a citation of a file that is not in the repository, or of a document outside it;
- a broken local link, image or anchor, or a resource loaded from the network;
- an identifier in a table cell that can break mid-word.

Each check is first shown to fail on a small page that has the fault. The committed proof pages
are also read for what the proof scripts must not print on the site: a step shown as ``a = a``,
or SymPy's own notation.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(DOCS / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))

import site_check  # noqa: E402  (docs/scripts)

_REQUIRED = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "pymdownx",
             "latex2mathml")


# ---------------------------------------------------------------------------------------------
# the checks can fail
# ---------------------------------------------------------------------------------------------


def _page(body: str) -> site_check._Page:
    return site_check.parse(f"<html><body>{body}</body></html>")


@pytest.mark.parametrize("body", [
    r'<p>the loss is \(\log q\)</p>',
    r'<div class="arithmatex">\[ x^2 \]</div>',
    r"<p>$$ a = b $$</p>",
    r"<p>where $x \le 1$ holds</p>",
    r"<td>\operatorname{log1p}(s)</td>",
])
def test_raw_tex_is_found(body):
    assert site_check.raw_tex(_page(body))


@pytest.mark.parametrize("body", [
    '<p><math display="inline"><mi>x</mi></math> costs $5 and $6</p>',
    r"<pre><code>print('\\(x\\)')</code></pre>",
    "<p>the <code>$HOME</code> directory</p>",
])
def test_rendered_math_and_code_are_not_raw_tex(body):
    assert not site_check.raw_tex(_page(body))


def test_missing_files_are_found():
    page = _page("<p>see <code>src/crossent/nowhere.py</code> and notes/plan.md, "
                 "and <code>src/crossent/_bounds.py</code></p>")
    assert site_check.missing_files(page) == ["notes/plan.md", "src/crossent/nowhere.py"]


def test_outside_documents_are_found():
    from test_self_contained import _DESIGN_FILE, _ISSUE

    for text in (f"see {_DESIGN_FILE}.md", f"the goals ({_ISSUE} 5)"):
        assert site_check.missing_files(_page(f"<p>{text}</p>")), text


def test_code_blocks_are_not_citations():
    assert not site_check.missing_files(_page("<pre><code>crossent bench --json out.json</code></pre>"))


def test_broken_links_are_found(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "index.html").write_text('<h2 id="there">x</h2>')
    where = tmp_path / "index.html"
    html = ('<a href="a/">ok</a><a href="a/#there">ok</a><a href="#here" id="here">ok</a>'
            '<a href="b/">gone</a><a href="a/#nowhere">no anchor</a><img src="fig.png">'
            '<a href="https://example.org/">external link: fine</a>'
            '<script src="https://cdn.example.org/mathjax.js"></script>')
    where.write_text(html)
    found = site_check.broken_links(_page(html), where, tmp_path)
    assert found == sorted([
        "<script src=https://cdn.example.org/mathjax.js> needs the network",
        "a/#nowhere: no anchor #nowhere",
        "b/: no such page or file",
        "fig.png: no such page or file",
    ])


@pytest.mark.parametrize("body", [
    "<table><tr><td>cross_entropy_grad</td></tr></table>",
    "<table><tr><td><code>cross_en\u00adtropy</code></td></tr></table>",
    "<table><tr><td><code>cross_<wbr>entropy</code></td></tr></table>",
    "<table><tr><td>see crossent.reference</td></tr></table>",
])
def test_split_identifiers_are_found(body):
    assert site_check.split_identifiers(_page(body))


def test_identifiers_in_code_are_whole():
    page = _page("<table><tr><th>function</th></tr><tr><td><code>cross_entropy_grad</code></td>"
                 "<td>4 ulp</td></tr></table><p>log_softmax outside a table</p>")
    assert not site_check.split_identifiers(page)


def test_math_hook_renders_and_refuses():
    """The build-time renderer: its examples hold, and a formula it cannot convert stops the
    build instead of reaching a reader as TeX."""
    import doctest

    pytest.importorskip("latex2mathml")
    pytest.importorskip("mkdocs")
    import site_hooks
    from mkdocs.exceptions import PluginError

    assert doctest.testmod(site_hooks).failed == 0
    html = site_hooks.render_math(r'<p><span class="arithmatex">\(\operatorname{log1p}(s)\)</span></p>')
    assert "<math" in html and "log1p" in html and "operatorname" not in html
    with pytest.raises(PluginError, match="cannot render"):
        site_hooks.render_math(r'<span class="arithmatex">\(\arg\min_q f\)</span>', "x.md")


# ---------------------------------------------------------------------------------------------
# the built site
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    for module in _REQUIRED:
        if importlib.util.find_spec(module) is None:
            why = f"{module} is not installed (pip install '.[docs]')"
            if os.environ.get("CROSSENT_REQUIRE_DOCS"):  # CI (.ci/run): the site must be read
                pytest.fail(why)
            pytest.skip(why)
    out = tmp_path_factory.mktemp("site") / "site"
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed after {time.perf_counter() - t0:.0f} s:\n{log[-5000:]}"
    assert "WARNING" not in log, log
    return out


@pytest.fixture(scope="session")
def findings(site):
    return site_check.check_site(site)


@pytest.mark.parametrize("check", site_check.CHECKS)
def test_site_reads_well(findings, check):
    found = findings[check]
    assert not found, f"{len(found)} {check}:\n" + "\n".join(f"{p}: {w}" for p, w in found[:40])


def test_pages_and_api_are_built(site):
    from test_docs import PUBLIC_FUNCTIONS

    for page in ("index.html", "tutorial/die/index.html", "tutorial/mle/index.html",
                 "accuracy/index.html", "api/index.html", "article-gaps/index.html",
                 "performance/index.html", "generated/proofs/index.html"):
        assert (site / page).exists(), f"{page} missing from the built site"
    api = (site / "api" / "index.html").read_text()
    for modname, name in PUBLIC_FUNCTIONS:
        assert f'id="{modname}.{name}"' in api, f"{modname}.{name} not rendered"
    assert ".. math::" not in api, "reST math leaked into the API page"


def test_api_returns_say_what_is_returned(site):
    """Every row of every Returns table of the API reference has a description."""
    api = (site / "api" / "index.html").read_text()
    tables = re.findall(r'doc-section-title">Returns:</span></p>\s*<table>(.*?)</table>', api, re.S)
    assert tables
    for table in tables:
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
            cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            assert cells and cells[-1], f"a Returns row without a description: {cells}"
            assert "``" not in row, f"reST literal left in a Returns row: {cells}"


def test_math_is_rendered_in_the_pages(site):
    """Pages with formulas carry MathML, and the proof pages many formulas."""
    for page, least in (("index.html", 1), ("tutorial/likelihood/index.html", 20),
                        ("generated/proofs/index.html", 200), ("api/index.html", 20)):
        n = (site / page).read_text().count("<math ")
        assert n >= least, f"{page}: {n} formulas rendered, expected at least {least}"


def test_home_page_shows_the_example_and_the_figure(site):
    home = (site / "index.html").read_text()
    assert "3.85749970e-22" in home and "figures/ulp_vs_gap.png" in home
    assert "lln.png" in (site / "tutorial" / "die" / "index.html").read_text()


def test_tutorial_pages_link_to_the_next_and_previous(site):
    for page in ("likelihood", "mle", "cross-entropy"):
        html = (site / "tutorial" / page / "index.html").read_text()
        assert re.search(r'class="md-footer__link md-footer__link--prev"', html), page
        assert re.search(r'class="md-footer__link md-footer__link--next"', html), page


def test_table_code_is_kept_whole_by_the_stylesheet(site):
    css = (DOCS / "stylesheets" / "site.css").read_text()
    rule = re.search(r"table:not\(\[class\]\) code[^{]*\{([^}]*)\}", css)
    assert rule and "white-space: nowrap" in rule.group(1)
    for page in site.rglob("*.html"):
        if page.name != "404.html":
            assert "stylesheets/site.css" in page.read_text(), page


# ---------------------------------------------------------------------------------------------
# what the proof scripts print on the site
# ---------------------------------------------------------------------------------------------

PROOF_PAGES = sorted((DOCS / "generated" / "proofs").glob("*.md")) + [DOCS / "generated" / "proofs.md"]


@pytest.mark.parametrize("page", PROOF_PAGES, ids=lambda p: p.stem)
def test_proof_pages_read_as_mathematics(page):
    text = page.read_text()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # the scripts' source listings aside
    prose = re.sub(r"^    .*$", "", prose, flags=re.M)
    for m in re.finditer(r"^\$\$\n(.*?)\n\$\$$", prose, flags=re.S | re.M):
        sides = re.split(r" (?:=|:=|\\geq|>) ", m.group(1))
        assert not (len(sides) == 2 and sides[0].strip() == sides[1].strip()), m.group(1)
    for internal in (r"\bQ\.\w+\(", r"\bsp\.\w+", r"\bsympy\.", r"SymPy's \w+\.\w+"):
        assert not re.search(internal, prose), (page.name, internal)
    assert "**Claim.** " in text or page.stem in ("exp-bound", "exp-dd-bound") or "All proofs" in text


# ---------------------------------------------------------------------------------------------
# how proof scripts are numbered and placed (docs/contributing.md, "Proof scripts")
# ---------------------------------------------------------------------------------------------


def test_claim_numbers_place_the_proofs():
    """A claim's number decides its tutorial step; 10 and up are extensions, on no tutorial page
    even when the name matches a step's topic (a divergence is not step 5's KL)."""
    import gen_pages

    assert gen_pages.topic_of("05b_gibbs_inequality") == "kl"
    assert gen_pages.topic_of("07_kernel_identities") == "kernel-identities"
    assert gen_pages.topic_of("exp_error_bound") == "exp-bound"
    assert gen_pages.topic_of("exp_dd_error_bound") == "exp-dd-bound"
    for stem in ("10_logit_divergences", "11_binary_cross_entropy", "12a_loss_options"):
        assert gen_pages.is_extension(stem) and gen_pages.topic_of(stem) is None, stem
    assert not gen_pages.is_extension("07_kernel_identities")
    assert not gen_pages.is_extension("exp_error_bound")
    assert not gen_pages.is_extension("exp_dd_error_bound")


def test_claim_numbers_are_the_tutorial_steps():
    """Claim n is proven on the page of tutorial step n (the nav's "n. ..." entry), and each
    script's title says the number of its file name."""
    import gen_pages

    nav = dict(re.findall(r"^\s*- (\d+)\. [^:]+: tutorial/([\w-]+)\.md$",
                          (ROOT / "mkdocs.yml").read_text(), flags=re.M))
    assert nav and {int(n): t for n, t in nav.items()} == gen_pages._CLAIM_TOPIC
    for script in sorted((ROOT / "proofs").glob("[0-9]*.py")):
        number = re.match(r"0*(\d+[a-z]?)_", script.name).group(1)
        title = re.search(r'title="Claim (\d+[a-z]?)\b', script.read_text(encoding="utf-8"))
        assert title and title.group(1) == number, f"{script.name}: its title must say Claim {number}"


def test_generated_proof_pages_list_every_script():
    """The all-proofs page is made by discovery: every script is on it (tutorial claims first,
    extensions in their own section, each with an include of its own). Stale pages fail here:
    run python docs/scripts/gen_pages.py."""
    import gen_pages

    from crossent import _prove

    text = (DOCS / "generated" / "proofs.md").read_text(encoding="utf-8")
    tutorial, _, extensions = text.partition("{#extensions}")
    for script in _prove.list_proofs(ROOT / "proofs"):
        cited = f"`proofs/{script.name}`"
        if gen_pages.is_extension(script.stem):
            assert cited in extensions and cited not in tutorial, script.name
            assert (DOCS / "generated" / "proofs" / f"{script.stem}.md").exists(), script.name
        else:
            assert cited in tutorial, script.name
