"""Lab 07's seeded defects: each is caught by the check meant for it, with a hint naming the fix.

The GPU files' defects are graded by that one check alone (the GPU files are linted without building
anything); the others by the whole lab. None downloads a CUDA build of torch: what PyPI's CUDA torch would
leave in a CPU image is imitated on top of the CPU build, a torch that reports a CUDA version and the
metadata of nvidia-* and triton packages, which is all that pip (and the check) sees of them.
"""

import re

from seeded import Defect

SITE = "/opt/venv/lib/python3.11/site-packages"
TRIM = "           /opt/venv/lib/python3.11/site-packages/torch/bin/test_*\n"
COMPOSE_RESERVATION = re.compile(r"^    deploy:\n(?:      .*\n)+", re.M)  # deploy: and the lines indented below it


def fake_distribution(name: str, version: str) -> str:
    """A RUN line that leaves the pip metadata of `name` in the builder's venv, as if pip had installed it."""
    folder = f"{SITE}/{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n"
    return f"RUN mkdir -p {folder} && printf '{metadata}' > {folder}/METADATA\n"


DEFECTS = (
    Defect(
        "cuda-torch",
        "torch built for CUDA (what PyPI's Linux wheel is)",
        edits=[
            (
                "Dockerfile",
                TRIM,
                TRIM + f"RUN sed -i \"s/^cuda: Optional\\[str\\] = None/cuda: Optional[str] = '12.8'/\" "
                f"{SITE}/torch/version.py\n",
            )
        ],
        caught_by={
            "CpuOnlyTorch": ["torch.version.cuda is '12.8'", "torch==VERSION+cpu", "download.pytorch.org/whl/cpu"]
        },
    ),
    Defect(
        "nvidia-packages",
        "the nvidia-* and triton packages a plain `pip install torch` brings",
        edits=[
            (
                "Dockerfile",
                TRIM,
                TRIM + fake_distribution("nvidia-cublas-cu12", "12.8.4.1") + fake_distribution("triton", "3.5.0"),
            )
        ],
        caught_by={"CpuOnlyTorch": ["2 CUDA package(s)", "nvidia-cublas-cu12==12.8.4.1", "triton==3.5.0", "+cpu"]},
    ),
    Defect(
        "wheel-in-final-stage",
        "the wheel copied into the final stage (deleted later, still shipped)",
        edits=[("Dockerfile", "COPY app/ .\n", "COPY wheels/ /tmp/wheels/\nRUN rm -rf /tmp/wheels\nCOPY app/ .\n")],
        caught_by={"ImageSizeBudget": ["over the budget of 1100 MB", "builder stage", "COPY --from=builder /opt/venv"]},
    ),
    Defect(
        "device-hard-coded-to-cuda",
        "the device hard-coded to cuda",
        edits=[
            (
                "app/app.py",
                'return torch.device("cuda" if torch.cuda.is_available() else "cpu")',
                'return torch.device("cuda")',
            )
        ],
        caught_by={
            "ServiceBecomesReady": [
                "stopped right after starting",
                "CUDA device but torch.cuda.is_available() is False",
            ]
        },
    ),
    Defect(
        "health-without-cuda-available",
        "/health without cuda_available",
        edits=[("app/app.py", '        "cuda_available": torch.cuda.is_available(),\n', "")],
        caught_by={"HealthReportsDevice": ['"cuda_available" is missing', "torch.cuda.is_available()"]},
    ),
    Defect(
        "batch-shape-unchecked",
        "a batch whose pictures are not checked for shape",
        edits=[
            (
                "app/app.py",
                "images: Annotated[list[Picture], Field(min_length=1, max_length=MAX_BATCH)] | None",
                "images: list[list[list[Pixel]]] | None",
            )
        ],
        caught_by={"ValidationErrors422": ["a batch with one picture of the wrong shape: status 500", "pydantic"]},
    ),
    Defect(
        "gpu-compose-without-reservation",
        "compose.gpu.yaml without the GPU reservation",
        edits=[("compose.gpu.yaml", COMPOSE_RESERVATION, "")],
        caught_by={"GpuVariantLint": ["no service reserves a GPU", "driver: nvidia", "capabilities: [gpu]"]},
        graded_alone=True,
    ),
    Defect(
        "gpu-dockerfile-from-python-slim",
        "Dockerfile.gpu FROM python:3.11-slim",
        edits=[("Dockerfile.gpu", "FROM nvidia/cuda:12.8.1-runtime-ubuntu24.04", "FROM python:3.11-slim")],
        caught_by={"GpuVariantLint": ["not an NVIDIA CUDA image", "nvidia/cuda:12.8.1-runtime-ubuntu24.04"]},
        graded_alone=True,
    ),
    Defect(
        "gpu-dockerfile-devel-base",
        "Dockerfile.gpu on a devel base",
        edits=[("Dockerfile.gpu", "nvidia/cuda:12.8.1-runtime-ubuntu24.04", "nvidia/cuda:12.8.1-devel-ubuntu24.04")],
        caught_by={"GpuVariantLint": ["devel image", "runtime"]},
        graded_alone=True,
    ),
    Defect(
        "gpu-dockerfile-cpu-torch",
        "Dockerfile.gpu with the CPU build of torch",
        edits=[("Dockerfile.gpu", "torch==2.13.0 -r", "torch==2.13.0+cpu -r")],
        caught_by={"GpuVariantLint": ["torch's CPU build (torch==2.13.0+cpu)", "never +cpu"]},
        graded_alone=True,
    ),
    Defect(
        "gpu-dockerfile-fails-hadolint",
        "Dockerfile.gpu failing hadolint",
        edits=[
            (
                "Dockerfile.gpu",
                'CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]',
                "CMD uvicorn app:app",
            )
        ],
        caught_by={"GpuVariantLint": ["hadolint found 1 problem", "DL3025", "exec (JSON) form"]},
        graded_alone=True,
    ),
)
