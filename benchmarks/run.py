"""Run the full cross-entropy benchmark and keep its results (a thin wrapper of crossent._bench).

Writes ``benchmarks/results/latest.json`` and ``benchmarks/results/latest.png`` next to this
script. Extra arguments go to ``crossent bench`` (e.g. ``--quick``, ``--repeats 31``,
``--shapes 4096x1000``, ``--no-peers``).

Run: ``python benchmarks/run.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from crossent import _bench
except ImportError:  # a checkout without installing
    sys.path.insert(0, str(HERE.parent / "src"))
    from crossent import _bench


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    if "--json" not in argv:
        argv += ["--json", str(results / "latest.json")]
    if "--plot" not in argv:
        argv += ["--plot", str(results / "latest.png")]
    return _bench.main(argv)


if __name__ == "__main__":
    sys.exit(main())
