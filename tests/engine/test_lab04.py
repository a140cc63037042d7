"""Lab 04 graded for real: a private key copied into the image is found, and shown redacted. (The seeded
defects are in tests/engine/defects/lab04.py; tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import dataclasses

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPEC = official_specs()["04"]
SOLUTION = SPEC.path


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one build and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


def test_a_private_key_copied_into_the_image_is_found(engine, tmp_path):
    copy = apply_defect(SOLUTION, tmp_path, [])
    (copy / "app" / "deploy_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    result = grade(copy, only("NoSecretsInImage"), engine=engine)
    caught = results_by_check(result)["NoSecretsInImage"]
    assert caught.status == "failed", (caught.status, caught.message)
    assert "file /app/deploy_key" in caught.evidence
    assert "PRIVATE" not in caught.evidence  # matches are shown redacted
    assert_nothing_left(engine)
