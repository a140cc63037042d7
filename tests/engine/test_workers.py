"""Grading past one machine, for real: a class sent through a Redis broker to two grading workers.

The tests start a real redis-server and a real PostgreSQL cluster (each in a temporary folder, on a free
port of 127.0.0.1), then two workers (`python -m grader worker`, each a process of its own with its own
name, both grading on this machine's engine), and send a small class made from lab 01 with
`run_batch(workers=...)`, as `batch --workers` does. What must hold: every submission graded as a local
batch grades it, both workers took part, the rows are in PostgreSQL, nothing is left on the engine, the
same class again is answered from the gradebook, Ctrl-C on `batch --workers` withdraws what no worker
started, a worker process killed mid-grade leaves its task to another, and every server and worker is
stopped at the end, also when a test fails. Without redis-server or PostgreSQL (`bash
docker/services.sh`) the tests skip with the reason on a laptop, and fail in CI.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
import redis
from celery.result import AsyncResult
from seeded import as_from_a_terminal
from services import missing, postgres_server, redis_server, stopped
from sqlalchemy.engine import make_url

from grader.batch import run_batch
from grader.batch.workers import QUEUE, make_app, session_of
from grader.engine import LABEL, Engine
from grader.gradebook import Gradebook
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]
SOLUTION = SPEC.path
STARTER = REPO_ROOT / "labs" / SOLUTION.name
FULL = sum(c.points for c in SPEC.checks)
NOTHING = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
REQUIRE = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as in tests/conftest.py
WORKERS = ("w1", "w2")
READY_TIMEOUT_S = 120


def copy_of(source: Path, dest: Path, marker: str) -> Path:
    """A copy of `source` whose content differs by one comment (so its content hash differs too)."""
    shutil.copytree(source, dest)
    with (dest / SPEC.code_change).open("a") as f:
        f.write(f"\n# {marker}\n")
    return dest


def make_class(folder: Path) -> Path:
    """Two copies of the solution (one zipped), two of the starter, and a zip that climbs out of its folder."""
    folder.mkdir(parents=True)
    copy_of(SOLUTION, folder / "ada", "ada's own comment")
    bob = copy_of(SOLUTION, folder.parent / "bob", "bob's own comment")
    with zipfile.ZipFile(folder / "bob.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(bob.rglob("*")):
            z.write(path, Path("lab01") / path.relative_to(bob))
    copy_of(STARTER, folder / "cy", "cy's own comment")
    copy_of(STARTER, folder / "dee", "dee's own comment")
    with zipfile.ZipFile(folder / "mal.zip", "w") as z:
        z.writestr("Dockerfile", "FROM python:3.11-slim\n")
        z.writestr("../../escaped.txt", "owned")
    return folder


def answering(broker: str) -> set[str]:
    app = make_app(broker)
    try:
        return {name for reply in app.control.ping(timeout=1.0) for name in reply}
    finally:
        app.close()


def port_open(url: str) -> bool:
    parts = urlsplit(url.replace("postgresql+psycopg", "postgresql"))
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((parts.hostname, parts.port)) == 0


def log_tails(logs: list[Path]) -> str:
    return "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]) for log in logs
    )


def stop_worker(proc: subprocess.Popen) -> None:
    """SIGTERM: the worker finishes its running grade and exits; killed (with its pool) after a minute."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def labeled_sessions(engine: Engine) -> set[str]:
    """The session label of everything any grader has on the engine now (others may be grading too)."""
    client, flt = engine.client, {"label": LABEL}
    found = [*client.containers.list(all=True, filters=flt), *client.images.list(all=True, filters=flt)]
    found += [*client.networks.list(filters=flt), *client.volumes.list(filters=flt)]
    return {(obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}).get(LABEL) for obj in found}


@pytest.fixture(scope="module")
def services(engine_probe):
    """Redis and PostgreSQL, started for this module and stopped after it, whatever happened."""
    connected, why = engine_probe
    if connected is None:
        if REQUIRE:
            pytest.fail(f"CI needs a Docker engine and none answers: {why}")
        pytest.skip(f"no Docker engine: {why}")
    if lacking := missing():
        reason = f"grading workers need {', '.join(lacking)}: install them with `bash docker/services.sh`"
        if REQUIRE:
            pytest.fail(f"CI needs them: {reason}")
        pytest.skip(reason)
    with redis_server() as broker, postgres_server() as gradebook:
        yield broker, gradebook
    assert not port_open(broker) and not port_open(gradebook), "a server still answers after the tests"


@pytest.fixture(scope="module")
def workers(services, tmp_path_factory):
    """Two workers on this machine, each a `python -m grader worker` process, stopped after the module."""
    broker, gradebook = services
    logs = tmp_path_factory.mktemp("workers")
    procs, files = [], []
    try:
        for name in WORKERS:
            log = logs / f"{name}.log"
            files.append(log)
            with log.open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "grader", "worker", "--broker", broker, "--gradebook", gradebook]
                        + ["--name", name],
                        cwd=REPO_ROOT,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: its pool is stopped with it
                    )
                )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while {n.split("@")[0] for n in answering(broker)} != set(WORKERS):
            assert all(p.poll() is None for p in procs), f"a worker exited:\n{log_tails(files)}"
            assert time.monotonic() < deadline, f"the workers did not answer within {READY_TIMEOUT_S}s:\n" + log_tails(
                files
            )
            time.sleep(0.5)
        yield procs, files
    finally:
        for proc in procs:
            stop_worker(proc)
    assert all(proc.returncode == 0 for proc in procs), log_tails(files)  # a warm shutdown exits 0
    assert all(stopped(proc.pid) for proc in procs)


@pytest.fixture(scope="module")
def graded_class(services, workers, engine_probe, tmp_path_factory):
    """The class sent once to the two workers (the tests below read what it did)."""
    broker, gradebook = services
    connected, _ = engine_probe
    root = tmp_path_factory.mktemp("distributed")
    folder = make_class(root / "class")
    before = labeled_sessions(connected)
    summary = run_batch(
        submissions=folder, lab="01", workers=broker, gradebook=gradebook, out=root / "out", quiet=True, timeout_s=600
    )
    return root, folder, summary, before


def test_every_submission_is_graded_as_a_local_batch_grades_it(engine, services, graded_class):
    _, gradebook = services
    root, folder, summary, _ = graded_class
    book = Gradebook(gradebook)
    try:
        rows = {a.learner: a for a in book.attempts("01")}
        assert set(rows) == {"ada", "bob", "cy", "dee", "mal"}
        for learner, source in (("ada", "folder"), ("bob", "zip")):
            assert (rows[learner].status, rows[learner].score, rows[learner].source) == ("graded", FULL, source)
        for learner in ("cy", "dee"):  # the starter fails exactly the lab's learning targets
            assert (rows[learner].status, rows[learner].counted) == ("graded", True)
            failed = {r["check_id"] for r in book.check_rows([rows[learner].id]) if r["status"] == "failed"}
            assert failed == set(SPEC.learning_targets), learner
        assert (rows["mal"].status, rows["mal"].counted) == ("invalid", False)
        assert "outside the submission folder" in rows["mal"].message
        assert not (root / "escaped.txt").exists() and not (root.parent / "escaped.txt").exists()
        # Stored as the class folder names it, not by a worker's scratch copy.
        assert book.result(rows["bob"].id).submission["path"] == str(folder / "bob.zip")
    finally:
        book.close()
    assert summary.exit_code == 1 and not summary.problems  # one invalid submission; everything came back
    assert sorted(g.submission.name for g in summary.graded) == ["ada", "bob.zip", "cy", "dee", "mal.zip"]


def test_both_workers_took_part_and_the_rows_are_in_postgresql(engine, services, graded_class):
    _, gradebook = services
    url = make_url(gradebook)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    with psycopg.connect(dsn) as conn:  # asked of PostgreSQL itself, not through the grader
        by = dict(conn.execute("SELECT learner, graded_by FROM attempts WHERE lab = '01'").fetchall())
    assert set(by) == {"ada", "bob", "cy", "dee", "mal"}
    assert set(by.values()) == {f"{name}@{socket.gethostname()}" for name in WORKERS}, by  # NAME@host


def test_nothing_is_left_on_the_engine_by_either_worker(engine, graded_class):
    _, _, summary, before = graded_class
    assert summary.leftovers == NOTHING  # nothing was left by any grade, before any safety net
    sessions = {g.session for g in summary.graded if g.session}
    assert len(sessions) == 4  # the unsafe zip never reached the engine
    for session in sessions:
        assert Engine(engine.client, session=session).leftovers() == NOTHING
    # Other graders may share this engine: what is new on it since the batch started must not be ours.
    assert not (labeled_sessions(engine) - before) & sessions


def test_outputs_are_written_from_the_shared_gradebook(engine, graded_class):
    root, _, _, _ = graded_class
    out = root / "out"
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert {learner: rows[learner]["status"] for learner in rows} == {
        "ada": "graded",
        "bob": "graded",
        "cy": "graded",
        "dee": "graded",
        "mal": "invalid",
    }
    assert rows["ada"]["score"] == f"{FULL:g}"
    for learner in ("ada", "bob", "cy", "dee", "mal"):
        assert (out / "feedback" / f"{learner}.txt").is_file()
        assert (out / "junit" / f"{learner}.xml").is_file()
    assert (out / "class-report.html").is_file()


def test_the_same_class_again_is_answered_from_the_gradebook(engine, services, graded_class):
    broker, gradebook = services
    root, folder, first, _ = graded_class
    started = time.monotonic()
    again = run_batch(
        submissions=folder, lab="01", workers=broker, gradebook=gradebook, out=root / "out2", quiet=True, timeout_s=600
    )
    seconds = time.monotonic() - started
    assert all(g.reused for g in again.graded), [(g.submission.name, g.reused) for g in again.graded]
    assert [g.attempt_id for g in sorted(again.graded, key=lambda g: g.submission.name)] == [
        g.attempt_id for g in sorted(first.graded, key=lambda g: g.submission.name)
    ]  # answering again adds no attempt
    assert seconds < 30, seconds


def test_ctrl_c_withdraws_what_no_worker_has_started(engine, services, workers, tmp_path):
    """SIGINT once each worker grades one of four: exit 130 at once; the two running are stored when they
    end, the two still queued are never graded, and nothing is left on the engine."""
    broker, gradebook = services
    folder = tmp_path / "class"
    learners = ("s1", "s2", "s3", "s4")
    for name in learners:  # a service that never answers: its grade waits until the 20 s time limit
        (folder / name).mkdir(parents=True)
        (folder / name / "Dockerfile").write_text(f'FROM python:3.11-slim\n# {name}\nCMD ["sleep", "60"]\n')
    command = [sys.executable, "-m", "grader", "batch", str(folder), "--lab", "01", "--workers", broker]
    command += ["--gradebook", gradebook, "--timeout", "20", "--out", str(tmp_path / "out")]
    proc = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    app, queue = make_app(broker), redis.Redis.from_url(broker)
    sessions: set[str] = set()

    def busy() -> list[dict]:
        inspect = app.control.inspect(timeout=1.0)
        found = [t for tasks in (inspect.active() or {}).values() for t in tasks]
        return found + [t for tasks in (inspect.reserved() or {}).values() for t in tasks]

    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while len(running := busy()) < 2 or queue.llen(QUEUE) != 2:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the workers never took two submissions"
            time.sleep(0.2)
        sessions = {session_of(t["id"]) for t in running}
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)  # it does not wait for the running grades
        assert proc.returncode == 130, out
        assert "withdrawn" in out and "run the same command again" in out
        deadline = time.monotonic() + READY_TIMEOUT_S
        while busy() or queue.llen(QUEUE):  # the running two end; the queued two are dropped when received
            assert time.monotonic() < deadline, "the workers are still busy"
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        app.close()
        queue.close()
    book = Gradebook(gradebook)
    try:
        stored = [a.learner for a in book.attempts("01") if a.learner in learners]
    finally:
        book.close()
    assert len(stored) == 2, stored
    for session in sessions:
        assert Engine(engine.client, session=session).leftovers() == NOTHING


def test_a_worker_process_killed_mid_grade_leaves_its_task_to_another(engine, services, workers, tmp_path):
    """SIGKILL of the process grading a submission, once its image is built: the task goes back to the
    queue, is graded again from the start (after what the lost grade left is removed), and stored once."""
    broker, gradebook = services
    copy_of(SOLUTION, tmp_path / "class" / "kit", "kit's own comment")
    command = [sys.executable, "-m", "grader", "batch", str(tmp_path / "class"), "--lab", "01"]
    command += ["--workers", broker, "--gradebook", gradebook, "--out", str(tmp_path / "out"), "--timeout", "300"]
    proc = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    app = make_app(broker)
    try:
        deadline, task = time.monotonic() + READY_TIMEOUT_S, None
        while task is None:
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the submission was never graded past its build"
            active = app.control.inspect(timeout=1.0).active() or {}
            for t in (t for tasks in active.values() for t in tasks):
                info = AsyncResult(t["id"], app=app).info
                if isinstance(info, dict) and info.get("checks", 0) >= 1:
                    task = t
            time.sleep(0.2)
        os.kill(task["worker_pid"], signal.SIGKILL)  # one of the pool processes our workers started
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        app.close()
    assert proc.returncode == 0, out
    book = Gradebook(gradebook)
    try:
        [attempt] = [a for a in book.attempts("01") if a.learner == "kit"]
    finally:
        book.close()
    assert (attempt.status, attempt.score) == ("graded", FULL)
    assert Engine(engine.client, session=session_of(task["id"])).leftovers() == NOTHING
    assert not (Path(tempfile.gettempdir()) / f"grader-task-{session_of(task['id'])}").exists()  # nor on disk


def test_an_older_postgresql_gradebook_is_brought_up_to_date(engine, services):
    """Made before graded_by, with a digest column too short for 'file:' + sha256: opening it fixes both."""
    import sqlalchemy as sa

    from grader import gradebook as gradebook_module

    _, gradebook = services
    url = make_url(gradebook)
    dsn = f"host={url.host} port={url.port} user={url.username} dbname={url.database}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE DATABASE older")
    old_url = url.set(database="older")
    old = sa.MetaData()
    columns = [c._copy() for c in gradebook_module.attempt_table.columns if c.name != "graded_by"]
    table = sa.Table("attempts", old, *columns)
    table.c.content_sha256.type = sa.String(64)
    made = sa.create_engine(old_url)
    old.create_all(made)
    made.dispose()
    book = Gradebook(old_url.render_as_string(hide_password=False))
    try:
        columns = {c["name"]: c["type"] for c in sa.inspect(book.engine).get_columns("attempts")}
        assert "graded_by" in columns and columns["content_sha256"].length == 80
    finally:
        book.close()
