"""Run SciPy's own tests of logsumexp, softmax, log_softmax and entropy through crossent.

``scipy.special.logsumexp/softmax/log_softmax`` and ``scipy.stats.entropy`` are replaced by
thin adapters onto crossent before SciPy's test modules are imported, and pytest runs
``scipy/special/tests/test_logsumexp.py`` and ``scipy/stats/tests/test_entropy.py``. The
adapters only translate SciPy's signatures (its default ``axis=None`` for the softmax family,
``entropy``'s normalization of ``pk``/``qk`` and its ``qk`` spelling of the relative entropy,
which is crossent's ``kl_divergence``); every value is crossent's. Inputs outside crossent's
scope raise crossent's own errors: complex input (``TypeError``), arrays of other array-API
backends, and SciPy's own error messages (three entropy tests match its wording with a regex;
crossent raises the same exception types with its own messages).

    python benchmarks/scipy_suite.py [--no-patch] [-q]

prints passed/failed/skipped/errors and, for every failure, the test and the first line of
its error. ``--no-patch`` runs the same tests against SciPy itself (the baseline).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys

import numpy as np
import pytest


def _adapters():
    import crossent

    def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
        extra = {} if b is None and not return_sign else {"b": b, "return_sign": return_sign}
        return crossent.logsumexp(a, axis=axis, keepdims=keepdims, **extra)

    def softmax(x, axis=None):
        return crossent.softmax(x, axis=axis)

    def log_softmax(x, axis=None):
        return crossent.log_softmax(x, axis=axis)

    def entropy(pk, qk=None, base=None, axis=0, *, nan_policy="propagate", keepdims=False):
        # SciPy normalizes pk (and qk) along axis: the adapter does that with NumPy, so that
        # crossent (which never normalizes) sees PMFs; the values are crossent's
        pk = np.asarray(pk, dtype=np.result_type(np.asarray(pk).dtype, np.float64)
                        if np.asarray(pk).dtype.kind in "biu" else None)
        with np.errstate(invalid="ignore", divide="ignore"):
            p = pk / np.sum(pk, axis=axis, keepdims=True)
            if qk is None:
                r = crossent.entropy(p, base=base, axis=axis)
            else:
                qk = np.asarray(qk)
                q = qk / np.sum(qk, axis=axis, keepdims=True)
                r = crossent.kl_divergence(p, q, base=base, axis=axis)
        return np.expand_dims(r, axis) if keepdims else r

    return logsumexp, softmax, log_softmax, entropy


class _Patch:
    """A pytest plugin that installs the adapters before the test modules are collected."""

    def pytest_configure(self, config):
        import scipy.special
        import scipy.special._logsumexp as sl
        import scipy.stats

        from scipy._lib._array_api import xp_capabilities_table as table

        lse, sm, lsm, ent = _adapters()
        # SciPy's test decorators look the function up in its array-API capability table:
        # the adapter takes the entry of the function it replaces
        for new, old in ((lse, sl.logsumexp), (sm, scipy.special.softmax),
                         (lsm, scipy.special.log_softmax), (ent, scipy.stats.entropy)):
            if old in table:
                table[new] = table[old]
        for mod in (scipy.special, sl):
            mod.logsumexp, mod.softmax, mod.log_softmax = lse, sm, lsm
        scipy.stats.entropy = ent


class _Tally:
    def __init__(self):
        self.counts = collections.Counter()
        self.failures = []

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            kind = report.outcome if report.when == "call" else ("skipped" if report.skipped else "error")
            self.counts[kind] += 1
            if report.failed:
                msg = str(report.longrepr.reprcrash.message) if hasattr(report.longrepr, "reprcrash") else str(report.longrepr)
                self.failures.append((report.nodeid.split("::", 1)[-1], msg.splitlines()[0][:160]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-patch", action="store_true", help="run against SciPy itself")
    ap.add_argument("-q", action="store_true", help="counts only")
    args = ap.parse_args(argv)
    import scipy

    root = os.path.dirname(scipy.__file__)
    files = [os.path.join(root, "special", "tests", "test_logsumexp.py"),
             os.path.join(root, "stats", "tests", "test_entropy.py")]
    tally = _Tally()
    plugins = [tally] if args.no_patch else [_Patch(), tally]
    pytest.main(["-q", "-p", "no:randomly", "-p", "no:cacheprovider", "--no-header", "-rN",
                 "-W", "ignore", "--tb=line", *files], plugins=plugins)
    c = tally.counts
    print(f"scipy {scipy.__version__}, {'scipy itself' if args.no_patch else 'through crossent'}: "
          f"{c['passed']} passed, {c['failed']} failed, {c['skipped']} skipped, {c['error']} errors")
    if not args.q:  # complex input is out of scope: counted, not listed one by one
        cplx = [f for f in tally.failures if "complex" in f[1]]
        if cplx:
            print(f"  {len(cplx)} failed on complex input (out of scope: TypeError naming x)")
        for name, msg in tally.failures:
            if "complex" not in msg:
                print(f"  FAILED {name}: {msg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
