"""The hot loops of the softmax kernels compile to vector code, as wide as the CPU allows.

A code-generation check, not a timing (speed is measured by ``crossent bench``): a change that
turns a loop scalar (a branch, a call, a float->int conversion in the exp) or drops the
512-bit request (``_base.wide_vectors``) fails here on any machine. The functions are recompiled
with their own options but without the cache, because Numba cannot show the assembly of cached
code.
"""

from __future__ import annotations

import re

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest

from crossent.kernels import _base as B
from crossent.kernels import softmax as K

HAS_AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten().split(",")
WIDE = "zmm" if HAS_AVX512 else "ymm"  # the register file the loops should use


def _asm(fn, *args):
    options = {k: v for k, v in fn.targetoptions.items() if k not in ("inline", "nopython", "boundscheck")}
    f = numba.njit(fn.py_func, **options)
    f(*args)
    return f.inspect_asm(f.signatures[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_pass_is_vectorized_at_full_width(dtype):
    x = np.linspace(-30.0, 0.0, 1000).astype(dtype)
    bt, be = np.zeros(B.padded(1000)), np.zeros(B.padded(1000))
    if dtype == np.float32:
        asm = _asm(K._fill_terms_fast, x, 0.0, bt)
    else:
        asm = _asm(K._fill_terms, x, 0.0, bt, be)
    # the exp's polynomial: packed FMAs on the widest registers
    assert re.search(rf"vfmadd\w*pd\s+[^\n]*%{WIDE}", asm), f"no packed FMA on {WIDE}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_max_is_a_vector_loop(dtype):
    asm = _asm(B.row_max, np.arange(1000.0).astype(dtype))
    suffix = "ps" if dtype == np.float32 else "pd"
    assert re.search(rf"v(max|cmp\w*){suffix}\s+[^\n]*%{WIDE}", asm), "scalar max"


def test_lane_sums_are_vector_loops():
    x = np.ones(1024)
    assert re.search(rf"vaddpd\s+[^\n]*%{WIDE}", _asm(B.lane_sum, x))
    assert re.search(rf"vsubpd\s+[^\n]*%{WIDE}", _asm(B.dd_sum2, x, x * 1e-17, np.empty(B.DD_ACC)))
