"""Handing a class to grading workers: each submission packed and sent, its result followed as it comes back.

The machine that sends the batch needs no Docker engine: the workers grade, each on its own engine, and
store into the shared gradebook (grader/batch/workers.py); here each result is read back from the
gradebook as its worker reports it done, so that the batch ends with the same summary, grades, feedback,
exports and report as a local one. Ctrl-C withdraws what no worker has started yet; grades already
running finish on their workers and are stored, and the same command again resumes.
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from celery.result import AsyncResult

from grader.batch.parcel import MAX_PARCEL_BYTES, pack
from grader.batch.roster import Submission
from grader.batch.runner import DEFAULT_TIMEOUT_S, Display, Graded, RunOutcome, grading_key, refuse
from grader.batch.unpack import UnpackLimits
from grader.batch.workers import (
    HARD_MARGIN_S,
    MAX_TIMEOUT_S,
    QUEUE,
    SOFT_MARGIN_S,
    TASK,
    check_broker_url,
    check_shared_gradebook,
    make_app,
    ping_broker,
    shown,
)
from grader.errors import GraderError, UnsafeSubmission
from grader.gradebook import Gradebook
from grader.spec import LabSpec

POLL_S = 0.5


def prepare(broker: str, gradebook_url: str, timeout_s: float) -> list[str]:
    """Check, before anything is sent, that the workers can be reached and can share the gradebook.

    Raises GraderError saying what to change; returns notes for the instructor.
    """
    check_broker_url(broker)
    notes = check_shared_gradebook(gradebook_url, broker)
    if timeout_s > MAX_TIMEOUT_S:
        raise GraderError(
            f"a time limit of {timeout_s:g}s is longer than grading workers allow ({MAX_TIMEOUT_S}s)",
            hint=f"use --timeout {MAX_TIMEOUT_S} or less",
        )
    ping_broker(broker)
    return notes


def dispatch(
    submissions: list[Submission],
    spec: LabSpec,
    gradebook: Gradebook,
    *,
    broker: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    display: Display | None = None,
    limits: UnpackLimits | None = None,
    max_parcel_bytes: int = MAX_PARCEL_BYTES,
) -> RunOutcome:
    """Send every submission to the workers listening on `broker`, and wait for each result."""
    display = display or Display()
    outcome = RunOutcome([], False, [])
    app = make_app(broker)
    pending: dict[str, Submission] = {}
    try:
        workers = sorted(name for reply in app.control.ping(timeout=2.0) for name in reply)
        display.note(
            f"{len(workers)} grading worker(s) answer: {', '.join(workers)}"
            if workers
            else f"no grading worker answers yet: the class waits at {shown(broker)} until one starts "
            f"(python -m grader worker --broker URL --gradebook URL, on each Docker host)"
        )
        key = grading_key(spec)
        for submission in submissions:
            try:
                parcel = pack(
                    submission,
                    lab=spec.id,
                    grading_key=key,
                    timeout_s=timeout_s,
                    limits=limits,
                    max_bytes=max_parcel_bytes,
                )
            except UnsafeSubmission as err:  # stored here as invalid: no worker could take it
                try:
                    graded = refuse(submission, spec, gradebook, str(err), timeout_s=timeout_s)
                except Exception as failed:  # e.g. the gradebook could not be written: this submission only
                    outcome.problems.append(f"{submission.name}: {type(failed).__name__}: {failed}")
                    display.note(f"[red]could not store {submission.name}:[/] {failed}")
                else:
                    outcome.graded.append(graded)
                    display.finished(graded)
                continue
            sent = app.send_task(
                TASK,
                args=[parcel.to_payload()],
                queue=QUEUE,
                soft_time_limit=timeout_s + SOFT_MARGIN_S,
                time_limit=timeout_s + HARD_MARGIN_S,
            )
            pending[sent.id] = submission
        _follow(app, pending, spec, gradebook, display, outcome)
    except KeyboardInterrupt:
        outcome.interrupted = True
        if pending:
            app.control.revoke(list(pending))  # a task no worker has started is dropped; running ones finish
        display.note(
            f"Stopped: {len(pending)} submission(s) withdrawn or left to finish on their workers (a running grade "
            "is stored when it ends); finished results are kept..."
        )
    finally:
        app.close()
    return outcome


def _follow(app, pending: dict[str, Submission], spec, gradebook, display: Display, outcome: RunOutcome) -> None:
    """Poll the result store until every sent submission is done; report each as it comes back."""
    running: dict[str, tuple[str, int]] = {}  # task id -> (worker, checks done), as last shown
    while pending:
        for task_id, submission in list(pending.items()):
            result = AsyncResult(task_id, app=app)
            state = result.state
            if state in ("STARTED", "PROGRESS"):
                info = result.info if isinstance(result.info, dict) else {}
                worker = info.get("worker") or info.get("hostname") or "a worker"
                if task_id not in running:
                    running[task_id] = (worker, 0)
                    display.started(submission)
                    display.status(submission, f"on {worker}")
                if "step" in info:  # the display counts checks one by one: catch up with those done since
                    done = running[task_id][1]
                    checks = max(done, int(info.get("checks") or 0))
                    text = f"{info['step']} ({worker})"
                    for _ in range(checks - done):
                        display.status(submission, text, check=True)
                    display.status(submission, text)
                    running[task_id] = (worker, checks)
                continue
            if state not in ("SUCCESS", "FAILURE", "REVOKED"):
                continue  # PENDING (queued) or RETRY
            del pending[task_id]
            if task_id in running:
                running.pop(task_id)
                display.stopped(submission)
            try:
                graded = _graded(submission, spec, gradebook, state, result)
            except GraderError as err:
                outcome.problems.append(f"{submission.name}: {err.message}")
                display.note(f"[red]not graded: {submission.name}:[/] {err.message}")
            else:
                outcome.graded.append(graded)
                display.finished(graded)
            finally:
                result.forget()
        if pending:
            time.sleep(POLL_S)


def _graded(submission: Submission, spec: LabSpec, gradebook: Gradebook, state: str, result: AsyncResult) -> Graded:
    """What a worker's answer says about `submission`, its result read from the gradebook."""
    if state == "REVOKED":
        raise GraderError("withdrawn before a worker graded it")
    if state == "FAILURE":
        err = result.result
        raise GraderError(f"its worker failed: {type(err).__name__}: {err}")
    answer = result.result if isinstance(result.result, dict) else {}
    if "refused" in answer:
        raise GraderError(f"refused by {answer.get('worker')}: {answer['refused']}")
    worker = answer.get("worker", "a worker")
    try:
        stored = gradebook.result(int(answer["attempt_id"]))
    except (KeyError, TypeError, ValueError, sa.exc.NoResultFound):
        stored = None
    if stored is None or (stored.submission.get("lab"), stored.submission.get("id")) != (spec.id, submission.name):
        raise GraderError(
            f"{worker} stored its result in another gradebook (attempt {answer.get('attempt_id')} is not this "
            "submission's here): start every worker with --gradebook naming the batch's database"
        )
    return Graded(
        submission,
        stored,
        int(answer["attempt_id"]),
        reused=bool(answer.get("reused")),
        seconds=float(answer.get("seconds") or 0.0),
        leftovers=dict(answer.get("leftovers") or {}),
        session=answer.get("session"),
    )
