"""Chapter 3 (layer caching): build, and read from the builder's own output which steps hit the cache.

Both builders say, step by step, whether they reused a cached layer. The classic builder prints

    Step 4/6 : RUN pip install --no-cache-dir -r requirements.txt
     ---> Using cache

and BuildKit (`--progress=plain`) prints `#8 [stage-0 4/5] RUN ...` and later `#8 CACHED`, or
`#8 DONE 3.5s` when it ran the step. `build()` runs a build through `sh()` (so the learner sees the
command and its output) and parses that output into `Step`s:

    b = build(folder, "workbook/ch03-good")
    b.step("pip install").cached        # True when the install layer was reused
    b.context_bytes                      # the build context the builder received
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from workbook.engine import LABEL_FLAG, buildkit_build, classic_build
from workbook.shell import sh

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
CLASSIC_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
CLASSIC_CONTEXT = re.compile(r"Sending build context to Docker daemon\s+([\d.]+\s*[kKMGT]?i?B)")
BUILDKIT_HEADER = re.compile(r"^#(\d+) \[(?:[^\]]*? )?(\d+)/(\d+)\] (.*)$")
BUILDKIT_INTERNAL = re.compile(r"^#(\d+) \[internal\] (.*)$")
BUILDKIT_DONE = re.compile(r"^#(\d+) DONE ([\d.]+)s$")
BUILDKIT_CONTEXT = re.compile(r"^#(\d+) transferring context: ([\d.]+\s*[kKMGT]?i?B)")
SIZE = re.compile(r"^([\d.]+)\s*([kKMGT]?)(i?)B$")
UNITS = {"": 1, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


@dataclass
class Step:
    """One Dockerfile instruction as the builder reported it."""

    number: int  # 1-based position in the Dockerfile (the builder's own numbering)
    instruction: str  # e.g. "RUN pip install -r requirements.txt"
    cached: bool  # the builder reused a cached layer instead of running the step
    seconds: float | None = None  # BuildKit reports how long each step ran; the classic builder does not


def strip_ansi(text: str) -> str:
    """The text without terminal colour codes (the classic builder colours what a step writes to stderr)."""
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
    return [line.rsplit("\r", 1)[-1] for line in strip_ansi(log).splitlines()]


def classic_steps(log: str) -> list[Step]:
    """The steps of a classic-builder log; a step is cached when its next status line is `---> Using cache`."""
    steps: list[Step] = []
    for line in _lines(log):
        match = CLASSIC_STEP.match(line)
        if match:
            steps.append(Step(int(match.group(1)), match.group(3).strip(), cached=False))
        elif steps and line.strip() == "---> Using cache":
            steps[-1].cached = True
    return steps


def buildkit_steps(log: str) -> list[Step]:
    """The Dockerfile steps of a BuildKit `--progress=plain` log (vertices may finish out of order)."""
    by_vertex: dict[str, Step] = {}
    for line in _lines(log):
        header = BUILDKIT_HEADER.match(line)
        if header:
            vertex, number, _, instruction = header.groups()
            by_vertex.setdefault(vertex, Step(int(number), instruction.strip(), cached=False))
            continue
        vertex = line.split(" ", 1)[0][1:] if line.startswith("#") else None
        if vertex in by_vertex:
            if line.strip() == f"#{vertex} CACHED":
                by_vertex[vertex].cached = True
            done = BUILDKIT_DONE.match(line.strip())
            if done:
                by_vertex[vertex].seconds = float(done.group(2))
    return sorted(by_vertex.values(), key=lambda s: s.number)


def context_bytes(log: str) -> int | None:
    """The size of the build context the builder received, as it reported it (None if it did not say)."""
    lines = _lines(log)
    sizes = [parse_size(m.group(1)) for line in lines if (m := CLASSIC_CONTEXT.search(line))]
    if sizes:
        return max(sizes)
    context_vertices = {
        m.group(1)
        for line in lines
        if (m := BUILDKIT_INTERNAL.match(line)) and m.group(2).startswith("load build context")
    }
    sizes = [
        parse_size(m.group(2))
        for line in lines
        if (m := BUILDKIT_CONTEXT.match(line)) and m.group(1) in context_vertices
    ]
    return max(sizes) if sizes else None


@dataclass
class Build:
    """What one `docker build` did: how long it took, its output, and its steps."""

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

    def table(self) -> str:
        """One line per step: whether the cache was used, and the instruction."""
        rows = []
        for s in self.steps:
            took = f" ({s.seconds:.1f}s)" if s.seconds is not None else ""
            state = "-" if s.instruction.upper().startswith("FROM") else "CACHED" if s.cached else "ran" + took
            rows.append(f"  {s.number:>2}  {state:<12} {s.instruction[:80]}")
        return "\n".join(rows)


def build(
    folder,
    tag: str,
    *,
    dockerfile: str | None = None,
    no_cache: bool = False,
    build_args: dict[str, str] | None = None,
    buildkit: bool = False,
    expect: int | None = 0,
    show: bool | str = True,
    tail: int = 12,
) -> Build:
    """Build `folder` into `tag` with the classic builder (default) or BuildKit, and parse what it reported.

    Every build carries LABEL_FLAG, so `workbook.cleanup()` removes it. With `buildkit=True` the
    output is `--progress=plain`; a machine without BuildKit raises RuntimeError (check
    `workbook.buildkit_build()` first).

    `show`: True prints the command and the last `tail` lines of the output; "steps" prints the
    command and one line per step (cached or ran) instead; False prints nothing.
    """
    if buildkit:
        prefix = buildkit_build()
        if prefix is None:
            raise RuntimeError("this machine has no BuildKit builder (workbook.buildkit_build() is None)")
        prefix += " --progress=plain"
    else:
        prefix = classic_build()
    parts = [prefix, LABEL_FLAG, f"-t {tag}"]
    if no_cache:
        parts.append("--no-cache")
    if dockerfile:
        parts.append(f"-f {Path(folder) / dockerfile}")
    for key, value in (build_args or {}).items():
        parts.append(f"--build-arg {key}={value}")
    parts.append(str(folder))
    command = " ".join(parts)
    result = sh(command, expect=expect, show=show is True, tail=tail)
    log = strip_ansi(result.out)
    steps = buildkit_steps(log) if buildkit else classic_steps(log)
    built = Build(tag, result.seconds, log, steps, result.code, command)
    if show == "steps":
        print(f"$ {command}\n{built.table()}\n  ({result.seconds:.1f}s)", flush=True)
    return built


def layer_for(image: str, text: str) -> str | None:
    """The id of the newest layer of `image` whose instruction contains `text`, from `docker history`.

    None when no layer matches. Layers pulled from a registry (and every layer on the containerd
    image store) show as '<missing>': only locally built layers have an id to compare.
    """
    out = sh(f"docker history --no-trunc --format '{{{{.ID}}}}\\t{{{{.CreatedBy}}}}' {image}", show=False).out
    for line in out.splitlines():  # newest first
        layer_id, _, created_by = line.partition("\t")
        if text in created_by:
            return layer_id
    return None


def image_bytes(image: str) -> int:
    """The image's size in bytes, as `docker image inspect` reports it."""
    return int(sh(f"docker image inspect -f '{{{{.Size}}}}' {image}", show=False).out.strip())


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


def remove_build_cache(ids) -> None:
    """Remove the BuildKit cache records with these ids, and no others (`docker builder prune --filter id=`)."""
    prefix = buildkit_build()
    docker = "/usr/bin/docker" if prefix and "/usr/bin/docker" in prefix else "docker"
    for record in ids:
        sh(f"{docker} builder prune -f --filter id={record}", show=False, expect=None)
