"""BuildContextExcludes on a submission in tmp_path, with the same .dockerignore rules the engine uses."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from grader.checks.base import FAILED, PASSED
from grader.checks.on_build_context import PLANTED_FILE, BuildContextExcludes, dockerignore_patterns
from grader.spec import REPO_ROOT, CheckSpec

LAB01 = REPO_ROOT / "solutions" / "01-first-model-container"
FORBIDDEN = ("data", "notebooks", ".venv", ".git")


@pytest.fixture
def submission(tmp_path):
    """A lab 01 submission with data and notebooks, but (like a fresh download) no .venv or .git."""
    sub = tmp_path / "submission"
    (sub / "app").mkdir(parents=True)
    shutil.copy(LAB01 / "Dockerfile", sub / "Dockerfile")
    (sub / "app" / "app.py").write_text("print('hello')\n")
    (sub / "app" / "requirements.txt").write_text("flask==3.1.3\n")
    (sub / "data").mkdir()
    (sub / "data" / "iris_sample.csv").write_text("5.1,3.5,1.4,0.2,setosa\n")
    (sub / "notebooks").mkdir()
    (sub / "notebooks" / "explore.ipynb").write_text("{}\n")
    return sub


@pytest.fixture
def ctx(tmp_path, submission):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spec = SimpleNamespace(forbidden_paths=FORBIDDEN, dockerfile="Dockerfile")

    def copy_of_submission(name):
        shutil.copytree(submission, scratch / name, symlinks=True)
        return scratch / name

    return SimpleNamespace(submission=submission, scratch=scratch, spec=spec, copy_of_submission=copy_of_submission)


def run(ctx):
    return BuildContextExcludes(CheckSpec("BuildContextExcludes")).run(ctx)


def leaked(outcome) -> set[str]:
    return set(outcome.message.split("would include ", 1)[1].split(", "))


def test_no_dockerignore_leaks_everything(ctx):
    outcome = run(ctx)
    assert outcome.status == FAILED
    assert leaked(outcome) == set(FORBIDDEN)  # .venv and .git were planted, and found leaked
    assert "no .dockerignore" in outcome.evidence


def test_planted_paths_go_into_a_copy_not_the_submission(ctx, submission):
    before = sorted(p.relative_to(submission) for p in submission.rglob("*"))
    run(ctx)
    assert sorted(p.relative_to(submission) for p in submission.rglob("*")) == before
    assert (ctx.scratch / "context" / ".venv" / PLANTED_FILE).is_file()
    assert (ctx.scratch / "context" / ".git" / PLANTED_FILE).is_file()


def test_lab01_solution_dockerignore_passes(ctx, submission):
    shutil.copy(LAB01 / ".dockerignore", submission / ".dockerignore")
    outcome = run(ctx)
    assert outcome.status == PASSED, outcome.message
    assert "KiB" in outcome.message


def test_an_existing_venv_and_git_are_checked_too(ctx, submission):
    (submission / ".venv" / "bin").mkdir(parents=True)
    (submission / ".venv" / "bin" / "python").write_text("#!/bin/sh\n")
    (submission / ".git").mkdir()
    (submission / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (submission / ".dockerignore").write_text("data\nnotebooks\n")
    outcome = run(ctx)
    assert outcome.status == FAILED
    assert leaked(outcome) == {".venv", ".git"}


def test_an_exception_lets_data_back_in(ctx, submission):
    (submission / "data" / "keep.csv").write_text("1,2,3,4\n")
    (submission / ".dockerignore").write_text("data\n!data/keep.csv\nnotebooks\n.venv\n.git\n")
    outcome = run(ctx)
    assert outcome.status == FAILED
    assert leaked(outcome) == {"data"}
    assert "!data/keep.csv" in outcome.evidence


def test_trailing_slash_and_comments_are_understood(ctx, submission):
    (submission / ".dockerignore").write_text("# keep these out\ndata/\nnotebooks/\n\n.venv/\n.git/\n")
    assert run(ctx).status == PASSED


def test_a_pattern_for_files_only_does_not_exclude_the_folder(ctx, submission):
    (submission / ".dockerignore").write_text("data/*.csv\nnotebooks\n.venv\n.git\n")
    (submission / "data" / "README.md").write_text("where the data comes from\n")
    outcome = run(ctx)
    assert outcome.status == FAILED
    assert leaked(outcome) == {"data"}


def test_no_forbidden_paths_passes(ctx):
    ctx.spec.forbidden_paths = ()
    assert run(ctx).status == PASSED


def test_dockerignore_patterns_skip_blanks_and_comments(tmp_path):
    assert dockerignore_patterns(tmp_path) == []
    (tmp_path / ".dockerignore").write_text("# comment\n\n  data  \n!data/keep.csv\n")
    assert dockerignore_patterns(tmp_path) == ["data", "!data/keep.csv"]
