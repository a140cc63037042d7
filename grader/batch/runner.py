"""Grading a class: each submission unpacked, looked up in the gradebook, graded, stored, several at a time.

`grade_one` grades ONE submission from start to finish (unpack, content lookup, grade, store, tidy up);
it is the unit a worker on another host can run. `run` is the batch loop over a thread pool. One
submission's failure or timeout becomes its own result and never stops the others; Ctrl-C stops the
running grades at their next step, removes what they started, and keeps every result already stored.
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
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.batch.roster import Submission
from grader.batch.unpack import UnpackLimits, unpack
from grader.engine import Engine, connect
from grader.errors import GraderError
from grader.gradebook import Gradebook
from grader.progress import Progress, Step
from grader.result import GradeResult, submission_digest
from grader.session import grade
from grader.spec import LabSpec, resolve_spec

DEFAULT_TIMEOUT_S = 1800


class Cancelled(KeyboardInterrupt):
    """Raised inside a running grade when the batch is stopping: the grade removes what it started and ends."""


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


class BatchEngine(Engine):
    """The engine as one submission of a batch sees it: every step first checks that the batch goes on.

    It talks to the engine only through Engine's own methods. A build is stopped as soon as the batch
    stops, and never runs past the submission's deadline (its grade then ends as `timeout`).
    """

    def __init__(self, client, session: str, stop: threading.Event | None = None, deadline: float | None = None):
        super().__init__(client, session)
        self.stop = stop or threading.Event()
        self.deadline = deadline

    def _go_on(self) -> None:
        if self.stop.is_set():
            raise Cancelled()

    def build(self, context, dockerfile, tag, timeout_s, cancel=None, **options):
        self._go_on()
        if self.deadline is not None:
            timeout_s = max(1.0, min(timeout_s, self.deadline - time.monotonic()))
        return super().build(context, dockerfile, tag, timeout_s, cancel=_Either(cancel, self.stop), **options)

    def run_once(self, *args, **kwargs):
        self._go_on()
        return super().run_once(*args, **kwargs)

    def archive(self, *args, **kwargs):
        self._go_on()
        return super().archive(*args, **kwargs)

    def create_network(self, *args, **kwargs):
        self._go_on()
        return super().create_network(*args, **kwargs)

    def start_service(self, *args, **kwargs):
        self._go_on()
        return super().start_service(*args, **kwargs)

    def inspect_image(self, *args, **kwargs):
        self._go_on()
        return super().inspect_image(*args, **kwargs)

    def history(self, *args, **kwargs):
        self._go_on()
        return super().history(*args, **kwargs)

    def state(self, container):  # polled while waiting for readiness: a stop ends the wait at once
        self._go_on()
        return super().state(container)

    def host_port(self, container, port):
        self._go_on()
        return super().host_port(container, port)

    def exec(self, container, cmd):
        self._go_on()
        return super().exec(container, cmd)


class _Either:
    """Set when any of its events is set (what Engine.build polls as its `cancel`)."""

    def __init__(self, *events):
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


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
    client=None,
    session: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    limits: UnpackLimits | None = None,
) -> Graded:
    """Grade one submission and store the result; answered from the gradebook when its content was graded.

    `client` is a connected Docker client (None: connect here). Raises Cancelled when `stop` is set while
    it grades (nothing is stored then, and everything it started is removed); never raises for the
    learner's faults: an unsafe archive, a wrong lab or a crashing service become the stored result.
    """
    started = time.monotonic()
    key = grading_key(spec)
    scratch = Path(tempfile.mkdtemp(prefix="grader-batch-"))
    engine: BatchEngine | None = None
    leftovers: dict[str, int] = {}
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

        engine = BatchEngine(
            client or connect().client, session or uuid.uuid4().hex[:12], stop, deadline=started + timeout_s
        )
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
                deadline=engine.deadline,  # the engine's: work it stops there is reported as past the limit
            )
        except Cancelled:
            raise
        except Exception as err:  # a grader bug on this submission: an error for it alone, never a crash of all
            message = f"grader error: {type(err).__name__}: {err}\n{traceback.format_exc(limit=5)}"
            result = _ungradable(spec, submission, "error", message, started)
        _relabel(result, submission, folder)
        result.submission["sha256"] = digest  # the key later lookups use, whatever grade() computed
        leftovers, engine_session = _tidy(engine), engine.session
        engine = None
        graded = _store(gradebook, result, submission, key, timeout_s, started)
        graded.leftovers, graded.session = leftovers, engine_session
        return graded
    finally:
        if engine is not None:  # interrupted: make sure nothing of this grade stays on the engine
            _tidy(engine)
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


def _tidy(engine: Engine) -> dict[str, int]:
    """What the grade left on the engine (it removes everything itself); removed here if anything is left."""
    left = engine.leftovers()
    if any(left.values()):
        engine.remove_session()
    return left


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
    client,
    jobs: int = 2,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    display: Display | None = None,
    limits: UnpackLimits | None = None,
) -> RunOutcome:
    """Grade `submissions` with `jobs` at a time; results are stored as each one finishes."""
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
                client=client,
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
