"""Waiting for a service by polling with a bounded timeout, never by sleeping a fixed time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

POLL_S = 0.05  # a refused connection costs microseconds: poll often, answer fast


@dataclass
class Waited:
    """How a wait ended: `ok`, or why not (`exited`, `timeout`, `unhealthy`, `stopped`), after `seconds`."""

    ok: bool
    reason: str
    seconds: float
    detail: str = ""


def wait_until_answers(
    url: str, state: Callable[[], dict], timeout_s: float, stop: threading.Event | None = None
) -> Waited:
    """Poll `url` until it answers any HTTP response, the container exits, `timeout_s` passes or `stop` is set."""
    start = time.monotonic()
    last_error = ""
    while True:
        elapsed = time.monotonic() - start
        if stop is not None and stop.is_set():  # the grading ended (or was cancelled) while the service started
            return Waited(False, "stopped", elapsed, "the grading stopped before the service answered")
        st = state()
        if not st.get("Running"):
            return Waited(False, "exited", elapsed, f"exit code {st.get('ExitCode')}")
        try:
            reply = requests.get(url, timeout=2)
            return Waited(True, "answered", time.monotonic() - start, f"HTTP {reply.status_code}")
        except requests.RequestException as err:
            last_error = type(err).__name__
        if elapsed > timeout_s:
            return Waited(False, "timeout", elapsed, last_error)
        time.sleep(POLL_S)


def wait_until_healthy(state: Callable[[], dict], timeout_s: float) -> Waited:
    """Poll the engine's health status of a container until healthy, unhealthy, exited or timeout."""
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        st = state()
        health = (st.get("Health") or {}).get("Status", "none")
        if health == "healthy":
            return Waited(True, "healthy", elapsed)
        if health == "unhealthy":
            return Waited(False, "unhealthy", elapsed)
        if not st.get("Running"):
            return Waited(False, "exited", elapsed, f"exit code {st.get('ExitCode')}")
        if elapsed > timeout_s:
            return Waited(False, "timeout", elapsed, f"still '{health}'")
        time.sleep(POLL_S)
