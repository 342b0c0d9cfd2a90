"""Session-wide set-up: start the bounds-checked corpus run in the background.

``tests/test_boundscheck.py`` runs the corpora in a subprocess with ``NUMBA_BOUNDSCHECK=1``,
which recompiles every kernel it reaches with bounds checks (about four minutes of one core).
The rest of the suite is mostly Numba compilation on one core, so the subprocess starts as soon
as collection is done and the test, moved to the end of the run, only collects its output.
Running ``pytest tests/test_boundscheck.py`` alone behaves the same, just without the overlap.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest

BOUNDSCHECK_TEST = "test_boundscheck.py::test_corpora_run_clean_with_boundscheck"

_state: dict = {}


def _is_boundscheck(item) -> bool:
    return item.nodeid.endswith(BOUNDSCHECK_TEST)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    # the bounds-checked run goes last, so that it overlaps with everything else
    items.sort(key=_is_boundscheck)


def pytest_collection_finish(session):
    if not session.config.option.collectonly and any(_is_boundscheck(i) for i in session.items):
        import test_boundscheck as tb

        _state["tmp"] = tempfile.mkdtemp(prefix="crossent-boundscheck-")
        _state["proc"] = tb.start_checked_run(_state["tmp"])


def pytest_sessionfinish(session, exitstatus):
    proc = _state.pop("proc", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    tmp = _state.pop("tmp", None)
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def boundscheck_process():
    """The background ``NUMBA_BOUNDSCHECK=1`` subprocess, started by
    ``pytest_collection_finish`` whenever the test that uses it is selected."""
    return _state["proc"]
