"""A learner's own record on this machine: every `python -m grader check` of a lab, and every
knowledge check answered in the workbook.

It picks the tier of a failed check's hint (a nudge first, the exact fix only after repeated failures)
and answers `python -m grader progress`: what is done, and the next step. It is a gradebook like an
instructor's (grader/gradebook.py), in a file of the learner's own: $GRADER_PROGRESS, else
$XDG_DATA_HOME/ml-grader/progress.sqlite (~/.local/share/ml-grader/). GRADER_PROGRESS=off keeps nothing.
A record that cannot be opened never stops a grade: the grade goes on with first-tier hints, and says why.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GradebookError
from grader.gradebook import Gradebook
from grader.result import GradeResult
from grader.spec import REPO_ROOT, official_specs

ENV = "GRADER_PROGRESS"
# The learning path (docs/learning-path.md): each chapter, then the lab it prepares.
PATH = (
    ("chapter", "00"),
    ("chapter", "01"),
    ("chapter", "02"),
    ("lab", "01"),
    ("chapter", "03"),
    ("lab", "02"),
    ("chapter", "04"),
    ("lab", "03"),
    ("chapter", "05"),
    ("lab", "04"),
    ("chapter", "06"),
    ("lab", "05"),
    ("chapter", "07"),
    ("lab", "06"),
    ("chapter", "08"),
    ("lab", "07"),
    ("chapter", "09"),
)


def learner_name() -> str:
    """Who this machine's learner is: $WORKBOOK_LEARNER, else the login name."""
    try:
        return os.environ.get("WORKBOOK_LEARNER") or getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "learner"


def record_path() -> Path | None:
    """Where the record lives, or None when GRADER_PROGRESS=off."""
    chosen = os.environ.get(ENV, "")
    if chosen.lower() in ("off", "0", "no", "false"):
        return None
    if chosen:
        return Path(chosen).expanduser()
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "ml-grader" / "progress.sqlite"


def open_record(create: bool = True) -> Gradebook | None:
    """The learner's record (None when switched off, or when reading and there is none yet)."""
    path = record_path()
    if path is None or (not create and not path.is_file()):
        return None
    return Gradebook(f"sqlite:///{path}", create=create)


def failures_so_far(lab: str) -> tuple[dict[str, int], str]:
    """How often this learner's earlier checks of `lab` failed each check, and a note when it is unknown."""
    try:
        book = open_record(create=False)
    except GradebookError as err:
        return {}, f"note: hints start from the first tier: {err.message}"
    if book is None:
        return {}, ""
    try:
        return book.failures_per_check(lab, learner_name()), ""
    finally:
        book.close()


def record_check(result: GradeResult, timeout_s: float) -> str:
    """Keep one `check` in the record; returns a note when it could not be kept ("" when kept or off)."""
    mine = dataclasses.replace(result, submission={**result.submission, "learner": learner_name()})
    try:
        book = open_record()
        if book is None:
            return ""
        try:
            book.record(
                mine,
                submission=str(result.submission.get("path", "")),
                source="check",
                grading_key="",
                timeout_s=timeout_s,
            )
        finally:
            book.close()
    except GradebookError as err:
        return f"note: this attempt is not in your progress record: {err.message}"
    return ""


def record_quiz(chapter: str, right: int, total: int) -> None:
    """Keep a knowledge check's score (the workbook calls this; a record that cannot open is skipped)."""
    _keep(lambda book: book.record_quiz(learner_name(), chapter, right, total))


def record_chapter_run(chapter: str) -> None:
    """Keep that the learner ran `chapter` through to its knowledge check (the workbook calls this)."""
    _keep(lambda book: book.record_chapter_run(learner_name(), chapter))


def _keep(write) -> None:
    """Write into the record; a record that is off or cannot open is skipped (the workbook goes on)."""
    try:
        book = open_record()
    except GradebookError:
        return
    if book is None:
        return
    try:
        write(book)
    finally:
        book.close()


@dataclass
class Step:
    kind: str  # "chapter" or "lab"
    id: str
    title: str
    done: bool
    status: str  # what the record says, in words


def steps(book: Gradebook | None, learner: str) -> list[Step]:
    """The learning path with what the record holds for each step; labs not on the path (extra labs) last."""
    quizzes = book.quiz_results(learner) if book else {}
    runs = book.chapter_runs(learner) if book else {}
    labs = official_specs()
    on_path = {step_id for kind, step_id in PATH if kind == "lab"}
    out = []
    for kind, step_id in (*PATH, *(("lab", lab) for lab in sorted(labs) if lab not in on_path)):
        if kind == "chapter":
            right, total = quizzes.get(step_id, (0, 0))
            status = f"knowledge check {right}/{total}" if total else "knowledge check not taken"
            if step_id in runs:
                status = f"ran {runs[step_id]} time(s); {status}"
            out.append(Step(kind, step_id, chapter_title(step_id), total > 0 and right == total, status))
        elif step_id in labs:
            out.append(lab_step(book, learner, step_id, labs[step_id].title))
    return out


def lab_step(book: Gradebook | None, learner: str, lab: str, title: str) -> Step:
    """A lab's step: its best counted score in the record."""
    attempts = book.attempts(lab, learner) if book else []
    counted = [a for a in attempts if a.counted]
    best = max(counted, key=lambda a: a.score or 0, default=None)
    if best is None:
        status = "not checked yet" if not attempts else f"{len(attempts)} check(s), none graded"
    else:
        status = f"best {best.score:g}/{best.max_score:g} in {len(attempts)} check(s)"
    done = best is not None and best.score == best.max_score
    return Step("lab", lab, title, done, status)


def chapter_title(chapter: str) -> str:
    """The first heading of notebooks/NN-*.ipynb, without its '#'."""
    for notebook in sorted((REPO_ROOT / "notebooks").glob(f"{chapter}-*.ipynb")):
        try:
            cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        except (OSError, ValueError, KeyError):
            return notebook.stem
        for cell in cells:
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("# "):
                    return re.sub(r"^Chapter \d+:\s*", "", line[2:].strip())
        return notebook.stem
    return ""
