"""Seeded adversarial corpus for the binary cross-entropy, ``softplus`` and ``log_sigmoid``.

Every case is a named, reproducible input ``(logits, target, weight, pos_weight, reduction)``;
``tests/test_precision_binary.py`` runs each through crossent and the oracle
``crossent.reference`` and compares in ULPs of the output format.

The families:

``confident``
    hard targets with the logit on the target's side, ``|x|`` = 10 .. 700 (float64), the
    format's range for float32/float16: the loss is ``softplus(-|x|)`` ~ ``e^{-|x|}``
    (``x = 40``: ``4.2e-18``), which PyTorch's subtraction returns as 0.
``wrong``
    hard targets on the wrong side: the loss is ``|x| + log1p(e^{-|x|})``.
``huge``
    ``|x|`` from 1e3 to 1e300 (the format's max for narrow dtypes) and the infinities, both
    targets: losses 0, ``|x|`` or ``inf``.
``soft``
    soft targets ``t`` uniform in [0, 1] and at ``sigma(x)`` (the gradient cancels there),
    ``x`` normal with scale 1 and 10.
``weighted``
    per-element weights (1e-3 .. 1e3 and zeros) and a ``pos_weight`` per column.
``tiny``
    ``|x|`` down to the smallest subnormal (the loss near ``log 2``).
``reduced``
    the families above again under ``reduction="sum"`` and ``"mean"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Case", "FAMILIES", "cases"]

FAMILIES = ("confident", "wrong", "huge", "soft", "weighted", "tiny", "reduced")


@dataclass(frozen=True)
class Case:
    name: str
    logits: np.ndarray
    target: np.ndarray
    weight: np.ndarray | None = None
    pos_weight: np.ndarray | None = None
    reduction: str = "none"

    @property
    def dtype(self):
        return self.logits.dtype

    def kwargs(self) -> dict:
        return dict(weight=self.weight, pos_weight=self.pos_weight, reduction=self.reduction)


def _magnitudes(dtype, lo, n):
    """``n`` log-spaced magnitudes from ``lo`` to the format's max (or 1e300)."""
    hi = min(float(np.finfo(dtype).max), 1e300)
    return np.geomspace(lo, hi, n)


def cases(dtype="float64", seed: int = 0) -> list[Case]:
    dt = np.dtype(dtype)
    out = []

    def add(name, x, t, **kw):
        x = np.asarray(x, dtype=np.float64).astype(dt)
        out.append(Case(f"{name}-{dt.name}", x, np.asarray(t, dtype=dt), **kw))

    rng = np.random.default_rng(np.random.SeedSequence([seed, 11]))
    top = {"float64": 700.0, "float32": 100.0, "float16": 16.0}[dt.name]
    mags = np.linspace(0.5, top, 64)
    ones = np.ones(mags.size)
    add("confident", np.concatenate([mags, -mags]), np.concatenate([ones, 0 * ones]))
    add("wrong", np.concatenate([mags, -mags]), np.concatenate([0 * ones, ones]))
    big = np.concatenate([_magnitudes(dt, 1e3 if dt != np.float16 else 20.0, 16), [np.inf]])
    xs = np.concatenate([big, -big, big, -big])
    ts = np.concatenate([np.ones(big.size), np.zeros(big.size), np.zeros(big.size), np.ones(big.size)])
    add("huge", xs, ts)
    x = rng.normal(size=(8, 16)) * np.array([1.0, 10.0]).repeat(4)[:, None]
    x = x.astype(dt).astype(np.float64)
    t = rng.uniform(size=x.shape)
    t[::2] = 1 / (1 + np.exp(-x[::2]))  # the target at sigma(x): the gradient cancels
    add("soft", x, t)
    wt = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), size=x.shape))
    wt[0, :3] = 0.0
    pw = np.exp(rng.uniform(np.log(0.1), np.log(10.0), size=x.shape[1]))
    add("weighted", x, t, weight=wt.astype(dt), pos_weight=pw.astype(dt))
    tiny = np.geomspace(float(np.finfo(dt).smallest_subnormal), 1e-3, 20)
    add("tiny", np.concatenate([tiny, -tiny]), rng.uniform(size=2 * tiny.size))
    for c in list(out):
        for red in ("sum", "mean"):
            if np.all(np.isfinite(c.logits)):
                out.append(Case(c.name.replace(f"-{dt.name}", f"-{red}-{dt.name}"), c.logits,
                                c.target, c.weight, c.pos_weight, red))
    return out
