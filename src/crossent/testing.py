"""Test a cross-entropy kernel of your own against crossent's oracle, on crossent's adversarial
corpus.

A test of a loss kernel against a dense float64 computation with ``allclose`` cannot see the
errors that matter (a tiny loss rounded to 0, a softmax whose small entries are wrong by
orders of magnitude, an accumulator that drops digits): the reference is itself rounded, the
inputs are ordinary, and the tolerance is relative to the largest entry. This module gives
the tools crossent's own tests use:

- :func:`logits_corpus` and :func:`pmf_corpus`: the adversarial inputs, as named records,
  in families (:data:`FAMILIES` says what each family is designed to catch);
- :func:`measure`: runs an implementation on the corpus, compares every output with the
  correctly rounded oracle :mod:`crossent.reference` in ULPs of the output format, and returns
  a :class:`Report` (max/median ULP, correctly rounded fraction, the worst case, a table per
  family, JSON, a plot);
- :func:`assert_ulp`: the one-line assertion for a pytest test;
- :func:`torch_impl` and :func:`jax_impl`: make a PyTorch or JAX function (the library's own or
  a fused kernel with the same calling convention) measurable.

An *implementation* is called like the crossent function of the same name (see
:data:`FUNCTIONS`): NumPy arrays in and out, crossent's keywords. For ``"cross_entropy"`` that
is ``impl(logits, target, axis=, weight=, ignore_index=, reduction="none",
label_smoothing=)`` and the per-item losses are measured (``reduction="mean"`` or ``"sum"``
measures the reduced loss instead); for ``"cross_entropy_value_and_grad"`` it is the same call
with the case's reduction, returning ``(loss, dlogits)``, and the gradient is measured.

The ULP error of an output is :math:`|c - x| / \\operatorname{ulp}(x)` with :math:`x` the
exact value of the function at the exact input floats (:func:`crossent.ulp_error`); 1/2 means
correctly rounded. The bound a report is compared with is crossent's own for the same function
(:data:`crossent.BOUNDS`), with its conditions: where a bound holds only under a condition
(``logsumexp`` near 0 in float64, the gradient with soft targets, KL where its terms cancel),
the outputs outside the condition are left out of the ULP statistics and judged against the
table's absolute error instead (``Report.summary["max_conditional"]``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from crossent import _measure
from crossent._measure import Unsupported, format_ulp
from crossent._peers import Forms, jax_impl, torch_impl

__all__ = [
    "FAMILIES",
    "FUNCTIONS",
    "Report",
    "Unsupported",
    "Worst",
    "assert_ulp",
    "jax_impl",
    "logits_corpus",
    "measure",
    "pmf_corpus",
    "torch_impl",
]

FUNCTIONS = ("logsumexp", "log_softmax", "softmax", "cross_entropy",
             "cross_entropy_value_and_grad", "entropy", "cross_entropy_pmf", "kl_divergence")
"""The crossent functions an implementation can be measured as."""
_DTYPES = ("float16", "float32", "float64")
_ORACLE_FUNCTIONS = FUNCTIONS + ("empirical_pmf", "categorical_log_likelihood")

_LOGITS_FAMILIES = {
    "random": "Gaussian logits, 3 to 1000 classes: the ordinary case, where a plain formula "
              "error shows first.",
    "confident": "the label's logit d above the rest, so the loss (K-1)e^-d goes down to "
                 "1e-300 and into the subnormals: catches log(softmax) and 1 - p forms that "
                 "round a tiny loss to 0, and accumulators that lose it.",
    "confident-wrong": "the label d below the maximum (loss ~ d, gradient ~ -1 on the "
                       "label): catches exp overflow without the max shift and a gradient "
                       "p - 1 computed from a rounded p.",
    "mixed-scales": "the maximum near 0 and the others down to the format's underflow (-720 "
                    "in float64): catches terms dropped from the sum or flushed too early.",
    "offset": "a common offset up to +-1e300 (float64; +-1e38 float32, +-3e4 float16) with "
              "spreads of order 1 and of a few ulp: catches a missing max shift (exp "
              "overflows) and the rounding error of x - max.",
    "masked": "-inf entries (masking), rows with one finite entry: catches nan from "
              "-inf - (-inf) and masks that leak probability.",
    "k1": "one class (logsumexp = x, softmax = 1, loss = 0 exactly): catches degenerate "
          "normalisation.",
    "k2": "two classes with gaps from 1e-17 to the underflow: catches log(1 + exp(-d)) "
          "without log1p and lost small terms.",
    "wide": "rows of 1e4 classes (1e5 and 1e6 with size='full'): catches summation whose "
            "error grows with K and accumulators narrower than float64.",
    "label-smoothing": "smoothing 0.05 to 1 on random and confident rows: catches smoothing "
                       "formulas that differ (eps/C against eps/(C-1), weights applied "
                       "twice) and the large (eps/C) sum -log p term.",
    "weighted-ignore": "class weights (some zero) and ignored items (ignore_index -100 or an "
                       "in-range class): catches the weighted mean's denominator and ignored "
                       "items that leak into it.",
    "prob-targets": "probability targets (Dirichlet, exact zeros, one-hot rows), with weights "
                    "and smoothing: catches 0 log 0 and soft-target formulas.",
    "subnormal": "rows whose probabilities and losses are subnormal: catches flush-to-zero "
                 "and exp/log that lose accuracy there.",
    "near-zero-lse": "rows whose logsumexp is within 1/2 of 0, where max + log(sum) cancel: "
                     "catches the lost relative accuracy of that sum.",
    "ties": "equal entries (softmax 1/C) and two maxima: catches tie handling of the max.",
    "axis": "3-D inputs with the class axis first or in the middle: catches layout bugs "
            "(the wrong axis reduced, strides).",
    "many-items": "hundreds of items with losses from 1e-300 to 700 in one reduction: "
                  "catches means and sums that drop the small items or accumulate in the "
                  "input's precision.",
}

_PMF_FAMILIES = {
    "perturbed": "q = p(1 + eps z) renormalized, eps down to 1e-8 (1e-15 float64): KL ~ eps^2 "
                 "while H(p,q) - H(p,p) and sum p log(p/q) lose every digit.",
    "ulp-neighbours": "q = p moved by one or two ulps (KL ~ 1e-32): catches any form that "
                      "cancels.",
    "identical": "q = p exactly: KL must be 0 and the cross-entropy equal the entropy.",
    "zeros": "zero masses in p (0 log 0 = 0) and q = 0 < p (+inf): catches nan from 0 log 0 "
             "and missing infinities.",
    "wide": "1000 and 5000 classes (1e5 with size='full'): catches summation error growing "
            "with K.",
    "peaked": "one class 1 - delta, delta down to 1e-300: entropies down to ~1e-297, catches "
              "log(1 - delta) taken of a rounded 1 - delta.",
    "tiny": "masses of 1e-300 and subnormals: catches p log p underflowing or flushed.",
    "far": "independent sparse p and q, ratios p/q up to the format's range: catches "
           "overflow of p/q and the large-ratio branch.",
    "k1": "one class: everything is 0.",
    "k2": "two classes from even to 1 - 2^-52: catches log(1 - a) without log1p.",
    "uniform": "the fair K-sided die (K = 6, 1000, 1024): a sum of equal terms.",
    "bases": "logarithm bases e, 2, 10, 1/2, 3, 1.0001 and 1e6: catches a rounded log(base) "
             "applied twice and the sign of a base below 1.",
    "axis": "3-D inputs with the class axis first or in the middle: catches layout bugs.",
}

FAMILIES = MappingProxyType({"logits": MappingProxyType(_LOGITS_FAMILIES),
                             "pmf": MappingProxyType(_PMF_FAMILIES)})
"""The corpus families, ``{"logits": {name: what it catches}, "pmf": {...}}`` (read-only): the
``logits`` families are the inputs of logsumexp, log_softmax, softmax and the loss, the ``pmf``
families those of entropy, cross_entropy_pmf and kl_divergence."""


# ---------------------------------------------------------------------------------------
# the corpus


def logits_corpus(dtype, *, families=None, size: str = "ci", seed: int = 0) -> list:
    """The adversarial logits of crossent's tests: inputs of the softmax family and the loss.

    Parameters
    ----------
    dtype : {"float16", "float32", "float64"}
        The format of the cases. The rows are built from the format's constants (the gaps
        that make outputs subnormal, the largest offsets) and cast to it: the cast arrays are
        the exact inputs the oracle is evaluated on.
    families : iterable of str, optional
        Names from ``FAMILIES["logits"]`` (default: all).
    size : {"smoke", "ci", "full"}
        ``"smoke"`` a few rows per family (seconds), ``"ci"`` crossent's precision tests,
        ``"full"`` more rows and rows of up to 1e6 classes.
    seed : int
        The same (dtype, size, seed) gives the same cases; each family has its own stream.

    Returns
    -------
    list of crossent.corpus.logits.Case
        Records with ``name`` (``"family/detail"``), ``family``, ``note`` (one line: what the
        case is), the inputs ``logits`` and ``target`` (class indices, or probabilities of
        the logits' shape), and the loss keywords ``axis``, ``weight``, ``ignore_index``,
        ``label_smoothing``, ``reduction`` (``case.options`` as a dict).

    Examples
    --------
    >>> from crossent.testing import logits_corpus
    >>> cases = logits_corpus("float32", families=["confident"], size="smoke")
    >>> cases[0].name, cases[0].logits.dtype
    ('confident/C2', dtype('float32'))
    """
    from crossent.corpus import logits

    return logits.cases(size=size, seed=seed, dtype=_dtype(dtype), families=families)


def pmf_corpus(dtype, *, families=None, size: str = "ci", seed: int = 0, function=None) -> list:
    """The adversarial PMF pairs of crossent's tests: inputs of entropy, cross_entropy_pmf
    and kl_divergence.

    Parameters are those of :func:`logits_corpus` (families from ``FAMILIES["pmf"]``), and
    ``function="entropy"`` for cases whose ``args`` are ``(p,)`` (the ``q`` arrays join as
    further inputs); otherwise ``args == (p, q)``.

    Returns
    -------
    list of crossent.corpus.pmf.Case
        Records with ``name``, ``family``, ``note``, the inputs ``p``, ``q``, ``base``,
        ``axis``, and ``args``/``kwargs`` for the call.

    Examples
    --------
    >>> from crossent.testing import pmf_corpus
    >>> [c.name for c in pmf_corpus("float64", families=["k1", "bases"], size="smoke")][:3]
    ['k1/one', 'bases/e', 'bases/2.0']
    """
    from crossent.corpus import pmf

    return pmf.cases(size=size, seed=seed, dtype=_dtype(dtype), families=families,
                     function=function)


def _dtype(dtype) -> str:
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    return name


# ---------------------------------------------------------------------------------------
# the report


@dataclass(frozen=True, eq=False)
class Worst:
    """The output with the largest ULP error (where its bound's condition holds).

    Attributes
    ----------
    case : Case
        The corpus record (its inputs reproduce the failure).
    index : int
        The output's index in the flattened output of ``function`` on ``case`` (for
        ``"cross_entropy"`` with ``reduction="mean"``/``"sum"``: 0).
    ulp : float
        Its ULP error.
    computed : float
        The implementation's value (rounded to the input's dtype if it returned a wider one).
    exact : str
        The oracle's exact value, to 20 significant digits.
    """

    case: object
    index: int
    ulp: float
    computed: float
    exact: str

    def __str__(self) -> str:
        computed = np.dtype(self.case.dtype).type(self.computed)  # its shortest repr
        return (f"{self.case.name} output {self.index} ({self.case.note}): {format_ulp(self.ulp)} "
                f"ulp, computed {computed}, exact {self.exact}")

    def to_dict(self) -> dict:
        return dict(case=self.case.name, family=self.case.family, note=self.case.note,
                    index=self.index, ulp=_json_float(self.ulp),
                    computed=_json_float(self.computed), exact=self.exact)


@dataclass(eq=False)
class Report:
    """What :func:`measure` found: ULP errors of one implementation of one function on the
    corpus of one dtype.

    Attributes
    ----------
    implementation, function, dtype : str
    summary : dict
        The statistics over every output: ``max_ulp``, ``median_ulp``,
        ``frac_correctly_rounded``, ``n`` (outputs), ``cases``, ``n_conditional`` and
        ``max_conditional`` (outputs outside the bound's condition, and their largest
        absolute error in units of the table's scale), ``bound`` and
        ``min_correctly_rounded`` (crossent's table), ``passed`` (within crossent's bound).
    families : dict
        ``{family: statistics}`` with the same keys, and ``worst_case``.
    cases : list of dict
        Per case: ``name``, ``family``, ``note``, ``n``, ``max_ulp``, ``max_conditional``.
    worst : Worst or None
        The largest error over the outputs within the condition.
    skipped : dict
        ``{case name: reason}`` for cases the implementation cannot express
        (:class:`Unsupported`).
    failed : dict
        ``{case name: error}`` for cases where it raised (with ``on_error="skip"``).
    options : dict
        The measurement's options (``size``, ``seed``, ``reduction``, ``families``).
    """

    implementation: str
    function: str
    dtype: str
    summary: dict
    families: dict
    cases: list
    worst: Worst | None
    skipped: dict = field(default_factory=dict)
    failed: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    # per output, for plot(): ULP error, where the condition holds, log10 |exact|, family
    errors: np.ndarray = field(default=None, repr=False)
    held: np.ndarray = field(default=None, repr=False)
    log10_exact: np.ndarray = field(default=None, repr=False)
    output_family: np.ndarray = field(default=None, repr=False)

    @property
    def max_ulp(self) -> float:
        """The largest ULP error (nan if nothing was measured)."""
        return self.summary["max_ulp"]

    @property
    def median_ulp(self) -> float:
        return self.summary["median_ulp"]

    @property
    def correctly_rounded(self) -> float:
        """The fraction of outputs with an error of at most 1/2 ulp."""
        return self.summary["frac_correctly_rounded"]

    @property
    def passed(self) -> bool:
        """Within crossent's own bound for this function and dtype (and its conditions)."""
        return self.summary["passed"]

    def __repr__(self) -> str:
        s = self.summary
        tail = f"; worst {self.worst}" if self.worst is not None else ""
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return (f"<Report {self.implementation} as {self.function} {self.dtype}: max "
                f"{format_ulp(s['max_ulp'])} ulp, median {format_ulp(s['median_ulp'])}, "
                f"{_pct(s['frac_correctly_rounded'])} correctly rounded over {s['n']} outputs "
                f"of {s['cases']} cases{skipped}{failed}{tail}>")

    __str__ = __repr__

    # -- table -----------------------------------------------------------------------

    def _table_cells(self):
        conditional = any(r["n_conditional"] for r in self.families.values())
        header = ["family", "cases", "outputs", "max ulp", "median ulp", "CR %"]
        if conditional:
            header.append("outside cond.")
        header.append("worst case")
        rows = []
        for fam, r in list(self.families.items()) + [("all", self.summary)]:
            line = [fam, str(r["cases"]), str(r["n"]), format_ulp(r["max_ulp"]),
                    format_ulp(r["median_ulp"]), _pct(r["frac_correctly_rounded"], sign=False)]
            if conditional:
                line.append(f"{r['n_conditional']}: {format_ulp(r['max_conditional'])}"
                            if r["n_conditional"] else "-")
            worst = r.get("worst_case")
            if fam == "all" and self.worst is not None:
                worst = self.worst.case.name
            line.append(worst or "-")
            rows.append(line)
        return header, rows

    def _caption(self) -> str:
        s = self.summary
        bound = f"{format_ulp(s['bound'])} ulp" + (" (conditional)" if s["n_conditional"] else "")
        parts = [f"{self.implementation} as crossent.{self.function}, {self.dtype}: ULP errors "
                 f"against crossent.reference on the adversarial corpus "
                 f"(size {self.options.get('size', '?')!r}); crossent's bound {bound}"]
        if s["n_conditional"]:
            parts.append("outside cond.: outputs outside the bound's condition, and their "
                         "largest absolute error in units of the table's scale")
        if self.skipped:
            parts.append(f"{len(self.skipped)} cases skipped (not expressible: "
                         f"{_first(self.skipped)})")
        if self.failed:
            parts.append(f"{len(self.failed)} cases raised ({_first(self.failed)})")
        return "; ".join(parts) + "."

    def table(self, format: str = "text"):
        """The statistics per family, and over all outputs.

        Parameters
        ----------
        format : {"text", "markdown", "rich"}
            ``"text"``: aligned columns (a str); ``"markdown"``: a Markdown table (a str);
            ``"rich"``: a ``rich.table.Table`` (needs rich: ``pip install
            'crossent[testing]'``).
        """
        header, rows = self._table_cells()
        if format == "rich":
            try:
                from rich.table import Table
            except ImportError as exc:
                raise ImportError("Report.table('rich') needs rich: "
                                  "pip install 'crossent[testing]'") from exc
            t = Table(title=f"{self.implementation} as {self.function}, {self.dtype}",
                      caption=self._caption())
            for h in header:
                t.add_column(h, justify="left" if h in ("family", "worst case") else "right")
            for line in rows:
                t.add_row(*line, end_section=line is rows[-2])
            return t
        if format == "markdown":
            out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in line) + " |"
                    for line in rows]
            return "\n".join(out) + "\n\n" + self._caption()
        if format != "text":
            raise ValueError(f"format: one of 'text', 'markdown', 'rich', got {format!r}")
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
        lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in rows]
        return "\n".join(lines) + "\n" + self._caption()

    # -- JSON ------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """Everything but the per-output arrays, with non-finite numbers as strings."""
        from crossent import __version__

        return _jsonable(dict(
            implementation=self.implementation, function=self.function, dtype=self.dtype,
            options=self.options, summary=self.summary, families=self.families,
            cases=self.cases, worst=None if self.worst is None else self.worst.to_dict(),
            skipped=self.skipped, failed=self.failed, crossent=__version__,
        ))

    def to_json(self, path=None, indent: int = 1) -> str:
        """The report as JSON (``inf``/``nan`` as the strings ``"inf"``/``"nan"``); also
        written to ``path`` if given."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text + "\n")
        return text

    # -- plot ------------------------------------------------------------------------

    def plot(self, path, *, families=None, title: str | None = None):
        """ULP error of every output against its exact value, one marker per family.

        The x axis is ``log10 |exact value|``: the parameter every family shares, and the
        one the adversarial families move (a confident row's loss is about
        :math:`(K-1)e^{-d}` for the gap :math:`d`; a perturbed PMF's KL is about
        :math:`\\varepsilon^2`). The y axis is symlog (linear below 1 ulp); the dotted line
        is 1/2 ulp (correctly rounded), the dashed one crossent's bound. Exact values below the
        format's smallest subnormal are drawn at the left edge; outputs whose exact value is
        0 or not finite have no place on the axis and are left out.

        Parameters
        ----------
        path : str or path-like
            Where to write the figure (the format from the suffix: .png, .svg, .pdf).
        families : iterable of str, optional
            Only these families (default: all measured).
        title : str, optional

        Returns
        -------
        path
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError("Report.plot needs matplotlib: "
                              "pip install 'crossent[testing]'") from exc
        names = list(self.families)
        wanted = names if families is None else [f for f in families if f in names]
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        markers = "o^sDvx<>p*h+"
        fi = np.finfo(self.dtype)
        lo = math.log10(float(fi.smallest_subnormal)) - 1.0
        x, y = np.maximum(self.log10_exact, lo), self.errors
        ok = np.isfinite(x) & self.held
        for k, fam in enumerate(wanted):
            sel = ok & (self.output_family == names.index(fam))
            if not sel.any():
                continue
            yy = np.where(np.isfinite(y[sel]), y[sel], np.nan)
            ax.plot(x[sel], yy, markers[k % len(markers)], ms=3, alpha=0.7, linestyle="none",
                    label=fam, markerfacecolor="none")
        ax.set_yscale("symlog", linthresh=1.0)
        ax.axhline(0.5, color="grey", lw=0.8, ls=":")
        b = self.summary["bound"]
        if b is not None and math.isfinite(b):
            ax.axhline(b, color="grey", lw=0.8, ls="--")
        ax.set_xlabel("log10 |exact value|")
        ax.set_ylabel("ULP error (symlog)")
        ax.set_title(title or f"{self.implementation} as {self.function}, {self.dtype}",
                     fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best", ncol=2)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        return path


def _pct(v, sign=True) -> str:
    if v is None or math.isnan(v):
        return "-"
    return f"{100 * v:.2f}" + ("%" if sign else "")


def _first(d: dict) -> str:
    name, why = next(iter(d.items()))
    return f"e.g. {name}: {why}"[:160]


def _json_float(v):
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else ("nan" if math.isnan(v) else
                                           ("inf" if v > 0 else "-inf"))
    return v


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    return _json_float(obj)


# ---------------------------------------------------------------------------------------
# measure


#: public function -> (the measurement library's name, the attribute impl stands for)
_INTERNAL = {f: (f, f) for f in FUNCTIONS}
_INTERNAL["cross_entropy_value_and_grad"] = ("cross_entropy_grad",
                                             "cross_entropy_value_and_grad")
_OPTIONS = ("size", "seed", "reduction", "on_error", "name")

# oracle values of recent cases: measuring several implementations on one corpus computes
# them once. Bounded by the number of values held (an mpf is about 100 bytes).
_EXACT: OrderedDict = OrderedDict()
_EXACT_LIMIT = 400_000
_exact_held = 0


def _case_key(function, reductions, case) -> tuple:
    """A key for the oracle values of ``case``: its name and a digest of its inputs."""
    h = hashlib.sha1()
    if hasattr(case, "p"):  # a PMF case
        arrays, scalars = (case.p, case.q), (case.base, case.axis, case.function)
    else:
        arrays = (case.logits, case.target, case.weight)
        scalars = (case.axis, case.ignore_index, case.label_smoothing, case.reduction)
    for a in arrays:
        if a is not None:
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    h.update(repr(scalars).encode())
    return (function, tuple(reductions), case.name, h.hexdigest())


def _exact(function, case, reductions):
    global _exact_held
    key = _case_key(function, reductions, case)
    hit = _EXACT.get(key)
    if hit is not None:
        _EXACT.move_to_end(key)
        return hit
    exact = _measure.exact_values(function, case, reductions)
    _EXACT[key] = exact
    _exact_held += exact.size
    while _exact_held > _EXACT_LIMIT and len(_EXACT) > 1:
        _k, old = _EXACT.popitem(last=False)
        _exact_held -= old.size
    return exact


def _corpus_for(function, dtype, corpus, families, size, seed) -> list:
    pmf_function = function in _measure.PMF_FUNCTIONS
    if corpus is None:
        if pmf_function:
            cases = pmf_corpus(dtype, families=families, size=size, seed=seed,
                               function=function)
        else:
            cases = logits_corpus(dtype, families=families, size=size, seed=seed)
    else:
        cases = list(corpus)
        if families is not None:
            fams = set(families)
            cases = [c for c in cases if c.family in fams]
    out = []
    for c in cases:
        is_pmf = hasattr(c, "p")
        if is_pmf != pmf_function:
            kind = "pmf_corpus" if pmf_function else "logits_corpus"
            raise ValueError(f"corpus: {function} is measured on {kind}() cases, got {c.name}")
        if np.dtype(c.dtype).name != dtype:
            raise ValueError(f"corpus: case {c.name} is {np.dtype(c.dtype).name}, "
                             f"not {dtype}")
        if is_pmf and function == "entropy" and c.function != "entropy":
            c = dataclasses.replace(c, function="entropy")
        elif is_pmf and function != "entropy" and c.function == "entropy":
            raise ValueError(f"corpus: case {c.name} was made for entropy (one PMF)")
        out.append(c)
    if function in _measure.SOFTMAX_FUNCTIONS:
        out = _measure.distinct_inputs(out)
    return out


def _log10_abs(exact) -> np.ndarray:
    """log10 |x| of each mpf (nan for non-finite values, -inf for 0), without mpmath calls."""
    out = np.full(len(exact), np.nan)
    for i, e in enumerate(exact):
        t = getattr(e, "_mpf_", None)
        if t is None:
            continue
        _sign, man, exp, _bc = t
        if man:
            out[i] = (math.log2(man) + exp) * math.log10(2.0)
        elif exp == 0:  # mpmath's zero is (0, 0, 0, 0); inf and nan have a nonzero exp
            out[i] = -math.inf
    return out


def _impl_name(impl) -> str:
    name = getattr(impl, "name", None)
    if isinstance(name, str):
        return name
    mod = getattr(impl, "__module__", None)
    qual = getattr(impl, "__qualname__", None) or getattr(impl, "__name__", None)
    if qual is None:
        return type(impl).__name__
    return f"{mod}.{qual}" if mod and mod != "__main__" else qual


def measure(impl, function: str, dtype, *, corpus=None, families=None, **options) -> Report:
    """Measure ``impl`` as the crossent function ``function`` on the adversarial corpus.

    Every case is run through ``impl`` and every output compared with the exact value that
    :mod:`crossent.reference` computes from the same input floats, in ULPs of ``dtype``.

    Parameters
    ----------
    impl : callable
        Called like ``crossent.<function>``, NumPy arrays in and out (see the module's
        description; :func:`torch_impl` and :func:`jax_impl` wrap PyTorch and JAX functions).
        It may raise :class:`Unsupported` for a case it cannot express (the case is listed
        in ``Report.skipped``). An output of a wider dtype is judged after rounding it to
        ``dtype`` (and ``summary["passed"]`` is then False).
    function : str
        One of :data:`FUNCTIONS`.
    dtype : {"float16", "float32", "float64"}
        The format of the inputs, in whose ULPs the outputs are judged.
    corpus : iterable of cases, optional
        Cases of :func:`logits_corpus` (softmax family, loss) or :func:`pmf_corpus` (PMF
        functions) of ``dtype``. Default: that corpus with ``families``, ``size``, ``seed``.
    families : iterable of str, optional
        Only these families (names from :data:`FAMILIES`).
    **options
        ``size`` (``"ci"``; or ``"smoke"``, ``"full"``) and ``seed`` (0) of the default
        corpus; ``reduction``: for ``"cross_entropy"``, ``"none"`` (default: the per-item
        losses), ``"mean"`` or ``"sum"``; for ``"cross_entropy_value_and_grad"``, ``"mean"``
        or ``"sum"`` instead of each case's own; ``on_error``: ``"raise"`` (default: an
        exception of ``impl`` propagates, with the case's name in a note) or ``"skip"``
        (listed in ``Report.failed``); ``name``: the implementation's name in the report.

    Returns
    -------
    Report

    Examples
    --------
    >>> import crossent
    >>> from crossent.testing import measure
    >>> r = measure(crossent.cross_entropy, "cross_entropy", "float32",
    ...             families=["confident"], size="smoke")
    >>> r.max_ulp <= 0.5, r.correctly_rounded
    (True, 1.0)
    """
    unknown = set(options) - set(_OPTIONS)
    if unknown:
        raise TypeError(f"measure() got unexpected options {sorted(unknown)}; "
                        f"known: {_OPTIONS}")
    if function not in FUNCTIONS:
        raise ValueError(f"function: one of {FUNCTIONS}, got {function!r}")
    if not callable(impl):
        raise TypeError(f"impl: a callable, got {type(impl).__name__}")
    dtype = _dtype(dtype)
    size, seed = options.get("size", "ci"), options.get("seed", 0)
    on_error = options.get("on_error", "raise")
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error: 'raise' or 'skip', got {on_error!r}")
    reduction = options.get("reduction")
    internal, attr = _INTERNAL[function]
    reductions = _measure._REDUCTIONS
    override = None
    if function == "cross_entropy":
        reduction = "none" if reduction is None else reduction
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"reduction: 'none', 'mean' or 'sum', got {reduction!r}")
        if reduction != "none":
            internal, reductions = "cross_entropy_mean", (reduction,)
    elif function == "cross_entropy_value_and_grad":
        if reduction not in (None, "mean", "sum"):
            raise ValueError(f"reduction: 'mean' or 'sum', got {reduction!r}")
        override = reduction
    elif reduction is not None:
        raise TypeError(f"reduction: {function} has no reduction")
    families = None if families is None else tuple(families)
    cases = _corpus_for(function, dtype, corpus, families, size, seed)
    if override is not None:
        cases = [dataclasses.replace(c, reduction=override) for c in cases]
    name = options.get("name") or _impl_name(impl)
    wrapped = Forms(**{attr: impl})

    ms, kept, skipped, failed = [], [], {}, {}
    for case in cases:
        exact = _exact(internal, case, reductions)
        try:
            m = _measure.measure(wrapped, internal, case, exact=exact, reductions=reductions)
        except Unsupported as exc:
            skipped[case.name] = str(exc) or type(exc).__name__
            continue
        except Exception as exc:
            if on_error == "raise":
                exc.add_note(f"crossent.testing.measure: {name} as {function} on case "
                             f"{case.name} ({case.note})")
                raise
            failed[case.name] = f"{type(exc).__name__}: {exc}"[:200]
            continue
        ms.append(m)
        kept.append((case, exact))

    summary = _measure.summarize(ms, internal, dtype, implementation=name)
    fam_names = list(dict.fromkeys(c.family for c, _e in kept))
    by_family = {}
    for fam in fam_names:
        fm = [m for m, (c, _e) in zip(ms, kept) if c.family == fam]
        row = _measure.summarize(fm, internal, dtype, implementation=name)
        worst_m = max(fm, key=lambda m: m.max_ulp if m.held.any() else -1.0)
        row["worst_case"] = worst_m.case if worst_m.held.any() else None
        by_family[fam] = row
    per_case = [dict(name=c.name, family=c.family, note=c.note, n=int(m.errors.size),
                     max_ulp=m.max_ulp, max_conditional=m.max_alt)
                for m, (c, _e) in zip(ms, kept)]
    worst = None
    best = -1.0
    for m, (c, e) in zip(ms, kept):
        if m.held.any() and m.max_ulp > best:
            i = int(np.flatnonzero(m.held)[np.argmax(m.errors[m.held])])
            best = m.max_ulp
            worst = (c, e, m, i)
    if worst is not None:
        c, e, m, i = worst
        worst = Worst(case=c, index=i, ulp=float(m.errors[i]), computed=m.computed[i].item(),
                      exact=_nstr(e[i]))
    fam_index = {f: k for k, f in enumerate(fam_names)}
    return Report(
        implementation=name, function=function, dtype=dtype, summary=summary,
        families=by_family, cases=per_case, worst=worst, skipped=skipped, failed=failed,
        options=dict(size=size if corpus is None else "given", seed=seed,
                     reduction=reduction, families=families),
        errors=np.concatenate([m.errors for m in ms]) if ms else np.empty(0),
        held=np.concatenate([m.held for m in ms]) if ms else np.empty(0, bool),
        log10_exact=(np.concatenate([_log10_abs(e) for _c, e in kept]) if kept
                     else np.empty(0)),
        output_family=(np.concatenate([np.full(m.errors.size, fam_index[c.family], np.int16)
                                       for m, (c, _e) in zip(ms, kept)]) if ms
                       else np.empty(0, np.int16)),
    )


def _nstr(e) -> str:
    import mpmath

    if isinstance(e, mpmath.mpf):
        return mpmath.nstr(e, 20, min_fixed=-4, max_fixed=6)
    return repr(e)


# ---------------------------------------------------------------------------------------
# assert_ulp


def assert_ulp(computed, function: str, *args, max_ulp: float = 1.0, **kwargs) -> None:
    """Assert that ``computed`` is within ``max_ulp`` ULPs of ``crossent.<function>(*args,
    **kwargs)`` computed exactly.

    The exact value comes from :mod:`crossent.reference` (``exact=True``, the value of the
    function at the exact input floats, unrounded); the error is measured in ULPs of
    ``computed``'s format (:func:`crossent.ulp_error`): 1/2 is correctly rounded.

    Parameters
    ----------
    computed : array_like of float, or a tuple of them
        The values to check, of the shape of the function's result (for
        ``"cross_entropy_value_and_grad"``: ``(loss, dlogits)``, both checked). Tensors
        convertible by ``numpy.asarray`` are accepted.
    function : str
        The crossent function whose exact value ``computed`` approximates (one of
        ``crossent.testing.FUNCTIONS``, ``"empirical_pmf"``, ``"categorical_log_likelihood"``).
    *args, **kwargs
        Its arguments, as crossent takes them (NumPy arrays).
    max_ulp : float
        The largest error allowed, in ULPs.

    Raises
    ------
    AssertionError
        When an output exceeds ``max_ulp`` (or the shapes differ): the message gives how many
        outputs exceed it, the worst index, its ULP error and the computed and exact values.

    Notes
    -----
    A bound in ULPs is a relative bound, so it also applies where the value is tiny (a loss of
    :math:`10^{-30}` must be right to the last bits). Where a function's value cancels
    (``logsumexp`` near 0, KL where ``p`` is close to ``q``) no algorithm that rounds its
    inputs' pieces can meet a small ULP bound; crossent's own bounds (``crossent.BOUNDS``)
    state those conditions.

    Examples
    --------
    >>> import numpy as np
    >>> from crossent.testing import assert_ulp
    >>> x = np.array([[0.0, -50.0, -60.0]])
    >>> y = np.array([0])
    >>> naive = -np.log(np.exp(x) / np.exp(x).sum(axis=1, keepdims=True))[:, 0]
    >>> assert_ulp(naive, "cross_entropy", x, y, reduction="none")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    AssertionError: cross_entropy (float64): 1 of 1 outputs exceed 1 ulp; worst at index (0,): ...
    """
    from crossent import reference

    __tracebackhide__ = True  # pytest shows the caller's line, not this function's
    if function not in _ORACLE_FUNCTIONS:
        raise ValueError(f"function: one of {_ORACLE_FUNCTIONS}, got {function!r}")
    exact = getattr(reference, function)(*args, exact=True, **kwargs)
    if isinstance(exact, tuple):
        if not isinstance(computed, (tuple, list)) or len(computed) != len(exact):
            raise AssertionError(f"{function} returns {len(exact)} values; computed is not "
                                 f"a tuple of {len(exact)}")
        pairs = [(c, e, f"{function} output {k}") for k, (c, e) in
                 enumerate(zip(computed, exact))]
    else:
        pairs = [(computed, exact, function)]
    problems = [msg for c, e, label in pairs
                if (msg := _ulp_problem(c, e, label, max_ulp)) is not None]
    if problems:
        raise AssertionError("\n".join(problems))


def _ulp_problem(computed, exact, label: str, max_ulp: float) -> str | None:
    from crossent.ulp import ulp_error

    c = np.asarray(computed)
    if c.dtype.kind != "f":
        raise TypeError(f"computed: floating-point values, got dtype {c.dtype}")
    e = np.empty(np.shape(exact), dtype=object)
    e[...] = exact
    if c.shape != e.shape:
        return f"{label}: computed has shape {c.shape}, the exact result {e.shape}"
    dtype = c.dtype.name
    flat_e = _measure._tame(e.reshape(-1), dtype)
    flat_c = c.reshape(-1)
    errs = np.asarray(ulp_error(flat_c, flat_e, dtype), dtype=np.float64).reshape(-1)
    bad = np.flatnonzero(~(errs <= max_ulp))
    if not bad.size:
        return None
    order = bad[np.argsort(-errs[bad], kind="stable")]

    def where(i):
        idx = np.unravel_index(i, c.shape) if c.shape else ()
        return (f"index {tuple(int(k) for k in idx)}: {format_ulp(errs[i], digits=4)} ulp, computed "
                f"{flat_c[i]!s}, exact {_nstr(flat_e[i])}")

    lines = [f"{label} ({dtype}): {bad.size} of {errs.size} outputs exceed {max_ulp:g} ulp; "
             f"worst at {where(order[0])}"]
    lines += [f"  next at {where(i)}" for i in order[1:3]]
    return "\n".join(lines)

