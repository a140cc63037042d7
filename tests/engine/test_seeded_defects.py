"""Every lab's seeded defects, graded for real: each, applied to a copy of the lab's reference solution, is
caught by the checks meant for it, with words naming the fix, and leaves nothing on the engine. The defects
are in tests/engine/defects/labNN.py; tests/engine/test_labs.py grades the solutions and starters."""

from __future__ import annotations

import pytest
from defects import tables
from seeded import Defect, apply_defect, assert_nothing_left, only_check, results_by_check

from grader.session import grade
from grader.spec import official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPECS = official_specs()
CASES = [
    pytest.param(lab, defect, id=f"lab{lab}-{defect.name}") for lab, defects in tables().items() for defect in defects
]


@pytest.mark.parametrize(("lab", "defect"), CASES)
def test_seeded_defect_is_caught(lab: str, defect: Defect, engine, tmp_path):
    spec = SPECS[lab]
    submission = apply_defect(spec.path, tmp_path, defect.edits)
    if defect.graded_alone:
        (check_id,) = defect.caught_by
        spec = only_check(spec, check_id)
    result = grade(submission, spec, engine=engine)
    by_check = results_by_check(result)
    if defect.every_other_check_passes:
        not_passed = {t.id: (t.status, t.message) for t in result.tests if t.status != "passed"}
        assert set(not_passed) == set(defect.caught_by), (defect.what, not_passed)
    for check_id, words in defect.caught_by.items():
        caught = by_check[check_id]
        assert caught.status == "failed", (defect.what, check_id, caught.status, caught.message, caught.evidence)
        said = caught.hint + caught.message + caught.evidence
        assert all(word in said for word in words), (defect.what, check_id, words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)
