"""What grading leaves of its builds: no image of its own but one of each lab's dependencies, kept for the next
grade, and BuildKit cache that `clean --cache` removes without touching the cache of anyone else's builds.

These tests read the engine's whole build cache, so they assume no other build runs on it meanwhile
(CI runs the engine tests one after another).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import uuid

import pytest
from seeded import assert_nothing_left, results_by_check

from grader import build_cache
from grader.checks.on_build import LayerCacheReused
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


def kept(engine) -> set[str]:
    return {image["Id"] for image in engine.kept_images(SPEC.id)}


@pytest.mark.parametrize("source", ["solutions", "labs"])
def test_a_grade_leaves_no_image_of_its_own(engine, tmp_path, source):
    before = all_images(engine)
    result = grade(submission(source, tmp_path, "one"), SPEC, engine=engine)
    assert result.status == "graded"
    assert not all_images(engine) - before - kept(engine), "the grade left images behind"
    assert len(kept(engine)) <= 1
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


def layers(engine, image_id: str) -> list[str]:
    return engine.inspect_image(image_id)["RootFS"]["Layers"]


def test_grades_of_a_lab_keep_one_image_of_its_dependencies_and_clean_cache_removes_it(engine, tmp_path):
    engine.remove_kept_images()
    first = None
    for name in ("first", "second"):
        # A requirement of its own in the second: another dependency image, which replaces the first one.
        copy = submission("solutions", tmp_path, name)
        if name == "second":
            with (copy / "app" / "requirements.txt").open("a") as f:
                f.write(f"\n# {uuid.uuid4().hex}\n")
        result = grade(copy, SPEC, engine=engine)
        assert results_by_check(result)["LayerCacheReused"].status == "passed"
        held = kept(engine)
        assert len(held) == 1, f"{len(held)} images kept after the {name} grade"
        first = first or held
    assert held != first, "the second grade's dependencies did not replace the first's"
    # It holds the lab's dependencies: the base image's layers, up to the install step and nothing after it.
    (image_id,) = held
    base = layers(engine, "python:3.11-slim")
    assert layers(engine, image_id)[: len(base)] == base
    assert SPEC.install_step in engine.history(image_id)[0]["CreatedBy"]
    out = subprocess.run(
        [sys.executable, "-m", "grader", "clean", "--cache"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "1 image(s) of labs' dependencies" in " ".join(out.split()), out  # rich wraps the line
    assert not kept(engine)


def test_an_image_over_the_size_budget_keeps_no_dependencies(engine, tmp_path):
    engine.remove_kept_images()
    tight = dataclasses.replace(SPEC, budgets=dataclasses.replace(SPEC.budgets, image_size_mb=1))
    result = grade(submission("solutions", tmp_path, "too-big"), tight, engine=engine)
    assert results_by_check(result)["ImageSizeBudget"].status == "failed"
    assert results_by_check(result)["LayerCacheReused"].status == "passed"
    assert not kept(engine), "an image over its size budget kept its dependencies on the engine"


def test_a_cache_dropped_between_the_build_and_the_rebuild_costs_no_points(engine, tmp_path, monkeypatch):
    """BuildKit's garbage collection may drop the first build's cache while the grade checks the service (it
    did in CI, on a busy engine): the rebuild then re-runs the install, however well the Dockerfile is ordered.
    Here the records the first build made or used are really pruned just before the rebuild."""
    before = build_cache.snapshot(engine)
    real = LayerCacheReused.rebuild
    dropped: list[str] = []

    def rebuild_after_a_collection(ctx, name="code-change", again=False):
        if name == "code-change":
            for _ in range(3):  # newest first; BuildKit keeps a record while a newer one stands on it
                records = [r for r in engine.build_cache_records() if before.get(r["ID"]) != r.get("LastUsedAt")]
                records.sort(key=build_cache._created, reverse=True)
                dropped.extend(r["ID"] for r in records if engine.prune_build_cache_record(r["ID"]))
        return real(ctx, name, again)

    monkeypatch.setattr(LayerCacheReused, "rebuild", staticmethod(rebuild_after_a_collection))
    result = grade(submission("solutions", tmp_path, "collected"), SPEC, engine=engine)
    assert dropped, "no build cache record could be pruned"
    cache = results_by_check(result)["LayerCacheReused"]
    assert cache.status == "passed", (cache.message, cache.evidence)
    assert "dropped the first build's cache" in cache.evidence
    assert result.score == result.max_score, [(t.id, t.message) for t in result.tests if t.status != "passed"]
    assert_nothing_left(engine)
