"""Limits on what a learner's build may use: memory and processes of its RUN steps, and the disk it fills.

BuildKit runs RUN steps with no limits of their own: a fork bomb or a step that allocates without end takes
the whole machine, and a step that writes without end fills the engine's disk. `docker buildx build
--cgroup-parent` puts every RUN step of one build under a parent cgroup; the grader makes that parent with a
memory and a process limit, so the kernel holds the steps to them (an OOM kill shows as exit code 137, a
fork past the limit fails with "Resource temporarily unavailable"). The parent's name is part of every RUN
step's cache key (BuildKit records it in the step's definition), so it is one fixed name, which builds graded
at the same time share: a name per build would make every rebuild miss the cache. That needs an engine on this host, the
cgroupfs driver and root; elsewhere (Docker Desktop, a rootless engine) the build runs as it would for the
learner, and the grade's evidence says the limits did not apply and why.

The disk a build may fill is watched from outside: the engine's data root may lose at most `disk_cap_mb`
while the build runs, or the build is stopped.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_NAME = "grader-builds"  # fixed: see above
# Roomy for pip installing a lab's dependencies (torch's wheel included), far below what a runaway step
# takes. An instructor can change each with an environment variable of the grader.
DEFAULTS = {"GRADER_BUILD_MEMORY_MB": 3072, "GRADER_BUILD_PIDS": 1024, "GRADER_BUILD_DISK_MB": 8000}


def setting(name: str) -> int:
    """One of DEFAULTS, or the environment's value of it (read at each build: tests and workers change it)."""
    try:
        return int(os.environ.get(name, DEFAULTS[name]))
    except ValueError:
        return DEFAULTS[name]


@dataclass
class StepLimits:
    """The cgroup parent to build under (None when limits cannot apply here) and what the evidence says."""

    cgroup_parent: str | None
    note: str = ""


def unavailable_because(engine_info: dict, cgroup_root: Path = CGROUP_ROOT) -> str:
    """Why build steps cannot be limited on this engine, or "" when they can."""
    if os.name != "posix" or os.geteuid() != 0:
        return "the grader is not running as root, so it cannot make a cgroup for the build"
    root_dir = engine_info.get("DockerRootDir") or ""
    if not root_dir or not os.path.isdir(root_dir):
        return "the engine runs on another machine or in a VM (Docker Desktop)"
    if engine_info.get("CgroupDriver") != "cgroupfs":
        return f"the engine uses the {engine_info.get('CgroupDriver') or 'unknown'} cgroup driver, not cgroupfs"
    if not cgroup_root.is_dir():
        return f"{cgroup_root} is not mounted"
    return ""


def _controller_dirs(name: str, version: str, cgroup_root: Path) -> list[Path]:
    if version == "2":
        return [cgroup_root / name]
    return [cgroup_root / "memory" / name, cgroup_root / "pids" / name]


def _write_limits(dirs: list[Path], version: str, memory_mb: int, pids: int) -> None:
    memory = str(memory_mb * 1024 * 1024)
    if version == "2":
        (dirs[0] / "memory.max").write_text(memory)
        (dirs[0] / "pids.max").write_text(str(pids))
        swap = dirs[0] / "memory.swap.max"
        if swap.exists():
            swap.write_text("0")
        return
    memory_dir, pids_dir = dirs
    # cgroup v1 refuses (EINVAL) a memory limit above the memory+swap limit, and the cgroup keeps the
    # limits of the build before: raise memory+swap first, lower it last.
    limit, swap = memory_dir / "memory.limit_in_bytes", memory_dir / "memory.memsw.limit_in_bytes"
    order = [limit, swap] if swap.exists() else [limit]
    if swap.exists() and int(swap.read_text() or 0) < int(memory):
        order.reverse()
    for path in order:
        path.write_text(memory)
    (pids_dir / "pids.max").write_text(str(pids))


@contextmanager
def step_cgroup(
    engine_info: dict,
    memory_mb: int | None = None,
    pids: int | None = None,
    cgroup_root: Path = CGROUP_ROOT,
) -> Iterator[StepLimits]:
    """The grader's parent cgroup for a build's RUN steps, with today's limits written into it.

    It is kept afterwards: another build may be running in it, and an empty cgroup costs nothing."""
    memory_mb = memory_mb or setting("GRADER_BUILD_MEMORY_MB")
    pids = pids or setting("GRADER_BUILD_PIDS")
    why = unavailable_because(engine_info, cgroup_root)
    if why:
        yield StepLimits(None, f"note: build steps ran without the grader's memory and process limits: {why}")
        return
    version = str(engine_info.get("CgroupVersion") or "1")
    dirs = _controller_dirs(CGROUP_NAME, version, cgroup_root)
    try:
        for folder in dirs:
            folder.mkdir(exist_ok=True)
        _write_limits(dirs, version, memory_mb, pids)
    except OSError as err:
        yield StepLimits(None, f"note: build steps ran without the grader's memory and process limits: {err}")
        return
    yield StepLimits(CGROUP_NAME, f"build steps limited to {memory_mb} MB of memory and {pids} processes")


class DiskWatch:
    """Stops a build that fills the engine's disk: `exceeded()` says so once more than `cap_mb` is gone."""

    def __init__(self, engine_info: dict, cap_mb: int | None = None):
        root = engine_info.get("DockerRootDir") or ""
        self.root = root if root and os.path.isdir(root) else None
        self.cap_mb = cap_mb or setting("GRADER_BUILD_DISK_MB")
        self.start_free = shutil.disk_usage(self.root).free if self.root else 0

    def exceeded(self) -> str:
        if self.root is None:
            return ""
        used_mb = (self.start_free - shutil.disk_usage(self.root).free) / 1e6
        if used_mb <= self.cap_mb:
            return ""
        return (
            f"the build wrote more than {self.cap_mb} MB to the engine's disk and was stopped "
            f"({used_mb:.0f} MB while it ran)"
        )
