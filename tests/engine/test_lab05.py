"""Lab 05 graded for real: the lab's own model files are mounted, never the submission's. (The seeded
defects are in tests/engine/defects/lab05.py; tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import dataclasses

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPEC = official_specs()["05"]
SOLUTION = SPEC.path


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one build and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


def test_the_submissions_own_model_files_are_never_mounted(engine, tmp_path):
    """A learner who swaps the model files in their copy of the lab gains nothing: the lab's own are used."""
    copy = apply_defect(SOLUTION, tmp_path, [])
    (copy / "models" / "v2.joblib").write_bytes((copy / "models" / "v1.joblib").read_bytes())
    result = grade(copy, only("MountedModelIsUsed"), engine=engine)
    assert results_by_check(result)["MountedModelIsUsed"].status == "passed"
    assert_nothing_left(engine)
