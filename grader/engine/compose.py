"""Compose stacks, through the Compose CLI (the SDK has no Compose): running it, reading a Compose file."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from grader.engine.client import Connection
from grader.errors import ComposeFileInvalid, EngineUnavailable


class Compose(Connection):
    """Compose projects: running the CLI on one, and finding its objects."""

    def compose(self, project: str, compose_file: Path, *args: str, timeout_s: float = 300, on_line=None) -> ComposeRun:
        """Run `docker compose` on the stack of `compose_file` as project `project`."""
        args = ["--project-name", project, "--file", str(compose_file), *args]
        return run_compose(args, Path(compose_file).parent, timeout_s, on_line)

    def project_containers(self, project: str, service: str | None = None) -> list:
        """The containers of a Compose project (or of one of its services), oldest first."""
        labels = [f"com.docker.compose.project={project}"]
        if service:
            labels.append(f"com.docker.compose.service={service}")
        found = self.client.containers.list(all=True, filters={"label": labels})
        return sorted(found, key=lambda c: c.attrs["Created"])

    def project_objects(self, project: str) -> dict[str, int]:
        """How many containers, networks and volumes of a Compose project exist."""
        flt = {"label": f"com.docker.compose.project={project}"}
        return {
            "containers": len(self.client.containers.list(all=True, filters=flt)),
            "networks": len(self.client.networks.list(filters=flt)),
            "volumes": len(self.client.volumes.list(filters=flt)),
        }


@dataclass
class ComposeRun:
    """What one `docker compose` command did."""

    code: int
    output: str  # stdout and stderr (Compose writes its progress to stderr)
    seconds: float
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.code == 0

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])


def run_compose(args: list[str], cwd: Path, timeout_s: float = 300, on_line=None) -> ComposeRun:
    """Run the Compose CLI (`docker compose ARGS`) in `cwd`; a timeout is exit code 124, never an exception.

    `on_line` receives each line of output as it comes (a build's progress, say).
    """
    started = time.monotonic()
    cmd = ["docker", "compose", "--progress", "plain", *args]
    try:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise EngineUnavailable("the docker CLI is not installed", hint="run 'make engine'") from None
    # Compose writes progress to stderr and results (`config`) to stdout: read both, stderr line by line.
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    with ThreadPoolExecutor(max_workers=1) as reader:  # stdout read beside stderr, so neither pipe fills up
        stdout = reader.submit(proc.stdout.read)
        try:
            errors = []
            for line in proc.stderr:
                errors.append(line)
                if on_line:
                    on_line(line.rstrip())
            out = stdout.result()
            code = proc.wait()
        finally:
            timer.cancel()
    output = out + "".join(errors)
    seconds = time.monotonic() - started
    if code < 0 and seconds >= timeout_s:
        return ComposeRun(124, f"{output}\n'docker compose {' '.join(args)}' ran past {timeout_s:.0f}s", seconds, out)
    return ComposeRun(code, output, seconds, out)


def compose_config(folder: Path, compose_file: str, project: str | None = None) -> dict:
    """The Compose file of `folder` as Compose normalises it (env files read, paths made absolute).

    Network and volume names in it carry the project name, so the grader asks with its own project's.
    """
    name = ["--project-name", project] if project else []
    run = run_compose([*name, "--file", compose_file, "config", "--format", "json"], folder, timeout_s=60)
    if not run.ok:
        if "unknown command" in run.output or "is not a docker command" in run.output:
            raise EngineUnavailable("the Compose plugin is missing", hint="run 'make engine' (it installs Compose v2)")
        raise ComposeFileInvalid(f"Compose cannot read {compose_file}:\n{run.tail(10)}")
    return json.loads(run.stdout)
