"""Lab 03's seeded defects: each is caught by the check meant for it, with a hint naming the fix."""

import re

from seeded import Defect

# The solution's predict endpoint, and the starter's: the raw request, no pydantic model.
TYPED_ENDPOINT = (
    '@app.post("/predict", response_model=Prediction, response_model_by_alias=True)\n'
    "def predict(request: IrisRequest) -> Prediction:\n"
)
RAW_ENDPOINT = '@app.post("/predict")\nasync def predict(request: Request):\n    data = await request.json()\n'

DEFECTS = (
    Defect(
        "final-stage-from-full-base",
        "final stage FROM the full base",
        edits=[("Dockerfile", re.compile(r"^FROM python:3\.11-slim$", re.M), "FROM python:3.11")],
        caught_by={"NoBuildToolsInImage": ["gcc", "multi-stage"]},
        graded_alone=True,
    ),
    Defect(
        "compiler-in-final-stage",
        "pip install with the compiler in the final stage",
        edits=[
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
        caught_by={"NoBuildToolsInImage": ["gcc", "COPY --from=builder /opt/venv"]},
        graded_alone=True,
    ),
    Defect(
        "copy-whole-builder-root",
        "COPY --from=builder of the whole root filesystem",
        edits=[("Dockerfile", "COPY --from=builder /opt/venv /opt/venv", "COPY --from=builder / /")],
        caught_by={"ImageSizeRelativeBudget": ["no smaller", "COPY --from=builder / /"]},
        graded_alone=True,
    ),
    Defect(
        "no-pydantic-model",
        "the app without a pydantic model (500 on bad input)",
        edits=[
            ("app/app.py", TYPED_ENDPOINT, RAW_ENDPOINT),
            ("app/app.py", "    row = [request.features]\n", '    row = [[float(x) for x in data["features"]]]\n'),
        ],
        caught_by={"ValidationErrors422": ["status 500", "pydantic"]},
        graded_alone=True,
    ),
    Defect(
        "pydantic-lets-nan-through",
        "a pydantic model that lets NaN through",
        edits=[("app/app.py", "Field(strict=True, allow_inf_nan=False)", "Field(strict=True)")],
        caught_by={"ValidationErrors422": ["NaN among the values: status 500", "allow_inf_nan=False"]},
        graded_alone=True,
    ),
    Defect(
        "docs-disabled",
        "docs disabled (openapi_url=None)",
        edits=[("app/app.py", "app = FastAPI(\n", "app = FastAPI(\n    openapi_url=None,\n")],
        caught_by={"OpenAPISchemaServed": ["404", "openapi_url=None"]},
        graded_alone=True,
    ),
    Defect(
        "dev-server-reload",
        "the dev server's --reload",
        edits=[("Dockerfile", '"--port", "8000"]', '"--port", "8000", "--reload"]')],
        caught_by={"NoDevServerFlags": ["--reload", "uvicorn app:app"]},
        graded_alone=True,
    ),
)
