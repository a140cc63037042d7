"""Batch grading for real: a small class made from lab 01, graded two at a time on the engine.

The class: the reference solution as a folder (full marks), the starter as a zip (fails its learning
targets), a seeded defect as a tar (caught by its check), a variant of the solution as a git repository,
a folder with no Dockerfile and a zip that climbs out of its folder (both invalid, no attempt). Then: the
same batch again is answered from the gradebook, a tiny time limit ends as `timeout`, Ctrl-C stops the
batch with nothing left on the engine, and running the command again resumes it.
"""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from functools import partial
from pathlib import Path

import pytest
from seeded import apply_defect, as_from_a_terminal, host_processes, unique_sleep, wait_for

from grader.batch import run_batch
from grader.batch.roster import Submission
from grader.batch.runner import grade_one
from grader.engine import LABEL, Engine
from grader.gradebook import Gradebook
from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]
SOLUTION = SPEC.path
STARTER = REPO_ROOT / "labs" / SOLUTION.name
NOTHING = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
REQUIRE_ENGINE = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # as in tests/conftest.py


def git(*args, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True
    )


def variant(dest: Path, marker: str) -> Path:
    """A copy of the solution whose content differs by one comment (so its content hash differs too)."""
    shutil.copytree(SOLUTION, dest)
    with (dest / "app" / "app.py").open("a") as f:
        f.write(f"\n# {marker}\n")
    return dest


def make_class(root: Path, scratch: Path) -> Path:
    folder = root / "class"
    folder.mkdir(parents=True)
    shutil.copytree(SOLUTION, folder / "ada")
    with zipfile.ZipFile(folder / "bob.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(STARTER.rglob("*")):
            z.write(path, Path("01-first-model-container") / path.relative_to(STARTER))
    no_user = apply_defect(SOLUTION, scratch, [("Dockerfile", "USER 10001:10001\n", "")])
    with tarfile.open(folder / "cy.tar.gz", "w:gz") as t:
        t.add(no_user, arcname="lab01")
    repo = variant(folder / "dee", "dee's own comment")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "lab 01", cwd=repo)
    (folder / "eve").mkdir()
    (folder / "eve" / "README.md").write_text("I forgot the Dockerfile\n")
    with zipfile.ZipFile(folder / "mal.zip", "w") as z:
        z.writestr("Dockerfile", "FROM python:3.11-slim\n")
        z.writestr("../../escaped.txt", "owned")
    return folder


@pytest.fixture(scope="module")
def graded_class(engine_probe, tmp_path_factory):
    """The class graded once with --jobs 2 (the tests below read what it did)."""
    connected, why = engine_probe
    if connected is None:
        if REQUIRE_ENGINE:
            pytest.fail(f"CI needs a Docker engine and none answers: {why}")
        pytest.skip(f"no Docker engine: {why}")
    root = tmp_path_factory.mktemp("batch")
    folder = make_class(root, tmp_path_factory.mktemp("defect"))
    url = f"sqlite:///{root}/gradebook.sqlite"
    summary = run_batch(submissions=folder, lab="01", jobs=2, gradebook=url, out=root / "out", quiet=True)
    return root, folder, url, summary


def test_the_class_is_graded_into_the_gradebook(engine, graded_class):
    root, _, url, summary = graded_class
    book = Gradebook(url)
    rows = {a.learner: a for a in book.attempts("01")}
    assert set(rows) == {"ada", "bob", "cy", "dee", "eve", "mal"}
    full = sum(c.points for c in SPEC.checks)
    assert (rows["ada"].status, rows["ada"].score, rows["ada"].source) == ("graded", full, "folder")
    assert (rows["dee"].status, rows["dee"].score, rows["dee"].source) == ("graded", full, "git")
    assert rows["bob"].source == "zip" and rows["bob"].status == "graded"
    bob_failed = {r["check_id"] for r in book.check_rows([rows["bob"].id]) if r["status"] == "failed"}
    assert bob_failed == set(SPEC.learning_targets)
    cy_failed = {r["check_id"] for r in book.check_rows([rows["cy"].id]) if r["status"] == "failed"}
    assert (rows["cy"].source, cy_failed) == ("tar", {"NonRootUser"})
    for learner in ("eve", "mal"):  # kept with the reason, but not an attempt
        assert (rows[learner].status, rows[learner].counted, rows[learner].score) == ("invalid", False, None)
    assert rows["eve"].message.startswith("no Dockerfile in eve")
    assert "outside the submission folder" in rows["mal"].message
    assert not (root / "escaped.txt").exists() and not (root.parent / "escaped.txt").exists()
    assert {s.learner: s.attempts for s in book.summaries("01")} == {
        "ada": 1,
        "bob": 1,
        "cy": 1,
        "dee": 1,
        "eve": 0,
        "mal": 0,
    }
    book.close()
    assert summary.exit_code == 1  # two submissions could not be graded


def test_nothing_is_left_on_the_engine(engine, graded_class):
    _, _, _, summary = graded_class
    assert summary.leftovers == NOTHING  # nothing was left by any grade, before any safety net
    sessions = [g.session for g in summary.graded if g.session]
    assert len(sessions) == 5  # the unsafe zip never reached the grader
    for session in sessions:
        assert Engine(engine.client, session=session).leftovers() == NOTHING


def test_exports_feedback_and_report_are_written(engine, graded_class):
    root, _, _, _ = graded_class
    out = root / "out"
    rows = {r["learner"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert (rows["ada"]["status"], rows["ada"]["attempts"]) == ("graded", "1")
    assert (rows["mal"]["status"], rows["mal"]["score"]) == ("invalid", "")
    for learner in ("ada", "bob", "cy", "dee", "eve", "mal"):
        assert (out / "feedback" / f"{learner}.txt").is_file()
        assert (out / "gradescope" / learner / "results.json").is_file()
        assert (out / "prairielearn" / learner / "results.json").is_file()
        assert (out / "junit" / f"{learner}.xml").is_file()
    assert "FAIL Runs as a non-root user" in (out / "feedback" / "cy.txt").read_text()
    assert "Most common failure" in (out / "class-report.html").read_text()


def test_a_resubmission_is_answered_from_the_gradebook(engine, graded_class):
    _, folder, url, _ = graded_class
    book = Gradebook(url)
    before = len(book.attempts("01"))
    started = time.monotonic()
    again = grade_one(
        Submission("ada", folder / "ada", "folder", "ada"),
        SPEC,
        book,
        grade=grade,
        engine_factory=partial(Engine, engine.client),
    )
    seconds = time.monotonic() - started
    assert again.reused and again.result.score == again.result.max_score
    assert seconds < 1.0, seconds
    summary = run_batch(submissions=folder, lab="01", jobs=2, gradebook=url, out=folder.parent / "out2", quiet=True)
    assert all(g.reused for g in summary.graded), [(g.submission.name, g.reused) for g in summary.graded]
    assert summary.seconds < 30
    assert len(book.attempts("01")) == before  # answering again adds no attempt
    book.close()


def test_a_submission_past_its_time_limit_is_a_timeout(engine, tmp_path):
    folder = tmp_path / "class"
    fay = variant(folder / "fay", "fay is slow")
    # A build step that takes far longer than the limit, whatever the build cache holds (a warm cache grades
    # lab 01 in about 3 s, so a plain copy can finish before the checks after the limit are reached).
    dockerfile = fay / "Dockerfile"
    step = unique_sleep()
    dockerfile.write_text(dockerfile.read_text().replace("WORKDIR /app\n", f"WORKDIR /app\nRUN {step}\n", 1))
    url = f"sqlite:///{tmp_path}/gradebook.sqlite"
    summary = run_batch(submissions=folder, lab="01", jobs=2, gradebook=url, out=tmp_path / "out", timeout_s=2)
    [graded] = summary.graded
    assert graded.result.status == "timeout"
    assert any(t.message.startswith("skipped: grading ran past 2s") for t in graded.result.tests)
    [attempt] = Gradebook(url).attempts("01")
    assert (attempt.status, attempt.counted) == ("timeout", True)  # a failed attempt, not an ungradable one
    assert summary.leftovers == NOTHING
    assert Engine(engine.client, session=graded.session).leftovers() == NOTHING
    assert "time limit" in (tmp_path / "out" / "feedback" / "fay.txt").read_text()
    wait_for(lambda: not host_processes(step), 20, "BuildKit still runs the build step past the time limit")


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(engine, tmp_path):
    """SIGINT while the second submission waits for its service: exit 130, nothing left, the first kept."""
    folder = tmp_path / "class"
    variant(folder / "a-ada", "ada, graded before the interrupt")
    # A service that never answers keeps its grade waiting in readiness polling, until it exits 15 s later.
    (folder / "b-slow").mkdir()
    (folder / "b-slow" / "Dockerfile").write_text('FROM python:3.11-slim\nCMD ["sleep", "15"]\n')
    url = f"sqlite:///{tmp_path}/gradebook.sqlite"
    command = [sys.executable, "-m", "grader", "batch", str(folder), "--lab", "01", "--jobs", "1", "--gradebook", url]

    def running_sessions() -> set[str]:
        running = engine.client.containers.list(filters={"label": LABEL, "status": "running", "name": "-service"})
        return {c.labels[LABEL] for c in running}

    proc = subprocess.Popen(
        [*command, "--out", str(tmp_path / "out"), "-q"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    book = Gradebook(url)
    try:
        deadline = time.monotonic() + 240
        while not book.attempts("01", "a-ada"):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the first submission was never stored"
            time.sleep(0.5)
        others = running_sessions()  # graders of other runs may share the engine: watch only the new one
        while not (new := running_sessions() - others):
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "the second submission's service never started"
            time.sleep(0.2)
        (session,) = new
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    assert "run the same command again" in out
    assert Engine(engine.client, session=session).leftovers() == NOTHING
    assert [a.learner for a in book.attempts("01")] == ["a-ada"]  # the finished result is kept
    assert not (tmp_path / "out").exists()  # no exports from a half-graded class

    # The same command again (with a short time limit, so that the slow one ends soon): ada is not graded again.
    again = subprocess.run(
        [*command, "--out", str(tmp_path / "out"), "--timeout", "2"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1, again.stdout + again.stderr  # the slow one timed out
    assert "1 answered from the gradebook" in again.stdout
    assert [(a.learner, a.status) for a in book.attempts("01")] == [("a-ada", "graded"), ("b-slow", "timeout")]
    book.close()
