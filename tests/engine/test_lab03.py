"""Lab 03 graded for real: a naive Dockerfile that is broken or missing is a failed check. (The seeded
defects are in tests/engine/defects/lab03.py; tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
from seeded import assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import CheckSpec, official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPEC = official_specs()["03"]
SOLUTION = SPEC.path


def test_a_naive_build_that_fails_is_a_failed_check_with_its_log(engine, tmp_path):
    copy = tmp_path / "submission"
    shutil.copytree(SOLUTION, copy)
    (copy / "Dockerfile.broken").write_text("FROM python:3.11-slim\nRUN echo 'the naive step breaks' && exit 3\n")
    # Only the checks this needs, and a naive Dockerfile the lab does not ship (so the submission's is used).
    spec = dataclasses.replace(
        SPEC,
        checks=(
            CheckSpec("ImageBuilds"),
            CheckSpec("ImageSizeRelativeBudget", params={"naive_dockerfile": "Dockerfile.broken"}),
        ),
        learning_targets=(),
    )
    result = grade(copy, spec, engine=engine)
    assert result.status == "graded"
    tests = results_by_check(result)
    assert tests["ImageBuilds"].status == "passed"
    naive = tests["ImageSizeRelativeBudget"]
    assert naive.status == "failed", (naive.status, naive.message)
    assert "could not build Dockerfile.broken" in naive.message
    assert "the naive step breaks" in naive.evidence
    assert_nothing_left(engine)


def test_a_missing_naive_dockerfile_is_a_failed_check(engine, tmp_path):
    copy = tmp_path / "submission"
    shutil.copytree(SOLUTION, copy)
    spec = dataclasses.replace(
        SPEC,
        checks=(CheckSpec("ImageSizeRelativeBudget", params={"naive_dockerfile": "Dockerfile.nowhere"}),),
        learning_targets=(),
    )
    result = grade(copy, spec, engine=engine)
    naive = results_by_check(result)["ImageSizeRelativeBudget"]
    assert naive.status == "failed" and "Dockerfile.nowhere is missing" in naive.message
    assert_nothing_left(engine)
