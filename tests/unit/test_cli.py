"""The CLI is a thin layer over the API: `grade` is replaced by a stub returning a prepared result."""

from __future__ import annotations

import json
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import cli
from grader.errors import EngineUnavailable
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


@pytest.mark.parametrize("status", ["invalid", "error"])
def test_an_ungradable_submission_exits_2(calls, spec, tmp_path, capsys, status):
    calls.result = prepared(spec, status=status, message="no Dockerfile in the folder")
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 2
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
    out = capsys.readouterr().out
    assert "--lab" in out
    assert "Cannot grade" in out


def test_unknown_lab_exits_2_listing_the_known_ones(calls, tmp_path, capsys):
    assert cli.main(["check", str(tmp_path), "--lab", "99"]) == 2
    assert calls.args == []
    out = capsys.readouterr().out
    assert "'99'" in out
    assert "01" in out


def test_a_grader_error_exits_2_with_its_hint(monkeypatch, tmp_path, capsys):
    def no_engine(*args, **kwargs):
        raise EngineUnavailable("no Docker engine is running", hint="start an engine with 'make engine'")

    monkeypatch.setattr(cli, "grade", no_engine)
    assert cli.main(["check", str(tmp_path), "--lab", "01", "-q"]) == 2
    out = capsys.readouterr().out
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
