"""The gradebook: attempts round-trip, what counts as an attempt, and which stored result may answer again.

Every test runs on SQLite; with GRADER_TEST_DATABASE_URL set (a PostgreSQL URL, say
postgresql+psycopg://grader:grader@127.0.0.1/grades_test, with its driver installed) each runs on that
database too, whose tables are emptied after each test.
"""

from __future__ import annotations

import json
import os

import pytest
from made_results import lab01_spec, make_result

from grader import gradebook as gradebook_module
from grader.errors import GradebookError
from grader.gradebook import Gradebook

OTHER_DATABASE = os.environ.get("GRADER_TEST_DATABASE_URL")


@pytest.fixture
def spec():
    return lab01_spec()


@pytest.fixture(params=["sqlite"] + (["other"] if OTHER_DATABASE else []))
def book(request, tmp_path):
    url = f"sqlite:///{tmp_path}/deep/er/gradebook.sqlite" if request.param == "sqlite" else OTHER_DATABASE
    gradebook = Gradebook(url)
    yield gradebook
    if request.param != "sqlite":
        gradebook_module.metadata.drop_all(gradebook.engine)
    gradebook.close()


def record(book, result, key="k1", timeout_s=600.0, **kwargs):
    return book.record(
        result, submission=f"{result.submission['learner']}.zip", source="zip", grading_key=key, timeout_s=timeout_s
    )


def test_a_result_round_trips_with_its_checks(book, spec):
    result = make_result(spec, failed=("NonRootUser",))
    attempt_id = record(book, result)
    assert book.result(attempt_id).to_dict() == json.loads(json.dumps(result.to_dict()))
    [attempt] = book.attempts("01")
    assert (attempt.learner, attempt.status, attempt.counted, attempt.submission, attempt.source) == (
        "ada",
        "graded",
        True,
        "ada.zip",
        "zip",
    )
    assert attempt.score == result.score == result.max_score - 2
    assert (attempt.build_s, attempt.image_mb, attempt.content_sha256) == (10.0, 450.0, "c0ffee")
    assert attempt.submitted_at.tzinfo is not None
    rows = book.check_rows([attempt_id])
    assert len(rows) == len(spec.checks)
    assert {r["check_id"]: r["status"] for r in rows}["NonRootUser"] == "failed"
    assert {r["check_id"]: r["hint"] for r in rows}["NonRootUser"] == "fix NonRootUser"


def test_the_sqlite_file_and_its_folders_are_created(tmp_path):
    Gradebook(f"sqlite:///{tmp_path}/deep/er/gradebook.sqlite").close()
    assert (tmp_path / "deep" / "er" / "gradebook.sqlite").is_file()


def test_invalid_and_error_are_kept_but_are_no_attempts(book, spec):
    record(book, make_result(spec, failed=("NonRootUser",)))
    record(book, make_result(spec, status="invalid", message="no Dockerfile in ada.zip"))
    record(book, make_result(spec, status="error", message="the engine did not answer"))
    record(book, make_result(spec, errored=("ImageBuilds",)))  # a check hit an engine fault
    record(book, make_result(spec, status="timeout", failed=("LayerCacheReused",)))
    statuses = [(a.status, a.counted, a.score is None) for a in book.attempts("01", "ada")]
    assert statuses == [
        ("graded", True, False),
        ("invalid", False, True),
        ("error", False, True),
        ("error", False, True),
        ("timeout", True, False),
    ]
    assert book.attempts("01")[3].message.startswith("check ImageBuilds hit a grader or engine error")
    [summary] = book.summaries("01")
    assert summary.attempts == 2
    assert summary.counting.status == "timeout"
    assert summary.status == "timeout"


def test_a_learner_with_only_ungradable_submissions_shows_why(book, spec):
    record(book, make_result(spec, learner="bob", status="invalid", message="no Dockerfile"))
    [summary] = book.summaries("01")
    assert (summary.attempts, summary.counting, summary.status) == (0, None, "invalid")
    assert summary.latest.message == "no Dockerfile"


def test_roster_learners_without_a_submission_are_missing(book, spec):
    book.add_learners([{"id": "ada", "first_name": "Ada"}, {"id": "zoe", "email": "z@example.org"}])
    book.add_learners([{"id": "ada", "first_name": "Ada", "last_name": "Lovelace"}])  # updated, not duplicated
    record(book, make_result(spec))
    assert book.learners()["ada"]["last_name"] == "Lovelace"
    assert [(s.learner, s.status) for s in book.summaries("01")] == [("ada", "graded"), ("zoe", "missing")]


def test_reusable_results(book, spec):
    graded = record(book, make_result(spec, sha="same"))
    record(book, make_result(spec, learner="bob", sha="same", status="error", message="engine gone"))
    timed_out = record(book, make_result(spec, learner="cy", sha="slow", status="timeout"), timeout_s=60)
    assert [a.id for a in book.reusable("01", "same", "k1", 600)] == [graded]
    assert book.reusable("01", "same", "other-spec-or-grader", 600) == []
    assert book.reusable("02", "same", "k1", 600) == []
    # A timeout answers only for a time limit no longer than the one it ran under.
    assert [a.id for a in book.reusable("01", "slow", "k1", 30)] == [timed_out]
    assert book.reusable("01", "slow", "k1", 600) == []


def test_labs_are_kept_apart(book, spec):
    record(book, make_result(spec))
    assert book.labs() == ["01"]
    assert book.summaries("02") == []


def test_a_bad_url_says_what_a_good_one_looks_like():
    with pytest.raises(GradebookError, match="not a database URL") as err:
        Gradebook("gradebook.sqlite")
    assert "sqlite:///" in err.value.hint


def test_a_missing_driver_says_which_to_install():
    with pytest.raises(GradebookError) as err:
        Gradebook("postgresql+nosuchdriver://grader@127.0.0.1/grades")
    assert "driver" in err.value.hint


def test_the_worker_that_stored_an_attempt_is_kept(book, spec):
    result = make_result(spec, sha="file:" + "0" * 64)  # an archive that could not be unpacked is hashed as a file
    local = record(book, make_result(spec, learner="bob"))
    remote = book.record(
        result, submission="ada.zip", source="zip", grading_key="k1", timeout_s=600, graded_by="w1@host-a"
    )
    by_id = {a.id: a for a in book.attempts("01")}
    assert (by_id[local].graded_by, by_id[remote].graded_by) == (None, "w1@host-a")
    assert by_id[remote].content_sha256 == "file:" + "0" * 64  # longer than a sha256 alone: PostgreSQL keeps it


def test_a_gradebook_made_before_graded_by_existed_is_brought_up_to_date(tmp_path, spec):
    """An older file: its attempts table lacks graded_by. Opening it adds the column; its rows read None."""
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path}/old.sqlite"
    old = sa.MetaData()
    columns = [c._copy() for c in gradebook_module.attempt_table.columns if c.name != "graded_by"]
    sa.Table("attempts", old, *columns)
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO attempts (lab, learner, submission, source, content_sha256, grading_key, status, counted,"
                " score, max_score, message, submitted_at, duration_s, timeout_s, result_json) VALUES ('01', 'ada',"
                " 'ada', 'folder', 'c0ffee', 'k1', 'graded', 1, 26, 26, '', '2026-01-01 00:00:00', 1, 600, '{}')"
            )
        )
    engine.dispose()
    book = Gradebook(url)
    try:
        [attempt] = book.attempts("01")
        assert (attempt.learner, attempt.graded_by) == ("ada", None)
        record(book, make_result(spec, learner="bob"))
        assert [a.learner for a in book.attempts("01")] == ["ada", "bob"]
    finally:
        book.close()
    Gradebook(url).close()  # opening it again changes nothing
