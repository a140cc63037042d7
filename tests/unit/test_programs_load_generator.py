"""workbook/programs/load_generator.py, run in-process against a local HTTP server on 127.0.0.1, and once as
the script the client container runs (SIGTERM, then the JSON report)."""

from __future__ import annotations

import http.server
import json
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from workbook.programs import load_generator
from workbook.programs.load_generator import main, one_request, send_load


class Versioned(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        status = 500 if self.path == "/broken" else 200
        self.send_response(status)
        self.send_header("X-App-Version", "7")
        self.send_header("X-Served-By", "replica-a")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Versioned)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def refused_url() -> str:
    """A URL on a port nothing listens on (taken from the kernel, then closed again)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    return f"http://127.0.0.1:{port}/health"


def test_one_request_records_who_answered(local_server):
    before = time.time()
    row = one_request(f"{local_server}/health")
    assert (row["status"], row["version"], row["served_by"]) == (200, "7", "replica-a")
    assert before - 0.001 <= row["t"] <= time.time() and row["ms"] >= 0 and "error" not in row


def test_one_request_counts_an_http_error_and_no_answer_at_all(local_server):
    broken = one_request(f"{local_server}/broken")
    assert (broken["status"], broken["error"]) == (500, "HTTP 500") and "version" not in broken
    refused = one_request(refused_url())
    assert refused["status"] == 0 and refused["error"].startswith("URLError")


def test_send_load_runs_until_stopped_and_returns_every_request_oldest_first(local_server):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    started = time.perf_counter()
    samples = send_load(f"{local_server}/health", max_s=30, pause=0.01, threads=3, stop=stop)
    assert time.perf_counter() - started < 5
    assert len(samples) >= 3 and all(s["status"] == 200 for s in samples)
    assert [s["t"] for s in samples] == sorted(s["t"] for s in samples)


def test_send_load_stops_by_itself_after_max_s(local_server):
    started = time.perf_counter()
    samples = send_load(f"{local_server}/broken", max_s=0.3, pause=0.01, threads=1, stop=threading.Event())
    assert time.perf_counter() - started < 5
    assert samples and all(s["status"] == 500 for s in samples)


def test_main_reports_as_json_once_sigterm_stops_it(local_server, monkeypatch, capsys):
    handlers = {}
    monkeypatch.setattr(load_generator.signal, "signal", lambda signum, handler: handlers.update({signum: handler}))
    # SIGTERM "arrives" after a moment: the handler main() installed is what stops the loops.
    threading.Timer(0.3, lambda: handlers[signal.SIGTERM](signal.SIGTERM, None)).start()
    main([f"{local_server}/health", "30", "0.01", "2"])
    report = json.loads(capsys.readouterr().out)
    assert report["url"] == f"{local_server}/health" and report["threads"] == 2
    assert len(report["samples"]) >= 2


def test_the_file_runs_as_a_script_and_reports_on_sigterm(local_server):
    proc = subprocess.Popen(
        [sys.executable, load_generator.__file__, f"{local_server}/health", "30", "0.01", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    samples = json.loads(out)["samples"]
    assert len(samples) >= 3
    assert all(s["status"] == 200 and s["version"] == "7" and s["served_by"] == "replica-a" for s in samples)
