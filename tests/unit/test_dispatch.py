"""Sending a class to grading workers, with a stand-in for Celery: no broker, no engine.

The stand-in app "runs" each task at once with the real `grade_parcel` (given a stand-in grade and
engines), and the result store replays a script of states per task, so that the loop's handling of
progress, answers, failures, refusals and Ctrl-C is proven without a broker.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from made_engines import NOTHING, Engines
from made_results import make_result

from grader.batch import dispatch
from grader.batch.roster import Submission
from grader.batch.runner import Display
from grader.batch.workers import grade_parcel


def passing_grade(folder, spec, *, learner, **kwargs):
    return make_result(spec, learner=learner)


class FakeApp:
    """What dispatch uses of a Celery app. `script[learner]` lists extra states before the worker's answer."""

    def __init__(self, book, script=None, workers=("w1@a", "w2@b")):
        self.book, self.script, self.workers = book, script or {}, workers
        self.sent: list[dict] = []
        self.revoked: list[str] = []
        self.states: dict[str, list] = {}
        self.control = self
        self.closed = False

    def ping(self, timeout):
        return [{name: {"ok": "pong"}} for name in self.workers]

    def send_task(self, name, args, queue, soft_time_limit, time_limit):
        payload = json.loads(json.dumps(args[0]))  # as it travels
        task_id = f"task-{len(self.sent)}"
        self.sent.append({"name": name, "payload": payload, "queue": queue, "limits": (soft_time_limit, time_limit)})
        workers = self.workers or ("late@c",)  # with none answering at first, one starts later
        worker = workers[len(self.sent) % len(workers)]
        states = [
            ("PENDING", None),
            ("STARTED", {"hostname": worker}),
            ("PROGRESS", {"worker": worker, "step": "Building", "checks": 2}),
        ]
        extra = self.script.get(payload["learner"])
        if extra is None:
            answer = grade_parcel(payload, self.book, grade=passing_grade, engine_factory=Engines(), worker=worker)
            states.append(("SUCCESS", answer))
        else:
            states += extra
        self.states[task_id] = states
        return SimpleNamespace(id=task_id)

    def revoke(self, task_ids):
        self.revoked += task_ids

    def close(self):
        self.closed = True


class FakeResult:
    def __init__(self, task_id, app):
        states = app.states[task_id]
        self.state, value = states.pop(0) if len(states) > 1 else states[0]
        if self.state == "INTERRUPT":
            raise KeyboardInterrupt
        self.info = self.result = value

    def forget(self):
        pass


class Seen(Display):
    def __init__(self):
        self.lines: list[tuple] = []

    def started(self, submission):
        self.lines.append(("started", submission.name))

    def status(self, submission, text, check=False):
        self.lines.append(("status", submission.name, text, check))

    def finished(self, graded):
        self.lines.append(("finished", graded.submission.name))

    def note(self, text):
        self.lines.append(("note", text))


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    monkeypatch.setattr(dispatch, "AsyncResult", FakeResult)
    monkeypatch.setattr(dispatch, "POLL_S", 0)


def use(monkeypatch, app):
    monkeypatch.setattr(dispatch, "make_app", lambda broker: app)
    return app


def make_class(tmp_path, *learners):
    found = []
    for learner in learners:
        folder = tmp_path / "class" / learner
        folder.mkdir(parents=True)
        (folder / "Dockerfile").write_text(f"FROM python:3.11-slim\n# {learner}\n")
        found.append(Submission(learner, folder, "folder", learner))
    return found


def test_each_result_comes_back_from_the_gradebook_as_its_worker_answers(monkeypatch, tmp_path, spec, book):
    app = use(monkeypatch, FakeApp(book))
    seen = Seen()
    outcome = dispatch.dispatch(
        make_class(tmp_path, "ada", "bob"), spec, book, broker="redis://x/0", timeout_s=90, display=seen
    )
    assert not outcome.interrupted and not outcome.problems
    assert sorted(g.submission.name for g in outcome.graded) == ["ada", "bob"]
    ada = next(g for g in outcome.graded if g.submission.name == "ada")
    assert ada.result.score == ada.result.max_score and ada.attempt_id is not None and ada.leftovers == NOTHING
    assert {a.graded_by for a in book.attempts("01")} == {"w1@a", "w2@b"}
    assert [s["limits"] for s in app.sent] == [(90 + dispatch.SOFT_MARGIN_S, 90 + dispatch.HARD_MARGIN_S)] * 2
    assert app.sent[0]["queue"] == dispatch.QUEUE and app.closed
    assert ("note", "2 grading worker(s) answer: w1@a, w2@b") in seen.lines
    assert ("started", "ada") in seen.lines and ("finished", "ada") in seen.lines
    assert [line for line in seen.lines if line[:2] == ("status", "ada") and line[3]] == [
        ("status", "ada", "Building (w2@b)", True)
    ] * 2  # two checks done when it was last seen: the display counts both


def test_a_failure_a_refusal_and_another_gradebook_are_problems_not_crashes(monkeypatch, tmp_path, spec, book):
    script = {
        "bob": [("FAILURE", RuntimeError("w1@a: OperationalError: the database went away"))],
        "cy": [("SUCCESS", {"refused": "worker w1@a grades lab 01 with another spec", "worker": "w1@a"})],
        "dee": [("SUCCESS", {"attempt_id": 999, "status": "graded", "worker": "w2@b"})],
    }
    use(monkeypatch, FakeApp(book, script))
    outcome = dispatch.dispatch(make_class(tmp_path, "ada", "bob", "cy", "dee"), spec, book, broker="redis://x/0")
    assert [g.submission.name for g in outcome.graded] == ["ada"]
    problems = "\n".join(outcome.problems)
    assert "bob: its worker failed: RuntimeError: w1@a: OperationalError" in problems
    assert "cy: refused by w1@a: worker w1@a grades lab 01 with another spec" in problems
    assert "dee: w2@b stored its result in another gradebook" in problems


def test_a_submission_too_large_to_send_is_stored_invalid_and_never_sent(monkeypatch, tmp_path, spec, book):
    app = use(monkeypatch, FakeApp(book))
    [big, small] = make_class(tmp_path, "big", "small")
    (big.path / "model.bin").write_bytes(os.urandom(100_000))  # does not compress
    outcome = dispatch.dispatch([big, small], spec, book, broker="redis://x/0", max_parcel_bytes=20_000)
    assert [s["payload"]["learner"] for s in app.sent] == ["small"]
    statuses = {a.learner: (a.status, a.graded_by) for a in book.attempts("01")}
    assert statuses == {"big": ("invalid", None), "small": ("graded", "w2@b")}
    assert "more than a grading worker takes" in book.attempts("01", "big")[0].message
    assert len(outcome.graded) == 2


def test_ctrl_c_withdraws_what_has_not_finished(monkeypatch, tmp_path, spec, book):
    script = {"bob": [("INTERRUPT", None)], "cy": [("PENDING", None)]}
    app = use(monkeypatch, FakeApp(book, script))
    seen = Seen()
    outcome = dispatch.dispatch(
        make_class(tmp_path, "ada", "bob", "cy"), spec, book, broker="redis://x/0", display=seen
    )
    assert outcome.interrupted and app.closed
    assert [g.submission.name for g in outcome.graded] == ["ada"]
    assert sorted(app.revoked) == ["task-1", "task-2"]
    assert any(line[0] == "note" and "2 submission(s) withdrawn" in line[1] for line in seen.lines)


def test_no_worker_answering_is_said_and_the_class_waits(monkeypatch, tmp_path, spec, book):
    use(monkeypatch, FakeApp(book, workers=()))
    seen = Seen()
    outcome = dispatch.dispatch(
        make_class(tmp_path, "ada"), spec, book, broker="redis://:secret@broker:6379/0", display=seen
    )
    assert "no grading worker answers yet" in seen.lines[0][1] and "secret" not in seen.lines[0][1]
    assert [g.submission.name for g in outcome.graded] == ["ada"]  # graded once a worker came


def test_prepare_refuses_what_workers_cannot_use(monkeypatch):
    monkeypatch.setattr(dispatch, "ping_broker", lambda url: None)
    assert dispatch.prepare("redis://127.0.0.1:6379/0", "postgresql+psycopg://g@db/grades", 600) == []
    with pytest.raises(Exception, match="longer than grading workers allow"):
        dispatch.prepare("redis://127.0.0.1:6379/0", "postgresql+psycopg://g@db/grades", dispatch.MAX_TIMEOUT_S + 1)
    with pytest.raises(Exception, match="SQLite file on this machine"):
        dispatch.prepare("redis://broker.example.org:6379/0", "sqlite:///grades/gradebook.sqlite", 600)
