"""BuildKit on the real engine: lab 01's solution rewritten with each BuildKit feature Docker's documentation
teaches still scores full marks, and a build the grader interrupts really stops.

The interruption tests look for the build step's process on this host (BuildKit runs RUN steps as plain
processes of the engine, not as containers `docker ps` lists), so they need the engine on this machine.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys

import pytest
from seeded import (
    apply_defect,
    as_from_a_terminal,
    assert_nothing_left,
    host_processes,
    results_by_check,
    unique_sleep,
    wait_for,
)

from grader.buildkit import buildx_version
from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]
INSTALL = "RUN pip install --no-cache-dir -r requirements.txt\n"

# Each variant: edits to a copy of the solution's Dockerfile, and what the spec adds (a dummy build secret).
CACHE_MOUNT = "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
SECRET_MOUNT = (  # the step fails unless the grader passed the lab's dummy secret
    "RUN --mount=type=secret,id=index_token,required=true test -s /run/secrets/index_token \\\n"
    " && pip install --no-cache-dir -r requirements.txt\n"
)
HEREDOC = "RUN <<EOF\n# train at build time: the model is baked into the image\npython train.py\nEOF\n"
DEBUG_STAGE = "\n# A stage after the service's, left out by --target.\nFROM runtime AS debug\nHEALTHCHECK NONE\n"
LINKED_COPY = "COPY --link --chmod=0644 app/requirements.txt .\n"
FEATURES = {
    "cache mount": ([(INSTALL, CACHE_MOUNT)], {}),
    "secret mount": ([(INSTALL, SECRET_MOUNT)], {"build_secrets": {"index_token": "not-a-real-token"}}),
    "COPY --link --chmod": ([("COPY app/requirements.txt .\n", LINKED_COPY)], {}),
    "heredoc with a comment": ([("RUN python train.py\n", HEREDOC)], {}),
    "syntax directive": ([(re.compile(r"\A"), "# syntax=docker/dockerfile:1\n")], {}),
    "multi-stage --target": (
        [(re.compile(r"\Z"), DEBUG_STAGE), ("FROM python:3.11-slim\n", "FROM python:3.11-slim AS runtime\n")],
        {"build_target": "runtime"},
    ),
}


@pytest.mark.parametrize("feature", sorted(FEATURES))
def test_the_solution_with_a_buildkit_feature_scores_full_marks(engine, tmp_path, feature):
    edits, spec_changes = FEATURES[feature]
    submission = apply_defect(SPEC.path, tmp_path, [("Dockerfile", old, new) for old, new in edits])
    result = grade(submission, dataclasses.replace(SPEC, **spec_changes), engine=engine)
    lost = [(t.id, t.status, t.message, t.evidence[-600:]) for t in result.tests if t.status != "passed"]
    assert lost == [] and result.score == result.max_score, lost
    assert_nothing_left(engine)
    if feature == "syntax directive":  # no registry answers here: the built-in frontend built it, and said so
        build = results_by_check(result)["ImageBuilds"]
        assert "built-in Dockerfile frontend" in build.evidence or "built-in Dockerfile frontend" in build.message


def test_a_build_past_its_time_limit_stops_on_the_engine(engine, tmp_path):
    step = unique_sleep()
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN {step}\n")
    result = grade(tmp_path, dataclasses.replace(SPEC, build_timeout_s=8), engine=engine)
    build = results_by_check(result)["ImageBuilds"]
    assert build.status == "failed" and "within 8s" in build.message
    wait_for(lambda: not host_processes(step), 20, "BuildKit still runs the step after the timeout")
    assert_nothing_left(engine)


def test_ctrl_c_during_a_build_stops_the_build(engine, tmp_path):
    step = unique_sleep()
    (tmp_path / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN {step}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "grader", "check", str(tmp_path), "--lab", "01", "--quiet"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    try:
        wait_for(lambda: host_processes(step) or proc.poll() is not None, 120, "the step never started")
        assert proc.poll() is None, proc.stdout.read()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, out
    wait_for(lambda: not host_processes(step), 20, "BuildKit still runs the step after Ctrl-C")
    assert engine.leftovers(all_sessions=True)["images"] == 0


def test_buildx_is_what_builds(engine):
    assert buildx_version(), "the docker CLI has no buildx plugin: run 'make engine'"
