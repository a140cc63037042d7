"""Hostile submissions (tests/engine/hostile.py): each is graded or refused within its limit, leaves nothing
running and nothing on the engine's disk but build cache. benchmarks/bench_hostile.py prints the figures."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hostile import CASES, SOLUTION, SPEC, non_utf8_name, run_case
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.spec import REPO_ROOT

# What each case must end with: the check that decides it, its status, and words its message or evidence holds;
# no check: the submission is refused (status invalid, charged nothing), for the reason the words give.
VERDICTS = {
    "a file name that is not UTF-8": (None, "invalid", r"not valid UTF-8: app/bad-\\xff-utf8\.txt"),
    "a service that floods its log": ("ServiceBecomesReady", "passed", ""),
    "a build that forks without end": ("ImageBuilds", "failed", r"fork refused after \d+"),
    "a build that eats all memory": ("ImageBuilds", "failed", r"137|Killed|MemoryError"),
    "a build that fills the disk": ("ImageBuilds", "failed", r"more than 400 MB"),
    "a build that never ends": ("ImageBuilds", "failed", r"did not finish within 20s"),
    "a layer over the size budget": ("ImageSizeBudget", "failed", r"MB"),
    "a gigabyte of junk in the build context": ("ImageBuilds", "passed", ""),
    "a service that binds only ::1": ("ServiceBecomesReady", "failed", r"0\.0\.0\.0"),
    "a service whose /predict hangs": ("PredictionsCorrect", "failed", ""),
    "a container that ignores SIGTERM": ("ServiceBecomesReady", "passed", ""),
    "a submission of 6,000 files": ("ImageBuilds", "passed", ""),
    "its own lab.yaml with checks: []": ("ImageBuilds", "passed", ""),
}
LOG_CAP_BYTES = 5 * 1024 * 1024  # two rotated files of 2 MB, and the line being written
DISK_SLACK_MB = 300


def test_every_case_has_a_verdict():
    assert set(VERDICTS) == set(CASES)


@pytest.mark.parametrize("name", CASES)
def test_hostile_submission_is_contained(name, engine, tmp_path):
    outcome = run_case(name, engine, tmp_path)
    check_id, status, words = VERDICTS[name]
    if check_id is None:
        assert (outcome.result.status, outcome.result.exit_code) == (status, 2), outcome.result.message
        assert re.search(words, outcome.result.message), outcome.result.message
    else:
        decided = results_by_check(outcome.result)[check_id]
        assert decided.status == status, (decided.status, decided.message, decided.evidence[-1500:])
        assert re.search(words, decided.message + decided.hint + decided.evidence), decided.evidence[-1500:]
    assert outcome.seconds < CASES[name].limit_s, f"took {outcome.seconds:.0f}s"
    assert outcome.peak_log_bytes <= LOG_CAP_BYTES, f"a graded container logged {outcome.peak_log_bytes} bytes"
    assert outcome.disk_after_mb < DISK_SLACK_MB, f"{outcome.disk_after_mb:.0f} MB more on the engine's disk"
    assert_nothing_left(engine)
    if name == "a service that floods its log":  # capped, yet it did flood: else the case tests nothing
        assert outcome.peak_log_bytes > 1024 * 1024, "the flood never reached the log"
    if name == "its own lab.yaml with checks: []":  # the learner's spec changed no check and no point
        assert [t.id for t in outcome.result.tests] == [c.check for c in SPEC.checks]
        assert outcome.result.max_score == sum(c.points for c in SPEC.checks)


def test_check_refuses_a_name_that_is_not_utf8_without_a_traceback(engine, tmp_path):
    copy = apply_defect(SOLUTION, tmp_path, [])
    non_utf8_name(copy)
    proc = subprocess.run(
        [sys.executable, "-m", "grader", "check", str(copy), "--json", str(tmp_path / "result.json")],
        capture_output=True,
        cwd=REPO_ROOT,
        env={**os.environ, "LC_ALL": "C"},
        timeout=900,
    )
    output = (proc.stdout + proc.stderr).decode(errors="replace")
    assert "Traceback" not in output, output[-3000:]
    assert proc.returncode == 2, output[-3000:]
    assert "bad-\\xff-utf8.txt" in output and "rename" in output, output[-3000:]
    assert_nothing_left(engine)
