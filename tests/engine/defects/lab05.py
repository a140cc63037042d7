"""Lab 05's seeded defects, each graded by the one check meant for it: it fails, its hint naming the fix."""

import re

from seeded import Defect

# The model trained into the image, and the app reading it from beside itself instead of MODEL_PATH.
BAKED = [
    ("Dockerfile", re.compile(r"^ENV MODEL_PATH=.*$", re.M), "RUN python train.py --version 1.0.0 --out model.joblib"),
    (
        "app/app.py",
        'MODEL_PATH = os.environ.get("MODEL_PATH", "/models/model.joblib")',
        'MODEL_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model.joblib")',
    ),
]

DEFECTS = (
    Defect(
        "baked-model-ignores-mount",
        "model baked at build time, MODEL_PATH ignored (the prediction)",
        edits=BAKED,
        caught_by={
            "MountedModelIsUsed": ["does not follow the mounted model", "'setosa', expected 'virginica'", "MODEL_PATH"]
        },
        graded_alone=True,
    ),
    Defect(
        "baked-model-in-image",
        "model baked at build time, MODEL_PATH ignored (the image)",
        edits=BAKED,
        caught_by={"NoModelInImage": ["/app/model.joblib", ".dockerignore"]},
        graded_alone=True,
    ),
    Defect(
        "corrupt-model-gives-500",
        "a corrupt model gives 500 at request time instead of stopping the container",
        edits=[
            (
                "app/app.py",
                re.compile(r'sys\.exit\(f"could not load the model from .*\)'),
                'return {"model": None, "classes": [], "version": None, "sklearn_version": None}, ""',
            )
        ],
        caught_by={"BadModelFailsFast": ["corrupt model", "still running", "HTTP 500", "sys.exit"]},
        graded_alone=True,
    ),
    Defect(
        "missing-model-waits",
        "a missing model makes the service wait for ever",
        edits=[("app/app.py", re.compile(r'sys\.exit\(f"model file .*\)'), '__import__("time").sleep(3600)')],
        caught_by={"BadModelFailsFast": ["missing model", "still running", "it hangs", "never wait"]},
        graded_alone=True,
    ),
    Defect(
        "health-without-model-version",
        "/health does not report the model's version",
        edits=[
            (
                "app/app.py",
                'info = {"version": bundle["version"], "sha256": MODEL_SHA256, "path": MODEL_PATH}',
                "info = {}",
            )
        ],
        caught_by={"HealthReportsModelVersion": ["model.version None, expected '2.0.0'", "sha256"]},
        graded_alone=True,
    ),
)
