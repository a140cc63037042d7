"""Helpers the engine tests share: seeding defects into a copy of a solution, and reading results."""

from __future__ import annotations

import dataclasses
import random
import re
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from grader.result import GradeResult
from grader.spec import LabSpec

# One edit of a file in the copy: (file, old text or compiled regex, new text); old None deletes the file.
Edit = tuple[str, str | re.Pattern | None, str | None]


@dataclass(frozen=True)
class Defect:
    """A mistake seeded into a copy of a lab's reference solution, and how grading that copy must answer it."""

    name: str  # short and hyphenated: the test id is lab<NN>-<name>
    what: str  # the mistake in words, shown when the test fails
    edits: tuple[Edit, ...]
    # The checks that must fail, each with the words its hint, message and evidence together must all contain.
    caught_by: dict[str, tuple[str, ...]]
    graded_alone: bool = False  # grade only the one check in caught_by (with the lab's params): one build
    every_other_check_passes: bool = False  # no check outside caught_by may fail, error or be skipped

    def __post_init__(self):
        object.__setattr__(self, "edits", tuple(self.edits))
        for check_id, words in self.caught_by.items():
            # A bare string would be read letter by letter, and every letter is easy to find.
            if isinstance(words, str) or not words:
                raise ValueError(f"{self.name}: the words for {check_id} must be a non-empty list of strings")
        object.__setattr__(self, "caught_by", {check_id: tuple(words) for check_id, words in self.caught_by.items()})
        if self.graded_alone and len(self.caught_by) != 1:
            raise ValueError(f"{self.name}: a defect graded alone is caught by exactly one check")


def only_check(spec: LabSpec, check_id: str) -> LabSpec:
    """`spec` with only one of its checks, so grading costs one build and one check."""
    return dataclasses.replace(spec, checks=tuple(c for c in spec.checks if c.check == check_id), learning_targets=())


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
