"""Read a built site the way a reader sees it, and report what would mislead them.

Four kinds of problem, each a list of ``(page, what)`` findings:

``raw_tex``
    TeX left in the text of a page, outside a rendered formula (``<math>``) and outside code:
    a delimiter (``\\(``, ``\\[``, ``$$``, ``$...$``) or a command (``\\frac``). A reader would
    see the source instead of the formula.
``missing_files``
    a file cited in the text (``src/crossent/x.py``, ``docs/x.md``) that is not in the
    repository, or a citation of a document outside it (the pattern of
    ``tests/test_self_contained.py``). Code blocks are not read: they are examples.
``broken_links``
    a local link or image whose target page, file or anchor is not in the built site; and any
    script, stylesheet or font loaded from the network (the site must read the same offline).
``split_identifiers``
    an identifier (``cross_entropy_grad``, ``crossent.reference``) in a table cell outside a
    code span, or broken by a soft hyphen, a zero-width space or ``<wbr>``. Code spans in tables
    are kept whole by the site's stylesheet (``white-space: nowrap``), checked separately.

Run on a built site: ``python docs/scripts/site_check.py SITE_DIR`` (exit status 1 when anything
is found). ``tests/test_site.py`` builds the site and runs these checks.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
#: where a cited path may live: the repository root, the package sources, the docs
SEARCH = [ROOT, ROOT / "src", ROOT / "src" / "crossent", ROOT / "docs"]

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_CODE = {"code", "pre", "kbd", "samp", "script", "style", "textarea"}

_TEX = re.compile(
    r"\\[()\[\]]"                                   # \( \) \[ \]
    r"|\$\$"                                         # $$
    r"|(?<![\w$\\])\$[^\s$][^$\n]{0,300}?(?<![\s\\])\$(?![\w$])"  # $...$
    r"|\\[A-Za-z]{2,}"                               # \frac, \operatorname, ...
)
_PATH = re.compile(
    r"(?<![\w/.@:-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|json|toml|yml|yaml|txt|png|cfg|ini|sh|csv))\b"
)
_IDENT = re.compile(r"\b[A-Za-z_]\w*_\w+\b|\bcrossent(?:\.\w+)+")
_BREAKERS = ("\u00ad", "\u200b", "\u2060")


class _Page(HTMLParser):
    """One pass over a page: its prose text, its links, its ids and its table cells."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.prose: list[str] = []  # text outside math and code
        self.text_no_pre: list[str] = []  # text outside math and code blocks (inline code kept)
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, url)
        self.ids: set[str] = set()
        self.cells: list[list[tuple[str, bool]]] = []  # per cell: (text, inside code)
        self._cell: list[tuple[str, bool]] | None = None
        self._cell_depth = 0

    # -- state --
    def _inside(self, names) -> bool:
        return any(t in names for t in self.stack)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href") is not None:
            self.links.append((tag, "href", a["href"]))
        elif tag in ("img", "script", "source") and a.get("src"):
            self.links.append((tag, "src", a["src"]))
        elif tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "preload", "icon"):
            self.links.append((tag, "href", a["href"]))
        if tag == "wbr" and self._cell is not None:
            self._cell.append(("\u200b", self._inside({"code"})))
        if tag in _VOID:
            return
        self.stack.append(tag)
        if tag in ("td", "th"):
            self._cell, self._cell_depth = [], len(self.stack)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag):
        if tag in _VOID or tag not in self.stack:
            return
        while self.stack:
            top = self.stack.pop()
            if self._cell is not None and len(self.stack) < self._cell_depth:
                self.cells.append(self._cell)
                self._cell = None
            if top == tag:
                break

    def handle_data(self, data):
        in_math = self._inside({"math"})
        if self._cell is not None and not in_math:
            self._cell.append((data, self._inside({"code"})))
        if in_math or self._inside({"script", "style", "textarea"}):
            return
        if not self._inside(_CODE):
            self.prose.append(data)
        if not self._inside({"pre"}):
            self.text_no_pre.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    page.close()
    return page


# ---------------------------------------------------------------------------------------------
# the four checks, on one parsed page
# ---------------------------------------------------------------------------------------------


def raw_tex(page: _Page) -> list[str]:
    """TeX in the prose of a page (outside ``<math>`` and code)."""
    text = "\n".join(page.prose)
    return sorted({m.group(0)[:80] for m in _TEX.finditer(text)})


def _outside_citations() -> Callable[[str], list[str]]:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from test_self_contained import citations
    except ImportError:  # a built site without the tests next to it
        return lambda text: []
    return citations


def missing_files(page: _Page) -> list[str]:
    """Files cited in the text that are not in the repository; citations of outside documents."""
    text = "\n".join(page.text_no_pre)
    found = set()
    for m in _PATH.finditer(text):
        path = m.group(1)
        if not any((base / path).exists() for base in SEARCH):
            found.add(path)
    for line in _outside_citations()(text):
        found.add(line.split(": ", 1)[-1][:100])
    return sorted(found)


def broken_links(page: _Page, where: Path, site: Path) -> list[str]:
    """Local links, images, scripts and stylesheets whose target is not in the built site,
    anchors that the target page does not define, and resources fetched from the network."""
    found = []
    for tag, attr, url in page.links:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            if tag != "a":
                found.append(f"<{tag} {attr}={url}> needs the network")
            continue
        if url.startswith(("mailto:", "javascript:")) or url == "":
            continue
        path, fragment = unquote(parts.path), unquote(parts.fragment)
        target = (where.parent / path).resolve() if path else where.resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.exists() or site.resolve() not in target.parents:
            found.append(f"{url}: no such page or file")
            continue
        if fragment and target.suffix == ".html":
            ids = page.ids if target == where.resolve() else _ids_of(target)
            if fragment not in ids:
                found.append(f"{url}: no anchor #{fragment}")
    return sorted(set(found))


_ID_CACHE: dict[Path, set[str]] = {}


def _ids_of(path: Path) -> set[str]:
    if path not in _ID_CACHE:
        _ID_CACHE[path] = parse(path.read_text(encoding="utf-8")).ids
    return _ID_CACHE[path]


def split_identifiers(page: _Page) -> list[str]:
    """Identifiers in table cells that are not kept whole: outside a code span, or broken."""
    found = []
    for cell in page.cells:
        for text, in_code in cell:
            if any(b in text for b in _BREAKERS):
                found.append(f"a break inside {text.strip()[:40]!r}")
            if not in_code:
                found += [f"{m.group(0)} (outside a code span)" for m in _IDENT.finditer(text)]
        whole = "".join(t for t, _ in cell)
        for b in _BREAKERS:
            for m in re.finditer(rf"\w{b}\w", whole):
                found.append(f"a break inside {whole[max(0, m.start() - 20):m.end() + 20]!r}")
    return sorted(set(found))


# ---------------------------------------------------------------------------------------------
# a whole site
# ---------------------------------------------------------------------------------------------

CHECKS = ("raw_tex", "missing_files", "broken_links", "split_identifiers")


def check_site(site: Path) -> dict[str, list[tuple[str, str]]]:
    """Every finding of every check on every page of ``site`` (a built MkDocs site)."""
    found: dict[str, list[tuple[str, str]]] = {c: [] for c in CHECKS}
    for path in sorted(site.rglob("*.html")):
        rel = path.relative_to(site).as_posix()
        if rel == "404.html":
            continue  # served from any depth: its relative links are not meant to resolve here
        page = parse(path.read_text(encoding="utf-8"))
        found["raw_tex"] += [(rel, x) for x in raw_tex(page)]
        found["missing_files"] += [(rel, x) for x in missing_files(page)]
        found["broken_links"] += [(rel, x) for x in broken_links(page, path, site)]
        found["split_identifiers"] += [(rel, x) for x in split_identifiers(page)]
    return found


def main(argv=None) -> int:
    site = Path((argv or sys.argv[1:] or ["site"])[0])
    found = check_site(site)
    for check, items in found.items():
        for page, what in items:
            print(f"{check}: {page}: {what}")
    print(", ".join(f"{len(v)} {k}" for k, v in found.items()))
    return 1 if any(found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
