"""BuildKit's build record, read from recorded `docker buildx build --progress=rawjson` output (no engine).

The recordings in data/ are real: a six-step Dockerfile rebuilt after a change to its code (steps up to
the install CACHED, the rest run), and the same build with code that exits 1. Stopping, timing out and
cancelling are tested against a stand-in `docker` program that replays a recording and then hangs, as a
slow step would; tests/engine/test_buildkit.py does the same on the real engine.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from pathlib import Path

import pytest

from grader import buildkit
from grader.buildkit import ProgressReader
from grader.checks.on_build import install_reruns

DATA = Path(__file__).parent / "data"


def read(name: str) -> ProgressReader:
    reader = ProgressReader()
    for line in (DATA / name).read_text().splitlines():
        reader.feed(line)
    return reader


def test_a_code_change_leaves_the_install_step_cached_and_runs_the_steps_after_the_code():
    steps = {s.instruction: s for s in read("buildkit-code-change.jsonl").steps.values() if s.instruction}
    assert list(steps) == [
        "RUN python code.py",
        "COPY code.py .",
        "RUN echo installing && cat req.txt",
        "COPY req.txt .",
        "WORKDIR /app",
        "FROM docker.io/library/python:3.11-slim@sha256:"
        "3b5a7c5bfc78ba3616e1b294d5275be428de1c85c214eeb33d843c22785ce4f4",
    ]
    assert steps["RUN echo installing && cat req.txt"].cached
    assert not steps["RUN echo installing && cat req.txt"].ran
    assert steps["RUN python code.py"].ran and not steps["RUN python code.py"].cached
    assert steps["RUN python code.py"].log == ["changed"]


def test_plain_lines_read_as_docker_build_prints_them():
    reader = ProgressReader()
    lines = [
        text for line in (DATA / "buildkit-code-change.jsonl").read_text().splitlines() for text in reader.feed(line)
    ]
    numbers = {s.instruction: s.number for s in reader.steps.values() if s.instruction}
    assert f"#{numbers['RUN echo installing && cat req.txt']} CACHED" in lines
    assert f"#{numbers['RUN python code.py']} changed" in lines
    assert any(line.startswith(f"#{numbers['RUN python code.py']} DONE ") for line in lines)


def test_a_failed_step_is_named_with_its_output_and_buildx_error():
    reader = read("buildkit-failed-step.jsonl")
    failed = next(s for s in reader.steps.values() if s.error)
    assert failed.instruction == "RUN python code.py"
    assert failed.log == ["boom"]
    assert reader.error() == 'process "/bin/sh -c python code.py" did not complete successfully: exit code: 1'


def test_the_stop_condition_of_the_cache_check_fires_only_when_the_install_step_runs():
    steps = {s.instruction: s for s in read("buildkit-code-change.jsonl").steps.values() if s.instruction}
    assert not install_reruns("echo installing")(steps["RUN echo installing && cat req.txt"])
    assert install_reruns("python code.py")(steps["RUN python code.py"])


def test_stage_and_instruction_are_read_from_a_multi_stage_step_name():
    step = buildkit.BuildStep(1, "[builder 3/4] RUN pip install --prefix=/install -r requirements.txt")
    assert step.stage == "builder"
    assert step.instruction == "RUN pip install --prefix=/install -r requirements.txt"
    assert buildkit.BuildStep(2, "[internal] load .dockerignore").instruction is None


@pytest.fixture
def replaying_docker(tmp_path, monkeypatch):
    """A `docker` program that prints a recording as buildx does, then hangs like a long step."""
    pids = tmp_path / "pids"

    def make(recording: str, hang_s: int = 60) -> Path:
        program = tmp_path / "bin" / "docker"
        program.parent.mkdir(exist_ok=True)
        program.write_text(f"#!/bin/sh\necho $$ >> {pids}\ncat {DATA / recording} >&2\nexec sleep {hang_s}\n")
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")
        return pids

    return make


def alive(pid_file: Path) -> bool:
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_build_past_its_time_limit_is_interrupted_and_says_so(tmp_path, replaying_docker):
    pids = replaying_docker("buildkit-code-change.jsonl")
    started = time.monotonic()
    result = buildkit.build(tmp_path, "Dockerfile", "t:1", timeout_s=1)
    assert time.monotonic() - started < 5
    assert not result.ok and result.error == "the build did not finish within 1s and was stopped"
    assert not alive(pids)


def test_stop_when_ends_the_build_at_the_step_it_waited_for(tmp_path, replaying_docker):
    pids = replaying_docker("buildkit-code-change.jsonl")
    result = buildkit.build(tmp_path, "Dockerfile", "t:1", timeout_s=30, stop_when=install_reruns("python code.py"))
    assert result.stopped and not result.ok and result.image_id is None
    assert not alive(pids)


def test_a_cancelled_build_stops(tmp_path, replaying_docker):
    pids = replaying_docker("buildkit-code-change.jsonl")
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    result = buildkit.build(tmp_path, "Dockerfile", "t:1", timeout_s=30, cancel=[cancel])
    assert result.error == "the build was cancelled"
    assert not alive(pids)


def test_a_failed_build_reports_buildx_error(tmp_path, replaying_docker):
    replaying_docker("buildkit-failed-step.jsonl", hang_s=0)
    program = tmp_path / "bin" / "docker"
    program.write_text(program.read_text().replace("exec sleep 0", "exit 1"))
    result = buildkit.build(tmp_path, "Dockerfile", "t:1", timeout_s=30)
    assert not result.ok
    assert result.error.startswith('process "/bin/sh -c python code.py" did not complete successfully')
    assert result.failed_step.instruction == "RUN python code.py"
    assert "boom" in result.log_tail()
