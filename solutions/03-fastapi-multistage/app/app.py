"""The iris classifier of lab 01, served by FastAPI, with every request validated by a pydantic model.

GET  /health        -> {"status": "ok", "model": {...}, "process": {"memory_rss_mb": ..., ...}}
POST /predict       -> body   {"features": [sepal length, sepal width, petal length, petal width]}  (cm)
                       answer {"class": "setosa", "class_id": 0, "probabilities": {...}}
GET  /openapi.json  -> the API described as an OpenAPI 3 document (FastAPI writes it from the code)
GET  /docs          -> the same, as a page to try requests in a browser

A request that does not match the model is answered by FastAPI itself, before our code runs:
422 with {"detail": [{"loc": [...], "msg": "...", ...}]}, one entry per problem.

Run it: uvicorn app:app --host 0.0.0.0 --port 8000   (the Dockerfile's CMD does exactly this)
"""

import math
import os
import sys
import time
from typing import Annotated

import joblib
import psutil  # process memory for /health; built from source, so installing it needs a C compiler
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
N_FEATURES = 4
STARTED = time.monotonic()

# Load the model once, at start-up. If it is missing, stop now with a clear message
# instead of failing on the first request.
if not os.path.exists(MODEL_PATH):
    sys.exit(f"model file {MODEL_PATH} not found: run `python train.py` first (in a Dockerfile: RUN python train.py)")
bundle = joblib.load(MODEL_PATH)
model, CLASSES = bundle["model"], bundle["classes"]

# FastAPI serves the API's description at /openapi.json and a page to try it at /docs. Keep them:
# clients generate code from the schema, and the people calling the service read /docs.
app = FastAPI(
    title="Iris classifier",
    version="1.0.0",
    description="Classifies an iris flower from four measurements in centimetres.",
)


def json_safe(value):
    """`value` with every NaN or Infinity written as a string, which JSON can carry."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own answer to a bad request (422, one "detail" entry per problem) echoes the bad input.
    # Python's JSON parser reads NaN and Infinity, but a JSON answer cannot hold them: echoing them
    # as they are turns a 422 into a crash (500). Same answer, with those values as strings.
    return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})


# >>> TODO(validation): a pydantic model for the request body, so FastAPI rejects bad input with 422
#   (features: exactly 4 finite numbers; unknown fields refused) and documents it in /openapi.json
#   (README task 5)
# A finite number: no NaN or Infinity (Python's JSON parser accepts them), and strict, so that
# "5.1" (a string) and true (a boolean) are refused instead of quietly converted.
Measurement = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class IrisRequest(BaseModel):
    """What POST /predict accepts. FastAPI validates every request against it."""

    model_config = {
        "extra": "forbid",  # a misspelt field is an error, not silently ignored
        "json_schema_extra": {"examples": [{"features": [5.1, 3.5, 1.4, 0.2]}]},
    }

    features: list[Measurement] = Field(
        min_length=N_FEATURES,
        max_length=N_FEATURES,
        description="sepal length, sepal width, petal length, petal width, in cm",
    )


# <<<


class Prediction(BaseModel):
    """What POST /predict answers."""

    # "class" is a Python keyword, so the attribute is class_name and the JSON field is "class".
    class_name: str = Field(serialization_alias="class", examples=["setosa"])
    class_id: int
    probabilities: dict[str, float]


@app.get("/health")
def health() -> dict:
    """Liveness and a few facts for whoever is on call: which model, and how much memory the process holds."""
    process = psutil.Process()
    return {
        "status": "ok",
        "model": {"type": type(model[-1]).__name__, "classes": CLASSES, "sklearn_version": bundle["sklearn_version"]},
        "process": {
            "memory_rss_mb": round(process.memory_info().rss / 2**20, 1),
            "threads": process.num_threads(),
            "uptime_s": round(time.monotonic() - STARTED, 1),
        },
    }


# >>> TODO(validation): take the pydantic model as the parameter instead of the raw request (README task 5)
@app.post("/predict", response_model=Prediction, response_model_by_alias=True)
def predict(request: IrisRequest) -> Prediction:
    # FastAPI has already checked the body against IrisRequest: here it is exactly 4 finite numbers.
    # (A plain `def`: FastAPI runs it in a thread pool, so a slow prediction does not block the server.)
    row = [request.features]
# === starter
# @app.post("/predict")
# async def predict(request: Request):
#     data = await request.json()  # no validation: whatever the client sent, or a crash (500)
#     row = [[float(x) for x in data["features"]]]
# <<<
    class_id = int(model.predict(row)[0])
    probabilities = model.predict_proba(row)[0]
    return Prediction(
        class_name=CLASSES[class_id],
        class_id=class_id,
        probabilities={name: round(float(p), 4) for name, p in zip(CLASSES, probabilities, strict=True)},
    )
