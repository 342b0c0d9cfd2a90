"""Measure crossent in bfloat16 on the "ci" corpora and print the Markdown table of
``docs/bridges.md`` (max ULP error and the fraction correctly rounded, per function).

Every error is measured against the oracle ``crossent.reference`` (``exact=True``) through
``crossent._measure.measure``, on the corpora built in bfloat16 (``crossent.corpus``).

Run: ``python docs/scripts/bfloat16_table.py`` (a few minutes).
"""

from __future__ import annotations

import ml_dtypes  # noqa: F401  (registers the "bfloat16" dtype name)
import numpy as np

import crossent
from crossent import _measure
from crossent._bounds import bound


def main(size: str = "ci") -> str:
    lines = ["| function | outputs | max error (ulp) | correctly rounded | bound (ulp) |",
             "|---|---:|---:|---:|---:|"]
    for f in _measure.FUNCTIONS:
        errs = []
        for case in _measure.cases(f, size, dtype="bfloat16"):
            m = _measure.measure(crossent, f, case)
            assert m.dtype_ok, (f, case.name)
            errs.append(np.asarray(m.errors, dtype=np.float64)[m.held])  # where the bound's condition holds
        e = np.concatenate(errs)
        lines.append(f"| `{f}` | {e.size} | {e.max():.3f} | {100 * np.mean(e <= 0.5):.3f}% | "
                     f"{bound(f, 'bfloat16').max_ulp:g} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main())
