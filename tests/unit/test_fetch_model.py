"""workbook/programs/fetch_model.py, run in-process against a local HTTP server, and once as a script: no Docker.

The program ends by exec-ing the image's CMD; the in-process tests replace os.execvp to see what it would have run.
"""

import functools
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import threading

import pytest

from workbook.programs import fetch_model

MODEL = b"not really a model, but bytes all the same\n"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep the test output to what the program prints
        pass


@pytest.fixture
def served(tmp_path):
    """A folder served over HTTP on 127.0.0.1: (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def executed(monkeypatch):
    """The commands main() hands over to (os.execvp would replace the test process)."""
    commands = []
    monkeypatch.setattr(fetch_model.os, "execvp", lambda file, args: commands.append([file, *args]))
    return commands


@pytest.fixture
def no_waiting(monkeypatch):
    """The pauses between attempts, recorded instead of slept."""
    pauses = []
    monkeypatch.setattr(fetch_model.time, "sleep", pauses.append)
    return pauses


def environment(url, path, sha256=None):
    env = {"MODEL_URL": url, "MODEL_PATH": str(path)}
    if sha256 is not None:
        env["MODEL_SHA256"] = sha256
    return env


def test_downloads_checks_saves_and_hands_over_to_the_command(served, tmp_path, executed, capsys):
    folder, base = served
    (folder / "v1.joblib").write_bytes(MODEL)
    target = tmp_path / "model.joblib"
    digest = hashlib.sha256(MODEL).hexdigest()

    fetch_model.main(
        ["gunicorn", "--bind", "0.0.0.0:5000", "app:app"], environment(f"{base}/v1.joblib", target, digest)
    )

    assert target.read_bytes() == MODEL
    assert executed == [["gunicorn", "gunicorn", "--bind", "0.0.0.0:5000", "app:app"]], "execvp(file, argv)"
    said = capsys.readouterr().out
    assert f"fetch_model: {len(MODEL)} bytes from {base}/v1.joblib -> {target} (sha256 {digest[:12]})" in said


def test_without_a_sha256_any_file_is_accepted(served, tmp_path, executed):
    folder, base = served
    (folder / "v1.joblib").write_bytes(MODEL)
    fetch_model.main(["true"], environment(f"{base}/v1.joblib", tmp_path / "model.joblib"))
    assert (tmp_path / "model.joblib").read_bytes() == MODEL
    assert executed == [["true", "true"]]


def test_a_wrong_sha256_stops_before_saving_or_starting_anything(served, tmp_path, executed):
    folder, base = served
    (folder / "v1.joblib").write_bytes(MODEL)
    target = tmp_path / "model.joblib"
    with pytest.raises(SystemExit) as stopped:
        fetch_model.main(["true"], environment(f"{base}/v1.joblib", target, "0" * 64))
    assert f"{base}/v1.joblib has sha256 {hashlib.sha256(MODEL).hexdigest()}, expected {'0' * 64}" in str(stopped.value)
    assert not target.exists() and executed == []


def test_retries_until_the_server_has_the_file(served, tmp_path, executed, monkeypatch, capsys):
    folder, base = served
    pauses = []

    def publish_on_second_pause(seconds):
        # The model server "finishes starting" while the wrapper waits: 404 twice, then the file.
        pauses.append(seconds)
        if len(pauses) == 2:
            (folder / "v1.joblib").write_bytes(MODEL)

    monkeypatch.setattr(fetch_model.time, "sleep", publish_on_second_pause)
    fetch_model.main(["true"], environment(f"{base}/v1.joblib", tmp_path / "model.joblib"))

    assert pauses == [fetch_model.PAUSE_S, fetch_model.PAUSE_S]
    said = capsys.readouterr().out
    assert "fetch_model: attempt 1:" in said and "fetch_model: attempt 2:" in said and "404" in said
    assert "attempt 3" not in said
    assert (tmp_path / "model.joblib").read_bytes() == MODEL and executed == [["true", "true"]]


def test_gives_up_after_the_last_attempt(tmp_path, executed, no_waiting, capsys):
    with socket.socket() as probe:  # a port nothing listens on: every attempt is refused
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1.joblib"
    with pytest.raises(SystemExit) as stopped:
        fetch_model.main(["true"], environment(url, tmp_path / "model.joblib"))
    assert str(stopped.value) == f"fetch_model: could not download the model from {url}"
    assert capsys.readouterr().out.count("fetch_model: attempt ") == fetch_model.ATTEMPTS
    assert len(no_waiting) == fetch_model.ATTEMPTS - 1, "no pause after the last attempt"
    assert not (tmp_path / "model.joblib").exists() and executed == []


@pytest.mark.parametrize("missing", ["MODEL_URL", "MODEL_PATH"])
def test_a_missing_setting_stops_with_its_name(tmp_path, executed, missing):
    env = environment("http://127.0.0.1:9/v1.joblib", tmp_path / "model.joblib")
    del env[missing]
    with pytest.raises(SystemExit, match=missing):
        fetch_model.main(["true"], env)
    assert executed == []


def test_no_command_to_hand_over_to(tmp_path, executed):
    with pytest.raises(SystemExit, match="no command"):
        fetch_model.main([], environment("http://127.0.0.1:9/v1.joblib", tmp_path / "model.joblib"))
    assert executed == []


def test_as_an_entrypoint_the_command_takes_over_the_process(served, tmp_path):
    folder, base = served
    (folder / "v1.joblib").write_bytes(MODEL)
    target = tmp_path / "model.joblib"
    env = {**os.environ, **environment(f"{base}/v1.joblib", target, hashlib.sha256(MODEL).hexdigest())}
    command = [sys.executable, "-c", "import os; print('the command runs as PID', os.getpid())"]
    wrapper = subprocess.Popen(
        [sys.executable, fetch_model.__file__, *command],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out, _ = wrapper.communicate(timeout=60)
    assert wrapper.returncode == 0, out
    assert out.splitlines()[0].startswith(f"fetch_model: {len(MODEL)} bytes from {base}/v1.joblib")
    assert f"the command runs as PID {wrapper.pid}" in out, "exec: the command replaced the wrapper, same PID"
    assert target.read_bytes() == MODEL


def test_as_an_entrypoint_a_failure_exits_non_zero_with_the_reason(served, tmp_path):
    folder, base = served
    (folder / "v1.joblib").write_bytes(MODEL)
    env = {**os.environ, **environment(f"{base}/v1.joblib", tmp_path / "model.joblib", "0" * 64)}
    done = subprocess.run(
        [sys.executable, fetch_model.__file__, "true"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "expected " + "0" * 64 in done.stderr
    assert not (tmp_path / "model.joblib").exists()
