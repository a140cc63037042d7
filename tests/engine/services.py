"""Real Redis and PostgreSQL servers for tests, each in a temporary folder on a free port of 127.0.0.1.

Both are stopped, and their folders removed, when their context ends, also when a test fails. The
programs come from Debian's packages (`bash docker/services.sh` installs them); `missing()` says which
are not there, so that a test can skip with the reason on a laptop and fail in CI.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60


class ServiceFailed(RuntimeError):
    """Raised when a server does not start; the message ends with its log."""


def find(program: str) -> str | None:
    """`program` on PATH, or in Debian's PostgreSQL folder (initdb and pg_ctl are not on PATH there)."""
    if found := shutil.which(program):
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name or 0))
    for folder in reversed(versions):
        if (folder / program).is_file():
            return str(folder / program)
    return None


def missing() -> list[str]:
    """The programs these servers need that this machine lacks."""
    needed = ["redis-server", "initdb", "pg_ctl"] + (["runuser"] if os.geteuid() == 0 else [])
    return [p for p in needed if find(p) is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextmanager
def redis_server() -> Iterator[str]:
    """A Redis server that keeps nothing on disk; yields its URL."""
    import redis

    folder = Path(tempfile.mkdtemp(prefix="grader-test-redis-"))
    log = folder / "redis.log"
    proc = None
    try:
        for _ in range(3):  # the free port may be taken between finding it and binding it: try another
            port = free_port()
            command = [find("redis-server"), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
            command += ["no", "--dir", str(folder), "--daemonize", "no", "--protected-mode", "yes"]
            with log.open("w") as out:
                proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
            url = f"redis://127.0.0.1:{port}/0"
            deadline = time.monotonic() + START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
                        client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    time.sleep(0.1)
            if proc.poll() is None:
                break
        if proc.poll() is not None:
            raise ServiceFailed(f"redis-server did not start:\n{_tail(log)}")
        yield url
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_server(database: str = "grades") -> Iterator[str]:
    """A PostgreSQL cluster of its own (trust authentication, fsync off) with `database`; yields its URL.

    PostgreSQL refuses to run as root: as root, it runs as the `postgres` user the package made.
    """
    import psycopg

    folder = Path(tempfile.mkdtemp(prefix="grader-test-postgres-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceFailed("PostgreSQL refuses to run as root, and there is no 'postgres' user") from None
        os.chown(folder, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = folder / "data", folder / "postgres.log"
    started = False

    def pg_ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*as_user, find("pg_ctl"), "-D", str(data), *args], capture_output=True, text=True, timeout=120
        )

    try:
        init = subprocess.run(
            [*as_user, find("initdb"), "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8"]
            + ["--no-locale", "--no-sync"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if init.returncode != 0:
            raise ServiceFailed(f"initdb failed:\n{init.stdout}{init.stderr}")
        port = free_port()
        options = f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off -c full_page_writes=off"
        start = pg_ctl("-l", str(log), "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start")
        started = True  # even a failed start may leave a server to stop
        if start.returncode != 0:
            raise ServiceFailed(f"PostgreSQL did not start:\n{start.stdout}{start.stderr}\n{_tail(log)}")
        with psycopg.connect(f"host=127.0.0.1 port={port} user=grader dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        yield f"postgresql+psycopg://grader@127.0.0.1:{port}/{database}"
    finally:
        if started:
            pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def stopped(pid: int) -> bool:
    """Whether process `pid` is gone (or a zombie awaiting its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1].startswith("Z")
    except FileNotFoundError:
        return True
