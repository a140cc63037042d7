"""Chapter 9's load client: the load generator (workbook/programs/load_generator.py) run in a container on
a stack's network, and what its report says: requests, failures, who answered.

    client = LoadClient("ch09_frontend", "http://proxy/health", label_flag)
    client.start(); ...; samples = client.stop()   # one dict per request: t, status, version, served_by, ms, error
    load_summary(samples)["failed"]
"""

from __future__ import annotations

import json
import shlex
import time

from workbook.programs import FOLDER
from workbook.shell import sh

LOAD_GENERATOR = FOLDER / "load_generator.py"  # mounted read-only into the client container


class ClientDidNotStart(RuntimeError):
    """Raised when the client container stays "created" (never runs), so no request would be sent."""


def parse_load(output: str) -> list[dict]:
    """The samples from the load generator's output (its last line that is a JSON document)."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)["samples"]
    raise ValueError("the load generator printed no JSON result:\n" + output[-2000:])


def load_summary(samples: list[dict]) -> dict:
    """Requests, failures (anything but a 200), and the answers counted per version and per replica."""
    by_version: dict[str, int] = {}
    by_replica: dict[str, int] = {}
    for s in samples:
        if s["status"] == 200:
            by_version[str(s.get("version"))] = by_version.get(str(s.get("version")), 0) + 1
            by_replica[str(s.get("served_by"))] = by_replica.get(str(s.get("served_by")), 0) + 1
    failed = [s for s in samples if s["status"] != 200]
    ms = sorted(s["ms"] for s in samples) or [0.0]
    return {
        "requests": len(samples),
        "failed": len(failed),
        "by_version": by_version,
        "by_replica": by_replica,
        "max_ms": ms[-1],
        "median_ms": ms[len(ms) // 2],
        "errors": sorted({s.get("error", "") for s in failed}),
    }


class LoadClient:
    """The load generator in a container on `network`: `threads` loops sending requests to `url` until `stop()`."""

    def __init__(
        self,
        network: str,
        url: str,
        label_flag: str,
        name: str = "ch09-client",
        threads: int = 4,
        pause_s: float = 0.05,
        max_s: float = 300,
        image: str = "python:3.11-slim",
    ):
        self.network, self.url, self.label_flag = network, url, label_flag
        self.name, self.threads, self.pause_s, self.max_s, self.image = name, threads, pause_s, max_s, image

    def start(self, max_s: float | None = None, show: bool = False) -> None:
        """Start sending; the client stops by itself after `max_s` seconds (default: the instance's)."""
        if max_s is not None:
            self.max_s = max_s
        sh(f"docker rm -f {self.name}", show=False, expect=None)
        sh(
            f"docker run -d --name {self.name} {self.label_flag} --network {self.network} "
            f"-v {shlex.quote(str(LOAD_GENERATOR))}:/load_generator.py:ro {self.image} "
            f"python /load_generator.py {self.url} {self.max_s} {self.pause_s} {self.threads}",
            show=show,
        )
        # The program prints nothing before it ends: wait until its container has started (or already ended).
        deadline = time.perf_counter() + 30
        while sh(f"docker inspect -f '{{{{.State.Status}}}}' {self.name}", show=False).out.strip() == "created":
            if time.perf_counter() > deadline:
                raise ClientDidNotStart(f"the client container {self.name} did not start")
            time.sleep(0.1)

    def stop(self) -> list[dict]:
        """SIGTERM the client (it finishes the request in flight), then read and parse its report."""
        sh(f"docker stop -t 20 {self.name}", show=False)
        return self._report()

    def wait(self) -> list[dict]:
        """Wait until the client ends by itself (after `max_s`), then read and parse its report."""
        sh(f"docker wait {self.name}", show=False, timeout=self.max_s + 60)
        return self._report()

    def _report(self) -> list[dict]:
        out = sh(f"docker logs {self.name}", show=False).out
        sh(f"docker rm -f {self.name}", show=False, expect=None)
        return parse_load(out)
