"""Helpers the engine tests share: seeding defects into a copy of a solution, and reading results."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from grader.result import GradeResult


def apply_defect(solution: Path, tmp_path: Path, edits) -> Path:
    """Copy `solution` and apply `edits`: (file, old text or compiled regex, new text); old None deletes the file."""
    copy = tmp_path / "submission"
    shutil.copytree(solution, copy)
    for rel, old, new in edits:
        path = copy / rel
        if old is None:
            path.unlink()
            continue
        text = path.read_text()
        changed = old.sub(new, text, count=1) if isinstance(old, re.Pattern) else text.replace(old, new, 1)
        assert changed != text, f"defect edit did not apply to {rel}: the solution changed, update the test"
        path.write_text(changed)
    return copy


def results_by_check(result: GradeResult) -> dict[str, object]:
    return {t.id: t for t in result.tests}


def assert_nothing_left(engine) -> None:
    assert engine.leftovers() == {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
