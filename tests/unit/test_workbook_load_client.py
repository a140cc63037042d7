"""workbook.load_client: reading the load generator's report, and the client's container life cycle with a
fake engine that runs the mounted program as a local process (no docker)."""

from __future__ import annotations

import shlex
import signal
import socket
import subprocess
import sys
import time

import pytest

from workbook import load_client
from workbook.load_client import LOAD_GENERATOR, LoadClient, load_summary, parse_load
from workbook.shell import Result


def test_load_summary_counts_failures_versions_and_replicas():
    samples = [
        {"t": 0.0, "status": 200, "version": "1", "served_by": "a", "ms": 5},
        {"t": 0.1, "status": 200, "version": "2", "served_by": "b", "ms": 7},
        {"t": 0.2, "status": 502, "error": "HTTP 502", "ms": 3},
        {"t": 0.3, "status": 0, "error": "TimeoutError: timed out", "ms": 10000},
        {"t": 0.4, "status": 200, "version": "2", "served_by": "b", "ms": 6},
    ]
    s = load_summary(samples)
    assert (s["requests"], s["failed"]) == (5, 2)
    assert s["by_version"] == {"1": 1, "2": 2} and s["by_replica"] == {"a": 1, "b": 2}
    assert s["max_ms"] == 10000 and s["errors"] == ["HTTP 502", "TimeoutError: timed out"]


def test_parse_load_takes_the_json_line_and_explains_when_missing():
    assert parse_load('noise\n{"url": "u", "samples": [{"t": 1}]}\n') == [{"t": 1}]
    with pytest.raises(ValueError, match="no JSON"):
        parse_load("Traceback ...\n")


class FakeEngine:
    """Runs the client's `docker run` as a local process of the mounted program; answers the rest, records all."""

    def __init__(self):
        self.commands, self.process, self.output = [], None, ""

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        words = shlex.split(command)
        out = ""
        if words[:2] == ["docker", "run"]:
            host, inside, mode = words[words.index("-v") + 1].split(":")
            program = words.index("python")
            assert mode == "ro" and words[program + 1] == inside, "the container runs the program it mounts"
            self.process = subprocess.Popen(
                [sys.executable, host, *words[program + 2 :]], stdout=subprocess.PIPE, text=True
            )
        elif words[:2] == ["docker", "inspect"]:
            out = "running"
        elif words[:2] == ["docker", "stop"]:
            self.process.send_signal(signal.SIGTERM)
            self.output = self.process.communicate(timeout=20)[0]
        elif words[:2] == ["docker", "wait"]:
            self.output = self.process.communicate(timeout=20)[0]
        elif words[:2] == ["docker", "logs"]:
            out = self.output
        return Result(command, 0, out, 0.0)


@pytest.fixture()
def engine(monkeypatch):
    fake = FakeEngine()
    monkeypatch.setattr(load_client, "sh", fake)
    return fake


def refused_url() -> str:
    """A URL on a port nothing listens on: every request fails fast, with no server needed."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return f"http://127.0.0.1:{port}/health"


def test_the_client_mounts_the_shipped_program_and_reads_its_report_after_stop(engine):
    assert LOAD_GENERATOR.is_file()
    client = LoadClient("ch09_frontend", refused_url(), "--label owner=test", name="test-client", threads=2)
    client.start(max_s=30)
    time.sleep(1)  # as in the notebook: let it send for a while (and set up its SIGTERM handler) first
    samples = client.stop()
    run = next(c for c in engine.commands if c.startswith("docker run"))
    assert f"-v {LOAD_GENERATOR}:/load_generator.py:ro" in run and "--network ch09_frontend" in run
    assert samples and all(s["status"] == 0 for s in samples)
    assert engine.commands[-1] == "docker rm -f test-client"


def test_the_client_ends_by_itself_after_max_s(engine):
    client = LoadClient("ch09_frontend", refused_url(), "", threads=1, max_s=0.3)
    client.start()
    summary = load_summary(client.wait())
    assert summary["requests"] == summary["failed"] > 0
