"""The learner's own record: `check` attempts and knowledge checks kept, hint tiers, `grader progress`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grader import learner_record
from grader.checks.base import registry
from grader.result import GradeResult
from grader.result import TestResult as CheckResult
from grader.spec import REPO_ROOT, CheckSpec, official_specs
from workbook.quiz import load_quiz


@pytest.fixture(autouse=True)
def own_record(tmp_path, monkeypatch):
    monkeypatch.setenv(learner_record.ENV, str(tmp_path / "progress.sqlite"))
    monkeypatch.setenv("WORKBOOK_LEARNER", "ada")


def a_check(lab: str, statuses: dict[str, str]) -> GradeResult:
    """A graded result of `lab` whose checks have these statuses (each worth 1 point)."""
    result = GradeResult.start(official_specs()[lab], REPO_ROOT / "labs" / "x", "", "test")
    for check_id, status in statuses.items():
        result.tests.append(
            CheckResult(check_id, check_id, "image", status, int(status == "passed"), 1, "visible", "", "", "", 0)
        )
    result.score = sum(t.score for t in result.tests)
    result.max_score = len(result.tests)
    result.status = "graded"
    return result


def test_failures_are_counted_per_check_across_attempts():
    assert learner_record.failures_so_far("01") == ({}, "")  # no record yet: first tiers
    learner_record.record_check(a_check("01", {"NonRootUser": "failed", "ImageBuilds": "passed"}), 60)
    learner_record.record_check(a_check("01", {"NonRootUser": "failed", "ImageBuilds": "failed"}), 60)
    learner_record.record_check(a_check("02", {"NonRootUser": "failed"}), 60)  # another lab
    assert learner_record.failures_so_far("01") == ({"NonRootUser": 2, "ImageBuilds": 1}, "")


def test_a_record_that_is_not_a_database_never_stops_a_grade(tmp_path, monkeypatch):
    broken = tmp_path / "broken.sqlite"
    broken.write_text("not a database")
    monkeypatch.setenv(learner_record.ENV, str(broken))
    failures, note = learner_record.failures_so_far("01")
    assert failures == {} and "hints start from the first tier" in note
    assert "not in your progress record" in learner_record.record_check(a_check("01", {"X": "failed"}), 60)


def test_off_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(learner_record.ENV, "off")
    assert learner_record.record_path() is None
    assert learner_record.record_check(a_check("01", {"X": "failed"}), 60) == ""
    learner_record.record_quiz("03", 5, 9)
    assert not list(tmp_path.iterdir())


def test_the_path_shows_what_is_done_and_the_best_scores():
    learner_record.record_quiz("00", 3, 7)
    learner_record.record_quiz("00", 7, 7)
    learner_record.record_quiz("00", 5, 7)  # a later, worse try does not undo the best
    learner_record.record_check(a_check("01", {"A": "passed", "B": "failed"}), 60)
    learner_record.record_check(a_check("01", {"A": "passed", "B": "passed"}), 60)
    book = learner_record.open_record(create=False)
    steps = {(s.kind, s.id): s for s in learner_record.steps(book, "ada")}
    book.close()
    assert steps["chapter", "00"].done and steps["chapter", "00"].status == "knowledge check 7/7"
    assert steps["chapter", "03"].status == "knowledge check not taken"
    assert steps["lab", "01"].done and steps["lab", "01"].status == "best 2/2 in 2 check(s)"
    assert (
        not steps["chapter", "01"].done
        and steps["chapter", "01"].title == "Containers versus virtual machines, measured not asserted"
    )
    assert [s.id for s in learner_record.steps(None, "ada") if s.kind == "lab"] == sorted(official_specs())


def test_grader_progress_names_the_next_step(tmp_path):
    learner_record.record_quiz("00", 7, 7)
    env = {
        "PATH": "/usr/bin:/bin",
        "GRADER_PROGRESS": str(tmp_path / "progress.sqlite"),
        "WORKBOOK_LEARNER": "ada",
        "COLUMNS": "200",
        "HOME": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-m", "grader", "progress"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "Progress of ada" in out and "knowledge check 7/7" in out
    assert "Next: chapter 01, Containers versus virtual machines" in out


@pytest.mark.parametrize(
    "failures, shown",
    [
        (None, "(hint 3 of 3) fix"),
        (0, "(hint 1 of 3) nudge"),
        (1, "(hint 2 of 3) concept"),
        (2, "(hint 3 of 3) fix"),
        (7, "(hint 3 of 3) fix"),
    ],
)
def test_a_tiered_hint_shows_one_more_tier_per_failure(failures, shown):
    check = registry.get("NonRootUser")(CheckSpec("NonRootUser", hints=["nudge", "concept", "fix"]))
    assert check.hint_after(failures) == shown


def test_a_check_without_tiers_keeps_its_one_hint():
    check = registry.get("NonRootUser")(CheckSpec("NonRootUser", hint="the lab's own hint"))
    assert check.hint_after(0) == check.hint_after(None) == "the lab's own hint"
    plain = registry.get("NonRootUser")(CheckSpec("NonRootUser"))
    assert plain.hint_after(0) == plain.hint


def test_what_a_check_found_waits_for_the_last_tier():
    check = registry.get("NonRootUser")(CheckSpec("NonRootUser", hints=["nudge", "concept", "fix"]))
    found = "USER root is the last USER: switch to 10001 after the install"
    assert check.hint_for(found, 0) == "(hint 1 of 3) nudge"
    assert check.hint_for(found, 1) == "(hint 2 of 3) concept"
    assert check.hint_for(found, 2) == check.hint_for(found, None) == found
    assert check.hint_for(None, 2) == "(hint 3 of 3) fix"


def test_a_chapter_run_through_to_its_knowledge_check_is_recorded():
    load_quiz("03", learner="ada")
    load_quiz("03", learner="ada")
    book = learner_record.open_record(create=False)
    steps = {(s.kind, s.id): s for s in learner_record.steps(book, "ada")}
    book.close()
    assert steps["chapter", "03"].status == "ran 2 time(s); knowledge check not taken"
    assert not steps["chapter", "03"].done  # running it is not yet passing its knowledge check
    assert steps["chapter", "04"].status == "knowledge check not taken"
