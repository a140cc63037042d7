"""Lab 07 graded for real: the GPU image is skipped, saying so, on an engine without the NVIDIA runtime, and
built and started with a GPU on one that claims it. (The seeded defects are in tests/engine/defects/lab07.py;
tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import dataclasses
import re
import shutil

import pytest
from seeded import assert_nothing_left, results_by_check

from grader.engine import Engine
from grader.gpu_runtime import gpu_runtime
from grader.session import grade
from grader.spec import CheckSpec, official_specs

pytestmark = pytest.mark.side_by_side  # see pyproject.toml: it runs beside another such test

SPEC = official_specs()["07"]
SOLUTION = SPEC.path


def test_without_a_gpu_runtime_the_gpu_image_is_skipped_saying_so(engine):
    if gpu_runtime(engine.info())[0]:
        pytest.skip("this engine has the NVIDIA runtime: GpuImageRuns runs for real here")
    spec = dataclasses.replace(
        SPEC,
        checks=(CheckSpec("ImageBuilds"), CheckSpec("GpuImageRuns", params={"dockerfile": "Dockerfile.gpu"})),
        learning_targets=(),
    )
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
    spec = dataclasses.replace(
        SPEC,
        checks=(CheckSpec("ImageBuilds"), CheckSpec("GpuImageRuns", params={"dockerfile": "Dockerfile.gpu"})),
        learning_targets=(),
    )
    claiming = EngineClaimingGpu(engine.client, engine.session)
    result = grade(copy, spec, engine=claiming)
    run = results_by_check(result)["GpuImageRuns"]
    assert run.status == "failed", (run.status, run.message)
    assert "could not start the GPU image with a GPU" in run.message
    assert re.search(r"CPU image \d+ MB, CUDA image \d+ MB", run.message), run.message
    assert "gpu_build_s" in result.timings
    assert_nothing_left(engine)
