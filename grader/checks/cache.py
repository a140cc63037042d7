"""Layer caching: a code-only change must not reinstall the dependencies."""

from __future__ import annotations

from grader.checks.base import Check, Outcome, register
from grader.dockerfile import dockerfile_instructions, up_to_final_run_with
from grader.engine import build_steps, last_cached_layer

REBUILD = "code-change rebuild"


def install_layer(history: list[dict], marker: str) -> str | None:
    """The id of the newest layer whose instruction contains `marker` (e.g. 'pip install')."""
    for entry in history:  # newest first
        if marker in (entry.get("CreatedBy") or ""):
            return entry["Id"]
    return None


def step_used_cache(build_log: list[str], marker: str) -> bool:
    """Whether the builder reported 'Using cache' for the newest step containing `marker`.

    Engines with the containerd image store report '<missing>' for every intermediate layer id,
    so there the builder's own report of the step is the evidence.
    """
    matching = [step for step in build_steps(build_log) if marker in step.instruction]
    return bool(matching) and matching[-1].cached


def when_step_runs(number: int):
    """A `stop_when` for Engine.build: true once step `number` of a classic build runs instead of coming from cache."""
    current = 0

    def stop(line: str) -> bool:
        nonlocal current
        if line.startswith("Step "):
            current = int(line.split()[1].split("/")[0])
        return current == number and line.startswith(" ---> Running in")

    return stop


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

    def after_build(self, ctx) -> None:
        # The rebuild only needs the first build's cache, so it runs while the service is checked.
        ctx.in_background(REBUILD, lambda: self.rebuild(ctx))

    @staticmethod
    def rebuild(ctx):
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
                stop_when = when_step_runs(len(dockerfile_instructions(cut)))
        rebuilt = ctx.build_from(copy, "rebuild", title=None, stop_when=stop_when)
        # What a code change kept is what the next submission can reuse: the grade keeps only that as cache.
        ctx.reusable_layer = last_cached_layer(rebuilt.log)
        return rebuilt

    def run(self, ctx) -> Outcome:
        marker, changed = ctx.spec.install_step, ctx.spec.code_change
        first = install_layer(ctx.engine.history(ctx.image()), marker)
        if first is None:
            return Outcome.failed(
                f"no layer of the image runs `{marker}`",
                hint=f"Install the dependencies in their own RUN step with `{marker}`.",
            )
        with ctx.progress.step(f"Rebuilding after a change to {changed}"):
            rebuilt = ctx.in_background(REBUILD, lambda: self.rebuild(ctx)).result()
        if isinstance(rebuilt, Outcome):
            return rebuilt
        ctx.timings["rebuild_s"] = round(rebuilt.seconds, 2)
        steps = "\n".join(line for line in rebuilt.log if line.startswith("Step ") or "Using cache" in line)
        if rebuilt.stopped:
            return Outcome.failed(
                f"changing only {changed} re-ran `{marker}` (the grader stopped the rebuild as that step started)",
                evidence=steps,
            )
        if not rebuilt.ok:
            return Outcome.failed(f"the rebuild failed: {rebuilt.error}", evidence=rebuilt.log_tail())
        second = install_layer(ctx.engine.history(rebuilt.image_id), marker)
        budget = ctx.spec.budgets.rebuild_s
        reused = second == first if first != "<missing>" else step_used_cache(rebuilt.log, marker)
        if not reused:
            return Outcome.failed(
                f"changing only {changed} re-ran `{marker}` (rebuild took {rebuilt.seconds:.1f}s)", evidence=steps
            )
        if budget is None:
            return Outcome.passed(f"`{marker}` layer reused after a change to {changed}")
        if rebuilt.seconds > budget:
            return Outcome.failed(
                f"the install layer was reused, but the rebuild took {rebuilt.seconds:.1f}s (budget {budget:.0f}s)",
                hint="Move slow steps before the code is copied.",
            )
        return Outcome.passed(f"`{marker}` layer reused; rebuild took {rebuilt.seconds:.1f}s")
