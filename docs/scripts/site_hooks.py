"""MkDocs hooks of the crossent site: math is rendered at build time, to MathML.

``pymdownx.arithmatex`` (generic mode) wraps every formula of the Markdown sources and of the
docstrings in ``<span class="arithmatex">\\(...\\)</span>`` (inline) or
``<div class="arithmatex">\\[...\\]</div>`` (display). :func:`on_page_content` replaces the TeX
inside with the MathML that ``latex2mathml`` produces, so the built pages need no script and no
network to show mathematics: browsers render MathML natively. A formula that cannot be converted
stops the build (:class:`mkdocs.exceptions.PluginError`) instead of reaching a reader as raw TeX.

Used from ``mkdocs.yml`` (``hooks:``); ``tests/test_site.py`` checks the built pages.
"""

from __future__ import annotations

import html
import re
import unicodedata

from latex2mathml.converter import convert
from mkdocs.exceptions import PluginError

_ARITHMATEX = re.compile(r'<(span|div) class="arithmatex"([^>]*)>(.*?)</\1>', re.S)
_DELIMITED = re.compile(r"^\s*(\\\(|\\\[|\$\$?)(.*?)(\\\)|\\\]|\$\$?)\s*$", re.S)
_OPERATORNAME = re.compile(r"\\operatorname\{([^{}]*)\}")


def _prepare(tex: str) -> str:
    r"""Rewrite the few TeX forms that latex2mathml renders badly into equivalent ones.

    ``\operatorname{name}`` with a digit in the name (``log1p``) comes out as a row of italic
    single letters; ``\mathrm{name}`` keeps it upright.

    >>> _prepare(r"\operatorname{log1p}(s) + \operatorname{ulp}(x)")
    '\\mathrm{log1p}(s) + \\operatorname{ulp}(x)'
    """
    return _OPERATORNAME.sub(
        lambda m: m.group(0) if m.group(1).isalpha() else r"\mathrm{" + m.group(1) + "}", tex
    )


_MI = re.compile(r"<mi>&#x([0-9A-Fa-f]+);</mi>")
_FIXED = {0x7E: 0x223C}  # \sim comes out as a tilde
_NAMES = "log|ln|exp|lim|max|min|sup|inf|det|sin|cos|tan|sgn"
# a function name right after an operand (``p(k) \log q``): TeX puts a thin space between them
_AFTER_OPERAND = re.compile(
    rf"(</mi>|</mn>|</msub>|</msup>|</msubsup>|</mover>|<mo stretchy=\"false\">&#x00029;</mo>)(<mi>(?:{_NAMES})</mi>)")
# a function name followed by anything but a parenthesis: a thin space after it
_FUNCTION = re.compile(rf"<mi>({_NAMES})</mi>(?!<mo stretchy=\"false\">&#x00028;)")


def _operator(m: re.Match) -> str:
    code = int(m.group(1), 16)
    code = _FIXED.get(code, code)
    if code in _FIXED.values() or code == 0x2016 or unicodedata.category(chr(code)) == "Sm":
        return f"<mo>&#x{code:05X};</mo>"
    return m.group(0)


def _polish(mathml: str) -> str:
    """Fix what latex2mathml gets wrong for a MathML Core renderer.

    Relations and arrows it leaves as identifiers (``\\succeq``, ``\\iff``, ``\\Vert``,
    ``\\sim``) become operators, so that they get an operator's spacing; a function name
    (``\\log``) followed by anything but a parenthesis gets TeX's thin space after it.
    """
    mathml = _MI.sub(_operator, mathml)
    mathml = _AFTER_OPERAND.sub(r'\1<mspace width="0.1667em"></mspace>\2', mathml)
    return _FUNCTION.sub(r'<mi>\1</mi><mspace width="0.1667em"></mspace>', mathml)


def tex_to_mathml(tex: str, display: bool) -> str:
    r"""The MathML of one formula (TeX without delimiters), as an HTML fragment.

    >>> tex_to_mathml(r"x^2", display=False)[:47]
    '<math xmlns="http://www.w3.org/1998/Math/MathML'
    >>> "<mo>&#x027FA;</mo>" in tex_to_mathml(r"a \iff b", display=True)
    True
    """
    mathml = _polish(convert(_prepare(tex), display="block" if display else "inline"))
    if "\\" in re.sub(r"<[^>]+>", "", mathml):  # an unknown command left as text
        raise ValueError("a TeX command was left unconverted")
    return mathml


def render_math(page_html: str, where: str = "") -> str:
    """Replace every arithmatex element of ``page_html`` by its MathML."""

    def one(m: re.Match) -> str:
        tag, attrs, body = m.group(1), m.group(2), html.unescape(m.group(3))
        d = _DELIMITED.match(body)
        tex = d.group(2) if d else body
        display = tag == "div" or (d is not None and d.group(1) in ("\\[", "$$"))
        try:
            mathml = tex_to_mathml(tex.strip(), display)
        except Exception as exc:  # noqa: BLE001  (any failure is a broken formula)
            raise PluginError(f"{where}: cannot render the formula {tex.strip()!r}: {exc}") from exc
        cls = "arithmatex math-block" if display else "arithmatex"
        return f'<{tag} class="{cls}"{attrs}>{mathml}</{tag}>'

    return _ARITHMATEX.sub(one, page_html)


def on_page_content(html: str, page, config, files) -> str:  # noqa: ARG001  (MkDocs' signature)
    return render_math(html, page.file.src_uri)
