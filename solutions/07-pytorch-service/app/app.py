"""The shape classifier (model.py) served by FastAPI, on whichever device the container finds.

GET  /health   -> {"status": "ok", "device": "cpu", "cuda_available": false, "gpu_name": null, ...}
POST /predict  -> one picture:  {"image": [[16 numbers], ... 16 rows]}
                  answer        {"class": "circle", "class_id": 0, "probabilities": {...}, "device": "cpu"}
                  a batch:      {"images": [picture, picture, ...]}   (1 to 64 pictures)
                  answer        {"classes": [...], "predictions": [{"class": ...}, ...], "batch_size": 2,
                                 "device": "cpu"}
A picture is 16 rows of 16 grey values, each from 0 (black) to 1 (white). Anything else is answered 422
by FastAPI before our code runs, with {"detail": [{"loc": [...], "msg": "..."}, ...]}.

Run it: uvicorn app:app --host 0.0.0.0 --port 8000   (the Dockerfiles' CMD does exactly this)
"""

import math
import os
from typing import Annotated

import torch
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from model import IMAGE_SIZE, ShapeNet

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.pt"))
MAX_BATCH = 64


def cpu_quota() -> int | None:
    """The CPUs the container may use (docker run --cpus), read from its cgroup; None when unlimited.

    os.cpu_count() counts the host's cores, not the container's share: torch would start one thread
    per host core, and on a 1-CPU container they would take turns on that one CPU, slower than one thread.
    """
    try:  # cgroup v2: "max 100000" or "100000 100000" (quota and period, in microseconds)
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        return None if quota == "max" else max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: a quota of -1 means no limit
        quota = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
        period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
        return None if quota <= 0 else max(1, math.ceil(quota / period))
    except (OSError, ValueError):
        return None


def thread_count() -> int:
    """TORCH_NUM_THREADS when set, else the CPUs this container may really use."""
    if os.environ.get("TORCH_NUM_THREADS"):
        return int(os.environ["TORCH_NUM_THREADS"])
    cores = len(os.sched_getaffinity(0))
    quota = cpu_quota()
    return min(cores, quota) if quota else cores


# Before any work: torch fixes its thread pools on first use.
torch.set_num_threads(thread_count())
torch.set_num_interop_threads(1)


# >>> TODO(device): choose the device from what the container has: "cuda" when torch can use a GPU,
#   else "cpu" (README task 3). The same image then runs on a laptop, a CPU server and a GPU node.
def pick_device() -> torch.device:
    """CUDA when this torch build can use a GPU here, else the CPU. DEVICE=cpu (or cuda:1...) overrides."""
    wanted = os.environ.get("DEVICE", "auto")
    if wanted != "auto":
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# === starter
# def pick_device() -> torch.device:
#     return torch.device("cuda")  # "production has GPUs"
# <<<


DEVICE = pick_device()

# Load the weights once, at start-up, straight onto the device. weights_only=True: torch.load unpickles
# only tensors and plain data, never code, so a tampered model file cannot run anything.
bundle = torch.load(MODEL_PATH, map_location=DEVICE, weights_only=True)
CLASSES = bundle["classes"]
model = ShapeNet(len(CLASSES))
model.load_state_dict(bundle["state_dict"])
model.to(DEVICE).eval()

app = FastAPI(
    title="Shape classifier",
    version="1.0.0",
    description="Tells a circle, a square, a triangle and a cross apart in 16 x 16 grey pictures.",
)

# --- the request, validated by FastAPI before predict() runs ------------------------------------------
# A grey value from 0 to 1: strict (no "0.5" strings, no true/false), finite (no NaN, which Python's JSON
# parser accepts), and at most 1, so that a client sending 0-255 pixels gets an error, not a wrong answer.
Pixel = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Row = Annotated[list[Pixel], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]
Picture = Annotated[list[Row], Field(min_length=IMAGE_SIZE, max_length=IMAGE_SIZE)]


class PredictRequest(BaseModel):
    """One picture in "image", or a batch of 1 to 64 pictures in "images"; never both."""

    model_config = {"extra": "forbid"}

    image: Picture | None = Field(default=None, description=f"{IMAGE_SIZE} rows of {IMAGE_SIZE} values in [0, 1]")
    images: Annotated[list[Picture], Field(min_length=1, max_length=MAX_BATCH)] | None = Field(
        default=None, description=f"a batch of 1 to {MAX_BATCH} pictures"
    )

    @model_validator(mode="after")
    def exactly_one(self):
        if (self.image is None) == (self.images is None):
            raise ValueError('send either "image" (one picture) or "images" (a batch), exactly one of them')
        return self


def json_safe(value):
    """`value` with every NaN or Infinity written as a string, which JSON can carry (see lab 03)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    return value


@app.exception_handler(RequestValidationError)
async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own 422 echoes the bad input; a NaN in it would turn the 422 into a 500.
    return JSONResponse(status_code=422, content={"detail": json_safe(jsonable_encoder(exc.errors()))})


# --- the endpoints ---------------------------------------------------------------------------------
@app.get("/health")
def health() -> dict:
    """Liveness, and what the service runs on: on-call engineers ask "is it really on the GPU?" first."""
    # >>> TODO(device): report whether CUDA is available and the GPU's name (null on a CPU), README task 3
    on_gpu = DEVICE.type == "cuda"
    report = {
        "status": "ok",
        "device": DEVICE.type,
        "cuda_available": torch.cuda.is_available(),
        "gpu_name": torch.cuda.get_device_name(DEVICE) if on_gpu else None,
    }
    # === starter
    # report = {"status": "ok", "device": DEVICE.type}
    # <<<
    report.update(
        torch_version=str(torch.__version__),
        cuda_version=torch.version.cuda,  # None in a CPU build of torch
        threads=torch.get_num_threads(),
        model={
            "classes": CLASSES,
            "input_shape": [1, IMAGE_SIZE, IMAGE_SIZE],
            "test_accuracy": bundle["test_accuracy"],
        },
    )
    return report


@app.post("/predict")
def predict(request: PredictRequest) -> dict:
    # A plain `def`: FastAPI runs it in a thread pool, so a slow batch does not block other requests.
    pictures = [request.image] if request.image is not None else request.images
    batch = torch.tensor(pictures, dtype=torch.float32).unsqueeze(1).to(DEVICE)  # N x 1 x 16 x 16
    with torch.inference_mode():
        probabilities = model(batch).softmax(dim=1).cpu()
    answers = []
    for row in probabilities:
        class_id = int(row.argmax())
        answers.append(
            {
                "class": CLASSES[class_id],
                "class_id": class_id,
                "probabilities": {name: round(float(p), 4) for name, p in zip(CLASSES, row, strict=True)},
            }
        )
    if request.image is not None:
        return {**answers[0], "device": DEVICE.type}
    return {
        "classes": [a["class"] for a in answers],
        "predictions": answers,
        "batch_size": len(answers),
        "device": DEVICE.type,
    }
