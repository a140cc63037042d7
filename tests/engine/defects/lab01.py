"""Lab 01's seeded defects: each is caught by the check meant for it, with a hint naming the fix. Each is
graded with that check alone: one build and one check, not a whole grade."""

import re

from seeded import Defect

DEFECTS = (
    Defect(
        "app-bound-to-localhost",
        "app bound to 127.0.0.1",
        edits=[("app/app.py", 'os.environ.get("HOST", "0.0.0.0")', 'os.environ.get("HOST", "127.0.0.1")')],
        caught_by={"ServiceBecomesReady": ["0.0.0.0"]},
        graded_alone=True,
    ),
    Defect(
        "no-user",
        "no USER line",
        edits=[("Dockerfile", "USER 10001:10001\n", "")],
        caught_by={"NonRootUser": ["USER"]},
        graded_alone=True,
    ),
    Defect(
        "copy-all-before-install",
        "COPY . . before the dependency install",
        edits=[("Dockerfile", "COPY app/requirements.txt .\n", "COPY app/ .\n")],
        caught_by={"LayerCacheReused": ["requirements"]},
        graded_alone=True,
    ),
    Defect(
        "no-healthcheck",
        "no HEALTHCHECK",
        edits=[("Dockerfile", re.compile(r"^HEALTHCHECK .*?\n(  CMD .*\n)", re.M), "")],
        caught_by={"HealthcheckDefined": ["HEALTHCHECK"]},
        graded_alone=True,
    ),
    Defect(
        "healthcheck-calls-curl",
        "HEALTHCHECK calls curl, absent from the image",
        edits=[
            (
                "Dockerfile",
                re.compile(r"^  CMD \[\"python\", \"-c\".*\n", re.M),
                "  CMD curl -f http://127.0.0.1:5000/health || exit 1\n",
            )
        ],
        caught_by={"HealthcheckHealthy": ["curl"]},
        graded_alone=True,
    ),
    Defect(
        "latest-base",
        "unpinned latest base",
        edits=[("Dockerfile", "FROM python:3.11-slim", "FROM python:latest")],
        caught_by={"DockerfileLint": ["3.11-slim"]},
        graded_alone=True,
    ),
    Defect(
        "constant-model",
        "a model that always predicts the same class",
        edits=[
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
        caught_by={"PredictionsCorrect": ["same answer"]},
        graded_alone=True,
    ),
    Defect(
        "500-on-malformed-input",
        "a 500 on malformed input",
        edits=[("app/app.py", "if not all(is_number(x) for x in features):", "if False:")],
        caught_by={"MalformedInputRejected": ["400"]},
        graded_alone=True,
    ),
    Defect(
        "exits-at-start",
        "an app that exits at start",
        edits=[("app/app.py", "bundle = joblib.load(MODEL_PATH)", 'sys.exit("crashed at start")\nbundle = None')],
        caught_by={"ServiceBecomesReady": ["crashed"]},
        graded_alone=True,
    ),
    Defect(
        "cmd-names-missing-program",
        "CMD names a program the image does not have",
        edits=[("Dockerfile", 'CMD ["python", "app.py"]', 'CMD ["pyhton", "app.py"]')],
        caught_by={"ServiceBecomesReady": ["CMD"]},
        graded_alone=True,
    ),
    Defect(
        "never-listens",
        "an app that never starts listening",
        edits=[("app/app.py", "    app.run(host=HOST, port=PORT)", "    import time\n    time.sleep(3600)")],
        caught_by={"ServiceBecomesReady": ["starts the web server"]},
        graded_alone=True,
    ),
)
