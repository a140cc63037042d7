"""A lab's starter hands out the reference solution's service unchanged: only the container files differ.

(The starter is what the learner completes; if its app drifted from the solution's, the solution's full
marks would prove nothing about the lab.)"""

from __future__ import annotations

import pytest

from grader.spec import REPO_ROOT, official_specs

LEARNER_WORK = {"Dockerfile", ".dockerignore"}  # what the learner writes or completes


@pytest.mark.parametrize("lab_id", sorted(official_specs()))
def test_starter_matches_solution_except_the_learners_work(lab_id):
    solution = official_specs()[lab_id].path
    starter = REPO_ROOT / "labs" / solution.name
    assert starter.is_dir(), f"no starter folder for lab {lab_id}"

    def files(root):
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

    shared = (files(solution) | files(starter)) - LEARNER_WORK
    different = [
        f
        for f in sorted(shared)
        if not (solution / f).is_file()
        or not (starter / f).is_file()
        or (solution / f).read_bytes() != (starter / f).read_bytes()
    ]
    assert different == []
    assert (starter / "Dockerfile").is_file()
