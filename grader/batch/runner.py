"""Grading a class: each submission unpacked, looked up in the gradebook, graded, stored, several at a time.

`grade_one` grades ONE submission from start to finish (unpack, content lookup, grade, store, tidy up);
it is the unit a worker on another host can run. `run` is the batch loop over a thread pool. One
submission's failure or timeout becomes its own result and never stops the others; Ctrl-C stops the
running grades at their next step, removes what they started, and keeps every result already stored.

Both are given the function that grades (grader.session.grade) and how to make a submission's engine
(`partial(Engine, client)`): each grade gets an engine of its own session, with the batch's stop event
and the submission's deadline (grader/engine/client.py), so that the engine itself ends a stopped grade.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import shutil
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.batch.roster import Submission
from grader.batch.unpack import UnpackLimits, unpack
from grader.engine import Cancelled, Engine
from grader.errors import GraderError
from grader.gradebook import Gradebook
from grader.progress import Progress, Step
from grader.result import GradeResult, submission_digest
from grader.spec import LabSpec, resolve_spec

DEFAULT_TIMEOUT_S = 1800

# grade(folder, spec, *, learner, progress, engine, timeout_s, failures_before, deadline): grader.session.grade
GradeFunction = Callable[..., GradeResult]
# make_engine(session=..., stop=..., deadline=...): an Engine with its client given, partial(Engine, client)
EngineFactory = Callable[..., Engine]


@dataclass
class Graded:
    """What became of one submission."""

    submission: Submission
    result: GradeResult
    attempt_id: int | None  # the gradebook row that holds the result
    reused: bool = False  # answered from the gradebook: this content was graded before
    seconds: float = 0.0
    leftovers: dict[str, int] = field(default_factory=dict)  # engine objects the grade left (then removed)
    session: str | None = None  # the engine session label it was graded under (None: not graded here)


def grading_key(spec: LabSpec) -> str:
    """Which spec and grader graded a result: a stored result answers only for the same key."""
    # The spec's own folder is left out: the same lab graded from another checkout is the same grading.
    text = repr(dataclasses.replace(spec, path=Path("."))) + "\0" + __version__
    return hashlib.sha256(text.encode()).hexdigest()


class JobProgress(Progress):
    """Progress of one submission in a batch: reports its current step, and stops between checks.

    `report(text, check)` is called with each step's title, and with each check's title (check=True).
    """

    def __init__(self, report: Callable[[str, bool], None], stop: threading.Event | None = None):
        super().__init__(quiet=True)
        self.report = report
        self.stop = stop or threading.Event()

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        # Never raises: "Cleaning up" is a step too, and it must run to the end.
        self.report(title, False)
        yield Step(
            lambda line: self.report(f"{title}: {line.strip()[:60]}", False) if line.startswith("Step ") else None
        )

    def checking(self, title: str) -> None:
        if self.stop.is_set():
            raise Cancelled()
        self.report(title, True)


def grade_one(
    submission: Submission,
    spec: LabSpec,
    gradebook: Gradebook,
    *,
    grade: GradeFunction,
    engine_factory: EngineFactory,
    session: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    limits: UnpackLimits | None = None,
) -> Graded:
    """Grade one submission with `grade` and store the result; answered from the gradebook when its content
    was graded.

    The grade runs on an engine of its own, `engine_factory(session=session, stop=stop, deadline=...)`;
    whatever it leaves there is removed with the engine's `remove_session`. Raises Cancelled when `stop`
    is set while it grades (nothing is stored then, and everything it started is removed); never raises
    for the learner's faults: an unsafe archive, a wrong lab or a crashing service become the stored result.
    """
    started = time.monotonic()
    deadline = started + timeout_s
    key = grading_key(spec)
    scratch = Path(tempfile.mkdtemp(prefix="grader-batch-"))
    engine: Engine | None = None
    try:
        folder = scratch / _file_name(submission.learner)
        digest = ""
        try:
            folder = unpack(submission.path, folder, submission.kind, limits)
            digest = submission_digest(folder)
            resolve_spec(folder, spec.id)  # a submission whose lab.yaml names another lab is refused
        except GraderError as err:
            digest = digest or _file_digest(submission.path)
            if same := _unchanged(gradebook, spec, submission, digest, key, []):
                return Graded(submission, gradebook.result(same.id), same.id, reused=True)
            result = _ungradable(spec, submission, "invalid", str(err), started)
            result.submission["sha256"] = digest
            _relabel(result, submission, folder)
            return _store(gradebook, result, submission, key, timeout_s, started)

        stored = gradebook.reusable(spec.id, digest, key, timeout_s)
        if same := _unchanged(gradebook, spec, submission, digest, key, stored):
            # The learner's latest attempt is this very content: answered by it, no new attempt (a resumed batch).
            return Graded(
                submission, gradebook.result(same.id), same.id, reused=True, seconds=time.monotonic() - started
            )
        if stored:  # graded before (an earlier attempt, or someone else's identical files): a new attempt, same result
            result = gradebook.result(stored[-1].id)
            _relabel(result, submission)
            result.submission["submitted_at"] = datetime.now(UTC).isoformat(timespec="seconds")
            graded = _store(gradebook, result, submission, key, timeout_s, started, reused_from=stored[-1].id)
            graded.reused = True
            return graded

        engine = engine_factory(session=session, stop=stop, deadline=deadline)
        try:
            result = grade(
                folder,
                spec,
                learner=submission.learner,
                progress=progress,
                engine=engine,
                timeout_s=timeout_s,
                # A tiered hint shows the next tier each time this learner fails the same check again.
                failures_before=gradebook.failures_per_check(spec.id, submission.learner),
                deadline=deadline,  # the engine's: work it stops there is reported as past the limit
            )
        except Cancelled:
            raise
        except Exception as err:  # a grader bug on this submission: an error for it alone, never a crash of all
            message = f"grader error: {type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"
            result = _ungradable(spec, submission, "error", message, started)
        _relabel(result, submission, folder)
        result.submission["sha256"] = digest  # the key later lookups use, whatever grade() computed
        # The grade removes everything itself: what is found here was left (and is removed now).
        leftovers, engine_session = engine.remove_session(), engine.session
        engine = None
        graded = _store(gradebook, result, submission, key, timeout_s, started)
        graded.leftovers, graded.session = leftovers, engine_session
        return graded
    finally:
        if engine is not None:  # interrupted: make sure nothing of this grade stays on the engine
            engine.remove_session()
        shutil.rmtree(scratch, ignore_errors=True)


def refuse(
    submission: Submission, spec: LabSpec, gradebook: Gradebook, message: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> Graded:
    """Store `submission` as invalid with `message`, as grade_one stores one it cannot unpack.

    For a submission refused before any grading could start (one too large to send to a grading worker).
    The same file refused again is answered by the attempt already stored.
    """
    started = time.monotonic()
    key = grading_key(spec)
    digest = _file_digest(submission.path)
    if same := _unchanged(gradebook, spec, submission, digest, key, []):
        return Graded(submission, gradebook.result(same.id), same.id, reused=True)
    result = _ungradable(spec, submission, "invalid", message, started)
    result.submission["sha256"] = digest
    return _store(gradebook, result, submission, key, timeout_s, started)


def _unchanged(gradebook: Gradebook, spec: LabSpec, submission: Submission, digest: str, key: str, stored: list):
    """The learner's latest attempt when it holds this very content and still answers for it, else None.

    It answers when it was refused as invalid (the same files are refused again), or when it is among the
    `stored` results that may answer (graded, or a timeout under no shorter limit); an error never answers.
    """
    latest = gradebook.latest(spec.id, submission.learner) if digest else None
    if latest is None or latest.content_sha256 != digest or latest.grading_key != key:
        return None
    if latest.status == "invalid" or latest.id in {a.id for a in stored}:
        return latest
    return None


def _file_digest(path: Path) -> str:
    """The content hash of an archive that could not be unpacked ('' for a folder: links in it are not followed)."""
    if not path.is_file():
        return ""
    with open(path, "rb") as f:
        return "file:" + hashlib.file_digest(f, "sha256").hexdigest()


def _store(
    gradebook: Gradebook,
    result: GradeResult,
    submission: Submission,
    key: str,
    timeout_s: float,
    started: float,
    reused_from: int | None = None,
) -> Graded:
    attempt_id = gradebook.record(
        result,
        submission=submission.name,
        source=submission.kind,
        grading_key=key,
        timeout_s=timeout_s,
        reused_from=reused_from,
    )
    return Graded(submission, result, attempt_id, seconds=time.monotonic() - started)


def _ungradable(spec: LabSpec, submission: Submission, status: str, message: str, started: float) -> GradeResult:
    result = GradeResult.start(spec, submission.path, submission.learner, __version__)
    _relabel(result, submission)
    return result.finish(status, message, started)


def _relabel(result: GradeResult, submission: Submission, folder: Path | None = None) -> None:
    """Name the submission as the class folder does, not by the scratch copy that was graded."""
    result.submission.update(
        id=submission.name, learner=submission.learner, path=str(submission.path), source=submission.kind
    )
    if folder is not None:  # "no Dockerfile in /tmp/grader-batch-x1y2/ada" reads "no Dockerfile in ada.zip"
        scratch = str(folder)
        result.message = result.message.replace(scratch, submission.name)
        for t in result.tests:
            t.message = t.message.replace(scratch, submission.name)
            t.evidence = t.evidence.replace(scratch, submission.name)


def _file_name(learner: str) -> str:
    return re.sub(r"[^\w.@-]", "_", learner).lstrip(".") or "submission"


# --- the batch loop ----------------------------------------------------------------------------------
class Display:
    """What the loop tells the instructor; the silent default."""

    def started(self, submission: Submission) -> None: ...

    def status(self, submission: Submission, text: str, check: bool = False) -> None: ...

    def stopped(self, submission: Submission) -> None: ...

    def finished(self, graded: Graded) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class RunOutcome:
    graded: list[Graded]
    interrupted: bool
    problems: list[str]  # submissions whose result could not even be stored


def run(
    submissions: list[Submission],
    spec: LabSpec,
    gradebook: Gradebook,
    *,
    grade: GradeFunction,
    engine_factory: EngineFactory,
    jobs: int = 2,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    display: Display | None = None,
    limits: UnpackLimits | None = None,
) -> RunOutcome:
    """Grade `submissions` with `jobs` at a time (see grade_one); results are stored as each one finishes."""
    display = display or Display()
    stop = threading.Event()
    outcome = RunOutcome([], False, [])

    def job(submission: Submission) -> Graded | None:
        if stop.is_set():
            return None
        display.started(submission)
        try:
            return grade_one(
                submission,
                spec,
                gradebook,
                grade=grade,
                engine_factory=engine_factory,
                timeout_s=timeout_s,
                progress=JobProgress(lambda text, check: display.status(submission, text, check), stop),
                stop=stop,
                limits=limits,
            )
        except Cancelled:
            return None
        finally:
            display.stopped(submission)

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="grader-batch")
    futures = {pool.submit(job, s): s for s in submissions}
    try:
        for future in as_completed(futures):
            try:
                graded = future.result()
            except Exception as err:  # e.g. the gradebook could not be written: this submission only
                outcome.problems.append(f"{futures[future].name}: {type(err).__name__}: {err}")
                display.note(f"[red]could not grade or store {futures[future].name}:[/] {err}")
                continue
            if graded is not None:
                outcome.graded.append(graded)
                display.finished(graded)
    except KeyboardInterrupt:
        outcome.interrupted = True
        stop.set()
        display.note("Stopping: the running grades remove what they started; finished results are kept...")
        for future in futures:
            future.cancel()
    finally:
        while True:
            try:
                pool.shutdown(wait=True, cancel_futures=True)
                break
            except KeyboardInterrupt:  # a second Ctrl-C must not leave containers behind: keep waiting
                stop.set()
                outcome.interrupted = True
                display.note("Still removing what the running grades started, a moment...")
    return outcome
