"""Containers and networks: the learner's service, short probes, files read from an image, and events."""

from __future__ import annotations

import io
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import docker.errors
from docker.utils import version_gte

import docker
from grader.compose_file import GRADED_LOG_OPTIONS
from grader.engine.client import Connection, quietly
from grader.engine.views import ContainerView
from grader.spec import Limits
from grader.streams import ChunkReader

CHUNK = 1 << 20
START_INTERVAL_API = "1.44"  # Engine 25: the first API with Healthcheck.StartInterval


def held_to(limits: Limits) -> dict:
    """The options of a graded service's container that hold it to the lab's limits (CPU, memory,
    processes, no privilege gain) and keep its log bounded; the same in both ways of starting one below."""
    return dict(
        nano_cpus=int(limits.cpus * 1e9),
        mem_limit=f"{limits.memory_mb}m",
        pids_limit=limits.pids,
        security_opt=["no-new-privileges"],
        log_config=docker.types.LogConfig(type="json-file", config=dict(GRADED_LOG_OPTIONS)),
    )


class Containers(Connection):
    """Containers and networks of this session, and the engine's events."""

    def run_once(self, image: str, entrypoint: list[str], timeout_s: float = 30) -> tuple[int, str]:
        """Run a short command in `image` with no network and return (exit code, output)."""
        self._raise_if_stopped()
        container = self.client.containers.create(
            image,
            entrypoint=entrypoint,
            command=[],
            labels=self.labels,
            network_disabled=True,
            name=self.name(f"probe-{uuid.uuid4().hex[:6]}"),
        )
        try:
            container.start()
            code = container.wait(timeout=timeout_s)["StatusCode"]
            return code, container.logs().decode(errors="replace").strip()
        finally:
            container.remove(force=True)

    @contextmanager
    def archive(self, image: str, path: str) -> Iterator[tarfile.TarFile | None]:
        """The files under `path` in `image` as a streaming tar archive (`docker cp`), or None if it lacks `path`.

        Nothing of the image runs: its container is only created, so that the engine can hand out its
        files, and removed afterwards. Members are named after the folder's last component ("app/x.py"
        for /app), or with a leading slash for "/".
        """
        self._raise_if_stopped()
        container = self.client.containers.create(
            image,
            entrypoint=["/never-started"],
            command=[],
            labels=self.labels,
            name=self.name(f"files-{uuid.uuid4().hex[:6]}"),
            network_disabled=True,
        )
        try:
            try:
                chunks, _ = container.get_archive(path, chunk_size=CHUNK)
            except docker.errors.NotFound:
                yield None
                return
            with tarfile.open(fileobj=io.BufferedReader(ChunkReader(chunks), CHUNK), mode="r|") as tar:
                yield tar
        finally:
            quietly(container.remove, force=True)

    def create_network(self, limits: Limits):
        """A private bridge for the service; without NAT when the lab allows no egress."""
        self._raise_if_stopped()
        options = {}
        if limits.network == "no-egress":
            options["com.docker.network.bridge.enable_ip_masquerade"] = "false"
        return self.client.networks.create(self.name("net"), driver="bridge", options=options, labels=self.labels)

    def start_service(
        self,
        image: str,
        port: int,
        limits: Limits,
        network: str,
        healthcheck: dict | None,
        name: str = "service",
        extra: dict | None = None,
    ):
        """Start the learner's service with resource limits, its port published on 127.0.0.1 only.

        `healthcheck` takes the SDK's keys plus "start_interval" (ns): how often to probe during the start
        period, which the SDK cannot send. `extra` adds options of the SDK's `containers.run` (e.g.
        read_only, tmpfs) for a check's own container.
        """
        self._raise_if_stopped()
        healthcheck = dict(healthcheck) if healthcheck else None
        start_interval = healthcheck.pop("start_interval", None) if healthcheck else None
        if start_interval and not extra and version_gte(self.client.api.api_version, START_INTERVAL_API):
            return self._start_probed_often(image, port, limits, network, healthcheck, start_interval, name)
        return self.client.containers.run(
            image,
            detach=True,
            name=self.name(name),
            labels=self.labels,
            ports={f"{port}/tcp": ("127.0.0.1", None)},
            network=network,
            healthcheck=healthcheck,
            **held_to(limits),
            **(extra or {}),
        )

    def _start_probed_often(
        self, image: str, port: int, limits: Limits, network: str, healthcheck: dict, start_interval: int, name: str
    ):
        """The same container as `containers.run` above starts, with Healthcheck.StartInterval set.

        Engine 25 and later probe every StartInterval (default 5 s) during the start period, whatever the
        interval: without it, a service healthy after 1 s is reported healthy after 5. The SDK drops the
        key, so the create request is made with the SDK's low-level calls and the key added to it.
        """
        api = self.client.api
        host_config = api.create_host_config(
            port_bindings={port: ("127.0.0.1", None)},
            network_mode=network,
            **held_to(limits),
        )
        config = api.create_container_config(
            image, None, detach=True, ports=[port], labels=self.labels, healthcheck=healthcheck, host_config=host_config
        )
        config["Healthcheck"]["StartInterval"] = start_interval
        created = api.create_container_from_config(config, self.name(name))
        container = self.client.containers.get(created["Id"])
        container.start()
        return container

    def host_port(self, container, port: int) -> int | None:
        self._raise_if_stopped()
        container.reload()
        bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp") or []
        return int(bindings[0]["HostPort"]) if bindings else None

    def view(self, container) -> ContainerView:
        """The container as it is now, as a typed view (state, health, ports, networks)."""
        self._raise_if_stopped()
        container.reload()
        return ContainerView.from_attrs(container.attrs)

    def state(self, container) -> dict:
        self._raise_if_stopped()  # polled while waiting for readiness: a stop ends the wait at once
        container.reload()
        return container.attrs["State"]

    @staticmethod
    def logs_tail(container, lines: int = 25) -> str:
        try:
            return container.logs(tail=lines).decode(errors="replace").rstrip()
        except docker.errors.APIError:
            return ""

    def exec(self, container, cmd: list[str]) -> tuple[int, str]:
        self._raise_if_stopped()
        code, out = container.exec_run(cmd)
        return code, out.decode(errors="replace")

    def network(self, name: str) -> dict:
        return self.client.api.inspect_network(name)

    def events(self, since: float, filters: dict) -> list[dict]:
        """The engine's events from `since` (a Unix time) until now, oldest first."""
        return list(self.client.events(since=since, until=time.time(), filters=filters, decode=True))
