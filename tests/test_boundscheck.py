"""The kernels never index out of bounds: the adversarial and property corpora run through the
public API in a subprocess with ``NUMBA_BOUNDSCHECK=1``, which compiles every array access
with a bounds check that raises ``IndexError``.

Bounds checking changes the generated code, so the subprocess uses its own
``NUMBA_CACHE_DIR`` in a temporary directory (the checked machine code must not land in, or
be loaded from, the shared cache). The subprocess first proves that checking is on (an
out-of-bounds read in a throwaway ``@njit`` function raises ``IndexError``), then runs:

* the adversarial corpus (``crossent.corpus.logits``, size "smoke", each format) through
  logsumexp, log_softmax, softmax, cross_entropy ('none', 'mean', 'sum') and
  cross_entropy_value_and_grad;
* a seeded property-style corpus: random shapes (including C = 1, empty batches, empty class
  axes, 3-D with the class axis anywhere), masks, ignored labels, weights, smoothing,
  probability targets, ``out=`` in place, and the PMF functions (with zeros and broadcasting);

and prints a SHA-256 digest of every output. The test asserts the run succeeded and that every
digest equals the one from a normal (unchecked) run of the same corpus in this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import crossent

SRC = str(Path(crossent.__file__).resolve().parents[1])

CORPUS = r'''
import hashlib, json, sys
import numpy as np
import crossent
from crossent.corpus import logits as corpus

def digest(a):
    a = np.ascontiguousarray(np.asarray(a))
    return a.dtype.str + str(a.shape) + hashlib.sha256(a.tobytes()).hexdigest()

def adversarial(out):
    for dt in ("float64", "float32", "float16"):
        for case in corpus.cases("smoke", seed=0, dtype=dt):
            key = dt + "/" + case.name
            x, t = case.logits, case.target
            out[key + "/lse"] = digest(crossent.logsumexp(x, axis=case.axis))
            out[key + "/lsm"] = digest(crossent.log_softmax(x, axis=case.axis))
            out[key + "/sm"] = digest(crossent.softmax(x, axis=case.axis))
            for red in ("none", "mean", "sum"):
                out[key + "/ce-" + red] = digest(crossent.cross_entropy(x, t, **case.loss_options(red)))
            loss, g = crossent.cross_entropy_value_and_grad(x, t, **case.options)
            out[key + "/vg"] = digest(loss) + digest(g)

def properties(out, n=150):
    rng = np.random.default_rng(2024)
    for i in range(n):
        dt = [np.float64, np.float32, np.float16][i % 3]
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(v) for v in rng.integers(0, 6, ndim))
        if i % 5 == 0:
            shape = shape[:-1] + (int(rng.choice([1, 2, 300])),)
        axis = int(rng.integers(-ndim, ndim))
        x = (rng.standard_normal(shape) * rng.choice([1, 50, 1e4])).astype(dt)
        if x.size:
            x.reshape(-1)[rng.random(x.size) < 0.15] = -np.inf
        key = "prop%d" % i
        out[key + "/lse"] = digest(crossent.logsumexp(x, axis=axis))
        out[key + "/sm"] = digest(crossent.softmax(x, axis=axis))
        out[key + "/lsm"] = digest(crossent.log_softmax(x, axis=axis))
        C = shape[axis]
        bshape = shape[:axis % ndim] + shape[axis % ndim + 1:]
        if C:
            y = rng.integers(0, C, bshape)
        else:
            y = np.full(bshape, -100)
        if y.size:
            y.reshape(-1)[rng.random(y.size) < 0.2] = -100
        w = rng.uniform(0, 3, C) if i % 2 else None
        eps = float(rng.choice([0.0, 0.1, 1.0]))
        red = ["none", "mean", "sum"][i % 3]
        out[key + "/ce"] = digest(crossent.cross_entropy(x, y, axis=axis, weight=w, reduction=red,
                                                         label_smoothing=eps))
        z = x.copy()
        loss, g = crossent.cross_entropy_value_and_grad(z, y, axis=axis, weight=w, reduction=red,
                                                        label_smoothing=eps, out=z)
        out[key + "/vg"] = digest(loss) + digest(z)
        p = rng.random(shape).astype(dt)
        if p.size:
            p.reshape(-1)[rng.random(p.size) < 0.3] = 0
        loss, g = crossent.cross_entropy_value_and_grad(x, p, axis=axis, reduction=red, label_smoothing=eps)
        out[key + "/vgp"] = digest(loss) + digest(g)
        if dt != np.float16:
            q = rng.random(shape[-1:] if shape else ()).astype(dt)  # broadcast along the batch
            if ndim and shape[-1]:
                q[0] = 0
            out[key + "/H"] = digest(crossent.entropy(p, axis=-1, base=2))
            out[key + "/Hpq"] = digest(crossent.cross_entropy_pmf(p, q, axis=-1))
            out[key + "/kl"] = digest(crossent.kl_divergence(p, q, axis=-1))
            if shape and shape[-1]:
                s = rng.integers(0, shape[-1], 50)
                out[key + "/emp"] = digest(crossent.empirical_pmf(s, shape[-1]))
                out[key + "/cll"] = digest(crossent.categorical_log_likelihood(np.abs(p) + 0.01, s))
        pw = rng.uniform(0, 3, shape[-1:]) if ndim else None
        loss, g = crossent.binary_cross_entropy_with_logits_value_and_grad(x, p.clip(0, 1), pos_weight=pw,
                                                                           reduction=red)
        out[key + "/bce"] = digest(loss) + digest(g) + digest(crossent.softplus(x))

def run():
    out = {}
    adversarial(out)
    properties(out)
    return out

if __name__ == "__main__":
    import numba
    from numba import njit

    @njit
    def _oob(a, i):
        return a[i]

    try:
        _oob(np.zeros(3), 10)
        checked = False
    except IndexError:
        checked = True
    res = run()
    res["_boundscheck"] = checked and numba.config.BOUNDSCHECK == 1
    json.dump(res, sys.stdout)
'''


def start_checked_run(tmp_dir) -> subprocess.Popen:
    """Start the corpus script under ``NUMBA_BOUNDSCHECK=1`` with its own Numba cache.

    ``tests/conftest.py`` calls this right after collection, so that the checked subprocess
    (which compiles everything afresh, on one core) runs beside the rest of the suite.
    """
    script = Path(tmp_dir) / "corpus.py"
    script.write_text(CORPUS)
    env = dict(os.environ)
    env["NUMBA_BOUNDSCHECK"] = "1"
    env["NUMBA_CACHE_DIR"] = str(Path(tmp_dir) / "numba_cache_boundscheck")
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_corpora_run_clean_with_boundscheck(boundscheck_process):
    proc = boundscheck_process
    ns: dict = {}
    exec(compile(CORPUS, "corpus", "exec"), ns)
    normal = ns["run"]()
    stdout, stderr = proc.communicate(timeout=1500)
    assert proc.returncode == 0, stderr[-6000:]
    checked = json.loads(stdout)
    assert checked.pop("_boundscheck") is True, "NUMBA_BOUNDSCHECK=1 did not take effect"
    assert checked.keys() == normal.keys()
    assert len(normal) > 1000
    differ = sorted(k for k in normal if normal[k] != checked[k])
    assert not differ, f"outputs that differ under bounds checking: {differ[:20]} ({len(differ)})"
