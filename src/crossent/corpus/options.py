"""The adversarial corpus of the loss options ``z_loss`` and ``logit_softcap``
(``crossent.cross_entropy(..., z_loss=, logit_softcap=)``): the same :class:`Case` as
:mod:`crossent.corpus.logits`, with the options set.

Families (each case says what it is for in its ``note``):

* ``zloss-random``, ``zloss-confident``, ``zloss-offset``: the z term next to ordinary,
  confident (loss ~ 1e-20 .. 1e-300) and offset rows (lse up to 1e150 in float64);
* ``softcap-random``, ``softcap-confident``: capped rows, c from 1 to 50;
* ``softcap-huge``: logits up to 1e300 (the format's range), c from 1 to 50, and rows whose
  ``x / c`` is near 0 (tiny logits, huge c);
* ``softcap-masked``: -inf logits, which the cap turns into -c;
* ``both``: both options with class weights, ``ignore_index``, label smoothing and
  probability targets.
"""

from __future__ import annotations

import numpy as np

from .logits import _SIZE, _fmt, _labels, _mk, checked_args

__all__ = ["FAMILIES", "cases"]

FAMILIES = ("zloss-random", "zloss-confident", "zloss-offset", "softcap-random",
            "softcap-confident", "softcap-huge", "softcap-masked", "both")

_Z = (1e-4, 1e-2, 1.0)  # PaLM uses 1e-4
_CAPS = (1.0, 5.0, 30.0, 50.0)  # Gemma 2: 30 (final logits) and 50 (attention)


def _rng(seed, family):
    return np.random.default_rng(np.random.SeedSequence([seed, 1000 + FAMILIES.index(family)]))


def _zloss_random(fmt, rng, p):
    n = p["rows"]
    for c in (3, 100):
        for z in _Z:
            x = rng.normal(0.0, 4.0, size=(n, c))
            yield _mk(fmt, "zloss-random", f"C{c}-z{z:g}", x, _labels(rng, n, c),
                      "Gaussian logits, z lse^2 added", z_loss=z,
                      reduction="sum" if c == 3 else "mean")


def _zloss_confident(fmt, rng, p):
    for level in (20, 100, 300):
        d = level * np.log(10.0)
        if d > fmt.under * 0.9:
            d = fmt.under * 0.9
        x = np.array([[0.0, -d, -d - 1.0], [3.0, 3.0 - d, 3.0 - d], [-2.0, -2.0 - d, -9.0 - d]])
        yield _mk(fmt, "zloss-confident", f"loss-1e-{level}", x, np.zeros(3, dtype=np.int64),
                  "confident rows: the loss ~ 1e-level, lse near the max", z_loss=1e-4,
                  reduction="sum")


def _zloss_offset(fmt, rng, p):
    n = p["rows"]
    offs = [o for o in fmt.offsets if o <= 1e150] or list(fmt.offsets[:2])
    for off in offs:
        for sign in (1.0, -1.0):
            x = sign * off + rng.normal(0.0, 2.0, size=(n, 5))
            yield _mk(fmt, "zloss-offset", f"{sign * off:+.0e}", x, _labels(rng, n, 5),
                      "large offsets: the z term dominates (or overflows to inf)",
                      z_loss=1e-4)


def _softcap_random(fmt, rng, p):
    n = p["rows"]
    for c in (10, p["big"]):
        for cap in _CAPS:
            x = rng.normal(0.0, 2.0 * cap, size=(n if c < p["big"] else 2, c))
            yield _mk(fmt, "softcap-random", f"C{c}-c{cap:g}", x, _labels(rng, x.shape[0], c),
                      "Gaussian logits of the cap's scale", logit_softcap=cap,
                      reduction="sum" if cap == 5.0 else "mean")


def _softcap_confident(fmt, rng, p):
    for cap in _CAPS:
        # the label far above the cap (capped near +c), the rest far below (near -c)
        x = np.array([[10 * cap, -10 * cap, -3 * cap], [2 * cap, -cap, -cap],
                      [cap, 0.0, -cap], [0.5 * cap, 0.5 * cap - 1e-3, -cap]])
        yield _mk(fmt, "softcap-confident", f"c{cap:g}", x, np.zeros(4, dtype=np.int64),
                  "label above the cap: loss ~ exp(-2c), the capped gap", logit_softcap=cap,
                  reduction="sum")


def _softcap_huge(fmt, rng, p):
    n = p["rows"]
    big = fmt.offsets[-1]
    for cap in _CAPS:
        mag = np.exp(rng.uniform(0.0, np.log(big), size=(n, 6)))
        x = mag * rng.choice([-1.0, 1.0], size=(n, 6))
        x[0, :3] = [big, -big, big / 3]
        yield _mk(fmt, "softcap-huge", f"c{cap:g}-huge", x, _labels(rng, n, 6),
                  f"|x| up to {big:g}: tanh saturates", logit_softcap=cap)
    tiny = float(np.finfo(np.float32).tiny) if fmt.dtype != np.float64 else 1e-300
    if fmt.dtype.itemsize == 2:
        tiny = 1e-4
    for cap in (1.0, 50.0, 1e6):
        x = rng.normal(0.0, 1.0, size=(n, 6)) * tiny * np.exp(rng.uniform(0, 20, size=(n, 6)))
        yield _mk(fmt, "softcap-huge", f"c{cap:g}-near0", x, _labels(rng, n, 6),
                  "x / c near 0: the capped logit is x to the last bits", logit_softcap=cap)


def _softcap_masked(fmt, rng, p):
    n = p["rows"]
    for cap in (5.0, 30.0):
        x = rng.normal(0.0, 8.0, size=(n, 10))
        x[rng.uniform(size=(n, 10)) < 0.4] = -np.inf
        keep = rng.integers(0, 10, size=n)
        x[np.arange(n), keep] = rng.normal(0.0, 8.0, size=n)
        yield _mk(fmt, "softcap-masked", f"c{cap:g}", x, keep,
                  "-inf logits become -c under the cap", logit_softcap=cap,
                  z_loss=1e-4 if cap == 5.0 else 0.0)


def _both(fmt, rng, p):
    n = p["rows"]
    c = 12
    w = rng.uniform(0.0, 3.0, size=c)
    w[0] = 0.0
    x = rng.normal(0.0, 20.0, size=(n, c))
    y = _labels(rng, n, c)
    y[: max(1, n // 4)] = -1
    yield _mk(fmt, "both", "weighted-ignore", x, y, "class weights, ignore_index=-1",
              weight=w, ignore_index=-1, z_loss=1e-3, logit_softcap=30.0)
    yield _mk(fmt, "both", "smoothing", x, _labels(rng, n, c), "label smoothing 0.1",
              label_smoothing=0.1, z_loss=1e-2, logit_softcap=5.0, reduction="sum")
    t = rng.dirichlet(np.full(c, 0.5), size=n)
    yield _mk(fmt, "both", "prob-targets", x, t, "probability targets and class weights",
              weight=w, z_loss=1e-3, logit_softcap=15.0)


_GENERATORS = {
    "zloss-random": _zloss_random,
    "zloss-confident": _zloss_confident,
    "zloss-offset": _zloss_offset,
    "softcap-random": _softcap_random,
    "softcap-confident": _softcap_confident,
    "softcap-huge": _softcap_huge,
    "softcap-masked": _softcap_masked,
    "both": _both,
}


def cases(size: str = "ci", seed: int = 0, dtype=np.float64, families=None) -> list:
    """The options corpus (see the module notes): ``size``, ``seed``, ``dtype`` and
    ``families`` as :func:`crossent.corpus.logits.cases`."""
    dt, fams = checked_args(size, dtype, families, FAMILIES)
    fmt, p = _fmt(dt), _SIZE[size]
    out = []
    for fam in fams:
        out.extend(_GENERATORS[fam](fmt, _rng(seed, fam), p))
    return out
