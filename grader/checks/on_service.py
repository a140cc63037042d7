"""Checks of the running service container: it comes up, its HEALTHCHECK says so, it runs a production server
without development flags, logs to stdout, stops on SIGTERM, and works with a read-only root file system."""

from __future__ import annotations

import posixpath
import re
import time

import docker.errors
import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import PrerequisiteFailed
from grader.http_probe import call, describe, json_or_none
from grader.processes import running_commands
from grader.readiness import wait_until_answers, wait_until_healthy

LISTEN = "0A"  # the TCP state code for LISTEN in /proc/net/tcp
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as the kernel writes them
# Docker's embedded DNS server listens inside every container on a user-defined network (127.0.0.11).
DOCKER_DNS = "0B00007F"


def listening_sockets(proc_net_tcp: str) -> list[tuple[str, int]]:
    """(address, port) of every listening socket in the text of /proc/net/tcp and /proc/net/tcp6."""
    found = []
    for line in proc_net_tcp.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3] == LISTEN and ":" in parts[1]:
            address, port = parts[1].split(":")
            if address == DOCKER_DNS:
                continue
            found.append(
                ("loopback" if address in LOOPBACK else "all" if set(address) == {"0"} else address, int(port, 16))
            )
    return found


def diagnose_not_listening(sockets: list[tuple[str, int]], port: int) -> tuple[str, str]:
    """A message and a hint for a service that never answered, from what it listens on."""
    on_port = [addr for addr, p in sockets if p == port]
    if "loopback" in on_port:
        return (
            f"the app listens on 127.0.0.1:{port} inside the container, which nothing outside it can reach",
            f"Bind to all interfaces: host='0.0.0.0' (Flask: app.run(host='0.0.0.0', port={port})). "
            "Inside a container, 127.0.0.1 is the container's own loopback, not your machine's.",
        )
    if on_port:
        return (
            f"the app listens on port {port} but did not answer in time",
            "Start-up is too slow or the first request hangs: move slow work to build time.",
        )
    others = sorted({p for _, p in sockets})
    if others:
        return (
            f"the app listens on port(s) {', '.join(map(str, others))}, not on {port}",
            f"Make the app listen on port {port}, the port the lab publishes.",
        )
    return (
        "nothing in the container listens on any TCP port",
        "Check that CMD starts the web server (not only imports the app), and read the log above.",
    )


@register
class ServiceBecomesReady(Check):
    name = "ServiceBecomesReady"
    category = "runtime"
    title = "Service starts and answers"
    hint = "Run the image yourself (docker run --rm -p 127.0.0.1:5000:5000 IMAGE) and read what it prints."

    def after_build(self, ctx: CheckContext) -> None:
        # The service starts while the image checks run: its start-up no longer adds to the grade's time.
        ctx.start_service_early()

    def run(self, ctx: CheckContext) -> Outcome:
        service = ctx.start_service()
        ready, budget, port = service.ready, ctx.spec.budgets.ready_s, ctx.spec.port
        logs = ctx.service_logs()
        if ready.ok:
            if ready.seconds <= budget:
                return Outcome.passed(f"answered on {ctx.spec.ready_path} {ready.seconds:.1f}s after start")
            return Outcome.failed(
                f"answered only after {ready.seconds:.1f}s (budget {budget:.0f}s)",
                logs,
                hint="Do slow work (training, downloads) at build time, not at start.",
            )
        if ready.reason == "not started":
            return Outcome.failed(
                f"the engine could not start the container: {ready.detail}",
                hint="CMD or ENTRYPOINT must name a program that exists in the image (check the spelling and "
                'the path), written as a JSON list, e.g. CMD ["python", "app.py"].',
            )
        if ready.reason == "exited":
            return Outcome.failed(
                f"the container stopped right after starting ({ready.detail})",
                evidence=logs,
                hint="The app crashed at start: the log above says why. Run the image yourself to try a fix.",
            )
        code, text = ctx.engine.exec(service.container, ["cat", "/proc/net/tcp", "/proc/net/tcp6"])
        message, hint = diagnose_not_listening(listening_sockets(text), port)
        return Outcome.failed(f"no answer on port {port} within {budget:.0f}s: {message}", evidence=logs, hint=hint)


@register
class HealthcheckHealthy(Check):
    name = "HealthcheckHealthy"
    category = "runtime"
    title = "HEALTHCHECK reports healthy"
    hint = (
        "Make the HEALTHCHECK command work inside the image: run it with "
        "`docker exec CONTAINER <command>` and fix what it prints."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        if not ctx.healthcheck():
            raise PrerequisiteFailed("skipped: the image declares no HEALTHCHECK (see that check)")
        service = ctx.service()
        budget = ctx.spec.budgets.healthy_s
        waited = wait_until_healthy(lambda: ctx.engine.state(service.container), budget - service.ready.seconds)
        if waited.ok:
            return Outcome.passed(f"healthy {service.ready.seconds + waited.seconds:.1f}s after start")
        log = ctx.engine.view(service.container).health_log
        outputs = "\n".join(f"exit {e.get('ExitCode')}: {e.get('Output', '').strip()}" for e in log[-3:])
        hint = None
        if any(marker in outputs for marker in ("not found", "No such file", "executable file not found")):
            hint = (
                "The HEALTHCHECK calls a program the image does not have (slim images have no curl or wget). "
                'Use Python, which the image has: HEALTHCHECK CMD ["python", "-c", "import urllib.request; '
                f"urllib.request.urlopen('http://127.0.0.1:{ctx.spec.port}{ctx.spec.ready_path}', timeout=2)\"]"
            )
        status = "unhealthy" if waited.reason == "unhealthy" else f"not healthy within {budget:.0f}s ({waited.detail})"
        return Outcome.failed(f"the HEALTHCHECK reports {status}", evidence=outputs or "no health log", hint=hint)


# --- NoDevServerFlags ------------------------------------------------------------------------------


def dev_flags(commands: list[list[str]], forbidden: list[str]) -> list[tuple[str, list[str]]]:
    """(flag, command) for each forbidden flag (`--reload`, or `--reload=...`) in a command line."""
    hits = []
    for args in commands:
        for arg in args:
            for flag in forbidden:
                if arg == flag or arg.startswith(flag + "="):
                    hits.append((flag, args))
    return hits


@register
class NoDevServerFlags(Check):
    name = "NoDevServerFlags"
    category = "runtime"
    title = "The server runs without development flags (--reload, --debug)"
    hint = (
        "Remove --reload from the server command: it watches the code and restarts the server when a file "
        "changes, which is for your laptop. In an image the code never changes; the watcher only costs CPU "
        "and memory, runs your app in a second process, and a restart drops requests. "
        'Write e.g. CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"].'
    )
    default_params = {"forbidden": ["--reload", "--debug"]}

    def run(self, ctx: CheckContext) -> Outcome:
        service = ctx.service()
        commands, where = running_commands(ctx.engine, service.container, ctx.image_config())
        hits = dev_flags(commands, list(self.params["forbidden"]))
        shown = "\n".join(" ".join(args) for args in commands)
        if hits:
            flags = sorted({flag for flag, _ in hits})
            return Outcome.failed(f"the server runs with {', '.join(flags)} ({where})", evidence=shown)
        return Outcome.passed(f"no {', '.join(self.params['forbidden'])} in {where}", evidence=shown)


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

    def run(self, ctx: CheckContext) -> Outcome:
        service = ctx.service()  # the normal service must work first; its network is reused
        network = ctx.engine.view(service.container).network_mode
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

    def failure(self, ctx: CheckContext, container, message: str) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
        service = ctx.service()
        commands, where = running_commands(ctx.engine, service.container, ctx.image_config())
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

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
        service = ctx.service()
        grace = self.params["grace_s"]
        started = time.monotonic()
        service.container.stop(timeout=grace)
        seconds = time.monotonic() - started
        code = ctx.engine.view(service.container).exit_code
        logs = ctx.engine.logs_tail(service.container, 10)
        if code == 137 or seconds >= grace:
            return Outcome.failed(
                f"did not stop on SIGTERM: killed after the {grace}s grace period (exit code {code})", evidence=logs
            )
        return Outcome.passed(f"stopped {seconds:.1f}s after SIGTERM (exit code {code})")
