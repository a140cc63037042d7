"""Checks of the built image: what its configuration declares (user, port, command, HEALTHCHECK) and its size."""

from __future__ import annotations

import re

from grader.buildkit import BuildResult
from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext

NUMERIC_USER = re.compile(r"^\d+(:\d+)?$")


UID_PROBE = "id -u"  # the background job of NonRootUser


@register
class NonRootUser(Check):
    name = "NonRootUser"
    category = "security"
    title = "Runs as a non-root user"
    hint = (
        "Create a user with a fixed UID and switch to it before CMD, e.g.\n"
        "  RUN useradd --uid 10001 --create-home app\n  USER 10001"
    )

    def after_build(self, ctx: CheckContext) -> None:
        # A container of its own answers `id -u`: it runs while the service starts and the size is measured.
        ctx.in_background(UID_PROBE, lambda: self.ask_uid(ctx))

    @staticmethod
    def ask_uid(ctx: CheckContext) -> tuple[int, str]:
        # Ask the image itself: a USER line naming root, or no USER line at all, both mean uid 0.
        for _ in range(2):  # a container's output can come back empty under load: ask once more
            code, out = ctx.engine.run_once(ctx.image(), ["id", "-u"])
            if code != 0 or out.split():
                break
        return code, out

    def run(self, ctx: CheckContext) -> Outcome:
        code, out = ctx.in_background(UID_PROBE, lambda: self.ask_uid(ctx)).result()
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

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
        size_mb = ctx.image_size() / 1e6  # the layers as uncompressed tars: the same on every image store
        budget = ctx.spec.budgets.image_size_mb
        if size_mb <= budget:
            return Outcome.passed(f"{size_mb:.0f} MB (budget {budget:.0f} MB)")
        return Outcome.failed(f"{size_mb:.0f} MB is over the budget of {budget:.0f} MB")


# --- ExplicitNumericUser ---------------------------------------------------------------------------


def is_numeric_user(user: str) -> bool:
    """True for USER 10001 or 10001:10001, the forms a platform can check without the image's /etc/passwd."""
    return bool(NUMERIC_USER.match(user.strip()))


@register
class ExplicitNumericUser(Check):
    name = "ExplicitNumericUser"
    category = "security"
    title = "USER names a numeric UID"
    hint = (
        "Write the user as a number: USER 10001:10001 (after creating it: "
        "RUN groupadd --gid 10001 app && useradd --uid 10001 --gid app --no-create-home app)."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        user = ctx.image_config()["Config"].get("User") or ""
        if is_numeric_user(user):
            return Outcome.passed(f"USER {user}")
        shown = f"USER {user}" if user else "no USER line (root)"
        return Outcome.failed(
            f"{shown}: not a numeric UID, so a platform cannot verify that it is not root "
            "(Kubernetes runAsNonRoot refuses a named user)"
        )


# --- ImageSizeRelativeBudget -----------------------------------------------------------------------

NAIVE_BUILD = "naive single-stage build"


def size_ratio_outcome(size: int, naive_size: int, max_ratio: float, naive_name: str) -> Outcome:
    """Pass when `size` is at most `max_ratio` times `naive_size` (both in bytes)."""
    ratio, mine, naive = size / naive_size, f"{size / 1e6:.0f} MB", f"{naive_size / 1e6:.0f} MB"
    sizes = f"your image {mine}, {naive_name} {naive}: ratio {ratio:.2f} (at most {max_ratio:.2f})"
    if ratio <= max_ratio:
        return Outcome.passed(
            f"{mine}, {ratio:.0%} of the naive build's {naive} (at most {max_ratio:.0%})",
            evidence=sizes,
        )
    if ratio >= 1:
        return Outcome.failed(
            f"your image is no smaller than the naive single-stage build ({ratio:.0%} of its size)",
            sizes,
            hint=(
                "Your final image carries everything the naive build does (or more). Start the final stage FROM "
                "python:3.11-slim and copy only what the service needs from the builder, e.g. "
                "COPY --from=builder /opt/venv /opt/venv, never the builder's whole filesystem "
                "(COPY --from=builder / /)."
            ),
        )
    return Outcome.failed(f"your image is {ratio:.0%} of the naive build's size, over {max_ratio:.0%}", sizes)


@register
class ImageSizeRelativeBudget(Check):
    name = "ImageSizeRelativeBudget"
    category = "image"
    title = "Image much smaller than the naive single-stage build"
    hint = (
        "Build the dependencies in a builder stage and start the final stage FROM python:3.11-slim, copying only "
        "the installed packages (COPY --from=builder /opt/venv /opt/venv). Keep pip's cache out (--no-cache-dir) "
        "and see which layer is big with `docker history IMAGE`."
    )
    default_params = {"max_ratio": 0.6}
    required_params = {
        "naive_dockerfile": "the lab's naive single-stage Dockerfile to compare with, e.g. Dockerfile.naive"
    }

    def after_build(self, ctx: CheckContext) -> None:
        # The naive build needs nothing from the checks that follow: it runs while they do.
        ctx.in_background(NAIVE_BUILD, lambda: self.build_naive(ctx))

    def build_naive(self, ctx: CheckContext) -> BuildResult | Outcome:
        """Build the lab's naive Dockerfile on a copy of the submission; an Outcome if that cannot start."""
        name = self.params["naive_dockerfile"]
        copy = ctx.copy_of_submission("naive")
        # The lab's own copy when there is one, so that editing the file in a submission changes nothing.
        official = ctx.spec.path / name
        source = official if official.is_file() else copy / name
        if not source.is_file():
            return Outcome.failed(
                f"{name} is missing, so the grader has nothing to compare your image with",
                hint=f"Keep {name} as the lab hands it out, next to your Dockerfile.",
            )
        (copy / ctx.spec.dockerfile).write_text(source.read_text())
        return ctx.side_build(copy, "naive")

    def run(self, ctx: CheckContext) -> Outcome:
        size = ctx.image_size()
        name = self.params["naive_dockerfile"]
        with ctx.progress.step(f"Building {name} to compare sizes"):
            naive = ctx.in_background(NAIVE_BUILD, lambda: self.build_naive(ctx)).result()
        if isinstance(naive, Outcome):
            return naive
        ctx.timings["naive_build_s"] = round(naive.seconds, 2)
        if not naive.ok:
            return Outcome.failed(
                f"the grader could not build {name} from your folder to compare sizes: {naive.error}",
                evidence=naive.log_tail(),
                hint=(
                    f"{name} builds the same app/ folder in a single stage: keep app/requirements.txt and the "
                    f"app installable that way, and {name} as handed out."
                ),
            )
        naive_size = ctx.image_size(naive.image_id)
        return size_ratio_outcome(size, naive_size, float(self.params["max_ratio"]), name)
