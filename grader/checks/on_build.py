"""Checks of the build itself: the image builds, and a code-only change reuses the dependency layer."""

from __future__ import annotations

from grader.buildkit import BuildResult
from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.dockerfile import up_to_final_run_with
from grader.engine_facts import UPGRADE, too_old_for

REBUILD = "code-change rebuild"


def install_reruns(marker: str):
    """A `stop_when` for a build: true once a step running `marker` starts to run instead of coming from cache."""
    return lambda step: step.ran and marker in (step.instruction or "")


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
    def rebuild(ctx: CheckContext) -> BuildResult | Outcome:
        """Rebuild a copy of the submission with one line of code changed; an Outcome if that cannot be done."""
        changed = ctx.spec.code_change
        copy = ctx.copy_of_submission("code-change")
        target = copy / changed
        if not target.is_file():
            return Outcome.failed(
                f"{changed} is missing, so the grader cannot make a code-only change",
                hint=f"Keep the app's code at {changed}, as the lab hands it out.",
            )
        with target.open("a") as f:
            # Unique per session: an earlier grade's rebuild must not serve this one from its cache.
            f.write(f"\n# a code-only change made by the grader (session {ctx.engine.session})\n")
        stop_when = None
        if ctx.spec.budgets.rebuild_s is None:
            # Only the install step's fate is asked: build up to it, not the training and the rest after it,
            # and stop as soon as that step starts to run again (its layer then cannot come from the cache).
            dockerfile = copy / ctx.spec.dockerfile
            text = dockerfile.read_text(errors="replace") if dockerfile.is_file() else ""
            cut = up_to_final_run_with(text, ctx.spec.install_step)
            if cut is not None and not dockerfile.is_symlink():
                dockerfile.write_text(cut)
                stop_when = install_reruns(ctx.spec.install_step)
        # Cut to the install step, the rebuild's image holds the lab's dependencies alone: worth keeping.
        return ctx.side_build(copy, "rebuild", stop_when=stop_when, keep=stop_when is not None)

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
        if isinstance(rebuilt, Outcome):
            return rebuilt
        ctx.timings["rebuild_s"] = round(rebuilt.seconds, 2)
        # BuildKit's own record of the rebuild decides: the install step CACHED, or run again.
        steps = rebuilt.summary()
        if rebuilt.stopped:
            return Outcome.failed(
                f"changing only {changed} re-ran `{marker}` (the grader stopped the rebuild as that step started)",
                evidence=steps,
            )
        if not rebuilt.ok:
            return Outcome.failed(f"the rebuild failed: {rebuilt.error}", evidence=rebuilt.log_tail())
        install = rebuilt.last_step_with(marker)
        if install is None or not install.cached:
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
