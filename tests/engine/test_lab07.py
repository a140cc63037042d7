"""Lab 07 graded for real: every seeded defect in a copy of the reference solution is caught by the
check meant for it, with a hint naming the fix. (tests/engine/test_labs.py grades the solution and the
starter of every lab.)

No test here downloads a CUDA build of torch. What PyPI's CUDA torch would leave in a CPU image is
imitated on top of the CPU build: a torch that reports a CUDA version, and the metadata of nvidia-*
and triton packages, which is all that pip (and the check) sees of them.
"""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.checks.gpu import gpu_runtime
from grader.engine import Engine
from grader.session import grade
from grader.spec import CheckSpec, official_specs

SPEC = official_specs()["07"]
SOLUTION = SPEC.path
SITE = "/opt/venv/lib/python3.11/site-packages"
TRIM = "           /opt/venv/lib/python3.11/site-packages/torch/bin/test_*\n"


def fake_distribution(name: str, version: str) -> str:
    """A RUN line that leaves the pip metadata of `name` in the builder's venv, as if pip had installed it."""
    folder = f"{SITE}/{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n"
    return f"RUN mkdir -p {folder} && printf '{metadata}' > {folder}/METADATA\n"


COMPOSE_RESERVATION = re.compile(r"^    deploy:\n(?:      .*\n)+", re.M)  # deploy: and the lines indented below it

# Each defect: edits applied to a copy of the solution (file, old text or regex, new text), the check that
# must catch it, words its message, evidence or hint must contain, and whether it needs only that check
# (the GPU files are linted without building anything).
DEFECTS = {
    "torch built for CUDA (what PyPI's Linux wheel is)": (
        [
            (
                "Dockerfile",
                TRIM,
                TRIM + f"RUN sed -i \"s/^cuda: Optional\\[str\\] = None/cuda: Optional[str] = '12.8'/\" "
                f"{SITE}/torch/version.py\n",
            )
        ],
        "CpuOnlyTorch",
        ["torch.version.cuda is '12.8'", "torch==VERSION+cpu", "download.pytorch.org/whl/cpu"],
        False,
    ),
    "the nvidia-* and triton packages a plain `pip install torch` brings": (
        [
            (
                "Dockerfile",
                TRIM,
                TRIM + fake_distribution("nvidia-cublas-cu12", "12.8.4.1") + fake_distribution("triton", "3.5.0"),
            )
        ],
        "CpuOnlyTorch",
        ["2 CUDA package(s)", "nvidia-cublas-cu12==12.8.4.1", "triton==3.5.0", "+cpu"],
        False,
    ),
    "the wheel copied into the final stage (deleted later, still shipped)": (
        [("Dockerfile", "COPY app/ .\n", "COPY wheels/ /tmp/wheels/\nRUN rm -rf /tmp/wheels\nCOPY app/ .\n")],
        "ImageSizeBudget",
        ["over the budget of 1100 MB", "builder stage", "COPY --from=builder /opt/venv"],
        False,
    ),
    "the device hard-coded to cuda": (
        [
            (
                "app/app.py",
                'return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
                'return torch.device("cuda")',
            )
        ],
        "ServiceBecomesReady",
        ["stopped right after starting", "CUDA device but torch.cuda.is_available() is False"],
        False,
    ),
    "/health without cuda_available": (
        [("app/app.py", '        "cuda_available": torch.cuda.is_available(),\n', "")],
        "HealthReportsDevice",
        ['"cuda_available" is missing', "torch.cuda.is_available()"],
        False,
    ),
    "a batch whose pictures are not checked for shape": (
        [
            (
                "app/app.py",
                "images: Annotated[list[Picture], Field(min_length=1, max_length=MAX_BATCH)] | None",
                "images: list[list[list[Pixel]]] | None",
            )
        ],
        "ValidationErrors422",
        ["a batch with one picture of the wrong shape: status 500", "pydantic"],
        False,
    ),
    "compose.gpu.yaml without the GPU reservation": (
        [("compose.gpu.yaml", COMPOSE_RESERVATION, "")],
        "GpuVariantLint",
        ["no service reserves a GPU", "driver: nvidia", "capabilities: [gpu]"],
        True,
    ),
    "Dockerfile.gpu FROM python:3.11-slim": (
        [("Dockerfile.gpu", "FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04", "FROM python:3.11-slim")],
        "GpuVariantLint",
        ["not an NVIDIA CUDA image", "nvidia/cuda:12.8.1-runtime-ubuntu24.04"],
        True,
    ),
    "Dockerfile.gpu on a devel base": (
        [("Dockerfile.gpu", "nvidia/cuda:12.8.1-runtime-ubuntu24.04", "nvidia/cuda:12.8.1-devel-ubuntu24.04")],
        "GpuVariantLint",
        ["devel image", "runtime"],
        True,
    ),
    "Dockerfile.gpu with the CPU build of torch": (
        [("Dockerfile.gpu", "torch==2.13.0 -r", "torch==2.13.0+cpu -r")],
        "GpuVariantLint",
        ["torch's CPU build (torch==2.13.0+cpu)", "never +cpu"],
        True,
    ),
    "Dockerfile.gpu failing hadolint": (
        [
            (
                "Dockerfile.gpu",
                'CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]',
                "CMD uvicorn app:app",
            )
        ],
        "GpuVariantLint",
        ["hadolint found 1 problem", "DL3025", "exec (JSON) form"],
        True,
    ),
}


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, words, alone = DEFECTS[defect]
    if alone:  # only the check meant for it, with the lab's params
        spec = dataclasses.replace(
            SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=()
        )
    else:
        spec = SPEC
    result = grade(apply_defect(SOLUTION, tmp_path, edits), spec, engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message, caught.evidence)
    said = caught.hint + caught.message + caught.evidence
    assert all(word in said for word in words), (words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)


def test_without_a_gpu_runtime_the_gpu_image_is_skipped_saying_so(engine):
    if gpu_runtime(engine.info())[0]:
        pytest.skip("this engine has the NVIDIA runtime: GpuImageRuns runs for real here")
    spec = dataclasses.replace(SPEC, checks=(CheckSpec("ImageBuilds"), CheckSpec("GpuImageRuns")), learning_targets=())
    result = grade(SOLUTION, spec, engine=engine)
    run = results_by_check(result)["GpuImageRuns"]
    assert run.status == "skipped" and run.message.startswith("skipped: no GPU runtime"), run.message
    assert "'nvidia'" in run.message and re.search(r"CPU image \d+ MB; no CUDA image", run.message)
    assert_nothing_left(engine)


class EngineClaimingGpu(Engine):
    """The real engine, except that `docker info` lists the NVIDIA runtime."""

    def info(self) -> dict:
        info = dict(super().info())
        info["Runtimes"] = {**(info.get("Runtimes") or {}), "nvidia": {"path": "nvidia-container-runtime"}}
        return info


def test_with_a_gpu_runtime_the_gpu_image_is_built_and_started_with_a_gpu(engine, tmp_path):
    """The GPU path up to the engine: Dockerfile.gpu (here the CPU Dockerfile, so nothing CUDA is pulled) is
    built in the background and started with a GPU device request, which an engine without a GPU refuses."""
    if gpu_runtime(engine.info())[0]:
        pytest.skip("this engine really has the NVIDIA runtime")
    copy = tmp_path / "submission"
    shutil.copytree(SOLUTION, copy)
    shutil.copy(copy / "Dockerfile", copy / "Dockerfile.gpu")
    spec = dataclasses.replace(SPEC, checks=(CheckSpec("ImageBuilds"), CheckSpec("GpuImageRuns")), learning_targets=())
    claiming = EngineClaimingGpu(engine.client, engine.session)
    result = grade(copy, spec, engine=claiming)
    run = results_by_check(result)["GpuImageRuns"]
    assert run.status == "failed", (run.status, run.message)
    assert "could not start the GPU image with a GPU" in run.message
    assert re.search(r"CPU image \d+ MB, CUDA image \d+ MB", run.message), run.message
    assert "gpu_build_s" in result.timings
    assert_nothing_left(engine)
