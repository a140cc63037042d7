"""What the build context sends to the engine, decided by the same .dockerignore rules the engine uses."""

from __future__ import annotations

from docker.utils.build import exclude_paths

from grader.checks.base import Check, Outcome, register

PLANTED = "planted-by-grader.txt"


def dockerignore_patterns(folder) -> list[str]:
    """The patterns of `folder/.dockerignore`, read the way the Docker SDK reads them."""
    path = folder / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


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
        # Plant each forbidden path that the submission does not have, in a copy, so that the rules
        # are tested for what a learner's machine would have (a .venv, a .git), not just for what was handed in.
        copy = ctx.copy_of_submission("context")
        for rel in forbidden:
            if not (copy / rel).exists():
                (copy / rel).mkdir(parents=True)
                (copy / rel / PLANTED).write_text("a file the grader put here to test your .dockerignore\n")
        sent = exclude_paths(str(copy), dockerignore_patterns(copy), dockerfile=ctx.spec.dockerfile)
        leaked = [rel for rel in forbidden if any(p == rel or p.startswith(rel.rstrip("/") + "/") for p in sent)]
        size_kb = sum((copy / p).stat().st_size for p in sent if (copy / p).is_file()) / 1024
        if leaked:
            return Outcome.failed(
                f"the build context would include {', '.join(leaked)}",
                evidence=f".dockerignore patterns: {dockerignore_patterns(copy) or 'none (no .dockerignore)'}",
            )
        return Outcome.passed(f"none of {', '.join(forbidden)} is sent; the context is {size_kb:.0f} KiB")
