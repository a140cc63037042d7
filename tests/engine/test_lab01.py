"""Lab 01's seeded defects: each, applied to a copy of the reference solution, is caught by the check
meant for it, with a hint naming the fix. (tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import re

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["01"]
SOLUTION = SPEC.path


# Each defect: edits applied to a copy of the solution (file, old text or regex, new text),
# the check that must catch it, and a word its hint must contain.
DEFECTS = {
    "app bound to 127.0.0.1": (
        [("app/app.py", 'os.environ.get("HOST", "0.0.0.0")', 'os.environ.get("HOST", "127.0.0.1")')],
        "ServiceBecomesReady",
        "0.0.0.0",
    ),
    "no USER line": ([("Dockerfile", "USER 10001:10001\n", "")], "NonRootUser", "USER"),
    "COPY . . before the dependency install": (
        [("Dockerfile", "COPY app/requirements.txt .\n", "COPY app/ .\n")],
        "LayerCacheReused",
        "requirements",
    ),
    "no HEALTHCHECK": (
        [("Dockerfile", re.compile(r"^HEALTHCHECK .*?\n(  CMD .*\n)", re.M), "")],
        "HealthcheckDefined",
        "HEALTHCHECK",
    ),
    "HEALTHCHECK calls curl, absent from the image": (
        [
            (
                "Dockerfile",
                re.compile(r"^  CMD \[\"python\", \"-c\".*\n", re.M),
                "  CMD curl -f http://127.0.0.1:5000/health || exit 1\n",
            )
        ],
        "HealthcheckHealthy",
        "curl",
    ),
    "unpinned latest base": (
        [("Dockerfile", "FROM python:3.11-slim", "FROM python:latest")],
        "DockerfileLint",
        "3.11-slim",
    ),
    "a model that always predicts the same class": (
        [
            (
                "app/train.py",
                "LogisticRegression(max_iter=1000, random_state=SEED)",
                'DummyClassifier(strategy="most_frequent")',
            ),
            (
                "app/train.py",
                "from sklearn.datasets import load_iris",
                "from sklearn.datasets import load_iris\nfrom sklearn.dummy import DummyClassifier",
            ),
        ],
        "PredictionsCorrect",
        "same answer",
    ),
    "a 500 on malformed input": (
        [("app/app.py", "if not all(is_number(x) for x in features):", "if False:")],
        "MalformedInputRejected",
        "400",
    ),
    "an app that exits at start": (
        [("app/app.py", "bundle = joblib.load(MODEL_PATH)", 'sys.exit("crashed at start")\nbundle = None')],
        "ServiceBecomesReady",
        "crashed",
    ),
    "CMD names a program the image does not have": (
        [("Dockerfile", 'CMD ["python", "app.py"]', 'CMD ["pyhton", "app.py"]')],
        "ServiceBecomesReady",
        "CMD",
    ),
    "an app that never starts listening": (
        [("app/app.py", "    app.run(host=HOST, port=PORT)", "    import time\n    time.sleep(3600)")],
        "ServiceBecomesReady",
        "starts the web server",
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, hint_word = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), SPEC, engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message)
    assert hint_word in caught.hint + caught.message + caught.evidence
    assert result.exit_code == 1
    assert_nothing_left(engine)
