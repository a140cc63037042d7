"""Grading is tidy: an interrupted grade removes everything it started (a build stopped at its timeout
or by Ctrl-C: tests/engine/test_buildkit.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from seeded import as_from_a_terminal

from grader.engine import LABEL, Engine
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]


def test_interrupt_removes_what_was_started(engine, tmp_path):
    """Ctrl-C while the service is running: the grader exits 130 and leaves nothing behind."""
    submission = tmp_path / "slow"
    submission.mkdir()
    # A service that never answers keeps the grader waiting in readiness polling for its whole budget.
    (submission / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["sleep", "300"]\n')

    def running_sessions() -> set[str]:
        """Sessions whose service container is running (the short-lived probe containers do not count)."""
        running = engine.client.containers.list(filters={"label": LABEL, "status": "running", "name": "-service"})
        return {c.labels[LABEL] for c in running}

    others = running_sessions()  # graders of other runs may share the engine: watch only the new one
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "check", str(submission), "--lab", "01", "--quiet"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        deadline = time.monotonic() + 120
        while not (new := running_sessions() - others):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the grader never started the service"
            time.sleep(0.2)
        (session,) = new
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "Interrupted" in out
    assert Engine(engine.client, session=session).leftovers() == {
        "containers": 0,
        "networks": 0,
        "volumes": 0,
        "images": 0,
    }
