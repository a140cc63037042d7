"""Lab 05 graded for real: every seeded defect in a copy of the reference solution is caught by the
check meant for it, with a hint naming the fix. (tests/engine/test_labs.py grades the solution and the
starter of every lab.)"""

from __future__ import annotations

import dataclasses
import re

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["05"]
SOLUTION = SPEC.path
BAKED = [
    ("Dockerfile", re.compile(r"^ENV MODEL_PATH=.*$", re.M), "RUN python train.py --version 1.0.0 --out model.joblib"),
    (
        "app/app.py",
        'MODEL_PATH = os.environ.get("MODEL_PATH", "/models/model.joblib")',
        'MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib")',
    ),
]

# Each defect: edits applied to a copy of the solution (file, old text or regex, new text), the check
# that must catch it, and words its message, evidence or hint must contain. Only that check is graded.
DEFECTS = {
    "model baked at build time, MODEL_PATH ignored (the prediction)": (
        BAKED,
        "MountedModelIsUsed",
        ["does not follow the mounted model", "'setosa', expected 'virginica'", "MODEL_PATH"],
    ),
    "model baked at build time, MODEL_PATH ignored (the image)": (
        BAKED,
        "NoModelInImage",
        ["/app/model.joblib", ".dockerignore"],
    ),
    "a corrupt model gives 500 at request time instead of stopping the container": (
        [
            (
                "app/app.py",
                re.compile(r'sys\.exit\(f"could not load the model from .*\)'),
                'return {"model": None, "classes": [], "version": None, "sklearn_version": None}, ""',
            )
        ],
        "BadModelFailsFast",
        ["corrupt model", "still running", "HTTP 500", "sys.exit"],
    ),
    "a missing model makes the service wait for ever": (
        [("app/app.py", re.compile(r'sys\.exit\(f"model file .*\)'), '__import__("time").sleep(3600)')],
        "BadModelFailsFast",
        ["missing model", "still running", "it hangs", "never wait"],
    ),
    "/health does not report the model's version": (
        [
            (
                "app/app.py",
                'info = {"version": bundle["version"], "sha256": MODEL_SHA256, "path": MODEL_PATH}',
                "info = {}",
            )
        ],
        "HealthReportsModelVersion",
        ["model.version None, expected '2.0.0'", "sha256"],
    ),
}


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one build and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, words = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), only(check_id), engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message)
    said = caught.hint + caught.message + caught.evidence
    assert all(word in said for word in words), (words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)


def test_the_submissions_own_model_files_are_never_mounted(engine, tmp_path):
    """A learner who swaps the model files in their copy of the lab gains nothing: the lab's own are used."""
    copy = apply_defect(SOLUTION, tmp_path, [])
    (copy / "models" / "v2.joblib").write_bytes((copy / "models" / "v1.joblib").read_bytes())
    result = grade(copy, only("MountedModelIsUsed"), engine=engine)
    assert results_by_check(result)["MountedModelIsUsed"].status == "passed"
    assert_nothing_left(engine)
