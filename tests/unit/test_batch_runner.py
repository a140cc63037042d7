"""The batch loop without an engine: `grade` is replaced by a stub, as otter-grader tests its CLI.

What is proven here: content graded before is answered from the gradebook, an unsafe or broken
submission becomes its own result, one grader crash never spoils the others, a stopping batch stores
nothing half-done, and the engine wrapper stops builds and waits when the batch stops.
"""

from __future__ import annotations

import threading
import time
import zipfile

import pytest
from made_results import LAB01, lab01_spec, make_result

from grader.batch import runner
from grader.batch.roster import Submission
from grader.batch.runner import BatchEngine, Cancelled, JobProgress, grade_one, grading_key
from grader.engine import Engine


@pytest.fixture
def spec():
    return lab01_spec()


def test_messages_name_the_submission_not_the_scratch_copy(monkeypatch, tmp_path, spec, book):
    def no_dockerfile(folder, spec, **kwargs):
        return make_result(spec, status="invalid", message=f"no Dockerfile in {folder}")

    monkeypatch.setattr(runner, "grade", no_dockerfile)
    monkeypatch.setattr(runner, "_tidy", lambda engine: {})
    graded = grade_one(submission(tmp_path, "ada"), spec, book, client=object())
    assert graded.result.message == "no Dockerfile in ada"


class FakeGrade:
    """Stands in for grader.session.grade: returns a prepared result per learner, counts the calls."""

    def __init__(self, monkeypatch, spec, behaviour=None):
        self.calls: list[str] = []
        self.engines: list[Engine] = []
        self.behaviour = behaviour or {}
        self.spec = spec
        monkeypatch.setattr(runner, "grade", self)
        monkeypatch.setattr(runner, "_tidy", lambda engine: {"containers": 0, "networks": 0, "volumes": 0, "images": 0})

    def __call__(self, folder, spec, *, learner, progress, engine, timeout_s, failures_before=None, deadline=None):
        self.calls.append(learner)
        self.engines.append(engine)
        action = self.behaviour.get(learner)
        if isinstance(action, BaseException):
            raise action
        if callable(action):
            return action()
        return make_result(spec, learner=learner, failed=("NonRootUser",) if learner == "bob" else ())


def submission(tmp_path, learner: str, marker: str = "") -> Submission:
    folder = tmp_path / "class" / learner
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(f"FROM python:3.11-slim\n# {marker or learner}\n")
    return Submission(learner, folder, "folder", learner)


def test_grading_key_follows_the_spec_not_where_it_lies(spec):
    import dataclasses

    assert grading_key(spec) == grading_key(dataclasses.replace(spec, path=LAB01.parent))
    assert grading_key(spec) != grading_key(dataclasses.replace(spec, build_timeout_s=1))


def test_a_graded_submission_is_stored(monkeypatch, tmp_path, spec, book):
    fake = FakeGrade(monkeypatch, spec)
    graded = grade_one(submission(tmp_path, "ada"), spec, book, client=object())
    assert fake.calls == ["ada"]
    assert not graded.reused
    [attempt] = book.attempts("01")
    assert attempt.id == graded.attempt_id
    assert (attempt.learner, attempt.submission, attempt.source, attempt.status) == ("ada", "ada", "folder", "graded")
    stored = book.result(attempt.id)
    assert stored.submission["path"] == str(tmp_path / "class" / "ada")  # the class folder, not a scratch copy
    assert stored.submission["id"] == "ada"


def test_the_same_content_again_is_answered_from_the_gradebook(monkeypatch, tmp_path, spec, book):
    fake = FakeGrade(monkeypatch, spec)
    ada = submission(tmp_path, "ada")
    first = grade_one(ada, spec, book, client=object())
    started = time.monotonic()
    again = grade_one(ada, spec, book, client=object())
    assert time.monotonic() - started < 1.0
    assert fake.calls == ["ada"]  # graded once
    assert again.reused and again.attempt_id == first.attempt_id
    assert len(book.attempts("01")) == 1  # a resumed batch adds no attempt
    assert again.result.score == first.result.score


def test_going_back_to_earlier_content_is_a_new_attempt_graded_before(monkeypatch, tmp_path, spec, book):
    """A, then B, then A again: three attempts, the last one counts, and A is graded only once."""
    fake = FakeGrade(monkeypatch, spec)
    ada = submission(tmp_path, "ada")
    first = (ada.path / "Dockerfile").read_text()
    grade_one(ada, spec, book, client=object())
    (ada.path / "Dockerfile").write_text(first + "# B\n")
    grade_one(ada, spec, book, client=object())
    (ada.path / "Dockerfile").write_text(first)
    back = grade_one(ada, spec, book, client=object())
    assert fake.calls == ["ada", "ada"]
    a1, b, a2 = book.attempts("01", "ada")
    assert back.reused and a2.reused_from == a1.id and a2.content_sha256 == a1.content_sha256
    [summary] = book.summaries("01")
    assert (summary.attempts, summary.counting.id) == (3, a2.id)


def test_an_archive_of_the_same_files_is_the_same_content(monkeypatch, tmp_path, spec, book):
    fake = FakeGrade(monkeypatch, spec)
    ada = submission(tmp_path, "ada")
    grade_one(ada, spec, book, client=object())
    archive = tmp_path / "ada.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(ada.path / "Dockerfile", "ada/Dockerfile")
    graded = grade_one(Submission("ada.zip", archive, "zip", "ada"), spec, book, client=object())
    assert graded.reused and fake.calls == ["ada"]


def test_identical_content_of_another_learner_becomes_their_attempt(monkeypatch, tmp_path, spec, book):
    fake = FakeGrade(monkeypatch, spec)
    grade_one(submission(tmp_path, "ada", marker="same"), spec, book, client=object())
    copy = grade_one(submission(tmp_path, "eve", marker="same"), spec, book, client=object())
    assert fake.calls == ["ada"]
    assert copy.reused
    ada, eve = book.attempts("01")
    assert (eve.learner, eve.reused_from, eve.counted) == ("eve", ada.id, True)
    assert book.result(eve.id).submission["learner"] == "eve"


def test_a_changed_spec_grades_again(monkeypatch, tmp_path, spec, book):
    import dataclasses

    fake = FakeGrade(monkeypatch, spec)
    ada = submission(tmp_path, "ada")
    grade_one(ada, spec, book, client=object())
    grade_one(ada, dataclasses.replace(spec, build_timeout_s=5), book, client=object())
    assert fake.calls == ["ada", "ada"]


def test_an_unsafe_archive_is_an_invalid_submission(monkeypatch, tmp_path, spec, book):
    fake = FakeGrade(monkeypatch, spec)
    archive = tmp_path / "mal.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil", "x")
    graded = grade_one(Submission("mal.zip", archive, "zip", "mal"), spec, book, client=object())
    assert fake.calls == []
    assert graded.result.status == "invalid"
    [attempt] = book.attempts("01")
    assert (attempt.status, attempt.counted) == ("invalid", False)
    assert "outside the submission folder" in attempt.message


def test_a_submission_of_another_lab_is_invalid(monkeypatch, tmp_path, spec, book):
    FakeGrade(monkeypatch, spec)
    ada = submission(tmp_path, "ada")
    (ada.path / "lab.yaml").write_text('id: "02"\n')
    graded = grade_one(ada, spec, book, client=object())
    assert graded.result.status == "invalid"
    assert "is lab 02" in graded.result.message
    assert book.attempts("01")[0].counted is False


def test_a_grader_crash_is_an_error_of_that_submission_only(monkeypatch, tmp_path, spec, book):
    FakeGrade(monkeypatch, spec, {"bob": RuntimeError("boom")})
    subs = [submission(tmp_path, name) for name in ("ada", "bob", "cy")]
    outcome = runner.run(subs, spec, book, client=object(), jobs=2)
    by_learner = {g.submission.learner: g.result for g in outcome.graded}
    assert by_learner["ada"].status == "graded" and by_learner["cy"].status == "graded"
    assert by_learner["bob"].status == "error"
    assert "grader error: RuntimeError: boom" in by_learner["bob"].message
    assert [(a.learner, a.counted) for a in sorted(book.attempts("01"), key=lambda a: a.learner)] == [
        ("ada", True),
        ("bob", False),
        ("cy", True),
    ]
    assert not outcome.interrupted


def test_jobs_run_side_by_side_each_with_its_own_session(monkeypatch, tmp_path, spec, book):
    both_running = threading.Barrier(2, timeout=10)

    def slow():
        both_running.wait()  # fails (BrokenBarrierError) unless two grades run at the same time
        return make_result(spec)

    fake = FakeGrade(monkeypatch, spec, {"ada": slow, "bob": slow})
    outcome = runner.run(
        [submission(tmp_path, "ada"), submission(tmp_path, "bob")], spec, book, client=object(), jobs=2
    )
    assert sorted(g.result.status for g in outcome.graded) == ["graded", "graded"]
    assert len({e.session for e in fake.engines}) == 2
    assert all(isinstance(e, BatchEngine) for e in fake.engines)


def test_a_cancelled_grade_is_not_stored(monkeypatch, tmp_path, spec, book):
    FakeGrade(monkeypatch, spec, {"ada": Cancelled()})
    with pytest.raises(Cancelled):
        grade_one(submission(tmp_path, "ada"), spec, book, client=object())
    assert book.attempts("01") == []


def test_a_stop_ends_the_batch_and_keeps_what_finished(monkeypatch, tmp_path, spec, book):
    """Ctrl-C during the batch: the loop sets the stop, running grades end, finished results stay stored."""
    started = threading.Event()

    def interrupted():
        started.set()
        raise Cancelled()  # what a grade raises once the stop is set

    FakeGrade(monkeypatch, spec, {"bob": interrupted})
    real_as_completed = runner.as_completed

    def as_completed_then_ctrl_c(futures):
        for future in real_as_completed(futures):
            yield future
            if started.is_set():
                raise KeyboardInterrupt

    monkeypatch.setattr(runner, "as_completed", as_completed_then_ctrl_c)
    subs = [submission(tmp_path, name) for name in ("ada", "bob", "cy", "dan", "eve")]
    outcome = runner.run(subs, spec, book, client=object(), jobs=1)
    assert outcome.interrupted
    stored = {a.learner for a in book.attempts("01")}
    assert "ada" in stored and "bob" not in stored
    assert len(stored) < len(subs)


# --- the engine wrapper -------------------------------------------------------------------------------------
def test_a_stopped_batch_stops_every_engine_step(monkeypatch):
    stop = threading.Event()
    engine = BatchEngine(client=None, session="s1", stop=stop)
    monkeypatch.setattr(Engine, "state", staticmethod(lambda container: {"Running": True}))
    assert engine.state("c") == {"Running": True}
    stop.set()
    for call in (
        lambda: engine.state("c"),
        lambda: engine.host_port("c", 5000),
        lambda: engine.run_once("img", ["id"]),
        lambda: engine.start_service("img", 5000, None, "net", None),
        lambda: engine.inspect_image("img"),
        lambda: engine.build(".", "Dockerfile", "t", 60),
    ):
        with pytest.raises(Cancelled):
            call()
    # Clean-up is never stopped: a cancelled batch still removes what its grade made.
    removed = {"containers": 1, "networks": 1, "volumes": 0, "images": 2}
    monkeypatch.setattr(Engine, "_remove", lambda self, label_filter: removed)
    assert engine.remove_session() == removed


def test_a_build_never_runs_past_the_deadline_and_stops_with_the_batch(monkeypatch):
    seen = {}

    def fake_build(self, context, dockerfile, tag, timeout_s, cancel=None, **options):
        seen["timeout_s"], seen["cancel"] = timeout_s, cancel

    monkeypatch.setattr(Engine, "build", fake_build)
    stop = threading.Event()
    engine = BatchEngine(client=None, session="s1", stop=stop, deadline=time.monotonic() + 30)
    engine.build(".", "Dockerfile", "t", 600)
    assert 28 < seen["timeout_s"] <= 30
    assert not seen["cancel"].is_set()
    stop.set()
    assert seen["cancel"].is_set()


def test_job_progress_reports_steps_and_stops_between_checks():
    lines = []
    stop = threading.Event()
    progress = JobProgress(lambda text, check: lines.append(("check: " if check else "") + text), stop)
    with progress.step("Building the image") as step:
        step.update("Step 2/9 : RUN pip install -r requirements.txt")
        step.update("Collecting flask")
    progress.checking("Image builds")
    assert lines == [
        "Building the image",
        "Building the image: Step 2/9 : RUN pip install -r requirements.txt",
        "check: Image builds",
    ]
    stop.set()
    with progress.step("Cleaning up"):  # clean-up always runs
        pass
    with pytest.raises(Cancelled):
        progress.checking("Runs as a non-root user")
