"""Grading workers without a broker or an engine: URL checks, and one parcel graded by `grade_parcel`.

`grade` and the engines are stand-ins, as in test_batch_runner.py; what is proven is what the worker adds around
grade_one: the parcel opened safely, the result stored as the class folder names it and marked with the
worker's name, and what it refuses to grade.
"""

from __future__ import annotations

import tempfile
import threading
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from made_engines import NOTHING, Engines
from made_results import make_result

from grader.batch import workers
from grader.batch.parcel import pack
from grader.batch.roster import Submission
from grader.batch.runner import grading_key
from grader.batch.workers import (
    check_broker_url,
    check_shared_gradebook,
    check_worker_name,
    grade_parcel,
    make_app,
    session_of,
)
from grader.errors import GradebookError, GraderError

PG = "postgresql+psycopg://grader@db.example.org/grades"


class StandIn:
    """A stand-in grade (every learner passes) and engines; `calls` holds who was graded, how."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.engines = Engines()

    def grade(self, folder, spec, *, learner, progress, engine, timeout_s, failures_before=None, deadline=None):
        self.calls.append((learner, engine.session, timeout_s))
        return make_result(spec, learner=learner)

    def parcel(self, payload, book, **kwargs):
        """grade_parcel with this stand-in grade and engines."""
        return grade_parcel(payload, book, grade=self.grade, engine_factory=self.engines, **kwargs)


@pytest.fixture
def graded():
    return StandIn()


def payload_of(tmp_path, spec, name="ada", key=None, timeout_s=600.0):
    folder = tmp_path / "class" / name
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(f"FROM python:3.11-slim\n# {name}\n")
    submission = Submission(name, folder, "folder", name)
    return pack(submission, lab="01", grading_key=key or grading_key(spec), timeout_s=timeout_s).to_payload()


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/0", "rediss://:secret@broker.example.org:6380/1"])
def test_a_redis_url_is_a_broker(url):
    assert check_broker_url(url) == url


@pytest.mark.parametrize("url", ["", "127.0.0.1:6379", "amqp://guest@rabbit//", "redis://", "redis://host:port/0"])
def test_anything_else_is_refused_with_what_a_broker_url_looks_like(url):
    with pytest.raises(GraderError, match="not a Redis broker URL") as err:
        check_broker_url(url)
    assert "redis://HOST:6379/0" in err.value.hint


def test_a_sqlite_gradebook_is_refused_for_workers_on_other_hosts():
    with pytest.raises(GradebookError, match="SQLite file on this machine") as err:
        check_shared_gradebook("sqlite:///grades/gradebook.sqlite", "redis://broker.example.org:6379/0")
    assert "postgresql+psycopg://" in err.value.hint
    with pytest.raises(GradebookError, match="in-memory"):
        check_shared_gradebook("sqlite://", "redis://127.0.0.1:6379/0")


def test_a_sqlite_gradebook_with_a_broker_on_this_machine_is_allowed_with_a_note(tmp_path):
    [note] = check_shared_gradebook(f"sqlite:///{tmp_path}/gb.sqlite", "redis://localhost:6379/0")
    assert str(tmp_path / "gb.sqlite") in note and "very same file" in note


def test_a_shared_database_passes_and_a_local_name_for_it_is_noted():
    assert check_shared_gradebook(PG, "redis://broker.example.org:6379/0") == []
    assert check_shared_gradebook("postgresql+psycopg://g@127.0.0.1/grades", "redis://127.0.0.1/0") == []
    [note] = check_shared_gradebook("postgresql+psycopg://g@localhost/grades", "redis://broker.example.org/0")
    assert "network name" in note
    with pytest.raises(GradebookError, match="not a database URL"):
        check_shared_gradebook("gradebook.sqlite", "redis://127.0.0.1/0")


def test_worker_names():
    assert check_worker_name("gpu-host_1.lab") == "gpu-host_1.lab"
    for bad in ("", "-x", "a b", "w@host", "x" * 80):
        with pytest.raises(GraderError, match="not a usable worker name"):
            check_worker_name(bad)


def test_the_app_speaks_json_only_and_gives_a_lost_task_back():
    app = make_app("redis://127.0.0.1:6379/0", PG)
    conf = app.conf
    assert (conf.task_serializer, conf.result_serializer, conf.accept_content) == ("json", "json", ["json"])
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.grader_gradebook_url == PG
    task = app.tasks["grader.grade_parcel"]
    assert task.acks_late and task.reject_on_worker_lost


def test_a_task_keeps_its_engine_session_when_delivered_again():
    assert session_of("3f2a9c1e-77d0-4b4e-9a55-0c8e1d2b3a4f") == "3f2a9c1e77d0"
    assert session_of("3f2a9c1e-77d0-4b4e-9a55-0c8e1d2b3a4f") == session_of("3F2A9C1E-77D0-4B4E-9A55-0C8E1D2B3A4F")


def test_a_parcel_is_graded_and_stored_as_the_class_folder_names_it(tmp_path, spec, book, graded):
    payload = payload_of(tmp_path, spec, timeout_s=90)
    answer = graded.parcel(payload, book, worker="w1@host-a", session="abc123")
    assert graded.calls == [("ada", "abc123", 90.0)]
    assert answer["status"] == "graded" and answer["worker"] == "w1@host-a" and not answer["reused"]
    [attempt] = book.attempts("01")
    assert (attempt.id, attempt.graded_by, attempt.source, attempt.submission) == (
        answer["attempt_id"],
        "w1@host-a",
        "folder",
        "ada",
    )
    assert book.result(attempt.id).submission["path"] == str(tmp_path / "class" / "ada")  # not the worker's copy
    again = graded.parcel(payload, book, worker="w2@host-b")
    assert again["reused"] and again["attempt_id"] == attempt.id  # answered from the gradebook:
    assert len(graded.calls) == 1  # not graded again


def test_an_unsafe_submission_is_stored_invalid_by_the_worker(tmp_path, spec, book, graded):
    archive = tmp_path / "mal.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../escaped.txt", "owned")
    parcel = pack(Submission("mal.zip", archive, "zip", "mal"), lab="01", grading_key=grading_key(spec), timeout_s=60)
    answer = graded.parcel(parcel.to_payload(), book, worker="w1@host-a")
    assert answer["status"] == "invalid" and graded.calls == []
    [attempt] = book.attempts("01")
    assert attempt.source == "zip" and "outside the submission folder" in attempt.message


def test_what_a_worker_cannot_grade_is_refused_and_nothing_is_stored(tmp_path, spec, book, graded):
    other_version = graded.parcel(payload_of(tmp_path, spec, key="another"), book, worker="w1@a")
    assert "another spec or grader version" in other_version["refused"]
    unknown_lab = graded.parcel({**payload_of(tmp_path, spec, "bob"), "lab": "99"}, book, worker="w1@a")
    assert "unknown lab" in unknown_lab["refused"]
    assert "version" in graded.parcel({"version": 0}, book, worker="w1@a")["refused"]
    assert book.attempts() == [] and graded.calls == []


class FakeTask:
    """What the task body uses of a bound Celery task; like Celery's, its request is per thread."""

    def __init__(self):
        self.app = object()
        self._request = SimpleNamespace(id="3f2a9c1e-77d0-4b4e-9a55-0c8e1d2b3a4f", hostname="w1@host-a")
        self.updates: list[tuple] = []

    @property
    def request(self):
        mine = threading.current_thread() is threading.main_thread()
        return self._request if mine else SimpleNamespace(id=None, hostname=None)

    def update_state(self, task_id=None, state=None, meta=None):
        self.updates.append((task_id or self.request.id, state, meta))


def test_the_task_cleans_up_a_lost_grade_reports_progress_and_says_why_it_failed(monkeypatch, book):
    task = FakeTask()
    engines = Engines(containers=1, images=1)  # what a lost grade of this task left
    monkeypatch.setattr(workers, "_resources", lambda app: (book, engines))

    left = Path(tempfile.gettempdir()) / "grader-task-3f2a9c1e77d0"  # by a run of this task that was killed
    (left / "grader-batch-x").mkdir(parents=True, exist_ok=True)
    scratch = []

    def fake_grade_parcel(payload, gradebook, *, grade, engine_factory, worker, session, progress):
        assert engine_factory is engines
        scratch.append(tempfile.mkdtemp())  # grade_one's scratch copies go into the task's folder
        # The build reports from a thread of its own, where Celery's task.request is another's.
        reporter = threading.Thread(target=progress.report, args=("Building: Step 1/9", False))
        reporter.start()
        reporter.join()
        progress.checking("Runs as a non-root user")
        raise ValueError("value too long for type character varying(64)")

    monkeypatch.setattr(workers, "grade_parcel", fake_grade_parcel)
    with pytest.raises(RuntimeError, match="w1@host-a: ValueError: value too long"):
        workers._grade_task(task, {})
    # What a lost grade of this task left went first.
    assert [(e.session, e.removals, e.left) for e in engines.made] == [("3f2a9c1e77d0", 1, NOTHING)]
    assert Path(scratch[0]).parent == left and not left.exists()  # and its folder, with this run's, after it
    assert [(u[0], u[1], u[2]["checks"]) for u in task.updates] == [
        (task.request.id, "PROGRESS", 0),
        (task.request.id, "PROGRESS", 1),
    ]
    assert task.updates[1][2] == {"worker": "w1@host-a", "step": "Runs as a non-root user", "checks": 1}
