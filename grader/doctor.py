"""`python -m grader doctor`: is this machine ready to build and grade labs, and if not, how to fix it."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from grader import base_images
from grader.checks.gpu import gpu_runtime
from grader.engine import connect
from grader.errors import EngineUnavailable
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


def buildkit_finding() -> Finding:
    """BuildKit (cache and secret mounts) needs a client that can drive it: buildx, or a 20.10-era client."""
    probe = _cli("buildx", "version")
    if probe and probe.returncode == 0:
        return Finding(
            "BuildKit", True, f"docker buildx {probe.stdout.split()[1] if probe.stdout.split()[1:] else ''}".strip()
        )
    debian = shutil.which("docker", path="/usr/bin")
    if debian:
        out = subprocess.run([debian, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.startswith("20."):
            return Finding("BuildKit", True, f"DOCKER_BUILDKIT=1 {debian} build (client {out.stdout.strip()})")
    return Finding(
        "BuildKit",
        False,
        "no buildx plugin and no client with the built-in BuildKit front end",
        fix="install the buildx plugin (apt-get install docker-buildx) or use /usr/bin/docker from docker.io",
        required=False,
    )


def diagnose() -> list[Finding]:
    findings: list[Finding] = []
    try:
        engine = connect()
    except EngineUnavailable as err:
        findings.append(Finding("Engine", False, err.message, fix="make engine"))
        return findings
    version = engine.version()
    info = engine.info()
    findings.append(
        Finding(
            "Engine",
            True,
            f"Docker Engine {version.get('Version')} (API {version.get('ApiVersion')}), "
            f"{info.get('Driver')} storage, cgroup v{info.get('CgroupVersion', '?')}",
        )
    )
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
    findings.append(buildkit_finding())
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
