"""Whether an engine can hand a container a GPU: the NVIDIA runtime among those `docker info` lists."""

from __future__ import annotations

GPU_RUNTIME = "nvidia"  # the runtime the NVIDIA Container Toolkit adds to the engine


def gpu_runtime(info: dict) -> tuple[bool, list[str]]:
    """Whether `docker info` lists the NVIDIA runtime, and the runtimes it lists."""
    runtimes = sorted(info.get("Runtimes") or {})
    return GPU_RUNTIME in runtimes, runtimes
