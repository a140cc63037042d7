"""What the build context sends to the engine, decided by the same .dockerignore rules the engine uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from docker.utils.build import exclude_paths

from grader.checks.base import Check, Outcome, register

PLANTED_FILE = "planted-by-grader.bin"
PLANTED_BYTES = 1024  # enough to tell the rules what a learner's machine has there


def dockerignore_patterns(folder) -> list[str]:
    """The patterns of `folder/.dockerignore`, read the way the Docker SDK reads them."""
    path = folder / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@dataclass
class ContextView:
    """The files the engine would receive from `root`, and the paths the grader planted there first."""

    root: Path
    sent: set[str]
    patterns: list[str]
    planted: dict[str, int] = field(default_factory=dict)  # forbidden path -> bytes planted in it

    def file_sizes(self) -> dict[str, int]:
        """Size of every regular file that would be sent, by path relative to the context."""
        sizes = {}
        for rel in self.sent:
            path = self.root / rel
            if path.is_file() and not path.is_symlink():
                sizes[rel] = path.stat().st_size
        return sizes

    def total_bytes(self) -> int:
        return sum(self.file_sizes().values())

    def biggest_entries(self) -> list[tuple[str, int]]:
        return group_by_entry(self.file_sizes())


def group_by_entry(file_sizes: dict[str, int]) -> list[tuple[str, int]]:
    """Sizes summed per top-level entry of the context ('data/', 'Dockerfile'), biggest first."""
    totals: dict[str, int] = {}
    for rel, size in file_sizes.items():
        parts = PurePosixPath(rel).parts
        entry = parts[0] + "/" if len(parts) > 1 else parts[0]
        totals[entry] = totals.get(entry, 0) + size
    return sorted(totals.items(), key=lambda item: (-item[1], item[0]))


def plant(folder: Path, rel: str, n_bytes: int) -> int:
    """Put a file of `n_bytes` inside `folder/rel` (created if missing); returns the bytes planted.

    The file is sparse: it costs no disk space or time, yet its size is what a tar of the context,
    and so the engine, would receive. A forbidden path that exists as a file is left as it is.
    """
    target = folder / rel
    if target.exists() and not target.is_dir():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    with (target / PLANTED_FILE).open("wb") as f:
        f.truncate(n_bytes)
    return n_bytes


def planted_context(ctx, name: str, plant_bytes: dict[str, int]) -> ContextView:
    """A copy of the submission with `plant_bytes` planted, and what the engine would receive from it.

    Uses the same rules as the engine: the copy's .dockerignore read by the Docker SDK, which always
    sends the Dockerfile.
    """
    copy = ctx.copy_of_submission(name)
    planted = {rel: plant(copy, rel, n) for rel, n in plant_bytes.items()}
    patterns = dockerignore_patterns(copy)
    sent = exclude_paths(str(copy), list(patterns), dockerfile=ctx.spec.dockerfile)
    return ContextView(copy, sent, patterns, {rel: n for rel, n in planted.items() if n})


@register
class BuildContextExcludes(Check):
    name = "BuildContextExcludes"
    category = "build"
    title = "Build context leaves out data, notebooks, virtualenvs and .git"
    hint = (
        "Create a .dockerignore next to your Dockerfile that lists these folders (one per line, "
        "e.g. 'data/'), so they are never sent to the engine or copied into the image."
    )

    def run(self, ctx) -> Outcome:
        forbidden = ctx.spec.forbidden_paths
        if not forbidden:
            return Outcome.passed("the lab forbids no paths")
        # Plant each forbidden path in a copy, so that the rules are tested for what a learner's machine
        # would have (a .venv, a .git), not just for what was handed in.
        view = planted_context(ctx, "context", {rel: PLANTED_BYTES for rel in forbidden})
        leaked = [rel for rel in forbidden if any(p == rel or p.startswith(rel.rstrip("/") + "/") for p in view.sent)]
        size_kb = view.total_bytes() / 1024
        if leaked:
            return Outcome.failed(
                f"the build context would include {', '.join(leaked)}",
                evidence=f".dockerignore patterns: {view.patterns or 'none (no .dockerignore)'}",
            )
        return Outcome.passed(f"none of {', '.join(forbidden)} is sent; the context is {size_kb:.0f} KiB")
