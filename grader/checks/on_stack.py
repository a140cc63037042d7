"""Checks of a Compose stack, each made by probing the running stack (the engine, HTTP), not by reading YAML.

They run in the order the lab lists them and share one stack: the restart and scaling checks change it,
so a lab lists them after the checks that only look.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import PrerequisiteFailed

TIMEOUT_S = 5
LOOPBACK = {"127.0.0.1", "::1", "localhost"}


def _get(url: str) -> requests.Response:
    return requests.get(url, timeout=TIMEOUT_S)


def _entry(ctx: CheckContext) -> str:
    url = ctx.stack().entry_url()
    if not url:
        raise PrerequisiteFailed(
            f"skipped: the entry service {ctx.spec.compose.entry_service!r} publishes no port "
            f"{ctx.spec.compose.entry_port} (see the published-ports check)"
        )
    return url


@register
class StackBecomesHealthy(Check):
    name = "StackBecomesHealthy"
    category = "compose"
    title = "`docker compose up --wait` brings every service up, and healthy"
    hint = (
        "Read the log above: a service that exits, or whose healthcheck never passes, stops `up --wait`. "
        "Try it yourself: docker compose up --build --wait, then docker compose ps and docker compose logs SERVICE."
    )
    default_params = {"require_healthcheck": []}

    def run(self, ctx: CheckContext) -> Outcome:
        stack, started = ctx.start_stack()
        if not started.ok:
            what = "building the images" if "build_s" in ctx.timings and "ready_s" not in ctx.timings else "starting"
            return Outcome.failed(
                f"the stack failed while {what} (exit {started.code})",
                evidence="\n\n".join(p for p in (started.tail(20), stack.status(), stack.logs(lines=15)) if p),
            )
        budget = ctx.spec.budgets.healthy_s
        if started.seconds > budget:
            return Outcome.failed(
                f"the stack took {started.seconds:.1f}s to be healthy (budget {budget:.0f}s)",
                evidence=stack.status(),
                hint="Something starts slowly: read `docker compose logs`; a healthcheck with a long interval "
                "or start_period also delays `up --wait`.",
            )
        missing = []
        for service in self.params["require_healthcheck"]:
            running = [v for v in map(ctx.engine.view, stack.containers(service)) if v.status == "running"]
            health = [v.health for v in running]
            if not running or any(h != "healthy" for h in health):
                missing.append(f"{service} ({', '.join(str(h or 'no healthcheck') for h in health) or 'not running'})")
        if missing:
            return Outcome.failed(
                f"these services must report healthy, and do not: {', '.join(missing)}",
                evidence=stack.status(),
                hint="Give each of them a `healthcheck:` (or a HEALTHCHECK in its image) that tests the service "
                "itself: e.g. ['CMD', 'redis-cli', 'ping'] for Redis.",
            )
        names = sorted({c.labels.get("com.docker.compose.service", "?") for c in stack.containers()})
        return Outcome.passed(f"{len(names)} services up and healthy in {started.seconds:.1f}s: {', '.join(names)}")


@register
class StartsAfterDependencyHealthy(Check):
    name = "StartsAfterDependencyHealthy"
    category = "compose"
    title = "A service starts only once the service it depends on is healthy"
    hint = (
        "`depends_on: [cache]` waits only for the cache's container to START, not for Redis to answer. "
        "Write `depends_on: {cache: {condition: service_healthy}}` (the cache needs a healthcheck)."
    )
    required_params = {
        "service": "the service that must wait, e.g. api",
        "dependency": "the service it depends on, which must be healthy first, e.g. cache",
    }

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        service, dependency = self.params["service"], self.params["dependency"]
        first = stack.containers(service)[:1]
        deps = stack.containers(dependency)[:1]
        if not first or not deps:
            return Outcome.failed(f"the stack has no {service!r} or no {dependency!r} service")
        started = ctx.engine.view(first[0]).started or 0.0  # a container of a running stack has started
        events = ctx.engine.events(
            since=ctx.engine.view(deps[0]).created - 1,
            filters={"container": deps[0].id, "event": "health_status"},
        )
        healthy = [e["timeNano"] / 1e9 for e in events if e.get("Action") == "health_status: healthy"]
        if not healthy:
            return Outcome.failed(
                f"{dependency!r} never reported healthy, so there is no start order to check",
                hint=f"Give {dependency!r} a healthcheck, then {self.hint}",
            )
        gap = started - healthy[0]
        if gap < 0:
            return Outcome.failed(
                f"{service!r} started {-gap:.1f}s BEFORE {dependency!r} was healthy",
                evidence=f"{dependency} healthy at +0.0s; {service} started at {gap:+.1f}s",
            )
        return Outcome.passed(f"{service!r} started {gap:.1f}s after {dependency!r} became healthy")


@register
class InternalServiceIsolated(Check):
    name = "InternalServiceIsolated"
    category = "compose"
    title = "Internal services publish no port and sit only on internal networks"
    hint = (
        "Remove the `ports:` of these services, and attach them only to a network declared with "
        "`internal: true`: the services that need them join that network too; nothing else can reach them."
    )
    required_params = {"services": "the services nothing outside the stack may reach, e.g. [cache]"}

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        problems, seen = [], []
        for service in self.params["services"]:
            for view in map(ctx.engine.view, stack.containers(service)):
                if view.published_ports:
                    problems.append(f"{service} publishes {', '.join(view.published_ports)} on the host")
                for net_name in view.networks:
                    internal = ctx.engine.network(net_name).get("Internal", False)
                    seen.append(f"{service} on {net_name} ({'internal' if internal else 'NOT internal'})")
                    if not internal:
                        problems.append(f"{service} is on network {net_name!r}, which is not internal")
        if problems:
            return Outcome.failed("; ".join(problems), evidence="\n".join(seen))
        return Outcome.passed("; ".join(seen) + "; no published ports")


@register
class OnlyEntryPublished(Check):
    name = "OnlyEntryPublished"
    category = "compose"
    title = "Only the entry service publishes a port, on 127.0.0.1"
    hint = (
        'Publish only the proxy, on loopback: ports: ["127.0.0.1:8080:80"]. "8080:80" listens on every '
        "interface of the host, so anyone on your network reaches the service."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        entry = ctx.spec.compose.entry_service
        running = {}
        for c in stack.containers():
            ports = ctx.engine.view(c).published_ports
            if ports:
                running.setdefault(c.labels.get("com.docker.compose.service", "?"), set()).update(ports)
        problems = [f"{svc} publishes {', '.join(sorted(p))}" for svc, p in sorted(running.items()) if svc != entry]
        if entry not in running:
            problems.append(f"{entry} publishes no port")
        for p in stack.grading.published:
            if p.service == entry and p.host_ip not in LOOPBACK:
                problems.append(
                    f"{entry} publishes {p.target} on {p.host_ip or 'every interface'} ({p.published or 'any'}:"
                    f"{p.target}); the grader ran it on 127.0.0.1 for safety"
                )
        if problems:
            return Outcome.failed("; ".join(problems))
        return Outcome.passed(f"only {entry} publishes a port ({', '.join(sorted(running[entry]))}), on 127.0.0.1")


@register
class ConfigFromEnvFile(Check):
    name = "ConfigFromEnvFile"
    category = "compose"
    title = "Configuration comes from the env file, not from the image or the Compose file"
    hint = (
        "Load the settings with `env_file: .env` (or ${VAR} from .env) and write no ENV for them in the "
        "Dockerfile: the same image must run everywhere, configured when it starts."
    )
    default_params = {"env_file": ".env"}
    required_params = {
        "variable": "the setting the grader changes in the env file, e.g. CACHE_TTL_S",
        "value": "the value it sets there (a string), one the lab's files never use",
        "service": "the service that must receive it, e.g. api",
        "report": "where the stack's entry reports the setting: {path, field} of a JSON answer",
    }

    found_in_file = False  # set by before_stack, which runs before the stack starts

    def before_stack(self, ctx: CheckContext, folder: Path) -> None:
        # The grader changes one setting in ITS copy of the env file: the stack must pick the new value up.
        env = folder / self.params["env_file"]
        variable, value = self.params["variable"], self.params["value"]
        self.found_in_file = False
        if not env.is_file():
            return
        lines = env.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip().split("=", 1)[0].strip() == variable:
                lines[i] = f"{variable}={value}"
                self.found_in_file = True
        env.write_text("\n".join(lines) + "\n")

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        variable, value, env_file = self.params["variable"], self.params["value"], self.params["env_file"]
        if not self.found_in_file:
            return Outcome.failed(f"{env_file} does not set {variable}", hint=f"Add {variable}=... to {env_file}.")
        container = stack.container(self.params["service"])
        image_env = ctx.engine.inspect_image(ctx.engine.view(container).image_id)["Config"].get("Env") or []
        baked = [e for e in image_env if e.split("=", 1)[0] == variable]
        if baked:
            return Outcome.failed(
                f"the {self.params['service']} image sets {baked[0]} itself (an ENV in its Dockerfile)",
                hint=f"Remove ENV {variable} from the Dockerfile; {env_file} provides it when the stack starts.",
            )
        report = self.params["report"]
        answer = _get(_entry(ctx) + report["path"])
        seen = answer.json().get(report["field"]) if answer.ok else None
        if str(seen) != value:
            return Outcome.failed(
                f"the grader set {variable}={value} in {env_file}, and the service reports {report['field']}={seen!r}",
                evidence=answer.text[:300],
                hint=f"The value comes from somewhere else (the Compose file's `environment:`, say). {self.hint}",
            )
        return Outcome.passed(f"{variable}={value} set in {env_file} reached the service ({report['path']})")


class _CacheProbe(Check):
    """Shared by the checks that send one request twice and look for the cache's answer."""

    required_params = {
        "path": "the path POSTed through the stack's entry, e.g. /predict",
        "body": "the JSON body of that request",
        "header": "the answer's header that tells a cached answer, e.g. X-Cache",
        "hit": "that header's value for an answer from the cache, e.g. HIT",
        "miss": "its value for an answer that was not cached, e.g. MISS",
        "cache_service": "the cache's service, e.g. cache",
        "count_keys": "the command, run in the cache's container, that prints how many keys it holds",
    }

    def ask(self, ctx: CheckContext) -> str:
        answer = requests.post(_entry(ctx) + self.params["path"], json=self.params["body"], timeout=TIMEOUT_S)
        answer.raise_for_status()
        return answer.headers.get(self.params["header"], "")

    def keys(self, ctx: CheckContext) -> int:
        code, out = ctx.stack().exec(self.params["cache_service"], self.params["count_keys"])
        return int(out.strip()) if code == 0 and out.strip().isdigit() else -1


@register
class ResponsesCached(_CacheProbe):
    name = "ResponsesCached"
    category = "compose"
    title = "A repeated prediction is answered from the cache"
    hint = (
        "The API must store each answer in Redis and answer a repeat from there (the lab's app does: check REDIS_URL)."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        first, second = self.ask(ctx), self.ask(ctx)
        keys = self.keys(ctx)
        header, hit, miss = self.params["header"], self.params["hit"], self.params["miss"]
        if (first, second) != (miss, hit):
            return Outcome.failed(
                f"two identical requests were answered {header}: {first or '(none)'} then {second or '(none)'} "
                f"(expected {miss} then {hit})",
                evidence=ctx.stack().logs(self.params["cache_service"], lines=10),
            )
        if keys <= 0:
            return Outcome.failed(f"the answer says {hit}, but the cache holds {keys} keys")
        return Outcome.passed(f"{miss} then {hit}; the cache holds {keys} key(s)")


@register
class DataSurvivesRestart(_CacheProbe):
    name = "DataSurvivesRestart"
    category = "compose"
    title = "Cached data survives `down` and `up`, and is gone after `down -v`"
    hint = (
        "Keep the cache's data directory (/data for Redis) in a named volume: `volumes: [cache-data:/data]` "
        "in the service and `cache-data: {}` under the top-level `volumes:`. A container's own files die with it."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        hit, miss = self.params["hit"], self.params["miss"]
        self.ask(ctx)  # make sure the answer is cached
        for step, volumes, expect in (("down, then up", False, hit), ("down -v, then up", True, miss)):
            down = stack.down(volumes=volumes)
            up = stack.up() if down.ok else down
            if not up.ok:
                return Outcome.failed(f"the stack did not come back after {step}", evidence=up.tail(15))
            seen, keys = self.ask(ctx), self.keys(ctx)
            if seen != expect:
                lost = "the cache was empty" if expect == hit else "the old answer was still cached"
                return Outcome.failed(
                    f"after `docker compose {step}` {lost} ({self.params['header']}: {seen or '(none)'}, {keys} keys)",
                    hint=self.hint
                    if expect == hit
                    else "The data must live in a volume the stack owns: `down -v` "
                    "removes named volumes; a bind mount of a host folder survives it.",
                )
        return Outcome.passed("the cached answer survived down/up, and was gone after down -v")


@register
class RequestsSpreadAcrossReplicas(Check):
    name = "RequestsSpreadAcrossReplicas"
    category = "compose"
    title = "With the API scaled out, the proxy spreads requests across the replicas"
    hint = (
        "nginx resolves a name written in proxy_pass once, at start-up, so replicas added later get nothing. "
        "Add `resolver 127.0.0.11 valid=2s;` and proxy_pass to a variable (set $api http://api:8000;)."
    )
    default_params = {"replicas": 3, "within_s": 20}
    required_params = {
        "service": "the service scaled out, e.g. api",
        "path": "the path asked through the stack's entry, e.g. /health",
        "header": "the answer's header naming the replica that served it, e.g. X-Served-By",
    }

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        service, replicas = self.params["service"], self.params["replicas"]
        scaled = stack.up("--scale", f"{service}={replicas}")
        if not scaled.ok:
            return Outcome.failed(
                f"`docker compose up --scale {service}={replicas}` failed",
                evidence=scaled.tail(15),
                hint="A fixed `container_name:` or host port on the service stops it from scaling: remove them.",
            )
        running = [v for v in map(ctx.engine.view, stack.containers(service)) if v.status == "running"]
        if len(running) < replicas:
            return Outcome.failed(
                f"{len(running)} of {replicas} {service} replicas are running", evidence=stack.status()
            )
        served = Counter()
        deadline = time.monotonic() + self.params["within_s"]
        while len(served) < replicas and time.monotonic() < deadline:
            served[_get(_entry(ctx) + self.params["path"]).headers.get(self.params["header"], "(none)")] += 1
        spread = ", ".join(f"{name}×{n}" for name, n in served.most_common())
        total = sum(served.values())
        if len(served) < replicas:
            return Outcome.failed(
                f"{total} requests in {self.params['within_s']}s reached {len(served)} of {replicas} "
                f"replicas ({spread})"
            )
        return Outcome.passed(f"{total} requests reached all {replicas} replicas ({spread})")


@register
class DownLeavesNothing(Check):
    name = "DownLeavesNothing"
    category = "compose"
    title = "`docker compose down` removes the stack's containers and networks; `down -v` its volumes too"
    hint = (
        "Something outlives `down`: a container started outside Compose, or an `external:` network or "
        "volume. Let Compose create (and so remove) everything the stack uses."
    )

    def run(self, ctx: CheckContext) -> Outcome:
        stack = ctx.stack()
        down = stack.down()
        after_down = ctx.engine.project_objects(stack.project)
        down_v = stack.down(volumes=True)
        after_down_v = ctx.engine.project_objects(stack.project)
        if not (down.ok and down_v.ok):
            return Outcome.failed("`docker compose down` failed", evidence=(down_v if down.ok else down).tail(15))
        left = {k: n for k, n in after_down.items() if n and k != "volumes"}
        left.update({f"{k} after -v": n for k, n in after_down_v.items() if n})
        if left:
            return Outcome.failed("left behind: " + ", ".join(f"{n} {k}" for k, n in left.items()))
        kept = after_down["volumes"]
        return Outcome.passed(
            f"down removed every container and network (kept {kept} named volume(s)); down -v the rest"
        )
