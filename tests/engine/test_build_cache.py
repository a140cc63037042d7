"""What grading leaves of its builds: no image of its own, and BuildKit cache that `clean --cache` removes
without touching the cache of anyone else's builds.

These tests read the engine's whole build cache, so they assume no other build runs on it meanwhile
(CI runs the engine tests one after another).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid

import pytest
from seeded import assert_nothing_left, results_by_check

from grader import build_cache
from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]


@pytest.fixture(autouse=True)
def own_ledger(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))


def submission(source: str, tmp_path, name: str):
    """A copy of lab 01's solution or starter with a code change of its own (content never built before)."""
    copy = tmp_path / name
    shutil.copytree(REPO_ROOT / source / SPEC.path.name, copy)
    with (copy / SPEC.code_change).open("a") as f:
        f.write(f"\n# {name} {uuid.uuid4().hex}\n")
    return copy


def all_images(engine) -> set[str]:
    return {img.id for img in engine.client.images.list(all=True)}


@pytest.mark.parametrize("source", ["solutions", "labs"])
def test_a_grade_leaves_no_image_of_its_own(engine, tmp_path, source):
    before = all_images(engine)
    result = grade(submission(source, tmp_path, "one"), SPEC, engine=engine)
    assert result.status == "graded"
    assert not all_images(engine) - before, "the grade left images behind"
    assert_nothing_left(engine)
    cache = results_by_check(result)["LayerCacheReused"]
    if source == "solutions":
        assert cache.status == "passed" and "CACHED" in cache.evidence
    else:
        # The starter copies its code before the install: the rebuild stops as soon as the install runs again.
        assert cache.status == "failed" and "stopped the rebuild" in cache.message
        assert result.timings["rebuild_s"] < result.timings["build_s"] / 2


def test_clean_cache_removes_grading_cache_and_keeps_other_builds(engine, tmp_path):
    mine = tmp_path / "someone-elses-build"
    mine.mkdir()
    (mine / "Dockerfile").write_text(f"FROM python:3.11-slim\nRUN echo {uuid.uuid4().hex} > /marker\n")
    tag = engine.name("not-graded")
    before = set(build_cache.snapshot(engine))
    built = engine.build(mine, "Dockerfile", tag, timeout_s=120)
    assert built.ok, built.log_tail()
    engine.client.images.remove(tag, force=True)
    # The records that build made: the newest on the engine, so the engine's own garbage collection (which
    # removes the least recently used first, and may run during any build) leaves them to the last.
    others = set(build_cache.snapshot(engine)) - before
    assert others, "the build made no build cache record"

    grade(submission("solutions", tmp_path, "graded"), SPEC, engine=engine)
    ledger = build_cache._read(build_cache.ledger_path())
    assert ledger and not ledger & others, "the ledger holds exactly the records grading made"

    out = subprocess.run(
        [sys.executable, "-m", "grader", "clean", "--cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "Removed the build cache grading made" in out
    left = set(build_cache.snapshot(engine))
    assert not left & ledger, "clean --cache left records of grading behind"
    assert others <= left, "clean --cache removed cache that grading did not make"
