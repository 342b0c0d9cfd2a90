"""The ``crossent`` command: ``prove``, ``accuracy``, ``bench``, ``verify`` and ``compile``.

Each sub-command lives in its own module, which provides ``add_arguments(parser)`` and
``main_from_args(args) -> int``; this file only wires them together.
"""

from __future__ import annotations

import argparse
import importlib
import sys

_COMMANDS = {
    "prove": ("crossent._prove", "run the SymPy proof scripts and report each claim's verdict"),
    "accuracy": ("crossent._accuracy", "measure ULP errors against the mpmath oracle, with peers"),
    "bench": ("crossent._bench", "time crossent side by side with PyTorch and JAX"),
    "verify": ("crossent._verify", "proofs, an accuracy sweep and a short benchmark, in one table"),
    "compile": ("crossent._compile", "compile the kernels ahead of time into Numba's disk cache"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crossent",
        description="Verified numerics for the cross-entropy loss.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"crossent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return int(importlib.import_module(args._module).main_from_args(args) or 0)


if __name__ == "__main__":  # python -m crossent.cli
    sys.exit(main())
