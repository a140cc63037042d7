"""Production hardening: a fixed numeric user, pinned requirements, no secrets baked in, a read-only root
file system, a clean stop on SIGTERM, a production web server, and logs on stdout."""

from __future__ import annotations

import posixpath
import re
import time

import docker.errors
import requests

from grader.checks.api import running_commands
from grader.checks.base import Check, Outcome, register
from grader.checks.filesystem import image_entries
from grader.checks.http import call, describe, json_or_none
from grader.readiness import wait_until_answers

NUMERIC_USER = re.compile(r"^\d+(:\d+)?$")
# A requirement pinned to one exact version: name[extras]==1.2.3 (or ===), no wildcard.
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s*,;]+(\s*;.*)?$")
MAX_SCANNED_BYTES = 2 << 20  # larger files (wheels, models) are not where a planted secret hides


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

    def run(self, ctx) -> Outcome:
        user = ctx.image_config()["Config"].get("User") or ""
        if is_numeric_user(user):
            return Outcome.passed(f"USER {user}")
        shown = f"USER {user}" if user else "no USER line (root)"
        return Outcome.failed(
            f"{shown}: not a numeric UID, so a platform cannot verify that it is not root "
            "(Kubernetes runAsNonRoot refuses a named user)"
        )


# --- RequirementsPinned ----------------------------------------------------------------------------


def unpinned_requirements(text: str) -> list[str]:
    """The requirement lines of a requirements.txt that are not pinned to one exact version with ==."""
    found = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):  # comments, -r, --hash options...
            continue
        if not PINNED.match(line):
            found.append(line)
    return found


@register
class RequirementsPinned(Check):
    name = "RequirementsPinned"
    category = "image"
    title = "Every requirement is pinned with =="
    hint = (
        "Pin every package to the exact version you tested, e.g. flask==3.1.3 (pip freeze in a working "
        "environment prints them). Without a pin, next month's rebuild installs whatever is newest."
    )
    default_params = {"files": ["requirements.txt"]}

    def run(self, ctx) -> Outcome:
        lines, missing = [], []
        for rel in self.params["files"]:
            path = ctx.submission / rel
            if not path.is_file():
                missing.append(rel)
                continue
            lines += [f"{rel}: {line}" for line in unpinned_requirements(path.read_text(errors="replace"))]
        if missing:
            return Outcome.failed(f"no {', '.join(missing)} in the submission", hint="Keep the requirements file.")
        if lines:
            return Outcome.failed(f"{len(lines)} requirement(s) not pinned with ==", evidence="\n".join(lines))
        return Outcome.passed(f"every requirement in {', '.join(self.params['files'])} is pinned")


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
    default_params = {
        "patterns": [r"sk-live-[A-Za-z0-9]+", r"BEGIN (RSA |EC |OPENSSH |)PRIVATE KEY"],
        "paths": ["/app"],
    }

    def run(self, ctx) -> Outcome:
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


# --- ReadOnlyRootFilesystem ------------------------------------------------------------------------


@register
class ReadOnlyRootFilesystem(Check):
    name = "ReadOnlyRootFilesystem"
    category = "runtime"
    title = "Works with a read-only root file system"
    hint = (
        "Run it yourself: docker run --read-only --tmpfs /tmp -p 127.0.0.1:5000:5000 IMAGE. "
        "Write nothing into the image at run time: logs go to stdout, temporary files to /tmp."
    )
    default_params = {"tmpfs": ["/tmp"]}

    def run(self, ctx) -> Outcome:
        service = ctx.service()  # the normal service must work first; its network is reused
        network = service.container.attrs["HostConfig"]["NetworkMode"]
        extra = {"read_only": True, "tmpfs": {path: "" for path in self.params["tmpfs"]}}
        try:
            container = ctx.engine.start_service(
                ctx.image(), ctx.spec.port, ctx.spec.limits, network, None, name="readonly", extra=extra
            )
        except docker.errors.APIError as err:
            return Outcome.failed(f"the engine could not start a read-only container: {err.explanation or err}")
        try:
            port = ctx.engine.host_port(container, ctx.spec.port)
            if port is None:
                return self.failure(ctx, container, "the read-only container stopped before its port was published")
            base = f"http://127.0.0.1:{port}"
            waited = wait_until_answers(
                base + ctx.spec.ready_path, lambda: ctx.engine.state(container), ctx.spec.budgets.ready_s
            )
            if not waited.ok:
                return self.failure(ctx, container, f"with a read-only root it never answered ({waited.reason})")
            predict = ctx.spec.http["predict"]
            case = predict["cases"][0]
            reply = call(base, case, predict["path"])
            body = json_or_none(reply) or {}
            if reply.status_code == 200 and all(body.get(k) == v for k, v in case["expect"].items()):
                tmp = ", ".join(self.params["tmpfs"])
                return Outcome.passed(f"answered and predicted {case['name']} with a read-only root (tmpfs {tmp})")
            return self.failure(ctx, container, f"with a read-only root, {predict['path']} gave {describe(reply)}")
        finally:
            container.remove(force=True)

    def failure(self, ctx, container, message: str) -> Outcome:
        logs = ctx.engine.logs_tail(container)
        # A long traceback can push the telling line out of the tail: look for it in the whole log.
        denied = [line for line in ctx.engine.logs_tail(container, 500).splitlines() if "Read-only file system" in line]
        hint = None
        if denied:
            logs = f"{denied[0].strip()}\n...\n{logs}"
            tmp = ", ".join(self.params["tmpfs"])
            hint = (
                "The app writes into the image's file system at run time (the log above names the file). "
                f"Log to stdout instead of a file, and write temporary files only under {tmp}."
            )
        return Outcome.failed(message, evidence=logs, hint=hint)


# --- ProductionServer ------------------------------------------------------------------------------


def servers_running(commands: list[list[str]], servers: list[str]) -> list[str]:
    """The names in `servers` that some command runs, as a program or as `python -m NAME`."""
    found = []
    for args in commands:
        for i, arg in enumerate(args):
            name = posixpath.basename(arg)
            if (name in servers or (i > 0 and args[i - 1] == "-m" and arg in servers)) and name not in found:
                found.append(name)
    return found


@register
class ProductionServer(Check):
    name = "ProductionServer"
    category = "runtime"
    title = "Served by a production web server"
    hint = (
        "Flask's app.run() is a development server (one process, warns 'Do not use it in a production "
        'deployment\'). Serve the app with gunicorn: CMD ["gunicorn", "--bind", "0.0.0.0:5000", '
        '"--workers", "2", "app:app"] (add gunicorn, pinned, to requirements.txt).'
    )
    default_params = {"servers": ["gunicorn", "uvicorn"]}

    def run(self, ctx) -> Outcome:
        service = ctx.service()
        commands, where = running_commands(ctx, service)
        shown = "\n".join(" ".join(args) for args in commands)
        found = servers_running(commands, list(self.params["servers"]))
        if found:
            return Outcome.passed(f"served by {', '.join(found)} ({where})", evidence=shown)
        return Outcome.failed(f"no {' or '.join(self.params['servers'])} process in {where}", evidence=shown)


# --- LogsToStdout ----------------------------------------------------------------------------------


@register
class LogsToStdout(Check):
    name = "LogsToStdout"
    category = "runtime"
    title = "Request logs go to stdout (docker logs)"
    hint = (
        "Log to stdout/stderr, not to a file in the container: `docker logs` and every log collector read "
        "only those. gunicorn logs requests only with --access-logfile - ; with Python's logging, use a "
        "StreamHandler (logging.basicConfig(stream=sys.stdout)) instead of filename=..."
    )
    default_params = {"pattern": r'"(GET|POST) /\S* HTTP/1\.[01]" \d{3}'}

    def run(self, ctx) -> Outcome:
        service = ctx.service()
        requests.get(service.base_url + ctx.spec.ready_path, timeout=10)  # at least one request to log
        pattern = re.compile(self.params["pattern"])
        deadline = time.monotonic() + 3  # a log line may reach the engine a moment after the answer
        while True:
            logs = service.container.logs().decode(errors="replace")
            lines = [line for line in logs.splitlines() if pattern.search(line)]
            if lines or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if lines:
            return Outcome.passed(f"{len(lines)} request line(s) in docker logs", evidence="\n".join(lines[-3:]))
        tail = "\n".join(logs.splitlines()[-10:]) or "(docker logs is empty)"
        return Outcome.failed("docker logs shows no request line after the HTTP checks", evidence=tail)


# --- StopsOnSigterm --------------------------------------------------------------------------------


@register
class StopsOnSigterm(Check):
    name = "StopsOnSigterm"
    category = "runtime"
    title = "Stops cleanly on SIGTERM (docker stop)"
    hint = (
        "`docker stop` sends SIGTERM to PID 1 and kills it after the grace period. Write CMD in exec form "
        '(a JSON list, e.g. CMD ["gunicorn", ...]) so the server itself is PID 1, not a /bin/sh that does '
        "not pass the signal on; gunicorn and uvicorn stop gracefully on SIGTERM (a bare Python program "
        "as PID 1 needs a SIGTERM handler)."
    )
    default_params = {"grace_s": 5}

    def run(self, ctx) -> Outcome:
        service = ctx.service()
        grace = self.params["grace_s"]
        started = time.monotonic()
        service.container.stop(timeout=grace)
        seconds = time.monotonic() - started
        code = ctx.engine.state(service.container).get("ExitCode")
        logs = ctx.engine.logs_tail(service.container, 10)
        if code == 137 or seconds >= grace:
            return Outcome.failed(
                f"did not stop on SIGTERM: killed after the {grace}s grace period (exit code {code})", evidence=logs
            )
        return Outcome.passed(f"stopped {seconds:.1f}s after SIGTERM (exit code {code})")
