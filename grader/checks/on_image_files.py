"""Checks of what the built image holds, read from its files (or, for tools, by a probe run in it):

- NoBuildToolsInImage: no compilers, build or download tools (a multi-stage build leaves them in the
  builder stage).
- NoSecretsInImage: no secret in the image's environment, build history or files.
- ForbiddenPathsAbsentFromImage: no folder under the image's WORKDIR named like one of the lab's
  forbidden paths, nor (optionally) a file with the same content as one of the submission's forbidden
  files wherever it was copied to under that folder.
- NoModelInImage: no model file (the model is mounted when the container starts).
"""

from __future__ import annotations

import fnmatch
import hashlib
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import docker.errors

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import SpecError
from grader.image_files import Entry, image_entries
from grader.programs import program_text
from grader.programs.find_tools import PROBE_DONE, STANDARD_DIRS
from grader.sizes import KIB, human_size

MIN_CONTENT_BYTES = 64  # smaller files (an empty __init__.py, "{}") say nothing about where they came from
MAX_CONTENT_BYTES = 64 * KIB * KIB  # bigger files are recognised by their folder only, never read
MAX_SCANNED_BYTES = 2 << 20  # larger files (wheels, models) are not where a planted secret hides

# --- NoBuildToolsInImage ----------------------------------------------------------------------------

# Run as `sh -c PROBE_SH probe TOOL...`: prints "found TOOL PATH" for each tool that is an executable
# file in a folder of PATH or of STANDARD_DIRS (following links, so a dangling link does not count).
PROBE_SH = (
    f'dirs="$PATH:{":".join(STANDARD_DIRS)}"\n'
    'for tool in "$@"; do\n'
    "  IFS=:\n"
    "  for dir in $dirs; do\n"
    '    if [ -n "$dir" ] && [ -f "$dir/$tool" ] && [ -x "$dir/$tool" ]; then\n'
    '      echo "found $tool $dir/$tool"; break\n'
    "    fi\n"
    "  done\n"
    "  unset IFS\n"
    "done\n"
    f'echo "{PROBE_DONE}"\n'
)

# The same probe in Python, for an image with no shell: `python3 -c PROBE_PY TOOL...`, the text of
# grader/programs/find_tools.py (which also holds STANDARD_DIRS and PROBE_DONE, for both probes).
PROBE_PY = program_text("find_tools")

DOWNLOAD_TOOLS = {"curl", "wget"}


def probe_commands(tools: list[str]) -> list[list[str]]:
    """The probe commands to try in turn: with the shell, else with Python."""
    return [
        ["sh", "-c", PROBE_SH, "probe", *tools],
        ["python3", "-c", PROBE_PY, *tools],
        ["python", "-c", PROBE_PY, *tools],
    ]


def found_tools(output: str) -> dict[str, str] | None:
    """{tool: path} from a probe's output, or None when the probe did not run to its end."""
    lines = output.splitlines()
    if PROBE_DONE not in (line.strip() for line in lines):
        return None
    found = {}
    for line in lines:
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] == "found":
            found.setdefault(parts[1], parts[2])
    return found


@register
class NoBuildToolsInImage(Check):
    name = "NoBuildToolsInImage"
    category = "security"
    title = "No compilers or build tools in the final image"
    hint = (
        "Use a multi-stage build. Install (and compile) the dependencies in a first stage that has the tools, "
        "e.g. FROM python:3.11 AS builder with RUN python -m venv /opt/venv && /opt/venv/bin/pip install ..., "
        "then start the final stage FROM python:3.11-slim and copy only the result: "
        "COPY --from=builder /opt/venv /opt/venv. The compiler stays behind in the builder stage."
    )
    default_params = {"tools": ["gcc", "cc", "g++", "make", "git", "curl", "wget"]}

    def run(self, ctx: CheckContext) -> Outcome:
        image, tools = ctx.image(), list(self.params["tools"])
        attempts = []
        for command in probe_commands(tools):
            try:
                code, output = ctx.engine.run_once(image, command)
            except docker.errors.APIError as err:  # the image has no such program: try the next probe
                attempts.append(f"{command[0]}: {err.explanation or err}")
                continue
            found = found_tools(output)
            if found is None:
                attempts.append(f"{command[0]} (exit {code}): {output[-300:]}")
                continue
            return self.verdict(tools, found, command[0])
        return Outcome.passed(
            "the image has neither a shell nor Python to run the probe with, so no build tool can run in it either",
            evidence="\n".join(attempts),
        )

    @staticmethod
    def verdict(tools: list[str], found: dict[str, str], probe: str) -> Outcome:
        if not found:
            return Outcome.passed(f"none of {', '.join(tools)} is in the image (looked with {probe})")
        evidence = "\n".join(f"{tool}: {path}" for tool, path in found.items())
        message = f"the image ships {', '.join(found)}"
        if set(found) <= DOWNLOAD_TOOLS:
            return Outcome.failed(
                message,
                evidence,
                hint=(
                    "Download tools in a serving image help whoever breaks in fetch their own tools. If you installed "
                    "curl or wget for the HEALTHCHECK, use Python instead: HEALTHCHECK CMD "
                    '["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:PORT/health\', '
                    'timeout=2)"]. If you need them to build, do that in a builder stage.'
                ),
            )
        return Outcome.failed(message + ": it was built on (or copied from) an image made for building", evidence)


# --- NoSecretsInImage ------------------------------------------------------------------------------


def redact(secret: str) -> str:
    return secret[:8] + "…" if len(secret) > 8 else "…"


def find_secrets(text: str, patterns: list[re.Pattern]) -> list[str]:
    """The redacted matches of `patterns` in `text`."""
    return [redact(m.group(0)) for p in patterns for m in p.finditer(text)]


@register
class NoSecretsInImage(Check):
    name = "NoSecretsInImage"
    category = "security"
    title = "No secret is baked into the image"
    hint = (
        "Never put a secret in the Dockerfile (ENV, ARG, RUN echo) or in a copied file: every layer and its "
        "history ship with the image, and deleting the file in a later layer does not remove it. "
        "Pass secrets when the container starts: docker run -e API_KEY=... (or a mounted secret file)."
    )
    required_params = {
        "patterns": "regular expressions of the secrets to look for, e.g. the lab's planted key",
        "paths": "the image folders whose files are searched, e.g. [/app]",
    }

    def run(self, ctx: CheckContext) -> Outcome:
        patterns = [re.compile(p) for p in self.params["patterns"]]
        image = ctx.image()
        found = []
        for env in ctx.image_config()["Config"].get("Env") or []:
            found += [f"ENV {env.split('=', 1)[0]}: {s}" for s in find_secrets(env, patterns)]
        for layer in ctx.engine.history(image):
            step = " ".join((layer.get("CreatedBy") or "").split())
            found += [f"history step `{step[:60]}…`: {s}" for s in find_secrets(step, patterns)]
        for root in self.params["paths"]:
            for entry in image_entries(ctx.engine, image, root):
                if entry.is_file and entry.size <= MAX_SCANNED_BYTES:
                    text = entry.read().decode("latin-1")
                    found += [f"file {entry.path}: {s}" for s in find_secrets(text, patterns)]
        if found:
            return Outcome.failed(f"{len(found)} secret(s) found in the image", evidence="\n".join(found))
        where = ", ".join(self.params["paths"])
        return Outcome.passed(f"no secret in the image's environment, history or files under {where}")


# --- ForbiddenPathsAbsentFromImage ----------------------------------------------------------------


class Fingerprints:
    """The content of the submission's files under some forbidden paths, to recognise copies of them.

    Only sizes are read up front; a file is hashed when an image file of the same size turns up.
    """

    def __init__(self, submission: Path, paths: Iterable[str]):
        self.submission = submission
        self._by_size: dict[int, list[str]] = {}
        self._digests: dict[str, str] = {}
        for rel in paths:
            top = submission / rel
            files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()) if top.is_dir() else []
            for path in files:
                if path.is_symlink():
                    continue
                size = path.stat().st_size
                if MIN_CONTENT_BYTES <= size <= MAX_CONTENT_BYTES:
                    self._by_size.setdefault(size, []).append(path.relative_to(submission).as_posix())

    def candidates(self, size: int) -> bool:
        return size in self._by_size

    def same_as(self, size: int, content: bytes) -> str | None:
        """The submission file (relative path) whose content is `content`, if any."""
        digest = hashlib.sha256(content).hexdigest()
        for rel in self._by_size.get(size, ()):
            if rel not in self._digests:
                self._digests[rel] = hashlib.sha256((self.submission / rel).read_bytes()).hexdigest()
            if self._digests[rel] == digest:
                return rel
        return None


@dataclass
class Finding:
    """A forbidden thing found in the image: a folder named like a forbidden path, or a copied file."""

    where: str  # its path in the image
    forbidden: str  # the forbidden path it comes from
    files: int = 0
    bytes: int = 0
    same_as: str | None = None  # for a copy: the submission's file with the same content

    def describe(self) -> str:
        if self.same_as:
            return f"{self.where} (same content as {self.same_as})"
        return f"{self.where} ({self.files} file{'s' if self.files != 1 else ''}, {human_size(self.bytes)})"


def forbidden_prefix(rel_parts: tuple[str, ...], forbidden: Iterable[str]) -> str | None:
    """The forbidden path that `rel_parts` (a path relative to the searched folder) lies in, if any."""
    for rel in forbidden:
        parts = PurePosixPath(rel.strip("/")).parts
        if parts and rel_parts[: len(parts)] == parts:
            return rel
    return None


def scan(
    entries: Iterable[Entry], root: str, forbidden: Iterable[str], fingerprints: Fingerprints | None = None
) -> tuple[list[Finding], int]:
    """Forbidden paths found among `entries` under `root`, and how many files were looked at.

    A forbidden path is found where it would land from a `COPY . .` into `root` (root/data/...); a file
    anywhere under `root` with the same content as one of `fingerprints` is found as a copy of it.
    """
    forbidden = tuple(forbidden)
    root_path = PurePosixPath(root)
    found: dict[str, Finding] = {}
    files = 0
    for entry in entries:
        path = PurePosixPath(entry.path)
        if path == root_path or root_path not in path.parents:
            continue
        files += entry.is_file
        rel_parts = path.relative_to(root_path).parts
        hit = forbidden_prefix(rel_parts, forbidden)
        if hit is not None:
            where = str(root_path.joinpath(*PurePosixPath(hit.strip("/")).parts))
            finding = found.setdefault(where, Finding(where, hit))
            if entry.is_file:
                finding.files += 1
                finding.bytes += entry.size
            continue
        if entry.is_file and fingerprints is not None and fingerprints.candidates(entry.size):
            same_as = fingerprints.same_as(entry.size, entry.read())
            if same_as:
                origin = forbidden_prefix(PurePosixPath(same_as).parts, forbidden) or same_as
                found[entry.path] = Finding(entry.path, origin, 1, entry.size, same_as)
    return list(found.values()), files


@register
class ForbiddenPathsAbsentFromImage(Check):
    name = "ForbiddenPathsAbsentFromImage"
    category = "image"
    title = "Data, notebooks, virtualenvs and .git are not in the image"
    hint = (
        "Copy only what the service needs (e.g. COPY app/ app/, not COPY . .), and list these paths in "
        ".dockerignore so that no COPY can pick them up. Deleting them in a later RUN does not help: the "
        "layer that copied them still ships with the image."
    )
    # under: the image folder searched: "workdir" (the image's WORKDIR) or an absolute path.
    # same_content: forbidden paths whose files are also recognised by content, wherever they were
    # copied to under that folder (COPY data/train.csv . drops the folder, not the data).
    default_params = {"under": "workdir", "same_content": []}

    def __init__(self, spec):
        super().__init__(spec)
        under = self.params["under"]
        if under != "workdir" and not str(under).startswith("/"):
            raise SpecError(f"check {self.name}: under must be 'workdir' or an absolute path, not {under!r}")

    def search_root(self, config: dict) -> str:
        under = self.params["under"]
        if under == "workdir":
            return posixpath.normpath(config["Config"].get("WorkingDir") or "/")
        return posixpath.normpath(under)

    def run(self, ctx: CheckContext) -> Outcome:
        forbidden = ctx.spec.forbidden_paths
        stray = sorted(set(self.params["same_content"]) - set(forbidden))
        if stray:
            raise SpecError(f"check {self.name}: same_content names {stray}, which are not among forbidden_paths")
        if not forbidden:
            return Outcome.passed("the lab forbids no paths")
        image = ctx.image()
        root = self.search_root(ctx.image_config())
        fingerprints = Fingerprints(ctx.submission, self.params["same_content"])
        findings, files = scan(image_entries(ctx.engine, image, root), root, forbidden, fingerprints)
        if not findings:
            return Outcome.passed(f"none of {', '.join(forbidden)} is in the image under {root} ({files} files)")
        findings.sort(key=lambda f: f.where)
        copies = [f for f in findings if f.same_as]
        hint = None
        if copies:
            hint = (
                f"{copies[0].same_as} was copied into the image as {copies[0].where}, under another name. "
                f"If the service does not read it at run time, remove that COPY; keep {copies[0].forbidden} "
                "in .dockerignore so that no COPY can pick it up again."
            )
        return Outcome.failed(
            f"the image has {', '.join(f.describe() for f in findings[:4])}"
            + (f" and {len(findings) - 4} more" if len(findings) > 4 else ""),
            evidence=f"searched {files} files under {root} (the image's "
            + ("WORKDIR" if self.params["under"] == "workdir" else "folder")
            + ")\n"
            + "\n".join(f.describe() for f in findings[:20]),
            hint=hint,
        )


# --- NoModelInImage ---------------------------------------------------------------------------------


def model_files(paths, patterns: list[str]) -> list[str]:
    """The paths whose file name matches one of `patterns` (fnmatch, e.g. *.joblib)."""
    return [p for p in paths if any(fnmatch.fnmatch(posixpath.basename(p), pat) for pat in patterns)]


@register
class NoModelInImage(Check):
    name = "NoModelInImage"
    category = "image"
    title = "The image holds no model file"
    hint = (
        "Do not train (RUN python train.py) or COPY a model at build time, and list models/ and *.joblib in "
        ".dockerignore: the model is mounted when the container starts (docker run -v ...:ro), so one image "
        "serves every model version and a new model needs no rebuild."
    )
    default_params = {"patterns": ["*.joblib", "*.pkl", "*.pickle", "*.pt", "*.onnx"]}
    required_params = {"paths": "the image folders searched for model files, e.g. [/app, /models]"}

    def run(self, ctx: CheckContext) -> Outcome:
        image = ctx.image()
        found = []
        for root in self.params["paths"]:
            entries = [e for e in image_entries(ctx.engine, image, root) if e.is_file]
            found += model_files([e.path for e in entries], self.params["patterns"])
        where = ", ".join(self.params["paths"])
        if found:
            return Outcome.failed(f"{len(found)} model file(s) in the image under {where}", evidence="\n".join(found))
        return Outcome.passed(f"no {' / '.join(self.params['patterns'])} file under {where}")
