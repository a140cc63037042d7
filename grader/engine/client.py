"""The connection to the Docker engine, and what every part of `Engine` shares.

Built on the Docker SDK for Python. Everything created through an engine carries the grader's labels, so
that `remove_session` (and `python -m grader clean`) can find and remove it, also after a crash. A batch
gives each submission's engine a stop event and a deadline: engine work it starts after the stop raises
Cancelled, and a build never runs past the deadline.
"""

from __future__ import annotations

import threading
import uuid

import docker.errors
import requests.exceptions
from docker.utils import kwargs_from_env

import docker
from grader.errors import EngineUnavailable

# One label, valued with the session id: everything a grading session creates carries it.
LABEL = "org.mlcontainers.grader"
# An image of a lab's dependencies that a grade keeps for the next grade of that lab, valued with the lab id
# (grader/session.py, GradingContext.settle_kept_image). Not a session's: `leftovers` and `clean` pass it by.
KEPT_LABEL = "org.mlcontainers.grader.kept"
STANDIN_LABEL = "org.mlcontainers.standin"
# A workshop pack's wheelhouse and the base images it changed carry this label (see grader/workshop.py).
WORKSHOP_LABEL = "org.mlcontainers.workshop"
PING_TIMEOUT_S = 10
CALL_TIMEOUT_S = 300


class Cancelled(KeyboardInterrupt):
    """Raised inside a running grade when the batch is stopping: the grade removes what it started and ends."""


def open_client(timeout_s: float = PING_TIMEOUT_S) -> docker.DockerClient:
    """A client of the engine named by the environment (DOCKER_HOST or the default socket), pinged once."""
    hint = "start an engine with 'make engine' (or start Docker Desktop), then check 'docker info'"
    try:
        client = docker.DockerClient(version="auto", timeout=timeout_s, **kwargs_from_env())
        client.ping()
        # The ping answers fast or never; other calls (removing images, pruning) can take long on a busy engine.
        client.api.timeout = CALL_TIMEOUT_S
    except docker.errors.DockerException as err:
        text = str(err)
        if "Permission denied" in text:
            raise EngineUnavailable(
                "the Docker socket exists but this user may not use it",
                hint="add yourself to the 'docker' group (sudo usermod -aG docker $USER), then log in again",
            ) from None
        if "No such file" in text or "Connection refused" in text or "FileNotFoundError" in text:
            raise EngineUnavailable("no Docker engine is running (its socket does not answer)", hint=hint) from None
        raise EngineUnavailable(f"the Docker engine did not answer a ping: {text}", hint=hint) from None
    except requests.exceptions.RequestException as err:
        raise EngineUnavailable(
            f"the Docker engine did not answer a ping within {timeout_s}s: {err}", hint=hint
        ) from None
    return client


class Connection:
    """A connected engine, the label of the grading session using it, and when its work must stop.

    `stop` (a threading.Event) cancels the session's engine work: each method that starts or waits on
    some raises Cancelled once it is set. `deadline` (a time.monotonic() value) is when the grade's
    time is up: a build is stopped there. Removing what the session made is never cancelled.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        session: str | None = None,
        stop: threading.Event | None = None,
        deadline: float | None = None,
    ):
        self.client = client
        self.session = session or uuid.uuid4().hex[:12]
        self.stop = stop
        self.deadline = deadline

    def _raise_if_stopped(self) -> None:
        if self.stop is not None and self.stop.is_set():
            raise Cancelled()

    # --- labels ---------------------------------------------------------------------------------
    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.session}

    def name(self, what: str) -> str:
        return f"grader-{self.session}-{what}"

    # --- facts ------------------------------------------------------------------------------------
    def version(self) -> dict:
        return self.client.version()

    def info(self) -> dict:
        return self.client.info()


def quietly(fn, *args, **kwargs) -> None:
    """Remove something; a failure to remove one object must not stop the removal of the others."""
    try:
        fn(*args, **kwargs)
    except docker.errors.APIError:
        pass  # already gone, or still used by another session's image
    except requests.exceptions.RequestException:
        pass  # the engine is too busy to answer now; `python -m grader clean` finds it later by its label
