"""DockerfileLint with the real hadolint binary, on Dockerfiles written for each case."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.checks.base import FAILED, PASSED
from grader.checks.on_dockerfile import DockerfileLint
from grader.hadolint import hadolint_path
from grader.spec import REPO_ROOT, CheckSpec

LAB01 = REPO_ROOT / "solutions" / "01-first-model-container"
GOOD_TAIL = 'CMD ["python", "-c", "print(1)"]\n'


@pytest.fixture(scope="module", autouse=True)
def hadolint_installed():
    assert Path(hadolint_path()).exists()


@pytest.fixture
def ctx(tmp_path):
    submission = tmp_path / "submission"
    submission.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    return SimpleNamespace(submission=submission, scratch=scratch, spec=SimpleNamespace(dockerfile="Dockerfile"))


def lint(ctx, dockerfile: str, **params):
    (ctx.submission / ctx.spec.dockerfile).write_text(dockerfile)
    return DockerfileLint(CheckSpec("DockerfileLint", params=params)).run(ctx)


def test_latest_tag_fails_with_the_rule_and_a_pinning_hint(ctx):
    outcome = lint(ctx, "FROM python:latest\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "DL3007" in outcome.evidence
    assert "line 1" in outcome.evidence
    assert "[warning]" in outcome.evidence
    assert "Pin" in outcome.hint
    assert "python:3.11-slim" in outcome.hint
    assert "1 problem" in outcome.message


def test_ignore_pragma_does_not_hide_a_finding(ctx):
    outcome = lint(ctx, "# hadolint ignore=DL3007\nFROM python:latest\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "DL3007" in outcome.evidence


def test_global_ignore_pragma_does_not_hide_a_finding(ctx):
    outcome = lint(ctx, "# hadolint global ignore=DL3007\nFROM python:latest\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "DL3007" in outcome.evidence


@pytest.mark.parametrize("name", [".hadolint.yaml", ".hadolint.yml"])
def test_learners_own_hadolint_config_does_not_hide_a_finding(ctx, name):
    (ctx.submission / name).write_text("ignored:\n  - DL3007\nfailure-threshold: error\n")
    outcome = lint(ctx, "FROM python:latest\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "DL3007" in outcome.evidence


def test_lab_spec_can_ignore_a_rule(ctx):
    outcome = lint(ctx, "FROM python:latest\n" + GOOD_TAIL, ignore=["DL3007"])
    assert outcome.status == PASSED


def test_findings_below_the_threshold_are_not_counted(ctx):
    outcome = lint(ctx, "FROM python:latest\n" + GOOD_TAIL, failure_threshold="error")
    assert outcome.status == PASSED
    assert "1 below that" in outcome.message


def test_several_findings_each_get_their_fix(ctx):
    outcome = lint(ctx, "FROM python:latest\nRUN pip install flask\nCMD python app.py\n")
    assert outcome.status == FAILED
    for code in ("DL3007", "DL3013", "DL3042", "DL3025"):
        assert code in outcome.evidence
        assert f"{code}:" in outcome.hint
    assert outcome.hint.index("DL3007") < outcome.hint.index("DL3025")  # in the order hadolint found them


def test_unparseable_dockerfile_fails(ctx):
    outcome = lint(ctx, "FROM python:3.11-slim\nFROOM nothing\n")
    assert outcome.status == FAILED
    assert "DL1000" in outcome.evidence


def test_lab01_solution_dockerfile_passes(ctx):
    shutil.copy(LAB01 / "Dockerfile", ctx.submission / "Dockerfile")
    outcome = DockerfileLint(CheckSpec("DockerfileLint", params={"failure_threshold": "warning"})).run(ctx)
    assert outcome.status == PASSED, outcome.evidence


def test_lab01_starter_dockerfile_fails(ctx):
    # DockerfileLint is one of lab 01's learning targets: the starter must fail it.
    starter = REPO_ROOT / "labs" / "01-first-model-container" / "Dockerfile"
    if not starter.is_file():
        pytest.skip("no starter Dockerfile for lab 01")
    shutil.copy(starter, ctx.submission / "Dockerfile")
    outcome = DockerfileLint(CheckSpec("DockerfileLint", params={"failure_threshold": "warning"})).run(ctx)
    assert outcome.status == FAILED
    assert outcome.evidence


def test_config_is_written_to_scratch_not_the_submission(ctx):
    lint(ctx, "FROM python:3.11-slim\n" + GOOD_TAIL)
    assert (ctx.scratch / "hadolint.yaml").is_file()
    assert sorted(p.name for p in ctx.submission.iterdir()) == ["Dockerfile"]


def test_a_misspelt_threshold_is_a_spec_error():
    from grader.errors import SpecError

    with pytest.raises(SpecError, match="failure_threshold"):
        DockerfileLint(CheckSpec("DockerfileLint", params={"failure_threshold": "warn"}))


def test_hadolint_failing_to_read_the_dockerfile_is_an_error_not_a_pass(ctx):
    from grader.errors import GraderError

    ctx.spec = SimpleNamespace(dockerfile="Dockerfile.missing")
    with pytest.raises(GraderError, match="could not lint"):
        DockerfileLint(CheckSpec("DockerfileLint")).run(ctx)


# --- BuildKit heredocs: hadolint 2.15 parses one only when a blank line follows it, and never two in one RUN ----------
HEREDOC_THEN_CMD = (
    "FROM python:3.11-slim\n"
    "RUN <<EOF\n"
    "set -e\n"
    "# a comment in the script\n"
    "echo built\n"
    "EOF\n"
    "# the next instruction follows at once\n" + GOOD_TAIL
)


def test_hadolint_alone_cannot_parse_a_valid_heredoc(ctx):
    # Why the check lints a copy: on the Dockerfile itself hadolint stops with a parse error.
    (ctx.submission / "Dockerfile").write_text(HEREDOC_THEN_CMD)
    proc = subprocess.run(
        [hadolint_path(), "--format", "json", "--no-fail", "Dockerfile"], cwd=ctx.submission, capture_output=True
    )
    assert "DL1000" in proc.stdout.decode()


def test_a_valid_heredoc_with_a_comment_passes_and_is_linted_whole(ctx):
    outcome = lint(ctx, HEREDOC_THEN_CMD)
    assert outcome.status == PASSED, outcome.evidence
    assert "not linted" not in outcome.message
    assert sorted(p.name for p in ctx.submission.iterdir()) == ["Dockerfile"]  # the copy went to scratch


def test_findings_in_a_heredoc_body_and_after_it_keep_the_learners_line_numbers(ctx):
    outcome = lint(ctx, "FROM python:3.11-slim\nRUN <<EOF\napt-get install curl\nEOF\nFROM python:latest\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "line 2: DL3008" in outcome.evidence  # in the body: reported on its RUN line
    assert "line 5: DL3007" in outcome.evidence  # after the heredoc: its own line, not the copy's
    assert "not linted" not in outcome.message


def test_heredocs_hadolint_cannot_parse_are_left_out_and_the_rest_is_linted(ctx):
    dockerfile = (
        "FROM python:3.11-slim\n"
        "RUN <<EOF1 <<EOF2\necho one\nEOF1\necho two\nEOF2\n"  # two heredocs in one RUN: hadolint never parses it
        "RUN pip install flask\n" + GOOD_TAIL
    )
    outcome = lint(ctx, dockerfile)
    assert outcome.status == FAILED
    assert "line 7: DL3013" in outcome.evidence and "DL1000" not in outcome.evidence
    assert "the instructions with heredocs (line 2) were not linted" in outcome.message
    assert "hadolint cannot parse them (DL1000 on line 5" in outcome.message


def test_a_dockerfile_of_nothing_but_unparseable_heredocs_passes_saying_so(ctx):
    outcome = lint(ctx, "FROM python:3.11-slim\nRUN <<-EOT bash\n\tset -e\n\techo hi\n\tEOT\n" + GOOD_TAIL)
    assert outcome.status == PASSED
    assert "no hadolint findings" in outcome.message and "(line 2) were not linted" in outcome.message


def test_a_real_parse_error_still_fails_beside_a_heredoc(ctx):
    outcome = lint(ctx, "FROM python:3.11-slim\nRUN <<EOF\necho hi\nEOF\n\nFROOM nothing\n" + GOOD_TAIL)
    assert outcome.status == FAILED
    assert "line 6: DL1000" in outcome.evidence and "not linted" not in outcome.message


def test_the_gpu_variant_lint_reads_heredocs_the_same_way(ctx):
    from grader.checks.on_gpu import GpuVariantLint

    (ctx.submission / "Dockerfile.gpu").write_text(HEREDOC_THEN_CMD)
    problems, evidence, hints, good = [], [], [], []
    check = GpuVariantLint(CheckSpec("GpuVariantLint", params={"dockerfile": "x", "compose_file": "y"}))
    check.lint(ctx, "Dockerfile.gpu", problems, evidence, hints, good)
    assert problems == [] and good == ["hadolint: no hadolint findings at level 'warning' or above"]
