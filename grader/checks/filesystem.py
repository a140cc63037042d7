"""What reaches the engine and what ends up in the image: the build context's size, and forbidden paths.

Two checks, both driven by the lab's `forbidden_paths` (data, notebooks, .venv, .git...):

- `BuildContextSizeBudget` measures the context the engine would receive, computed with the same
  .dockerignore rules the engine uses (the Docker SDK's `exclude_paths`), on a copy of the submission
  in which every forbidden path holds a planted file of a realistic size: a learner's machine has a
  data set, a virtualenv and a Git history, even when the folder handed in does not.
- `ForbiddenPathsAbsentFromImage` looks inside the built image: a folder under the image's WORKDIR
  named like a forbidden path, or (optionally) a file with the same content as one of the
  submission's forbidden files wherever it was copied to under that folder.
"""

from __future__ import annotations

import hashlib
import posixpath
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.checks.base import Check, Outcome, register
from grader.checks.context import planted_context
from grader.errors import SpecError

KIB = 1024
DEFAULT_PLANT_KB = 4096  # a forbidden path the lab gives no size for stands for 4 MiB
MIN_CONTENT_BYTES = 64  # smaller files (an empty __init__.py, "{}") say nothing about where they came from
MAX_CONTENT_BYTES = 64 * KIB * KIB  # bigger files are recognised by their folder only, never read


# --- sizes ------------------------------------------------------------------------------------------------
def human_size(n_bytes: float) -> str:
    """1536 -> '1.5 KiB': the units `du -h` and `docker images` readers know."""
    if n_bytes < KIB:
        return f"{n_bytes:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        n_bytes /= KIB
        if n_bytes < KIB or unit == "GiB":
            break
    return f"{n_bytes:.1f}".removesuffix(".0") + f" {unit}"


@register
class BuildContextSizeBudget(Check):
    name = "BuildContextSizeBudget"
    category = "build"
    title = "Build context within its size budget"
    hint = (
        "List what the image does not need in .dockerignore, starting with the biggest entries above "
        "(data/, notebooks/, .venv/, .git/): every build uploads the whole context to the engine before "
        "the first step runs, even when the cache makes every step instant."
    )
    # plant_kb: KiB planted in each forbidden path (the others get DEFAULT_PLANT_KB).
    default_params = {"max_kb": 1024, "plant_kb": {}}

    def __init__(self, spec):
        super().__init__(spec)
        if not isinstance(self.params["plant_kb"], dict):
            raise SpecError(f"check {self.name}: plant_kb must map forbidden paths to sizes in KiB")

    def run(self, ctx) -> Outcome:
        forbidden = ctx.spec.forbidden_paths
        stray = sorted(set(self.params["plant_kb"]) - set(forbidden))
        if stray:
            raise SpecError(f"check {self.name}: plant_kb names {stray}, which are not among forbidden_paths")
        sizes = {rel: int(self.params["plant_kb"].get(rel, DEFAULT_PLANT_KB) * KIB) for rel in forbidden}
        view = planted_context(ctx, "context-size", sizes)
        total, budget = view.total_bytes(), self.params["max_kb"] * KIB
        entries = view.biggest_entries()
        biggest = ", ".join(f"{entry} {human_size(size)}" for entry, size in entries[:5])
        planted = ", ".join(f"{rel}/ {human_size(n)}" for rel, n in view.planted.items())
        evidence = "\n".join(
            [f"{human_size(size):>10}  {entry}" for entry, size in entries[:15]]
            + [
                f"(before measuring, the grader planted a file of a realistic size in each forbidden path: "
                f"{planted or 'none'})",
                f".dockerignore patterns: {view.patterns or 'none (no .dockerignore)'}",
            ]
        )
        if total > budget:
            return Outcome.failed(
                f"the build context would be {human_size(total)} (budget {human_size(budget)}); biggest: {biggest}",
                evidence=evidence,
            )
        return Outcome.passed(
            f"the build context is {human_size(total)} (budget {human_size(budget)}); biggest: {biggest or 'nothing'}",
            evidence=evidence,
        )


# --- the image's files ------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One file system entry of the image: its absolute path, and its content on request."""

    path: str
    size: int
    is_file: bool
    read: Callable[[], bytes] | None = None  # valid only while the entry is the stream's current one


def tar_entries(tar: tarfile.TarFile, root: str) -> Iterator[Entry]:
    """The entries of an archive the engine made of the image's folder `root`, with absolute paths.

    The engine names members after the folder's last component ("app/app.py" for /app), or with a
    leading slash for "/" itself.
    """
    parent = posixpath.dirname(root.rstrip("/")) or "/"
    for member in tar:
        path = posixpath.normpath(posixpath.join(parent, member.name))
        yield Entry(path, member.size, member.isfile(), lambda m=member: tar.extractfile(m).read())


def image_entries(engine, image: str, root: str) -> Iterator[Entry]:
    """Every file system entry under `root` in `image` (none when the image lacks `root`)."""
    with engine.archive(image, root) as tar:
        if tar is not None:
            yield from tar_entries(tar, root)


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

    def run(self, ctx) -> Outcome:
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
