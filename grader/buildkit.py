"""Building an image the way Docker builds today: BuildKit, driven through the buildx CLI.

BuildKit is the only default builder of current engines (Engine 23 and later, Docker Desktop). The Docker
SDK's build call speaks to the legacy builder only, so builds run `docker buildx build` and read its
machine-readable progress (`--progress=rawjson`: BuildKit's own solve status, one JSON object a line) into
one model of a build: its steps (BuildKit's vertices), cached or run, their timings and logs, the step that
failed and why. Nothing here depends on the legacy builder's text log or on step images.

A build past its time limit, a cancelled batch and Ctrl-C interrupt the buildx client: BuildKit then
cancels the solve, stopping the step that runs.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader.errors import EngineUnavailable

# "[stage-1 3/6] RUN pip install ..." or "[2/4] COPY app/ ." : the Dockerfile step BuildKit names a vertex after.
STEP_NAME = re.compile(r"^\[(?:(?P<stage>[^\]]+?) )?(?P<n>\d+)/(?P<of>\d+)\] (?P<instruction>.*)$", re.DOTALL)
ERROR_PREFIXES = ("ERROR: failed to build: failed to solve: ", "ERROR: failed to solve: ", "ERROR: ")
STOP_GRACE_S = 10  # how long an interrupted buildx client gets to cancel its build before it is killed
RECORD_CALL_S = 60  # reading one small document or blob of a build's record


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as BuildKit and the engine write it (nanoseconds, "Z"), to the microsecond."""
    if not value:
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", value)
    if not match:
        return None
    return datetime.fromisoformat(match[1] + (match[2] or "")[:7] + "+00:00")


@dataclass
class BuildStep:
    """One vertex of a BuildKit build: a Dockerfile step, or BuildKit's own work ("[internal] load ...")."""

    number: int  # in order of first appearance: the `#N` of `--progress=plain`
    name: str  # as BuildKit names it: "[2/5] RUN pip install -r requirements.txt"
    cached: bool = False
    started: datetime | None = None
    completed: datetime | None = None
    error: str = ""
    log: list[str] = field(default_factory=list)

    @property
    def instruction(self) -> str | None:
        """The Dockerfile instruction ("RUN pip install ..."), or None for BuildKit's own vertices."""
        match = STEP_NAME.match(self.name)
        return match["instruction"] if match else None

    @property
    def stage(self) -> str | None:
        match = STEP_NAME.match(self.name)
        return match["stage"] if match else None

    @property
    def ran(self) -> bool:
        """Whether BuildKit executed this step (started it and did not take it from its cache)."""
        return self.started is not None and not self.cached

    @property
    def seconds(self) -> float:
        if self.started and self.completed:
            return max(0.0, (self.completed - self.started).total_seconds())
        return 0.0


@dataclass
class BuildResult:
    ok: bool
    image_id: str | None
    seconds: float
    steps: list[BuildStep] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # as `--progress=plain` would print it
    error: str = ""
    stopped: bool = False  # stopped on purpose by `stop_when`: the answer was known before the end
    notes: list[str] = field(default_factory=list)  # what the grader changed about the build, for the evidence
    record: BuildRecord | None = None  # where BuildKit's history keeps one (Engine 24 and later)

    def log_tail(self, lines: int = 25) -> str:
        return "\n".join([*self.notes, *self.log[-lines:]])

    @property
    def dockerfile_steps(self) -> list[BuildStep]:
        return [step for step in self.steps if step.instruction is not None]

    @property
    def failed_step(self) -> BuildStep | None:
        return next((step for step in self.steps if step.error), None)

    def last_step_with(self, text: str) -> BuildStep | None:
        """The last Dockerfile step whose instruction contains `text` (the dependency install, say)."""
        return next((s for s in reversed(self.dockerfile_steps) if text in (s.instruction or "")), None)

    def summary(self) -> str:
        """One line per Dockerfile step: CACHED or its time, as evidence a learner can read."""

        def fate(step: BuildStep) -> str:
            return "CACHED" if step.cached else (f"ran {step.seconds:.1f}s" if step.ran else "not run")

        return "\n".join(f"{step.name}  {fate(step)}" for step in self.dockerfile_steps)


class ProgressReader:
    """Folds BuildKit's rawjson status objects into BuildSteps, and renders them as plain progress lines."""

    def __init__(self) -> None:
        self.steps: dict[str, BuildStep] = {}
        self.text: list[str] = []  # lines that were not JSON: buildx's own messages ("ERROR: ...")

    def feed(self, line: str) -> list[str]:
        """Read one line of buildx's stderr; returns the plain progress lines it adds."""
        try:
            status = json.loads(line)
        except json.JSONDecodeError:
            status = None
        if not isinstance(status, dict):
            text = line.rstrip()
            if text:
                self.text.append(text)
                return [text]
            return []
        out: list[str] = []
        for vertex in status.get("vertexes") or []:
            out += self._vertex(vertex)
        for entry in status.get("logs") or []:
            step = self.steps.get(entry.get("vertex", ""))
            data = base64.b64decode(entry.get("data") or "").decode(errors="replace")
            for text in data.splitlines():
                if step is not None and text.strip():
                    step.log.append(text)
                    out.append(f"#{step.number} {text}")
        for warning in status.get("warnings") or []:
            short = base64.b64decode(warning.get("short") or "").decode(errors="replace")
            if short:
                out.append(f"WARNING: {short}")
        return out

    def _vertex(self, vertex: dict) -> list[str]:
        digest = vertex.get("digest", "")
        step = self.steps.get(digest)
        out = []
        if step is None:
            step = self.steps[digest] = BuildStep(len(self.steps) + 1, vertex.get("name", ""))
            out.append(f"#{step.number} {step.name}")
        if vertex.get("cached") and not step.cached:
            step.cached = True
            out.append(f"#{step.number} CACHED")
        if vertex.get("started") and step.started is None:
            step.started = parse_time(vertex["started"])
        if vertex.get("completed"):
            first = step.completed is None
            step.completed = parse_time(vertex["completed"])
            if vertex.get("error") and not step.error:
                step.error = vertex["error"]
                out.append(f"#{step.number} ERROR: {step.error}")
            elif first and not step.cached and step.started:
                out.append(f"#{step.number} DONE {step.seconds:.1f}s")
        return out

    def error(self) -> str:
        """buildx's closing error line, without its "failed to solve" preamble."""
        for text in reversed(self.text):
            if text.startswith("ERROR:"):
                for prefix in ERROR_PREFIXES:
                    if text.startswith(prefix):
                        return text[len(prefix) :].strip()
        failed = next((s for s in self.steps.values() if s.error), None)
        return failed.error if failed else ""


# The containerd image store sometimes loses a race while unpacking a fresh image (moby/buildkit#6521):
# nothing is wrong with the Dockerfile, and the same build succeeds when run again.
TRANSIENT = ("failed to prepare extraction snapshot",)


def build(context: Path, dockerfile: str, tag: str, **options) -> BuildResult:
    """`docker buildx build` of `context` into the engine's image store as `tag` (see `build_once`).

    A build that failed only on a known transient fault of the engine is run once more, from its cache.
    """
    result = build_once(context, dockerfile, tag, **options)
    if not result.ok and any(fault in result.error for fault in TRANSIENT):
        again = build_once(context, dockerfile, tag, **options)
        again.notes.append(f"note: the first build failed on a transient engine fault, so it ran again: {result.error}")
        return again
    return result


def build_once(
    context: Path,
    dockerfile: str,
    tag: str,
    *,
    timeout_s: float,
    labels: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    target: str | None = None,
    network: str | None = None,
    cgroup_parent: str | None = None,
    guard: Callable[[], str] | None = None,
    on_line: Callable[[str], None] | None = None,
    cancel: Collection[threading.Event] = (),
    stop_when: Callable[[BuildStep], bool] | None = None,
) -> BuildResult:
    """`docker buildx build` of `context` into the engine's image store as `tag`; never raises for a bad build.

    `secrets` are build secrets ({id: value}) passed as files, for `RUN --mount=type=secret,id=...`; they
    are dummies a lab declares, never real ones. `stop_when(step)` returning True for a step whose status
    changed stops the build there (`stopped`, no image), as a caller that has seen what it needed.
    `cgroup_parent` holds the RUN steps to that cgroup's limits; `guard()`, asked about once a second,
    returns why the build must stop (a disk filling up), or "". Any of the `cancel` events set cancels it.
    """
    started = time.monotonic()
    result = BuildResult(ok=False, image_id=None, seconds=0.0)
    reader = ProgressReader()
    with tempfile.TemporaryDirectory(prefix="grader-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        cmd = ["docker", "buildx", "build", "--progress=rawjson", "--provenance=false", "--load"]
        cmd += ["--metadata-file", str(metadata), "--file", str(Path(context) / dockerfile), "--tag", tag]
        for key, value in (labels or {}).items():
            cmd += ["--label", f"{key}={value}"]
        for number, (name, value) in enumerate((secrets or {}).items()):
            secret_file = Path(tmp) / f"secret-{number}"
            secret_file.write_text(value)
            cmd += ["--secret", f"id={name},src={secret_file}"]
        if target:
            cmd += ["--target", target]
        if network:
            cmd += ["--network", network]
        if cgroup_parent:
            cmd += ["--cgroup-parent", cgroup_parent]
        cmd.append(str(context))
        try:
            # A session of its own: an interrupt meant for the build reaches buildx and nothing else.
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
            )
        except FileNotFoundError:
            raise EngineUnavailable("the docker CLI is not installed", hint="run 'make engine'") from None
        stop = threading.Event()

        def follow() -> None:
            for line in proc.stderr:
                before = {digest: (s.cached, s.started, s.completed) for digest, s in reader.steps.items()}
                for text in reader.feed(line):
                    result.log.append(text)
                    if on_line:
                        on_line(text)
                if stop_when and not stop.is_set():
                    changed = [
                        s for d, s in reader.steps.items() if before.get(d) != (s.cached, s.started, s.completed)
                    ]
                    if any(stop_when(s) for s in changed):
                        stop.set()

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        deadline = started + timeout_s
        guarded = ""
        next_guard = started
        try:
            while proc.poll() is None:
                if stop.is_set() or time.monotonic() >= deadline or any(event.is_set() for event in cancel):
                    break
                if guard is not None and time.monotonic() >= next_guard:
                    next_guard = time.monotonic() + 1.0
                    guarded = guard()
                    if guarded:
                        break
                follower.join(0.1)
        finally:  # also on Ctrl-C: the build must not outlive the grader
            if proc.poll() is None:
                interrupt(proc)
        proc.wait()
        follower.join(STOP_GRACE_S)
        result.steps = list(reader.steps.values())
        result.seconds = time.monotonic() - started
        if stop.is_set():
            result.stopped = True
        elif any(event.is_set() for event in cancel):
            result.error = "the build was cancelled"
        elif guarded:
            result.error = guarded
        elif proc.returncode != 0 and time.monotonic() >= deadline:
            result.error = f"the build did not finish within {timeout_s:.0f}s and was stopped"
        elif proc.returncode != 0:
            result.error = reader.error() or f"docker buildx build exited with code {proc.returncode}"
            if "is not a docker command" in result.error or "unknown flag: --progress" in " ".join(reader.text):
                raise EngineUnavailable("the docker CLI has no buildx plugin", hint="run 'make engine'")
        else:
            meta = json.loads(metadata.read_text()) if metadata.is_file() else {}
            result.image_id = meta.get("containerimage.config.digest") or meta.get("containerimage.digest")
            result.record = BuildRecord.from_metadata(meta)
        result.ok = result.image_id is not None and not result.error
        return result


def interrupt(proc: subprocess.Popen) -> None:
    """Interrupt a running buildx client as Ctrl-C would (it cancels its build), then kill it if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass(frozen=True)
class BuildRecord:
    """A finished build's record in BuildKit's history (`docker buildx history`), and what it exported.

    BuildKit keeps a record of each build (Engine 24 and later, Docker Desktop) through which the documents
    and blobs of the exported image can be read one at a time: a layer the build just made can be read
    alone instead of through a `docker save` of the whole image.
    """

    ref: str  # the record's id
    exported: str  # digest of the image manifest (or index) the build exported

    @classmethod
    def from_metadata(cls, meta: dict) -> BuildRecord | None:
        ref = str(meta.get("buildx.build.ref") or "").rpartition("/")[2]
        exported = (meta.get("containerimage.descriptor") or {}).get("digest")
        return cls(ref, str(exported)) if ref and exported else None

    def read(self, digest: str, timeout_s: float = RECORD_CALL_S) -> bytes | None:
        """The bytes of one document or blob (a layer as stored) the record names; None when they cannot be had.

        They are held in memory: callers ask only for small ones.
        """
        try:
            proc = subprocess.run(
                ["docker", "buildx", "history", "inspect", "attachment", self.ref, digest],
                capture_output=True,
                timeout=timeout_s,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout if proc.returncode == 0 else None


def buildx_version() -> str | None:
    """The buildx plugin's version ("0.29.1"), or None when the CLI has no buildx."""
    try:
        proc = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    words = proc.stdout.split()
    return words[1].lstrip("v") if proc.returncode == 0 and len(words) > 1 else None
