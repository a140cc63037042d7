"""Small typed views of engine objects: what checks read, instead of the SDK's raw `attrs` dictionaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ContainerView:
    """One container as a check sees it, read once from `docker inspect`."""

    name: str
    image_id: str
    status: str  # created, running, exited, ...
    health: str | None  # starting, healthy, unhealthy; None without a HEALTHCHECK
    health_log: list[dict] = field(default_factory=list)  # the engine's last probe results
    exit_code: int | None = None
    oom_killed: bool = False
    created: float = 0.0  # Unix seconds
    started: float | None = None  # Unix seconds; None before it first started
    published_ports: list[str] = field(default_factory=list)  # "5000/tcp", each bound to a host port
    host_ports: dict[str, int] = field(default_factory=dict)  # "5000/tcp" -> the host port it is bound to
    networks: dict[str, list[str]] = field(default_factory=dict)  # network name -> the container's aliases there
    network_mode: str = ""

    @classmethod
    def from_attrs(cls, attrs: dict) -> ContainerView:
        state = attrs.get("State") or {}
        health = state.get("Health") or {}
        settings = attrs.get("NetworkSettings") or {}
        ports = settings.get("Ports") or {}
        return cls(
            name=(attrs.get("Name") or "").lstrip("/"),
            image_id=attrs.get("Image") or "",
            status=state.get("Status") or "",
            health=health.get("Status"),
            health_log=list(health.get("Log") or []),
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            created=unix_time(attrs.get("Created")) or 0.0,
            started=unix_time(state.get("StartedAt")),
            published_ports=sorted(port for port, bindings in ports.items() if bindings),
            host_ports={port: int(bindings[0]["HostPort"]) for port, bindings in ports.items() if bindings},
            networks={name: list(net.get("Aliases") or []) for name, net in (settings.get("Networks") or {}).items()},
            network_mode=(attrs.get("HostConfig") or {}).get("NetworkMode") or "",
        )


def unix_time(stamp: str | None) -> float | None:
    """The engine's RFC 3339 time stamp (UTC, nanoseconds) as Unix seconds; None for none or the zero time."""
    if not stamp or stamp.startswith("0001-"):
        return None
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float(f"0.{fraction or 0}")
