"""The pure parts of the GPU checks (grader/checks/on_gpu.py, grader/gpu_variant.py, grader/gpu_runtime.py):
the engine's runtimes, the size sentence, a health answer's device report, the torch probe's report, and what
a GPU Dockerfile and Compose file say, all without an engine (the Compose config is recorded
`docker compose config --format json` output)."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from grader.checks.base import registry
from grader.checks.on_gpu import no_gpu_message, size_comparison
from grader.dockerfile import dockerfile_instructions, final_base_image
from grader.errors import SpecError
from grader.gpu_runtime import gpu_runtime
from grader.gpu_variant import (
    TORCH_PROBE,
    compose_gpu_problems,
    cpu_only_problems,
    cuda_base_problem,
    device_problems,
    forbidden_distributions,
    probe_report,
    requirement_lines,
    split_image,
    torch_build_problems,
    torch_installs,
)
from grader.spec import REPO_ROOT, CheckSpec

LAB = REPO_ROOT / "solutions" / "07-pytorch-service"
REPOS = ["nvidia/cuda", "nvcr.io/nvidia/cuda"]

# --- the engine's runtimes (recorded `docker info` fragments) ---------------------------------------

INFO_NO_GPU = {
    "Runtimes": {"io.containerd.runc.v2": {"path": "runc"}, "runc": {"path": "runc"}},
    "DefaultRuntime": "runc",
}
INFO_GPU = {
    "Runtimes": {
        "io.containerd.runc.v2": {"path": "runc"},
        "nvidia": {"path": "nvidia-container-runtime"},
        "runc": {"path": "runc"},
    },
    "DefaultRuntime": "runc",
}


def test_the_nvidia_runtime_is_found_among_the_runtimes():
    assert gpu_runtime(INFO_GPU) == (True, ["io.containerd.runc.v2", "nvidia", "runc"])
    assert gpu_runtime(INFO_NO_GPU) == (False, ["io.containerd.runc.v2", "runc"])
    assert gpu_runtime({}) == (False, [])  # an engine that lists no runtimes at all


def test_the_skip_message_starts_as_the_lab_contract_says_and_names_what_was_looked_for():
    message = no_gpu_message(["runc"], "Dockerfile.gpu", 1_002_000_000)
    assert message.startswith("skipped: no GPU runtime")
    assert "'nvidia'" in message and "runc" in message and "Dockerfile.gpu" in message
    assert "CPU image 1002 MB; no CUDA image" in message


def test_sizes_are_compared_where_both_images_exist():
    assert size_comparison(1_000_000_000, 8_500_000_000) == (
        "CPU image 1000 MB, CUDA image 8500 MB: the CUDA image is 8.5 times the size of the CPU one"
    )
    assert "no CUDA image" in size_comparison(1_000_000_000, None)
    assert "the CPU image did not build" in size_comparison(None, 8_500_000_000)
    assert "neither" in size_comparison(None, None)


# --- the health answer ---------------------------------------------------------------------------


def test_a_truthful_cpu_report_has_no_problems():
    assert device_problems({"device": "cpu", "cuda_available": False, "gpu_name": None}, expect_gpu=False) == []


@pytest.mark.parametrize(
    "health, words",
    [
        ({"status": "ok", "device": "cpu"}, ['"cuda_available" is missing', '"gpu_name" is missing']),
        ({"device": "cuda", "cuda_available": False, "gpu_name": None}, ["\"device\" is 'cuda'", 'expected "cpu"']),
        ({"device": "cpu", "cuda_available": "no", "gpu_name": None}, ["not true or false"]),
        ({"device": "cpu", "cuda_available": False, "gpu_name": "none"}, ["expected null"]),
        (["cpu"], ["not a JSON object"]),
    ],
)
def test_a_wrong_cpu_report_is_explained(health, words):
    said = "\n".join(device_problems(health, expect_gpu=False))
    assert all(word in said for word in words), said


def test_a_gpu_report_must_say_cuda_and_name_the_gpu():
    good = {"device": "cuda", "cuda_available": True, "gpu_name": "NVIDIA H100 80GB HBM3"}
    assert device_problems(good, expect_gpu=True) == []
    fell_back = {"device": "cpu", "cuda_available": True, "gpu_name": ""}
    said = "\n".join(device_problems(fell_back, expect_gpu=True))
    assert "does not run on the GPU it was given" in said and "not the name of the GPU" in said


def test_the_health_fields_can_be_renamed_and_nested():
    fields = {"device_field": "runtime.device", "cuda_field": "runtime.cuda", "gpu_name_field": "runtime.gpu"}
    health = {"runtime": {"device": "cpu", "cuda": False, "gpu": None}}
    assert device_problems(health, expect_gpu=False, fields=fields) == []
    assert device_problems({"runtime": {}}, expect_gpu=False, fields=fields)[0] == '"runtime.device" is missing'


# --- the torch probe -----------------------------------------------------------------------------


def test_the_probe_runs_where_torch_is_missing_and_reports_that():
    # A Python without site-packages (-S) has no torch: the probe must still print its report, with the error.
    out = subprocess.run([sys.executable, "-S", "-c", TORCH_PROBE], capture_output=True, text=True, timeout=60).stdout
    report = probe_report(out)
    assert report is not None and "ModuleNotFoundError" in report["error"]
    assert isinstance(report["distributions"], list)
    assert cpu_only_problems(report, ["nvidia-*"])[0].startswith("torch does not import in the image")


def test_the_report_line_is_found_among_warnings():
    out = 'UserWarning: something\nTORCH-PROBE {"torch": "2.13.0+cpu", "cuda": null, "distributions": []}\n'
    assert probe_report(out) == {"torch": "2.13.0+cpu", "cuda": None, "distributions": []}
    assert probe_report("Traceback ...\n") is None


CPU_REPORT = {
    "torch": "2.13.0+cpu",
    "cuda": None,
    "distributions": ["filelock==4.2.11", "numpy==2.4.6", "sympy==1.14.0", "torch==2.13.0+cpu"],
}


def test_a_cpu_build_without_cuda_packages_passes():
    assert cpu_only_problems(CPU_REPORT, ["nvidia-*", "triton"]) == []


def test_a_cuda_build_and_its_nvidia_packages_are_named():
    report = copy.deepcopy(CPU_REPORT)
    report.update(torch="2.13.0", cuda="12.8")
    report["distributions"] += ["nvidia-cublas-cu12==12.8.4.1", "NVIDIA-cudnn-cu12==9.10.2.21", "triton==3.5.0"]
    problems = cpu_only_problems(report, ["nvidia-*", "triton"])
    assert "torch.version.cuda is '12.8'" in problems[0]
    assert "3 CUDA package(s)" in problems[1] and "nvidia-cublas-cu12==12.8.4.1" in problems[1]


def test_distribution_patterns_match_names_not_versions():
    assert forbidden_distributions(["nvidia-nccl-cu12==2.27.3", "torch==2.13.0+cpu"], ["nvidia-*"]) == [
        "nvidia-nccl-cu12==2.27.3"
    ]
    assert forbidden_distributions(["mytriton==1.0"], ["triton"]) == []


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("nvidia/cuda:12.8.1-runtime-ubuntu24.04", ("nvidia/cuda", "12.8.1-runtime-ubuntu24.04")),
        ("docker.io/nvidia/cuda:12.8.1-base-ubuntu24.04", ("nvidia/cuda", "12.8.1-base-ubuntu24.04")),
        ("docker.io/library/python:3.11-slim", ("python", "3.11-slim")),
        ("localhost:5000/team/img", ("localhost:5000/team/img", "")),
        ("nvidia/cuda@sha256:abc", ("nvidia/cuda", "")),
    ],
)
def test_image_references_are_split(ref, expected):
    assert split_image(ref) == expected


@pytest.mark.parametrize(
    "image",
    [
        "nvidia/cuda:12.8.1-runtime-ubuntu24.04",
        "nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04",
        "nvcr.io/nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04",
    ],
)
def test_cuda_runtime_images_are_accepted(image):
    assert cuda_base_problem(image, REPOS, ["runtime"]) is None


@pytest.mark.parametrize(
    "image, words",
    [
        ("python:3.11-slim", "not an NVIDIA CUDA image"),
        ("nvidia/cuda:12.8.1-devel-ubuntu24.04", "devel image"),
        ("nvidia/cuda:12.8.1-base-ubuntu24.04", "not a runtime image"),
        ("nvidia/cuda", "names no CUDA version"),
        (None, "no FROM line"),
    ],
)
def test_other_bases_are_explained(image, words):
    assert words in cuda_base_problem(image, REPOS, ["runtime"])


# --- which torch a Dockerfile installs -----------------------------------------------------------


def test_the_solution_gpu_dockerfile_installs_a_cuda_build():
    instructions = dockerfile_instructions((LAB / "Dockerfile.gpu").read_text())
    specs, indexes = torch_installs(instructions, LAB)
    assert specs == ["torch==2.13.0"] and indexes == []
    assert torch_build_problems(specs, indexes) == []
    assert cuda_base_problem(final_base_image(instructions), REPOS, ["runtime"]) is None


def test_the_solution_cpu_dockerfile_installs_the_cpu_build():
    specs, indexes = torch_installs(dockerfile_instructions((LAB / "Dockerfile").read_text()), LAB)
    assert specs == ["torch==2.13.0+cpu"] and indexes == ["/tmp/wheels"]
    assert "CPU build" in torch_build_problems(specs, indexes)[0]


def test_torch_is_found_in_a_copied_requirements_file(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "requirements.txt").write_text(
        "--extra-index-url https://download.pytorch.org/whl/cpu\nfastapi==0.165.0\ntorch==2.13.0  # the model\n"
    )
    text = "FROM x\nCOPY app/ /app/\nRUN pip install --no-cache-dir -r /app/requirements.txt\n"
    specs, indexes = torch_installs(dockerfile_instructions(text), tmp_path)
    assert specs == ["torch==2.13.0"] and indexes == ["https://download.pytorch.org/whl/cpu"]
    assert "CPU index" in torch_build_problems(specs, indexes)[0]


def test_torchvision_is_not_torch_and_no_torch_is_a_problem():
    text = "FROM x\nRUN python -m pip install torchvision==0.28.0 'torch-geometric'\n"
    specs, _ = torch_installs(dockerfile_instructions(text), LAB)
    assert specs == []
    assert "installs no torch" in torch_build_problems([], [])[0]


def test_requirement_lines_read_options_and_markers():
    specs, indexes = requirement_lines(
        "# comment\n--index-url=https://download.pytorch.org/whl/cu128\ntorch==2.13.0+cu128 ; sys_platform == 'linux'\n"
    )
    assert specs == ["torch==2.13.0+cu128"] and indexes == ["https://download.pytorch.org/whl/cu128"]


# --- the GPU Compose file (recorded `docker compose -f compose.gpu.yaml config --format json`) ---------

COMPOSE_CONFIG = {
    "name": "07-pytorch-service",
    "services": {
        "classifier": {
            "deploy": {
                "resources": {
                    "reservations": {"devices": [{"capabilities": ["gpu"], "driver": "nvidia", "count": -1}]}
                },
                "placement": {},
            },
            "image": "lab07-classifier:gpu",
            "build": {"context": "/work/main/solutions/07-pytorch-service", "dockerfile": "Dockerfile.gpu"},
            "ports": [{"mode": "ingress", "host_ip": "127.0.0.1", "target": 8000, "published": "8000"}],
        }
    },
}


def compose_without(change) -> dict:
    config = copy.deepcopy(COMPOSE_CONFIG)
    change(config["services"]["classifier"])
    return config


def test_the_reservation_is_found():
    assert compose_gpu_problems(COMPOSE_CONFIG, "nvidia", ["gpu"], "Dockerfile.gpu") == ([], ["classifier"])


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda s: s.pop("deploy"), "no service reserves a GPU"),
        (lambda s: s["deploy"]["resources"]["reservations"]["devices"][0].update(driver="amd"), "none with driver"),
        (
            lambda s: s["deploy"]["resources"]["reservations"]["devices"][0].update(capabilities=["compute"]),
            "none with",
        ),
        (lambda s: (s.pop("deploy"), s.update(gpus=[{"count": -1}])), "`gpus:` attribute"),
        (lambda s: s["build"].update(dockerfile="Dockerfile"), "builds Dockerfile, not Dockerfile.gpu"),
    ],
)
def test_a_missing_or_wrong_reservation_is_explained(change, words):
    problems, _ = compose_gpu_problems(compose_without(change), "nvidia", ["gpu"], "Dockerfile.gpu")
    assert any(words in p for p in problems), problems


def test_a_compose_file_without_services_is_a_problem():
    assert compose_gpu_problems({"services": {}}, "nvidia", ["gpu"], "Dockerfile.gpu")[0] == ["it defines no services"]


# --- the checks' params --------------------------------------------------------------------------


def test_the_checks_are_registered_and_reject_unknown_params():
    gpu_files = {"dockerfile": "Dockerfile.gpu", "compose_file": "compose.gpu.yaml"}
    for name, params in [
        ("CpuOnlyTorch", {}),
        ("HealthReportsDevice", {}),
        ("GpuVariantLint", gpu_files),
        ("GpuImageRuns", {"dockerfile": "Dockerfile.gpu"}),
    ]:
        registry.get(name)(CheckSpec(name, params=params))
    with pytest.raises(SpecError):
        registry.get("GpuVariantLint")(CheckSpec("GpuVariantLint", params={**gpu_files, "failure_threshold": "loud"}))
    with pytest.raises(SpecError):
        registry.get("CpuOnlyTorch")(CheckSpec("CpuOnlyTorch", params={"cuda": False}))
