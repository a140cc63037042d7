"""`make engine` is idempotent and quick when everything is present, and `doctor` reports it all."""

from __future__ import annotations

import subprocess
import time

from grader.doctor import diagnose
from grader.spec import REPO_ROOT


def test_engine_script_is_quick_when_all_is_present(engine):
    started = time.monotonic()
    proc = subprocess.run(["bash", "docker/engine.sh"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Engine answers" in proc.stdout and "Compose:" in proc.stdout
    assert "Installing" not in proc.stdout
    assert time.monotonic() - started < 15


def test_doctor_finds_engine_compose_and_images(engine):
    findings = {f.name: f for f in diagnose()}
    assert findings["Engine"].ok and "Docker Engine" in findings["Engine"].detail
    assert findings["Compose"].ok
    assert findings["Image python:3.11-slim"].ok
    gpu = findings["GPU runtime"]
    assert gpu.required is False and (gpu.ok or "no NVIDIA runtime" in gpu.detail)
