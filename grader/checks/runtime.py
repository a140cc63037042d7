"""Checks of the running container: does it come up, and does its own HEALTHCHECK say so."""

from __future__ import annotations

from grader.checks.base import Check, Outcome, register
from grader.errors import PrerequisiteFailed
from grader.readiness import wait_until_healthy

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

    def run(self, ctx) -> Outcome:
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

    def run(self, ctx) -> Outcome:
        if not ctx.healthcheck():
            raise PrerequisiteFailed("skipped: the image declares no HEALTHCHECK (see that check)")
        service = ctx.service()
        budget = ctx.spec.budgets.healthy_s
        waited = wait_until_healthy(lambda: ctx.engine.state(service.container), budget - service.ready.seconds)
        if waited.ok:
            return Outcome.passed(f"healthy {service.ready.seconds + waited.seconds:.1f}s after start")
        log = (ctx.engine.state(service.container).get("Health") or {}).get("Log") or []
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
