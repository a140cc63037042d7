"""What reaches the engine: the build context, decided by the same .dockerignore rules the engine uses.

Both checks are driven by the lab's `forbidden_paths` (data, notebooks, .venv, .git...), planted in a copy
of the submission first: a learner's machine has a data set, a virtualenv and a Git history, even when the
folder handed in does not.

- `BuildContextExcludes`: none of the forbidden paths would be sent.
- `BuildContextSizeBudget`: the context the engine would receive (computed with the Docker SDK's
  `exclude_paths`), with every forbidden path holding a planted file of a realistic size, is within budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from docker.utils.build import exclude_paths

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import SpecError
from grader.sizes import KIB, human_size

PLANTED_FILE = "planted-by-grader.bin"
PLANTED_BYTES = 1024  # enough to tell the rules what a learner's machine has there
DEFAULT_PLANT_KB = 4096  # a forbidden path the lab gives no size for stands for 4 MiB


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


def planted_context(ctx: CheckContext, name: str, plant_bytes: dict[str, int]) -> ContextView:
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

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
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
