"""LayerCacheReused decides from BuildKit's record of a code-only rebuild, and tells an engine that dropped the
first build's cache (BuildKit's garbage collection) from a Dockerfile that re-runs its install on every change.

The check runs against a small stand-in for the grading session; its builds are scripted BuildResults.
tests/engine/test_build_cache.py runs the same case with the cache really dropped on the engine.
"""

from __future__ import annotations

import dataclasses
import shutil
from concurrent.futures import Future
from contextlib import nullcontext
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from grader.buildkit import BuildResult, BuildStep
from grader.checks.on_build import LayerCacheReused
from grader.spec import official_specs

SPECS = official_specs()
GOOD_ORDER = """FROM python:3.11-slim
WORKDIR /app
COPY app/requirements.txt app/
RUN pip install --no-cache-dir -r app/requirements.txt
COPY app/ app/
RUN python app/train.py
CMD ["python", "app/app.py"]
"""
INSTALL = "[3/5] RUN pip install --no-cache-dir -r app/requirements.txt"


def built(install_cached: bool | None, seconds: float = 2.0) -> BuildResult:
    """A finished build whose install step was CACHED (True) or ran (False); None: stopped as it started."""
    step = BuildStep(3, INSTALL, cached=bool(install_cached))
    if not install_cached:
        step.started = step.completed = datetime(2026, 1, 1)
    stopped = install_cached is None
    return BuildResult(
        ok=not stopped, image_id=None if stopped else "sha256:re", seconds=seconds, steps=[step], stopped=stopped
    )


class Session:
    """What LayerCacheReused asks of a grade, with its side builds scripted by name."""

    def __init__(self, spec, tmp_path: Path, scripted: dict[str, BuildResult]):
        self.spec, self.scratch, self.scripted = spec, tmp_path, scripted
        self.submission = tmp_path / "submission"
        (self.submission / "app").mkdir(parents=True)
        (self.submission / "Dockerfile").write_text(GOOD_ORDER)
        (self.submission / "app" / "app.py").write_text("print('hi')\n")
        self.engine = SimpleNamespace(session="s1")
        self.progress = SimpleNamespace(step=lambda title: nullcontext())
        self.timings: dict = {}
        self.side_builds: list[tuple[str, bool, bool, str]] = []  # name, stops early, kept, the Dockerfile built

    def copy_of_submission(self, name: str) -> Path:
        copy = self.scratch / name
        shutil.copytree(self.submission, copy)
        return copy

    def side_build(self, context: Path, name: str, stop_when=None, keep: bool = False) -> BuildResult:
        self.side_builds.append((name, stop_when is not None, keep, (context / "Dockerfile").read_text()))
        return self.scripted.get(name, built(True))

    def in_background(self, key, job) -> Future:
        done: Future = Future()
        done.set_result(job())
        return done

    def image(self) -> str:
        return "sha256:first"

    def build(self) -> BuildResult:
        return built(False, seconds=20.0)


def check(spec) -> LayerCacheReused:
    return LayerCacheReused(next(c for c in spec.checks if c.check == "LayerCacheReused"))


@pytest.fixture(params=["01", "02"], ids=["cut at the install (lab 01)", "whole rebuild on a budget (lab 02)"])
def spec(request):
    return SPECS[request.param]


def test_an_install_cached_at_the_first_rebuild_passes_without_a_second(spec, tmp_path):
    session = Session(spec, tmp_path, {"code-change": built(True)})
    outcome = check(spec).run(session)
    assert outcome.status == "passed", outcome.message
    assert [b[0] for b in session.side_builds] == ["code-change"]
    # Lab 01 asks only about the install: its rebuild is cut after it, stops as it runs, and is kept.
    cut = spec.budgets.rebuild_s is None
    name, stops, kept, dockerfile = session.side_builds[0]
    assert (stops, kept, "train.py" not in dockerfile) == (cut, cut, cut)
    assert "# a code-only change made by the grader" in (tmp_path / "code-change" / "app" / "app.py").read_text()


def test_a_dropped_cache_is_made_again_and_a_second_change_decides(spec, tmp_path):
    # The first rebuild ran the install (the engine had dropped the cache); the second takes it from the cache.
    first = built(None) if spec.budgets.rebuild_s is None else built(False, seconds=30.0)
    session = Session(spec, tmp_path, {"code-change": first, "code-change-again": built(True, seconds=3.0)})
    outcome = check(spec).run(session)
    assert outcome.status == "passed", outcome.message
    assert [b[0] for b in session.side_builds] == ["code-change", "unchanged", "code-change-again"]
    assert "dropped the first build's cache" in outcome.evidence
    assert session.timings["rebuild_s"] == 3.0  # the budget is judged on the rebuild that reused the cache
    # The unchanged copy really is unchanged; the second change differs from the first.
    assert "code-only change" not in (tmp_path / "unchanged" / "app" / "app.py").read_text()
    assert (tmp_path / "code-change" / "app" / "app.py").read_text() != (
        tmp_path / "code-change-again" / "app" / "app.py"
    ).read_text()
    # The second try only asks whether the install runs: it stops as that step starts.
    assert session.side_builds[2][1] is True


def test_an_install_that_runs_again_at_both_tries_fails_with_the_first_rebuild_as_evidence(spec, tmp_path):
    first = built(False, seconds=9.0)
    session = Session(spec, tmp_path, {"code-change": first, "code-change-again": built(None)})
    outcome = check(spec).run(session)
    assert outcome.status == "failed"
    assert "re-ran `pip install` (rebuild took 9.0s)" in outcome.message
    assert "dropped" not in outcome.evidence
    assert [b[0] for b in session.side_builds] == ["code-change", "unchanged", "code-change-again"]


def test_a_rebuild_that_failed_is_reported_without_a_second_try(spec, tmp_path):
    failed = dataclasses.replace(built(True), ok=False, image_id=None, error="no space left on device")
    session = Session(spec, tmp_path, {"code-change": failed})
    outcome = check(spec).run(session)
    assert outcome.status == "failed"
    assert "the rebuild failed: no space left on device" in outcome.message
    assert [b[0] for b in session.side_builds] == ["code-change"]
