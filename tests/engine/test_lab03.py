"""Lab 03 graded for real: every seeded defect in a copy of the reference solution is caught by the
check meant for it, with a hint naming the fix. (tests/engine/test_labs.py grades the solution and the
starter of every lab.)"""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import CheckSpec, official_specs

SPEC = official_specs()["03"]
SOLUTION = SPEC.path


# The solution's predict endpoint, and the starter's: the raw request, no pydantic model.
TYPED_ENDPOINT = (
    '@app.post("/predict", response_model=Prediction, response_model_by_alias=True)\n'
    "def predict(request: IrisRequest) -> Prediction:\n"
)
RAW_ENDPOINT = '@app.post("/predict")\nasync def predict(request: Request):\n    data = await request.json()\n'

# Each defect: edits applied to a copy of the solution (file, old text or regex, new text),
# the check that must catch it, and words its hint or message must contain.
DEFECTS = {
    "final stage FROM the full base": (
        [("Dockerfile", re.compile(r"^FROM python:3\.11-slim$", re.M), "FROM python:3.11")],
        "NoBuildToolsInImage",
        ["gcc", "multi-stage"],
    ),
    "pip install with the compiler in the final stage": (
        [
            (
                "Dockerfile",
                "COPY --from=builder /opt/venv /opt/venv\nENV PATH=/opt/venv/bin:$PATH\n",
                "RUN apt-get update \\\n"
                " && apt-get install -y --no-install-recommends gcc libc6-dev \\\n"
                " && rm -rf /var/lib/apt/lists/*\n"
                "COPY app/requirements.txt .\n"
                "RUN pip install --no-cache-dir -r requirements.txt\n",
            )
        ],
        "NoBuildToolsInImage",
        ["gcc", "COPY --from=builder /opt/venv"],
    ),
    "COPY --from=builder of the whole root filesystem": (
        [("Dockerfile", "COPY --from=builder /opt/venv /opt/venv", "COPY --from=builder / /")],
        "ImageSizeRelativeBudget",
        ["no smaller", "COPY --from=builder / /"],
    ),
    "the app without a pydantic model (500 on bad input)": (
        [
            ("app/app.py", TYPED_ENDPOINT, RAW_ENDPOINT),
            ("app/app.py", "    row = [request.features]\n", '    row = [[float(x) for x in data["features"]]]\n'),
        ],
        "ValidationErrors422",
        ["status 500", "pydantic"],
    ),
    "a pydantic model that lets NaN through": (
        [("app/app.py", "Field(strict=True, allow_inf_nan=False)", "Field(strict=True)")],
        "ValidationErrors422",
        ["NaN among the values: status 500", "allow_inf_nan=False"],
    ),
    "docs disabled (openapi_url=None)": (
        [("app/app.py", "app = FastAPI(\n", "app = FastAPI(\n    openapi_url=None,\n")],
        "OpenAPISchemaServed",
        ["404", "openapi_url=None"],
    ),
    "the dev server's --reload": (
        [("Dockerfile", '"--port", "8000"]', '"--port", "8000", "--reload"]')],
        "NoDevServerFlags",
        ["--reload", "uvicorn app:app"],
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, words = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), SPEC, engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message)
    said = caught.hint + caught.message + caught.evidence
    assert all(word in said for word in words), (words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)


def test_a_naive_build_that_fails_is_a_failed_check_with_its_log(engine, tmp_path):
    copy = tmp_path / "submission"
    shutil.copytree(SOLUTION, copy)
    (copy / "Dockerfile.broken").write_text("FROM python:3.11-slim\nRUN echo 'the naive step breaks' && exit 3\n")
    # Only the checks this needs, and a naive Dockerfile the lab does not ship (so the submission's is used).
    spec = dataclasses.replace(
        SPEC,
        checks=(
            CheckSpec("ImageBuilds"),
            CheckSpec("ImageSizeRelativeBudget", params={"naive_dockerfile": "Dockerfile.broken"}),
        ),
        learning_targets=(),
    )
    result = grade(copy, spec, engine=engine)
    assert result.status == "graded"
    tests = results_by_check(result)
    assert tests["ImageBuilds"].status == "passed"
    naive = tests["ImageSizeRelativeBudget"]
    assert naive.status == "failed", (naive.status, naive.message)
    assert "could not build Dockerfile.broken" in naive.message
    assert "the naive step breaks" in naive.evidence
    assert_nothing_left(engine)


def test_a_missing_naive_dockerfile_is_a_failed_check(engine, tmp_path):
    copy = tmp_path / "submission"
    shutil.copytree(SOLUTION, copy)
    spec = dataclasses.replace(
        SPEC,
        checks=(CheckSpec("ImageSizeRelativeBudget", params={"naive_dockerfile": "Dockerfile.nowhere"}),),
        learning_targets=(),
    )
    result = grade(copy, spec, engine=engine)
    naive = results_by_check(result)["ImageSizeRelativeBudget"]
    assert naive.status == "failed" and "Dockerfile.nowhere is missing" in naive.message
    assert_nothing_left(engine)
