"""Chapter 7 (Compose stacks): run a project under its own name, take it down for sure, read its timeline.

What Compose creates carries Compose's own labels (`com.docker.compose.project=NAME`), not the workbook's
LABEL_FLAG, so every stack the chapter runs gets a project name of its own and is removed by that name:

    lab = Project("workbook-ch07-lab", folder, ("compose.yaml", "ports.override.yaml"))
    lab("up -d --build --wait")          # docker compose -p workbook-ch07-lab -f ... up -d --build --wait
    lab.url("proxy", 80)                 # http://127.0.0.1:PORT
    lab.down()                           # down -v --rmi local --remove-orphans, and the images it built

When each service started and became healthy comes from the engine's event stream, recorded while the
stack starts (the engine keeps only a short backlog of events, and a healthcheck's own log only its last
five probes, so neither can be read reliably afterwards):

    with EventLog(lab.name) as events:
        lab("up -d --wait")
        events.wait_for("proxy", HEALTHY)
    events.first_times()                 # {"cache": {"start": t, "healthy": t}, "api": {...}, ...}
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from grader.starters import solution_text
from workbook.first_dockerfile import parse_port
from workbook.shell import TAIL_LINES, Result, sh

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
HEALTHY = "health_status: healthy"
STARTED = "start"


def compose_command(project: str, args: str, files: Sequence[str] = ()) -> str:
    """`docker compose -p PROJECT -f FILE... ARGS`: always with the project's own name."""
    chosen = "".join(f" -f {f}" for f in files)
    return f"docker compose -p {project}{chosen} {args}"


def leftover_projects(prefix: str) -> list[str]:
    """The Compose projects whose name starts with `prefix` that still have containers, networks or volumes."""
    found: set[str] = set()
    fmt = f"--format '{{{{.Label \"{PROJECT_LABEL}\"}}}}'"
    for listing in ("docker ps -a", "docker network ls", "docker volume ls"):
        out = sh(f"{listing} --filter label={PROJECT_LABEL} {fmt}", show=False, expect=None).out
        found.update(name for name in out.split() if name.startswith(prefix))
    return sorted(found)


def teardown(project: str, folder: Path | str | None = None, files: Sequence[str] = (), show: bool = False) -> None:
    """Remove everything of one project: containers, networks, volumes, and the images Compose built for it.

    Without its Compose files (a re-run after an interrupted one), `down` still finds the containers,
    networks and volumes by the project label; the images it built are named PROJECT-SERVICE, so they
    are removed by that name (tags only, with --no-prune: the build cache stays for the next run).
    """
    if files and folder is not None:
        sh(
            compose_command(project, "down -v --rmi local --remove-orphans --timeout 5", files),
            cwd=folder,
            show=show,
            expect=None,
        )
    else:
        with tempfile.TemporaryDirectory() as empty:  # no compose.yaml here for Compose to pick up by mistake
            sh(compose_command(project, "down -v --remove-orphans --timeout 5"), cwd=empty, show=show, expect=None)
    sh(
        f"docker images --filter 'reference={project}-*' --format '{{{{.Repository}}}}:{{{{.Tag}}}}' "
        "| xargs -r docker rmi --no-prune",
        show=show,
        expect=None,
    )


@dataclass
class Project:
    """One Compose project of the chapter: its name, its folder, and the Compose files it runs with."""

    name: str
    folder: Path
    files: tuple[str, ...] = ("compose.yaml",)

    def command(self, args: str, files: Sequence[str] | None = None) -> str:
        return compose_command(self.name, args, self.files if files is None else files)

    def __call__(
        self,
        args: str,
        *,
        files: Sequence[str] | None = None,
        expect: int | None = 0,
        show: bool = True,
        tail: int = TAIL_LINES,
        env: dict | None = None,
    ) -> Result:
        """Run `docker compose ARGS` for this project in its folder (through sh(): shown, and checked)."""
        return sh(self.command(args, files), cwd=self.folder, expect=expect, show=show, tail=tail, env=env)

    def down(self, show: bool = False) -> None:
        teardown(self.name, self.folder, self.files, show=show)

    def containers(self, service: str | None = None, running_only: bool = True) -> list[str]:
        """The ids of the project's containers (of one service), as `docker ps` lists them."""
        flt = f"--filter label={PROJECT_LABEL}={self.name}"
        if service:
            flt += f" --filter label={SERVICE_LABEL}={service}"
        out = sh(f"docker ps {'' if running_only else '-a '}-q {flt}", show=False).out
        return sorted(out.split())

    def inspect(self, service: str | None = None) -> list[dict]:
        """`docker inspect` of the project's running containers (of one service)."""
        ids = self.containers(service)
        return json.loads(sh(f"docker inspect {' '.join(ids)}", show=False).out) if ids else []

    def network_id(self, network: str) -> str:
        """The engine's id of one of the project's networks (Compose names it PROJECT_NETWORK)."""
        return sh(f"docker network inspect -f '{{{{.Id}}}}' {self.name}_{network}", show=False).out.strip()

    def url(self, service: str, port: int, files: Sequence[str] | None = None) -> str:
        """http://127.0.0.1:PORT where the service's container port is published."""
        return "http://" + parse_port(self(f"port {service} {port}", files=files, show=False).out)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc) -> None:
        self.down()


# --- the reference solution, without the starter's markers -------------------------------------------


def copy_solution(source: Path, target: Path) -> Path:
    """Copy a lab's reference solution to `target`, its marked files as the solution reads (solution_text)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), dirs_exist_ok=True)
    for path in target.rglob("*"):
        if path.is_file() and path.suffix in {".yaml", ".yml", ".conf", ".py", ""}:
            try:
                text = path.read_text()
            except UnicodeDecodeError:
                continue
            if "# >>> " in text:
                path.write_text(solution_text(text))
    return target


# --- the engine's events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One container event of the engine, as `docker events --format '{{json .}}'` prints it."""

    time: float  # Unix seconds (the engine's clock: the same as time.time() on a local engine)
    action: str  # "create", "start", "health_status: healthy", "exec_start: redis-cli ping", "die", ...
    service: str  # the Compose service of the container ("" for a container Compose did not create)
    container: str  # the container's name


def parse_event(line: str) -> Event | None:
    """An Event from one line of `docker events --format '{{json .}}'`; None for a line that is not one."""
    try:
        raw = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(raw, dict) or "timeNano" not in raw:
        return None
    attributes = (raw.get("Actor") or {}).get("Attributes") or {}
    return Event(
        raw["timeNano"] / 1e9,
        raw.get("Action") or raw.get("status", ""),
        attributes.get(SERVICE_LABEL, ""),
        attributes.get("name", ""),
    )


def first_times(events: Sequence[Event], actions: dict[str, str] | None = None) -> dict[str, dict[str, float]]:
    """When each service first did each thing: {service: {"start": t, "healthy": t}} (Unix seconds).

    With several containers per service (--scale), the first container's event counts.
    """
    actions = actions or {"start": STARTED, "healthy": HEALTHY}
    times: dict[str, dict[str, float]] = {}
    for event in sorted(events, key=lambda e: e.time):
        for key, action in actions.items():
            if event.action == action and event.service:
                times.setdefault(event.service, {}).setdefault(key, event.time)
    return times


class EventLog:
    """The container events of one Compose project, recorded by `docker events` in the background.

    Recording starts with `--since` the moment the block is entered, so nothing that happens after that is
    missed even if the stream takes a moment to connect.
    """

    def __init__(self, project: str):
        self.project = project
        self.events: list[Event] = []
        self.since = 0.0
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def __enter__(self) -> EventLog:
        self.since = time.time()
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--since",
                f"{self.since:.6f}",
                "--filter",
                "type=container",
                "--filter",
                f"label={PROJECT_LABEL}={self.project}",
                "--format",
                "{{json .}}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            event = parse_event(line)
            if event:
                with self._lock:
                    self.events.append(event)

    def wait_for(self, service: str, action: str, timeout: float = 60) -> Event:
        """Wait until `service` has done `action` (e.g. HEALTHY) since the block began; return that event."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                found = [e for e in self.events if e.service == service and e.action == action]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no {action!r} event from service {service!r} of project {self.project} within {timeout:.0f} s. "
                    f"Hint: read `docker compose -p {self.project} ps` and `logs {service}`: did it start, "
                    "and does it have a healthcheck?"
                )
            time.sleep(0.05)

    def first_times(self) -> dict[str, dict[str, float]]:
        with self._lock:
            return first_times(list(self.events))

    def __exit__(self, *exc) -> None:
        if self._proc is not None:
            self._proc.terminate()  # our own child: nothing else is stopped
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)


# --- traffic through the proxy ---------------------------------------------------------------------------


def served_by(url: str, requests_n: int, header: str = "X-Served-By", timeout: float = 5) -> Counter:
    """Send `requests_n` GETs to `url` and count which replica answered each (the `header` of the answer)."""
    counts: Counter = Counter()
    with requests.Session() as session:
        for _ in range(requests_n):
            answer = session.get(url, timeout=timeout)
            answer.raise_for_status()
            counts[answer.headers.get(header, "(no header)")] += 1
    return counts
