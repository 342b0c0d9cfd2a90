"""Griffe extension: make numpydoc's reStructuredText math render in the MkDocs site.

crossent's docstrings are numpydoc (they must read well in ``help()`` and in Sphinx-style
tools), so their math is written as reST: ``.. math::`` blocks and ``:math:`...``` roles.
mkdocstrings renders docstrings as Markdown, where those would appear verbatim. This extension
rewrites them, before the docstring is parsed, into the ``$$ ... $$`` and ``$...$`` delimiters
that ``pymdownx.arithmatex`` (generic mode) hands to MathJax. It also turns the common
cross-reference roles (``:func:`x```) into code spans and numpydoc citations (``.. [1]``,
``[1]_``) into plain text. The docstrings in the source are not changed.

Used from ``mkdocs.yml`` (``plugins.mkdocstrings.handlers.python.options.extensions``).
"""

from __future__ import annotations

import re

from griffe import Extension

_ROLE_MATH = re.compile(r":math:`([^`]+)`")
_ROLE_XREF = re.compile(r":(?:py:)?(?:func|meth|class|mod|attr|data|obj|exc|const):`~?([^`]+)`")
_CITE_USE = re.compile(r"\[(\w+)\]_")
_CITE_DEF = re.compile(r"^(\s*)\.\. \[(\w+)\]\s*")
_MATH_DIRECTIVE = re.compile(r"^(\s*)\.\. math::\s*(.*)$")


def rst_to_markdown(text: str) -> str:
    """Rewrite the reST math, roles and citations of a numpydoc docstring for Markdown.

    >>> print(rst_to_markdown("Notes\\n-----\\n.. math::\\n\\n    a = b\\n\\nend :math:`x`"))
    Notes
    -----
    <BLANKLINE>
    $$
    a = b
    $$
    <BLANKLINE>
    end $x$
    """
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        m = _MATH_DIRECTIVE.match(lines[i])
        if not m:
            line = _ROLE_MATH.sub(lambda g: "$" + g.group(1) + "$", lines[i])
            line = _ROLE_XREF.sub(lambda g: "`" + g.group(1) + "`", line)
            line = _CITE_DEF.sub(lambda g: f"{g.group(1)}[{g.group(2)}] ", line)
            out.append(_CITE_USE.sub(lambda g: f"[{g.group(1)}]", line))
            i += 1
            continue
        indent = m.group(1)
        body = [m.group(2)] if m.group(2).strip() else []
        i += 1
        # the directive's content: blank lines and lines indented deeper than the directive
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > len(indent)
        ):
            body.append(lines[i])
            i += 1
        while body and not body[-1].strip():
            body.pop()
        # a field list such as ":label: eq" belongs to reST, not to the formula
        body = [b for b in body if not re.match(r"^\s*:\w+:", b)]
        content = [b.strip() for b in body if b.strip()]
        out += ["", indent + "$$"] + [indent + c for c in content] + [indent + "$$", ""]
    return describe_returns("\n".join(out))


_SECTION = re.compile(r"^(\s*)(\w[\w ]*)\n\1-{3,}\s*$", re.M)


def describe_returns(text: str) -> str:
    r"""Give every item of a numpydoc Returns section a description.

    An item written as a type only (``ndarray of ``x.dtype`` (...)``) would show an empty
    description cell in the API reference: its text becomes the description, and its type the
    words before the first " of " or " (". reST literals (````x````) become code spans.

    >>> print(describe_returns("Returns\n-------\nndarray of ``x.dtype``\nloss : as `f`\n\nNotes\n-----"))
    Returns
    -------
    ndarray
        ndarray of `x.dtype`.
    loss :
        As `f`.
    <BLANKLINE>
    Notes
    -----
    """
    lines = text.splitlines()
    dashes = re.compile(r"^\s*-{3,}\s*$")
    out: list[str] = []
    i = 0
    while i < len(lines):
        head = re.match(r"^(\s*)Returns\s*$", lines[i])
        if not (head and i + 1 < len(lines) and dashes.match(lines[i + 1])):
            out.append(lines[i])
            i += 1
            continue
        indent = head.group(1)
        out += lines[i:i + 2]
        j = i + 2
        while j < len(lines) and not (j + 1 < len(lines) and dashes.match(lines[j + 1])):
            j += 1
        region = lines[i + 2:j]
        for k, line in enumerate(region):
            level = len(line) - len(line.lstrip())
            following = region[k + 1] if k + 1 < len(region) else ""
            described = following.strip() and len(following) - len(following.lstrip()) > level
            if not line.strip() or level != len(indent) or described:
                out.append(line)
                continue
            name, sep, kind = line.strip().partition(" : ")
            if not sep:
                name, kind = "", name
            kind = re.sub(r"``([^`]+)``", r"`\1`", re.sub(r":\w+:`~?([^`]+)`", r"`\1`", kind))
            if kind.lower().startswith("as "):
                short, desc = "", kind[0].upper() + kind[1:]
            else:  # the type: the words before " of ", parenthetical remarks left out
                short, desc = re.sub(r" \([^()]*\)", "", kind).split(" of ")[0], kind
            first = f"{name} :" + (f" {short}" if short else "") if name else short
            out += [indent + first, indent + "    " + desc.rstrip(".") + "."]
        i = j
    return "\n".join(out)


class RstMath(Extension):
    """Rewrite every docstring of the loaded objects (see :func:`rst_to_markdown`)."""

    def on_instance(self, *, obj, **kwargs) -> None:  # griffe calls this for every object
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
