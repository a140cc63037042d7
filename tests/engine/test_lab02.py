"""Lab 02's seeded defects, graded for real: each is caught by the checks meant for it, and by no other,
with a hint, message or evidence naming the fix. (tests/engine/test_labs.py grades the solution and the
starter of every lab.)"""

from __future__ import annotations

import re

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["02"]
SOLUTION = SPEC.path


# Each defect: edits applied to a copy of the solution (file, old text or regex, new text; new None
# deletes the file), and the checks that must catch it, each with a word its hint, message or evidence
# must contain. No other check may fail.
DEFECTS = {
    "COPY . . before the dependency install": (
        [("Dockerfile", "COPY app/requirements.txt app/\n", "COPY . .\n")],
        {"LayerCacheReused": "requirements.txt alone"},
    ),
    "no .dockerignore": (
        [(".dockerignore", None, None)],
        {"BuildContextExcludes": ".dockerignore", "BuildContextSizeBudget": "data/ 20 MiB"},
    ),
    "a .dockerignore that leaves data in": (
        [(".dockerignore", re.compile(r"^data\n", re.M), "")],
        {"BuildContextExcludes": "data", "BuildContextSizeBudget": "data/ 20 MiB"},
    ),
    "ADD . . instead of COPY": (
        [("Dockerfile", "COPY app/ app/\n", "ADD . .\n")],
        {"DockerfileLint": "Use COPY instead of ADD"},
    ),
    "the install in the same RUN as training, which needs the code": (
        [
            ("Dockerfile", "RUN pip install --no-cache-dir -r app/requirements.txt\n", ""),
            (
                "Dockerfile",
                "RUN python app/train.py\n",
                "RUN pip install --no-cache-dir -r app/requirements.txt \\\n && python app/train.py\n",
            ),
        ],
        {"LayerCacheReused": "RUN of its own"},
    ),
    "data copied explicitly into the image": (
        [
            ("Dockerfile", "COPY app/ app/\n", "COPY app/ app/\nCOPY data/ data/\n"),
            # The build would fail with data in .dockerignore; taking it out is how a learner "fixes" that.
            (".dockerignore", re.compile(r"^data\n", re.M), ""),
        ],
        {
            "ForbiddenPathsAbsentFromImage": "/app/data (1 file",
            "BuildContextExcludes": "data",
            "BuildContextSizeBudget": "data/ 20 MiB",
        },
    ),
    "a data file copied into the image under another name": (
        [
            ("Dockerfile", "COPY app/ app/\n", "COPY app/ app/\nCOPY data/wine_sample.csv app/reference.csv\n"),
            (".dockerignore", re.compile(r"^data\n", re.M), "data\n!data/wine_sample.csv\n"),
        ],
        {
            "ForbiddenPathsAbsentFromImage": "/app/app/reference.csv (same content as data/wine_sample.csv)",
            "BuildContextExcludes": "!data/wine_sample.csv",
        },
    ),
    "a slow step after the code copy (over the rebuild budget)": (
        [
            (
                "Dockerfile",
                "RUN python app/train.py\n",
                'RUN python app/train.py \\\n && python -c "import time; time.sleep(22)"\n',
            )
        ],
        {"LayerCacheReused": "budget 20s"},
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, expected = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), SPEC, engine=engine)
    by_check = results_by_check(result)
    not_passed = {t.id: (t.status, t.message) for t in result.tests if t.status != "passed"}
    assert set(not_passed) == set(expected), not_passed
    for check_id, word in expected.items():
        caught = by_check[check_id]
        assert caught.status == "failed", (check_id, caught.status, caught.message)
        assert word in caught.hint + caught.message + caught.evidence, (check_id, caught.message, caught.hint)
    assert result.exit_code == 1
    assert_nothing_left(engine)
