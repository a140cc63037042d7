"""The batch loop without an engine: `grade` and the engine factory are stand-ins passed in.

What is proven here: content graded before is answered from the gradebook, an unsafe or broken
submission becomes its own result, one grader crash never spoils the others, a stopping batch stores
nothing half-done, and every grade's engine gets the batch's stop and the submission's deadline and is
cleaned up afterwards, also when the grade is cancelled.
"""

from __future__ import annotations

import _thread
import threading
import time
import zipfile

import pytest
from made_engines import NOTHING, Engines
from made_results import LAB01, lab01_spec, make_result

from grader.batch import runner
from grader.batch.roster import Submission
from grader.batch.runner import JobProgress, grade_one, grading_key
from grader.engine import Cancelled


@pytest.fixture
def spec():
    return lab01_spec()


class FakeGrade:
    """Stands in for grader.session.grade: returns a prepared result per learner, counts the calls."""

    def __init__(self, spec, behaviour=None):
        self.calls: list[str] = []
        self.engines: list = []
        self.behaviour = behaviour or {}
        self.spec = spec

    def __call__(self, folder, spec, *, learner, progress, engine, timeout_s, failures_before=None, deadline=None):
        self.calls.append(learner)
        self.engines.append(engine)
        action = self.behaviour.get(learner)
        if isinstance(action, BaseException):
            raise action
        if callable(action):
            return action()
        return make_result(spec, learner=learner, failed=("NonRootUser",) if learner == "bob" else ())


def grade_with(fake, submission, spec, book, engines=None, **kwargs):
    """grade_one with the stand-in grade and engines."""
    return grade_one(submission, spec, book, grade=fake, engine_factory=engines or Engines(), **kwargs)


def test_messages_name_the_submission_not_the_scratch_copy(tmp_path, spec, book):
    def no_dockerfile(folder, spec, **kwargs):
        return make_result(spec, status="invalid", message=f"no Dockerfile in {folder}")

    graded = grade_with(no_dockerfile, submission(tmp_path, "ada"), spec, book)
    assert graded.result.message == "no Dockerfile in ada"


def submission(tmp_path, learner: str, marker: str = "") -> Submission:
    folder = tmp_path / "class" / learner
    folder.mkdir(parents=True)
    (folder / "Dockerfile").write_text(f"FROM python:3.11-slim\n# {marker or learner}\n")
    return Submission(learner, folder, "folder", learner)


def test_grading_key_follows_the_spec_not_where_it_lies(spec):
    import dataclasses

    assert grading_key(spec) == grading_key(dataclasses.replace(spec, path=LAB01.parent))
    assert grading_key(spec) != grading_key(dataclasses.replace(spec, build_timeout_s=1))


def test_a_graded_submission_is_stored(tmp_path, spec, book):
    fake = FakeGrade(spec)
    graded = grade_with(fake, submission(tmp_path, "ada"), spec, book)
    assert fake.calls == ["ada"]
    assert not graded.reused
    [attempt] = book.attempts("01")
    assert attempt.id == graded.attempt_id
    assert (attempt.learner, attempt.submission, attempt.source, attempt.status) == ("ada", "ada", "folder", "graded")
    stored = book.result(attempt.id)
    assert stored.submission["path"] == str(tmp_path / "class" / "ada")  # the class folder, not a scratch copy
    assert stored.submission["id"] == "ada"


def test_the_same_content_again_is_answered_from_the_gradebook(tmp_path, spec, book):
    fake = FakeGrade(spec)
    ada = submission(tmp_path, "ada")
    first = grade_with(fake, ada, spec, book)
    started = time.monotonic()
    again = grade_with(fake, ada, spec, book)
    assert time.monotonic() - started < 1.0
    assert fake.calls == ["ada"]  # graded once
    assert again.reused and again.attempt_id == first.attempt_id
    assert len(book.attempts("01")) == 1  # a resumed batch adds no attempt
    assert again.result.score == first.result.score


def test_going_back_to_earlier_content_is_a_new_attempt_graded_before(tmp_path, spec, book):
    """A, then B, then A again: three attempts, the last one counts, and A is graded only once."""
    fake = FakeGrade(spec)
    ada = submission(tmp_path, "ada")
    first = (ada.path / "Dockerfile").read_text()
    grade_with(fake, ada, spec, book)
    (ada.path / "Dockerfile").write_text(first + "# B\n")
    grade_with(fake, ada, spec, book)
    (ada.path / "Dockerfile").write_text(first)
    back = grade_with(fake, ada, spec, book)
    assert fake.calls == ["ada", "ada"]
    a1, b, a2 = book.attempts("01", "ada")
    assert back.reused and a2.reused_from == a1.id and a2.content_sha256 == a1.content_sha256
    [summary] = book.summaries("01")
    assert (summary.attempts, summary.counting.id) == (3, a2.id)


def test_an_archive_of_the_same_files_is_the_same_content(tmp_path, spec, book):
    fake = FakeGrade(spec)
    ada = submission(tmp_path, "ada")
    grade_with(fake, ada, spec, book)
    archive = tmp_path / "ada.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(ada.path / "Dockerfile", "ada/Dockerfile")
    graded = grade_with(fake, Submission("ada.zip", archive, "zip", "ada"), spec, book)
    assert graded.reused and fake.calls == ["ada"]


def test_identical_content_of_another_learner_becomes_their_attempt(tmp_path, spec, book):
    fake = FakeGrade(spec)
    grade_with(fake, submission(tmp_path, "ada", marker="same"), spec, book)
    copy = grade_with(fake, submission(tmp_path, "eve", marker="same"), spec, book)
    assert fake.calls == ["ada"]
    assert copy.reused
    ada, eve = book.attempts("01")
    assert (eve.learner, eve.reused_from, eve.counted) == ("eve", ada.id, True)
    assert book.result(eve.id).submission["learner"] == "eve"


def test_a_changed_spec_grades_again(tmp_path, spec, book):
    import dataclasses

    fake = FakeGrade(spec)
    ada = submission(tmp_path, "ada")
    grade_with(fake, ada, spec, book)
    grade_with(fake, ada, dataclasses.replace(spec, build_timeout_s=5), book)
    assert fake.calls == ["ada", "ada"]


def test_an_unsafe_archive_is_an_invalid_submission(tmp_path, spec, book):
    fake = FakeGrade(spec)
    archive = tmp_path / "mal.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../evil", "x")
    graded = grade_with(fake, Submission("mal.zip", archive, "zip", "mal"), spec, book)
    assert fake.calls == []
    assert graded.result.status == "invalid"
    [attempt] = book.attempts("01")
    assert (attempt.status, attempt.counted) == ("invalid", False)
    assert "outside the submission folder" in attempt.message


def test_a_submission_of_another_lab_is_invalid(tmp_path, spec, book):
    fake = FakeGrade(spec)
    ada = submission(tmp_path, "ada")
    (ada.path / "lab.yaml").write_text('id: "02"\n')
    graded = grade_with(fake, ada, spec, book)
    assert graded.result.status == "invalid"
    assert "is lab 02" in graded.result.message
    assert book.attempts("01")[0].counted is False


def test_a_grader_crash_is_an_error_of_that_submission_only(tmp_path, spec, book):
    fake = FakeGrade(spec, {"bob": RuntimeError("boom")})
    subs = [submission(tmp_path, name) for name in ("ada", "bob", "cy")]
    outcome = runner.run(subs, spec, book, grade=fake, engine_factory=Engines(), jobs=2)
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


def test_jobs_run_side_by_side_each_on_an_engine_of_its_own_session(tmp_path, spec, book):
    both_running = threading.Barrier(2, timeout=10)

    def slow():
        both_running.wait()  # fails (BrokenBarrierError) unless two grades run at the same time
        return make_result(spec)

    fake = FakeGrade(spec, {"ada": slow, "bob": slow})
    engines = Engines()
    started = time.monotonic()
    outcome = runner.run(
        [submission(tmp_path, "ada"), submission(tmp_path, "bob")],
        spec,
        book,
        grade=fake,
        engine_factory=engines,
        jobs=2,
        timeout_s=600,
    )
    assert sorted(g.result.status for g in outcome.graded) == ["graded", "graded"]
    assert {id(e) for e in fake.engines} == {id(e) for e in engines.made}  # each grade on the engine made for it
    assert len({e.session for e in engines.made}) == 2
    ada, bob = engines.made
    assert ada.stop is bob.stop and not ada.stop.is_set()  # one stop for the whole batch...
    assert all(started + 600 <= e.deadline <= time.monotonic() + 600 for e in engines.made)  # ...a deadline each


def test_what_a_grade_left_on_its_engine_is_removed_and_counted(tmp_path, spec, book):
    fake = FakeGrade(spec)
    engines = Engines(containers=1, images=2)
    graded = grade_with(fake, submission(tmp_path, "ada"), spec, book, engines, session="s1")
    [engine] = engines.made
    assert (engine.session, engine.removals) == ("s1", 1)
    assert graded.leftovers == {**NOTHING, "containers": 1, "images": 2} and graded.session == "s1"


def test_a_cancelled_grade_is_not_stored_and_its_engine_is_cleaned_up(tmp_path, spec, book):
    fake = FakeGrade(spec, {"ada": Cancelled()})
    engines = Engines(containers=1)
    with pytest.raises(Cancelled):
        grade_with(fake, submission(tmp_path, "ada"), spec, book, engines)
    assert book.attempts("01") == []
    assert [e.removals for e in engines.made] == [1]


def test_a_ctrl_c_ends_the_batch_and_keeps_what_finished(tmp_path, spec, book):
    """Ctrl-C during the batch: the loop sets the stop, running grades end, finished results stay stored."""
    stops = []

    def interrupted():
        _thread.interrupt_main()  # Ctrl-C, as the batch's main thread receives it
        stops.append(fake.engines[-1].stop)
        raise Cancelled()  # what a grade's engine raises once the stop is set

    fake = FakeGrade(spec, {"bob": interrupted})
    subs = [submission(tmp_path, name) for name in ("ada", "bob", "cy", "dan", "eve")]
    outcome = runner.run(subs, spec, book, grade=fake, engine_factory=Engines(), jobs=1)
    assert outcome.interrupted
    assert stops[0].is_set()  # the running grades were told to stop
    stored = {a.learner for a in book.attempts("01")}
    assert "ada" in stored and "bob" not in stored
    assert len(stored) < len(subs)


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
