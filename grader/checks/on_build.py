"""Checks of the build itself: the image builds, and a code-only change reuses the dependency layer."""

from __future__ import annotations

from pathlib import Path

from grader.buildkit import BuildResult
from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.dockerfile import up_to_final_run_with
from grader.engine_facts import UPGRADE, too_old_for

REBUILD = "code-change rebuild"


def install_reruns(marker: str):
    """A `stop_when` for a build: true once a step running `marker` starts to run instead of coming from cache."""
    return lambda step: step.ran and marker in (step.instruction or "")


def _cut_at_install(ctx: CheckContext, copy: Path) -> bool:
    """Cut the copy's Dockerfile after its install step (grader/dockerfile.py); False where it cannot be cut."""
    dockerfile = copy / ctx.spec.dockerfile
    text = dockerfile.read_text(errors="replace") if dockerfile.is_file() else ""
    cut = up_to_final_run_with(text, ctx.spec.install_step)
    if cut is None or dockerfile.is_symlink():
        return False
    dockerfile.write_text(cut)
    return True


def _reran(rebuilt: BuildResult, marker: str) -> bool:
    """The rebuild ran the install step (or was stopped as it started), rather than taking it from the cache."""
    if rebuilt.stopped:
        return True
    install = rebuilt.last_step_with(marker)
    return rebuilt.ok and (install is None or not install.cached)


@register
class ImageBuilds(Check):
    name = "ImageBuilds"
    category = "build"
    title = "Image builds"
    hint = "Read the last lines of the build log above: they name the step that failed. Fix it and build again."

    def run(self, ctx: CheckContext) -> Outcome:
        built = ctx.build()
        if built.ok:
            steps = built.dockerfile_steps
            cached = sum(step.cached for step in steps)
            return Outcome.passed(
                f"built in {built.seconds:.1f}s ({cached} of {len(steps)} steps CACHED)",
                evidence="\n".join([*built.notes, built.summary()]),
            )
        failed = built.failed_step
        where = f" at `{failed.instruction}`" if failed and failed.instruction else ""
        dockerfile = ctx.submission / ctx.spec.dockerfile
        text = dockerfile.read_text(errors="replace") if dockerfile.is_file() else ""
        # An old frontend stops at parsing ("dockerfile parse error", "unknown flag: link") before any step runs.
        unparsed = failed is None and any(w in built.error for w in ("parse error", "unknown flag", "not supported"))
        too_old = too_old_for(text, ctx.engine.version().get("Version", "")) if unparsed else []
        if too_old:  # not the learner's mistake: say what this engine lacks and what fixes it
            return Outcome.failed(
                f"this engine ({ctx.engine.version().get('Version')}) cannot build your Dockerfile: "
                + "; ".join(too_old),
                evidence=built.log_tail(),
                hint=f"Your Dockerfile is fine for current Docker. {UPGRADE}.",
            )
        return Outcome.failed(f"the build failed{where}: {built.error}", evidence=built.log_tail())


@register
class LayerCacheReused(Check):
    name = "LayerCacheReused"
    category = "build"
    title = "Dependency layer reused after a code-only change"
    hint = (
        "Copy the requirements file and install dependencies before copying the code:\n"
        "  COPY app/requirements.txt .\n  RUN pip install --no-cache-dir -r requirements.txt\n  COPY app/ .\n"
        "Then a change to the code reuses the cached install layer."
    )

    def after_build(self, ctx: CheckContext) -> None:
        # The rebuild only needs the first build's cache, so it runs while the service is checked.
        ctx.in_background(REBUILD, lambda: self.rebuild(ctx))

    @staticmethod
    def rebuild(ctx: CheckContext, name: str = "code-change", again: bool = False) -> BuildResult | Outcome:
        """Rebuild a copy of the submission with one line of code changed; an Outcome if that cannot be done.

        `again`: a second try, which only asks whether the install step runs, so it stops as that step starts.
        """
        changed = ctx.spec.code_change
        copy = ctx.copy_of_submission(name)
        target = copy / changed
        if not target.is_file():
            return Outcome.failed(
                f"{changed} is missing, so the grader cannot make a code-only change",
                hint=f"Keep the app's code at {changed}, as the lab hands it out.",
            )
        with target.open("a") as f:
            # Unique per session and try: an earlier rebuild must not serve this one from its cache.
            f.write(f"\n# a code-only change made by the grader ({name}, session {ctx.engine.session})\n")
        # Without a rebuild budget only the install step's fate is asked: build up to it, not the training and
        # the rest after it, and stop as soon as it starts to run (its layer then cannot come from the cache).
        cut = ctx.spec.budgets.rebuild_s is None and _cut_at_install(ctx, copy)
        stop_when = install_reruns(ctx.spec.install_step) if cut or again else None
        # Cut to the install step, the rebuild's image holds the lab's dependencies alone: worth keeping.
        return ctx.side_build(copy, name, stop_when=stop_when, keep=cut)

    @classmethod
    def rebuild_with_cache_restored(cls, ctx: CheckContext) -> BuildResult | Outcome:
        """Build the unchanged submission again, then a second code-only change.

        BuildKit's garbage collection may drop the first build's cache while the grade runs (it runs about a
        minute after builds, more eagerly on a full disk or a busy engine), and the rebuild then re-runs the
        install whatever the Dockerfile's order. Building the unchanged copy makes that cache again (from the
        cache itself, in a second, when nothing was dropped); the second change then answers for the order.
        """
        unchanged = ctx.copy_of_submission("unchanged")
        if ctx.spec.budgets.rebuild_s is None:
            _cut_at_install(ctx, unchanged)
        ctx.side_build(unchanged, "unchanged")
        return cls.rebuild(ctx, "code-change-again", again=True)

    def run(self, ctx: CheckContext) -> Outcome:
        marker, changed = ctx.spec.install_step, ctx.spec.code_change
        ctx.image()  # the first build must have worked
        if ctx.build().last_step_with(marker) is None:
            return Outcome.failed(
                f"no step of the Dockerfile runs `{marker}`",
                hint=f"Install the dependencies in their own RUN step with `{marker}`.",
            )
        with ctx.progress.step(f"Rebuilding after a change to {changed}"):
            rebuilt = ctx.in_background(REBUILD, lambda: self.rebuild(ctx)).result()
        notes = []
        if isinstance(rebuilt, BuildResult) and _reran(rebuilt, marker):
            with ctx.progress.step("The install ran again: rebuilding once more, in case the engine dropped its cache"):
                again = self.rebuild_with_cache_restored(ctx)
            if isinstance(again, BuildResult) and not _reran(again, marker):
                notes.append(
                    f"The first rebuild re-ran `{marker}`, but not the second: the engine had dropped the first "
                    "build's cache in between (BuildKit's garbage collection), so the grader built your unchanged "
                    f"files again and made a second change to {changed}."
                )
                rebuilt = again
        if isinstance(rebuilt, Outcome):
            return rebuilt
        ctx.timings["rebuild_s"] = round(rebuilt.seconds, 2)
        # BuildKit's own record of the rebuild decides: the install step CACHED, or run again.
        steps = "\n".join([*notes, rebuilt.summary()])
        if rebuilt.stopped:
            return Outcome.failed(
                f"changing only {changed} re-ran `{marker}` (the grader stopped the rebuild as that step started)",
                evidence=steps,
            )
        if not rebuilt.ok:
            return Outcome.failed(f"the rebuild failed: {rebuilt.error}", evidence=rebuilt.log_tail())
        if _reran(rebuilt, marker):
            return Outcome.failed(
                f"changing only {changed} re-ran `{marker}` (rebuild took {rebuilt.seconds:.1f}s)", evidence=steps
            )
        budget = ctx.spec.budgets.rebuild_s
        if budget is None:
            return Outcome.passed(f"`{marker}` step CACHED after a change to {changed}", evidence=steps)
        if rebuilt.seconds > budget:
            return Outcome.failed(
                f"the install step was CACHED, but the rebuild took {rebuilt.seconds:.1f}s (budget {budget:.0f}s)",
                hint="Move slow steps before the code is copied.",
                evidence=steps,
            )
        return Outcome.passed(f"`{marker}` step CACHED; rebuild took {rebuilt.seconds:.1f}s", evidence=steps)
