"""The build cgroup's limits: written in an order the kernel accepts, whatever the build before left."""

import os
import uuid
from pathlib import Path

import pytest

from grader import build_limits

V1 = Path("/sys/fs/cgroup/memory")


def test_unavailable_without_cgroupfs(tmp_path):
    info = {"DockerRootDir": str(tmp_path), "CgroupDriver": "systemd"}
    why = build_limits.unavailable_because(info, tmp_path)
    if os.geteuid() != 0:
        assert "root" in why
    else:
        assert "systemd" in why


def test_limits_written_to_a_v2_cgroup(tmp_path):
    folder = tmp_path / "grader-builds"
    folder.mkdir()
    (folder / "memory.swap.max").write_text("max")
    build_limits._write_limits([folder], "2", 512, 100)
    assert (folder / "memory.max").read_text() == str(512 * 1024 * 1024)
    assert (folder / "pids.max").read_text() == "100"
    assert (folder / "memory.swap.max").read_text() == "0"


@pytest.mark.skipif(
    os.geteuid() != 0 or not (V1 / "memory.memsw.limit_in_bytes").exists(),
    reason="needs root and cgroup v1 with swap accounting, where the kernel checks memory <= memory+swap",
)
def test_v1_limits_can_go_up_and_down_on_the_real_kernel():
    """A lower limit left by one build (the memory hog test uses 512 MB) must not stop the next raising it."""
    name = f"grader-test-{uuid.uuid4().hex[:8]}"
    memory_dir, pids_dir = V1 / name, Path("/sys/fs/cgroup/pids") / name
    memory_dir.mkdir()
    pids_dir.mkdir()
    try:
        for mb in (512, 3072, 256, 1024):
            build_limits._write_limits([memory_dir, pids_dir], "1", mb, 200)
            for file in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes"):
                assert int((memory_dir / file).read_text()) == mb * 1024 * 1024, (file, mb)
        assert (pids_dir / "pids.max").read_text().strip() == "200"
    finally:
        memory_dir.rmdir()
        pids_dir.rmdir()
