"""Batch grading: a whole class's submissions for one lab, into a gradebook, with exports and a report.

    summary = run_batch(submissions=Path("submissions/lab01"), lab="01", jobs=2)

Each submission (a folder, a zip or tar archive, a git repository) is unpacked safely and graded with
the same checks and limits as `python -m grader check`, `jobs` at a time on one engine (sharing its
build cache). Content graded before is answered from the gradebook, so an interrupted batch run again
resumes where it stopped. With `workers` (a Redis broker URL) the class goes instead to grading workers
on other Docker hosts, which store into a shared gradebook (PostgreSQL).

Modules: roster (who submitted what), unpack (safe extraction), runner (grade_one and the loop), display
(progress), outputs (CSV, per-learner exports and feedback); for workers: parcel (a submission packed
for the trip), workers (the Celery app, the task, a worker), dispatch (sending a class, following it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rich.console import Console

from grader import class_report, session
from grader.batch.display import BatchDisplay
from grader.batch.outputs import FORMATS, write_exports, write_feedback
from grader.batch.roster import Roster, Submission, discover, read_roster
from grader.batch.runner import DEFAULT_TIMEOUT_S, EngineFactory, Graded, GradeFunction, grade_one, run
from grader.batch.unpack import UnpackLimits
from grader.engine import Engine, connect
from grader.errors import GraderError, SpecError
from grader.gradebook import DEFAULT_URL, Gradebook
from grader.result import effective_status
from grader.spec import LabSpec, normalise_lab_id, official_specs

__all__ = ["BatchSummary", "Graded", "Submission", "grade_one", "lab_spec", "out_dir", "run_batch"]


@dataclass
class BatchSummary:
    """What a batch did."""

    lab: str
    graded: list[Graded]
    notes: list[str] = field(default_factory=list)  # entries left out, roster mismatches
    problems: list[str] = field(default_factory=list)  # submissions whose result could not be stored
    interrupted: bool = False
    seconds: float = 0.0
    out: Path | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def leftovers(self) -> dict[str, int]:
        """Engine objects the grades left behind (each was then removed): all zero when grading is tidy."""
        total = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
        for g in self.graded:
            for kind, n in g.leftovers.items():
                total[kind] += n
        return total

    def count(self, status: str) -> int:
        return sum(1 for g in self.graded if effective_status(g.result)[0] == status)

    @property
    def exit_code(self) -> int:
        """0 every submission was graded, 1 some could not be (invalid, error, timeout), 130 interrupted."""
        if self.interrupted:
            return 130
        if self.problems or any(effective_status(g.result)[0] != "graded" for g in self.graded):
            return 1
        return 0


def lab_spec(lab: str) -> LabSpec:
    """The official spec of `lab` ('1', '01' or '01-first-model-container'): a class is graded by it alone."""
    specs = official_specs()
    wanted = normalise_lab_id(lab, specs)
    if wanted not in specs:
        raise SpecError(f"unknown lab {lab!r}", hint=f"known labs: {', '.join(sorted(specs)) or 'none'}")
    return specs[wanted]


def out_dir(lab: str) -> Path:
    return Path("reports") / lab


def run_batch(
    *,
    submissions: Path,
    lab: str,
    jobs: int = 2,
    roster: Path | None = None,
    gradebook: str = DEFAULT_URL,
    out: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    quiet: bool = False,
    console: Console | None = None,
    limits: UnpackLimits | None = None,
    workers: str | None = None,
    grade: GradeFunction = session.grade,
    engine_factory: EngineFactory | None = None,
) -> BatchSummary:
    """Grade every submission in the folder `submissions` for `lab`, then write the exports and the report.

    `workers`: a Redis broker URL; the class is then graded by the workers listening there (`python -m
    grader worker`), each on its own engine, into the gradebook they share; `jobs` does not apply.
    Otherwise each submission is graded by `grade` on an engine from `engine_factory` (see runner.grade_one;
    None: this host's engine, connected first).

    Raises GraderError before grading anything when the lab, the folder, the roster, the gradebook, the
    engine or the broker is not usable. Ctrl-C returns a summary marked `interrupted` once the running
    grades have removed what they started (with workers: once what no worker started is withdrawn); the
    results stored so far stay, and the same call again resumes.
    """
    started = time.monotonic()
    spec = lab_spec(lab)
    folder = Path(submissions)
    if not folder.is_dir():
        raise GraderError(
            f"{folder} is not a folder", hint="pass the folder that holds one folder, archive or repository per learner"
        )
    people: Roster | None = read_roster(roster) if roster else None
    found, notes = discover(folder, people)
    if not found:
        raise GraderError(
            f"found no submissions in {folder}" + "".join(f"\n  {n}" for n in notes),
            hint="each learner's submission is a folder, a .zip, a .tar(.gz) or a git repository in that folder",
        )
    if workers:
        from grader.batch import dispatch  # Celery is loaded only when a batch asks for workers

        notes += dispatch.prepare(workers, gradebook, timeout_s)
    book = Gradebook(gradebook)
    try:
        if people:
            book.add_learners(list(people.people.values()))
        if not workers and engine_factory is None:
            engine_factory = partial(Engine, connect().client)
        with BatchDisplay(len(found), console, quiet, checks=len(spec.checks)) as display:
            for note in notes:
                display.note(f"[yellow]note:[/] {note}")
            if workers:
                outcome = dispatch.dispatch(
                    found, spec, book, broker=workers, timeout_s=timeout_s, display=display, limits=limits
                )
            else:
                outcome = run(
                    found,
                    spec,
                    book,
                    grade=grade,
                    engine_factory=engine_factory,
                    jobs=jobs,
                    timeout_s=timeout_s,
                    display=display,
                    limits=limits,
                )
        summary = BatchSummary(
            spec.id, outcome.graded, notes, outcome.problems, outcome.interrupted, out=Path(out or out_dir(spec.id))
        )
        if not summary.interrupted:
            summary.files = write_outputs(book, spec, summary.out)
    finally:
        book.close()
    summary.seconds = time.monotonic() - started
    return summary


def write_outputs(book: Gradebook, spec: LabSpec, out: Path, formats=FORMATS) -> list[Path]:
    """Every export, the learners' feedback and the class report of `spec`'s lab, into `out`."""
    max_score = sum(c.points for c in spec.checks)
    files = write_exports(book, spec.id, out, formats, max_score=max_score)
    files += write_feedback(book, spec.id, out)
    files.append(class_report.write(book, spec.id, out / "class-report.html", spec))
    return files
