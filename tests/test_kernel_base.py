"""The foundation of the kernels (``crossent.kernels._base``): every Numba function of every
kernel module is made by its one decorator, ``jit``, and the modules import each other one way.

``jit`` fixes ``cache=True`` and ``error_model="numpy"`` (a division by zero is an IEEE
operation, never an exception inside a parallel region: see ``tests/test_zero_denominator.py``)
and allows ``fastmath`` contraction only where asked; these tests read the options back from
every dispatcher, so a kernel written with a bare ``numba.njit`` fails here.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import numba
import pytest

import crossent.kernels
from crossent.kernels import _base

KERNELS = Path(crossent.kernels.__file__).parent


def _kernel_dispatchers():
    """Every Numba dispatcher defined in a module of :mod:`crossent.kernels`."""
    found = {}
    for info in pkgutil.iter_modules(crossent.kernels.__path__):
        mod = importlib.import_module(f"crossent.kernels.{info.name}")
        for name, obj in vars(mod).items():
            if isinstance(obj, numba.core.dispatcher.Dispatcher) and obj.py_func.__module__ == mod.__name__:
                found[f"{mod.__name__}.{name}"] = obj
    return found


def _problems(d):
    """What is wrong with dispatcher ``d``'s options ([] if nothing)."""
    out = []
    if d.targetoptions.get("error_model") != "numpy":
        out.append(f"error_model={d.targetoptions.get('error_model', 'python (default)')}")
    if isinstance(d._cache, numba.core.caching.NullCache):
        out.append("not cached")
    fm = d.targetoptions.get("fastmath")
    if fm and fm != {"contract"}:
        out.append(f"fastmath={fm}")
    return out


def test_the_check_can_fail():
    assert _problems(numba.njit(lambda v: v)) == ["error_model=python (default)", "not cached"]
    assert _problems(numba.njit(fastmath=True, error_model="numpy", cache=True)(lambda v: v))


def test_every_kernel_uses_the_numpy_error_model():
    found = _kernel_dispatchers()
    # every module is searched (the discovery itself must work for the check to mean anything)
    modules = {k.rsplit(".", 1)[0].rsplit(".", 1)[1] for k in found}
    assert {"_base", "exp", "softmax", "loss", "pmf"} <= modules
    bad = {name: p for name, d in found.items() if (p := _problems(d))}
    assert not bad, bad


def test_only_the_exp_polynomials_contract():
    found = _kernel_dispatchers()
    contracted = sorted(k for k, d in found.items() if d.targetoptions.get("fastmath"))
    assert contracted == ["crossent.kernels.exp._horner_short", "crossent.kernels.exp._poly_full",
                          "crossent.kernels.exp._poly_short"]


def test_jit_rejects_what_its_policy_forbids():
    with pytest.raises(ValueError, match="inlined"):
        _base.jit("float64(float64)", inline=True)
    with pytest.raises(ValueError, match="inlined"):
        _base.jit(inline=True, parallel=True)


def _sibling_imports(path):
    """The kernel modules that ``path`` imports (relative imports: ``from .x import ...``)."""
    tree = ast.parse(path.read_text())
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1}


def test_imports_go_one_way():
    """``_base`` at the bottom (it imports no kernel module), then exp, softmax, loss, and on
    top the loss options, the class-chunked rows and the short-row kernels, the divergences and the binary loss; pmf on
    the base and softmax (the double-double logarithm of its correctly rounded path), the
    reductions' accumulator (exact) on the base alone, logsumexp with ``b`` (scaled) on the
    top (the module map of ``crossent/kernels/__init__.py``)."""
    graph = {p.stem: _sibling_imports(p) for p in KERNELS.glob("*.py") if p.stem != "__init__"}
    assert graph == {
        "_base": set(),
        "exp": {"_base"},
        "softmax": {"_base", "exp"},
        "loss": {"_base", "softmax"},
        "pmf": {"_base", "softmax"},
        "exact": {"_base"},
        "chunked": {"_base", "exp", "softmax"},
        "options": {"_base", "exp", "softmax", "loss"},
        "short": {"_base", "exp", "softmax"},
        "linear": {"_base"},
        "divergence": {"_base", "exp", "softmax"},
        "binary": {"_base", "exp", "softmax"},
        "scaled": {"_base", "exp", "softmax", "pmf"},
    }
