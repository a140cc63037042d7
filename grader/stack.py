"""A learner's Compose stack, as the grader runs it: built, started, probed, restarted, taken down.

The grader never runs the learner's Compose file as it is: it runs `compose_file.for_grading`'s rewrite
of it (labels, limits, loopback ports), written next to a copy of the submission. Every command goes
through the engine module (`Engine.compose`).
"""

from __future__ import annotations

import json
from pathlib import Path

from grader.compose_file import GradingConfig
from grader.engine import ComposeRun, Engine
from grader.spec import ComposeSpec

GRADING_FILE = ".grader-compose.json"


class Stack:
    """One Compose project of a grading session."""

    def __init__(self, engine: Engine, folder: Path, spec: ComposeSpec, grading: GradingConfig):
        self.engine = engine
        self.spec = spec
        self.grading = grading
        self.project = self.project_name(engine)
        self.file = folder / GRADING_FILE
        self.file.write_text(json.dumps(grading.config, indent=2))

    @staticmethod
    def project_name(engine: Engine) -> str:
        return engine.name("stack")

    def compose(self, *args: str, timeout_s: float | None = None, on_line=None) -> ComposeRun:
        return self.engine.compose(
            self.project, self.file, *args, timeout_s=timeout_s or self.spec.up_timeout_s, on_line=on_line
        )

    def build(self, timeout_s: float, on_line=None) -> ComposeRun:
        # Compose builds through buildx (BuildKit) where the plugin is installed, as `make engine` makes sure.
        return self.compose("build", timeout_s=timeout_s, on_line=on_line)

    def up(self, *extra: str, on_line=None) -> ComposeRun:
        """Start (or update) the stack and wait until every service is running, and healthy where it has a check."""
        return self.compose("up", "--detach", "--wait", "--no-build", *extra, on_line=on_line)

    def down(self, volumes: bool = False) -> ComposeRun:
        return self.compose("down", "--timeout", "5", *(["--volumes"] if volumes else []), timeout_s=120)

    def containers(self, service: str | None = None) -> list:
        return self.engine.project_containers(self.project, service)

    def container(self, service: str):
        found = [c for c in self.containers(service) if c.status == "running"]
        if not found:
            raise LookupError(f"service {service!r} has no running container")
        return found[0]

    def entry_url(self) -> str | None:
        """http://127.0.0.1:PORT of the entry service's published port, or None when it publishes none."""
        try:
            port = self.engine.host_port(self.container(self.spec.entry_service), self.spec.entry_port)
        except LookupError:
            return None
        return f"http://127.0.0.1:{port}" if port else None

    def exec(self, service: str, cmd: list[str]) -> tuple[int, str]:
        return self.engine.exec(self.container(service), cmd)

    def status(self) -> str:
        """`docker compose ps` as a table: what ran, what exited, what is unhealthy."""
        return self.compose("ps", "--all", timeout_s=30).output.strip()

    def logs(self, service: str | None = None, lines: int = 20) -> str:
        args = ["logs", "--no-color", "--tail", str(lines), *([service] if service else [])]
        return self.compose(*args, timeout_s=30).output.strip()

    def image_ids(self) -> list[str]:
        """The images built for the stack's services (those with a `build:` section)."""
        ids = []
        for service in self.grading.built:
            for c in self.containers(service)[:1]:
                ids.append(self.engine.view(c).image_id)
        return ids
