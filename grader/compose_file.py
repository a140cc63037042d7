"""A learner's Compose file, as `docker compose config --format json` normalises it.

Two pure functions: `violations` says what the grader refuses to run (before anything starts), and
`for_grading` rewrites the configuration the grader really runs: its labels on everything (so the
session's cleanup finds every object), its resource limits on every container, published ports on
127.0.0.1 with a free host port (two gradings never collide), and healthchecks polled every second.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from grader.spec import Limits

# What a graded container may log: a service that floods its log (`yes &` in CMD) otherwise fills the
# engine's disk at tens of MB a second. Two files of 2 MB keep far more than the tail the evidence shows.
GRADED_LOG_OPTIONS = {"max-size": "2m", "max-file": "2"}

DOCKER_SOCKET = "docker.sock"
HOST_NAMESPACES = ("network_mode", "pid", "ipc", "userns_mode", "uts")
UNCONFINED = ("seccomp:unconfined", "seccomp=unconfined", "apparmor:unconfined", "apparmor=unconfined")


def violations(config: dict, submission: Path, allow_gpu: bool = False) -> list[str]:
    """Everything in the stack that could reach outside its containers; empty when the file may run."""
    submission = Path(submission).resolve()
    found = []
    for name, service in sorted((config.get("services") or {}).items()):
        where = f"service {name!r}"
        if service.get("privileged"):
            found.append(f"{where} asks for privileged mode (privileged: true)")
        for key in HOST_NAMESPACES:
            if service.get(key) == "host":
                found.append(f"{where} shares the host's {key.split('_')[0]} namespace ({key}: host)")
        if service.get("cap_add"):
            found.append(f"{where} adds capabilities (cap_add: {', '.join(service['cap_add'])})")
        if service.get("devices"):
            found.append(f"{where} maps host devices (devices: ...)")
        if any(opt in UNCONFINED for opt in service.get("security_opt") or ()):
            found.append(f"{where} turns off a security profile (security_opt: ...unconfined)")
        for volume in service.get("volumes") or ():
            source = str(volume.get("source") or "")
            if DOCKER_SOCKET in source:
                found.append(f"{where} mounts the Docker socket ({source}): that is root on the host")
            elif volume.get("type") == "bind" and not _inside(Path(source), submission):
                found.append(f"{where} mounts a host path outside the submission ({source})")
        reserved = (((service.get("deploy") or {}).get("resources") or {}).get("reservations") or {}).get("devices")
        if reserved and not allow_gpu:
            found.append(f"{where} reserves devices (deploy.resources.reservations.devices): only the GPU lab may")
        if (service.get("build") or {}).get("network") == "host":
            found.append(f"{where} builds on the host's network (build.network: host)")
    return found


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


@dataclass
class Published:
    """A port a service publishes, as the learner wrote it."""

    service: str
    target: int
    host_ip: str
    published: str


@dataclass
class GradingConfig:
    config: dict
    published: list[Published] = field(default_factory=list)
    built: list[str] = field(default_factory=list)  # services built from a Dockerfile


def for_grading(
    config: dict,
    labels: dict[str, str],
    limits: Limits,
    healthcheck_interval: str = "1s",
) -> GradingConfig:
    """The configuration the grader runs: the learner's stack, within the grader's limits and labels."""
    config = copy.deepcopy(config)
    published = []
    built = []
    for name, service in (config.get("services") or {}).items():
        service["labels"] = {**(service.get("labels") or {}), **labels}
        if service.get("build"):
            service["build"]["labels"] = {**(service["build"].get("labels") or {}), **labels}
            built.append(name)
        service["cpus"] = limits.cpus
        service["mem_limit"] = f"{limits.memory_mb}m"
        service["pids_limit"] = limits.pids
        # The grader's limits replace the learner's (Compose refuses both `cpus` and deploy limits).
        ((service.get("deploy") or {}).get("resources") or {}).pop("limits", None)
        service["security_opt"] = sorted({*(service.get("security_opt") or ()), "no-new-privileges:true"})
        # A service that floods its log must not fill the engine's disk (the same cap as a single container's).
        service["logging"] = {"driver": "json-file", "options": dict(GRADED_LOG_OPTIONS)}
        service.pop("restart", None)  # a crash must show as a crash, not as a container that keeps restarting
        ports = []
        for port in service.get("ports") or ():
            published.append(
                Published(name, int(port["target"]), port.get("host_ip") or "", str(port.get("published") or ""))
            )
            # Whatever the learner asked for, the grader binds on loopback and lets the kernel choose the port.
            ports.append({**port, "host_ip": "127.0.0.1", "published": ""})
        if ports:
            service["ports"] = ports
        health = service.get("healthcheck")
        if health is None or not health.get("disable"):
            # An interval alone keeps the image's own test: only how often it runs changes.
            service["healthcheck"] = {**(health or {}), "interval": healthcheck_interval}
    for net in (config.get("networks") or {}).values():
        if net.get("external"):
            continue
        net["labels"] = {**(net.get("labels") or {}), **labels}
        if limits.network == "no-egress" and not net.get("internal"):
            # No NAT: the published port works from the host, the internet is unreachable (as for one container).
            net["driver_opts"] = {
                **(net.get("driver_opts") or {}),
                "com.docker.network.bridge.enable_ip_masquerade": "false",
            }
    for volume in (config.get("volumes") or {}).values():
        if not volume.get("external"):
            volume["labels"] = {**(volume.get("labels") or {}), **labels}
    return GradingConfig(config, published, built)
