"""Chapter 9 (scaling out): a single-node Docker Swarm, a request loop that counts failures, and the same
deployment written as Kubernetes manifests.

Everything that talks to the engine goes through `sh()`, quietly (`show=False`) where a notebook polls.

    owned = ensure_swarm()               # init a swarm on 127.0.0.1, or use the one already there
    stack, notes = stack_from_compose(compose, lab_dir, images=..., overrides=...)
    wait_for_stack("ch09")               # every service n/n (with healthchecks: n healthy)
    client = LoadClient("ch09_frontend", script, "http://proxy/health", label_flag); client.start()
    ...; samples = client.stop()         # one dict per request: t, status, version, served_by, ms, error
    remove_stack("ch09"); leave_swarm(owned)

Networking here: this kernel has no IPVS, so swarm's routing mesh and virtual IPs do not answer; services
use `endpoint_mode: dnsrr` (the service name resolves to every task's address) and nothing is published:
requests come from a client container attached to the stack's overlay network.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from workbook.shell import sh

NODE_LABEL = "org.mlcontainers.workbook.swarm"  # set on the node when the workbook initialised the swarm
SWARM_PORTS = {2377: "cluster management (tcp)", 7946: "node gossip (tcp+udp)", 4789: "overlay data, VXLAN (udp)"}


class SwarmError(RuntimeError):
    """Base of this module's errors."""


class NotAManager(SwarmError):
    """Raised when the engine is in a swarm as a worker: stacks can only be deployed on a manager."""


class ServiceTimeout(SwarmError):
    """Raised when services did not reach the state waited for in time; the message holds the evidence."""


# --- the swarm itself ---------------------------------------------------------------------------------


def swarm_state() -> str:
    """This engine's swarm membership: "inactive", "active", "pending", "error" or "locked"."""
    return sh("docker info --format '{{.Swarm.LocalNodeState}}'", show=False).out.strip()


def ensure_swarm(advertise: str = "127.0.0.1") -> bool:
    """Make this engine a single-node swarm manager; return True when the workbook owns the swarm.

    An engine that is not in a swarm gets `docker swarm init`, listening on `advertise` only (loopback: no
    other machine can join or reach the cluster ports), and the node gets the label NODE_LABEL, so that a
    later run (after an interrupted one) still knows the workbook made it. An engine already in a swarm
    the workbook did not make is used as it is, and `leave_swarm()` will leave it alone.
    """
    state = swarm_state()
    if state == "inactive":
        command = f"docker swarm init --advertise-addr {advertise} --listen-addr {advertise}:2377"
        print(f"$ {command}")
        print(sh(command, show=False).lines[0])  # the rest is how other nodes would join: not needed here
        node = sh("docker info --format '{{.Swarm.NodeID}}'", show=False).out.strip()
        sh(f"docker node update --label-add {NODE_LABEL}=initialised {node}", show=False)
        return True
    if state != "active":
        raise SwarmError(f"this engine's swarm state is {state!r}. Hint: `docker swarm leave --force`, then re-run.")
    manager = sh("docker info --format '{{.Swarm.ControlAvailable}}'", show=False).out.strip()
    if manager != "true":
        raise NotAManager("this engine is a swarm worker: deploy from a manager, or leave that swarm first.")
    labels = sh("docker node inspect self --format '{{json .Spec.Labels}}'", show=False).out
    owned = NODE_LABEL in labels
    print(
        "the engine is already a swarm manager"
        + (
            " (made by an earlier run of this workbook)"
            if owned
            else " (not made by the workbook: it will be left as it is)"
        )
    )
    return owned


def owns_swarm() -> bool:
    """Whether this engine is in a swarm that the workbook initialised (its node carries NODE_LABEL)."""
    if swarm_state() != "active":
        return False
    return NODE_LABEL in sh("docker node inspect self --format '{{json .Spec.Labels}}'", show=False, expect=None).out


def leave_swarm(owned: bool | None = None) -> None:
    """Leave the swarm if the workbook made it (and drop the bridge swarm created); else leave it alone.

    `owned` is what `ensure_swarm()` returned; None asks the node (after an interrupted run, say).
    """
    if swarm_state() == "inactive":
        print("not in a swarm: nothing to leave")
        return
    if owned is None:
        owned = owns_swarm()
    if not owned:
        print("the swarm was there before this notebook: left as it was")
        return
    if swarm_state() != "inactive":
        sh("docker swarm leave --force")
    # `swarm init` created this bridge for the tasks' outside traffic; `leave` keeps it. Unused, it can go.
    sh("docker network rm docker_gwbridge", show=False, expect=None)


# --- parsing what the CLI prints ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerRow:
    """One line of `docker ps --format '{{.ID}}\\t{{.State}}\\t{{.Status}}'`."""

    id: str
    state: str  # running, exited, created, ...
    status: str  # "Up 5 seconds (healthy)"

    @property
    def health(self) -> str:
        """healthy, unhealthy, starting, or "" for a container without a healthcheck."""
        found = re.search(r"\((healthy|unhealthy|health: starting)\)", self.status)
        return found.group(1).replace("health: ", "") if found else ""


def parse_ps(out: str) -> list[ContainerRow]:
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 3:
            rows.append(ContainerRow(*parts))
    return rows


def service_containers(service: str) -> list[ContainerRow]:
    """The containers of a swarm service on this node, stopped ones too."""
    out = sh(
        f"docker ps -a --filter label=com.docker.swarm.service.name={service} "
        "--format '{{.ID}}\t{{.State}}\t{{.Status}}'",
        show=False,
    ).out
    return parse_ps(out)


def parse_replicas(out: str) -> dict[str, tuple[int, int]]:
    """`docker stack services --format '{{.Name}} {{.Replicas}}'` -> {name: (running, desired)}."""
    result = {}
    for line in out.splitlines():
        found = re.match(r"(\S+)\s+(\d+)/(\d+)", line.strip())
        if found:
            result[found.group(1)] = (int(found.group(2)), int(found.group(3)))
    return result


# --- waiting, by polling with a timeout ----------------------------------------------------------------


def wait_for_stack(stack: str, timeout: float = 180, poll: float = 0.5) -> float:
    """Seconds until every service of `stack` runs all its replicas (with a healthcheck: all healthy).

    A task with a healthcheck counts as running only once it is healthy, so `3/3` means three healthy
    replicas. Raises ServiceTimeout with `docker stack ps` (and its errors) as evidence.
    """
    started = time.perf_counter()
    while True:
        replicas = parse_replicas(
            sh(f"docker stack services {stack} --format '{{{{.Name}}}} {{{{.Replicas}}}}'", show=False).out
        )
        if replicas and all(running == desired for running, desired in replicas.values()):
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            evidence = sh(
                f"docker stack ps {stack} --no-trunc --format '{{{{.Name}}}} {{{{.CurrentState}}}} "
                f"{{{{.Error}}}}' | head -20",
                show=False,
                expect=None,
            ).out
            raise ServiceTimeout(
                f"stack {stack}: not every replica running after {timeout:.0f} s: {replicas}\n"
                f"{evidence}\nHint: `docker service logs {stack}_<service>` shows why."
            )
        time.sleep(poll)


def update_status(service: str) -> dict:
    """The service's last update or rollback: {"State", "StartedAt", "Message", ...}; {} when never updated."""
    out = sh(f"docker service inspect {service} --format '{{{{json .UpdateStatus}}}}'", show=False).out.strip()
    return json.loads(out) if out and out != "null" else {}


FINAL_UPDATE_STATES = ("completed", "paused", "rollback_completed", "rollback_paused")


def wait_for_update(service: str, previous: dict, timeout: float = 240, poll: float = 0.5) -> tuple[dict, float]:
    """Poll until an update or rollback newer than `previous` (an earlier `update_status()`) has finished.

    Comparing the start times matters: right after `docker service update -d` the status may still be the
    last update's "completed". Returns (status, seconds); the status's State is one of
    FINAL_UPDATE_STATES. Raises ServiceTimeout when it did not finish in time.
    """
    started = time.perf_counter()
    while True:
        status = update_status(service)
        if status.get("StartedAt") != previous.get("StartedAt") and status.get("State") in FINAL_UPDATE_STATES:
            return status, time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise ServiceTimeout(f"{service}: update not finished after {timeout:.0f} s: {status}")
        time.sleep(poll)


def watch_replacement(
    service: str, target: str, replicas: int, timeout: float = 120, poll: float = 0.25
) -> dict[str, float]:
    """Watch swarm replace the container `target` of `service`; seconds from the call to each event.

    Events: "unhealthy" (the target's healthcheck failed: only when it hangs rather than dies), "stopped"
    (the target no longer runs), "replacement started" (a new container runs), "all healthy again" (
    `replicas` healthy containers, the new one among them). Raises ServiceTimeout without the last one.
    """
    started = time.perf_counter()
    before = {row.id for row in service_containers(service)}
    events: dict[str, float] = {}
    while "all healthy again" not in events:
        now = time.perf_counter() - started
        rows = service_containers(service)
        mine = next((r for r in rows if target.startswith(r.id) or r.id.startswith(target)), None)
        if mine and mine.health == "unhealthy":
            events.setdefault("unhealthy", now)
        if mine is None or mine.state != "running":
            events.setdefault("stopped", now)
        new = [r for r in rows if r.id not in before and r.state == "running"]
        if new:
            events.setdefault("replacement started", now)
        healthy = [r for r in rows if r.state == "running" and r.health in ("healthy", "")]
        if new and "stopped" in events and len(healthy) >= replicas and any(r in healthy for r in new):
            events["all healthy again"] = now
        elif now > timeout:
            raise ServiceTimeout(f"{service}: {target[:12]} not replaced within {timeout:.0f} s; saw {events}")
        else:
            time.sleep(poll)
    return events


def remove_stack(stack: str, timeout: float = 120, poll: float = 0.5) -> float:
    """`docker stack rm`, then wait until its containers and networks are gone and remove its volumes.

    `stack rm` returns before the tasks have stopped; the networks go only after the last container.
    Volumes are kept by `stack rm` (like `compose down` without -v): removed here, once nothing uses them.
    Returns the seconds it took; raises ServiceTimeout with what was left.
    """
    started = time.perf_counter()
    flt = f"--filter label=com.docker.stack.namespace={stack}"
    if swarm_state() == "active":
        sh(f"docker stack rm {stack}", expect=None, tail=10)
    while True:
        left = sh(f"docker ps -aq {flt}; docker network ls -q {flt}", show=False).out.split()
        if not left:
            break
        # Task containers outlive their service when a run was killed mid-deploy (left "Created"): with no
        # service of the stack there, nothing will ever reap them, so remove them here rather than wait.
        if not sh(f"docker service ls -q {flt}", show=False, expect=None).out.split():
            sh(f"docker ps -aq {flt} | xargs -r docker rm -f", show=False, expect=None)
        if time.perf_counter() - started > timeout:
            raise ServiceTimeout(f"stack {stack}: {len(left)} containers/networks still there after {timeout:.0f} s")
        time.sleep(poll)
    sh(f"docker volume ls -q {flt} | xargs -r docker volume rm", show=False, expect=None)
    return time.perf_counter() - started


# --- sockets: what the swarm listens on -----------------------------------------------------------------


def parse_proc_net(text: str, proto: str) -> list[tuple[str, str, int]]:
    """Listening (tcp) or bound (udp) sockets from /proc/net/{tcp,udp,tcp6,udp6}: (proto, address, port)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        local, state = fields[1], fields[3]
        if proto.startswith("tcp") and state != "0A":  # 0A: LISTEN
            continue
        hex_addr, hex_port = local.split(":")
        if len(hex_addr) == 8:  # IPv4, little-endian
            address = ".".join(str(b) for b in reversed(bytes.fromhex(hex_addr)))
        else:
            words = [bytes.fromhex(hex_addr[i : i + 8])[::-1].hex() for i in range(0, 32, 8)]
            joined = "".join(words)
            address = "::" if set(joined) == {"0"} else ":".join(joined[i : i + 4] for i in range(0, 32, 4))
        found.append((proto, address, int(hex_port, 16)))
    return found


def listeners(ports=tuple(SWARM_PORTS)) -> list[tuple[str, str, int]]:
    """Sockets of this machine (its network namespace) bound to one of `ports`, on any address."""
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        path = Path("/proc/net") / proto
        if path.exists():
            found += [s for s in parse_proc_net(path.read_text(), proto) if s[2] in ports]
    return sorted(set(found))


def is_loopback(address: str) -> bool:
    return address.startswith("127.") or address == "0000:0000:0000:0000:0000:0000:0000:0001"


# --- the request loop, in a client container on the stack's network ------------------------------------

LOAD_SCRIPT = '''\
"""Send GET requests to URL until SIGTERM (or MAX_S), from THREADS loops at once; then print them all as JSON.

Usage: python load.py URL MAX_S PAUSE_S [THREADS]. Each loop sends one request after the other, like one
user. Each request records when it started (epoch seconds), the HTTP status (0: no answer at all), how
long it took, and the X-App-Version and X-Served-By response headers.
"""
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request

url, max_s, pause = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 1
stop = threading.Event()
samples, started = [], time.time()


def loop():
    while not stop.is_set() and time.time() - started < max_s:
        t0 = time.time()
        row = {"t": round(t0, 3)}
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:
                answer.read()
                row.update(status=answer.status, version=answer.headers.get("X-App-Version"),
                           served_by=answer.headers.get("X-Served-By"))
        except urllib.error.HTTPError as err:
            row.update(status=err.code, error=f"HTTP {err.code}")
        except Exception as err:  # refused, reset, timed out: the client got no answer
            row.update(status=0, error=f"{type(err).__name__}: {err}")
        row["ms"] = round(1000 * (time.time() - t0), 1)
        samples.append(row)
        time.sleep(pause)


signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())  # finish the requests in flight, then report
workers = [threading.Thread(target=loop) for _ in range(threads)]
for worker in workers:
    worker.start()
while any(worker.is_alive() for worker in workers):
    time.sleep(0.05)  # the main thread stays free to receive SIGTERM
samples.sort(key=lambda row: row["t"])
print(json.dumps({"url": url, "threads": threads, "samples": samples}))
'''


def parse_load(output: str) -> list[dict]:
    """The samples from the load script's output (its last line that is a JSON document)."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)["samples"]
    raise ValueError("the load script printed no JSON result:\n" + output[-2000:])


def load_summary(samples: list[dict]) -> dict:
    """Requests, failures (anything but a 200), and the answers counted per version and per replica."""
    by_version: dict[str, int] = {}
    by_replica: dict[str, int] = {}
    for s in samples:
        if s["status"] == 200:
            by_version[str(s.get("version"))] = by_version.get(str(s.get("version")), 0) + 1
            by_replica[str(s.get("served_by"))] = by_replica.get(str(s.get("served_by")), 0) + 1
    failed = [s for s in samples if s["status"] != 200]
    ms = sorted(s["ms"] for s in samples) or [0.0]
    return {
        "requests": len(samples),
        "failed": len(failed),
        "by_version": by_version,
        "by_replica": by_replica,
        "max_ms": ms[-1],
        "median_ms": ms[len(ms) // 2],
        "errors": sorted({s.get("error", "") for s in failed}),
    }


class LoadClient:
    """The load script in a container on `network`: `threads` loops sending requests to `url` until `stop()`."""

    def __init__(
        self,
        network: str,
        script: Path,
        url: str,
        label_flag: str,
        name: str = "ch09-client",
        threads: int = 4,
        pause_s: float = 0.05,
        max_s: float = 300,
        image: str = "python:3.11-slim",
    ):
        self.network, self.script, self.url, self.label_flag = network, Path(script), url, label_flag
        self.name, self.threads, self.pause_s, self.max_s, self.image = name, threads, pause_s, max_s, image

    def start(self, max_s: float | None = None, show: bool = False) -> None:
        """Start sending; the client stops by itself after `max_s` seconds (default: the instance's)."""
        if max_s is not None:
            self.max_s = max_s
        sh(f"docker rm -f {self.name}", show=False, expect=None)
        sh(
            f"docker run -d --name {self.name} {self.label_flag} --network {self.network} "
            f"-v {shlex.quote(str(self.script))}:/load.py:ro {self.image} "
            f"python /load.py {self.url} {self.max_s} {self.pause_s} {self.threads}",
            show=show,
        )
        # The script prints nothing before it ends: wait until its container has started (or already ended).
        deadline = time.perf_counter() + 30
        while sh(f"docker inspect -f '{{{{.State.Status}}}}' {self.name}", show=False).out.strip() == "created":
            if time.perf_counter() > deadline:
                raise SwarmError(f"the client container {self.name} did not start")
            time.sleep(0.1)

    def stop(self) -> list[dict]:
        """SIGTERM the client (it finishes the request in flight), then read and parse its report."""
        sh(f"docker stop -t 20 {self.name}", show=False)
        return self._report()

    def wait(self) -> list[dict]:
        """Wait until the client ends by itself (after `max_s`), then read and parse its report."""
        sh(f"docker wait {self.name}", show=False, timeout=self.max_s + 60)
        return self._report()

    def _report(self) -> list[dict]:
        out = sh(f"docker logs {self.name}", show=False).out
        sh(f"docker rm -f {self.name}", show=False, expect=None)
        return parse_load(out)


# --- plots ----------------------------------------------------------------------------------------------


def timeline(
    samples: list[dict],
    title: str,
    events: dict[str, float] | None = None,
    t0: float | None = None,
    bin_s: float = 1.0,
    colour_by: str = "version",
):
    """Two panels over time: answers per `bin_s` stacked by version (or replica) with failures in red,
    and every request's latency. `events` ({label: epoch seconds}) are drawn as vertical lines."""
    import matplotlib.pyplot as plt

    t0 = t0 if t0 is not None else min(s["t"] for s in samples)
    keys = sorted({str(s.get(colour_by)) for s in samples if s["status"] == 200})
    end = max(s["t"] for s in samples) - t0
    nbins = max(1, math.ceil((end + 1e-9) / bin_s))
    counts = {k: [0] * nbins for k in [*keys, "failed"]}
    for s in samples:
        i = min(nbins - 1, max(0, int((s["t"] - t0) / bin_s)))
        counts[str(s.get(colour_by)) if s["status"] == 200 else "failed"][i] += 1
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=[3, 2])
    xs = [i * bin_s for i in range(nbins)]
    base = [0] * nbins
    palette = [c for c in plt.get_cmap("tab10").colors if c != plt.get_cmap("tab10").colors[3]]  # red: failures
    for n, k in enumerate([*keys, "failed"]):
        if k == "failed" and not any(counts[k]):
            continue
        label = f"{colour_by} {k}" if k != "failed" else "failed"
        colour = "tab:red" if k == "failed" else palette[n % len(palette)]
        top.bar(xs, counts[k], width=bin_s, bottom=base, align="edge", label=label, color=colour)
        base = [b + c for b, c in zip(base, counts[k], strict=True)]
    top.set_ylabel(f"requests per {bin_s:g} s")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top.set_title(title)
    ok = [s for s in samples if s["status"] == 200]
    bad = [s for s in samples if s["status"] != 200]
    bottom.scatter([s["t"] - t0 for s in ok], [s["ms"] for s in ok], s=6, alpha=0.5, label="answered")
    if bad:
        bottom.scatter([s["t"] - t0 for s in bad], [s["ms"] for s in bad], s=18, color="tab:red", label="failed")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds")
    for label, at in (events or {}).items():
        for ax in (top, bottom):
            ax.axvline(at - t0, color="black", linestyle="--", linewidth=0.8)
        top.text(at - t0, top.get_ylim()[1], " " + label, rotation=90, va="top", fontsize=8)
    fig.tight_layout()
    return fig


# --- Compose file -> swarm stack file ------------------------------------------------------------------


def deep_merge(base: dict, extra: dict) -> dict:
    """A copy of `base` with `extra` merged in (nested dicts merged, everything else replaced)."""
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def stack_from_compose(
    compose: dict,
    base_dir: Path,
    *,
    images: dict[str, str],
    overrides: dict[str, dict],
    attachable: tuple[str, ...] = (),
    labels: dict[str, str] | None = None,
) -> tuple[dict, list[str]]:
    """A swarm stack file made from a Compose file, and a note for each change and why it was needed.

    - `build:` is replaced by `images[service]`: swarm never builds, every node must be able to get the image;
    - `depends_on`, `container_name`, `restart` are dropped (swarm ignores them: services start in any order
      and restart by `deploy.restart_policy`);
    - `ports` are dropped: nothing is published here (the client runs on the stack's network);
    - a bind-mounted file becomes a swarm *config* (stored in the cluster, delivered to whichever node runs
      the task: a bind mount would need the file on every node);
    - relative `env_file` paths become absolute (the stack file is written elsewhere);
    - networks become `overlay` (spanning nodes), `attachable` where a plain container must join them;
    - `overrides[service]` is merged into each service (deploy settings, shorter healthcheck intervals).
    """
    notes: list[str] = []
    stack: dict = {"services": {}, "networks": {}, "volumes": copy.deepcopy(compose.get("volumes") or {})}
    configs: dict = {}
    for name, service in compose["services"].items():
        svc = copy.deepcopy(service)
        if "build" in svc:
            svc.pop("build")
            svc["image"] = images[name]
            notes.append(f"{name}: build: dropped, image {images[name]} instead (swarm runs images, it never builds)")
        for key, why in (
            ("depends_on", "no start order in swarm: services must retry until what they need answers"),
            ("container_name", "a service has many containers; swarm names them"),
            ("restart", "swarm restarts tasks by deploy.restart_policy"),
        ):
            if key in svc:
                svc.pop(key)
                notes.append(f"{name}: {key}: dropped ({why})")
        if "ports" in svc:
            notes.append(
                f"{name}: ports {svc.pop('ports')} dropped (nothing is published: "
                "requests come from a container on the stack's network)"
            )
        volumes = []
        for volume in svc.get("volumes", []):
            source, _, rest = volume.partition(":") if isinstance(volume, str) else ("", "", "")
            target = rest.split(":")[0]
            if source.startswith((".", "/")) and (base_dir / source).is_file():
                config = f"{name}-{Path(source).stem}"
                configs[config] = {"file": str((base_dir / source).resolve())}
                svc.setdefault("configs", []).append({"source": config, "target": target})
                notes.append(f"{name}: bind mount {source} -> config {config!r} (the cluster delivers it to any node)")
            else:
                volumes.append(volume)
        if volumes:
            svc["volumes"] = volumes
        else:
            svc.pop("volumes", None)
        if "env_file" in svc:
            files = svc["env_file"] if isinstance(svc["env_file"], list) else [svc["env_file"]]
            svc["env_file"] = [str((base_dir / f).resolve()) for f in files]
        if labels:
            svc["labels"] = {**svc.get("labels", {}), **labels}
        stack["services"][name] = deep_merge(svc, overrides.get(name, {}))
    for net, spec in (compose.get("networks") or {}).items():
        spec = dict(spec or {})
        spec["driver"] = "overlay"
        if net in attachable:
            spec["attachable"] = True
        if labels:
            spec["labels"] = dict(labels)
        stack["networks"][net] = spec
    notes.append(f"networks {sorted(stack['networks'])}: driver overlay (one network across every node of the swarm)")
    if labels:
        stack["volumes"] = {v: {**(spec or {}), "labels": dict(labels)} for v, spec in stack["volumes"].items()}
    if configs:
        stack["configs"] = configs
    return stack, notes


# --- the same deployment as Kubernetes manifests --------------------------------------------------------


def duration_s(value: str | int | float) -> int:
    """A Compose duration ("2s", "1m30s", "500ms") in whole seconds, at least 1 (what probes accept)."""
    if isinstance(value, int | float):
        return max(1, math.ceil(value))
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", value):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return max(1, math.ceil(total))


def k8s_cpu(value: str | float) -> str:
    """Compose `cpus: "0.5"` -> Kubernetes "500m" (thousandths of a CPU)."""
    return f"{round(float(value) * 1000)}m"


def k8s_memory(value: str) -> str:
    """Compose/Docker memory ("256M", "1g", "512m") -> Kubernetes ("256Mi", "1Gi"): Docker's units are binary."""
    found = re.fullmatch(r"(\d+)\s*([bkmg]?)b?", str(value).strip().lower())
    if not found:
        raise ValueError(f"not a Docker memory size: {value!r}")
    number, unit = found.groups()
    return number + {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped), as Compose reads them."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def _probe(health: dict, path: str, port: int, failures: int | None = None) -> dict:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": duration_s(health.get("interval", "10s")),
        "timeoutSeconds": duration_s(health.get("timeout", "3s")),
        "failureThreshold": failures or int(health.get("retries", 3)),
    }


def kubernetes_manifests(
    stack: dict,
    env: dict[str, str],
    *,
    api_image: str,
    api_port: int = 8000,
    health_path: str = "/health",
    cache_storage: str = "1Gi",
    max_replicas: int = 10,
) -> dict[str, dict]:
    """The stack's API and cache as Kubernetes objects, {file name: manifest}, each field taken from the stack.

    The nginx proxy has no counterpart: a Service spreads requests over the ready pods itself, and an
    Ingress (which needs an ingress controller in the cluster) is the entry from outside.
    """
    api = stack["services"]["api"]
    deploy, health = api.get("deploy", {}), api.get("healthcheck", {})
    limits = deploy.get("resources", {}).get("limits", {})
    requests = deploy.get("resources", {}).get("reservations", {})
    update = deploy.get("update_config", {})
    start_first = update.get("order") == "start-first"
    app = {"app.kubernetes.io/name": "iris", "app.kubernetes.io/component": "api"}
    cache_labels = {"app.kubernetes.io/name": "iris", "app.kubernetes.io/component": "cache"}
    interval = duration_s(health.get("interval", "10s"))
    startup = max(1, math.ceil(duration_s(health.get("start_period", "0s")) / interval))

    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config"}, "data": dict(env)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "labels": app},
        "spec": {
            "replicas": int(deploy.get("replicas", 1)),
            "selector": {"matchLabels": app},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": int(update.get("parallelism", 1)) if start_first else 0,
                    "maxUnavailable": 0 if start_first else int(update.get("parallelism", 1)),
                },
            },
            "minReadySeconds": duration_s(update.get("delay", "0s")),
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {"labels": app},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": duration_s(api.get("stop_grace_period", "10s")) + 5,
                    "containers": [
                        {
                            "name": "api",
                            "image": api_image,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": api_port}],
                            "envFrom": [{"configMapRef": {"name": "api-config"}}],
                            "resources": {
                                "requests": {
                                    "cpu": k8s_cpu(requests.get("cpus", "0.1")),
                                    "memory": k8s_memory(requests.get("memory", "128M")),
                                },
                                "limits": {
                                    "cpu": k8s_cpu(limits.get("cpus", "1")),
                                    "memory": k8s_memory(limits.get("memory", "512M")),
                                },
                            },
                            "startupProbe": _probe(health, health_path, api_port, failures=startup),
                            # Readiness takes a pod out of the Service (cheap, undone when it answers again);
                            # liveness restarts it (costly): give liveness more slack before it acts.
                            "readinessProbe": _probe(health, health_path, api_port),
                            "livenessProbe": _probe(
                                health, health_path, api_port, failures=2 * int(health.get("retries", 3))
                            ),
                            # The pod leaves the Service's endpoints while it gets SIGTERM, in parallel: wait a
                            # few seconds before stopping, so that no request is routed to a closing pod.
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    api_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "labels": app},
        "spec": {"selector": app, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": int(deploy.get("replicas", 1)),
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "iris"},
        "spec": {
            "rules": [
                {
                    "host": "iris.localhost",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "api", "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ]
        },
    }

    cache = stack["services"]["cache"]
    cache_health = cache.get("healthcheck", {})
    cache_limits = cache.get("deploy", {}).get("resources", {}).get("limits", {})
    volume_target = next((v.split(":")[1] for v in cache.get("volumes", []) if isinstance(v, str)), "/data")
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "cache", "labels": cache_labels},
        "spec": {
            "serviceName": "cache",
            "replicas": 1,
            "selector": {"matchLabels": cache_labels},
            "template": {
                "metadata": {"labels": cache_labels},
                "spec": {
                    "containers": [
                        {
                            "name": "redis",
                            "image": cache["image"],
                            "args": list(cache.get("command", [])),
                            "ports": [{"name": "redis", "containerPort": 6379}],
                            "readinessProbe": {
                                "exec": {
                                    "command": [
                                        c for c in cache_health.get("test", ["redis-cli", "ping"]) if c != "CMD"
                                    ]
                                },
                                "periodSeconds": duration_s(cache_health.get("interval", "5s")),
                                "timeoutSeconds": duration_s(cache_health.get("timeout", "2s")),
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {
                                    "cpu": k8s_cpu(cache_limits.get("cpus", "0.5")),
                                    "memory": k8s_memory(cache_limits.get("memory", "256M")),
                                },
                            },
                            "volumeMounts": [{"name": "data", "mountPath": volume_target}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cache_storage}}},
                }
            ],
        },
    }
    cache_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "cache", "labels": cache_labels},
        "spec": {
            "clusterIP": "None",
            "selector": cache_labels,
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}],
        },
    }
    # The Compose `backend` network is internal: only the API reaches Redis. In Kubernetes every pod can
    # reach every pod unless a NetworkPolicy (enforced by the cluster's network plugin) says otherwise.
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "cache-from-api-only"},
        "spec": {
            "podSelector": {"matchLabels": cache_labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": app}}], "ports": [{"protocol": "TCP", "port": 6379}]}
            ],
        },
    }
    return {
        "10-api-configmap.yaml": config_map,
        "20-api-deployment.yaml": deployment,
        "21-api-service.yaml": api_service,
        "22-api-hpa.yaml": hpa,
        "30-cache-statefulset.yaml": statefulset,
        "31-cache-service.yaml": cache_service,
        "32-cache-networkpolicy.yaml": policy,
        "40-ingress.yaml": ingress,
    }


def to_yaml(data) -> str:
    """YAML as a person would write it: keys in the order given, and no `&id001` anchors for repeated values."""
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):
            return True

    return yaml.dump(data, Dumper=PlainDumper, sort_keys=False)


def write_manifests(manifests: dict[str, dict], folder: Path) -> list[Path]:
    """Write each manifest as YAML into `folder` (emptied of earlier .yaml files first); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    paths = []
    for name, manifest in manifests.items():
        path = folder / name
        path.write_text(to_yaml(manifest))
        paths.append(path)
    return paths
