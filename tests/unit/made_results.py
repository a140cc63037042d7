"""Hand-made result objects for the gradebook, batch, export and report tests (no engine needed)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from grader.result import GradeResult
from grader.result import TestResult as CheckResult
from grader.spec import REPO_ROOT, CheckSpec, load_spec

LAB01 = REPO_ROOT / "solutions" / "01-first-model-container"


def lab01_spec():
    return load_spec(LAB01 / "lab.yaml")


def spec_with_hidden(*hidden: str):
    """Lab 01's spec with the named checks marked hidden."""
    spec = lab01_spec()
    checks = tuple(dataclasses.replace(c, visibility="hidden") if c.check in hidden else c for c in spec.checks)
    return dataclasses.replace(spec, checks=checks)


def make_result(
    spec,
    learner: str = "ada",
    failed: tuple[str, ...] = (),
    status: str = "graded",
    message: str = "",
    errored: tuple[str, ...] = (),
    build_s: float = 10.0,
    size_mb: float = 450.0,
    sha: str = "c0ffee",
) -> GradeResult:
    """A result where every check of `spec` passed except those `failed` (or `errored`)."""
    result = GradeResult.start(spec, Path(f"/class/{learner}"), learner, "0.1.0")
    result.submission["sha256"] = sha
    if status in ("graded", "timeout"):
        for c in spec.checks:
            outcome = "failed" if c.check in failed else "error" if c.check in errored else "passed"
            result.tests.append(_check(c, outcome))
        result.timings["build_s"] = build_s
        result.image = {"id": "sha256:abc", "size_mb": size_mb, "layers": 9}
    return result.finish(status, message, time.monotonic() - 5)


def _check(c: CheckSpec, outcome: str) -> CheckResult:
    passed = outcome == "passed"
    return CheckResult(
        id=c.check,
        name=f"{c.check} title",
        category="x",
        status=outcome,
        score=c.points if passed else 0,
        max_score=c.points,
        visibility=c.visibility,
        message="ok" if passed else f"{c.check} went wrong",
        hint="" if passed else f"fix {c.check}",
        evidence="" if passed else "log line",
        duration_ms=5,
    )
