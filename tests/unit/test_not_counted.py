"""A check this machine cannot run (no GPU) is skipped and leaves the total: it counts neither for nor against."""

from __future__ import annotations

import time

from grader.checks.base import SKIPPED, Check, Outcome
from grader.result import GradeResult
from grader.session import run_check
from grader.spec import REPO_ROOT, CheckSpec, load_spec


class Probe(Check):
    name, category, title, hint = "Probe", "test", "a probe", "no hint"

    def __init__(self, spec, outcome):
        super().__init__(spec)
        self.outcome = outcome

    def run(self, ctx):
        return self.outcome


def test_a_check_that_cannot_run_here_has_no_points_and_does_not_fail_the_grade():
    spec = load_spec(REPO_ROOT / "solutions" / "01-first-model-container" / "lab.yaml")
    result = GradeResult.start(spec, spec.path, "ada", "test")
    result.tests = [
        run_check(Probe(CheckSpec("A", points=2), Outcome.passed("ok")), ctx=None),
        run_check(Probe(CheckSpec("B", points=3), Outcome.not_applicable("skipped: no GPU runtime here")), ctx=None),
    ]
    result.finish("graded", "", time.monotonic())
    skipped = result.tests[1]
    assert (skipped.status, skipped.score, skipped.max_score) == (SKIPPED, 0, 0)
    assert (result.score, result.max_score, result.exit_code) == (2, 2, 0)


def test_a_skip_for_a_missing_prerequisite_still_counts_against():
    spec = load_spec(REPO_ROOT / "solutions" / "01-first-model-container" / "lab.yaml")
    result = GradeResult.start(spec, spec.path, "ada", "test")
    result.tests = [
        run_check(Probe(CheckSpec("B", points=3), Outcome.skipped("skipped: the image did not build")), None)
    ]
    result.finish("graded", "", time.monotonic())
    assert (result.score, result.max_score, result.exit_code) == (0, 3, 1)
