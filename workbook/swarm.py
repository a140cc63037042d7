"""Chapter 9 (scaling out): drive a single-node Docker Swarm: join or make it, wait for a stack's services,
watch swarm replace a task, remove a stack, and see which sockets the swarm listens on.

Everything that talks to the engine goes through `sh()`, quietly (`show=False`) where a notebook polls.

    owned = ensure_swarm()               # init a swarm on 127.0.0.1, or use the one already there
    sh("docker stack deploy ... -c stack.yaml ch09")   # the stack file from workbook.compose_to_stack
    wait_for_stack("ch09")               # every service n/n (with healthchecks: n healthy)
    remove_stack("ch09"); leave_swarm(owned)

Networking here: this kernel has no IPVS, so swarm's routing mesh and virtual IPs do not answer; services
use `endpoint_mode: dnsrr` (the service name resolves to every task's address) and nothing is published:
requests come from a client container attached to the stack's overlay network (workbook.load_client).
"""

from __future__ import annotations

import json
import re
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
