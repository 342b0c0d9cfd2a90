"""The repository is self-contained: no file cites a design file or an issue tracker outside it.

Decisions are written in ``docs/design.md`` (in the project's own words) and cited by section;
a citation of an outside design document or of an issue number sends a reader to something
they do not have. Every file git tracks (or, outside a git checkout, every file of the source
tree) is searched for such citations.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# the patterns (and the examples below) are assembled from pieces so that this file does not
# cite what it forbids
_DESIGN_FILE = "DESI" + "GN"
_ISSUE = "iss" + "ue"
CITATION = re.compile(
    rf"\b{_DESIGN_FILE}\b"                 # the outside design notes, with or without .md
    rf"|\b[Ii]{_ISSUE[1:]}s?\s*#?\s*\d+"   # a number, a list of numbers, a #number
    rf"|\breport of (the )?{_ISSUE}\b"      # the report of one
    rf"|\bthe {_ISSUE}'s\b",               # its closing note, its shapes, ...
)

_SKIP_DIRS = {".git", ".venv", "venv", "site", "build", "dist", ".numba_cache", "__pycache__",
              ".pytest_cache", ".hypothesis"}


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
        files = [f for f in out.stdout.decode().split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if files:
        return files
    return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*")
            if p.is_file() and not _SKIP_DIRS & set(p.relative_to(ROOT).parts)]


def citations(text: str) -> list[str]:
    """The lines of ``text`` that cite an outside design file or an issue number."""
    return [f"{n}: {line.strip()}" for n, line in enumerate(text.splitlines(), 1)
            if CITATION.search(line)]


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):  # binary files (figures) cite nothing
        return None


def test_no_file_cites_outside_documents():
    found = {}
    for rel in tracked_files():
        text = _text(ROOT / rel)
        if text is not None and citations(text):
            found[rel] = citations(text)
    assert not found, "cite docs/design.md#<section> instead:\n" + "\n".join(
        f"{f}:{c}" for f, cs in found.items() for c in cs)


@pytest.mark.parametrize("line", [
    "see " + _DESIGN_FILE + ".md, 'The mathematics'",
    "(" + _DESIGN_FILE + " notes)",
    _ISSUE.title() + " 4: the corpus",
    f"the goals ({_ISSUE} 5)",
    f"{_ISSUE}s 4 and 6",
    f"{_ISSUE} #12",
    f"See the report of {_ISSUE} 7.",
    f"(the table in the {_ISSUE}'s closing note)",
])
def test_citation_pattern_catches(line):
    assert citations(line)


@pytest.mark.parametrize("line", [
    "see docs/design.md#accuracy",
    "a CorrectRoundingWarning is issued",
    "the design contract of the kernels",
    "t" + _ISSUE + " 4",
])
def test_citation_pattern_lets_through(line):
    assert not citations(line)
