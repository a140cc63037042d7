"""nbval runs each notebook here as a test, cell by cell, against the real engine.

Every notebook needs the engine: its cells are marked `engine` (so `make test-unit` leaves them out),
skipped with the reason on a laptop without one, and failed in CI. At the end the time each notebook
took is printed, so the workbook's cost in CI stays visible.
"""

from __future__ import annotations

import os
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

REQUIRE_ENGINE = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The learner's own record (grader/learner_record.py) of what the tests grade and answer goes to a file of
# the run's own, never into the record of whoever runs the tests.
os.environ.setdefault("GRADER_PROGRESS", os.path.join(tempfile.mkdtemp(prefix="grader-progress-"), "progress.sqlite"))
_seconds: dict[str, float] = defaultdict(float)


def _engine_problem() -> str:
    from grader.engine import connect
    from grader.errors import EngineUnavailable

    try:
        connect()
        return ""
    except EngineUnavailable as err:
        return str(err)


def pytest_collection_modifyitems(config, items):
    notebook_items = [i for i in items if str(i.fspath).endswith(".ipynb")]
    if not notebook_items:
        return
    problem = _engine_problem()
    for item in notebook_items:
        item.add_marker(pytest.mark.engine)
        if problem and not REQUIRE_ENGINE:
            item.add_marker(pytest.mark.skip(reason=f"no Docker engine: {problem}"))


def pytest_runtest_logreport(report):
    if report.fspath.endswith(".ipynb"):
        _seconds[Path(report.fspath).name] += report.duration


def pytest_terminal_summary(terminalreporter):
    if _seconds:
        terminalreporter.section("time per notebook")
        for name, seconds in sorted(_seconds.items()):
            terminalreporter.write_line(f"{name:<45} {seconds:7.1f} s")
