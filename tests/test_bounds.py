"""The accuracy table's conditions (:mod:`crossent._bounds`) and how the measurement applies them.

A row with a condition in words has the function that applies it (``Bound.check``) and the other
rows have none; each check is run on inputs built so that its condition holds or fails, computed
by hand below. Where a condition fails the output is judged against the row's absolute bound,
which crossent meets and a wrong implementation does not. Exact values: the oracle
``crossent.reference`` (through :func:`crossent._measure.measure`).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import crossent
from crossent import _measure
from crossent._bounds import BOUNDS, bound
from crossent._peers import Forms
from crossent.corpus.logits import Case


def test_every_condition_has_a_check_and_only_those():
    for function, rows in BOUNDS.items():
        for dtype, b in rows.items():
            assert (b.condition is None) == (b.check is None), (function, dtype)


def _pmf_case(p, q, base=None):
    return SimpleNamespace(name="constructed", dtype=p.dtype, args=(p, q),
                           kwargs={"base": base, "axis": -1})


# p = (1/2, 1/2), q = (1/2 + a, 1/2 - a + 2a^2) with a = 2^-20: T_1 + T_2 = 2a^2 (1 + O(a)) and
# sum (p - q) = -2a^2 cancel all but O(a^3) of it (the oracle: D = -3.5e-18 against
# sum T = 1.8e-12); the second row (q = p) has D = 0 = sum T and keeps the condition.
_A = 2.0**-20
_P = np.array([[0.5, 0.5], [0.25, 0.75]])
_Q = np.array([[0.5 + _A, 0.5 - _A + 2 * _A**2], [0.25, 0.75]])


@pytest.mark.parametrize("base", [None, 2.0, 0.5])
def test_kl_condition_fails_where_the_differences_cancel(base):
    m = _measure.measure(crossent, "kl_divergence", _pmf_case(_P, _Q, base))
    assert m.held.tolist() == [False, True]
    assert m.max_alt <= bound("kl_divergence", "float64").max_ulp  # crossent: absolute bound
    assert m.max_ulp <= bound("kl_divergence", "float64").max_ulp


def test_kl_cancellation_fails_the_textbook_form():
    """H(p, q) - H(p, p) loses every digit there: far outside the absolute bound."""
    textbook = Forms(kl_divergence=lambda p, q, *, base=None, axis=-1:
                     crossent.cross_entropy_pmf(p, q, base=base) - crossent.entropy(p, base=base))
    m = _measure.measure(textbook, "kl_divergence", _pmf_case(_P, _Q))
    assert m.max_alt > 1e6
    row = _measure.summarize([m], "kl_divergence", "float64", implementation="textbook")
    assert row["n_conditional"] == 1 and not row["passed"]


def test_logsumexp_condition():
    # rows: max >= 0 (holds); max < 0 with |lse| = 0.31 >= L/3 = 0.23 (holds);
    # x = (-0.7, -0.7): lse = log 2 - 0.7 = -0.0069, |lse| < L/3 (fails)
    x = np.array([[1.0, 0.0], [-1.0, -1.0], [-0.7, -0.7]])
    case = Case(name="constructed", family="test", logits=x, target=np.zeros(3, np.int64))
    m = _measure.measure(crossent, "logsumexp", case)
    assert m.held.tolist() == [True, True, False]
    b = bound("logsumexp", "float64")
    assert m.max_ulp <= b.max_ulp and m.max_alt <= b.max_ulp
    # the float32 row has no condition: every output judged in ULPs
    m32 = _measure.measure(crossent, "logsumexp", Case(
        name="constructed", family="test", logits=x.astype(np.float32), target=case.target))
    assert m32.held.all()


def test_grad_condition_holds_for_one_hot_targets_only():
    x = np.array([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]])
    one_hot = Case(name="labels", family="test", logits=x, target=np.array([2, 0]))
    assert _measure.measure(crossent, "cross_entropy_grad", one_hot).held.all()
    smoothed = Case(name="smoothed", family="test", logits=x, target=np.array([2, 0]),
                    label_smoothing=0.1)
    m = _measure.measure(crossent, "cross_entropy_grad", smoothed)
    assert not m.held.any()
    assert m.max_alt <= bound("cross_entropy_grad", "float64").max_ulp


def test_forms_raise_unsupported_for_what_they_do_not_give():
    f = Forms(entropy=lambda p, *, base=None, axis=-1: np.zeros(1))
    assert f.entropy(np.ones(1)).tolist() == [0.0]
    with pytest.raises(_measure.Unsupported):
        f.kl_divergence(np.ones(1), np.ones(1))
