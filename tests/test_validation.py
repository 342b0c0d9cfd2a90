"""Bad input at the boundary: every failure is a TypeError or ValueError naming the argument,
and ``crossent`` and its oracle ``crossent.reference`` accept and reject exactly the same inputs.

The Numba kernels do no bounds checking (a label of 2**40 handed to a kernel reads arbitrary
memory), so the Python layer must reject every input a kernel cannot handle before a kernel
sees it. Each case of ``CASES`` is one bad input with the exception type it must raise and a
pattern its message must match: the pattern always contains the argument's name and, where
there is one, the offending value or index. Every case runs against both the public function
and the oracle, which must raise the same type with the same message (both use the rules of
``crossent._validate``; this table is what keeps a copy from drifting). ``EDGES`` are unusual
inputs that both must accept, with results of the same shape, dtype and special values.

``python tests/test_validation.py`` prints the table of cases and the messages they get.
"""

from __future__ import annotations

import re

import ml_dtypes
import numpy as np
import pytest

import crossent
from crossent import reference

X23 = np.arange(6, dtype=np.float64).reshape(2, 3) / 7.0  # 2 items, 3 classes
Y2 = np.array([0, 2])
P23 = np.full((2, 3), 1.0 / 3.0)
PMF = np.array([0.25, 0.25, 0.5])
IMPLS = {"crossent": crossent, "reference": reference}


def _ro(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def _ce(id_, exc, pattern, logits=X23, target=Y2, **kw):
    return (id_, "cross_entropy", (logits, target), kw, exc, pattern)


def _vg(id_, exc, pattern, logits=X23, target=Y2, **kw):
    return (id_, "cross_entropy_value_and_grad", (logits, target), kw, exc, pattern)


def _f(id_, fname, args, kw, exc, pattern):
    return (id_, fname, args, kw, exc, pattern)


# (id, function name, args, kwargs, exception type, regex the message must match)
CASES = [
    # --- labels -------------------------------------------------------------------------
    _ce("label == C", ValueError, r"target\[1\] = 3 .*\[0, 3\)", target=np.array([0, 3])),
    _ce("label 2**40", ValueError, r"target\[0\] = 1099511627776", target=np.array([2**40, 0])),
    _ce("label -1 (ignore_index=-100)", ValueError, r"target\[1\] = -1", target=np.array([0, -1])),
    _ce("label -2**63", ValueError, r"target\[1\] = -9223372036854775808",
        target=np.array([0, -(2**63)], dtype=np.int64)),
    _ce("label uint64 2**63+5", ValueError, r"target\[1\] = 9223372036854775813",
        target=np.array([0, 2**63 + 5], dtype=np.uint64)),
    _ce("label uint8 200", ValueError, r"target\[0\] = 200", target=np.array([200, 0], dtype=np.uint8)),
    _ce("label out of range, 2-D batch", ValueError, r"target\[1, 0\] = 5", logits=np.zeros((2, 2, 3)),
        target=np.array([[0, 1], [5, 0]])),
    _ce("label out of range with weight", ValueError, r"target\[1\] = 7", target=np.array([0, 7]),
        weight=np.ones(3)),
    _ce("label out of range, ignore_index=1", ValueError, r"target\[1\] = -100",
        target=np.array([0, -100]), ignore_index=1),
    _ce("label 0 with no classes", ValueError, r"target\[0\] = 0 .*\[0, 0\)", logits=np.zeros((2, 0)),
        target=np.array([0, -100])),
    _ce("float labels (batch shape)", ValueError, r"target.*(probabilit|integer)", target=np.array([0.0, 2.0])),
    _ce("bool target", TypeError, r"target.*bool", target=np.array([True, False])),
    _ce("str target", TypeError, r"target.*<U1", target=np.array(["0", "2"])),
    _ce("complex target", TypeError, r"target.*complex", target=np.array([0j, 1j])),
    _ce("object target", TypeError, r"target.*object", target=np.array([0, None], dtype=object)),
    _ce("None target", TypeError, r"target.*object", target=None),
    _ce("ragged target", TypeError, r"target must be array-like", target=[[0], [1, 2]]),
    _ce("label shape (3,) vs batch (2,)", ValueError, r"target.*\(2,\).*\(3,\)", target=np.array([0, 1, 2])),
    _ce("label shape (2,1) vs batch (2,)", ValueError, r"target.*\(2,\).*\(2, 1\)",
        target=np.array([[0], [1]])),
    _ce("label 0-d for 2-D logits", ValueError, r"target.*\(2,\).*\(\)", target=np.int64(0)),
    _vg("vg: label == C", ValueError, r"target\[0\] = 3", target=np.array([3, 0])),
    # --- probability targets -----------------------------------------------------------------
    _ce("prob shape (2,4) vs (2,3)", ValueError, r"target.*\(2, 3\).*\(2, 4\)", target=np.full((2, 4), 0.25)),
    _ce("prob shape (3,2) vs (2,3)", ValueError, r"target.*\(2, 3\).*\(3, 2\)", target=P23.T.copy()),
    _ce("negative probability", ValueError, r"target\[0, 2\] = -0\.1",
        target=np.array([[0.5, 0.6, -0.1], [1.0, 0, 0]])),
    _ce("nan probability", ValueError, r"target\[1, 0\] = nan", target=np.array([[0.5, 0.5, 0.0], [np.nan, 0, 0]])),
    _ce("inf probability", ValueError, r"target\[0, 0\] = inf", target=np.array([[np.inf, 0.5, 0.0], [1.0, 0, 0]])),
    _ce("longdouble probabilities", TypeError, r"target.*float128|target.*longdouble",
        target=P23.astype(np.longdouble)),
    _vg("vg: negative probability", ValueError, r"target\[0, 2\] = -0\.1",
        target=np.array([[0.5, 0.6, -0.1], [1.0, 0, 0]])),
    # --- weight ------------------------------------------------------------------------------
    _ce("weight length 2 for C=3", ValueError, r"weight.*\(3,\).*\(2,\)", weight=np.ones(2)),
    _ce("weight 2-D", ValueError, r"weight.*\(3,\).*\(1, 3\)", weight=np.ones((1, 3))),
    _ce("weight scalar", ValueError, r"weight.*\(3,\).*\(\)", weight=1.0),
    _ce("weight negative entry", ValueError, r"weight\[1\] = -0\.5", weight=np.array([1.0, -0.5, 1.0])),
    _ce("weight nan entry", ValueError, r"weight\[2\] = nan", weight=np.array([1.0, 1.0, np.nan])),
    _ce("weight inf entry", ValueError, r"weight\[0\] = inf", weight=np.array([np.inf, 1.0, 1.0])),
    _ce("weight complex", TypeError, r"weight.*complex", weight=np.ones(3, dtype=complex)),
    _ce("weight str", TypeError, r"weight.*<U1", weight=["a", "b", "c"]),
    _ce("weight ragged", TypeError, r"weight must be array-like", weight=[[1.0], [1.0, 2.0]]),
    _vg("vg: weight negative", ValueError, r"weight\[1\] = -0\.5", weight=np.array([1.0, -0.5, 1.0])),
    # --- reduction, label_smoothing, ignore_index --------------------------------------------------
    _ce("reduction 'avg'", ValueError, r"reduction.*'avg'", reduction="avg"),
    _ce("reduction 'MEAN'", ValueError, r"reduction.*'MEAN'", reduction="MEAN"),
    _ce("reduction None", ValueError, r"reduction.*None", reduction=None),
    _ce("reduction 1", ValueError, r"reduction.*1", reduction=1),
    _ce("reduction ['sum']", ValueError, r"reduction.*\['sum'\]", reduction=["sum"]),
    _vg("vg: reduction 'avg'", ValueError, r"reduction.*'avg'", reduction="avg"),
    _ce("label_smoothing -0.1", ValueError, r"label_smoothing.*-0\.1", label_smoothing=-0.1),
    _ce("label_smoothing 1.5", ValueError, r"label_smoothing.*1\.5", label_smoothing=1.5),
    _ce("label_smoothing nan", ValueError, r"label_smoothing.*nan", label_smoothing=float("nan")),
    _ce("label_smoothing inf", ValueError, r"label_smoothing.*inf", label_smoothing=float("inf")),
    _ce("label_smoothing '0.1'", TypeError, r"label_smoothing.*'0\.1'", label_smoothing="0.1"),
    _ce("label_smoothing True", TypeError, r"label_smoothing.*True", label_smoothing=True),
    _ce("label_smoothing None", TypeError, r"label_smoothing.*None", label_smoothing=None),
    _ce("label_smoothing array", TypeError, r"label_smoothing", label_smoothing=np.array([0.1])),
    _vg("vg: label_smoothing 2", ValueError, r"label_smoothing.*2", label_smoothing=2.0),
    _ce("ignore_index 1.5", TypeError, r"ignore_index.*1\.5", ignore_index=1.5),
    _ce("ignore_index None", TypeError, r"ignore_index.*None", ignore_index=None),
    _ce("ignore_index True", TypeError, r"ignore_index.*bool", ignore_index=True),
    _ce("ignore_index 2**70", ValueError, r"ignore_index.*1180591620717411303424", ignore_index=2**70),
    # --- the loss options: z_loss finite >= 0, logit_softcap None or finite > 0 -----------------
    _ce("z_loss -1e-4", ValueError, r"z_loss.*-0\.0001", z_loss=-1e-4),
    _ce("z_loss nan", ValueError, r"z_loss.*nan", z_loss=float("nan")),
    _ce("z_loss inf", ValueError, r"z_loss.*inf", z_loss=float("inf")),
    _ce("z_loss None", TypeError, r"z_loss.*None", z_loss=None),
    _ce("z_loss True", TypeError, r"z_loss.*True", z_loss=True),
    _ce("z_loss '1e-4'", TypeError, r"z_loss.*'1e-4'", z_loss="1e-4"),
    _ce("logit_softcap 0", ValueError, r"logit_softcap.*0", logit_softcap=0.0),
    _ce("logit_softcap -30", ValueError, r"logit_softcap.*-30", logit_softcap=-30.0),
    _ce("logit_softcap inf", ValueError, r"logit_softcap.*inf", logit_softcap=float("inf")),
    _ce("logit_softcap nan", ValueError, r"logit_softcap.*nan", logit_softcap=float("nan")),
    _ce("logit_softcap False", TypeError, r"logit_softcap.*False", logit_softcap=False),
    _ce("logit_softcap '30'", TypeError, r"logit_softcap.*'30'", logit_softcap="30"),
    _vg("vg: logit_softcap -1", ValueError, r"logit_softcap.*-1", logit_softcap=-1.0),
    _vg("vg: z_loss -1", ValueError, r"z_loss.*-1", z_loss=-1.0),
    # --- axis ----------------------------------------------------------------------------------
    _ce("ce axis=2 on 2-D", ValueError, r"axis=2.*2 dimensions", axis=2),
    _ce("ce axis=-3 on 2-D", ValueError, r"axis=-3.*2 dimensions", axis=-3),
    _ce("ce axis=1.0", TypeError, r"axis.*1\.0", axis=1.0),
    _ce("ce axis=None", TypeError, r"axis.*None", axis=None),
    _ce("ce axis=True", TypeError, r"axis.*bool", axis=True),
    _f("logsumexp axis=2 on 2-D", "logsumexp", (X23,), {"axis": 2}, ValueError, r"axis=2.*2 dimensions"),
    _f("log_softmax axis=-3", "log_softmax", (X23,), {"axis": -3}, ValueError, r"axis=-3"),
    _f("softmax axis='1'", "softmax", (X23,), {"axis": "1"}, TypeError, r"axis.*'1'"),
    _f("softmax axis=(0, 0)", "softmax", (X23,), {"axis": (0, 0)}, ValueError, r"axis=\(0, 0\) repeats"),
    _f("logsumexp axis=(0, 2)", "logsumexp", (X23,), {"axis": (0, 2)}, ValueError, r"axis=\(0, 2\).*2 dim"),
    _f("logsumexp axis=(0, 1.0)", "logsumexp", (X23,), {"axis": (0, 1.0)}, TypeError, r"axis.*1\.0"),
    _f("log_softmax 0-d axis=1", "log_softmax", (2.0,), {"axis": 1}, ValueError, r"axis=1.*0 dim"),
    _f("softmax axis=False", "softmax", (X23,), {"axis": False}, TypeError, r"axis.*bool"),
    _f("entropy axis=1 on 1-D", "entropy", (PMF,), {"axis": 1}, ValueError, r"axis=1.*1 dimensions"),
    _f("kl axis=-2 on 1-D", "kl_divergence", (PMF, PMF), {"axis": -2}, ValueError, r"axis=-2"),
    # --- non-numeric logits --------------------------------------------------------------------
    _ce("logits complex", TypeError, r"logits.*complex", logits=X23.astype(complex)),
    _ce("logits object", TypeError, r"logits.*object", logits=X23.astype(object)),
    _ce("logits str", TypeError, r"logits.*<U1", logits=np.array([["a", "b", "c"], ["d", "e", "f"]])),
    _ce("logits datetime", TypeError, r"logits.*datetime64", logits=np.zeros((2, 3), dtype="datetime64[s]")),
    _ce("logits ragged list", TypeError, r"logits", logits=[[0.0, 1.0], [0.0]]),
    _ce("logits longdouble", TypeError, r"logits.*float128|logits.*longdouble", logits=X23.astype(np.longdouble)),
    _ce("logits None", TypeError, r"logits.*object", logits=None),
    _ce("logits 0-d", ValueError, r"logits.*0-d", logits=np.float64(1.0), target=np.int64(0)),
    _f("logsumexp complex", "logsumexp", (X23 + 0j,), {}, TypeError, r"x.*complex"),
    _f("log_softmax object", "log_softmax", (X23.astype(object),), {}, TypeError, r"x.*object"),
    _f("softmax str", "softmax", (["a"],), {}, TypeError, r"x.*<U1"),
    _f("logsumexp b nan", "logsumexp", (X23,), {"b": [1.0, np.nan, 1.0]}, ValueError, r"b must be finite; b\[1\] = nan"),
    _f("logsumexp b shape", "logsumexp", (X23,), {"b": np.ones(2)}, ValueError, r"b must broadcast with x.*\(2, 3\).*\(2,\)"),
    _f("logsumexp b complex", "logsumexp", (X23,), {"b": 1j}, TypeError, r"^b .*complex"),
    _f("logsumexp return_sign=None", "logsumexp", (X23,), {"return_sign": None}, TypeError, r"return_sign"),
    _f("entropy(p, q)", "entropy", (PMF, PMF), {}, TypeError, r"entropy\(\).*kl_divergence\(p, q\)"),
    _ce("probabilities with ignore_index", ValueError, r"ignore_index=0 applies to class-index targets",
        target=P23, ignore_index=0),
    # --- out= ----------------------------------------------------------------------------------
    _vg("out wrong shape", ValueError, r"out.*\(2, 3\).*\(3, 2\)", out=np.empty((3, 2))),
    _vg("out wrong dtype", ValueError, r"out.*float64.*float32", out=np.empty((2, 3), dtype=np.float32)),
    _vg("out int dtype", ValueError, r"out.*float64.*int64", out=np.empty((2, 3), dtype=np.int64)),
    _vg("out list", TypeError, r"out.*list", out=[[0.0] * 3] * 2),
    _vg("out read-only", ValueError, r"out.*writeable", out=_ro(np.empty((2, 3)))),
    # --- PMF functions: entries (checked by default), sums (check=True) ------------------------
    _f("entropy negative p", "entropy", ([0.5, 0.7, -0.2],), {}, ValueError,
       r"^p must be finite and non-negative; p\[2\] = -0\.2$"),
    _f("entropy nan p", "entropy", ([0.5, np.nan, 0.5],), {}, ValueError, r"^p .*p\[1\] = nan$"),
    _f("entropy inf p", "entropy", ([0.5, np.inf, 0.5],), {}, ValueError, r"^p .*p\[1\] = inf$"),
    _f("entropy nan p, 2-D", "entropy", (np.array([[0.5, 0.5], [0.25, np.nan]]),), {}, ValueError,
       r"^p .*p\[1, 1\] = nan$"),
    _f("entropy negative p (check)", "entropy", ([0.5, 0.7, -0.2],), {"check": True}, ValueError,
       r"\bp\b.*negative.*p\[2\]"),
    _f("entropy nan p (check)", "entropy", ([0.5, np.nan, 0.5],), {"check": True}, ValueError, r"\bp\b.*nan"),
    _f("entropy p not summing to 1 (check)", "entropy", ([0.5, 0.6],), {"check": True}, ValueError,
       r"\bp\b.*sum.*1\.1"),
    _f("entropy row 1 not summing to 1 (check)", "entropy", (np.array([[0.5, 0.5], [0.5, 0.25]]),),
       {"check": True}, ValueError, r"p\[1, :\] sums to 0\.75"),
    _f("entropy empty class axis (check)", "entropy", (np.zeros((3, 0)),), {"check": True}, ValueError,
       r"p\[0, :\] sums to 0\.0"),
    _f("entropy check=1", "entropy", (PMF,), {"check": 1}, TypeError, r"check.*None, True or False.*1"),
    _f("entropy check='yes'", "entropy", (PMF,), {"check": "yes"}, TypeError, r"check.*'yes'"),
    _f("cross_entropy_pmf negative q", "cross_entropy_pmf", (PMF, [0.5, 0.7, -0.2]), {}, ValueError,
       r"^q .*q\[2\] = -0\.2$"),
    _f("cross_entropy_pmf inf q, 0-d", "cross_entropy_pmf", (PMF, np.inf), {}, ValueError, r"^q .*q = inf$"),
    _f("cross_entropy_pmf negative q (check)", "cross_entropy_pmf", (PMF, [0.5, 0.7, -0.2]), {"check": True},
       ValueError, r"\bq\b.*negative"),
    _f("cross_entropy_pmf nan p (check)", "cross_entropy_pmf", ([np.nan, 0.5, 0.5], PMF), {"check": True},
       ValueError, r"\bp\b.*nan"),
    _f("kl_divergence negative p", "kl_divergence", ([0.5, 0.7, -0.2], PMF), {}, ValueError,
       r"^p .*p\[2\] = -0\.2$"),
    _f("kl_divergence nan q (broadcast)", "kl_divergence", (P23, [np.nan, 0.5, 0.5]), {}, ValueError,
       r"^q .*q\[0\] = nan$"),
    _f("kl_divergence negative p (check)", "kl_divergence", ([0.5, 0.7, -0.2], PMF), {"check": True},
       ValueError, r"\bp\b.*negative"),
    _f("kl_divergence nan q (check)", "kl_divergence", (PMF, [np.nan, 0.5, 0.5]), {"check": True},
       ValueError, r"\bq\b.*nan"),
    _f("kl_divergence q not summing to 1 (check)", "kl_divergence", (PMF, [0.5, 0.5, 0.5]), {"check": True},
       ValueError, r"^q does not sum to 1.*q\[:\] sums to 1\.5"),
    _f("kl shapes (3,) vs (4,)", "kl_divergence", (PMF, np.full(4, 0.25)), {}, ValueError,
       r"p.*q.*\(3,\).*\(4,\)"),
    _f("cross_entropy_pmf shapes (2,3) vs (3,2)", "cross_entropy_pmf", (P23, P23.T), {}, ValueError,
       r"p.*q.*\(2, 3\).*\(3, 2\)"),
    _f("entropy complex p", "entropy", (PMF + 0j,), {}, TypeError, r"\bp\b.*complex"),
    _f("kl object q", "kl_divergence", (PMF, PMF.astype(object)), {}, TypeError, r"\bq\b.*object"),
    _f("entropy base=1", "entropy", (PMF,), {"base": 1}, ValueError, r"base.*1"),
    _f("entropy base=-2", "entropy", (PMF,), {"base": -2}, ValueError, r"base.*-2"),
    _f("entropy base=0", "entropy", (PMF,), {"base": 0}, ValueError, r"base.*0"),
    # --- logit divergences --------------------------------------------------------------
    _f("kl_logits shapes (2, 3) vs (2, 4)", "kl_divergence_logits", (X23, np.zeros((2, 4))), {},
       ValueError, r"p_logits and q_logits.*same shape.*\(2, 3\).*\(2, 4\)"),
    _f("kl_logits 0-d", "kl_divergence_logits", (1.0, 2.0), {}, ValueError, r"p_logits.*0-d"),
    _f("kl_logits complex q", "kl_divergence_logits", (X23, X23 + 0j), {}, TypeError,
       r"q_logits.*complex"),
    _f("kl_logits axis=2", "kl_divergence_logits", (X23, X23), {"axis": 2}, ValueError, r"axis=2"),
    _f("kl_logits reduction='avg'", "kl_divergence_logits", (X23, X23), {"reduction": "avg"},
       ValueError, r"reduction.*'avg'"),
    _f("kl_logits mask of ints", "kl_divergence_logits", (X23, X23), {"mask": np.array([1, 0])},
       TypeError, r"mask.*boolean.*int"),
    _f("js_logits beta=1.5", "js_divergence_logits", (X23, X23), {"beta": 1.5}, ValueError,
       r"beta.*\[0, 1\].*1\.5"),
    _f("js_logits beta=-0.1", "js_divergence_logits", (X23, X23), {"beta": -0.1}, ValueError,
       r"beta.*-0\.1"),
    _f("js_logits beta=nan", "js_divergence_logits", (X23, X23), {"beta": float("nan")}, ValueError,
       r"beta.*nan"),
    _f("js_logits beta='half'", "js_divergence_logits", (X23, X23), {"beta": "half"}, TypeError,
       r"beta.*'half'"),
    _f("js_logits beta=True", "js_divergence_logits", (X23, X23), {"beta": True}, TypeError,
       r"beta.*True"),
    _f("js_logits shapes (2, 3) vs (3, 2)", "js_divergence_logits", (X23, X23.T), {}, ValueError,
       r"p_logits and q_logits.*same shape.*\(2, 3\).*\(3, 2\)"),
    _f("js_logits mask shape (3,)", "js_divergence_logits", (X23, X23),
       {"mask": np.ones(3, bool)}, ValueError, r"mask.*\(2,\).*\(3,\)"),
    _f("js_logits reduction='avg'", "js_divergence_logits", (X23, X23), {"reduction": "avg"},
       ValueError, r"reduction.*'avg'"),
    _f("entropy_logits 0-d", "entropy_logits", (1.0,), {}, ValueError, r"logits.*0-d"),
    _f("entropy_logits base=1", "entropy_logits", (X23,), {"base": 1}, ValueError, r"base.*1"),
    _f("entropy_logits base=-2", "entropy_logits", (X23,), {"base": -2}, ValueError, r"base.*-2"),
    _f("entropy_logits axis=-3", "entropy_logits", (X23,), {"axis": -3}, ValueError, r"axis=-3"),
    _f("entropy_logits string", "entropy_logits", (np.array(["a", "b"]),), {}, TypeError, r"logits"),
    _f("kl_logits mask shape (3,)", "kl_divergence_logits", (X23, X23),
       {"mask": np.ones(3, bool)}, ValueError, r"mask.*\(2,\).*\(3,\)"),
    _f("entropy base=nan", "entropy", (PMF,), {"base": float("nan")}, ValueError, r"base.*nan"),
    _f("entropy base=inf", "entropy", (PMF,), {"base": float("inf")}, ValueError, r"base.*inf"),
    _f("entropy base='e'", "entropy", (PMF,), {"base": "e"}, TypeError, r"base.*'e'"),
    _f("entropy base=True", "entropy", (PMF,), {"base": True}, TypeError, r"base.*True"),
    _f("empirical_pmf sample == K", "empirical_pmf", ([0, 1, 6], 6), {}, ValueError, r"samples.*6.*0\.\.5"),
    _f("empirical_pmf sample 2**40", "empirical_pmf", ([0, 2**40], 6), {}, ValueError, r"samples.*1099511627776"),
    _f("empirical_pmf sample -1", "empirical_pmf", ([0, -1, 2], 6), {}, ValueError, r"samples.*-1"),
    _f("empirical_pmf uint64 2**64-1", "empirical_pmf", (np.array([0, 2**64 - 1], np.uint64), 6), {},
       ValueError, r"samples.*18446744073709551615"),
    _f("empirical_pmf float samples", "empirical_pmf", ([0.0, 1.0], 6), {}, TypeError, r"samples.*float64"),
    _f("empirical_pmf bool samples", "empirical_pmf", ([True, False], 6), {}, TypeError, r"samples.*bool"),
    _f("empirical_pmf num_classes 0", "empirical_pmf", ([0], 0), {}, ValueError, r"num_classes.*0"),
    _f("empirical_pmf num_classes 2.5", "empirical_pmf", ([0], 2.5), {}, TypeError, r"num_classes.*2\.5"),
    _f("empirical_pmf num_classes True", "empirical_pmf", ([0], True), {}, TypeError, r"num_classes.*bool"),
    _f("categorical_log_likelihood sample == K", "categorical_log_likelihood", (PMF, [0, 3]), {}, ValueError,
       r"samples.*3.*0\.\.2"),
    _f("categorical_log_likelihood sample -5", "categorical_log_likelihood", (PMF, [-5, 0]), {}, ValueError,
       r"samples.*-5"),
    _f("categorical_log_likelihood float samples", "categorical_log_likelihood", (PMF, [0.0]), {}, TypeError,
       r"samples.*float64"),
    _f("categorical_log_likelihood 0-d q", "categorical_log_likelihood", (np.float64(1.0), [0]), {},
       ValueError, r"\bq\b.*\(\)"),
    _f("categorical_log_likelihood empty q", "categorical_log_likelihood", (np.zeros(0), [0]), {},
       ValueError, r"\bq\b.*non-empty class axis.*\(0,\)"),
    _f("categorical_log_likelihood complex q", "categorical_log_likelihood", (PMF + 0j, [0]), {}, TypeError,
       r"\bq\b.*complex"),
    _f("categorical_log_likelihood nan q (never observed)", "categorical_log_likelihood",
       ([0.5, 0.5, np.nan], [0, 1]), {}, ValueError, r"^q .*q\[2\] = nan$"),
    _f("categorical_log_likelihood q rows (check)", "categorical_log_likelihood",
       (np.array([[0.5, 0.5], [0.5, 0.6]]), [0]), {"check": True}, ValueError, r"q\[1, :\] sums to 1\.1"),
    # --- binary cross-entropy, softplus, log_sigmoid --------------------------------------
    _f("bce target shape", "binary_cross_entropy_with_logits", (X23, np.ones(3)), {}, ValueError,
       r"target must have the shape of logits \(2, 3\), got \(3,\)"),
    _f("bce target 1.5", "binary_cross_entropy_with_logits", (X23, P23 * 4.5), {}, ValueError,
       r"target must lie in \[0, 1\]; target\[0, 0\] = 1\.5"),
    _f("bce target nan", "binary_cross_entropy_with_logits_value_and_grad",
       (X23, np.where(X23 > 0.5, np.nan, 0.5)), {}, ValueError, r"target\[1, 1\] = nan"),
    _f("bce complex target", "binary_cross_entropy_with_logits", (X23, P23 + 0j), {}, TypeError,
       r"target.*complex"),
    _f("bce weight shape", "binary_cross_entropy_with_logits", (X23, P23), {"weight": np.ones(4)},
       ValueError, r"weight of shape \(4,\) does not broadcast"),
    _f("bce negative weight", "binary_cross_entropy_with_logits", (X23, P23),
       {"weight": np.array([1.0, -1.0, 1.0])}, ValueError, r"weight must be finite and non-negative; weight\[0, 1\] = -1"),
    _f("bce pos_weight shape", "binary_cross_entropy_with_logits", (X23, P23), {"pos_weight": np.ones(2)},
       ValueError, r"pos_weight of shape \(2,\) does not broadcast"),
    _f("bce pos_weight inf", "binary_cross_entropy_with_logits_value_and_grad", (X23, P23),
       {"pos_weight": np.array([1.0, np.inf, 1.0])}, ValueError, r"pos_weight\[0, 1\] = inf"),
    _f("bce pos_weight too many dims", "binary_cross_entropy_with_logits", (X23[0], P23[0]),
       {"pos_weight": np.ones((1, 3))}, ValueError, r"pos_weight has 2 dimensions"),
    _f("bce reduction", "binary_cross_entropy_with_logits", (X23, P23), {"reduction": "avg"}, ValueError,
       r"reduction must be one of"),
    _f("bce string logits", "binary_cross_entropy_with_logits", (np.array(["a"]), np.ones(1)), {}, TypeError,
       r"logits must have a real floating-point dtype"),
    _f("softplus complex", "softplus", (np.ones(2) + 1j,), {}, TypeError, r"^x must have a real"),
    _f("log_sigmoid object", "log_sigmoid", (np.array([None]),), {}, TypeError, r"^x must have a real"),
]

# unusual inputs that both crossent and the oracle accept: (id, function name, args, kwargs)
_W = np.array([0.5, 1.0, 2.0])
EDGES = [
    ("no classes, ignored labels, mean", "cross_entropy", (np.zeros((2, 0)), np.array([-100, -100])), {}),
    ("no classes, ignored labels, none", "cross_entropy", (np.zeros((2, 0)), np.array([-100, -100])),
     {"reduction": "none"}),
    ("no classes, probabilities, none", "cross_entropy", (np.zeros((2, 0)), np.zeros((2, 0))), {"reduction": "none"}),
    ("no classes, probabilities, vg smoothed", "cross_entropy_value_and_grad", (np.zeros((2, 0)), np.zeros((2, 0))),
     {"label_smoothing": 0.1}),
    ("no classes, vg sum", "cross_entropy_value_and_grad", (np.zeros((2, 0), np.float32), np.array([-100, -100])),
     {"reduction": "sum"}),
    ("no items, mean", "cross_entropy", (np.zeros((0, 3)), np.zeros(0, np.int64)), {}),
    ("no items, probabilities, vg", "cross_entropy_value_and_grad", (np.zeros((0, 3)), np.zeros((0, 3))), {}),
    ("bool weight", "cross_entropy", (X23, Y2), {"weight": np.array([True, False, True])}),
    ("int weight", "cross_entropy_value_and_grad", (X23, Y2), {"weight": [1, 2, 3]}),
    ("float16 weight", "cross_entropy", (X23, Y2), {"weight": np.ones(3, np.float16)}),
    ("weights summing to 0, mean", "cross_entropy_value_and_grad", (X23, Y2), {"weight": np.zeros(3)}),
    ("weights summing to 0, smoothed", "cross_entropy_value_and_grad", (X23, Y2),
     {"weight": np.array([0.0, 1.0, 0.0]), "label_smoothing": 0.2}),
    ("zero weights, probabilities, mean", "cross_entropy_value_and_grad", (X23, P23), {"weight": np.zeros(3)}),
    ("subnormal weights", "cross_entropy_value_and_grad", (X23, Y2), {"weight": _W * 5e-324}),
    ("huge weights, sum", "cross_entropy_value_and_grad", (X23, Y2), {"weight": _W * 1e300, "reduction": "sum"}),
    ("label_smoothing float32", "cross_entropy", (X23, Y2), {"label_smoothing": np.float32(0.25)}),
    ("z_loss int, logit_softcap float32", "cross_entropy_value_and_grad", (X23, Y2),
     {"z_loss": 1, "logit_softcap": np.float32(2.5)}),
    ("soft-cap of -inf and +inf logits", "cross_entropy_value_and_grad",
     (np.array([[np.inf, 0.0, -np.inf]]), np.array([2])), {"logit_softcap": 3.0}),
    ("z_loss, probabilities over no classes", "cross_entropy", (np.zeros((2, 0)), np.zeros((2, 0))),
     {"reduction": "none", "z_loss": 1e-4}),
    ("z_loss, huge weights, probabilities", "cross_entropy_value_and_grad", (X23, P23),
     {"weight": _W * 1e300, "z_loss": 1e-4, "reduction": "sum"}),
    ("label_smoothing int 1", "cross_entropy", (X23, Y2), {"label_smoothing": 1}),
    ("ignore_index int8", "cross_entropy", (X23, Y2), {"ignore_index": np.int8(2)}),
    ("ignore_index 2**63-1", "cross_entropy", (X23, Y2), {"ignore_index": 2**63 - 1}),
    ("reduction np.str_", "cross_entropy", (X23, Y2), {"reduction": np.str_("sum")}),
    ("uint64 labels", "cross_entropy", (X23, Y2.astype(np.uint64)), {}),
    ("big-endian labels", "cross_entropy", (X23, Y2.astype(">i4")), {"reduction": "none"}),
    ("list labels", "cross_entropy", (X23, [0, 2]), {}),
    ("float16 probabilities", "cross_entropy", (X23, P23.astype(np.float16)), {}),
    ("bool logits", "cross_entropy_value_and_grad", (X23 > 0.3, Y2), {}),
    ("big-endian logits", "cross_entropy_value_and_grad", (X23.astype(">f4"), Y2), {}),
    ("Fortran logits, axis 0", "cross_entropy", (np.asfortranarray(X23.T), Y2), {"axis": 0}),
    ("1-D logits, 0-d label", "cross_entropy_value_and_grad", (X23[0], np.int64(1)), {}),
    ("axis np.int64", "softmax", (X23,), {"axis": np.int64(0)}),
    ("big-endian out", "cross_entropy_value_and_grad", (X23, Y2), {"out": np.empty((2, 3), ">f8")}),
    ("logsumexp no classes", "logsumexp", (np.zeros((2, 0), np.float16),), {}),
    ("logsumexp keepdims", "logsumexp", (X23,), {"keepdims": True, "axis": 0}),
    ("logsumexp b scalar, sign", "logsumexp", (X23,), {"b": -2.0, "return_sign": True}),
    ("logsumexp b with zeros, float32", "logsumexp", (X23.astype(np.float32),),
     {"b": np.array([0, 1, -1], np.float32), "axis": None}),
    ("logsumexp b, no classes", "logsumexp", (np.zeros((2, 0)),), {"b": np.zeros((2, 0)), "return_sign": True}),
    ("softmax 0-d", "softmax", (np.float64(1.0),), {}),
    ("logsumexp 0-d", "logsumexp", (2.0,), {}),
    ("logsumexp 0-d axis=None", "logsumexp", (np.float32(2.0),), {"axis": None}),
    ("softmax axis=(0, 1)", "softmax", (X23,), {"axis": (0, 1)}),
    ("log_softmax axis=(-1, 0)", "log_softmax", (X23,), {"axis": (-1, 0)}),
    ("logsumexp axis=None keepdims", "logsumexp", (X23,), {"axis": None, "keepdims": True}),
    ("logsumexp axis=()", "logsumexp", (X23,), {"axis": ()}),
    ("logsumexp +inf row", "logsumexp", (np.array([[np.inf, 1.0], [np.inf, np.nan]]),), {}),
    ("log_softmax +inf row", "log_softmax", (np.array([[np.inf, 1.0, -np.inf], [0.0, 1.0, 2.0]]),), {}),
    ("no classes, probabilities, sum", "cross_entropy", (np.zeros((2, 0)), np.zeros((2, 0))), {"reduction": "sum"}),
    ("probabilities, ignore_index -100 given", "cross_entropy", (X23, P23), {"ignore_index": -100}),
    ("log_softmax no classes", "log_softmax", (np.zeros((2, 0)),), {}),
    ("entropy no classes", "entropy", (np.zeros((3, 0), np.float32),), {}),
    ("entropy bool p", "entropy", (np.array([True, False]),), {}),
    ("entropy check=np.bool_", "entropy", (PMF,), {"check": np.True_}),
    ("entropy base 0.5", "entropy", (PMF,), {"base": 0.5}),
    ("entropy base float32 2", "entropy", (PMF,), {"base": np.float32(2)}),
    ("entropy unchecked nan", "entropy", (np.array([[0.5, np.nan], [0.5, 0.5]]),), {"check": False}),
    ("cross_entropy_pmf unchecked inf q", "cross_entropy_pmf", (PMF, [0.5, np.inf, 0.5]), {"check": False}),
    ("cross_entropy_pmf q = 0 where p = 0", "cross_entropy_pmf", ([1.0, 0.0], [1.0, 0.0]), {"check": True}),
    ("check=True, float16 p and float64 q", "kl_divergence",  # each within its own format's K eps
     (np.array([0.1, 0.2, 0.7], np.float16), np.array([0.25, 0.25, 0.5])), {"check": True}),
    ("check=True, bfloat16 p and float64 q", "kl_divergence",
     (np.array([0.1, 0.2, 0.7], ml_dtypes.bfloat16), np.array([0.25, 0.25, 0.5])), {"check": True}),
    ("bfloat16 logits and probabilities", "cross_entropy",
     (X23.astype(ml_dtypes.bfloat16), P23.astype(ml_dtypes.bfloat16)), {}),
    ("bfloat16 logsumexp", "logsumexp", (X23.astype(ml_dtypes.bfloat16),), {}),
    ("kl 0-d q", "kl_divergence", (PMF, 0.25), {}),
    ("kl unchecked negative q, base 2", "kl_divergence", (PMF, [0.5, -0.5, 1.0]), {"check": False, "base": 2}),
    ("entropy_logits no classes", "entropy_logits", (np.zeros((2, 0)),), {}),
    ("entropy_logits 1-D", "entropy_logits", (PMF,), {"base": 2}),
    ("kl_logits float16 p, float64 q", "kl_divergence_logits", (X23.astype(np.float16), X23), {}),
    ("kl_logits no classes", "kl_divergence_logits", (np.zeros((2, 0)), np.zeros((2, 0))),
     {"reduction": "none"}),
    ("kl_logits all rows masked", "kl_divergence_logits", (X23, X23), {"mask": np.zeros(2, bool)}),
    ("js_logits beta=0", "js_divergence_logits", (X23, X23[::-1]), {"beta": 0, "reduction": "none"}),
    ("js_logits beta=np.float32(1)", "js_divergence_logits", (X23, X23[::-1]), {"beta": np.float32(1)}),
    ("js_logits masked in one row only", "js_divergence_logits",
     (np.array([[0.0, -np.inf, 1.0]]), np.array([[-np.inf, 0.5, 1.0]])), {"reduction": "none"}),
    ("js_logits bfloat16", "js_divergence_logits",
     (X23.astype(ml_dtypes.bfloat16), X23[::-1].astype(ml_dtypes.bfloat16)), {"reduction": "none"}),
    ("kl_logits bfloat16", "kl_divergence_logits",
     (X23.astype(ml_dtypes.bfloat16), X23[::-1].astype(ml_dtypes.bfloat16)), {}),
    ("kl_logits -inf rows", "kl_divergence_logits", (np.full((2, 3), -np.inf), X23), {"reduction": "none"}),
    ("empirical_pmf empty list", "empirical_pmf", ([], 3), {}),
    ("empirical_pmf uint64 samples", "empirical_pmf", (np.array([0, 2, 2], np.uint64), 3), {}),
    ("empirical_pmf num_classes int8", "empirical_pmf", ([0, 1], np.int8(4)), {}),
    ("categorical_log_likelihood rows", "categorical_log_likelihood", (P23, [0, 1, 1]), {}),
    ("categorical_log_likelihood no samples", "categorical_log_likelihood", (PMF, np.zeros(0, np.int64)), {}),
    ("categorical_log_likelihood unobserved zero", "categorical_log_likelihood", ([0.5, 0.5, 0.0], [0, 1]), {}),
    ("categorical_log_likelihood unchecked nan", "categorical_log_likelihood", ([0.5, 0.5, np.nan], [0]),
     {"check": False}),
    ("bce int targets", "binary_cross_entropy_with_logits", (X23, np.ones((2, 3), np.int64)), {}),
    ("bce no elements", "binary_cross_entropy_with_logits", (np.zeros((0, 3)), np.zeros((0, 3))), {}),
    ("bce nan logit", "binary_cross_entropy_with_logits_value_and_grad", (np.array([np.nan, 1.0]),
                                                                          np.array([1.0, 0.0])), {}),
    ("bce 0-d", "binary_cross_entropy_with_logits", (np.float32(3.0), np.float32(1.0)), {"reduction": "none"}),
    ("softplus 0-d int", "softplus", (3,), {}),
]


def _call(impl, fname, args, kw):
    return getattr(IMPLS[impl], fname)(*args, **kw)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("fname, args, kw, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_naming_the_argument(impl, fname, args, kw, exc, pattern):
    with pytest.raises(exc) as info:
        _call(impl, fname, args, kw)
    # exactly the documented type: a ValueError where a TypeError is promised (or the reverse)
    # would still be caught by a careless ``except``, but it breaks the contract
    assert type(info.value) is exc, f"{type(info.value).__name__}: {info.value}"
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("fname, args, kw", [c[1:4] for c in CASES], ids=[c[0] for c in CASES])
def test_crossent_and_the_oracle_give_the_same_error(fname, args, kw):
    errors = []
    for impl in IMPLS:
        try:
            _call(impl, fname, args, kw)
            errors.append(None)
        except Exception as e:  # noqa: BLE001 - compared below
            errors.append((type(e), str(e)))
    assert errors[0] == errors[1]


def _same_specials(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    with np.errstate(invalid="ignore"):
        return bool(np.array_equal(np.isnan(a), np.isnan(b))
                    and np.array_equal(np.where(np.isinf(a), a, 0), np.where(np.isinf(b), b, 0)))


@pytest.mark.parametrize("fname, args, kw", [c[1:] for c in EDGES], ids=[c[0] for c in EDGES])
def test_edge_inputs_are_accepted_by_both(fname, args, kw):
    """Both accept; the results have the same shapes, dtypes, nans and infinities (the values
    themselves are the precision tests' business). ``out`` is a fresh copy for each call."""
    results = []
    for impl in IMPLS:
        k = {n: (v.copy() if n == "out" else v) for n, v in kw.items()}
        r = _call(impl, fname, args, k)
        results.append(r if isinstance(r, tuple) else (r,))
    for a, b in zip(*results):
        assert np.shape(a) == np.shape(b) and np.asarray(a).dtype == np.asarray(b).dtype, (a, b)
        assert _same_specials(a, b), (a, b)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.float32, np.float64],
                         ids=["float16", "bfloat16", "float32", "float64"])
def test_the_cheap_pass_is_finite_and_non_negative(dtype):
    """The default check of the PMF functions looks at the bits (one maximum); it must accept
    exactly the arrays whose entries are finite and >= 0 (-0.0 included), whatever the bit
    patterns: random ones (every sign, nan payload, subnormal), and strided views."""
    from crossent._validate import check_probabilities

    rng = np.random.default_rng(0)
    bits = np.dtype(dtype).itemsize * 8
    utype = f"u{bits // 8}"
    specials = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1.0, -1.0], dtype=dtype)
    for _ in range(3000):
        a = rng.integers(0, 2**bits, 6, dtype=utype).view(dtype).copy()
        fix = rng.random(6) < 0.8  # mostly valid entries, so that both answers occur
        with np.errstate(invalid="ignore"):
            a[fix] = np.where(np.isfinite(a[fix]), np.abs(a[fix]), 0.5)
        a[rng.integers(0, 6)] = specials[rng.integers(0, specials.size)]
        view = a.reshape(2, 3)[:, ::2]
        with np.errstate(invalid="ignore"):
            valid = bool(np.all(np.isfinite(view) & (view >= 0)))
        try:
            check_probabilities(view, "p")
            accepted = True
        except ValueError as e:
            accepted = False
            assert re.search(r"^p must be finite and non-negative; p\[\d, \d\] = ", str(e)), str(e)
        assert accepted == valid, view


def test_case_ids_are_unique():
    ids = [c[0] for c in CASES] + [c[0] for c in EDGES]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("bad", [3, 2**40, -1, -(2**40)])
def test_labels_are_checked_before_any_kernel_runs(bad, monkeypatch):
    """A bad label never reaches a kernel: the kernels are replaced by traps for this test."""
    from crossent.kernels import exact as kx
    from crossent.kernels import loss as k

    def trap(*args, **kwargs):  # pragma: no cover - reaching it is the failure
        raise AssertionError("a kernel was called with an unchecked label")

    for name in ("cross_entropy_labels_rows", "cross_entropy_labels_grad_rows"):
        monkeypatch.setattr(k, name, trap)
    monkeypatch.setattr(kx, "accumulate_label_weights", trap)
    with pytest.raises(ValueError, match=r"target\[1\]"):
        crossent.cross_entropy(X23, np.array([0, bad]))
    with pytest.raises(ValueError, match=r"target\[1\]"):
        crossent.cross_entropy_value_and_grad(X23, np.array([0, bad]))


def test_valid_edge_labels_are_accepted():
    """The checks reject exactly what they should: C-1, 0 and ignore_index pass."""
    loss = crossent.cross_entropy(X23, np.array([2, -100]), reduction="none")
    assert loss[1] == 0.0 and loss[0] > 0
    loss = crossent.cross_entropy(X23, np.array([0, 7]), ignore_index=7, reduction="none")
    assert loss[1] == 0.0
    # every unsigned and signed integer dtype is accepted for class indices
    for dt in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64):
        assert crossent.cross_entropy(X23, Y2.astype(dt)) == crossent.cross_entropy(X23, Y2)


@pytest.mark.parametrize("impl", IMPLS)
def test_nothing_is_written_to_out_on_bad_input(impl):
    out = np.full((2, 3), 7.0)
    with pytest.raises(ValueError):
        IMPLS[impl].cross_entropy_value_and_grad(X23, np.array([0, 3]), out=out)
    assert (out == 7.0).all()


def _table() -> str:
    rows = ["| bad input | error |", "| --- | --- |"]
    for name, fname, args, kw, _exc, _pat in CASES:
        try:
            _call("crossent", fname, args, kw)
            msg = "(no error)"
        except Exception as e:  # noqa: BLE001 - the table shows whatever happens
            msg = f"{type(e).__name__}: {e}"
        rows.append(f"| {name} | `{msg}` |".replace("\n", " "))
    return "\n".join(rows)


def test_out_in_the_other_byte_order_is_accepted():
    """As NumPy's ``out=``: a big-endian buffer of the logits' dtype receives the same values
    (through a cast); it was rejected before the fuzzer found ``out=logits`` with big-endian
    logits refused."""
    x = np.random.default_rng(0).standard_normal((2, 3))
    y = np.array([0, 2])
    _, g = crossent.cross_entropy_value_and_grad(x, y)
    out = np.empty((2, 3), dtype=">f8")
    _, g2 = crossent.cross_entropy_value_and_grad(x, y, out=out)
    assert g2 is out and np.array_equal(g2, g)


if __name__ == "__main__":
    print(_table())
