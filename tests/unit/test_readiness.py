"""Waiting for a service by polling: against a real local HTTP server and fake container states."""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from grader import readiness
from grader.readiness import wait_until_answers, wait_until_healthy

RUNNING = {"Running": True, "ExitCode": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):  # noqa: N802  (the name http.server calls)
        body = b'{"status": "ok"}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Failing(Handler):
    status = 503


def serve(handler, port: int = 0) -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return server


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    srv = serve(Handler)
    yield srv
    srv.shutdown()
    srv.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def fast_polling(monkeypatch):
    monkeypatch.setattr(readiness, "POLL_S", 0.02)


def states(*sequence: dict):
    """A fake `state` callable returning each state in turn, then the last one for ever."""
    it = iter(sequence)
    last = {}

    def state() -> dict:
        nonlocal last
        last = next(it, last)
        return last

    return state


# --- wait_until_answers ------------------------------------------------------------------------------------


def test_answers_when_the_server_does(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    waited = wait_until_answers(url, lambda: RUNNING, timeout_s=5)
    assert waited.ok
    assert waited.reason == "answered"
    assert waited.detail == "HTTP 200"
    assert waited.seconds < 2


def test_any_http_status_counts_as_an_answer():
    srv = serve(Failing)
    try:
        waited = wait_until_answers(f"http://127.0.0.1:{srv.server_address[1]}/health", lambda: RUNNING, 5)
    finally:
        srv.shutdown()
        srv.server_close()
    assert waited.ok
    assert waited.detail == "HTTP 503"


def test_polls_until_a_late_server_comes_up():
    port = free_port()
    started: list[http.server.ThreadingHTTPServer] = []
    timer = threading.Timer(0.3, lambda: started.append(serve(Handler, port)))
    timer.start()
    try:
        waited = wait_until_answers(f"http://127.0.0.1:{port}/health", lambda: RUNNING, timeout_s=5)
    finally:
        timer.join()
        for srv in started:
            srv.shutdown()
            srv.server_close()
    assert waited.ok
    assert 0.25 <= waited.seconds < 3


def test_exited_container_is_reported_with_its_exit_code(server):
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    waited = wait_until_answers(url, lambda: {"Running": False, "ExitCode": 3}, timeout_s=5)
    assert not waited.ok
    assert waited.reason == "exited"
    assert "exit code 3" in waited.detail


def test_container_that_exits_while_waited_for():
    state = states(RUNNING, RUNNING, {"Running": False, "ExitCode": 137})
    waited = wait_until_answers(f"http://127.0.0.1:{free_port()}/health", state, timeout_s=5)
    assert waited.reason == "exited"
    assert "exit code 137" in waited.detail


def test_a_wait_stops_when_the_grading_does():
    # The service starts in the background: a grading that ends (or is cancelled) must not wait out its budget.
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    waited = wait_until_answers(f"http://127.0.0.1:{free_port()}/health", lambda: RUNNING, timeout_s=30, stop=stop)
    assert (waited.ok, waited.reason) == (False, "stopped")
    assert time.monotonic() - start < 5


def test_closed_port_times_out_quickly():
    start = time.monotonic()
    waited = wait_until_answers(f"http://127.0.0.1:{free_port()}/health", lambda: RUNNING, timeout_s=0.5)
    took = time.monotonic() - start
    assert not waited.ok
    assert waited.reason == "timeout"
    assert waited.detail == "ConnectionError"
    assert 0.5 <= took < 5
    assert waited.seconds >= 0.5


# --- wait_until_healthy ------------------------------------------------------------------------------------


def health(status: str) -> dict:
    return {"Running": True, "Health": {"Status": status}}


def test_starting_then_healthy():
    waited = wait_until_healthy(states(health("starting"), health("starting"), health("healthy")), timeout_s=5)
    assert waited.ok
    assert waited.reason == "healthy"
    assert waited.seconds < 2


def test_starting_then_unhealthy():
    waited = wait_until_healthy(states(health("starting"), health("unhealthy")), timeout_s=5)
    assert not waited.ok
    assert waited.reason == "unhealthy"


def test_never_healthy_times_out():
    start = time.monotonic()
    waited = wait_until_healthy(states(health("starting")), timeout_s=0.3)
    assert not waited.ok
    assert waited.reason == "timeout"
    assert "starting" in waited.detail
    assert time.monotonic() - start < 3


def test_exit_while_starting():
    waited = wait_until_healthy(states(health("starting"), {"Running": False, "ExitCode": 1}), timeout_s=5)
    assert waited.reason == "exited"
    assert "exit code 1" in waited.detail


def test_no_healthcheck_times_out_saying_none():
    waited = wait_until_healthy(states(RUNNING), timeout_s=0.1)
    assert waited.reason == "timeout"
    assert "none" in waited.detail
