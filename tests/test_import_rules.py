"""The layers of ``src/crossent`` and what each may import (CONTRIBUTING.md, "Layers").

Every module under ``src/crossent`` is parsed with :mod:`ast` (nothing is imported or run) and
each of its imports, at module level or inside a function, is checked against :data:`ALLOWED`:

- the public API imports validation, the kernels, the ULP tools, the accuracy table and the
  rounding mode; the correctly rounded mode's slow path calls the oracle, imported only inside
  a function (:data:`LAZY_ONLY`), so that the fast path never loads it;
- the rounding mode (``_rounding``) imports only the kernels (the error bound it states);
- validation imports nothing of crossent; the kernels import only kernel modules and the base,
  and of the outside world only numpy, numba, llvmlite and math;
- the oracle imports only the ULP tools and validation (it never calls the kernels);
- the accuracy table's condition checks import the oracle and the ULP tools;
- measurement (``_measure``, ``_peers``, ``corpus``) imports the public API, the table, the
  oracle and the ULP tools; the optional peers (torch, jax, scipy, ...) are imported only there,
  by the bridges (``crossent.torch``, ``crossent.jax``, ``crossent.numba``: on the public API),
  by the testing toolkit and by the command line, which sits on top of everything;
- the testing toolkit (``crossent.testing``, public) is built on measurement: measurement never
  imports it, so the internal sweep and the tests cannot come to depend on the public wrapper.

A module that no layer claims fails the test: a new module must be given its place here.
"""

from __future__ import annotations

import ast
import fnmatch
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: layer -> module-name patterns (fnmatch); the first layer whose pattern matches wins
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("crossent.kernels._base",),
    "kernels": ("crossent.kernels", "crossent.kernels.*"),
    "validation": ("crossent._validate",),
    "ulp": ("crossent.ulp",),
    "oracle": ("crossent.reference",),
    "table": ("crossent._bounds",),
    "mode": ("crossent._rounding",),
    "public": ("crossent", "crossent.softmax", "crossent.loss", "crossent.pmf", "crossent._partial",
               "crossent.linear", "crossent.divergence", "crossent.binary"),
    "measurement": ("crossent._measure", "crossent._peers", "crossent.corpus", "crossent.corpus.*"),
    "bridges": ("crossent.torch", "crossent.jax", "crossent.numba", "crossent.dask"),
    "toolkit": ("crossent.testing",),
    "cli": ("crossent.cli", "crossent.__main__", "crossent._accuracy", "crossent._bench",
            "crossent._verify", "crossent._prove", "crossent._compile"),
}

#: layer -> the layers it may import from (its own layer included where listed)
ALLOWED: dict[str, set[str]] = {
    "base": set(),
    "kernels": {"kernels", "base"},
    "validation": set(),
    "ulp": set(),
    "oracle": {"ulp", "validation"},
    "table": {"oracle", "ulp"},
    "mode": {"kernels"},
    "public": {"public", "validation", "kernels", "ulp", "table", "mode", "oracle"},
    "measurement": {"measurement", "public", "table", "oracle", "ulp"},
    "bridges": {"public", "validation", "kernels", "mode"},
    "toolkit": {"toolkit", "measurement", "public", "table", "oracle", "ulp"},
    "cli": set(LAYERS),
}

#: (layer, imported layer) pairs allowed only inside a function body: the public API reaches
#: the oracle only for the correctly rounded mode's slow path (rows whose rounding the kernel
#: could not decide), never at import time and never in the default mode
LAZY_ONLY: set[tuple[str, str]] = {("public", "oracle")}

#: outside packages the kernel layers may import (anything else would run in a kernel module's
#: import or reach it through a Python object)
KERNEL_EXTERNAL = {"numpy", "numba", "llvmlite", "math", "__future__"}
#: optional dependencies (extras): only measurement, the toolkit and the command line may
#: import them
OPTIONAL = {"torch", "jax", "jaxlib", "optax", "scipy", "matplotlib", "rich", "dask",
            "distributed"}
_MAY_IMPORT_OPTIONAL = ("measurement", "bridges", "toolkit", "cli")


def layer_of(module: str) -> str | None:
    for layer, patterns in LAYERS.items():
        if any(fnmatch.fnmatchcase(module, p) for p in patterns):
            return layer
    return None


def _imports(module: str, is_package: bool, source: str, modules: set[str]):
    """``(line, imported module, at module level)`` for every import in ``source``;
    crossent-internal names are resolved to the module they load
    (``from crossent import reference`` -> crossent.reference)."""
    package = module if is_package else module.rpartition(".")[0]
    tree = ast.parse(source)
    in_function = {id(n) for f in ast.walk(tree)
                   if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for n in ast.walk(f)}
    for node in ast.walk(tree):
        top_level = id(node) not in in_function
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, top_level
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield node.lineno, sub if sub in modules else base, top_level


def violations(module: str, source: str, modules: set[str], is_package: bool = False) -> list[str]:
    """The imports of ``module`` (given as its source) that break the layer rules."""
    layer = layer_of(module)
    if layer is None:
        return [f"{module}: in no layer (add it to LAYERS in tests/test_import_rules.py)"]
    out = []
    for line, target, top_level in _imports(module, is_package, source, modules):
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if top == "crossent":
            t_layer = layer_of(target)
            if t_layer not in ALLOWED[layer]:
                out.append(f"{where} ({layer} may not import {t_layer})")
            elif top_level and (layer, t_layer) in LAZY_ONLY:
                out.append(f"{where} ({layer} imports {t_layer} only inside a function)")
        elif layer in ("kernels", "base") and top not in KERNEL_EXTERNAL:
            out.append(f"{where} (a kernel module imports only {sorted(KERNEL_EXTERNAL)})")
        elif top in OPTIONAL and layer not in _MAY_IMPORT_OPTIONAL:
            out.append(f"{where} (optional dependency outside {', '.join(_MAY_IMPORT_OPTIONAL)})")
    return out


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted((SRC / "crossent").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (path, is_package)
    return out


MODULES = _modules()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_follow_the_layers(module):
    path, is_package = MODULES[module]
    assert violations(module, path.read_text(), set(MODULES), is_package) == []


def test_every_layer_has_a_module():
    """The table describes the code as it is: no layer is a leftover."""
    used = {layer_of(m) for m in MODULES}
    assert set(LAYERS) - {"base"} <= used  # kernels/_base.py is being split out of eft.py


# --- the checker itself must be able to fail ---------------------------------------------


_FAKE = {"crossent", "crossent.loss", "crossent.reference", "crossent._rounding", "crossent.ulp", "crossent._validate",
         "crossent.kernels", "crossent.kernels.softmax", "crossent.kernels.eft",
         "crossent.kernels._base", "crossent.cli", "crossent._measure", "crossent.testing"}


@pytest.mark.parametrize("module,source", [
    ("crossent.kernels.softmax", "from ..loss import cross_entropy\n"),      # kernel -> public
    ("crossent.kernels.softmax", "from crossent import reference\n"),         # kernel -> oracle
    ("crossent.kernels.softmax", "def f():\n    import crossent.cli\n"),      # inside a function
    ("crossent.kernels.softmax", "import scipy.special\n"),                   # outside numerics
    ("crossent.kernels._base", "from .softmax import x\n"),                   # base -> kernels
    ("crossent.reference", "from .kernels import softmax\n"),                 # oracle -> kernels
    ("crossent.reference", "from . import loss\n"),                           # oracle -> public
    ("crossent.loss", "from crossent import _measure\n"),                     # public -> measurement
    ("crossent.loss", "import torch\n"),                                      # optional dependency
    ("crossent.loss", "from . import reference\n"),                           # oracle at import time
    ("crossent._rounding", "from . import loss\n"),                           # mode -> public
    ("crossent._validate", "from .ulp import ulp\n"),                         # validation -> ulp
    ("crossent._measure", "from crossent.kernels import softmax\n"),          # measurement -> kernels
    ("crossent._measure", "from crossent import testing\n"),                  # measurement -> toolkit
    ("crossent.loss", "import crossent.testing\n"),                            # public -> toolkit
    ("crossent.testing", "from crossent.kernels import loss\n"),              # toolkit -> kernels
    ("crossent._unplaced", "import numpy\n"),                                 # in no layer
])
def test_checker_reports_a_violation(module, source):
    assert violations(module, source, _FAKE | {module})


@pytest.mark.parametrize("module,source", [
    ("crossent.kernels.softmax", "from .eft import two_sum\nfrom ._base import jit\nimport numba\n"),
    ("crossent.reference", "from .ulp import float_format\nfrom ._validate import normalize_axis\n"),
    ("crossent.loss", "from ._validate import to_rows\nfrom .kernels import softmax as _k\n"),
    ("crossent.loss", "from . import _rounding\ndef slow():\n    from . import reference\n"),
    ("crossent._measure", "import crossent\nfrom crossent import reference\n"),
    ("crossent.cli", "from . import __version__\nimport torch\n"),
    ("crossent.testing", "from crossent import _measure, reference\nimport matplotlib\n"),
    ("crossent.cli", "from crossent import testing\n"),
])
def test_checker_accepts_allowed_imports(module, source):
    assert violations(module, source, _FAKE) == []
