"""Helpers the engine tests share: seeding defects into a copy of a solution, and reading results."""

from __future__ import annotations

import random
import re
import shutil
import signal
import time
from pathlib import Path

from grader.result import GradeResult


def apply_defect(solution: Path, tmp_path: Path, edits) -> Path:
    """Copy `solution` and apply `edits`: (file, old text or compiled regex, new text); old None deletes the file."""
    copy = tmp_path / "submission"
    shutil.copytree(solution, copy)
    for rel, old, new in edits:
        path = copy / rel
        if old is None:
            path.unlink()
            continue
        text = path.read_text()
        changed = old.sub(new, text, count=1) if isinstance(old, re.Pattern) else text.replace(old, new, 1)
        assert changed != text, f"defect edit did not apply to {rel}: the solution changed, update the test"
        path.write_text(changed)
    return copy


def results_by_check(result: GradeResult) -> dict[str, object]:
    return {t.id: t for t in result.tests}


def assert_nothing_left(engine) -> None:
    assert engine.leftovers() == {"containers": 0, "networks": 0, "volumes": 0, "images": 0}


def host_processes(word: str) -> list[int]:
    """Processes on this host whose command line holds `word` (a build step's `sleep NNNN`).

    BuildKit runs RUN steps as plain processes of the engine, not as containers `docker ps` lists: this is
    how a test sees that an interrupted build really stopped (it needs the engine on this machine).
    """
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if word in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def as_from_a_terminal() -> None:
    """`preexec_fn` for a grader started by a test that will press Ctrl-C (send SIGINT).

    A program started in the background by a non-interactive shell (as CI scripts often are) inherits
    SIGINT ignored, and Python then never raises KeyboardInterrupt: restore the default a terminal gives.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def unique_sleep() -> str:
    """A long build step no other run shares (`sleep 3000.NNNNNN`): a step left by an earlier run is not it."""
    return f"sleep 3000.{random.randrange(10**6):06d}"
