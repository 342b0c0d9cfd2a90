"""Seeded adversarial corpus of logits for the softmax family and the classification loss.

Every case is a named, reproducible input for ``logsumexp``, ``log_softmax``, ``softmax``,
``cross_entropy`` and ``cross_entropy_value_and_grad``. The precision tests
(``tests/test_precision_softmax.py``, ``tests/test_precision_loss.py``) and
``crossent accuracy`` run every case through crossent and through the oracle
``crossent.reference`` and compare in ULPs of the output format.

The families (what the accuracy contract asks the corpus to cover: docs/design.md#accuracy):

``random``
    Gaussian logits, the ordinary case.
``confident``
    the label's logit is ``d`` above every other one; the true loss is
    ``log1p((K-1) exp(-d)) ~ exp(-d)``: about 1e-20, 1e-100 and 1e-300 at
    ``d = ln 1e20, ln 1e100, ln 1e300`` (float64), gaps up to 700 and beyond the
    underflow threshold of the format (the loss becomes subnormal, then 0).
``confident-wrong``
    the same rows with the label on a class ``d`` below the maximum (loss ~ d).
``mixed-scales``
    maximum near 0, the others spread down to -720 (float64; scaled to the format's
    underflow threshold for float32/float16).
``offset``
    a common offset up to ±1e300 (float64; ±1e38 float32, ±3e4 float16), with spreads
    of order 1 and of a few ulp(offset).
``masked``
    -inf entries (masking), including rows with a single finite entry and rows whose
    largest raw entry is masked. Labels are never on a masked class (that loss is +inf,
    a behaviour test, not a precision test).
``k1``, ``k2``
    one class (everything exact: 0, 1, x) and two classes with gaps from 1e-17 to 50.
``wide``
    K = 1e4 and 1e5 classes ("ci"), 1e5 and 1e6 ("full").
``label-smoothing``
    smoothing 0.05 to 1 on random and confident rows.
``weighted-ignore``
    per-class weights (some zero) and ignored items, ``ignore_index`` -100 and an
    in-range class.
``prob-targets``
    probability targets (Dirichlet, with exact zeros and one-hot rows).
``subnormal``
    rows whose softmax entries (and confident losses) are subnormal in the format.
``near-zero-lse``
    rows whose logsumexp is within 1/2 of 0, where its two terms cancel (the condition
    of the float64 logsumexp bound).
``ties``
    equal entries (uniform softmax) and rows with two maxima.
``axis``
    3-D inputs with the class axis first or in the middle.
``many-items``
    many items of widely different loss (1e-300 to 700) for the reductions.

The generator is parametrised by the *format*: the gaps that make outputs subnormal and the
largest offsets depend on the dtype, so ``cases(dtype=...)`` builds the rows from the
format's constants and casts them to it. The exact input of a case is the cast array: the
oracle is evaluated on exactly the floats that crossent receives. Each family draws from its
own stream ``SeedSequence([seed, family index])``, so adding a family does not change the
others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Case", "FAMILIES", "SIZES", "cases", "astype", "count_elements"]

SIZES = ("smoke", "ci", "full")

FAMILIES = (
    "random",
    "confident",
    "confident-wrong",
    "mixed-scales",
    "offset",
    "masked",
    "k1",
    "k2",
    "wide",
    "label-smoothing",
    "weighted-ignore",
    "prob-targets",
    "subnormal",
    "near-zero-lse",
    "ties",
    "axis",
    "many-items",
)

# rows per case, the large class count of the ordinary families, the widest K, and the number
# of items of the reduction stress case. The oracle plus ulp_error cost about 20-60 us per
# logit and function on the 2-core CI machine, which is what bounds "ci" (~7e4 logits a dtype).
_SIZE = {
    "smoke": dict(rows=3, big=100, wide=(1000,), items=50),
    "ci": dict(rows=8, big=1000, wide=(10_000,), items=500),
    "full": dict(rows=48, big=1000, wide=(100_000, 1_000_000), items=20_000),
}

_DTYPES = (np.float64, np.float32, np.float16)  # and bfloat16 (ml_dtypes), see _is_format


def _bfloat16(dt) -> bool:
    return np.dtype(dt).name == "bfloat16" and np.dtype(dt).kind == "V"  # ml_dtypes.bfloat16


def _is_format(dt) -> bool:
    """One of the corpus's formats: float16/32/64 or bfloat16."""
    return np.dtype(dt).type in _DTYPES or _bfloat16(dt)


def _finfo(dt):
    """``numpy.finfo``, or ``ml_dtypes.finfo`` for bfloat16 (NumPy's does not know it)."""
    if _bfloat16(dt):
        import ml_dtypes

        return ml_dtypes.finfo(dt)
    return np.finfo(dt)


def _is_float(a) -> bool:
    return a.dtype.kind == "f" or _bfloat16(a.dtype)


@dataclass(frozen=True)
class Case:
    """One named input of the corpus.

    Attributes
    ----------
    name : str
        Unique within a corpus, ``"<family>/<detail>"``.
    family : str
        One of :data:`FAMILIES`.
    logits : ndarray
        Float array in the case's dtype, shape ``(N, C)`` (or 3-D for the ``axis`` family).
    target : ndarray
        Integer class indices (shape of ``logits`` without ``axis``) or probabilities
        (same shape as ``logits``, same dtype).
    axis : int
        The class axis.
    weight : ndarray or None
        Per-class weights, shape ``(C,)``, in the case's dtype.
    ignore_index : int
    label_smoothing : float
    reduction : str
        The reduction the gradient test differentiates (``"mean"`` or ``"sum"``); the loss
        tests run ``"none"``, ``"mean"`` and ``"sum"`` on every case.
    note : str
        What the case is for (printed by the tests on failure).
    """

    name: str
    family: str
    logits: np.ndarray
    target: np.ndarray
    axis: int = -1
    weight: np.ndarray | None = None
    ignore_index: int = -100
    label_smoothing: float = 0.0
    reduction: str = "mean"
    note: str = field(default="", compare=False)
    z_loss: float = 0.0
    logit_softcap: float | None = None

    @property
    def dtype(self) -> np.dtype:
        return self.logits.dtype

    @property
    def options(self) -> dict:
        """Keyword arguments of ``cross_entropy`` for this case (with its reduction)."""
        return dict(
            axis=self.axis,
            weight=self.weight,
            ignore_index=self.ignore_index,
            reduction=self.reduction,
            label_smoothing=self.label_smoothing,
            # the training options only when set (crossent.corpus.options), so that the plain
            # cases call every implementation exactly as before
            **({"z_loss": self.z_loss} if self.z_loss else {}),
            **({"logit_softcap": self.logit_softcap} if self.logit_softcap is not None else {}),
        )

    def loss_options(self, reduction: str) -> dict:
        """``options`` with the reduction replaced."""
        opts = self.options
        opts["reduction"] = reduction
        return opts

    @property
    def probability_target(self) -> bool:
        return _is_float(self.target)

    @property
    def one_hot(self) -> bool:
        """Integer labels without label smoothing: the gradient is p - onehot, no cancellation."""
        return not self.probability_target and self.label_smoothing == 0.0

    @property
    def n_elements(self) -> int:
        return int(self.logits.size)

    def astype(self, dtype) -> "Case":
        """This case with its float arrays cast to ``dtype`` (see :func:`astype`)."""
        return astype(self, dtype)


def astype(case: Case, dtype) -> Case:
    """``case`` with logits, probability targets and weights cast to ``dtype``.

    The cast rounds to nearest; the result is the exact input of the cast case. Casting a
    float64 case to a narrower format can overflow its offsets to ±inf or flush its gaps:
    :func:`cases` with ``dtype=`` builds the rows from the format's own constants instead,
    and is what the tests use.
    """
    dt = np.dtype(dtype)
    with np.errstate(over="ignore"):
        logits = np.asarray(case.logits).astype(dt)
        target = case.target.astype(dt) if _is_float(case.target) else case.target
        weight = None if case.weight is None else np.asarray(case.weight).astype(dt)
    return replace(case, logits=logits, target=target, weight=weight)


def count_elements(corpus) -> int:
    """Total number of logits in ``corpus`` (the cost of one oracle pass is about linear)."""
    return sum(c.n_elements for c in corpus)


# ---------------------------------------------------------------------------------------
# format constants


@dataclass(frozen=True)
class _Fmt:
    dtype: np.dtype
    under: float  # -log(smallest subnormal): exp(-d) rounds to 0 beyond about this gap
    normal: float  # -log(smallest normal): exp(-d) is subnormal beyond this gap
    offsets: tuple  # magnitudes of the offset family
    exact_int: float  # 2**(p): integers up to here are exact


def _fmt(dtype) -> _Fmt:
    dt = np.dtype(dtype)
    fi = _finfo(dt)
    sub = float(fi.smallest_subnormal)
    if dt == np.float64:
        offsets = (1e3, 1e8, 1e15, 1e50, 1e150, 1e300)
    elif dt == np.float32 or _bfloat16(dt):  # bfloat16: float32's range
        offsets = (1e3, 1e6, 1e10, 1e20, 1e30, 1e38)
    else:
        offsets = (1e1, 1e2, 1e3, 1e4, 3e4)
    return _Fmt(
        dtype=dt,
        under=-math.log(sub),
        normal=-math.log(float(fi.tiny)),
        offsets=offsets,
        exact_int=2.0 ** (fi.nmant + 1),
    )


# ---------------------------------------------------------------------------------------
# helpers


def _rng(seed: int, family: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, FAMILIES.index(family)]))


def _classes(*ks):
    """Distinct class counts in order (the "smoke" size's large K may equal a small one)."""
    return tuple(dict.fromkeys(ks))


def _labels(rng, n, c):
    return rng.integers(0, c, size=n).astype(np.int64)


def _mk(fmt, family, detail, logits, target, note="", **kw) -> Case:
    dt = fmt.dtype
    with np.errstate(over="ignore"):
        x = np.asarray(logits, dtype=np.float64).astype(dt)
        t = np.asarray(target)
        if _is_float(t):
            t = t.astype(dt)
        else:
            t = t.astype(np.int64)
        w = kw.pop("weight", None)
        if w is not None:
            w = np.asarray(w, dtype=np.float64).astype(dt)
    if not np.all(np.isfinite(x) | (x == -np.inf)):
        raise AssertionError(f"corpus case {family}/{detail} has +inf/nan logits in {dt}")
    return Case(f"{family}/{detail}", family, x, t, weight=w, note=note, **kw)


def _confident_gaps(fmt: _Fmt, rng, n_random: int) -> np.ndarray:
    """Gaps d: the contract's loss levels (1e-20, 1e-100, 1e-300), the format's underflow edges,
    and random ones."""
    fixed = [
        math.log(1e20),  # loss ~ 1e-20
        math.log(1e100),  # loss ~ 1e-100
        math.log(1e300),  # loss ~ 1e-300
        700.0,
        fmt.normal * 0.5,
        fmt.normal * 0.9,
        fmt.normal,  # loss at the smallest normal
        0.5 * (fmt.normal + fmt.under),  # loss deep in the subnormals
        fmt.under - 0.5,
        fmt.under + 0.5,  # rounds to 0 or to the smallest subnormal
        fmt.under + 5.0,  # rounds to 0
    ]
    rand = np.exp(rng.uniform(0.0, math.log(fmt.under + 10.0), size=n_random))
    return np.concatenate([np.array(fixed), rand])


# ---------------------------------------------------------------------------------------
# families: each takes (fmt, rng, p) and yields Cases


def _random(fmt, rng, p):
    for c in _classes(3, 10, 100, p["big"]):
        for sigma in (1.0, 8.0):
            n = p["rows"] if c < p["big"] else max(2, p["rows"] // 4)
            x = rng.normal(0.0, sigma, size=(n, c))
            yield _mk(fmt, "random", f"C{c}-sigma{sigma:g}", x, _labels(rng, n, c),
                      "Gaussian logits", reduction="mean" if c != 10 else "sum")


def _confident(fmt, rng, p):
    gaps = _confident_gaps(fmt, rng, p["rows"])
    for c in (2, 10, p["big"]):
        # the wide rows: the three loss levels, the underflow edge, a few random gaps
        gaps_c = gaps if c != p["big"] else np.concatenate([gaps[:3], gaps[9:10], gaps[-2:]])
        n = len(gaps_c)
        top = rng.uniform(-3.0, 3.0, size=n)
        top[: min(4, n)] = 0.0
        y = _labels(rng, n, c)
        x = np.empty((n, c))
        for i in range(n):
            # the others sit d below the label, spread further down (never closer)
            others = top[i] - gaps_c[i] - np.abs(rng.normal(0.0, 2.0, size=c))
            others[0] = top[i] - gaps_c[i]  # exactly d below, at least one of them
            rng.shuffle(others)
            x[i] = others
            x[i, y[i]] = top[i]
        yield _mk(fmt, "confident", f"C{c}", x, y,
                  "label d above the rest: loss ~ (K-1)exp(-d), down to 1e-300 and 0")
    # two-class rows at the three loss levels, one per case so failures name the level
    for level in (20, 100, 300):
        d = level * math.log(10.0)
        x = np.array([[0.0, -d], [d, 0.0], [5.0, 5.0 - d]])
        y = np.array([0, 0, 0])
        yield _mk(fmt, "confident", f"loss-1e-{level}", x, y, f"true loss ~ 1e-{level}",
                  reduction="sum")


def _confident_wrong(fmt, rng, p):
    gaps = _confident_gaps(fmt, rng, p["rows"])
    for c in (2, 10, p["big"]):
        g = gaps if c != p["big"] else np.concatenate([gaps[:3], gaps[9:10], gaps[-2:]])
        n = len(g)
        top = rng.uniform(-3.0, 3.0, size=n)
        x = top[:, None] - np.abs(rng.normal(0.0, 2.0, size=(n, c)))
        arg = rng.integers(0, c, size=n)
        x[np.arange(n), arg] = top
        y = (arg + 1 + rng.integers(0, max(1, c - 1), size=n)) % c
        x[np.arange(n), y] = top - g
        yield _mk(fmt, "confident-wrong", f"C{c}", x, y,
                  "label d below the maximum: loss ~ d, gradient ~ -1 on the label")


def _mixed_scales(fmt, rng, p):
    low = fmt.under * (720.0 / 745.13)  # -720 in float64, the same depth in other formats
    for c in _classes(10, 100, p["big"]):
        n = p["rows"] if c < p["big"] else max(2, p["rows"] // 4)
        top = rng.uniform(-1.0, 1.0, size=n)
        uni = rng.uniform(0.0, low, size=(n, c))
        logu = np.exp(rng.uniform(math.log(1e-3), math.log(low), size=(n, c)))
        for kind, depth in (("uniform", uni), ("loguniform", logu)):
            x = top[:, None] - depth
            arg = rng.integers(0, c, size=n)
            x[np.arange(n), arg] = top
            yield _mk(fmt, "mixed-scales", f"C{c}-{kind}", x, _labels(rng, n, c),
                      "max near 0, others down to -720 (float64)")


def _offset(fmt, rng, p):
    n = p["rows"]
    for c in (5, 50):
        for off in fmt.offsets:
            for sign in (1.0, -1.0):
                o = sign * off
                ulp = float(np.spacing(fmt.dtype.type(abs(o))))
                # spread of order 1 (absorbed when ulp(o) > 1: the row becomes ties)
                x1 = o + rng.normal(0.0, 2.0, size=(n, c))
                # spread of a few ulp(o): distinct floats whatever the offset
                x2 = o + ulp * rng.integers(-8, 9, size=(n, c)).astype(np.float64)
                yield _mk(fmt, "offset", f"C{c}-{o:+.0e}-normal", x1, _labels(rng, n, c),
                          "offset plus N(0,2)", reduction="sum" if sign < 0 else "mean")
                yield _mk(fmt, "offset", f"C{c}-{o:+.0e}-ulps", x2, _labels(rng, n, c),
                          "offset plus a few ulp(offset)")


def _masked(fmt, rng, p):
    n = p["rows"]
    for c in (10, 100):
        x = rng.normal(0.0, 4.0, size=(n, c))
        mask = rng.uniform(size=(n, c)) < 0.5
        keep = rng.integers(0, c, size=n)
        mask[np.arange(n), keep] = False
        x[mask] = -np.inf
        # label on a finite class
        y = np.array([rng.choice(np.flatnonzero(~mask[i])) for i in range(n)])
        yield _mk(fmt, "masked", f"C{c}-half", x, y, "half the classes -inf")
        # a single finite entry per row (softmax exactly one-hot, loss 0)
        x1 = np.full((n, c), -np.inf)
        x1[np.arange(n), keep] = rng.normal(0.0, 4.0, size=n)
        yield _mk(fmt, "masked", f"C{c}-single", x1, keep, "one finite entry per row")
        # confident rows with masks
        x2 = np.where(mask, -np.inf, -rng.uniform(0.5 * fmt.normal, fmt.under, size=(n, c)))
        x2[np.arange(n), keep] = 0.0
        yield _mk(fmt, "masked", f"C{c}-confident", x2, keep,
                  "masked rows with tiny probabilities elsewhere", reduction="sum")


def _k1(fmt, rng, p):
    n = p["rows"]
    vals = np.concatenate([rng.normal(0.0, 10.0, size=n), [0.0, -0.0, 1.0, -1e4],
                           [fmt.offsets[-1], -fmt.offsets[-1]]])
    x = vals[:, None]
    yield _mk(fmt, "k1", "labels", x, np.zeros(len(vals), dtype=np.int64),
              "one class: lse = x, softmax = 1, loss = 0")
    yield _mk(fmt, "k1", "smoothing", x, np.zeros(len(vals), dtype=np.int64),
              "one class with smoothing", label_smoothing=0.3, reduction="sum")


def _k2(fmt, rng, p):
    n = 4 * p["rows"]
    a = rng.normal(0.0, 3.0, size=n)
    delta = np.exp(rng.uniform(math.log(1e-17), math.log(50.0), size=n))
    delta *= rng.choice([-1.0, 1.0], size=n)
    x = np.stack([a, a + delta], axis=1)
    yield _mk(fmt, "k2", "gaps", x, _labels(rng, n, 2), "two classes, gaps 1e-17 to 50")
    big = rng.uniform(0.0, fmt.under + 10.0, size=n)
    x2 = np.stack([np.zeros(n), -big], axis=1)
    yield _mk(fmt, "k2", "deep", x2, _labels(rng, n, 2), "two classes, second down to -under")


def _wide(fmt, rng, p):
    for k in p["wide"]:
        x = rng.normal(0.0, 2.0, size=(1, k))
        yield _mk(fmt, "wide", f"K{k}", x, _labels(rng, 1, k), f"one row of {k} classes")
    k = p["big"]
    x = -rng.uniform(0.0, fmt.under * 0.97, size=(1, k))
    x[0, rng.integers(0, k)] = 0.0
    yield _mk(fmt, "wide", f"K{k}-mixed", x, _labels(rng, 1, k),
              "wide row with mixed scales", reduction="sum")


def _label_smoothing(fmt, rng, p):
    n = p["rows"]
    for eps in (0.05, 0.1, 0.5, 1.0):
        for c in (10, 100):
            x = rng.normal(0.0, 4.0, size=(n, c))
            yield _mk(fmt, "label-smoothing", f"eps{eps:g}-C{c}", x, _labels(rng, n, c),
                      "label smoothing on random logits", label_smoothing=eps,
                      reduction="mean" if c == 10 else "sum")
        # confident rows: smoothing makes the loss large (eps/C * sum of -log p)
        c = 10
        gaps = _confident_gaps(fmt, rng, 2)
        y = _labels(rng, len(gaps), c)
        x = -gaps[:, None] - np.abs(rng.normal(0.0, 1.0, size=(len(gaps), c)))
        x[np.arange(len(gaps)), y] = 0.0
        yield _mk(fmt, "label-smoothing", f"eps{eps:g}-confident", x, y,
                  "label smoothing on confident rows", label_smoothing=eps)


def _weighted_ignore(fmt, rng, p):
    n = 2 * p["rows"]
    for c in (10, 50):
        w = rng.uniform(0.1, 10.0, size=c)
        w[rng.integers(0, c, size=2)] = 0.0
        x = rng.normal(0.0, 4.0, size=(n, c))
        y = _labels(rng, n, c)
        ign = rng.uniform(size=n) < 0.25
        y_m = np.where(ign, -100, y)
        for red in ("mean", "sum"):
            yield _mk(fmt, "weighted-ignore", f"C{c}-w-ign-100-{red}", x, y_m,
                      "weights (two zero) and ignored items", weight=w, reduction=red)
        y_3 = np.where(ign, 3, y)
        yield _mk(fmt, "weighted-ignore", f"C{c}-ign3", x, y_3,
                  "ignore_index an in-range class, no weights", ignore_index=3)
        yield _mk(fmt, "weighted-ignore", f"C{c}-w-smooth", x, y_m,
                  "weights, ignored items and smoothing", weight=w, label_smoothing=0.1)
        # confident rows with weights: tiny per-item losses scaled by the weights
        gaps = _confident_gaps(fmt, rng, 2)
        yc = _labels(rng, len(gaps), c)
        xc = -gaps[:, None] - np.abs(rng.normal(0.0, 1.0, size=(len(gaps), c)))
        xc[np.arange(len(gaps)), yc] = 0.0
        yield _mk(fmt, "weighted-ignore", f"C{c}-w-confident", xc, yc,
                  "weights on confident rows", weight=np.where(w == 0, 1.0, w))


def _prob_targets(fmt, rng, p):
    n = p["rows"]
    for c in (5, 100):
        for alpha in (0.1, 1.0):
            x = rng.normal(0.0, 4.0, size=(n, c))
            t = rng.dirichlet(np.full(c, alpha), size=n)
            t[t < 1e-3] = 0.0  # exact zeros (0 log q = 0)
            t /= t.sum(axis=1, keepdims=True)
            yield _mk(fmt, "prob-targets", f"C{c}-alpha{alpha:g}", x, t,
                      "Dirichlet probability targets")
        # one-hot probability rows on confident logits (loss ~ exp(-d))
        gaps = _confident_gaps(fmt, rng, 2)
        m = len(gaps)
        y = _labels(rng, m, c)
        x = -gaps[:, None] - np.abs(rng.normal(0.0, 1.0, size=(m, c)))
        x[np.arange(m), y] = 0.0
        t = np.zeros((m, c))
        t[np.arange(m), y] = 1.0
        yield _mk(fmt, "prob-targets", f"C{c}-onehot-confident", x, t,
                  "one-hot probability targets on confident rows", reduction="sum")
        w = rng.uniform(0.1, 10.0, size=c)
        x = rng.normal(0.0, 4.0, size=(n, c))
        t = rng.dirichlet(np.full(c, 1.0), size=n)
        yield _mk(fmt, "prob-targets", f"C{c}-weighted-smooth", x, t,
                  "probability targets with weights and smoothing", weight=w,
                  label_smoothing=0.2)


def _subnormal(fmt, rng, p):
    n = 2 * p["rows"]
    t = rng.uniform(fmt.normal - 1.0, fmt.under + 1.0, size=n)
    x = np.stack([np.zeros(n), -t], axis=1)
    yield _mk(fmt, "subnormal", "K2-label-max", x, np.zeros(n, dtype=np.int64),
              "second probability subnormal, loss subnormal")
    yield _mk(fmt, "subnormal", "K2-label-min", x, np.ones(n, dtype=np.int64),
              "second probability subnormal, label on it", reduction="sum")
    c = 50
    x = -rng.uniform(fmt.normal - 1.0, fmt.under + 1.0, size=(n, c))
    arg = rng.integers(0, c, size=n)
    x[np.arange(n), arg] = rng.uniform(-1.0, 1.0, size=n)
    yield _mk(fmt, "subnormal", f"C{c}", x, _labels(rng, n, c),
              "most probabilities subnormal")


def _near_zero_lse(fmt, rng, p):
    n = 2 * p["rows"]
    for c in (2, 10, p["big"]):
        m = n if c < p["big"] else max(2, p["rows"] // 4)
        # equal entries at -log C: lse = 0 up to the rounding of log C
        x = np.full((m, c), -math.log(c)) + rng.normal(0.0, 1e-3, size=(m, c))
        yield _mk(fmt, "near-zero-lse", f"C{c}-uniform", x, _labels(rng, m, c),
                  "logsumexp near 0 (terms cancel)")
        # maximum slightly negative, log1p(sum) of about the same size
        top = -rng.uniform(0.0, 0.6, size=m)
        x = top[:, None] - rng.uniform(1.0, 30.0, size=(m, c))
        x[np.arange(m), rng.integers(0, c, size=m)] = top
        yield _mk(fmt, "near-zero-lse", f"C{c}-top", x, _labels(rng, m, c),
                  "max slightly below 0, logsumexp in (-1/2, 1/2)")


def _ties(fmt, rng, p):
    n = p["rows"]
    for c in (2, 3, 7, p["big"]):
        m = n if c < p["big"] else 2
        v = rng.normal(0.0, 5.0, size=(m, 1))
        yield _mk(fmt, "ties", f"C{c}-equal", np.repeat(v, c, axis=1), _labels(rng, m, c),
                  "all entries equal: softmax 1/C")
    c = 10
    x = rng.normal(0.0, 3.0, size=(n, c))
    top = x.max(axis=1) + 1.0
    i, j = rng.integers(0, c, size=n), rng.integers(0, c, size=n)
    x[np.arange(n), i] = top
    x[np.arange(n), j] = top
    yield _mk(fmt, "ties", "two-max", x, i, "two (or one) maximal entries")


def _axis(fmt, rng, p):
    x = rng.normal(0.0, 5.0, size=(3, 6, 4))
    y = rng.integers(0, 6, size=(3, 4))
    yield _mk(fmt, "axis", "3d-axis1", x, y, "class axis in the middle (N, C, d)", axis=1)
    x = rng.normal(0.0, 5.0, size=(5, 2, 3))
    x[0] -= fmt.under * 0.9
    y = rng.integers(0, 5, size=(2, 3))
    yield _mk(fmt, "axis", "3d-axis0", x, y, "class axis first", axis=0, reduction="sum")
    x = rng.normal(0.0, 5.0, size=(2, 3, 7))
    t = rng.dirichlet(np.ones(3), size=(2, 7)).transpose(0, 2, 1)
    yield _mk(fmt, "axis", "3d-axis1-prob", np.ascontiguousarray(x), np.ascontiguousarray(t),
              "probability targets with the class axis in the middle", axis=1)


def _many_items(fmt, rng, p):
    n, c = p["items"], 10
    gaps = np.exp(rng.uniform(math.log(1e-2), math.log(fmt.under + 5.0), size=n))
    y = _labels(rng, n, c)
    x = -gaps[:, None] - np.abs(rng.normal(0.0, 1.0, size=(n, c)))
    x[np.arange(n), y] = 0.0
    wrong = rng.uniform(size=n) < 0.1  # a few large losses among the tiny ones
    y = np.where(wrong, (y + 1) % c, y)
    case = _mk(fmt, "many-items", f"N{n}", x, y, "losses from 1e-300 to 700 in one reduction")
    yield case
    # the same arrays (not a copy): the softmax-family tests skip it as a duplicate input
    yield replace(case, name=f"many-items/N{n}-sum", note="the same, summed", reduction="sum")


_GENERATORS = {
    "random": _random,
    "confident": _confident,
    "confident-wrong": _confident_wrong,
    "mixed-scales": _mixed_scales,
    "offset": _offset,
    "masked": _masked,
    "k1": _k1,
    "k2": _k2,
    "wide": _wide,
    "label-smoothing": _label_smoothing,
    "weighted-ignore": _weighted_ignore,
    "prob-targets": _prob_targets,
    "subnormal": _subnormal,
    "near-zero-lse": _near_zero_lse,
    "ties": _ties,
    "axis": _axis,
    "many-items": _many_items,
}



def checked_args(size, dtype, families, known) -> tuple:
    """``(dtype, families)`` of a corpus call, after the rules every corpus shares: ``size``
    one of :data:`SIZES`, ``dtype`` a float format, every family one of ``known`` (all of
    them for ``None``); a ValueError naming the argument otherwise."""
    if size not in _SIZE:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    dt = np.dtype(dtype)
    if not _is_format(dt):
        raise ValueError(f"dtype must be float16, bfloat16, float32 or float64, got {dt}")
    fams = tuple(known) if families is None else tuple(families)
    for f in fams:
        if f not in known:
            raise ValueError(f"families: unknown family {f!r}; known: {tuple(known)}")
    return dt, fams

def cases(size: str = "ci", seed: int = 0, dtype=np.float64, families=None) -> list[Case]:
    """The adversarial corpus for the softmax family and the classification loss.

    Parameters
    ----------
    size : {"smoke", "ci", "full"}
        ``"smoke"``: a few rows per family (seconds, for the CLI test). ``"ci"``: the
        precision tests (K up to 1e5). ``"full"``: ``crossent accuracy --size full``
        (more rows, K up to 1e6).
    seed : int
        Seed of the generator; the same (size, seed, dtype) gives the same corpus.
    dtype : {float64, float32, float16, bfloat16}
        The format of the cases (bfloat16: ``ml_dtypes.bfloat16``). The rows are built from the format's constants (underflow
        gaps, largest offsets) and cast to it; the cast arrays are the exact inputs.
    families : iterable of str, optional
        Restrict to these families (default: all of :data:`FAMILIES`).

    Returns
    -------
    list of Case
    """
    dt, fams = checked_args(size, dtype, families, FAMILIES)
    fmt, p = _fmt(dt), _SIZE[size]
    out: list[Case] = []
    for fam in fams:
        out.extend(_GENERATORS[fam](fmt, _rng(seed, fam), p))
    names = [c.name for c in out]
    if len(set(names)) != len(names):  # pragma: no cover - generator bug
        raise AssertionError("duplicate case names in the corpus")
    return out
