"""``crossent accuracy``: the ULP sweep of crossent (and its peers) against the oracle.

Every function of the softmax family and of the classification loss is run on the adversarial
corpus (:mod:`crossent.corpus.logits`), and the PMF functions on :mod:`crossent.corpus.pmf`;
each output is compared with the exact value that :mod:`crossent.reference` computes from the
same input floats, in ULPs of the output format. This module is the command only: the
measurement is :mod:`crossent._measure`, the peers' adapters :mod:`crossent._peers`, and every
bound and condition comes from the accuracy table :mod:`crossent._bounds`.

With ``--impl module:callable`` the command measures that callable instead (a third party's
kernel, called like the crossent function named by ``--function``), through
:func:`crossent.testing.measure`, and prints its table per corpus family.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from crossent._bounds import BOUNDS, CORRECT_ROUNDING, bound
from crossent._measure import (DTYPES, FUNCTIONS, Unsupported, cases, exact_values, measure,
                               format_ulp, summarize)
from crossent._peers import PEERS, load_peers

__all__ = ["run_sweep", "format_table", "print_table", "add_arguments", "main_from_args"]


class _Progress:
    """``rich.progress`` when rich is importable, else a plain line on stderr."""

    def __init__(self, total: int, enabled: bool):
        self.enabled, self.total, self.done = enabled, total, 0
        self._rich = None
        if not enabled:
            return
        try:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn)

            self._rich = Progress(TextColumn("{task.description}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), transient=True)
            self._rich.start()
            self._task = self._rich.add_task("accuracy", total=total)
        except ImportError:
            self._rich = None

    def advance(self, description: str):
        self.done += 1
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.update(self._task, advance=1, description=description[:48])
        elif self.done == self.total or self.done % max(1, self.total // 50) == 0:
            print(f"\raccuracy {self.done}/{self.total} {description[:48]:<48}", end="",
                  file=sys.stderr, flush=True)

    def close(self):
        if self._rich is not None:
            self._rich.stop()
        elif self.enabled:
            print(file=sys.stderr)


def run_sweep(size: str = "ci", dtypes=DTYPES, functions=FUNCTIONS, peers=True,
              progress=True, seed: int = 0, implementations=None,
              rounding: str = "fast") -> list[dict]:
    """Measure every implementation on the corpus; one row per (function, dtype, impl).

    Parameters
    ----------
    size : {"smoke", "ci", "full"}
        Corpus size (see :func:`crossent.corpus.logits.cases`).
    dtypes, functions : iterables of str
        What to sweep. A (function, dtype) without an entry in the accuracy table is skipped.
    peers : bool or iterable of str
        Also measure the installed peers (``True``: all of PyTorch, JAX, SciPy).
    progress : bool
        Show a progress bar (rich if installed, else plain text on stderr).
    implementations : dict, optional
        ``{name: impl}`` to measure instead of ``{"crossent": crossent}``; an impl provides
        the public functions with crossent's signatures. The tests use it to check that a
        wrong implementation is reported failing.
    rounding : {"fast", "correct"}
        The rounding mode crossent runs in (:func:`crossent.rounding`). ``"correct"``
        measures the functions of ``CORRECT_ROUNDING`` in float64 only, without peers, and
        judges them against its 0.5-ulp, 100% bound; the rows also give the slow path's
        share (``slow_rows``, ``rows``).

    Returns
    -------
    list of dict
        Rows ``{function, dtype, implementation, max_ulp, median_ulp,
        frac_correctly_rounded, n, bound, passed, ...}``. Rows of peers are judged against
        crossent's bound for information; only crossent's rows decide the exit status.
    """
    if implementations is None:
        import crossent

        implementations = {"crossent": crossent}
    impls = dict(implementations)
    if peers:
        impls.update(load_peers(PEERS if peers is True else tuple(peers)))
    dtypes = [np.dtype(d).name for d in dtypes]
    for f in functions:
        if f not in FUNCTIONS:
            raise ValueError(f"functions: unknown function {f!r}; known: {FUNCTIONS}")

    if rounding == "correct":
        impls = dict(implementations)
        functions = [f for f in functions if f in CORRECT_ROUNDING]
        dtypes = [d for d in dtypes if d == "float64"]
    plan = [(f, dt, cases(f, size, seed, dt)) for f in functions for dt in dtypes
            if dt in BOUNDS[f]]

    from crossent._rounding import COUNTS, rounding as _mode

    counts_before = {k: list(v) for k, v in COUNTS.items()}
    bar = _Progress(sum(len(cs) for _f, _d, cs in plan), progress)
    results: dict = {}
    try:
        with _mode(rounding):
            _measure_plan(plan, impls, implementations, results, bar)
    finally:
        bar.close()

    rows = []
    for f, dt, _cs in plan:
        for name in impls:
            ms = results.get((f, dt, name))
            if not ms and not (name in implementations and results.get((f, dt, "oracle-errors"))):
                continue
            row = summarize(ms, f, dt, implementation=name, rounding=rounding)
            row["peer"] = name not in implementations
            row["rounding"] = rounding
            row["case_errors"] = results.get((f, dt, name, "errors"), [])
            # cases the oracle could not evaluate are unverified: the row cannot pass
            row["oracle_errors"] = results.get((f, dt, "oracle-errors"), [])
            if row["oracle_errors"]:
                row["passed"] = False
            if rounding == "correct" and not row["peer"]:
                key = _COUNTED_AS.get(f, f)
                now, before = COUNTS.get(key, [0, 0]), counts_before.get(key, [0, 0])
                row["rows"], row["slow_rows"] = now[0] - before[0], now[1] - before[1]
                row["cases_not_implemented"] = results.get((f, dt, name, "not-implemented"), [])
            rows.append(row)
    return rows


#: the public function a sweep function is counted under in ``crossent._rounding.COUNTS``
_COUNTED_AS = {"cross_entropy_grad": "cross_entropy_value_and_grad"}


def _measure_plan(plan, impls, implementations, results, bar) -> None:
    """Measure every implementation on every case of the plan into ``results``."""
    for f, dt, cs in plan:
        for case in cs:
            bar.advance(f"{f} {dt} {case.name}")
            try:
                exact = exact_values(f, case)
            except Exception as exc:  # the oracle failed: nothing can be judged
                results.setdefault((f, dt, "oracle-errors"), []).append(
                    f"{case.name}: {type(exc).__name__}: {exc}"[:200])
                continue
            for name, impl in impls.items():
                try:
                    m = measure(impl, f, case, exact=exact)
                except Unsupported:
                    continue
                except NotImplementedError:  # an option without a correctly rounded path
                    results.setdefault((f, dt, name, "not-implemented"), []).append(case.name)
                    continue
                except Exception as exc:  # a peer that crashes on a case: skip the case
                    if name in implementations:
                        raise
                    results.setdefault((f, dt, name, "errors"), []).append(
                        f"{case.name}: {type(exc).__name__}")
                    continue
                results.setdefault((f, dt, name), []).append(m)


# ---------------------------------------------------------------------------------------
# CLI


#: the names --function takes: the sweep's (cross_entropy_mean, cross_entropy_grad) and, with
#: --impl, crossent.testing's (the public functions' names)
_PUBLIC_FUNCTIONS = ("logsumexp", "log_softmax", "softmax", "cross_entropy",
                     "cross_entropy_value_and_grad", "entropy", "cross_entropy_pmf",
                     "kl_divergence")
_FUNCTION_CHOICES = tuple(dict.fromkeys(FUNCTIONS + _PUBLIC_FUNCTIONS))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``crossent accuracy``."""
    parser.add_argument("--size", choices=("smoke", "ci", "full"), default="ci",
                        help="corpus size (default: ci; full has K up to 1e6)")
    parser.add_argument("--dtype", action="append", choices=DTYPES, default=None,
                        help="restrict to this dtype (repeatable; default: all)")
    parser.add_argument("--function", action="append", choices=_FUNCTION_CHOICES, default=None,
                        help="restrict to this function (repeatable; default: all, or "
                        "cross_entropy with --impl)")
    parser.add_argument("--no-peers", action="store_true",
                        help="do not measure PyTorch, JAX and SciPy")
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the rows (with --impl: the reports) as JSON to FILE "
                        "('-': standard output)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    parser.add_argument("--rounding", choices=("fast", "correct"), default="fast",
                        help="crossent's rounding mode (crossent.rounding); 'correct' measures "
                        "the correctly rounded float64 functions against 0.5 ulp, 100%%, and "
                        "reports how many rows took the slow path")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    impl = parser.add_argument_group(
        "a third-party implementation",
        "measure MODULE:CALLABLE, called like the crossent function --function (NumPy in and "
        "out), and print its ULP errors per corpus family (crossent.testing.measure)")
    impl.add_argument("--impl", metavar="MODULE:CALLABLE", default=None,
                      help="the callable to measure: an importable module (the current "
                      "directory is searched first) or a path/to/file.py, a colon, and the "
                      "callable's (dotted) name")
    impl.add_argument("--adapter", choices=("torch", "jax"), default=None,
                      help="the callable has PyTorch's or JAX's calling convention "
                      "(crossent.testing.torch_impl / jax_impl)")
    impl.add_argument("--layout", choices=("native", "rows"), default="native",
                      help="with --adapter: the library's convention (default) or 2-D "
                      "(rows, classes) inputs")
    impl.add_argument("--families", nargs="+", metavar="FAMILY", default=None,
                      help="only these corpus families (crossent.testing.FAMILIES)")
    impl.add_argument("--reduction", choices=("none", "mean", "sum"), default=None,
                      help="cross_entropy: the reduction measured (default none, per item)")
    impl.add_argument("--plot", metavar="PATH", default=None,
                      help="also plot ULP error against the exact value per family to PATH "
                      "(one file per function and dtype; needs matplotlib)")
    impl.add_argument("--max-ulp", type=float, default=None,
                      help="exit with status 1 if any output is off by more ulps than this")


def format_table(rows) -> tuple[list[str], list[list[str]]]:
    """Header and cells: function x dtype, crossent then each peer (max / median ULP)."""
    own = [r for r in rows if not r.get("peer")]
    peer_names = []
    for r in rows:
        if r.get("peer") and r["implementation"] not in peer_names:
            peer_names.append(r["implementation"])
    by = {(r["function"], r["dtype"], r["implementation"]): r for r in rows}
    header = ["function", "dtype", "bound", "crossent max/med", "CR %", "pass"]
    header += [f"{p} max/med" for p in peer_names]
    cells = []
    keys = []
    for r in rows:
        k = (r["function"], r["dtype"])
        if k not in keys:
            keys.append(k)
    for f, dt in keys:
        mine = [r for r in own if (r["function"], r["dtype"]) == (f, dt)]
        b = bound(f, dt, mine[0].get("rounding", "fast") if mine else "fast")
        line = [f, dt, f"{format_ulp(b.max_ulp)}" + (" *" if b.condition else "")]
        if mine:
            r = mine[0]
            line += [f"{format_ulp(r['max_ulp'])} / {format_ulp(r['median_ulp'])}",
                     f"{100 * r['frac_correctly_rounded']:.2f}",
                     "ok" if r["passed"] else "FAIL"]
        else:
            line += ["-", "-", "-"]
        for p in peer_names:
            r = by.get((f, dt, p))
            line.append("-" if r is None else
                        f"{format_ulp(r['max_ulp'])} / {format_ulp(r['median_ulp'])}")
        cells.append(line)
    return header, cells


def print_table(rows, file=None) -> None:
    header, cells = format_table(rows)
    note = ("ULP errors against crossent.reference on the adversarial corpus; bound from "
            "crossent._bounds (* conditional: outputs outside the condition are checked "
            "against the stated absolute bound instead); CR = correctly rounded outputs. "
            "Peers are measured on the cases they can express.")
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="crossent accuracy", caption=note)
        for h in header:
            t.add_column(h, justify="left" if h in ("function", "dtype") else "right")
        for line in cells:
            style = "red" if "FAIL" in line else None
            t.add_row(*line, style=style)
        Console(file=file).print(t)
        return
    except ImportError:
        pass
    out = file or sys.stdout
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h)
              for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)), file=out)
    for line in cells:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)), file=out)
    print(note, file=out)


def load_impl(spec: str):
    """The callable named by ``module:callable`` (or ``path/to/file.py:callable``); the
    callable's name may be dotted (``module:Class.method``)."""
    module, sep, attr = spec.rpartition(":")
    if not sep or not module or not attr:
        raise ValueError(f"--impl: MODULE:CALLABLE, got {spec!r}")
    if module.endswith(".py"):
        path = Path(module)
        if not path.is_file():
            raise ValueError(f"--impl: no file {module}")
        mspec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(mspec)
        sys.modules.setdefault(path.stem, mod)
        mspec.loader.exec_module(mod)
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        mod = importlib.import_module(module)
    obj = mod
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"--impl: {module} has no {attr}") from None
    if not callable(obj):
        raise ValueError(f"--impl: {spec} is not callable")
    return obj


def _main_impl(args) -> int:
    """``crossent accuracy --impl``: measure one callable, print a table per (function,
    dtype); 1 when ``--max-ulp`` is exceeded (or nothing could be measured)."""
    from crossent import testing

    functions = args.function or ["cross_entropy"]
    wrong = [f for f in functions if f not in testing.FUNCTIONS]
    if wrong:
        print(f"crossent accuracy: --function {wrong[0]} with --impl: one of "
              f"{testing.FUNCTIONS}", file=sys.stderr)
        return 2
    try:
        fn = load_impl(args.impl)
    except (ValueError, ImportError) as exc:
        print(f"crossent accuracy: {exc}", file=sys.stderr)
        return 2
    dtypes = args.dtype or list(DTYPES)
    reports = []
    for f in functions:
        impl = fn
        if args.adapter == "torch":
            impl = testing.torch_impl(f, fn, layout=args.layout)
        elif args.adapter == "jax":
            impl = testing.jax_impl(f, fn, layout=args.layout)
        opts = {"reduction": args.reduction} if args.reduction else {}
        for dt in dtypes:
            r = testing.measure(impl, f, dt, families=args.families, size=args.size,
                                seed=args.seed, name=args.impl, **opts)
            reports.append(r)
            _print_report(r)
            if args.plot:
                path = Path(args.plot)
                if len(functions) * len(dtypes) > 1:
                    path = path.with_name(f"{path.stem}-{f}-{dt}{path.suffix}")
                r.plot(path)
                print(f"plot: {path}")
    if args.json:
        text = json.dumps([r.to_dict() for r in reports], indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    status = 0
    for r in reports:
        if r.summary["n"] == 0:
            print(f"NOTHING MEASURED {r.function} {r.dtype}: every case was skipped or "
                  "failed", file=sys.stderr)
            status = 1
        elif args.max_ulp is not None and not (r.max_ulp <= args.max_ulp):
            print(f"FAIL {r.function} {r.dtype}: max {r.max_ulp:.4g} ulp > --max-ulp "
                  f"{args.max_ulp:g}; worst {r.worst}", file=sys.stderr)
            status = 1
    return status


def _print_report(report) -> None:
    try:
        from rich.console import Console
    except ImportError:
        print(report.table("text"))
        print()
        return
    Console().print(report.table("rich"))


def main_from_args(args) -> int:
    """Run ``crossent accuracy``; 0 when every crossent row meets its bound, else 1."""
    if args.impl is not None:
        return _main_impl(args)
    for opt in ("adapter", "families", "reduction", "plot", "max_ulp"):
        if getattr(args, opt, None) is not None:
            print(f"crossent accuracy: --{opt.replace('_', '-')} goes with --impl",
                  file=sys.stderr)
            return 2
    bad = [f for f in (args.function or ()) if f not in FUNCTIONS]
    if bad:
        print(f"crossent accuracy: --function {bad[0]} is a name of --impl; the sweep's "
              f"functions are {FUNCTIONS}", file=sys.stderr)
        return 2
    rows = run_sweep(
        size=args.size,
        dtypes=args.dtype or DTYPES,
        functions=args.function or FUNCTIONS,
        peers=not args.no_peers,
        progress=not args.no_progress,
        seed=args.seed,
        rounding=args.rounding,
    )
    print_table(rows)
    for r in rows:
        if "slow_rows" in r:
            skipped = len(r["cases_not_implemented"])
            print(f"slow path: {r['function']} {r['dtype']}: {r['slow_rows']} of {r['rows']} "
                  "rows (oracle)" + (f"; {skipped} cases with options that have no correctly "
                                     "rounded path were skipped" if skipped else ""))
    if args.json == "-":
        print(json.dumps(rows, indent=1, default=str))
    elif args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1, default=str)
    failed = [r for r in rows if not r.get("peer") and not r["passed"]]
    for r in failed:
        for msg in r.get("oracle_errors", []):
            print(f"ORACLE ERROR {r['function']} {r['dtype']} {msg}", file=sys.stderr)
        print(f"FAIL {r['function']} {r['dtype']}: max {r['max_ulp']} ulp, "
              f"{100 * r['frac_correctly_rounded']:.3f}% correctly rounded (bound "
              f"{r['bound']} ulp, {r['min_correctly_rounded']})", file=sys.stderr)
    return 1 if failed else 0


def main(argv=None) -> int:  # pragma: no cover - `python -m crossent._accuracy`
    p = argparse.ArgumentParser(prog="crossent accuracy", description=__doc__.split("\n")[0])
    add_arguments(p)
    return main_from_args(p.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
