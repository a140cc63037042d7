"""Chapter 3 (layer caching): build with BuildKit, and read from its own output which steps hit the cache.

`docker buildx build --progress=plain` prints one numbered block per *vertex* (a unit of work in the
build graph). A Dockerfile step's vertex is named `[n/m] INSTRUCTION` (`[stage n/m]` when the
Dockerfile names its stages: `[build 2/4]`, `[stage-1 3/5]`), and ends with `#N CACHED` when BuildKit
reused the step's result, or `#N DONE 3.5s` when it ran it:

    #8 [4/5] RUN pip install --no-cache-dir -r requirements.txt
    #8 0.480 Collecting flask==3.1.3
    #8 DONE 3.5s

`build()` runs a build through `sh()` (so the learner sees the command and its output) and parses that
output into `Step`s:

    b = build(folder, "workbook/ch03-good")
    b.step("pip install").cached        # True when the install step was reused
    b.context_bytes                      # the build context BuildKit transferred

(Old tutorials show the legacy builder's `Step 4/6 : ...` and ` ---> Using cache` instead: that builder
is deprecated since Engine 23, and this module does not read its output.)
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from workbook.engine import LABEL_FLAG, buildkit_build
from workbook.layers import image_bytes as _image_bytes
from workbook.layers import image_steps
from workbook.shell import CommandFailed, sh

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
STEP_HEADER = re.compile(r"^#(\d+) \[(?:([^\]]*?) )?(\d+)/(\d+)\] (.*)$")
INTERNAL = re.compile(r"^#(\d+) \[internal\] (.*)$")
DONE = re.compile(r"^#(\d+) DONE ([\d.]+)s$")
ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
CONTEXT = re.compile(r"^#(\d+) transferring context: ([\d.]+\s*[kKMGT]?i?B)")
SIZE = re.compile(r"^([\d.]+)\s*([kKMGT]?)(i?)B$")
UNITS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
SNAPSHOT_RACE = "failed to prepare extraction snapshot"


@dataclass
class Step:
    """One Dockerfile instruction as BuildKit reported it."""

    number: int  # 1-based position in its stage (BuildKit's `[n/m]`)
    instruction: str  # e.g. "RUN pip install -r requirements.txt"
    cached: bool  # BuildKit reused the step's cached result instead of running it (`#N CACHED`)
    seconds: float | None = None  # how long it ran (`#N DONE 3.5s`); None when cached or unfinished
    stage: str = ""  # the stage's name in a multi-stage build ("build", "stage-1"), else "" or "stage-0"
    vertex: int = 0  # BuildKit's number for it in this build's output (`#8`)
    error: str = ""  # what `#N ERROR:` said when the step failed
    of: int = 0  # the m of `[n/m]`: how many steps BuildKit counted


def strip_ansi(text: str) -> str:
    """The text without terminal colour codes."""
    return ANSI.sub("", text)


def parse_size(text: str) -> int:
    """Bytes in a size the Docker tools print: '52.43MB' -> 52430000, '416B' -> 416, '1.5KiB' -> 1536."""
    match = SIZE.match(text.replace(" ", ""))
    if not match:
        raise ValueError(f"not a size: {text!r}")
    number, prefix, binary = match.groups()
    factor = UNITS[prefix] if not binary else 1024 ** (" KMGT".index(prefix.upper()))
    return round(float(number) * factor)


def _lines(log: str) -> list[str]:
    # Progress lines overwrite themselves with \r; keep what the terminal would finally show.
    return [line.rsplit("\r", 1)[-1].rstrip() for line in strip_ansi(log).splitlines()]


def buildkit_steps(log: str) -> list[Step]:
    """The Dockerfile steps of a `--progress=plain` log, in Dockerfile order (vertices finish out of order).

    Only a vertex's own status lines count: `#8 CACHED`, `#8 DONE 3.5s`, `#8 ERROR: ...`. What a step
    prints (`#8 0.480 Using cached flask...`, pip's words) never makes it look cached.
    """
    by_vertex: dict[int, Step] = {}
    stages: list[str] = []
    for line in _lines(log):
        header = STEP_HEADER.match(line)
        if header:
            vertex, stage, number, of, instruction = header.groups()
            stage = stage or ""
            if stage not in stages:
                stages.append(stage)
            by_vertex.setdefault(
                int(vertex), Step(int(number), instruction.strip(), False, None, stage, int(vertex), of=int(of))
            )
            continue
        if not line.startswith("#"):
            continue
        vertex = line[1:].split(" ", 1)[0]
        step = by_vertex.get(int(vertex)) if vertex.isdigit() else None
        if step is None:
            continue
        if line == f"#{vertex} CACHED":
            step.cached = True
        elif done := DONE.match(line):
            step.seconds = float(done.group(2))
        elif failed := ERROR.match(line):
            step.error = failed.group(2)
    return sorted(by_vertex.values(), key=lambda s: (stages.index(s.stage), s.number))


def context_bytes(log: str) -> int | None:
    """The size of the build context BuildKit transferred, as it reported it (None if it did not say).

    The `[internal] load build context` vertex's last `transferring context:` line; the same words under
    `[internal] load .dockerignore` are the .dockerignore file itself.
    """
    lines = _lines(log)
    context_vertices = {
        m.group(1) for line in lines if (m := INTERNAL.match(line)) and m.group(2).startswith("load build context")
    }
    sizes = [parse_size(m.group(2)) for line in lines if (m := CONTEXT.match(line)) and m.group(1) in context_vertices]
    return max(sizes) if sizes else None


@dataclass
class Build:
    """What one build did: how long it took, its output, and its steps."""

    tag: str
    seconds: float
    log: str  # without colour codes
    steps: list[Step] = field(default_factory=list)
    code: int = 0
    command: str = ""

    def step(self, text: str) -> Step:
        """The last step whose instruction contains `text` (e.g. 'pip install')."""
        found = [s for s in self.steps if text in s.instruction]
        if not found:
            listed = "\n  ".join(s.instruction for s in self.steps) or "(no steps found in the output)"
            raise LookupError(f"no step of the {self.tag} build contains {text!r}; its steps:\n  {listed}")
        return found[-1]

    @property
    def context_bytes(self) -> int | None:
        return context_bytes(self.log)

    def output_time(self, step: Step, text: str) -> float | None:
        """When `step` printed its first line containing `text`: seconds since the step started, by BuildKit's
        own clock (`#8 3.352 Installing collected packages: ...` -> 3.352). None when it printed no such line."""
        prefix = f"#{step.vertex} "
        for line in _lines(self.log):
            if line.startswith(prefix) and text in line:
                stamp = line[len(prefix) :].split(" ", 1)[0]
                try:
                    return float(stamp)
                except ValueError:
                    continue  # the step's header or a status line, not its output
        return None

    def table(self) -> str:
        """One line per step: BuildKit's `[n/m]` name, whether it was CACHED or ran (and how long), the instruction."""
        built = [s for s in self.steps if not _is_from(s)]
        stages = {s.stage for s in built}
        rows = []
        for s in self.steps:
            if _is_from(s) and (len(stages) == 1 or s.stage not in stages) and built:
                # BuildKit runs a base image that two stages (or two builds at once) share as one vertex,
                # and may name it after the other one: number it by this build's steps, or say what it is.
                name = f"[1/{built[0].of}]" if len(stages) == 1 else "(base)"
            else:
                name = f"[{s.stage + ' ' if len(stages) > 1 else ''}{s.number}/{s.of}]"
            rows.append(f"  {name:<14} {_state(s):<11} {s.instruction[:80]}")
        return "\n".join(rows)


def _is_from(step: Step) -> bool:
    return step.instruction.upper().startswith("FROM")


def _state(step: Step) -> str:
    if step.error:
        return "ERROR"
    if _is_from(step):
        return "-"  # the base image: resolved, never built
    if step.cached:
        return "CACHED"
    return "ran" + (f" {step.seconds:.1f}s" if step.seconds is not None else "")


def build(
    folder,
    tag: str,
    *,
    dockerfile: str | None = None,
    no_cache: bool = False,
    build_args: dict[str, str] | None = None,
    target: str | None = None,
    expect: int | None = 0,
    show: bool | str = True,
    tail: int = 12,
) -> Build:
    """Build `folder` into `tag` with BuildKit (`docker buildx build --load --progress=plain`) and parse its output.

    Every build carries LABEL_FLAG, so `workbook.cleanup()` removes it.

    `show`: True prints the command and the last `tail` lines of the output; "steps" prints the
    command and one line per step (CACHED or ran) instead; False prints nothing.
    """
    parts = [buildkit_build(), "--progress=plain", LABEL_FLAG, f"-t {tag}"]
    if no_cache:
        parts.append("--no-cache")
    if dockerfile:
        parts.append(f"-f {Path(folder) / dockerfile}")
    if target:
        parts.append(f"--target {target}")
    for key, value in (build_args or {}).items():
        parts.append(f"--build-arg {key}={value}")
    parts.append(str(folder))
    command = " ".join(parts)
    result = sh(command, expect=None, show=show is True, tail=tail)
    if result.code != 0 and SNAPSHOT_RACE in result.out:
        # A known race of the containerd image store (moby/buildkit#6521): unpacking the new image finds a
        # parent layer that another image's removal just took away. The steps are cached; export again.
        print("(the engine lost a layer while unpacking the image, a known containerd-store race: building again)")
        result = sh(command, expect=None, show=show is True, tail=tail)
    if expect is not None and result.code != expect:
        raise CommandFailed(
            f"`{command}` exited with {result.code}, expected {expect}.\n" + "\n".join(result.lines[-tail:])
        )
    log = strip_ansi(result.out)
    built = Build(tag, result.seconds, log, buildkit_steps(log), result.code, command)
    if show == "steps":
        print(f"$ {command}\n{built.table()}\n  ({result.seconds:.1f}s)", flush=True)
    return built


def layer_digest(image: str, text: str) -> str | None:
    """The digest of the newest layer of `image` made by a step whose instruction contains `text`.

    A layer's digest (its diff id, in `docker image inspect`'s RootFS.Layers) is a hash of its
    contents: the same digest is the very same layer. None when no layer-making step matches. (Only the
    legacy builder left an image id per step in `docker history`; BuildKit's images show '<missing>'.)
    """
    steps = [s for s in image_steps(image) if s.adds_layer]
    digests = json.loads(sh(f"docker image inspect --format '{{{{json .RootFS.Layers}}}}' {image}", show=False).out)
    matches = [d for s, d in zip(steps, digests, strict=True) if text in s.instruction]
    return matches[-1] if matches else None


def image_bytes(image: str) -> int:
    """The image's size in bytes: its layers' uncompressed tars added up (the same on every image store)."""
    return _image_bytes(image)


def write_files(folder, files: dict[str, str | bytes]) -> Path:
    """Write `files` ({relative path: text or bytes}) under `folder`, creating directories; returns the folder."""
    folder = Path(folder)
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def fresh_dir(path) -> Path:
    """An empty directory at `path` (whatever was there is removed): experiments start from a known state."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def cache_mounts() -> dict[str, str]:
    """BuildKit's cache-mount records on the engine: {record id: description} (empty without BuildKit)."""
    out = sh("docker system df -v --format '{{json .BuildCache}}'", show=False, expect=None)
    if out.code != 0 or not out.out.strip():
        return {}
    try:
        records = json.loads(out.out.strip().splitlines()[-1]) or []
    except json.JSONDecodeError:
        return {}
    return {r["ID"]: r.get("Description", "") for r in records if r.get("CacheType") == "exec.cachemount"}


def remove_build_cache(ids, timeout: float = 20) -> list[str]:
    """Remove the BuildKit cache-mount records with these ids, and no others (`docker buildx prune --filter id=`).

    A record that a build still holds stays; it is tried again until `timeout`. Returns the ids left.
    """
    left = set(ids)
    deadline = time.monotonic() + timeout
    while left:
        for record in sorted(left):
            sh(f"docker buildx prune -f --filter id={record}", show=False, expect=None)
        left &= set(cache_mounts())
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return sorted(left)
