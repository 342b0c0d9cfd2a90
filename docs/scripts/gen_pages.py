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
``docs/generated/proofs.md``
    every derivation on one page, with the verdict table (a page of the site);
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
}
_MATCH_ORDER = ["exp-bound", "mle", "likelihood", "die", "kernel-identities", "loss", "kl", "cross-entropy"]
#: the claims are numbered in the order of the tutorial (``proofs/NN_name.py``); the number decides first
_CLAIM_TOPIC = {1: "likelihood", 2: "mle", 3: "die", 4: "cross-entropy", 5: "kl", 6: "kl",
                7: "loss", 8: "loss", 9: "kernel-identities",
                11: "loss"}

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


def bounds_rows(functions=None, link_prefix: str = "") -> list[str]:
    """Markdown table rows (header included) of the bounds of ``functions`` (all by default)."""
    from crossent._bounds import BOUNDS

    rows = [
        "| function | dtype | max ULP | correctly rounded (at least) | condition | analysis |",
        "|---|---|---|---|---|---|",
    ]
    for fn in functions if functions is not None else BOUNDS:
        for dtype, b in BOUNDS[fn].items():
            cr = "" if b.min_correctly_rounded is None else f"{100 * b.min_correctly_rounded:g}% of outputs"
            cond = (b.condition or "").replace("|", "\\|")
            anchor = f"[{b.analysis}]({link_prefix}#{b.analysis})" if b.analysis else ""
            rows.append(f"| `{fn}` | {dtype} | {_fmt_ulp(b.max_ulp)} | {cr} | {cond} | {anchor} |")
    return rows


def gen_bounds() -> None:
    from crossent._bounds import BOUNDS

    src = "crossent._bounds.BOUNDS"
    _write(GEN / "bounds_table.md", _HEADER.format(source=src) + "\n".join(bounds_rows()))
    for api_name, keys in API_BOUNDS.items():
        keys = [k for k in keys if k in BOUNDS]
        if keys:
            text = "**Stated accuracy** (from the bounds table):\n\n" + "\n".join(
                bounds_rows(keys, link_prefix="accuracy.md")
            )
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


def topic_of(stem: str) -> str | None:
    m = re.match(r"(\d+)_", stem)
    if m and int(m.group(1)) in _CLAIM_TOPIC:
        return _CLAIM_TOPIC[int(m.group(1))]
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


def _proof_block(script: Path, body: str, summary: dict, heading_level: int) -> str:
    rel = script.relative_to(ROOT).as_posix()
    verdict = summary.get("verdict", "FAIL")
    seconds = summary.get("seconds")
    levels = [lv for _i, lv in _headings(body)]
    if not levels:
        body, levels = f"## {script.stem}\n\n" + body, [2]
    body = _demote(body, heading_level - min(levels))
    status = "proven" if verdict == "PASS" else "**NOT PROVEN**"
    timing = f" in {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
    lines = [
        body,
        "",
        f"*Proof script:* `{rel}` — {status}{timing}; run it on its own with "
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
    unmatched = []
    for r in results:
        t = topic_of(r[0].stem)
        (by_topic[t] if t else unmatched).append(r)
    if unmatched:
        print("  note: proofs not placed in a tutorial topic: " + ", ".join(r[0].stem for r in unmatched))

    src = "the proof scripts in proofs/ (crossent prove --format markdown)"
    for topic, (title, _) in TOPICS.items():
        items = by_topic[topic]
        if items:
            text = "\n\n".join(_proof_block(*r[:3], heading_level=3) for r in items)
        else:
            text = (
                '!!! warning "Proof not generated yet"\n\n'
                f"    No proof script in `proofs/` belongs to this topic ({title}) yet, or the "
                "generator has not been re-run since it landed. Run "
                "`python docs/scripts/gen_pages.py`."
            )
        _write(GEN / "proofs" / f"{topic}.md", _HEADER.format(source=src) + text)

    ok = bool(results) and all(r[2].get("verdict") == "PASS" for r in results)
    table = ["| claim | script | verdict | checked steps | seconds |", "|---|---|---|---|---|"]
    for script, _body, summary, seconds in results:
        title = (summary.get("title") or summary.get("claim") or script.stem).replace("|", "\\|")
        table.append(
            f"| {title} | `proofs/{script.name}` | {summary.get('verdict', 'FAIL')} | "
            f"{summary.get('steps', '')} | {seconds:.1f} |"
        )
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
        page += [*table, ""]
        page += [_proof_block(*r[:3], heading_level=2) for r in results]
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


def accuracy_markdown(data) -> str:
    """The ``crossent accuracy --json`` rows as the harness's own table, in Markdown."""
    from crossent._accuracy import format_table

    rows = data["rows"] if isinstance(data, dict) else data
    header, cells = format_table(rows)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in cells]
    return "\n".join(out)


def bench_markdown(data: dict) -> str:
    """``crossent bench --json`` pivoted: one line per case, ns/element per implementation."""
    rows = data["rows"]
    impls: list[str] = []
    for r in rows:
        if r["impl"] not in impls:
            impls.append(r["impl"])
    impls.sort(key=lambda n: (n != "crossent", n == "numpy-sum", n))
    cases: dict = {}
    for r in rows:
        cases.setdefault((tuple(r["shape"]), r["dtype"], r["mode"]), {})[r["impl"]] = r
    head = ["shape", "dtype", "mode"] + [f"{i} ns/elem" for i in impls]
    head += ["crossent time / fastest peer", "crossent time / one read"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (shape, dtype, mode), by in cases.items():
        cells = [f"{shape[0]}×{shape[1]}", dtype, mode]
        cells += [f"{by[i]['ns_per_element']:.3g}" if i in by else "–" for i in impls]
        mine = by.get("crossent", {})
        rp = mine.get("ratio_to_fastest_peer")
        cells.append("–" if rp is None else f"{rp:.2f}")
        rr = mine.get("ratio_to_read")
        cells.append("–" if rr is None else f"{rr:.2f}")
        out.append("| " + " | ".join(cells) + " |")
    note = ["", "Lower is better; a ratio below 1 means crossent is faster than the fastest peer."]
    if data.get("peers"):
        note.append("Peers: " + ", ".join(str(v) if str(v).startswith(k) else f"{k} {v}" for k, v in data["peers"].items()) + ".")
    for name, why in (data.get("skipped") or {}).items():
        note.append(f"Skipped {name}: {why}.")
    return "\n".join(out + note)


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


def gen_measured(accuracy_json: Path, bench_json: Path) -> None:
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
