"""A whole batch without an engine (a stand-in grade and engines passed in): the files it writes, and a resumed run."""

from __future__ import annotations

import csv
import json
import zipfile

import pytest
from made_engines import Engines
from made_results import make_result, spec_with_hidden

import grader.batch as batch
from grader.errors import GraderError
from grader.gradebook import Gradebook

HIDDEN = "LayerCacheReused"


@pytest.fixture
def spec(monkeypatch):
    hidden = spec_with_hidden(HIDDEN)
    monkeypatch.setattr(batch, "lab_spec", lambda lab: hidden)
    return hidden


class StandIn:
    """A stand-in grade (bob fails the hidden check and NonRootUser) and engines; `calls` lists who was graded."""

    def __init__(self):
        self.calls: list[str] = []
        self.engines = Engines()

    def grade(self, folder, spec, *, learner, progress, engine, timeout_s, failures_before=None, deadline=None):
        self.calls.append(learner)
        failed = ("NonRootUser", HIDDEN) if learner == "bob" else ()
        return make_result(spec, learner=learner, failed=failed)


@pytest.fixture
def grading():
    return StandIn()


def make_class(tmp_path):
    folder = tmp_path / "class"
    for learner in ("ada", "bob"):
        (folder / learner).mkdir(parents=True)
        (folder / learner / "Dockerfile").write_text(f"FROM python:3.11-slim\n# {learner}\n")
    with zipfile.ZipFile(folder / "cy.zip", "w") as z:
        z.writestr("lab/Dockerfile", "FROM python:3.11-slim\n# cy\n")
    with zipfile.ZipFile(folder / "eve.zip", "w") as z:
        z.writestr("../escape", "x")
    (tmp_path / "roster.csv").write_text("id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\nzoe,Zoe,,\n")
    return folder


def run(tmp_path, grading: StandIn, **kwargs):
    return batch.run_batch(
        submissions=tmp_path / "class",
        lab="01",
        jobs=2,
        roster=tmp_path / "roster.csv",
        gradebook=f"sqlite:///{tmp_path}/gb.sqlite",
        out=tmp_path / "out",
        quiet=True,
        grade=grading.grade,
        engine_factory=grading.engines,
        **kwargs,
    )


def test_a_batch_writes_grades_exports_feedback_and_the_report(tmp_path, spec, grading):
    make_class(tmp_path)
    summary = run(tmp_path, grading)
    assert sorted(grading.calls) == ["ada", "bob", "cy"]
    assert summary.exit_code == 1  # eve's archive could not be graded
    assert (summary.count("graded"), summary.count("invalid")) == (3, 1)
    assert summary.leftovers == {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
    out = tmp_path / "out"
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    for learner in ("ada", "bob", "cy", "eve"):
        assert f"gradescope/{learner}/results.json" in files
        assert f"prairielearn/{learner}/results.json" in files
        assert f"junit/{learner}.xml" in files
        assert f"feedback/{learner}.txt" in files and f"feedback/{learner}.json" in files
    assert "grades.csv" in files and "class-report.html" in files
    assert not any("zoe" in f for f in files if f != "grades.csv")

    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert set(rows) == {"ada", "bob", "cy", "eve", "zoe"}
    full = sum(c.points for c in spec.checks)
    assert (rows["ada"]["first_name"], rows["ada"]["score"], rows["ada"]["attempts"]) == ("Ada", f"{full:g}", "1")
    assert rows["bob"]["score"] == f"{full - 4:g}"  # the instructor's grade counts the hidden check
    assert (rows["eve"]["status"], rows["eve"]["score"], rows["eve"]["attempts"]) == ("invalid", "", "0")
    assert "outside the submission folder" in rows["eve"]["message"]
    assert (rows["zoe"]["status"], rows["zoe"]["max_score"]) == ("missing", f"{full:g}")

    # Feedback is the learner's view: the hidden check is neither named nor counted.
    feedback = (out / "feedback" / "bob.txt").read_text()
    assert HIDDEN not in feedback and "1 more check is hidden" in feedback
    assert f"Score: {full - 4:g}/{full - 2:g} (the checks shown)" in feedback
    view = json.loads((out / "feedback" / "bob.json").read_text())
    assert HIDDEN not in [t["id"] for t in view["tests"]] and view["hidden_checks"] == 1
    # Gradescope keeps the hidden check as its own `hidden`: instructors see it, learners never do.
    gradescope = json.loads((out / "gradescope" / "bob" / "results.json").read_text())
    assert {t["name"]: t["visibility"] for t in gradescope["tests"]}[f"{HIDDEN} title"] == "hidden"


def test_running_the_same_batch_again_grades_nothing_and_adds_no_attempt(tmp_path, spec, grading):
    make_class(tmp_path)
    run(tmp_path, grading)
    grading.calls.clear()
    again = run(tmp_path, grading)
    assert grading.calls == []
    assert sorted(g.submission.learner for g in again.graded if g.reused) == ["ada", "bob", "cy", "eve"]
    book = Gradebook(f"sqlite:///{tmp_path}/gb.sqlite")
    counted = [a for a in book.attempts("01") if a.counted]
    assert len(counted) == 3
    # eve's unsafe archive is refused again for the same reason, and not stored twice.
    assert [a.status for a in book.attempts("01", "eve")] == ["invalid"]
    assert [g.reused for g in again.graded if g.submission.learner == "eve"] == [True]
    book.close()


def test_a_changed_submission_is_a_new_attempt(tmp_path, spec, grading):
    make_class(tmp_path)
    run(tmp_path, grading)
    (tmp_path / "class" / "bob" / "Dockerfile").write_text("FROM python:3.11-slim\nUSER 10001\n")
    grading.calls.clear()
    run(tmp_path, grading)
    assert grading.calls == ["bob"]
    rows = {r["learner"]: r for r in csv.DictReader((tmp_path / "out" / "grades.csv").open())}
    assert rows["bob"]["attempts"] == "2"


def test_an_empty_folder_is_refused_before_the_engine_is_asked(monkeypatch, tmp_path, spec):
    def no_engine():
        raise AssertionError("the engine was asked")

    monkeypatch.setattr(batch, "connect", no_engine)
    (tmp_path / "class").mkdir()
    (tmp_path / "class" / "notes.txt").write_text("x")
    with pytest.raises(GraderError, match="found no submissions") as err:
        batch.run_batch(submissions=tmp_path / "class", lab="01", gradebook=f"sqlite:///{tmp_path}/gb.sqlite")
    assert "left out notes.txt" in err.value.message


def test_a_missing_folder_is_refused(tmp_path, spec):
    with pytest.raises(GraderError, match="is not a folder"):
        batch.run_batch(submissions=tmp_path / "nope", lab="01", gradebook=f"sqlite:///{tmp_path}/gb.sqlite")
