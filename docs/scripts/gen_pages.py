"""Write every generated page and include of the documentation site.

Nothing under ``docs/generated/`` or ``docs/figures/`` is written by hand: this script writes it
from the code and from measurements, and it can be re-run at any time (it overwrites its own
output and nothing else). The output is committed so that ``mkdocs build --strict`` works from a
fresh clone without running the proofs, the accuracy sweep or the benchmark.

What it writes
--------------
``docs/generated/bounds_table.md``
    the accuracy table, read from :data:`crossent._bounds.BOUNDS` (included by accuracy.md);
``docs/generated/bounds/<function>.md``
    one function's rows of that table (included by api.md next to each function);
``docs/generated/proofs/<topic>.md``
    the derivations of the proof scripts of one tutorial topic, as ``crossent prove --format
    markdown`` renders them (the scripts' own Markdown mode), with the script's name, the command
    that runs it and its source (included by the tutorial pages);
``docs/generated/proofs/<stem>.md``
    the derivation of one extension (a claim numbered 10 or more, beyond the tutorial's
    steps), for the page that presents it (``docs/contributing.md#proof-numbers``);
``docs/generated/proofs.md``
    every derivation on one page, with the verdict table (a page of the site): the scripts
    are found by listing ``proofs/``, the tutorial's claims first, then the extensions;
``docs/generated/accuracy_table.md``, ``docs/generated/accuracy_figures.md``
    the measured ULP table of ``crossent accuracy --json`` and the figures of
    ``docs/scripts/plot_accuracy.py`` (or a note saying they have not been measured yet);
``docs/generated/bench_table.md``, ``docs/figures/bench.png``
    the table and the plot of ``crossent bench --json --plot``.

Usage (from the repository root)::

    python docs/scripts/gen_pages.py                      # bounds + proofs + tables from JSON
    python docs/scripts/gen_pages.py --figures            # ... and measure/plot the ULP figures
    python docs/scripts/gen_pages.py --run-accuracy --run-bench   # ... and re-measure both

The JSON files default to ``docs/data/accuracy.json`` and ``docs/data/bench.json``; the measured
data are committed there next to the tables made from them (they are small), so a table on the
site can always be traced to the run that produced it.

Exit status: 0 when everything was generated and every proof passed, 1 otherwise (the pages are
still written, with the failure visible on them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import posixpath
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
GEN = DOCS / "generated"
FIG = DOCS / "figures"
DATA = DOCS / "data"
PROOFS = ROOT / "proofs"

sys.path.insert(0, str(ROOT / "src"))

#: tutorial topics, in the order of the tutorial, and the proof scripts that belong to each one
#: (a script's file stem is matched against the patterns; the first topic that matches wins, in
#: the order of ``_MATCH_ORDER``). A script that matches no topic is still on the full proofs page.
TOPICS: dict[str, tuple[str, str]] = {
    "die": ("The empirical PMF", r"empirical|unbiased|lln|large_numbers|variance"),
    "likelihood": ("The likelihood", r"likelihood"),
    "mle": ("The MLE by KKT", r"mle|kkt|maximum_likelihood"),
    "cross-entropy": ("Cross-entropy and its units", r"unit|nats|bits|cross_entropy"),
    "kl": ("KL divergence and Gibbs' inequality", r"kl|gibbs|divergence"),
    "loss": ("The classification loss and its gradient", r"classification|loss|gradient|hessian|convex"),
    "kernel-identities": ("The identities the kernels use", r"identit|kernel|shift|smoothing|lse|logsumexp"),
    "exp-bound": ("The error bound of the exp kernel", r"exp_error|exp_bound|^exp"),
    "exp-dd-bound": ("The error bound of the double-double exp", r"exp_dd"),
}
_MATCH_ORDER = ["exp-dd-bound", "exp-bound", "mle", "likelihood", "die", "kernel-identities", "loss", "kl", "cross-entropy"]
#: a claim is numbered by its tutorial step (``proofs/<step>[a-z]_<name>.py``: claim 5b is the
#: second claim of step 5); the number decides first
_CLAIM_TOPIC = {1: "die", 2: "likelihood", 3: "mle", 4: "cross-entropy", 5: "kl", 6: "loss",
                7: "kernel-identities"}
#: claims numbered from here on (``proofs/10_<name>.py``, ``11a_``...) are extensions beyond the
#: tutorial's seven steps: each gets an include of its own, ``generated/proofs/<stem>.md`` (for a
#: page at the top of ``docs/``, under a level-2 heading), and the all-proofs page lists them
#: apart from the tutorial's claims; 8 and 9 are left free for steps the tutorial may gain
EXTENSION_FROM = 10
#: the page that includes each topic's proofs (the relative links of a proof depend on it), and
#: the level of the proof's heading there (the exp bound sits under a level-3 section)
_TOPIC_PAGE = {t: f"tutorial/{t}.md" for t in TOPICS} | {"exp-bound": "accuracy.md",
                                                           "exp-dd-bound": "accuracy.md"}
_TOPIC_LEVEL = {"exp-bound": 4, "exp-dd-bound": 4}
#: topics whose page introduces the proof with its own heading: the proof's title is left out
_TOPIC_UNTITLED = {"exp-bound", "exp-dd-bound"}

#: which rows of the bounds table document which public function (api.md)
API_BOUNDS = {
    "logsumexp": ["logsumexp"],
    "log_softmax": ["log_softmax"],
    "softmax": ["softmax"],
    "cross_entropy": ["cross_entropy", "cross_entropy_mean"],
    "cross_entropy_value_and_grad": ["cross_entropy", "cross_entropy_mean", "cross_entropy_grad"],
    "entropy": ["entropy"],
    "cross_entropy_pmf": ["cross_entropy_pmf"],
    "kl_divergence": ["kl_divergence"],
    "empirical_pmf": [],
    "categorical_log_likelihood": [],
    "kl_divergence_logits": ["kl_divergence_logits"],
    "kl_divergence_logits_value_and_grad": ["kl_divergence_logits"],
    "js_divergence_logits": ["js_divergence_logits"],
    "js_divergence_logits_value_and_grad": ["js_divergence_logits"],
    "entropy_logits": ["entropy_logits"],
    "entropy_logits_value_and_grad": ["entropy_logits"],
    "binary_cross_entropy_with_logits": ["binary_cross_entropy"],
    "binary_cross_entropy_with_logits_value_and_grad": ["binary_cross_entropy",
                                                        "binary_cross_entropy_grad"],
    "softplus": ["softplus"],
    "log_sigmoid": ["log_sigmoid"],
}

_HEADER = "<!-- generated by docs/scripts/gen_pages.py from {source}; do not edit -->\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not text.endswith("\n"):
        text += "\n"
    old = path.read_text() if path.exists() else None
    if old != text:
        path.write_text(text)
        print(f"  wrote {path.relative_to(ROOT)}")


def _fmt_ulp(x: float) -> str:
    return f"{x:g}"


# ---------------------------------------------------------------------------------------------
# the bounds table
# ---------------------------------------------------------------------------------------------


def _dtypes(functions) -> list[str]:
    """The dtypes of the bounds table, in the table's order (the first function's first)."""
    from crossent._bounds import BOUNDS

    out: list[str] = []
    for fn in functions:
        out += [dt for dt in BOUNDS[fn] if dt not in out]
    return out


def _and(words) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(words)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _md_plain(text: str) -> str:
    """Plain text (a condition of the bounds table) as Markdown: ``_``, ``*`` and ``|`` literal."""
    return re.sub(r"([\\`*_|\[\]])", r"\\\1", text)


def bounds_table(functions=None, link_prefix: str = "") -> str:
    """The bounds of ``functions`` (all by default) as Markdown: one row per function, one
    column per dtype, conditions as lettered notes under the table.

    Neighbouring dtypes whose bounds agree in every row share one column (the narrow formats,
    which all round the same float64 value once), so the table fits the page as dtypes are
    added; a dtype whose bounds differ gets its own column.
    """
    from crossent._bounds import BOUNDS

    functions = list(BOUNDS) if functions is None else list(functions)
    dtypes = _dtypes(functions)
    notes: list[str] = []
    cells: dict[tuple[str, str], str] = {}
    for fn in functions:
        for dtype in dtypes:
            b = BOUNDS[fn].get(dtype)
            if b is None:
                cells[fn, dtype] = "–"
                continue
            cell = f"{_fmt_ulp(b.max_ulp)}"
            if b.min_correctly_rounded is not None:
                cell += f", CR ≥ {100 * b.min_correctly_rounded:g}%"
            if b.analysis:  # the bound links to the analysis that derives it
                cell = f"[{cell}]({link_prefix}#{b.analysis})"
            if b.condition:
                text = _md_plain(b.condition)
                if text in notes:
                    letter = chr(ord("a") + notes.index(text))
                else:
                    notes.append(text)
                    letter = chr(ord("a") + len(notes) - 1)
                cell += f" ({letter})"
            cells[fn, dtype] = cell
    groups: list[list[str]] = []
    for dtype in dtypes:
        if groups and all(cells[fn, dtype] == cells[fn, groups[-1][0]] for fn in functions):
            groups[-1].append(dtype)
        else:
            groups.append([dtype])
    rows = ["| function | " + " | ".join(f"{', '.join(g)} (ulp)" for g in groups) + " |",
            "|---|" + "---|" * len(groups)]
    for fn in functions:
        rows.append(f"| `{fn}` | " + " | ".join(cells[fn, g[0]] for g in groups) + " |")
    legend = [
        "",
        "Each number is the largest error allowed, in ULPs of the output format, against the exact "
        "value of the function at the input floats; it links to the error analysis that derives "
        "it. *CR ≥ 99.9%*: at least that share of the corpus's outputs "
        "must be correctly rounded (error at most 1/2 ULP)."
        + (" A letter: the bound holds under the condition of that note." if notes else ""),
    ]
    for i, text in enumerate(notes):
        which = {}
        for fn in functions:
            for dt, b in BOUNDS[fn].items():
                if b.condition and _md_plain(b.condition) == text:
                    which.setdefault(fn, []).append(dt)
        where = "; ".join(f"{_and(dts)} `{fn}`" for fn, dts in which.items())
        legend += ["", f"({chr(ord('a') + i)}) {where}: {text}."]
    return "\n".join(rows + legend)


def gen_bounds() -> None:
    from crossent._bounds import BOUNDS

    src = "crossent._bounds.BOUNDS"
    _write(GEN / "bounds_table.md", _HEADER.format(source=src) + bounds_table())
    for api_name, keys in API_BOUNDS.items():
        keys = [k for k in keys if k in BOUNDS]
        if keys:
            text = "**Stated accuracy** (from the bounds table):\n\n" + bounds_table(keys, link_prefix="accuracy.md")
        else:
            text = (
                "**Stated accuracy:** this function has no row in the bounds table "
                "(`crossent._bounds.BOUNDS`)."
            )
        _write(GEN / "bounds" / f"{api_name}.md", _HEADER.format(source=src) + text)


# ---------------------------------------------------------------------------------------------
# the proofs
# ---------------------------------------------------------------------------------------------

_MARKER = "<!-- crossent-proof: markdown -->"
_SUMMARY = re.compile(r"<!--\s*crossent-proof-summary:\s*(\{.*\})\s*-->")


def proof_scripts() -> list[Path]:
    return sorted(p for p in PROOFS.glob("*.py") if not p.name.startswith("_"))


def claim_number(stem: str) -> int | None:
    """The number of a proof script's claim (``05b_gibbs_inequality`` is claim 5b: 5)."""
    m = re.match(r"(\d+)[a-z]?_", stem)
    return int(m.group(1)) if m else None


def is_extension(stem: str) -> bool:
    """Claims numbered from :data:`EXTENSION_FROM` on extend the tutorial; they are no step of it."""
    n = claim_number(stem)
    return n is not None and n >= EXTENSION_FROM


def topic_of(stem: str) -> str | None:
    """The tutorial topic a proof script belongs to: its claim number decides (1-7, the tutorial
    steps); an extension (10 and up) belongs to no tutorial topic, whatever its name says; an
    unnumbered script is placed by the patterns of :data:`TOPICS`."""
    n = claim_number(stem)
    if n is not None and n >= EXTENSION_FROM:
        return None
    if n in _CLAIM_TOPIC:
        return _CLAIM_TOPIC[n]
    for topic in _MATCH_ORDER:
        if re.search(TOPICS[topic][1], stem):
            return topic
    return None


def _run_proof(script: Path, timeout: float) -> tuple[Path, str, dict, float]:
    """Run one proof script in the Markdown format that ``crossent prove --format markdown``
    uses (the ``CROSSENT_PROOF_FORMAT`` switch of ``proofs/_checker.py``)."""
    env = dict(os.environ, CROSSENT_PROOF_FORMAT="markdown")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(PROOFS), env.get("PYTHONPATH", "")])
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(script), "--markdown"],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT,
        )
        out, rc = proc.stdout, proc.returncode
        err = proc.stderr
    except subprocess.TimeoutExpired:
        out, rc, err = "", -1, f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - t0
    m = _SUMMARY.search(out)
    summary = json.loads(m.group(1)) if m else {}
    if rc != 0:
        summary["verdict"] = "FAIL"
    elif not m:  # a script without the checker's summary line: its exit status is the verdict
        summary["verdict"] = "PASS"
    body = _SUMMARY.sub("", out).replace(_MARKER, "").strip()
    if not body:
        body = f"**The script did not produce a derivation** (exit status {rc}).\n\n```text\n{err.strip()[-2000:]}\n```"
    return script, body, summary, seconds


def _headings(md: str):
    """(index, level) of the Markdown ATX headings of ``md`` (outside fenced code)."""
    fenced = False
    for i, line in enumerate(md.splitlines()):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
        m = re.match(r"(#{1,6}) ", line)
        if m and not fenced:
            yield i, len(m.group(1))


def _demote(md: str, levels: int) -> str:
    """Shift Markdown ATX headings by ``levels`` (outside fenced code), capped at level 6."""
    lines = md.splitlines()
    for i, level in list(_headings(md)):
        new = max(1, min(6, level + levels))
        lines[i] = "#" * new + lines[i][level:]
    return "\n".join(lines)


_DOC_CITATION = re.compile(r"`docs/([\w/-]+\.md)(?:#([\w-]+))?`")


def _slug(text: str) -> str:
    return re.sub(r"[^\w]+", "-", text.lower()).strip("-")


def doc_title(path: str, anchor: str | None = None) -> str:
    """The title of a page of ``docs/`` (its first heading), and of one of its sections."""
    lines = (DOCS / path).read_text().splitlines()
    heads = [re.match(r"#+ (.*?)\s*(?:\{#([\w-]+)\})?\s*$", ln) for ln in lines]
    heads = [h for h in heads if h]
    title = heads[0].group(1) if heads else path
    if anchor:
        for h in heads:
            if h.group(2) == anchor or _slug(h.group(1)) == anchor:
                return f"{title}: {h.group(1)}"
    return title


def doc_links(md: str, page: str) -> str:
    """Turn the citations of site pages in a proof's output (code spans ``docs/x.md#a``, as
    the checker prints paths) into links, relative to ``page`` (the page that includes it)."""

    def link(m: re.Match) -> str:
        target, anchor = m.group(1), m.group(2)
        if not (DOCS / target).exists():
            return m.group(0)
        rel = posixpath.relpath(target, posixpath.dirname(page) or ".")
        return f"[{doc_title(target, anchor)}]({rel}{'#' + anchor if anchor else ''})"

    return _DOC_CITATION.sub(link, md)


def _proof_block(script: Path, body: str, summary: dict, heading_level: int, page: str,
                 untitled: bool = False) -> str:
    rel = script.relative_to(ROOT).as_posix()
    body = doc_links(body, page)
    if untitled:  # the including page has a heading of its own for it
        body = re.sub(r"\A\s*# .*\n", "", body)
    verdict = summary.get("verdict", "FAIL")
    levels = [lv for _i, lv in _headings(body)]
    if not levels:
        body, levels = f"## {script.stem}\n\n" + body, [2]
    body = _demote(body, heading_level - min(levels))
    status = "proven" if verdict == "PASS" else "**NOT PROVEN**"
    lines = [
        body,
        "",
        f"*Proof script:* `{rel}` — {status}; run it on its own with "
        f"`python {rel}`, or every proof with `crossent prove`.",
        "",
        f'??? abstract "Source of `{rel}`"',
        "",
        "    ```python",
        f'    --8<-- "{rel}"',
        "    ```",
        "",
    ]
    return "\n".join(lines)


def gen_proofs(timeout: float, jobs: int) -> bool:
    scripts = proof_scripts()
    results: list[tuple[Path, str, dict, float]] = []
    if scripts:
        print(f"  running {len(scripts)} proof scripts ({jobs} at a time)...")
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(lambda s: _run_proof(s, timeout), scripts))
    by_topic: dict[str, list] = {t: [] for t in TOPICS}
    unmatched, extensions = [], []
    for r in results:
        if is_extension(r[0].stem):
            extensions.append(r)
            continue
        t = topic_of(r[0].stem)
        (by_topic[t] if t else unmatched).append(r)
    if unmatched:
        print("  note: proofs not placed in a tutorial topic: " + ", ".join(r[0].stem for r in unmatched))

    src = "the proof scripts in proofs/ (crossent prove --format markdown)"
    for topic, (title, _) in TOPICS.items():
        items = by_topic[topic]
        if items:
            text = "\n\n".join(_proof_block(*r[:3], heading_level=_TOPIC_LEVEL.get(topic, 3),
                                              page=_TOPIC_PAGE[topic], untitled=topic in _TOPIC_UNTITLED)
                                 for r in items)
        else:
            text = (
                '!!! warning "Proof not generated yet"\n\n'
                f"    No proof script in `proofs/` belongs to this topic ({title}) yet, or the "
                "generator has not been re-run since it landed. Run "
                "`python docs/scripts/gen_pages.py`."
            )
        _write(GEN / "proofs" / f"{topic}.md", _HEADER.format(source=src) + text)

    # one include per extension, for the page that presents it (at the top of docs/)
    for r in extensions:
        _write(GEN / "proofs" / f"{r[0].stem}.md",
               _HEADER.format(source=src) + _proof_block(*r[:3], heading_level=3, page="index.md"))
    tutorial = [r for r in results if r not in extensions]

    def table(rows):
        # no run times: they change with the machine at every run, the pages would too
        out = ["| claim | script | verdict | checked steps |", "|---|---|---|---|"]
        for script, body, summary, seconds in rows:
            heading = re.search(r"^#+ (.*)$", body, flags=re.M)
            title = summary.get("title") or (heading.group(1) if heading else script.stem)
            title = title.replace("|", "\\|")
            out.append(
                f"| {title} | `proofs/{script.name}` | {summary.get('verdict', 'FAIL')} | "
                f"{summary.get('steps', '')} |"
            )
        return out

    ok = bool(results) and all(r[2].get("verdict") == "PASS" for r in results)
    page = [
        _HEADER.format(source=src),
        "# All proofs",
        "",
        "Every claim of the tutorial is a SymPy script in `proofs/` that derives the result step "
        "by step and asserts each step (a residual that simplifies to exactly 0, or a sign fact "
        "that SymPy's assumption system concludes). Steps marked *cited* are definitions or named "
        "theorems: they are shown, never counted as proven. This page is the output of the "
        "scripts in Markdown mode (`crossent prove --format markdown`), regenerated by "
        "`docs/scripts/gen_pages.py`.",
        "",
    ]
    if results:
        page += [*table(tutorial), ""]
        if extensions:
            page += [
                f"Claims numbered {EXTENSION_FROM} and up are [extensions](#extensions): results beyond "
                "the tutorial's seven steps, proven the same way.",
                "",
            ]
        page += [_proof_block(*r[:3], heading_level=2, page="generated/proofs.md") for r in tutorial]
        if extensions:
            page += [
                "## Extensions beyond the tutorial {#extensions}",
                "",
                f"These claims (numbered from {EXTENSION_FROM}) are no step of the tutorial: each "
                "backs a function or an option that goes beyond it.",
                "",
                *table(extensions),
                "",
            ]
            page += [_proof_block(*r[:3], heading_level=3, page="generated/proofs.md") for r in extensions]
    else:
        page += [
            '!!! warning "No proofs yet"',
            "",
            "    `proofs/` holds no proof script yet; this page is filled in by "
            "`python docs/scripts/gen_pages.py` once they land.",
        ]
    _write(GEN / "proofs.md", "\n".join(page))
    return ok or not scripts


# ---------------------------------------------------------------------------------------------
# measured tables: accuracy and bench
# ---------------------------------------------------------------------------------------------


def _provenance(path: Path, data) -> str:
    meta = data.get("meta") or data.get("machine") or data.get("environment") if isinstance(data, dict) else None
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name
    bits = [f"measured data: `{rel}`"]
    if isinstance(meta, dict):
        for k in ("date", "timestamp", "command", "platform", "machine", "numba_threads", "numba",
                  "numpy", "repeats", "settle", "statistic", "note"):
            if k in meta:
                bits.append(f"{k}: {meta[k]}")
    return "*" + "; ".join(bits) + "*"


def _records(data) -> list[dict]:
    """The list of flat records in a JSON result, whatever its top-level key."""
    if isinstance(data, list):
        return [r for r in data if isinstance(r, dict)]
    if isinstance(data, dict):
        for key in ("rows", "results", "records", "table", "configs", "cases"):
            if isinstance(data.get(key), list):
                return [r for r in data[key] if isinstance(r, dict)]
    return []


def _cell(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)[:60]
    return str(v).replace("|", "\\|")


def records_table(records: list[dict]) -> str:
    cols: list[str] = []
    for r in records:
        cols += [k for k in r if k not in cols and not isinstance(r[k], (dict, list))]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in records:
        lines.append("| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


def _ulp_cell(x) -> str:
    """An error in ULPs for a table: 0.57, 138, 1.7e+07 -> 1.7·10⁷, inf."""
    if x is None:
        return "–"
    if x != x or x in (float("inf"), float("-inf")):
        return "∞" if x == float("inf") else str(x)
    if x >= 1e5:
        mant, ex = f"{x:.1e}".split("e")
        sup = str(int(ex)).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
        return f"{mant}·10{sup}"
    return f"{x:.2f}" if x < 10 else f"{x:.0f}"


_PEER_NAMES = {"pytorch": "PyTorch", "jax": "JAX", "scipy": "SciPy"}


def accuracy_markdown(data) -> str:
    """The ``crossent accuracy --json`` rows as two tables: crossent against its bounds, then
    crossent next to the peers (largest and median error), each with its legend."""
    from crossent._bounds import BOUNDS

    rows = data["rows"] if isinstance(data, dict) else data
    keys = list(dict.fromkeys((r["function"], r["dtype"]) for r in rows))
    by = {(r["function"], r["dtype"], r["implementation"]): r for r in rows}
    peers = list(dict.fromkeys(r["implementation"] for r in rows if r.get("peer")))
    measured = {dt for _, dt in keys}
    dtypes = [dt for dt in _dtypes(BOUNDS) if dt in measured] + sorted(measured - set(_dtypes(BOUNDS)))
    own = ["| function | " + " | ".join(dtypes) + " |", "|---|" + "---|" * len(dtypes)]
    failed, total = [], 0
    for fn in dict.fromkeys(f for f, _ in keys):
        cells = []
        for dt in dtypes:
            r = by.get((fn, dt, "crossent"))
            b = BOUNDS.get(fn, {}).get(dt)
            if r is None:
                cells.append("–")
                continue
            total += 1
            bound = "–" if b is None else _fmt_ulp(b.max_ulp) + (" \\*" if b.condition else "")
            mark = "" if r["passed"] else " **exceeds its bound**"
            if not r["passed"]:
                failed.append(f"{dt} `{fn}`")
            cells.append(f"{_ulp_cell(r['max_ulp'])} / {_ulp_cell(r['median_ulp'])}<br>"
                         f"{100 * r['frac_correctly_rounded']:.2f}% CR<br>bound {bound}{mark}")
        if any(c != "–" for c in cells):
            own.append(f"| `{fn}` | " + " | ".join(cells) + " |")
    verdict = (f"Every one of the {total} function and dtype pairs is within its bound."
               if not failed else f"**Outside the bound: {', '.join(failed)}.**")
    unmeasured = [dt for dt in _dtypes(BOUNDS) if dt not in measured]
    if unmeasured:
        verdict += f" Not in this run: {_and(unmeasured)}."
    own += [
        "",
        "Errors in ULPs of the output format against `crossent.reference` (correctly rounded), "
        "over every output of the corpus's cases. Each cell: *largest / median* error; the share "
        "of outputs correctly rounded (*CR*: within 1/2 ULP of the exact value, which no result "
        "can beat); the bound of the table above, where \\* marks a conditional bound (see its "
        "note there: outputs outside the condition are checked against the stated absolute bound "
        "instead). " + verdict,
    ]
    head = "| function | dtype | crossent | " + " | ".join(_PEER_NAMES.get(p, p) for p in peers) + " |"
    peer = [head, "|---|---|" + "---|" * (1 + len(peers))]
    for fn, dt in keys:
        cells = [by.get((fn, dt, p)) for p in peers]
        if not any(cells) or (fn, dt, "crossent") not in by:
            continue
        mine = by[(fn, dt, "crossent")]
        line = [f"`{fn}`", dt, f"{_ulp_cell(mine['max_ulp'])} / {_ulp_cell(mine['median_ulp'])}"]
        line += ["–" if c is None else f"{_ulp_cell(c['max_ulp'])} / {_ulp_cell(c['median_ulp'])}"
                 for c in cells]
        peer.append("| " + " | ".join(line) + " |")
    peer += [
        "",
        "Each cell: *largest / median* error in ULPs over the outputs that implementation can "
        "express (a peer without a function, or without a case such as a `weight`, is measured on "
        "the rest or shown as –). An error of 10¹⁶ ULP in float64 (10⁷ in float32) is a result of 0 "
        "where the exact value is tiny: every digit lost; ∞: an infinite or nan result where the "
        "exact value is finite.",
    ]
    return ("### crossent against its bounds\n\n" + "\n".join(own)
            + "\n\n### crossent next to the peers\n\n" + "\n".join(peer))


_IMPL_NAMES = {"crossent": "crossent", "jax": "JAX", "torch": "PyTorch", "numpy-sum": "one read"}
_MODES = {"forward": "forward", "fwd+bwd": "forward + backward"}
#: the performance goals of docs/design.md#performance-goals: crossent's time over the fastest
#: peer's at most 1 for the float32 forward pass, at most 0.67 (1.5x as fast) everywhere else
GOALS = {("float32", "forward"): 1.0}
GOAL_DEFAULT = 0.67


def _shape(shape) -> str:
    return f"{shape[0]}\u00a0×\u00a0{shape[1]}"  # no break inside a shape


def bench_ratios(data: dict) -> dict:
    """{(shape, dtype, mode): crossent's time over the fastest peer's} of a bench run."""
    return {(tuple(r["shape"]), r["dtype"], r["mode"]): r["ratio_to_fastest_peer"]
            for r in data["rows"] if r["impl"] == "crossent" and r.get("ratio_to_fastest_peer")}


def _ratio(r: float, goal: float) -> str:
    """A time ratio to two decimals, three where two would round it onto its goal (1.001 is
    not 1.00: it misses a goal of 1)."""
    return f"{r:.3f}" if f"{r:.2f}" == f"{goal:.2f}" else f"{r:.2f}"


def bench_markdown(data: dict) -> str:
    """``crossent bench --json`` pivoted: one line per case, ns/element per implementation."""
    rows = data["rows"]
    impls = list(dict.fromkeys(r["impl"] for r in rows))
    impls.sort(key=lambda n: (n != "crossent", n == "numpy-sum", n))
    cases: dict = {}
    for r in rows:
        cases.setdefault((tuple(r["shape"]), r["dtype"], r["mode"]), {})[r["impl"]] = r
    head = ["shape", "dtype, pass", "crossent /<br>fastest peer", "crossent /<br>one read"]
    head += [_IMPL_NAMES.get(i, i) + "<br>(ns)" for i in impls]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (shape, dtype, mode), by in cases.items():
        cells = [_shape(shape), f"{dtype}<br>{mode}"]
        mine = by.get("crossent", {})
        peer, read = mine.get("ratio_to_fastest_peer"), mine.get("ratio_to_read")
        cells.append("–" if peer is None else _ratio(peer, GOALS.get((dtype, mode), GOAL_DEFAULT)))
        cells.append("–" if read is None else f"{read:.2f}")
        cells += [f"{by[i]['ns_per_element']:.2f}" if i in by else "–" for i in impls]
        out.append("| " + " | ".join(cells) + " |")
    note = ["", "*fwd+bwd*: the forward and backward pass. The ratios are of crossent's time to the "
            "fastest peer's and to one read of the logits, in the same run (below 1: crossent is "
            "faster). *(ns)*: nanoseconds per logit element, the median of the run's repeats "
            "(lower is better). *One read*: a NumPy sum of the logits, the floor for any method "
            "that reads every logit once."]
    if data.get("per_call"):  # the tiny batch: microseconds per call
        note += ["", "Per call, a tiny batch (float64; median over rounds of back-to-back calls):", "",
                 "| function | shape | impl | µs per call | time / PyTorch's |", "|---|---|---|---|---|"]
        for r in data["per_call"]:
            rt = r.get("ratio_to_torch")
            note.append(f"| `{r['function']}` | {r['shape'][0]}×{r['shape'][1]} | {r['impl']} | "
                        f"{r['microseconds']:.3g} | {'–' if rt is None else f'{rt:.2f}'} |")
        note.append("")
    if data.get("peers"):
        note.append("Peers: " + ", ".join(str(v) if str(v).startswith(k) else f"{k} {v}"
                                          for k, v in data["peers"].items()) + ".")
    for name, why in (data.get("skipped") or {}).items():
        note.append(f"Skipped {name}: {why}.")
    return "\n".join(out + note)


def _span(values) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}"


def bench_summary(data: dict) -> str:
    """The conclusions of one bench run: each ratio against its goal, and what they add up to."""
    ratios = bench_ratios(data)
    shapes = list(dict.fromkeys(s for s, _, _ in ratios))
    cols = [(dt, mode) for dt in ("float32", "float64") for mode in ("forward", "fwd+bwd")]
    out = ["| shape | " + " | ".join(f"{dt}<br>{_MODES[m]}" for dt, m in cols) + " |",
           "|---|" + "---|" * len(cols)]
    met, missed = [], []
    for shape in shapes:
        cells = []
        for dt, mode in cols:
            r = ratios.get((shape, dt, mode))
            if r is None:
                cells.append("–")
                continue
            goal = GOALS.get((dt, mode), GOAL_DEFAULT)
            ok = r <= goal
            (met if ok else missed).append(f"{dt} {_MODES[mode]} at {shape[1]} classes")
            cells.append(f"{_ratio(r, goal)} {'✓' if ok else '✗'}")
        out.append(f"| {_shape(shape)} | " + " | ".join(cells) + " |")
    faster = sum(r < 1 for r in ratios.values())
    out += [
        "",
        "crossent's time over the fastest peer's, per case (below 1: crossent is faster). "
        f"✓: the goal is met (at most {GOALS[('float32', 'forward')]:g} for the float32 forward "
        f"pass, at most {GOAL_DEFAULT:g}, i.e. 1.5 times as fast, everywhere else); ✗: it is not.",
        "",
        f"**In this run** crossent is faster than the fastest peer in {faster} of the "
        f"{len(ratios)} cases and meets the goal in {len(met)}. "
        f"**Met:** {'; '.join(met) or 'none'}. **Not met:** {'; '.join(missed) or 'none'}.",
    ]
    return "\n".join(out)


def bench_headline(data: dict) -> str:
    """One sentence for the home page, from the same run as the performance page."""
    ratios = bench_ratios(data)
    shapes = sorted({s for s, _, _ in ratios}, key=lambda s: s[1])
    parts = []
    for dt in ("float32", "float64"):
        for mode in ("forward", "fwd+bwd"):
            vals = [r for (s, d, m), r in ratios.items() if d == dt and m == mode]
            if vals:
                parts.append(f"{_span(vals)} for the {dt} {_MODES[mode]} pass")
    return (f"**Speed.** On rows of {shapes[0][1]} to {shapes[-1][1]} classes, crossent's time "
            f"over that of the fastest of PyTorch and JAX on the CPU (below 1: crossent is faster) "
            f"is {', '.join(parts[:-1])} and {parts[-1]}, in one recorded run "
            f"({str(data.get('meta', {}).get('date', ''))[:10]}); the "
            "[performance page](performance.md) has the details, and where crossent is slower.")


def startup_markdown(data: list) -> str:
    """``benchmarks/startup.py --json`` as a table, with the ranges the text quotes."""
    out = ["| first call of | input | cache | `import crossent` | first call |",
           "|---|---|---|---|---|"]
    for row in data:
        shape = _shape(row.get("shape", (64, 100)))  # older runs: 64 × 100 only
        for cache in ("cold", "warm"):
            m = row[cache]
            out.append(f"| `{row['call']}` | {shape} | {cache} | {m['import_crossent']:.2f} s | "
                       f"{m['first_call']:.2f} s |")
    cold = [r["cold"]["first_call"] for r in data]
    warm = [r["warm"]["first_call"] for r in data]
    imp = [r[c]["import_crossent"] for r in data for c in ("cold", "warm")]
    dtypes = sorted({r["dtype"] for r in data})
    shapes = sorted({_shape(r.get("shape", (64, 100))) for r in data}, reverse=True)
    return "\n".join(out + [
        "",
        f"Fresh interpreters, each with its own Numba cache directory; medians of "
        f"{data[0]['repeats']} runs; {', '.join(dtypes)} inputs of {' and '.join(shapes)} "
        f"(10 classes take the short-row kernels, 100 the wide ones). "
        f"**A cold first call compiles for {min(cold):.0f}–{max(cold):.0f} s; with a warm cache "
        f"the first call takes {min(warm):.2f}–{max(warm):.2f} s** and `import crossent` "
        f"{min(imp):.2f}–{max(imp):.2f} s.",
    ])


def _table_from_json(path: Path, render, what: str, how: str) -> str:
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    if not path.exists():
        return (
            f'!!! info "Not measured yet"\n\n    No {what} results in `{rel}` '
            f"yet. Produce them with `{how}`, then re-run `python docs/scripts/gen_pages.py`."
        )
    data = json.loads(path.read_text())
    try:
        table = render(data)
    except Exception as exc:  # the harness changed shape: fall back to a plain table
        print(f"  note: {what} renderer failed ({type(exc).__name__}: {exc}); plain table")
        recs = _records(data)
        table = records_table(recs) if recs else "```json\n" + json.dumps(data, indent=1)[:4000] + "\n```"
    return table + "\n\n" + _provenance(path, data)


def gen_measured(accuracy_json: Path, bench_json: Path, startup_json: Path = DATA / "startup.json") -> None:
    _write(
        GEN / "accuracy_table.md",
        _HEADER.format(source=accuracy_json.name)
        + _table_from_json(accuracy_json, accuracy_markdown, "accuracy",
                           f"crossent accuracy --json {accuracy_json.relative_to(ROOT).as_posix()}"),
    )
    _write(
        GEN / "bench_table.md",
        _HEADER.format(source=bench_json.name)
        + _table_from_json(bench_json, bench_markdown, "benchmark",
                           f"crossent bench --json {bench_json.relative_to(ROOT).as_posix()} "
                           "--plot docs/figures/bench.png"),
    )
    # the conclusions of the same bench run (performance page) and its one-line summary (home
    # page), so that no number on the site disagrees with the table
    for name, render in (("bench_summary.md", bench_summary), ("bench_headline.md", bench_headline)):
        text = render(json.loads(bench_json.read_text())) if bench_json.exists() else (
            "*The benchmark has not been recorded yet (`crossent bench --json`).*")
        _write(GEN / name, _HEADER.format(source=bench_json.name) + text)
    _write(
        GEN / "startup_table.md",
        _HEADER.format(source=startup_json.name)
        + _table_from_json(startup_json, startup_markdown, "start-up",
                           f"python benchmarks/startup.py --json {startup_json.relative_to(ROOT).as_posix()}"),
    )
    # figures: include what exists, say what does not
    figs = {
        "accuracy_figures.md": [
            ("ulp_vs_gap.png", "ULP error of the loss against the confidence gap"),
            ("ulp_vs_kl_eps.png", "ULP error of the KL divergence against ε, for q = p(1+ε) renormalized"),
        ],
        "bench_figures.md": [("bench.png", "Time per logit element, crossent and peers")],
    }
    for name, items in figs.items():
        parts = []
        for fname, alt in items:
            if (FIG / fname).exists():
                parts.append(f"![{alt}](figures/{fname})")
            else:
                parts.append(
                    f'!!! info "Figure not generated yet: {fname}"\n\n    {alt}. Produce it with '
                    "`python docs/scripts/gen_pages.py --figures` (accuracy) or `--run-bench` "
                    "(performance)."
                )
        _write(GEN / name, _HEADER.format(source="docs/figures/") + "\n\n".join(parts))


def run_cli(args: list[str]) -> bool:
    print("  $ crossent " + " ".join(args))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "crossent", *args], cwd=ROOT, env=env)
    return proc.returncode == 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accuracy-json", type=Path, default=DATA / "accuracy.json")
    ap.add_argument("--bench-json", type=Path, default=DATA / "bench.json")
    ap.add_argument("--run-accuracy", action="store_true", help="run `crossent accuracy --json` first")
    ap.add_argument("--run-bench", action="store_true", help="run `crossent bench --json --plot` first")
    ap.add_argument("--figures", action="store_true", help="measure and plot the ULP figures")
    ap.add_argument("--skip-proofs", action="store_true", help="keep the proof pages as they are")
    ap.add_argument("--proof-timeout", type=float, default=600.0)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args(argv)
    args.accuracy_json = args.accuracy_json.resolve()
    args.bench_json = args.bench_json.resolve()

    t0 = time.perf_counter()
    ok = True
    print("bounds table")
    gen_bounds()
    if not args.skip_proofs:
        print("proofs")
        ok &= gen_proofs(args.proof_timeout, args.jobs)
    if args.run_accuracy:
        args.accuracy_json.parent.mkdir(parents=True, exist_ok=True)
        ok &= run_cli(["accuracy", "--json", str(args.accuracy_json)])
    if args.run_bench:
        args.bench_json.parent.mkdir(parents=True, exist_ok=True)
        FIG.mkdir(parents=True, exist_ok=True)
        ok &= run_cli(["bench", "--json", str(args.bench_json), "--plot", str(FIG / "bench.png")])
    if args.figures:
        print("figures")
        proc = subprocess.run([sys.executable, str(DOCS / "scripts" / "plot_accuracy.py")], cwd=ROOT)
        ok &= proc.returncode == 0
    print("measured tables")
    gen_measured(args.accuracy_json, args.bench_json)
    for png in FIG.glob("*.png"):
        if png.stat().st_size > 200_000:
            print(f"  warning: {png.relative_to(ROOT)} is {png.stat().st_size // 1000} KB (> 200 KB)")
    print(f"done in {time.perf_counter() - t0:.1f} s ({platform.python_version()})"
          + ("" if ok else "; SOME STEPS FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
