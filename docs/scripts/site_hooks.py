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
_TAG = re.compile(r"\\tag\{([^{}]*)\}")


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
_NAMES = r"[A-Za-z][A-Za-z0-9]+"  # log, exp, and \operatorname{...} once it is an <mi>
# \operatorname{name} comes out as an operator with an operator's wide spacing, also before "("
_OPNAME = re.compile(r"(?<!<msub>)(?<!<munder>)(?<!<munderover>)(?<!<msubsup>)<mo>([A-Za-z][A-Za-z0-9]+)</mo>")
# a function name right after an operand (``p(k) \log q``): TeX puts a thin space between them
_AFTER_OPERAND = re.compile(
    rf"(</mi>|</mn>|</msub>|</msup>|</msubsup>|</mover>|<mo stretchy=\"false\">&#x00029;</mo>"
    rf"|<mo stretchy=\"false\">&#x0005D;</mo>)((?:<msub>)?<mi>(?:{_NAMES})</mi>)")
# absolute-value bars are fences, not relations: no space around them
_BAR = re.compile(r'<mo(?: stretchy="false")?>&#x0007C;</mo>')
# a subscripted function name (\log_2 e): a thin space after it
_SUBSCRIPTED = re.compile(
    rf"(<msub><mi>(?:{_NAMES})</mi>(?:<mn>[^<]*</mn>|<mi>[^<]*</mi>)</msub>)(?=<mi|<mn)")
# a function name followed by anything but a parenthesis: a thin space after it
_FUNCTION = re.compile(rf"(?<!<msub>)<mi>({_NAMES})</mi>(?!<mo stretchy=\"false\">&#x00028;|</)")
# \mathrm{log1p} comes out as a row of single upright letters: one upright name
_UPRIGHT = re.compile(r'<mrow>((?:<mi mathvariant="normal">[A-Za-z]</mi>|<mn>\d+</mn>){2,})</mrow>')


def _operator(m: re.Match) -> str:
    code = int(m.group(1), 16)
    code = _FIXED.get(code, code)
    if code == 0x2016:  # \Vert, as in D(p || q): a separator that never stretches
        return '<mo stretchy="false" lspace="0.1111em" rspace="0.1111em">&#x02016;</mo>'
    if code in _FIXED.values() or unicodedata.category(chr(code)) == "Sm":
        return f"<mo>&#x{code:05X};</mo>"
    return m.group(0)


def _polish(mathml: str) -> str:
    """Fix what latex2mathml gets wrong for a MathML Core renderer.

    Relations and arrows it leaves as identifiers (``\\succeq``, ``\\iff``, ``\\Vert``,
    ``\\sim``) become operators, so that they get an operator's spacing; a function name
    (``\\log``) followed by anything but a parenthesis gets TeX's thin space after it.
    """
    mathml = _MI.sub(_operator, mathml)
    mathml = _OPNAME.sub(r"<mi>\1</mi>", mathml)
    mathml = _UPRIGHT.sub(lambda m: "<mi>" + re.sub(r"<[^>]+>", "", m.group(1)) + "</mi>", mathml)
    mathml = mathml.replace("<mo>&#x0002F;</mo>", '<mo lspace="0em" rspace="0em">&#x0002F;</mo>')  # a/b
    mathml = _BAR.sub('<mo stretchy="false" lspace="0em" rspace="0em">&#x0007C;</mo>', mathml)
    mathml = _SUBSCRIPTED.sub(r'\1<mspace width="0.1667em"></mspace>', mathml)
    mathml = _AFTER_OPERAND.sub(r'\1<mspace width="0.1667em"></mspace>\2', mathml)
    return _FUNCTION.sub(r'<mi>\1</mi><mspace width="0.1667em"></mspace>', mathml)


def tex_to_mathml(tex: str, display: bool) -> str:
    r"""The MathML of one formula (TeX without delimiters), as an HTML fragment.

    >>> tex_to_mathml(r"x^2", display=False)[:47]
    '<math xmlns="http://www.w3.org/1998/Math/MathML'
    >>> "<mo>&#x027FA;</mo>" in tex_to_mathml(r"a \iff b", display=True)
    True
    >>> tex_to_mathml(r"x \log_2 e", display=False).count("<mspace")  # thin spaces around log_2
    2
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
        # an equation number (\tag{2}) goes to the right margin, as in TeX
        number = _TAG.search(tex) if display else None
        tex = _TAG.sub("", tex) if number else tex
        try:
            mathml = tex_to_mathml(tex.strip(), display)
        except Exception as exc:  # noqa: BLE001  (any failure is a broken formula)
            raise PluginError(f"{where}: cannot render the formula {tex.strip()!r}: {exc}") from exc
        cls = "arithmatex math-block" if display else "arithmatex"
        if number:
            cls += " math-numbered"
            mathml += f'<span class="math-number">({html.escape(number.group(1))})</span>'
        return f'<{tag} class="{cls}"{attrs}>{mathml}</{tag}>'

    return _ARITHMATEX.sub(one, page_html)


def on_page_content(html: str, page, config, files) -> str:  # noqa: ARG001  (MkDocs' signature)
    return render_math(html, page.file.src_uri)
