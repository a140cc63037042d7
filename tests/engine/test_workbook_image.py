"""The workbook in a container (docker/workbook/): it builds, starts healthy, and drives the host's engine.

Builds the real image with `docker compose build` (minutes the first time, seconds once its layers are
cached), starts it with `up -d --wait` under a compose project of its own and on a free port, and checks
what a learner relies on: JupyterLab answers with the token and refuses without it; the docker CLI inside
reaches this engine, speaks an API Engine 29 accepts and has buildx; `docker compose` works; everything
runs as uid 1000; and a container started from inside is reachable on 127.0.0.1, as the notebooks and the
grader expect. `compose down -v` removes the project at the end; the image is kept, as build cache for the
next run.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from grader.engine import LABEL as GRADER_LABEL
from grader.engine_facts import ENGINE_29_MIN_CLIENT_API, version_tuple
from grader.spec import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker" / "workbook" / "compose.yaml"
SERVICE = "workbook"
LEARNER_UID = "1000"
BUILD_TIMEOUT_S = 1500  # a cold build installs all of requirements.txt; about 2 minutes here
UP_TIMEOUT_S = 180

# Run inside the container: every process's real uid and first two arguments, except this script's own.
LIST_PROCESSES = """
import json, os, pathlib
found = {}
for proc in pathlib.Path("/proc").iterdir():
    if not proc.name.isdigit() or int(proc.name) == os.getpid():
        continue
    try:
        uid = next(line.split()[1] for line in (proc / "status").read_text().splitlines() if line.startswith("Uid:"))
        argv = [arg.decode() for arg in (proc / "cmdline").read_bytes().split(b"\\0")[:2]]
    except OSError:  # it ended meanwhile
        continue
    found[proc.name] = [uid, argv]
print(json.dumps(found))
"""


def docker_socket() -> Path | None:
    """The engine's unix socket on this machine (DOCKER_HOST or the default), or None for a TCP engine."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    return Path(host.removeprefix("unix://")) if host.startswith("unix://") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(proc: subprocess.CompletedProcess, lines: int = 40) -> str:
    return "\n".join((proc.stdout + proc.stderr).splitlines()[-lines:])


class Workbook:
    """One compose project made from docker/workbook/compose.yaml, with the settings this test gives it."""

    def __init__(self, project: str, port: int, token: str, sock: Path):
        self.project, self.port, self.token = project, port, token
        self.env = {
            **os.environ,
            "WORKBOOK_PORT": str(port),
            "JUPYTER_TOKEN": token,
            "DOCKER_GID": str(sock.stat().st_gid),
            "DOCKER_SOCKET": str(sock),
        }

    def compose(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        cmd = ["docker", "compose", "-f", str(COMPOSE_FILE), "-p", self.project, *args]
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"`{' '.join(cmd)}` exited with {proc.returncode}:\n{tail(proc)}"
        return proc

    def exec(self, *args: str, timeout: float = 60) -> str:
        """Run a command in the workbook container as its own user; its stdout, stripped."""
        return self.compose("exec", "-T", SERVICE, *args, timeout=timeout).stdout.strip()

    def get(self, path: str, token: str | None = None) -> int:
        """The HTTP status JupyterLab answers for `path` on 127.0.0.1 (with the token, if given)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            request.add_header("Authorization", f"token {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as err:
            return err.code


@pytest.fixture
def workbook(engine):
    sock = docker_socket()
    if sock is None or not sock.exists():
        pytest.skip(f"the workbook mounts the engine's unix socket; this engine is at {os.environ.get('DOCKER_HOST')}")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
        message = "`docker compose` is missing: run 'make engine' (it links the Compose plugin)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    wb = Workbook(f"wbtest-{engine.session}", free_port(), secrets.token_hex(16), sock)
    try:
        wb.compose("build", timeout=BUILD_TIMEOUT_S)
        up = wb.compose(
            "up", "-d", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), timeout=UP_TIMEOUT_S + 60, check=False
        )
        if up.returncode != 0:
            logs = wb.compose("logs", "--no-color", check=False)
            pytest.fail(f"the workbook did not become healthy:\n{tail(up)}\n--- its log ---\n{tail(logs)}")
        yield wb
    finally:
        wb.compose("down", "-v", "--remove-orphans", check=False)
        # Should `down` itself fail, the project's label still finds what it made.
        project_filter = {"label": f"com.docker.compose.project={wb.project}"}
        for container in engine.client.containers.list(all=True, filters=project_filter):
            container.remove(force=True, v=True)


# The fixture builds the image: a cold build may need more than the suite's default timeout per test.
@pytest.mark.timeout(BUILD_TIMEOUT_S + 600)
def test_workbook_image_runs_jupyterlab_and_drives_the_host_engine(engine, workbook):
    # JupyterLab answers on 127.0.0.1 with the token, and an authenticated endpoint refuses a request without it.
    assert workbook.get("/api", token=workbook.token) == 200
    assert workbook.get("/api/status", token=workbook.token) == 200
    assert workbook.get("/api/status") == 403, "JupyterLab must not answer its API without the token"

    # The docker CLI inside reaches THIS engine through the mounted socket; Compose works as a plugin.
    server = workbook.exec("docker", "version", "--format", "{{.Server.Version}}")
    assert server == engine.version()["Version"], f"the docker CLI inside reached {server!r}"
    assert "Docker Compose version" in workbook.exec("docker", "compose", "version")
    # A client Engine 29 still accepts (API 1.44 or later), and BuildKit through its buildx plugin.
    client_api = workbook.exec("docker", "version", "--format", "{{.Client.DefaultAPIVersion}}")
    assert version_tuple(client_api) >= version_tuple(ENGINE_29_MIN_CLIENT_API), f"the CLI inside speaks {client_api}"
    assert workbook.exec("docker", "buildx", "version").startswith("github.com/docker/buildx")

    # Everything runs as the learner: the exec'd command, the container's configured user, and JupyterLab.
    assert workbook.exec("id", "-u") == LEARNER_UID
    container_id = workbook.compose("ps", "-q", SERVICE).stdout.strip()
    assert engine.client.containers.get(container_id).attrs["Config"]["User"].split(":")[0] == LEARNER_UID
    processes = json.loads(workbook.exec("python", "-c", LIST_PROCESSES))
    assert any(argv[-1].endswith("jupyter-lab") for _, argv in processes.values()), processes
    assert {uid for uid, _ in processes.values()} == {LEARNER_UID}, f"not every process runs as 1000: {processes}"

    # The mounted repository is importable, and the workbook finds a BuildKit-capable client.
    assert workbook.exec("python", "-c", "import grader, workbook; print(workbook.buildkit_build())") != "None"

    # A container started from inside publishes on the HOST's 127.0.0.1 and is reachable from inside:
    # what every notebook and the grader do. (On a bridge network this is refused.)
    probe = workbook.exec(
        "docker", "run", "-d", "--label", f"{GRADER_LABEL}={engine.session}", "-p", "127.0.0.1::8000",
        "python:3.11-slim", "python3", "-m", "http.server", "8000",
    )  # fmt: skip
    try:
        host_port = workbook.exec("docker", "port", probe, "8000/tcp").splitlines()[0].rsplit(":", 1)[1]
        answered = workbook.exec(
            "python",
            "-c",
            "import time, urllib.request\n"
            "for _ in range(60):\n"
            "    try:\n"
            f"        print(urllib.request.urlopen('http://127.0.0.1:{host_port}/', timeout=2).status); break\n"
            "    except OSError:\n"
            "        time.sleep(0.5)\n",
        )
        assert answered == "200", f"a container published on 127.0.0.1:{host_port} was not reachable from inside"
    finally:
        subprocess.run(["docker", "rm", "-f", probe], capture_output=True)
