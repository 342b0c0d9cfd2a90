"""Seeded adversarial corpus of PMF pairs for ``entropy``, ``cross_entropy_pmf`` and
``kl_divergence``.

Every case is a named, reproducible input ``(p, q, base)`` (plus an ``axis``). The precision
tests (``tests/test_precision_pmf.py``) and ``crossent accuracy`` run every case through
crossent and through the oracle ``crossent.reference`` and compare in ULPs of the output format.

The families (what the accuracy contract asks the corpus to cover: docs/design.md#accuracy):

``perturbed``
    ``q = p (1 + eps z)`` renormalized, ``z`` uniform in [-1, 1] per class, for
    ``eps = 1e-1, 1e-2, ..., 1e-8`` (float64 adds 1e-10, 1e-12 and 1e-15), K = 3, 10, 100.
    As ``eps`` shrinks, KL falls to ``~eps^2`` while ``sum(p - q)`` stays at the rounding level
    ``~1e-16``: the case that ``H(p,q) - H(p,p)`` and the naive ``sum p log(p/q)`` lose.
``ulp-neighbours``
    ``q`` = ``p`` with random entries moved by one or two ulps (KL ~ 1e-32).
``identical``
    ``q = p`` exactly (KL = 0, cross-entropy = entropy).
``zeros``
    zero masses in ``p`` (where ``q`` is positive or zero) and, in one row, ``q = 0`` where
    ``p > 0`` (the result is +inf).
``wide``
    thousands of classes: K = 1000, 5000 ("ci"); 1e5 ("full").
``peaked``
    near one-hot rows, the rest of the mass ``delta`` = 1e-3 .. 1e-300 (format-scaled) spread
    over the other classes: entropies down to ~1e-297.
``tiny``
    masses at the bottom of the format: 1e-300 and subnormal entries.
``far``
    ``p`` and ``q`` drawn independently (Dirichlet with alpha = 0.1) and rows with
    ``p/q`` up to ``2**2000``: the ``|s| > 1/2`` branch of the KL kernel and large ratios.
``k1``, ``k2``
    one class (``p = q = [1]``) and two classes, from even to ``1 - 2^-52``.
``uniform``
    the fair K-sided die (K = 6, 2^10, 1000).
``bases``
    a few rows under every base: e, 2, 10, 1/2, 3, 1.0001 and 1e6.
``axis``
    3-D inputs with the class axis first or in the middle.

Bases: outside the ``bases`` family the cases cycle through ``None`` (nats), 2 and 10, so
every family is measured in nats, bits and bans.

The generator is parametrised by the *format*: the rows are built in float64 and cast to the
dtype (the cast array is the exact input; it sums to 1 only within the format's rounding),
with the ``tiny`` and ``peaked`` magnitudes taken from the format's constants. Each family
draws from its own stream ``SeedSequence([seed, family index])``, so adding a family does not
change the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .logits import _finfo, checked_args

__all__ = ["Case", "FAMILIES", "SIZES", "FUNCTIONS", "cases"]

SIZES = ("smoke", "ci", "full")
FUNCTIONS = ("entropy", "cross_entropy_pmf", "kl_divergence")

FAMILIES = (
    "perturbed",
    "ulp-neighbours",
    "identical",
    "zeros",
    "wide",
    "peaked",
    "tiny",
    "far",
    "k1",
    "k2",
    "uniform",
    "bases",
    "axis",
)

_DTYPES = (np.float16, np.float32, np.float64)  # and bfloat16 (ml_dtypes)


@dataclass(frozen=True)
class Case:
    """One named input of the PMF corpus.

    Attributes
    ----------
    name : str
        Unique within a corpus, ``"<family>/<detail>"``.
    family : str
        One of :data:`FAMILIES`.
    p, q : ndarray
        The two PMF arrays in the case's dtype, same shape; classes along ``axis``.
    base : float or None
        The logarithm base (None: nats).
    axis : int
        The class axis.
    function : str or None
        The function the case is for (``entropy`` cases carry only ``p`` in :attr:`args`);
        None for a case usable by ``cross_entropy_pmf`` and ``kl_divergence``.
    note : str
        What the case is for (printed by the tests on failure).
    """

    name: str
    family: str
    p: np.ndarray
    q: np.ndarray
    base: float | None
    axis: int = -1
    function: str | None = None
    note: str = ""

    @property
    def dtype(self) -> str:
        return self.p.dtype.name

    @property
    def args(self) -> tuple:
        """Positional arguments: ``(p,)`` for entropy, ``(p, q)`` otherwise."""
        return (self.p,) if self.function == "entropy" else (self.p, self.q)

    @property
    def kwargs(self) -> dict:
        return {"base": self.base, "axis": self.axis}


# --------------------------------------------------------------------------------------------
# helpers (all in float64; cast at the end)

_SIZE = {
    # (rows per case, K of the wide family, eps list extension)
    "smoke": dict(rows=1, wide=(1000,), ks=(10,)),
    "ci": dict(rows=3, wide=(1000, 5000), ks=(3, 10, 100)),
    "full": dict(rows=8, wide=(1000, 5000, 100_000), ks=(3, 10, 100, 1000)),
}


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / x.sum(axis=-1, keepdims=True)


def _cast(x: np.ndarray, dt: np.dtype) -> np.ndarray:
    """Cast to the format; positive entries that would round to 0 are kept at the smallest subnormal."""
    y = x.astype(dt)
    tiny = _finfo(dt).smallest_subnormal
    y = np.where((x > 0) & (y == 0), tiny, y).astype(dt)
    return np.ascontiguousarray(y)


def _dirichlet(rng, k: int, rows: int, alpha: float = 1.0) -> np.ndarray:
    return rng.dirichlet(np.full(k, alpha), size=rows)


def _perturb(rng, p: np.ndarray, eps: float) -> np.ndarray:
    z = rng.uniform(-1.0, 1.0, size=p.shape)
    return _normalize(p * (1.0 + eps * z))


# --------------------------------------------------------------------------------------------
# families: each yields (detail, p64_or_dt, q64_or_dt, note); arrays already in dt when the
# family needs format-level control, float64 otherwise (cast by the caller)


def _fam_perturbed(rng, dt, sz):
    epss = [10.0**-e for e in range(1, 9)]
    if dt == np.float64:
        epss += [1e-10, 1e-12, 1e-15]
    for k in sz["ks"]:
        for eps in epss:
            p = _cast(_dirichlet(rng, k, sz["rows"]), dt)
            q = _cast(_perturb(rng, p.astype(np.float64), eps), dt)
            yield f"K{k}-eps{eps:.0e}", p, q, f"q = p(1 + {eps:g} z) renormalized"


def _fam_ulp_neighbours(rng, dt, sz):
    for k in (10, 100):
        p = _cast(_dirichlet(rng, k, sz["rows"]), dt)
        steps = rng.integers(-2, 3, size=p.shape)
        q = p.copy()
        for _ in range(2):
            up = steps > 0
            dn = steps < 0
            q = np.where(up, np.nextafter(q, np.asarray(np.inf, dt)), q)
            q = np.where(dn, np.nextafter(q, np.asarray(0, dt)), q)
            steps = steps - np.sign(steps)
        yield f"K{k}", p, q.astype(dt), "q = p moved by up to 2 ulps per entry"


def _fam_identical(rng, dt, sz):
    for k in (2, 10, 100):
        p = _cast(_dirichlet(rng, k, sz["rows"]), dt)
        yield f"K{k}", p, p.copy(), "q = p exactly"


def _fam_zeros(rng, dt, sz):
    k = 20
    p = _dirichlet(rng, k, sz["rows"])
    p[:, ::3] = 0.0
    p = _normalize(p)
    q = _perturb(rng, _dirichlet(rng, k, sz["rows"]) * 0.5 + p * 0.5, 0.0)
    yield "p-zero", _cast(p, dt), _cast(q, dt), "zero masses in p, q > 0"
    q2 = q.copy()
    q2[:, ::3] = 0.0
    q2 = _normalize(q2)
    yield "both-zero", _cast(p, dt), _cast(q2, dt), "zero masses in p and q at the same classes"
    q3 = _normalize(q.copy())
    q3[0, 1] = 0.0  # p[0, 1] > 0: that row's cross-entropy and KL are +inf
    q3 = _normalize(q3)
    yield "q-zero-p-positive", _cast(p, dt), _cast(q3, dt), "q = 0 < p in the first row: +inf"


def _fam_wide(rng, dt, sz):
    for k in sz["wide"]:
        p = _cast(_dirichlet(rng, k, 1, alpha=0.5), dt)
        q = _cast(_perturb(rng, p.astype(np.float64), 1e-3), dt)
        yield f"K{k}-near", p, q, f"{k} classes, q = p(1 + 1e-3 z)"
        q2 = _cast(_dirichlet(rng, k, 1, alpha=0.5), dt)
        yield f"K{k}-far", p, q2, f"{k} classes, independent p and q"


def _fam_peaked(rng, dt, sz):
    info = _finfo(dt)
    deltas = [1e-3, 1e-8, 1e-16, 1e-30, 1e-100, 1e-300]
    deltas = [d for d in deltas if d >= float(info.tiny) * 16]
    for d in deltas:
        k = 10
        rest = _dirichlet(rng, k - 1, sz["rows"]) * d
        p = np.concatenate([1.0 - rest.sum(axis=1, keepdims=True), rest], axis=1)
        q = np.concatenate([1.0 - 2 * rest.sum(axis=1, keepdims=True), 2 * rest], axis=1)
        yield f"delta{d:.0e}", _cast(p, dt), _cast(q, dt), f"one class 1 - {d:g}, the rest {d:g}"


def _fam_tiny(rng, dt, sz):
    info = _finfo(dt)
    sub = float(info.smallest_subnormal)
    tinies = [float(info.tiny) * 1e3, float(info.tiny), sub * 1000, sub]
    for t in tinies:
        k = 8
        p = _dirichlet(rng, k, sz["rows"])
        p[:, :3] = t * rng.integers(1, 5, size=(sz["rows"], 3))
        p[:, 3:] *= (1.0 - p[:, :3].sum(axis=1, keepdims=True)) / p[:, 3:].sum(axis=1, keepdims=True)
        q = _dirichlet(rng, k, sz["rows"])
        q[:, :3] = t * rng.integers(1, 5, size=(sz["rows"], 3))
        q[:, 3:] *= (1.0 - q[:, :3].sum(axis=1, keepdims=True)) / q[:, 3:].sum(axis=1, keepdims=True)
        yield f"mass{t:.1e}", _cast(p, dt), _cast(q, dt), f"three masses of order {t:g}"


def _fam_far(rng, dt, sz):
    for k in (5, 50):
        p = _cast(_dirichlet(rng, k, sz["rows"], alpha=0.1), dt)
        q = _cast(_dirichlet(rng, k, sz["rows"], alpha=0.1), dt)
        yield f"K{k}-alpha0.1", p, q, "independent sparse-ish p, q: large ratios"
    info = _finfo(dt)
    lo = float(info.tiny) * 4
    p = np.array([[0.5, 0.5 - lo, lo]])
    q = np.array([[lo, 0.5, 0.5 - lo]])
    yield "ratio-extreme", _cast(p, dt), _cast(q, dt), "p/q = 2^(emax) and its inverse"
    p = np.array([[0.75, 0.25], [0.25, 0.75], [0.9, 0.1]])
    q = np.array([[0.25, 0.75], [0.75, 0.25], [0.3, 0.7]])
    yield "s-boundary", _cast(p, dt), _cast(q, dt), "p/q = 3, 1/3 and beyond: the branch boundary"


def _fam_k1(rng, dt, sz):
    yield "one", np.ones((1, 1), dt), np.ones((1, 1), dt), "K = 1: everything 0"


def _fam_k2(rng, dt, sz):
    eps = float(_finfo(dt).eps)
    for a in (0.5, 0.25, 0.1, 1e-3, 1.0 - eps):
        p = np.array([[a, 1.0 - a]])
        q = np.array([[1.0 - a, a], [0.5, 0.5], [a * (1 - 1e-3), 1.0 - a * (1 - 1e-3)]])
        pp = np.repeat(p, 3, axis=0)
        yield f"a{a:.3g}", _cast(pp, dt), _cast(q, dt), "two classes"


def _fam_uniform(rng, dt, sz):
    for k in (6, 1024, 1000):
        p = np.full((1, k), 1.0 / k)
        q = _perturb(rng, p, 1e-2)
        yield f"K{k}", _cast(p, dt), _cast(q, dt), f"the fair {k}-sided die"


def _fam_axis(rng, dt, sz):
    p = _cast(_dirichlet(rng, 7, 6), dt).reshape(2, 3, 7)
    q = _cast(_perturb(rng, p.astype(np.float64), 1e-4), dt)
    yield "axis0", np.ascontiguousarray(np.moveaxis(p, -1, 0)), np.ascontiguousarray(
        np.moveaxis(q, -1, 0)), "class axis first"
    yield "axis1", np.ascontiguousarray(np.moveaxis(p, -1, 1)), np.ascontiguousarray(
        np.moveaxis(q, -1, 1)), "class axis in the middle"


_GENERATORS = {
    "perturbed": _fam_perturbed,
    "ulp-neighbours": _fam_ulp_neighbours,
    "identical": _fam_identical,
    "zeros": _fam_zeros,
    "wide": _fam_wide,
    "peaked": _fam_peaked,
    "tiny": _fam_tiny,
    "far": _fam_far,
    "k1": _fam_k1,
    "k2": _fam_k2,
    "uniform": _fam_uniform,
    "axis": _fam_axis,
}

_CYCLE_BASES = (None, 2.0, 10.0)
_ALL_BASES = (None, 2.0, 10.0, 0.5, 3.0, 1.0001, 1e6)


def cases(size: str = "ci", seed: int = 0, dtype=np.float64, families=None,
          function: str | None = None) -> list[Case]:
    """The adversarial PMF corpus.

    Parameters
    ----------
    size : {"smoke", "ci", "full"}
        ``"smoke"``: one row per case and few K (seconds). ``"ci"``: the precision tests.
        ``"full"``: more rows, K up to 1e5.
    seed : int
        Seed; the same (size, seed, dtype) gives the same corpus.
    dtype : {float64, float32, float16, bfloat16}
        The format of the cases (built in float64, cast to it).
    families : iterable of str, optional
        Restrict to these families (default: all of :data:`FAMILIES`).
    function : {"entropy", "cross_entropy_pmf", "kl_divergence"}, optional
        The function the cases are for: ``"entropy"`` cases have ``args == (p,)`` (and the
        ``q`` arrays join as further entropy inputs); otherwise ``args == (p, q)``.

    Returns
    -------
    list of Case
    """
    dt, fams = checked_args(size, dtype, families, FAMILIES)
    if function is not None and function not in FUNCTIONS:
        raise ValueError(f"function must be one of {FUNCTIONS} or None, got {function!r}")
    sz = _SIZE[size]
    out: list[Case] = []
    ncycle = 0
    for fam in fams:
        rng = np.random.default_rng(np.random.SeedSequence([seed, FAMILIES.index(fam)]))
        if fam == "bases":
            p = _cast(_dirichlet(rng, 10, 2), dt)
            q = _cast(_perturb(rng, p.astype(np.float64), 1e-6), dt)
            for b in _ALL_BASES:
                out.append(Case(f"bases/{'e' if b is None else repr(b)}", fam, p, q, b,
                                function=function, note=f"base {b}"))
            continue
        for detail, p, q, note in _GENERATORS[fam](rng, dt, sz):
            p = np.asarray(p, dt)
            q = np.asarray(q, dt)
            axis = {"axis0": 0, "axis1": 1}.get(detail, -1)
            base = _CYCLE_BASES[ncycle % len(_CYCLE_BASES)]
            ncycle += 1
            name = f"{fam}/{detail}"
            if function == "entropy":
                # entropy takes one PMF: q is a second, different input
                out.append(Case(name + "/p", fam, p, q, base, axis, function, note))
                out.append(Case(name + "/q", fam, q, p, base, axis, function, note))
            else:
                out.append(Case(name, fam, p, q, base, axis, function, note))
    return out
