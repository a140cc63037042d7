"""Lab 08's seeded defects: the lab is data only (lab 01's checks with its own lab.yaml), so each defect here
is caught by those checks reading lab 08's own cases, paths and files. Each is graded with its check alone."""

import re

from seeded import Defect

DEFECTS = (
    Defect(
        "answer-under-another-key",
        "/predict answers under a key the lab does not name",
        edits=[("app/app.py", "label=LABELS[", "topic=LABELS[")],
        caught_by={"PredictionsCorrect": ["0 of 3", "'label'"]},
        graded_alone=True,
    ),
    Defect(
        "least-likely-label",
        "/predict returns the least likely label",
        edits=[("app/app.py", "probabilities.argmax()", "probabilities.argmin()")],
        caught_by={"PredictionsCorrect": ["FAIL billing", "expected {'label': 'billing'}"]},
        graded_alone=True,
    ),
    Defect(
        "empty-text-classified",
        "an empty text is classified instead of refused",
        edits=[("app/app.py", re.compile(r"^    if not text\.strip\(\):\n.*\n", re.M), "")],
        caught_by={"MalformedInputRejected": ["empty text", "expected a 4xx status, got 200"]},
        graded_alone=True,
    ),
    Defect(
        "number-crashes-the-model",
        "a number instead of text reaches the model, which fails with a 500",
        edits=[("app/app.py", re.compile(r"^    if not isinstance\(text, str\):\n.*\n", re.M), "")],
        caught_by={"MalformedInputRejected": ["a number instead of text", "got 500"]},
        graded_alone=True,
    ),
    Defect(
        "model-not-trained",
        "the image is never given a model: no training step",
        edits=[("Dockerfile", "RUN python train.py\n", "")],
        caught_by={"ServiceBecomesReady": ["model.joblib not found"]},
        graded_alone=True,
    ),
    Defect(
        "data-sent-to-engine",
        ".dockerignore leaves out data/",
        edits=[(".dockerignore", re.compile(r"^data\n", re.M), "")],
        caught_by={"BuildContextExcludes": ["data"]},
        graded_alone=True,
    ),
)
