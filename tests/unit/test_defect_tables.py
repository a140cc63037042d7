"""The seeded-defect tables of tests/engine/defects, checked without an engine: every defect still applies to
its lab's reference solution and names checks its lab has, so a changed solution or lab.yaml is caught here
before an engine run would fail on it."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ENGINE_TESTS = Path(__file__).resolve().parents[1] / "engine"
sys.path.insert(0, str(ENGINE_TESTS))  # the tables and their helpers live beside the engine tests

from defects import TABLE_MODULE, table_modules, tables  # noqa: E402
from seeded import apply_defect  # noqa: E402

from grader.spec import official_specs  # noqa: E402

SPECS = official_specs()
TABLES = tables()
CASES = [
    pytest.param(lab, defect, id=f"lab{lab}-{defect.name}") for lab, defects in TABLES.items() for defect in defects
]


def test_every_module_in_the_package_is_a_lab_table():
    # A module named otherwise (lab8.py, lab_08.py) would be skipped without a word.
    assert [name for name in table_modules() if not TABLE_MODULE.fullmatch(name)] == []
    assert TABLES, "no defect tables found"


@pytest.mark.parametrize("lab", TABLES)
def test_each_table_is_for_a_shipped_lab_and_names_each_defect_once(lab):
    assert lab in SPECS, f"defects/lab{lab}.py has no solutions/{lab}-*/lab.yaml"
    names = [defect.name for defect in TABLES[lab]]
    assert len(names) == len(set(names)), names
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name) for name in names), names


def solution_without_provided_files(spec, tmp_path: Path) -> Path:
    """A copy of the lab's solution without the large files the lab provides (lab 07's torch wheel): a
    submission never holds them, so no defect edits them, and copying them for each defect takes seconds."""

    def provided(folder, names):
        return [name for name in names if (Path(folder) / name).relative_to(spec.path).as_posix() in spec.provided]

    light = tmp_path / "solution"
    shutil.copytree(spec.path, light, ignore=provided)
    return light


@pytest.mark.parametrize(("lab", "defect"), CASES)
def test_defect_applies_and_names_checks_of_its_lab(lab, defect, tmp_path):
    spec = SPECS[lab]
    apply_defect(solution_without_provided_files(spec, tmp_path), tmp_path, defect.edits)  # each edit must apply
    check_ids = {check.check for check in spec.checks}
    assert set(defect.caught_by) <= check_ids, (set(defect.caught_by) - check_ids, sorted(check_ids))
