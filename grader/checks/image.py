"""Checks of the built image: the build itself and what its configuration declares."""

from __future__ import annotations

from grader.checks.base import Check, Outcome, register
from grader.engine_facts import UPGRADE, too_old_for


@register
class ImageBuilds(Check):
    name = "ImageBuilds"
    category = "build"
    title = "Image builds"
    hint = "Read the last lines of the build log above: they name the step that failed. Fix it and build again."

    def run(self, ctx) -> Outcome:
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
class NonRootUser(Check):
    name = "NonRootUser"
    category = "security"
    title = "Runs as a non-root user"
    hint = (
        "Create a user with a fixed UID and switch to it before CMD, e.g.\n"
        "  RUN useradd --uid 10001 --create-home app\n  USER 10001"
    )

    def run(self, ctx) -> Outcome:
        # Ask the image itself: a USER line naming root, or no USER line at all, both mean uid 0.
        for _ in range(2):  # a container's output can come back empty under load: ask once more
            code, out = ctx.engine.run_once(ctx.image(), ["id", "-u"])
            if code != 0 or out.split():
                break
        declared = ctx.image_config()["Config"].get("User") or "(no USER line)"
        if code != 0:
            return Outcome.failed(
                f"could not start a process as USER {declared}",
                evidence=out,
                hint="The USER line names a user that does not exist in the image: create it first.",
            )
        if not out.split():
            raise RuntimeError("`id -u` printed nothing twice: the engine returned no output")
        uid = int(out.split()[-1])
        if uid == 0:
            return Outcome.failed(f"processes run as root (uid 0); USER is {declared}")
        return Outcome.passed(f"processes run as uid {uid} (USER {declared})")


@register
class HealthcheckDefined(Check):
    name = "HealthcheckDefined"
    category = "image"
    title = "Image declares a HEALTHCHECK"
    hint = (
        "Add a HEALTHCHECK that uses only what the image has (python:3.11-slim has no curl), e.g.\n"
        '  HEALTHCHECK CMD ["python", "-c", "import urllib.request; '
        "urllib.request.urlopen('http://127.0.0.1:5000/health', timeout=2)\"]"
    )

    def run(self, ctx) -> Outcome:
        declared = ctx.healthcheck()
        if not declared:
            return Outcome.failed("the image declares no HEALTHCHECK")
        return Outcome.passed("HEALTHCHECK declared", evidence=" ".join(declared["Test"]))


@register
class PortExposed(Check):
    name = "PortExposed"
    category = "image"
    title = "Service port is EXPOSEd"
    hint = "Document the port the app listens on with EXPOSE, e.g. EXPOSE 5000."

    def run(self, ctx) -> Outcome:
        exposed = sorted(ctx.image_config()["Config"].get("ExposedPorts") or {})
        want = f"{ctx.spec.port}/tcp"
        if want in exposed:
            return Outcome.passed(f"EXPOSE {ctx.spec.port}")
        return Outcome.failed(f"port {ctx.spec.port} is not exposed (exposed: {', '.join(exposed) or 'none'})")


@register
class ExecFormCommand(Check):
    name = "ExecFormCommand"
    category = "image"
    title = "CMD/ENTRYPOINT in exec form"
    hint = (
        'Write CMD as a JSON list, e.g. CMD ["python", "app.py"]. The shell form runs your app under '
        "/bin/sh, which does not pass on SIGTERM, so `docker stop` has to kill it after 10 seconds."
    )

    def run(self, ctx) -> Outcome:
        config = ctx.image_config()["Config"]
        for key in ("Entrypoint", "Cmd"):
            value = config.get(key) or []
            if value[:2] == ["/bin/sh", "-c"]:
                return Outcome.failed(f"{key.upper()} is in shell form", evidence=" ".join(value))
        command = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
        return Outcome.passed("exec form", evidence=str(command))


@register
class ImageSizeBudget(Check):
    name = "ImageSizeBudget"
    category = "image"
    title = "Image size within budget"
    hint = (
        "Start from a slim base, add --no-cache-dir to pip install, and keep data, notebooks and "
        "virtualenvs out with .dockerignore."
    )

    def run(self, ctx) -> Outcome:
        size_mb = ctx.image_size() / 1e6  # the layers as uncompressed tars: the same on every image store
        budget = ctx.spec.budgets.image_size_mb
        if size_mb <= budget:
            return Outcome.passed(f"{size_mb:.0f} MB (budget {budget:.0f} MB)")
        return Outcome.failed(f"{size_mb:.0f} MB is over the budget of {budget:.0f} MB")
