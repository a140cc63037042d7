"""The CLI is a thin layer over the API: `grade` is replaced by a stub returning a prepared result."""

from __future__ import annotations

import json
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import cli, learner_record
from grader.errors import EngineUnavailable
from grader.gradebook import Gradebook
from grader.result import GradeResult
from grader.result import TestResult as CheckResult  # not "Test*", so pytest does not try to collect it
from grader.spec import REPO_ROOT, load_spec

LAB01 = REPO_ROOT / "solutions" / "01-first-model-container"


@pytest.fixture(autouse=True)
def keep_sigterm_handler():
    """main() installs a SIGTERM handler; put the test runner's back."""
    before = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, before)


@pytest.fixture
def spec():
    return load_spec(LAB01 / "lab.yaml")


def prepared(spec, *statuses: str, status: str = "graded", message: str = "") -> GradeResult:
    result = GradeResult.start(spec, Path("/submissions/ada"), "ada", "0.1.0")
    for i, s in enumerate(statuses):
        result.tests.append(
            CheckResult(
                f"C{i}",
                f"Check {i}",
                "build",
                s,
                1 if s == "passed" else 0,
                1,
                "visible",
                f"check {i} {s}",
                hint="" if s == "passed" else f"fix check {i}",
            )
        )
    return result.finish(status, message, time.monotonic())


@pytest.fixture
def calls(monkeypatch):
    """Replace grader.cli.grade; the test sets `calls.result` and reads `calls.args`."""

    class Calls:
        result: GradeResult | None = None
        args: list = []

    def fake_grade(submission, spec, **kwargs):
        Calls.args.append((submission, spec, kwargs))
        return Calls.result

    Calls.args = []
    monkeypatch.setattr(cli, "grade", fake_grade)
    return Calls


def test_all_passed_exits_0(calls, spec, tmp_path, capsys):
    calls.result = prepared(spec, "passed", "passed")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 0
    assert "Score: 2/" in capsys.readouterr().out


def test_a_failed_check_exits_1(calls, spec, tmp_path, capsys):
    calls.result = prepared(spec, "passed", "failed")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 1
    out = capsys.readouterr().out
    assert "fix check 1" in out


@pytest.mark.parametrize(("status", "code"), [("invalid", 2), ("error", 3)])
def test_an_ungradable_submission_exits_2_and_a_grader_fault_3(calls, spec, tmp_path, capsys, status, code):
    calls.result = prepared(spec, status=status, message="no Dockerfile in the folder")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == code
    assert "no Dockerfile in the folder" in capsys.readouterr().out


def test_grade_gets_the_resolved_spec_and_options(calls, spec, tmp_path):
    calls.result = prepared(spec, "passed")
    cli.main(["check", str(tmp_path), "--lab", "01", "--learner", "ada", "--timeout", "60", "-q"])
    [(submission, given_spec, kwargs)] = calls.args
    assert submission == tmp_path
    assert given_spec == spec
    assert kwargs["learner"] == "ada"
    assert kwargs["timeout_s"] == 60
    assert kwargs["progress"].quiet


def test_a_submission_with_its_own_spec_needs_no_lab_option(calls, spec, tmp_path):
    (tmp_path / "lab.yaml").write_text((LAB01 / "lab.yaml").read_text())
    calls.result = prepared(spec, "passed")
    assert cli.main(["check", str(tmp_path), "-q"]) == 0
    assert calls.args[0][1].id == "01"


def test_report_files_are_written(calls, spec, tmp_path):
    calls.result = prepared(spec, "passed", "failed", "skipped")
    out = tmp_path / "reports"
    code = cli.main(
        [
            "check",
            str(tmp_path),
            "--lab",
            "01",
            "-q",
            "--json",
            str(out / "result.json"),
            "--junit",
            str(out / "junit.xml"),
            "--gradescope",
            str(out / "gs" / "results.json"),
        ]
    )
    assert code == 1
    data = json.loads((out / "result.json").read_text())
    assert data["score"] == 1
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "skipped"]
    suite = ET.parse(out / "junit.xml").getroot()
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    gradescope = json.loads((out / "gs" / "results.json").read_text())
    assert gradescope["score"] == 1
    assert len(gradescope["tests"]) == 3


def test_no_report_files_unless_asked(calls, spec, tmp_path):
    calls.result = prepared(spec, "passed")
    cli.main(["check", str(tmp_path), "--lab", "01", "-q"])
    assert list(tmp_path.iterdir()) == []


def test_folder_without_spec_or_lab_exits_2_before_grading(calls, tmp_path, capsys):
    assert cli.main(["check", str(tmp_path)]) == 2
    assert calls.args == []
    out = capsys.readouterr().err
    assert "--lab" in out
    assert "Cannot grade" in out


def test_unknown_lab_exits_2_listing_the_known_ones(calls, tmp_path, capsys):
    assert cli.main(["check", str(tmp_path), "--lab", "99"]) == 2
    assert calls.args == []
    out = capsys.readouterr().err
    assert "'99'" in out
    assert "01" in out


def test_no_engine_is_a_fault_exit_3_with_its_hint_on_stderr(monkeypatch, tmp_path, capsys):
    def no_engine(*args, **kwargs):
        raise EngineUnavailable("no Docker engine is running", hint="start an engine with 'make engine'")

    monkeypatch.setattr(cli, "grade", no_engine)
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 3
    out = capsys.readouterr().err
    assert "no Docker engine is running" in out
    assert "make engine" in out


def test_ctrl_c_exits_130(monkeypatch, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "grade", interrupted)
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 130


def test_a_subcommand_is_required(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2


# --- what a learner sees ------------------------------------------------------------------------------------


def with_hidden_check(result: GradeResult) -> GradeResult:
    result.tests.append(CheckResult("H", "Secret check", "x", "failed", 0, 5, "hidden", "hidden finding", hint="h"))
    result.max_score += 5
    return result


def test_check_leaves_hidden_checks_out_of_the_learner_view(calls, spec, tmp_path, capsys):
    calls.result = with_hidden_check(prepared(spec, "passed", "passed"))
    out_json = tmp_path / "out" / "result.json"
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "Secret check" not in out and "hidden finding" not in out
    assert "Score: 2/" in out and "1 more check is hidden" in out
    data = json.loads(out_json.read_text())
    assert [t["id"] for t in data["tests"]] == ["C0", "C1"]
    assert data["hidden_checks"] == 1


def test_check_instructor_shows_everything(calls, spec, tmp_path, capsys):
    calls.result = with_hidden_check(prepared(spec, "passed", "passed"))
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q", "--instructor"]) == 1
    assert "Secret check" in capsys.readouterr().out


# --- batch, export, report ----------------------------------------------------------------------------------


@pytest.fixture
def batch_calls(monkeypatch):
    """Replace grader.cli.run_batch; the test sets `batch_calls.summary` and reads `batch_calls.kwargs`."""
    from grader.batch import BatchSummary

    class BatchCalls:
        kwargs: dict = {}
        summary = BatchSummary("01", [])

    def fake_run_batch(**kwargs):
        BatchCalls.kwargs = kwargs
        return BatchCalls.summary

    monkeypatch.setattr(cli, "run_batch", fake_run_batch)
    return BatchCalls


def graded(spec, learner, *statuses, status="graded", reused=False):
    from grader.batch import Graded
    from grader.batch.roster import Submission

    result = prepared(spec, *statuses, status=status, message="why" if status != "graded" else "")
    result.submission["learner"] = learner
    return Graded(Submission(f"{learner}.zip", Path(f"/class/{learner}.zip"), "zip", learner), result, 1, reused)


def test_batch_passes_its_options_and_defaults_through(batch_calls, tmp_path):
    assert cli.main(["batch", str(tmp_path), "--lab", "01"]) == 0
    kwargs = batch_calls.kwargs
    assert kwargs["submissions"] == tmp_path and kwargs["lab"] == "01"
    assert kwargs["jobs"] == cli.BATCH_DEFAULTS["jobs"]
    assert kwargs["timeout_s"] == cli.BATCH_DEFAULTS["timeout_s"]
    assert kwargs["gradebook"] == cli.DEFAULT_URL
    assert kwargs["roster"] is None and kwargs["out"] is None and kwargs["quiet"] is False
    cli.main(
        [
            "batch",
            str(tmp_path),
            "--lab",
            "1",
            "--jobs",
            "3",
            "--roster",
            "r.csv",
            "--gradebook",
            "sqlite:///x.sqlite",
            "--out",
            "o",
            "--timeout",
            "90",
            "-q",
        ]
    )
    kwargs = batch_calls.kwargs
    assert (kwargs["lab"], kwargs["jobs"], kwargs["roster"], kwargs["gradebook"], kwargs["out"]) == (
        "1",
        3,
        Path("r.csv"),
        "sqlite:///x.sqlite",
        Path("o"),
    )
    assert kwargs["timeout_s"] == 90 and kwargs["quiet"]


def test_batch_jobs_must_be_positive(batch_calls, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["batch", str(tmp_path), "--lab", "01", "--jobs", "0"])
    assert "must be 1 or more" in capsys.readouterr().err


def test_batch_exit_codes_and_summary(batch_calls, spec, tmp_path, capsys):
    from grader.batch import BatchSummary

    batch_calls.summary = BatchSummary(
        "01",
        [graded(spec, "ada", "passed"), graded(spec, "bob", "failed", reused=True)],
        out=Path("reports/01"),
    )
    assert cli.main(["batch", str(tmp_path), "--lab", "01"]) == 0  # failing learners are not a failed batch
    out = capsys.readouterr().out
    assert "2 submissions" in out and "2 graded" in out and "1 answered from the gradebook" in out
    assert "reports/01/" in out

    batch_calls.summary = BatchSummary("01", [graded(spec, "ada", "passed"), graded(spec, "eve", status="invalid")])
    assert cli.main(["batch", str(tmp_path), "--lab", "01"]) == 1
    assert "1 invalid" in capsys.readouterr().out

    batch_calls.summary = BatchSummary("01", [graded(spec, "ada", "passed")], interrupted=True)
    assert cli.main(["batch", str(tmp_path), "--lab", "01"]) == 130
    assert "run the same command again" in capsys.readouterr().out


def test_batch_without_an_engine_exits_3(monkeypatch, tmp_path, capsys):
    def no_engine(**kwargs):
        raise EngineUnavailable("no Docker engine is running", hint="start an engine with 'make engine'")

    monkeypatch.setattr(cli, "run_batch", no_engine)
    assert cli.main(["batch", str(tmp_path), "--lab", "01"]) == 3
    assert "make engine" in capsys.readouterr().err


def test_batch_of_an_unknown_lab_exits_2(tmp_path, capsys):
    assert cli.main(["batch", str(tmp_path), "--lab", "99"]) == 2
    assert "unknown lab '99'" in capsys.readouterr().err


def filled_gradebook(tmp_path, spec) -> str:
    from grader.gradebook import Gradebook

    url = f"sqlite:///{tmp_path}/gb.sqlite"
    book = Gradebook(url)
    for learner, statuses in (("ada", ("passed", "passed")), ("bob", ("passed", "failed"))):
        result = prepared(spec, *statuses)
        result.submission.update(learner=learner, sha256=learner)
        book.record(result, submission=learner, source="folder", grading_key="k", timeout_s=600)
    book.close()
    return url


@pytest.mark.parametrize(
    "fmt, files",
    [
        ("csv", ["grades.csv"]),
        ("gradescope", ["gradescope/ada/results.json", "gradescope/bob/results.json"]),
        ("prairielearn", ["prairielearn/ada/results.json", "prairielearn/bob/results.json"]),
        ("junit", ["junit/ada.xml", "junit/bob.xml"]),
    ],
)
def test_export_writes_one_format_from_the_gradebook(spec, tmp_path, fmt, files):
    url = filled_gradebook(tmp_path, spec)
    out = tmp_path / "out"
    assert cli.main(["export", "--lab", "01", "--format", fmt, "--gradebook", url, "--out", str(out)]) == 0
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == files


def test_export_and_report_of_an_empty_gradebook_exit_2(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/empty.sqlite"
    Gradebook(url).close()
    assert cli.main(["export", "--lab", "01", "--format", "csv", "--gradebook", url]) == 2
    assert cli.main(["report", "--lab", "01", "--gradebook", url]) == 2
    err = capsys.readouterr().err
    assert err.count("has no grades for lab 01") == 2 and "grade the class with `batch` first" in err


def test_report_writes_the_class_page(spec, tmp_path):
    url = filled_gradebook(tmp_path, spec)
    page = tmp_path / "report.html"
    assert cli.main(["report", "--lab", "01", "--gradebook", url, "--out", str(page)]) == 0
    assert "Pass rate per check" in page.read_text()


def test_batch_hands_the_class_to_workers_when_asked(batch_calls, tmp_path):
    cli.main(["batch", str(tmp_path), "--lab", "01"])
    assert batch_calls.kwargs["workers"] is None  # graded here by default
    broker, book = "redis://broker.example.org:6379/0", "postgresql+psycopg://grader@db.example.org/grades"
    cli.main(["batch", str(tmp_path), "--lab", "01", "--workers", broker, "--gradebook", book])
    assert (batch_calls.kwargs["workers"], batch_calls.kwargs["gradebook"]) == (broker, book)


def test_worker_passes_its_options_and_takes_urls_from_the_environment(monkeypatch, capsys):
    from grader.batch import workers

    started = {}
    monkeypatch.setattr(workers, "start_worker", lambda **kwargs: started.update(kwargs) or 0)
    monkeypatch.delenv("GRADER_BROKER_URL", raising=False)
    monkeypatch.delenv("GRADER_GRADEBOOK_URL", raising=False)
    assert cli.main(["worker"]) == 2
    assert "needs --broker (or GRADER_BROKER_URL) and --gradebook" in capsys.readouterr().err
    assert started == {}

    argv = ["worker", "--broker", "redis://b:6379/0", "--gradebook", "postgresql+psycopg://g@db/grades"]
    assert cli.main([*argv, "--concurrency", "2", "--name", "gpu-1"]) == 0
    assert started == {
        "broker": "redis://b:6379/0",
        "gradebook": "postgresql+psycopg://g@db/grades",
        "concurrency": 2,
        "name": "gpu-1",
    }
    monkeypatch.setenv("GRADER_BROKER_URL", "redis://env:6379/0")
    monkeypatch.setenv("GRADER_GRADEBOOK_URL", "postgresql+psycopg://g@env/grades")
    assert cli.main(["worker"]) == 0
    assert (started["broker"], started["gradebook"], started["concurrency"], started["name"]) == (
        "redis://env:6379/0",
        "postgresql+psycopg://g@env/grades",
        1,
        "grader",
    )


def test_a_worker_that_cannot_start_exits_2_with_a_hint(monkeypatch, capsys):
    assert cli.main(["worker", "--broker", "amqp://rabbit//", "--gradebook", "sqlite:///x.sqlite"]) == 2
    assert "not a Redis broker URL" in capsys.readouterr().err


def test_check_writes_a_file_to_stdout_for_dash_and_the_report_to_stderr(calls, spec, tmp_path, capsys):
    calls.result = prepared(spec, "passed", "failed")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q", "--json", "-"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["score"] == 1  # stdout holds the JSON and nothing else
    assert "fix check 1" in err


def test_check_refuses_two_outputs_on_stdout_and_an_output_under_a_file_before_grading(calls, tmp_path, capsys):
    assert cli.main(["check", str(tmp_path), "--lab", "01", "--json", "-", "--junit", "-"]) == 2
    (tmp_path / "file").write_text("x")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "--junit", str(tmp_path / "file" / "r.xml")]) == 2
    assert calls.args == []
    err = capsys.readouterr().err
    assert "both write to standard output" in err and "is a file, so nothing can be written under it" in err


def test_check_gives_gradescope_every_check_hidden_ones_as_hidden(calls, tmp_path):
    spec = load_spec(LAB01 / "lab.yaml")
    calls.result = prepared(spec, "passed", "passed")
    calls.result.tests[1].visibility = "hidden"
    out = tmp_path / "results.json"
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q", "--gradescope", str(out)]) == 0
    tests = json.loads(out.read_text())["tests"]
    assert [t["visibility"] for t in tests] == ["visible", "hidden"]


def test_check_keeps_each_attempt_and_passes_the_learners_failures_to_the_grade(calls, spec, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_PROGRESS", str(tmp_path / "progress.sqlite"))
    monkeypatch.setenv("WORKBOOK_LEARNER", "ada")
    calls.result = prepared(spec, "passed", "failed")
    for _ in range(2):
        assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 1
    assert [kwargs["failures_before"] for _, _, kwargs in calls.args] == [{}, {"C1": 1}]
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q", "--instructor"]) == 1
    assert calls.args[-1][2]["failures_before"] is None  # an instructor sees complete hints, and is not recorded
    assert learner_record.failures_so_far("01") == ({"C1": 2}, "")
