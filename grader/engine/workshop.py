"""What a workshop pack (grader/workshop.py) asks of the engine: images saved and loaded, a pip run in a
container, and the wheelhouse served to every build on this engine."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import docker.errors

from grader.engine.client import WORKSHOP_LABEL, quietly
from grader.engine.containers import Containers
from grader.errors import EngineUnavailable


class Workshop(Containers):
    """A workshop pack's images, its pip run, and its wheelhouse container."""

    def save_images(self, refs: list[str], path: Path) -> None:
        """`docker save` several images into one archive (the SDK saves one image at a time)."""
        proc = subprocess.run(["docker", "save", "--output", str(path), *refs], capture_output=True, text=True)
        if proc.returncode != 0:
            raise EngineUnavailable(f"docker save failed: {proc.stderr.strip()}")

    def run_tool(
        self, image: str, command: list[str], mounts: dict[str, str], timeout_s: float = 900
    ) -> tuple[int, str]:
        """Run `command` in `image` on the default network, host folders mounted ({host: container}), as this user."""
        container = self.client.containers.create(
            image,
            command,
            labels=self.labels,
            user=f"{os.getuid()}:{os.getgid()}",
            environment={"HOME": "/tmp"},
            volumes={host: {"bind": inside, "mode": "rw"} for host, inside in mounts.items()},
        )
        try:
            container.start()
            code = container.wait(timeout=timeout_s)["StatusCode"]
            return code, container.logs().decode(errors="replace")
        finally:
            quietly(container.remove, force=True)

    def load_images(self, path: Path) -> None:
        with open(path, "rb") as archive:
            self.client.images.load(archive)

    def remove_untagged_workshop_images(self) -> int:
        """Remove the pip.conf images a pack's load made once the originals have their names back: untagged,
        they are nothing anyone can use, and each pack loaded and unloaded would leave its set behind."""
        removed = 0
        for image in self.client.images.list(filters={"label": WORKSHOP_LABEL, "dangling": True}):
            try:
                self.client.images.remove(image.id, force=False)
                removed += 1
            except docker.errors.APIError:
                pass  # a container of someone's still uses it: it stays, as docker rmi would leave it
        return removed

    def bridge_gateway(self) -> str:
        """The host's address on the default bridge: what every build step and container can reach it at."""
        config = self.network("bridge")["IPAM"]["Config"] or [{}]
        return config[0].get("Gateway") or "172.17.0.1"

    def start_wheelhouse(self, folder: Path, name: str, port: int, timeout_s: float = 30) -> str:
        """Serve `folder` over HTTP on the default bridge's gateway; returns its address ("172.17.0.1:3141").

        BuildKit runs RUN steps on the default network only (never a user-defined one), so a wheelhouse
        published on the bridge's gateway is what a plain `docker build .` reaches too. Published there, and
        not on every interface, it is not offered to the room's network.
        """
        self.stop_wheelhouse(name)
        gateway = self.bridge_gateway()
        container = self.client.containers.create(
            "python:3.11-slim",
            ["python", "-m", "http.server", str(port), "--directory", "/wheelhouse"],
            name=name,
            labels={WORKSHOP_LABEL: "true"},
            user="65534:65534",
            volumes={str(folder): {"bind": "/wheelhouse", "mode": "ro"}},
            restart_policy={"Name": "unless-stopped"},
            ports={f"{port}/tcp": (gateway, port)},
        )
        container.start()
        probe = ["python", "-c", f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/simple/')"]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.exec(container, probe)[0] == 0:
                return f"{gateway}:{port}"
            time.sleep(0.2)
        raise EngineUnavailable(f"the wheelhouse did not answer within {timeout_s:.0f}s: {self.logs_tail(container)}")

    def stop_wheelhouse(self, name: str) -> None:
        for c in self.client.containers.list(all=True, filters={"name": name, "label": WORKSHOP_LABEL}):
            quietly(c.remove, force=True)
