"""``crossent verify``: the proofs, an accuracy sweep and a short benchmark, in one table.

Exit status 0 only if every proof passes and every crossent accuracy bound holds. The
benchmark is informative (speed is reported as ratios, never judged here: absolute times on
a shared machine are noise).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", choices=("smoke", "ci", "full"), default="smoke",
                        help="accuracy corpus size (default: smoke, about a minute)")
    parser.add_argument("--no-bench", action="store_true", help="skip the short benchmark")
    parser.add_argument("--peers", action="store_true",
                        help="also measure installed peers (PyTorch, JAX, SciPy) in the sweep")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run_verify(size="smoke", bench=True, peers=False, progress=True) -> dict:
    """Run the three stages; return ``{"stages": [...], "passed": bool}``."""
    from . import _accuracy, _prove

    stages = []

    t0 = time.perf_counter()
    proofs = _prove.run_proofs()
    failed = [r.name for r in proofs if not r.passed]
    stages.append({
        "stage": "proofs",
        "passed": not failed,
        "summary": f"{len(proofs) - len(failed)}/{len(proofs)} claims proven"
                   + (f"; FAILED: {', '.join(failed)}" if failed else ""),
        "seconds": time.perf_counter() - t0,
        "details": [{"claim": r.name, "passed": r.passed, "seconds": r.seconds} for r in proofs],
    })

    t0 = time.perf_counter()
    rows = _accuracy.run_sweep(size=size, peers=peers, progress=progress)
    mine = [r for r in rows if not r.get("peer")]
    bad = [f"{r['function']}/{r['dtype']} ({r['max_ulp']:.3g} ulp > {r['bound']})"
           for r in mine if not r["passed"]]
    worst = max(mine, key=lambda r: r["max_ulp"] / r["bound"]) if mine else None
    stages.append({
        "stage": "accuracy",
        "passed": bool(mine) and not bad,
        "summary": f"{len(mine) - len(bad)}/{len(mine)} (function, dtype) bounds hold"
                   + (f"; worst {worst['function']}/{worst['dtype']} {worst['max_ulp']:.3g} of "
                      f"{worst['bound']} ulp" if worst else "")
                   + (f"; FAILED: {'; '.join(bad)}" if bad else ""),
        "seconds": time.perf_counter() - t0,
        "details": rows,
    })

    if bench:
        from . import _bench

        t0 = time.perf_counter()
        res = _bench.run_bench(quick=True)
        stages.append({
            "stage": "bench",
            "passed": True,
            "summary": _bench.summary_line(res),
            "seconds": time.perf_counter() - t0,
            "details": res,
        })
    return {"stages": stages, "passed": all(s["passed"] for s in stages)}


def _print_table(result, file=None) -> None:
    file = file or sys.stdout
    headers = ["stage", "verdict", "seconds", "summary"]
    body = [[s["stage"], "PASS" if s["passed"] else "FAIL", f"{s['seconds']:.1f}", s["summary"]]
            for s in result["stages"]]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(r[i]) for r in body)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths)), file=file)
        for r in body:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)), file=file)
    else:
        table = Table(title="crossent verify")
        for h in headers:
            table.add_column(h)
        for r in body:
            table.add_row(*r)
        Console(file=file).print(table)
    print(f"verify: {'PASS' if result['passed'] else 'FAIL'}", file=file)


def main_from_args(args) -> int:
    result = run_verify(size=args.size, bench=not args.no_bench, peers=args.peers,
                        progress=not args.no_progress and not args.json)
    if args.json:
        json.dump(result, sys.stdout, indent=2, default=str)
        print()
    else:
        _print_table(result)
    return 0 if result["passed"] else 1
