"""Every lab, graded for real: its reference solution earns full marks, and its generated starter fails
exactly the lab's learning targets (other checks pass, or are skipped because a target failed)."""

from __future__ import annotations

import pytest
from seeded import assert_nothing_left

from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPECS = official_specs()


@pytest.mark.parametrize("lab_id", sorted(SPECS))
def test_solution_scores_full_marks(engine, lab_id):
    spec = SPECS[lab_id]
    result = grade(spec.path, spec, engine=engine)
    # Only a check this machine cannot run (no GPU) may be skipped, and then it counts for nothing.
    not_counted = [t for t in result.tests if t.status == "skipped" and t.max_score == 0]
    assert all(t.message.startswith("skipped: no GPU runtime") for t in not_counted)
    assert [(t.id, t.status, t.message) for t in result.tests if t.status != "passed" and t not in not_counted] == []
    assert result.status == "graded" and result.score == result.max_score > 0 and result.exit_code == 0
    assert result.image["size_mb"] > 0
    assert_nothing_left(engine)


@pytest.mark.parametrize("lab_id", sorted(SPECS))
def test_starter_fails_exactly_its_learning_targets(engine, lab_id):
    spec = SPECS[lab_id]
    assert spec.learning_targets, f"lab {lab_id} names no learning_targets"
    result = grade(REPO_ROOT / "labs" / spec.path.name, spec, engine=engine)
    statuses = {t.id: t.status for t in result.tests}
    assert {c for c, s in statuses.items() if s == "failed"} == set(spec.learning_targets)
    assert {s for c, s in statuses.items() if c not in spec.learning_targets} <= {"passed", "skipped"}
    skipped = [t.message for t in result.tests if t.status == "skipped"]
    assert all(m.startswith("skipped:") for m in skipped), skipped  # skipped only for a missing prerequisite
    assert result.exit_code == 1
    assert_nothing_left(engine)
