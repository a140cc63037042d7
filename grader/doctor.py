"""`python -m grader doctor`: is this machine ready to build and grade labs, and if not, how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from grader import base_images
from grader.engine import connect
from grader.engine_facts import EngineReport, engine_report
from grader.errors import EngineUnavailable
from grader.gpu_runtime import gpu_runtime
from grader.spec import REPO_ROOT

MIN_FREE_GB = 10


@dataclass
class Finding:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a missing optional part (a GPU) is reported but is no problem


def _cli(*args: str) -> subprocess.CompletedProcess | None:
    if not shutil.which("docker"):
        return None
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None


def engine_findings(report: EngineReport, cgroup: str) -> list[Finding]:
    """The engine, its image store, the builder, and each thing this engine cannot build (a note with its fix)."""
    client = (
        f"; docker CLI {report.client_version}, API {report.client_api_version} with it"
        if report.client_version
        else "; no docker CLI on PATH"
    )
    store = "containerd image store" if report.image_store == "containerd" else "classic image store"
    findings = [
        Finding(
            "Engine",
            True,
            f"Docker Engine {report.server_version} (API {report.api_version}{client}), cgroup v{cgroup}",
        ),
        Finding("Image store", True, f"{store} ({report.storage_driver} storage)"),
        Finding("BuildKit", True, f"the builder, through docker buildx {report.buildx_version}")
        if report.buildx_version
        else Finding(
            "BuildKit",
            False,
            "the docker CLI has no buildx plugin: the grader and the workbook build only with BuildKit through it",
            fix="run 'make engine' (it links Debian's docker-buildx plugin)",
        ),
    ]
    findings += [
        Finding("Limitation", False, f"{lim.feature}: needs {lim.needs}", fix=lim.fix, required=False)
        for lim in report.limitations
    ]
    return findings


def diagnose() -> list[Finding]:
    findings: list[Finding] = []
    try:
        engine = connect()
    except EngineUnavailable as err:
        findings.append(Finding("Engine", False, err.message, fix="make engine"))
        return findings
    info = engine.info()
    findings += engine_findings(engine_report(engine), info.get("CgroupVersion", "?"))
    compose = _cli("compose", "version", "--short")
    findings.append(
        Finding(
            "Compose",
            bool(compose and compose.returncode == 0),
            f"Compose {compose.stdout.strip()}"
            if compose and compose.returncode == 0
            else "the 'docker compose' plugin is missing",
            fix="make engine",
        )
    )
    for ref in base_images.required_images():
        state = base_images.status(engine, ref)
        detail = {
            "present": "present",
            "stand-in": "present (a local stand-in built from Debian packages)",
            "missing": "missing",
        }[state]
        findings.append(Finding(f"Image {ref}", state != "missing", detail, fix="make images"))
    has_gpu, runtimes = gpu_runtime(info)
    findings.append(
        Finding(
            "GPU runtime",
            has_gpu,
            "NVIDIA runtime present"
            if has_gpu
            else f"no NVIDIA runtime (runtimes: {', '.join(runtimes)}); "
            "GPU labs will run on the CPU and GPU checks will be skipped",
            fix="install the NVIDIA Container Toolkit (needs an NVIDIA GPU and driver)",
            required=False,
        )
    )
    root = info.get("DockerRootDir") or "/"
    target = root if os.path.exists(root) else str(REPO_ROOT)
    free_gb = shutil.disk_usage(target).free / 1e9
    findings.append(
        Finding(
            "Disk",
            free_gb >= MIN_FREE_GB,
            f"{free_gb:.0f} GB free at {target}",
            fix=f"free space: 'python -m grader clean --cache' then 'docker system prune' (need {MIN_FREE_GB} GB)",
        )
    )
    return findings
