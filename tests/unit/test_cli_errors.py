"""Bad input to the command line, run as a user runs it (`python -m grader ...` in a new process): a message
and a hint on stderr, the documented exit code, never a traceback, and nothing made or lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from made_results import lab01_spec, make_result

from grader.gradebook import Gradebook


def grader(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grader", *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def assert_clean_error(run: subprocess.CompletedProcess, code: int, *says: str) -> None:
    assert run.returncode == code, (run.returncode, run.stdout, run.stderr)
    assert "Traceback" not in run.stdout + run.stderr
    for text in says:
        assert text in run.stderr, (text, run.stderr)


@pytest.fixture(scope="module")
def lab01_book(tmp_path_factory) -> str:
    """A gradebook holding one graded attempt of lab 01."""
    url = f"sqlite:///{tmp_path_factory.mktemp('book')}/gradebook.sqlite"
    book = Gradebook(url)
    book.record(make_result(lab01_spec()), submission="ada", source="folder", grading_key="k", timeout_s=60)
    book.close()
    return url


def test_help_documents_every_exit_code():
    run = grader("--help")
    assert run.returncode == 0
    for code in ("0 every check passed", "1 some checks failed", "2 bad usage", "3 a grader or engine fault"):
        assert code in " ".join(run.stdout.split()), code


def test_check_of_a_folder_whose_lab_yaml_is_not_yaml(tmp_path):
    (tmp_path / "lab.yaml").write_text("id: '01\nchecks: [\n")
    assert_clean_error(grader("check", str(tmp_path)), 2, "lab.yaml", "not valid YAML")


def test_export_of_a_file_that_is_not_a_database(tmp_path):
    (tmp_path / "notes.sqlite").write_text("these are my notes, not a database\n" * 100)
    url = f"sqlite:///{tmp_path}/notes.sqlite"
    run = grader("export", "--lab", "01", "--format", "csv", "--gradebook", url, "--out", str(tmp_path / "o"))
    assert_clean_error(run, 2, "cannot open the gradebook", "Hint:")
    assert (tmp_path / "notes.sqlite").read_text().startswith("these are my notes")


def test_a_mistyped_gradebook_is_an_error_and_creates_nothing(tmp_path):
    for command in (["export", "--format", "csv"], ["report"]):
        run = grader(*command, "--lab", "01", "--gradebook", f"sqlite:///{tmp_path}/gradbook.sqlite")
        assert_clean_error(run, 2, "no gradebook at", "--gradebook")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["export", "--format", "junit"], ["report"]])
def test_out_under_a_file(tmp_path, lab01_book, command):
    (tmp_path / "afile").write_text("keep me")
    run = grader(*command, "--lab", "01", "--gradebook", lab01_book, "--out", str(tmp_path / "afile" / "x"))
    assert_clean_error(run, 2, "afile is a file")
    assert (tmp_path / "afile").read_text() == "keep me"


def test_a_lab_the_gradebook_does_not_hold_is_an_error_naming_the_labs_it_does(tmp_path, lab01_book):
    for command in (["export", "--format", "csv", "--out", str(tmp_path / "o")], ["report", "--out", "-"]):
        run = grader(*command, "--lab", "02", "--gradebook", lab01_book)
        assert_clean_error(run, 2, "no grades for lab 02", "holds lab(s) 01")
        assert run.stdout == ""
    assert not (tmp_path / "o").exists()


def test_dash_writes_the_csv_and_the_report_to_stdout(lab01_book):
    csv_run = grader("export", "--lab", "01", "--format", "csv", "--gradebook", lab01_book, "--out", "-")
    assert csv_run.returncode == 0 and csv_run.stdout.startswith("lab,learner,")
    page = grader("report", "--lab", "01", "--gradebook", lab01_book, "--out", "-")
    assert page.returncode == 0 and page.stdout.lstrip().lower().startswith("<!doctype html")
    per_learner = grader("export", "--lab", "01", "--format", "junit", "--gradebook", lab01_book, "--out", "-")
    assert_clean_error(per_learner, 2, "a file per learner")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--lab", "99", "--course-repo", "acme/course"], "unknown lab '99'"),
        (["--lab", '0"1', "--course-repo", "acme/course"], "unknown lab"),
        (["--lab", "01", "--course-repo", "acme/course: x"], "not a GitHub repository name"),
        (["--lab", "01", "--course-repo", "acme/course", "--ref", "main\nrun: rm -rf /"], "not a tag, branch"),
    ],
)
def test_ci_template_refuses_what_would_make_a_wrong_workflow(args, says):
    run = grader("ci-template", *args)
    assert_clean_error(run, 2, says)
    assert run.stdout == ""  # nothing lands in a file the output is redirected to


def test_ci_template_writes_a_workflow_that_is_valid_yaml():
    run = grader("ci-template", "--lab", "1", "--course-repo", "acme/course", "--ref", "v1.0")
    assert run.returncode == 0, run.stderr
    workflow = yaml.safe_load(run.stdout)
    assert "jobs" in workflow and "acme/course" in run.stdout and "v1.0" in run.stdout


def test_a_wrong_option_is_a_usage_error():
    assert_clean_error(grader("check", "--no-such-option"), 2, "usage:")
    assert_clean_error(grader("batch", "x", "--lab", "01", "--jobs", "0"), 2, "must be 1 or more")
