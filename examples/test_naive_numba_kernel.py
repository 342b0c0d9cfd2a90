"""A cross-entropy kernel written the obvious way in Numba, and the two pytest tests that catch
it against crossent's oracle (``pytest examples/test_naive_numba_kernel.py``: both fail).

The kernel shifts by the maximum (so nothing overflows), sums ``math.exp`` in float64 and
takes ``log(s) + m - x_y``, with no compensation: where the loss is tiny, ``s = 1 + (K-1)e^-d``
rounds to 1 and the loss to 0; where the logits are large, ``log(s)`` is absorbed by ``m``.
Tests on random logits do not see either.
"""

import math

import numba
import numpy as np

from crossent.testing import Unsupported, assert_ulp, measure


@numba.njit
def _loss_rows(x, y, out):
    for i in range(x.shape[0]):
        m = x[i, 0]
        for j in range(1, x.shape[1]):
            m = max(m, x[i, j])
        s = 0.0
        for j in range(x.shape[1]):
            s += math.exp(x[i, j] - m)
        out[i] = math.log(s) + m - x[i, y[i]]


def naive_cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100,
                        reduction="none", label_smoothing=0.0):
    """Per-item loss of 2-D logits and class labels; other cases are not supported."""
    if (logits.ndim != 2 or axis not in (-1, 1) or weight is not None or label_smoothing
            or target.dtype.kind not in "iu" or np.any(target == ignore_index)
            or reduction != "none"):
        raise Unsupported("2-D logits, class labels, reduction='none' only")
    out = np.empty(logits.shape[0])
    _loss_rows(logits.astype(np.float64), target.astype(np.int64), out)
    return out.astype(logits.dtype)


def test_against_the_oracle():
    report = measure(naive_cross_entropy, "cross_entropy", "float32")
    assert report.max_ulp <= 1, report.table()


def test_one_confident_row():
    x = np.array([[0.0, -40.0, -50.0]], dtype=np.float32)
    y = np.array([0])
    assert_ulp(naive_cross_entropy(x, y), "cross_entropy", x, y, reduction="none")
