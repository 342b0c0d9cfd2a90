"""Seeded adversarial corpus of logit pairs for ``kl_divergence_logits``.

Every case is a named, reproducible input ``(p_logits, q_logits)`` with a class ``axis``. The
precision tests (``tests/test_precision_divergence.py``) run every case through crossent and
through the oracle ``crossent.reference`` and compare in ULPs of the output format.

The families:

``near``
    ``q = p (1 + eps z)``, ``z`` uniform in [-1, 1] per class, ``eps = 1e-1 .. 1e-15``
    (relative), and ``q = p + eps z`` (absolute): the divergence falls to ``~eps**2`` while
    ``lse(p) - lse(q)`` and ``sum P (p - q)`` are ``~eps``: the frameworks' difference of two
    nearly equal quantities.
``ulp-neighbours``
    ``q`` = ``p`` with entries moved by one or two ulps.
``identical``, ``shifted``
    ``q = p`` and ``q = p + k`` exactly (integer logits, integer ``k``): the divergence is 0.
``masked``
    ``-inf`` classes in both rows, in ``p`` only (contributes 0), in ``q`` only (+inf).
``offset``
    logits near 1e4 and 1e6 with small differences (the max shift and ``lse`` large next to KL).
``apart``
    ``q = p + off + N(0, 1)``, ``off`` 1e20 and 1e30, ``p`` of scale 30: the rows' offset is
    not representable next to ``p``'s logits (the low part of ``p_k - q_k`` is as large as
    ``p_k``).
``confident``
    one logit 30 .. 700 above the rest in one or both rows.
``far``
    independent rows (standard normal times 1, 5, 20).
``wide``
    1000 classes (``near`` and ``far``).
``axis``
    3-D inputs with the class axis first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Call", "Case", "calls", "cases", "entropy_cases"]


@dataclass(frozen=True)
class Case:
    name: str
    p: np.ndarray
    q: np.ndarray
    axis: int = -1
    note: str = ""


def _near(rng, dt, C, n):
    out = []
    eps_list = [1e-1, 1e-3, 1e-5, 1e-8]
    if dt == np.float64:
        eps_list += [1e-10, 1e-12, 1e-15]
    for eps in eps_list:
        p = rng.normal(scale=3.0, size=(n, C))
        q = p * (1 + eps * rng.uniform(-1, 1, p.shape))
        out.append(Case(f"near-rel-{eps:g}-C{C}", p.astype(dt), q.astype(dt), note="q = p(1 + eps z)"))
        q = p + eps * rng.uniform(-1, 1, p.shape)
        out.append(Case(f"near-abs-{eps:g}-C{C}", p.astype(dt), q.astype(dt), note="q = p + eps z"))
    return out


def cases(size: str = "ci", seed: int = 0, dtype="float64") -> list[Case]:
    """The corpus for ``dtype`` (``size``: "ci" or "full", which has more and wider rows)."""
    dt = np.dtype(dtype)
    rng = np.random.default_rng([seed, dt.itemsize])
    n = 8 if size == "ci" else 64
    out: list[Case] = []
    for C in (3, 10, 100):
        out += _near(rng, dt, C, n)
    # ulp neighbours
    p = rng.normal(scale=4.0, size=(n, 20)).astype(dt)
    q = p.copy()
    k = rng.integers(-2, 3, size=p.shape)
    q = np.where(k > 0, np.nextafter(q, np.array(np.inf, dt)), q)
    q = np.where(k > 1, np.nextafter(q, np.array(np.inf, dt)), q)
    q = np.where(k < 0, np.nextafter(q, np.array(-np.inf, dt)), q).astype(dt)
    out.append(Case("ulp-neighbours", p, q, note="q = p moved by up to 2 ulps"))
    # identical and exactly shifted
    p = rng.integers(-20, 20, size=(n, 12)).astype(dt)
    out.append(Case("identical", p, p.copy(), note="KL = 0"))
    out.append(Case("shifted", p, (p + 7).astype(dt), note="q = p + 7 exactly: KL = 0"))
    # masks
    p = rng.normal(size=(6, 8)).astype(dt)
    q = (p + rng.normal(scale=0.5, size=p.shape)).astype(dt)
    p[0, :3] = -np.inf
    q[0, :3] = -np.inf  # the same classes masked
    p[1, 2] = -np.inf  # masked in p only: contributes 0
    p[2, :7] = -np.inf  # one class left in p
    q[3, 4] = -np.inf  # masked in q only: +inf
    p[4, 1] = q[4, 1] = -np.inf
    q[4, 5] = -np.inf
    p[4, 5] = -np.inf
    out.append(Case("masked", p, q, note="-inf classes"))
    # large offsets
    for off in (o for o in (1e4, 1e6) if 2 * o < float(np.finfo(dt).max)):
        p = off + rng.normal(size=(n, 10))
        for eps in (1e-3, 1e-9):
            q = p + eps * off * 1e-6 * rng.uniform(-1, 1, p.shape)
            out.append(Case(f"offset-{off:g}-{eps:g}", p.astype(dt), q.astype(dt),
                            note="logits near off, differences ~eps off 1e-6"))
    # rows far apart: q = p + off + noise, p of scale 30 (D = p_k - q_k not representable:
    # its low part is as large as p's logits; the fast kernel lost u |p| there before)
    for off in (o for o in (1e20, 1e30) if 2 * o < float(np.finfo(dt).max)):
        p = rng.normal(scale=30.0, size=(n, 10))
        q = p + off + rng.normal(size=p.shape)
        out.append(Case(f"apart-{off:g}", p.astype(dt), q.astype(dt),
                        note="q = p + off + N(0, 1), p of scale 30"))
    # confident rows
    for top in (30.0, 100.0, 700.0):
        p = rng.normal(size=(n, 10))
        q = p + rng.normal(scale=0.1, size=p.shape)
        p[:, 0] += top
        q[: n // 2, 0] += top
        q[n // 2:, 1] += top
        out.append(Case(f"confident-{top:g}", p.astype(dt), q.astype(dt),
                        note="one logit far above the rest"))
    # far apart
    for s in (1.0, 5.0, 20.0):
        p = rng.normal(scale=s, size=(n, 10))
        q = rng.normal(scale=s, size=(n, 10))
        out.append(Case(f"far-{s:g}", p.astype(dt), q.astype(dt), note="independent rows"))
    # wide
    W = 1000 if size == "ci" else 32000
    p = rng.normal(scale=2.0, size=(2, W))
    out.append(Case(f"wide-near-{W}", p.astype(dt),
                    (p * (1 + 1e-6 * rng.uniform(-1, 1, p.shape))).astype(dt), note="q ~ p"))
    out.append(Case(f"wide-far-{W}", p.astype(dt), rng.normal(scale=2.0, size=(2, W)).astype(dt)))
    # class axis first
    p = rng.normal(size=(7, 3, 4))
    q = p + 1e-4 * rng.normal(size=p.shape)
    out.append(Case("axis-0", p.astype(dt), q.astype(dt), axis=0))
    return out


def entropy_cases(size: str = "ci", seed: int = 0, dtype="float64") -> list[tuple]:
    """``(name, logits, axis, base)`` for ``entropy_logits``: the ``p_logits`` of every
    :func:`cases` case under the bases e, 2, 10 and 1/2, plus near-uniform rows (H ~ log C)
    and rows with one finite entry (H = 0)."""
    dt = np.dtype(dtype)
    out = []
    for i, c in enumerate(cases(size, seed, dtype)):
        base = (None, 2.0, 10.0, 0.5)[i % 4]
        out.append((f"{c.name}-base{base}", c.p, c.axis, base))
    rng = np.random.default_rng([seed, 7, dt.itemsize])
    x = (1e-6 * rng.normal(size=(6, 64))).astype(dt)
    out.append(("near-uniform", x, -1, None))
    x = np.full((3, 5), -np.inf, dt)
    x[:, 2] = (1.0, -3.0, 200.0)
    out.append(("one-finite", x, -1, None))
    return out


@dataclass(frozen=True)
class Call:
    """One measured call of a logit divergence (the measurement library's case): ``name``,
    the positional ``args``, the keyword ``kwargs`` (``reduction="none"``: one output per
    row) and the input ``dtype``."""

    name: str
    args: tuple
    kwargs: dict
    dtype: np.dtype


def calls(function: str, size: str = "ci", seed: int = 0, dtype="float64") -> list[Call]:
    """The corpus as :class:`Call` objects for ``function``: ``"kl_divergence_logits"`` and
    ``"js_divergence_logits"`` (every case of :func:`cases`; JS at beta 1/2, 0.1 and 0.9 in
    turn) or ``"entropy_logits"`` (:func:`entropy_cases`)."""
    dt = np.dtype(dtype)
    if function == "entropy_logits":
        return [Call(n, (x,), {"axis": ax, "base": b}, dt)
                for n, x, ax, b in entropy_cases(size, seed, dtype)]
    out = []
    for i, c in enumerate(cases(size, seed, dtype)):
        kw = {"axis": c.axis, "reduction": "none"}
        name = c.name
        if function == "js_divergence_logits":
            kw["beta"] = (0.5, 0.1, 0.9)[i % 3]
            name = f"{c.name}-beta{kw['beta']:g}"
        elif function != "kl_divergence_logits":
            raise ValueError(f"function: not a logit divergence: {function!r}")
        out.append(Call(name, (c.p, c.q), kw, dt))
    return out
