"""Step-asserting machinery shared by the proof scripts in ``proofs/``.

A proof script builds a :class:`Derivation`, adds one step per line of the argument, and calls
:meth:`Derivation.run`. Every step that claims something is checked by SymPy when it is added:

``eq(name, lhs, rhs)``
    ``lhs == rhs``: the residual ``lhs - rhs`` must simplify to exactly ``0`` under the
    assumptions declared on the symbols (see :func:`proves_equal` for the rewrites tried).
``nonneg(name, expr)`` / ``positive(name, expr)``
    SymPy's assumption system must conclude ``expr >= 0`` (``> 0``); a ``Sum`` is accepted when
    its summand is (a sum of nonnegative terms over a finite range is nonnegative).
``holds(name, statement)``
    a SymPy boolean (an equation, a set equality, ...) that must evaluate to ``True``.
``each_K(name, check, Ks)``
    a check repeated for explicit sizes ``K`` (``check(K)`` returns pairs ``(lhs, rhs)``, or
    booleans); the step passes only if every instance does.

Steps that are cited rather than checked (a named theorem, a definition) are added with
:meth:`Derivation.define` or :meth:`Derivation.cite`: they are printed, marked as such, and
never counted as proven. A step that raises is recorded as failed with the exception text, so a
script never stops half way without saying which step broke.

Nothing here evaluates an expression numerically: a residual that SymPy cannot reduce to ``0``
is a failed step, never a "probably zero".

Output formats: plain text (default), Markdown with LaTeX (``--markdown`` on the command line,
or ``CROSSENT_PROOF_FORMAT=markdown`` in the environment; this is what ``crossent prove --format
markdown`` uses) and JSON (``--json`` / ``CROSSENT_PROOF_FORMAT=json``). The last line of every
format carries a machine-readable summary that ``crossent prove`` reads (see :data:`SUMMARY_TAG`).
Exit status of :meth:`Derivation.run`: 0 when every checked step passed, 1 otherwise.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import sympy as sp

__all__ = [
    "Derivation",
    "Step",
    "check_step",
    "proves_equal",
    "proves_nonneg",
    "proves_positive",
    "SUMMARY_TAG",
    "MARKDOWN_MARKER",
]

#: prefix of the machine-readable summary line (JSON follows it on the same line)
SUMMARY_TAG = "crossent-proof-summary:"
#: first line of the Markdown output, so that a runner can tell Markdown from plain text
MARKDOWN_MARKER = "<!-- crossent-proof: markdown -->"

PASS, FAIL, CITED = "PASS", "FAIL", "CITED"


# --------------------------------------------------------------------------------------------
# the decision procedures
# --------------------------------------------------------------------------------------------


def _rename_bound(s: sp.Sum) -> sp.Sum:
    """Alpha-rename the indices of a sum to names derived from its own content.

    Two sums that differ only in the names of their indices get the same names, so they
    compare equal. The name is a hash of the summand and limits with the index replaced by a
    placeholder, so an inner sum (whose content is strictly smaller) never receives the name
    of an enclosing one: no capture.
    """
    import hashlib

    mapping = {}
    limits = []
    body = s.function
    for pos, (var, lo, hi) in enumerate(s.limits):
        placeholder = sp.Symbol(f"_placeholder{pos}", **var.assumptions0)
        lo, hi = lo.xreplace(mapping), hi.xreplace(mapping)
        mapping[var] = placeholder
        limits.append((placeholder, lo, hi))
    body = body.xreplace(mapping)
    key = hashlib.sha1(sp.srepr((body, tuple(limits))).encode()).hexdigest()[:10]
    final = {ph: sp.Symbol(f"_i{key}_{pos}", **ph.assumptions0) for pos, (ph, _, _) in enumerate(limits)}
    return sp.Sum(body.xreplace(final), *[(final[v], lo.xreplace(final), hi.xreplace(final)) for v, lo, hi in limits])


def _refine_in_range(s: sp.Sum) -> sp.Sum:
    """Refine a summand with the facts lo <= index <= hi (it is only evaluated there)."""
    facts = sp.true
    for var, lo, hi in s.limits:
        facts = facts & sp.Q.ge(var, lo) & sp.Q.le(var, hi)
    return sp.Sum(sp.refine(s.function, facts), *s.limits)


def _canon_sums(expr):
    """Normal form for expressions with finite sums.

    Sound rewrites for finite sums: a power Sum**n (n = 2..4) becomes a product of copies with
    fresh indices; a product of sums becomes one multiple sum (distributivity); a factor that
    does not involve a sum's index moves inside it; nested sums become one multiple sum; the
    indices of a multiple sum whose bounds do not depend on one another are sorted (finite
    sums commute); a summand is refined with lo <= index <= hi; indices are alpha-renamed
    canonically (:func:`_rename_bound`).
    """

    def power(e):
        base, ex = e.args
        if isinstance(base, sp.Sum) and ex.is_Integer and 2 <= ex <= 4:
            copies = []
            for _ in range(int(ex)):
                fresh = {v: sp.Dummy(v.name, **v.assumptions0) for v in base.variables}
                copies.append(base.xreplace(fresh))
            return sp.Mul(*copies, evaluate=False)
        return e

    def inward(m):
        sums = [a for a in m.args if isinstance(a, sp.Sum)]
        if not sums:
            return m
        others = [a for a in m.args if not isinstance(a, sp.Sum)]
        body, limits, used = sp.Mul(*others), [], set(sp.Mul(*others).free_symbols)
        for sm in sums:
            if set(sm.variables) & used:
                fresh = {v: sp.Dummy(v.name, **v.assumptions0) for v in sm.variables}
                sm = sm.xreplace(fresh)
            used |= set(sm.variables) | sm.free_symbols
            body = body * sm.function
            limits += list(sm.limits)
        return sp.Sum(body, *limits)

    def flatten(s):
        f, limits = s.function, list(s.limits)
        while isinstance(f, sp.Sum):
            limits = list(f.limits) + limits
            f = f.function
        variables = {lim[0] for lim in limits}
        if not any((lim[1].free_symbols | lim[2].free_symbols) & variables for lim in limits):
            limits.sort(key=lambda lim: sp.default_sort_key(lim[0]))
        return _rename_bound(_refine_in_range(sp.Sum(f, *limits)))

    def independent(limits):
        variables = {lim[0] for lim in limits}
        return not any((lim[1].free_symbols | lim[2].free_symbols) & variables for lim in limits)

    def range_key(lim):
        var, lo, hi = lim
        return (sp.srepr(lo), sp.srepr(hi), tuple(sorted(var.assumptions0.items())))

    def merge(add):
        # Σ_i f(i) + Σ_j g(j) = Σ_i (f(i) + g(i)) when the index ranges match (alpha-renaming
        # j -> i; independent bounds, so any matching of equal ranges is valid)
        groups, others = {}, []
        for term in add.args:
            if isinstance(term, sp.Sum) and independent(term.limits):
                key = tuple(sorted(range_key(lim) for lim in term.limits))
                groups.setdefault(key, []).append(term)
            else:
                others.append(term)
        if all(len(g) == 1 for g in groups.values()):
            return add
        merged = []
        for terms in groups.values():
            first, body = terms[0], terms[0].function
            for other in terms[1:]:
                free = list(first.limits)
                mapping = {}
                for lim in other.limits:
                    match = next(f for f in free if range_key(f) == range_key(lim))
                    free.remove(match)
                    mapping[lim[0]] = match[0]
                body = body + other.function.xreplace(mapping)
            body = sp.expand(body)
            merged.append(sp.S.Zero if body == 0 else sp.Sum(body, *first.limits))
        return sp.Add(*others, *merged)

    for _ in range(8):
        new = expr.replace(lambda e: isinstance(e, sp.Pow) and isinstance(e.args[0], sp.Sum), power)
        new = new.replace(lambda e: isinstance(e, sp.Mul) and e.has(sp.Sum), inward)
        new = new.replace(lambda e: isinstance(e, sp.Sum), flatten)
        new = sp.expand(new)
        new = new.replace(lambda e: isinstance(e, sp.Add) and e.has(sp.Sum), merge)
        if new == expr:
            break
        expr = new
    return expr


def _evaluated(expr, assume):
    d = expr
    for _ in range(3):  # Derivative.doit() can return unevaluated Sums: evaluate again
        d, prev = d.doit(), d
        if d == prev:
            break
    return sp.refine(d, assume) if assume is not None else d


def _candidates(expr: sp.Expr, assume=None) -> list[Callable[[], sp.Expr]]:
    """Rewritings of ``expr`` that are equal to it under the symbols' assumptions, cheapest first.

    Each is a sound SymPy rewrite (no ``force=True``): ``expand_log`` only splits logarithms
    whose arguments SymPy knows to be positive, ``cancel`` works on rational functions,
    ``doit`` evaluates sums/products/derivatives that have a closed form, and
    :func:`_canon_sums` applies the rules of finite sums.
    """
    if assume is not None:
        expr = sp.refine(expr, assume)
    out = [
        lambda: expr,
        lambda: sp.expand(expr),
        lambda: sp.cancel(sp.together(expr)),
    ]
    if expr.has(sp.Sum):
        out += [lambda: expr.replace(lambda e: isinstance(e, sp.Sum), _rename_bound)]
        out += [lambda: _canon_sums(sp.expand(expr)), lambda: sp.simplify(_canon_sums(sp.expand(expr)))]
    if expr.has(sp.Sum, sp.Product, sp.Derivative, sp.Integral, sp.Subs, sp.Limit):
        out += [
            lambda: _canon_sums(sp.expand(_evaluated(expr, assume))),
            lambda: sp.simplify(_evaluated(expr, assume)),
            lambda: sp.simplify(_canon_sums(sp.expand(sp.expand_log(_evaluated(expr, assume))))),
        ]
    out += [
        lambda: sp.simplify(expr),
        lambda: sp.simplify(sp.expand(sp.expand_log(expr))),
        lambda: sp.cancel(sp.together(sp.expand(sp.powsimp(sp.expand_log(sp.simplify(expr)), force=False)))),
    ]
    return out


def _is_zero(expr, assume=None) -> bool:
    expr = sp.sympify(expr)
    for rewrite in _candidates(expr, assume):
        try:
            c = rewrite()
        except Exception:  # a rewrite that SymPy cannot perform proves nothing; try the next
            continue
        if c == 0:
            return True
        if isinstance(c, sp.MatrixBase) and c.is_zero_matrix:
            return True
    return False


def proves_equal(lhs, rhs, assume=None) -> bool:
    """True when SymPy reduces ``lhs - rhs`` to exactly 0 (matrices: entrywise).

    ``assume`` is an optional SymPy ``Q`` predicate (e.g. ``Q.le(x, K)``) applied with
    ``sp.refine`` to the residual and to its evaluated form.
    """
    lhs, rhs = sp.sympify(lhs), sp.sympify(rhs)
    if isinstance(lhs, sp.Tuple) or isinstance(rhs, sp.Tuple):
        if not (isinstance(lhs, sp.Tuple) and isinstance(rhs, sp.Tuple)) or len(lhs) != len(rhs):
            return False
        return all(proves_equal(a, b, assume) for a, b in zip(lhs, rhs))
    if isinstance(lhs, sp.MatrixBase) or isinstance(rhs, sp.MatrixBase):
        if lhs.shape != rhs.shape:
            return False
        return all(_is_zero(a - b, assume) for a, b in zip(lhs, rhs))
    if lhs == rhs:
        return True
    return _is_zero(lhs - rhs, assume)


def check_step(name: str, lhs, rhs) -> bool:
    """Check one equality step on its own (no derivation needed); True when it is proven."""
    try:
        return proves_equal(lhs, rhs)
    except Exception:  # a step that SymPy cannot even evaluate is not proven
        return False


def _sign_fact(expr, attr: str) -> bool:
    expr = sp.sympify(expr)
    if isinstance(expr, sp.Sum):
        # a sum over a finite index range of terms that are all >= 0 (> 0) is >= 0; it is > 0
        # when, in addition, every range is non-empty (upper - lower >= 0 by the assumptions)
        if attr == "is_positive":
            for _var, lo, hi in expr.limits:
                if sp.simplify(hi - lo).is_nonnegative is not True:
                    return False
        return _sign_fact(expr.function, attr)
    for c in (expr, sp.simplify(expr), sp.factor(expr)):
        if getattr(c, attr) is True:
            return True
        if isinstance(c, sp.Add) and all(_sign_fact(a, "is_nonnegative") for a in c.args):
            if attr == "is_nonnegative" or any(_sign_fact(a, "is_positive") for a in c.args):
                return True
        if isinstance(c, sp.Mul) and any(isinstance(a, sp.Sum) for a in c.args):
            facts = [_sign_fact(a, attr) for a in c.args]
            if all(facts):
                return True
    return False


def proves_nonneg(expr) -> bool:
    """True when SymPy's assumption system concludes ``expr >= 0``."""
    return _sign_fact(expr, "is_nonnegative")


def proves_positive(expr) -> bool:
    """True when SymPy's assumption system concludes ``expr > 0``."""
    return _sign_fact(expr, "is_positive")


# --------------------------------------------------------------------------------------------
# presentation (Markdown with TeX); nothing here takes part in a check
# --------------------------------------------------------------------------------------------

_PATH = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.(?:py|md)(?:#[\w-]+)?)")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]$|])")


_SYMBOLS = {" <= ": " ≤ ", " >= ": " ≥ ", " != ": " ≠ ", " -> ": " → "}


_SUP = re.compile(r"\^(?:\{([^{}]*)\}|\(([^()]*)\)|([−-]?\w+))")
_SUB = re.compile(r"(?<![\w.])([A-Za-zα-ωΣΠℓ]|min|max|lim|argmin|argmax)_(?:\{([^{}]*)\}|(\w)(?!\w))")


def _md_escape(text: str) -> str:
    """Escape plain text for Markdown; the pseudo-math of names and reasons (``q(k)^{N p(k)}``,
    ``X_n``, ``Σ_{k<K}``) becomes superscripts and subscripts."""
    for ascii_form, symbol in _SYMBOLS.items():
        text = text.replace(ascii_form, symbol)
    marks = {"\x01": "<sup>", "\x02": "</sup>", "\x03": "<sub>", "\x04": "</sub>"}
    text = _SUP.sub(lambda m: "\x01" + next(g for g in m.groups() if g is not None) + "\x02", text)
    text = _SUB.sub(lambda m: m.group(1) + "\x03" + (m.group(2) if m.group(2) is not None else m.group(3)) + "\x04", text)
    text = _MD_SPECIAL.sub(r"\\\1", text).replace("<", "&lt;").replace(">", "&gt;")
    for mark, tag in marks.items():
        text = text.replace(mark, tag)
    return text


def _md_text(text: str) -> str:
    """Plain text as Markdown: file paths as code spans, everything else escaped.

    >>> _md_text("2^-53 * x * y, see docs/design.md#accuracy, q_k and empirical_pmf")
    '2<sup>-53</sup> \\\\* x \\\\* y, see `docs/design.md#accuracy`, q<sub>k</sub> and empirical\\\\_pmf'
    """
    parts = _PATH.split(text)
    return "".join(f"`{p}`" if i % 2 else _md_escape(p) for i, p in enumerate(parts))


_RELATION_OF = {"ge": r"\geq", "le": r"\leq", "gt": ">", "lt": "<", "eq": "="}


def _assume_facts(assume) -> list[tuple[str, object, object]]:
    """The binary facts ``(relation, a, b)`` of a conjunction of ``Q`` predicates."""
    args = assume.args if isinstance(assume, sp.And) else (assume,)
    facts = []
    for a in args:
        name = getattr(getattr(a, "function", None), "name", None)
        if name in _RELATION_OF and len(a.arguments) == 2:
            facts.append((name, *a.arguments))
        else:
            facts.append((None, a, None))
    return facts


def _assume_latex(assume) -> str:
    r"""An assumption as TeX: ``Q.ge(i, 1) & Q.le(i, K)`` becomes ``1 \leq i \leq K``."""
    facts = _assume_facts(assume)
    lower = {sp.srepr(a): b for rel, a, b in facts if rel == "ge"}
    parts, done = [], set()
    for rel, a, b in facts:
        key = sp.srepr(a)
        if rel == "le" and key in lower:
            parts.append(f"{sp.latex(lower[key])} \\leq {sp.latex(a)} \\leq {sp.latex(b)}")
            done.add(key)
    for rel, a, b in facts:
        if rel is None:
            parts.append(sp.latex(a))
        elif not (sp.srepr(a) in done and rel in ("ge", "le")):
            parts.append(f"{sp.latex(a)} {_RELATION_OF[rel]} {sp.latex(b)}")
    return ",\\ ".join(parts)


def _assume_text(assume) -> str:
    return "" if assume is None else f"under {sp.sstr(assume)}"


def _step_latex(s) -> str:
    """SymPy's LaTeX of a step's statement ("" when it has none to show)."""
    if s.lhs is None:
        return ""
    rel = _RELATION.get(s.kind) if s.kind != "each_K" else "="
    if rel and s.rhs is not None:
        left, right = sp.latex(s.lhs), sp.latex(s.rhs)
        return left if left == right else f"{left} {rel} {right}"
    return sp.latex(s.lhs) if isinstance(s.lhs, sp.Basic) else ""


# --------------------------------------------------------------------------------------------
# steps and derivations
# --------------------------------------------------------------------------------------------


@dataclass
class Step:
    """One line of a derivation."""

    name: str
    kind: str  # "eq", "nonneg", "positive", "holds", "each_K", "define", "cite", "note"
    verdict: str  # PASS, FAIL or CITED
    lhs: object = None
    rhs: object = None
    because: str = ""
    detail: str = ""
    seconds: float = 0.0
    tex: str = ""  # the statement in TeX, shown in Markdown instead of SymPy's rendering
    assume: object = None  # the Q predicate the step is refined under (shown, not re-checked)

    @property
    def checked(self) -> bool:
        return self.verdict in (PASS, FAIL)


_RELATION = {"eq": "=", "nonneg": r"\geq", "positive": ">", "define": ":="}
_RELATION_TEXT = {"eq": "=", "nonneg": ">=", "positive": ">", "define": ":="}


@dataclass
class Derivation:
    """A claim and the checked steps that prove it.

    Parameters
    ----------
    claim : str
        The statement proven, in words (one line; plain text for the terminal).
    claim_tex : str
        The same statement for the documentation site: Markdown with TeX between ``$...$``.
        The plain ``claim`` is shown (escaped) when it is empty.
    title : str
        Short title, used as the heading of the Markdown output.
    source : str
        Where the claim comes from (article section, a section of docs/design.md, a paper).
    justifies : str
        The kernel line or identity that relies on the claim.
    scope : str
        ``"general K"``, ``"K = 2..8"`` or both, as it applies to the steps below.
    """

    claim: str
    claim_tex: str = ""
    title: str = ""
    source: str = ""
    justifies: str = ""
    scope: str = ""
    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    # -- recording ---------------------------------------------------------------------------

    def _record(self, step: Step, fn: Callable[[], tuple[bool, str]]) -> bool:
        t0 = time.perf_counter()
        try:
            ok, detail = fn()
        except Exception as exc:  # a step that raises has not been proven
            ok, detail = False, f"{type(exc).__name__}: {exc}\n" + traceback.format_exc(limit=3)
        step.seconds = time.perf_counter() - t0
        step.verdict = PASS if ok else FAIL
        if detail:
            step.detail = detail
        self.steps.append(step)
        return ok

    def eq(self, name: str, lhs, rhs, because: str = "", assume=None, tex: str = "") -> bool:
        """Assert ``lhs == rhs`` (the residual must simplify to 0).

        ``assume``: a SymPy ``Q`` predicate under which the residual is refined (shown in the
        output). ``tex``: the statement in TeX for the Markdown output, where SymPy's own
        rendering would not read as the statement (both sides print alike because SymPy
        evaluates the left one on construction; a tuple of solutions); it changes nothing that
        is checked.
        """
        step = Step(name, "eq", FAIL, lhs, rhs, because, tex=tex, assume=assume)
        return self._record(
            step,
            lambda: (
                (True, "")
                if proves_equal(lhs, rhs, assume)
                else (False, f"residual does not simplify to 0: {sp.sstr(sp.simplify(sp.sympify(lhs) - sp.sympify(rhs)))}")
            ),
        )

    def eq_exp(self, name: str, lhs, rhs, because: str = "", tex: str = "") -> bool:
        """Assert ``lhs == rhs`` for real ``lhs``, ``rhs`` by proving ``exp(lhs) == exp(rhs)``.

        Sound because exp is injective on the reals; SymPy must confirm both sides are real.
        """
        because = (because + "; " if because else "") + "checked as exp(lhs) = exp(rhs), both real"
        step = Step(name, "eq", FAIL, lhs, rhs, because, tex=tex)

        def check():
            L, R = sp.sympify(lhs), sp.sympify(rhs)
            if not (L.is_extended_real and R.is_extended_real):
                return False, "SymPy cannot confirm that both sides are real"
            if proves_equal(sp.exp(L), sp.exp(R)):
                return True, ""
            return False, "exp(lhs) - exp(rhs) does not simplify to 0"

        return self._record(step, check)

    def zero(self, name: str, expr, because: str = "", tex: str = "") -> bool:
        """Assert ``expr == 0``."""
        return self.eq(name, expr, sp.S.Zero, because, tex=tex)

    def nonneg(self, name: str, expr, because: str = "", tex: str = "") -> bool:
        """Assert ``expr >= 0`` (SymPy's assumption system must conclude it)."""
        step = Step(name, "nonneg", FAIL, expr, sp.S.Zero, because, tex=tex)
        return self._record(
            step, lambda: (True, "") if proves_nonneg(expr) else (False, "SymPy cannot conclude >= 0")
        )

    def positive(self, name: str, expr, because: str = "", tex: str = "") -> bool:
        """Assert ``expr > 0``."""
        step = Step(name, "positive", FAIL, expr, sp.S.Zero, because, tex=tex)
        return self._record(
            step, lambda: (True, "") if proves_positive(expr) else (False, "SymPy cannot conclude > 0")
        )

    def holds(self, name: str, statement, because: str = "", tex: str = "") -> bool:
        """Assert a SymPy boolean (``Eq``, ``Contains``, a set equality...) is ``True``."""
        step = Step(name, "holds", FAIL, statement, None, because, tex=tex)

        def check():
            value = statement() if callable(statement) else statement
            step.lhs = value if not isinstance(value, bool) else step.lhs
            if value is True or value is sp.true:
                return True, ""
            simplified = sp.simplify(value) if isinstance(value, sp.Basic) else value
            if simplified is True or simplified is sp.true:
                return True, ""
            return False, f"evaluates to {sp.sstr(simplified)}"

        return self._record(step, check)

    def each_K(
        self,
        name: str,
        check: Callable[[int], Sequence],
        Ks: Iterable[int] = range(2, 9),
        because: str = "",
        show: Callable[[int], tuple] | None = None,
        tex: str = "",
    ) -> bool:
        """Assert ``check(K)`` for every ``K`` in ``Ks``.

        ``check(K)`` returns a sequence whose items are ``(lhs, rhs)`` pairs (proven equal with
        :func:`proves_equal`) or booleans (SymPy ``True`` or Python ``True``). ``show(K)``, if
        given, returns a ``(lhs, rhs)`` pair displayed for the smallest ``K`` (in Markdown,
        ``tex`` replaces it: the statement checked for each ``K``, in TeX).
        """
        Ks = list(Ks)
        label = f"K = {Ks[0]}..{Ks[-1]}" if Ks == list(range(Ks[0], Ks[-1] + 1)) else f"K in {Ks}"
        step = Step(f"{name} [{label}]", "each_K", FAIL, None, None, because, tex=tex)

        def run():
            failures, count = [], 0
            for K in Ks:
                for i, item in enumerate(check(K)):
                    count += 1
                    if isinstance(item, tuple):
                        ok = proves_equal(*item)
                    else:
                        ok = item is True or item is sp.true
                    if not ok:
                        failures.append(f"K={K} item {i}: {sp.sstr(item)[:300]}")
            if show is not None:
                step.lhs, step.rhs = show(Ks[0])
            if failures:
                return False, f"{len(failures)} of {count} instances failed:\n" + "\n".join(failures[:10])
            return True, f"{count} instances"

        return self._record(step, run)

    def define(self, name: str, lhs, rhs, because: str = "", tex: str = "") -> None:
        """Record a definition (shown, not checked)."""
        self.steps.append(Step(name, "define", CITED, lhs, rhs, because, tex=tex))

    def cite(self, name: str, because: str, statement=None, tex: str = "") -> None:
        """Record a cited theorem or convention (shown, not checked)."""
        self.steps.append(Step(name, "cite", CITED, statement, None, because, tex=tex))

    def note(self, text: str) -> None:
        """Record prose (an erratum, a remark); not a step."""
        self.steps.append(Step(text, "note", CITED))

    # -- verdict -----------------------------------------------------------------------------

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.verdict == FAIL]

    @property
    def checked(self) -> list[Step]:
        return [s for s in self.steps if s.checked]

    @property
    def ok(self) -> bool:
        return bool(self.checked) and not self.failed

    def summary(self) -> dict:
        return {
            "title": self.title,
            "claim": self.claim,
            "scope": self.scope,
            "verdict": PASS if self.ok else FAIL,
            "steps": len(self.checked),
            "failed": [s.name for s in self.failed],
            "seconds": round(time.perf_counter() - self.started, 3),
        }

    # -- rendering ---------------------------------------------------------------------------

    def render_text(self) -> str:
        out = [f"Claim: {self.title}" if self.title else "Claim:", f"  {self.claim}"]
        for label, value in (("source", self.source), ("justifies", self.justifies), ("scope", self.scope)):
            if value:
                out.append(f"  {label}: {value}")
        out.append("")
        for s in self.steps:
            if s.kind == "note":
                out.append(f"  NOTE  {s.name}")
                continue
            out.append(f"  [{s.verdict}] {s.name}")
            if s.lhs is not None:
                rel = _RELATION_TEXT.get(s.kind)
                if rel and s.rhs is not None:
                    out.append(f"         {sp.sstr(s.lhs)}  {rel}  {sp.sstr(s.rhs)}")
                elif s.kind == "each_K" and s.rhs is not None:
                    out.append(f"         e.g. {sp.sstr(s.lhs)}  =  {sp.sstr(s.rhs)}")
                else:
                    out.append(f"         {sp.sstr(s.lhs)}")
            because = "; ".join(b for b in (s.because, _assume_text(s.assume)) if b)
            if because:
                out.append(f"         because: {because}")
            if s.detail and (s.verdict == FAIL or s.kind == "each_K"):
                for line in s.detail.rstrip().splitlines():
                    out.append(f"         {line}")
        n, f = len(self.checked), len(self.failed)
        out.append("")
        out.append(f"  {'PROVEN' if self.ok else 'NOT PROVEN'}: {n - f}/{n} checked steps passed")
        return "\n".join(out)

    def render_markdown(self) -> str:
        """The derivation as Markdown: headings and prose escaped, every formula in TeX.

        Plain-text fields (title, names, reasons) are escaped so that Markdown reads ``*`` and
        ``_`` literally, and file paths in them become code spans; the claim is ``claim_tex``
        when given. A step's formula is its ``tex`` when given, else SymPy's LaTeX of its two
        sides; sides that print alike are shown once (the step then checks a form SymPy had
        already reduced), never as ``a = a``.
        """
        out = [MARKDOWN_MARKER, f"## {_md_text(self.title or self.claim)}", ""]
        out += [f"**Claim.** {self.claim_tex or _md_text(self.claim)}", ""]
        for label, value in (("Source", self.source), ("Justifies", self.justifies), ("Scope", self.scope)):
            if value:
                out.append(f"- *{label}:* {_md_text(value)}")
        out.append("")
        for s in self.steps:
            if s.kind == "note":
                out += [f"> **Note.** {_md_text(s.name)}", ""]
                continue
            mark = {"PASS": "checked", "FAIL": "**FAILED**", "CITED": "cited"}[s.verdict]
            out += [f"**{_md_text(s.name)}** ({mark})", ""]
            formula = s.tex or _step_latex(s)
            if formula:
                out += ["$$", formula, "$$", ""]
            reasons = [_md_text(s.because)] if s.because else []
            if s.assume is not None:
                reasons.append(f"for ${_assume_latex(s.assume)}$")
            if reasons:
                out += ["; ".join(reasons), ""]
            if s.kind == "each_K" and s.detail and s.verdict == PASS:
                out += [f"Checked: {_md_text(s.detail)}.", ""]
            if s.verdict == FAIL and s.detail:
                out += ["```text", s.detail.rstrip(), "```", ""]
        n, f = len(self.checked), len(self.failed)
        out.append(f"**{'Proven' if self.ok else 'Not proven'}:** {n - f}/{n} checked steps passed.")
        return "\n".join(out)

    def render_json(self) -> str:
        data = self.summary()
        data["steps_detail"] = [
            {
                "name": s.name,
                "kind": s.kind,
                "verdict": s.verdict,
                "lhs": None if s.lhs is None else sp.sstr(s.lhs),
                "rhs": None if s.rhs is None else sp.sstr(s.rhs),
                "because": s.because,
                "detail": s.detail,
            }
            for s in self.steps
        ]
        return json.dumps(data, indent=1)

    # -- running -----------------------------------------------------------------------------

    def run(self, argv: Sequence[str] | None = None, stream=None) -> int:
        """Print the derivation in the requested format; return 0 if proven, 1 otherwise."""
        argv = list(sys.argv[1:] if argv is None else argv)
        fmt = os.environ.get("CROSSENT_PROOF_FORMAT", "text")
        if "--markdown" in argv:
            fmt = "markdown"
        if "--json" in argv:
            fmt = "json"
        stream = stream or sys.stdout
        body = {"markdown": self.render_markdown, "json": self.render_json}.get(fmt, self.render_text)()
        summary = json.dumps(self.summary())
        tail = f"<!-- {SUMMARY_TAG} {summary} -->" if fmt == "markdown" else f"{SUMMARY_TAG} {summary}"
        print(body, file=stream)
        print(tail, file=stream)
        stream.flush()
        return 0 if self.ok else 1


def run_main(build: Callable[[], Derivation], argv: Sequence[str] | None = None) -> int:
    """Build a derivation and run it; a build that raises prints the error and returns 2."""
    try:
        d = build()
    except Exception:
        traceback.print_exc()
        print(f"{SUMMARY_TAG} " + json.dumps({"verdict": FAIL, "steps": 0, "failed": ["<build raised>"]}))
        return 2
    return d.run(argv)
