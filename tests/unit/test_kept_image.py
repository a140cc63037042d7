"""Which image of a lab's dependencies a grade keeps for the next grade (GradingContext.settle_kept_image).

The engine is a fake that records what was removed; tests/engine/test_build_cache.py checks it on a real engine.
"""

from __future__ import annotations

import shutil

import pytest
import requests

from grader.buildkit import BuildResult
from grader.engine import Cancelled
from grader.session import GradingContext
from grader.spec import REPO_ROOT, load_spec

SPEC = load_spec(REPO_ROOT / "solutions/01-first-model-container/lab.yaml")
BASE, DEPS, CODE = ["sha256:base"], ["sha256:user", "sha256:pip"], ["sha256:app", "sha256:model"]


class KeptEngine:
    def __init__(self, layers: dict[str, list[str]]):
        self.layers = layers
        self.removed: list[str] = []
        self.others_removed: list[tuple] = []

    def inspect_image(self, ref):
        return {"RootFS": {"Layers": self.layers[ref]}}

    def untag(self, ref):
        self.removed.append(ref)

    def remove_kept_images(self, lab=None, keep=None):
        self.others_removed.append((lab, keep))
        return 0


@pytest.fixture
def context(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-home"))  # the lock file
    made = []

    def make(main_layers, size_mb=300, built=True):
        engine = KeptEngine({"main": main_layers, "deps": BASE + DEPS})
        ctx = GradingContext(tmp_path, SPEC, engine, None)
        made.append(ctx)
        ctx._build = BuildResult(ok=built, image_id="main" if built else None, seconds=1.0)
        if built:
            ctx._sizes["main"] = int(size_mb * 1e6)
        ctx._kept = "deps"
        return ctx, engine

    yield make
    for ctx in made:
        ctx._pool.shutdown()
        shutil.rmtree(ctx.scratch, ignore_errors=True)


def test_dependencies_the_image_starts_with_are_kept_and_replace_the_labs_others(context):
    ctx, engine = context(BASE + DEPS + CODE)
    ctx.settle_kept_image()
    assert engine.removed == []
    assert engine.others_removed == [(SPEC.id, "deps")]


@pytest.mark.parametrize(
    "why",
    ["the image did not build", "the image is over its size budget", "the image does not start with them"],
)
def test_dependencies_that_would_not_serve_the_next_grade_are_removed(context, why):
    if why == "the image did not build":
        ctx, engine = context([], built=False)
    elif why == "the image is over its size budget":
        ctx, engine = context(BASE + DEPS + CODE, size_mb=SPEC.budgets.image_size_mb + 1)
    else:  # a multi-stage build: the final stage starts from another base
        ctx, engine = context(["sha256:slim"] + CODE)
    ctx.settle_kept_image()
    assert engine.removed == ["deps"]
    assert engine.others_removed == []


def test_a_stopping_batch_removes_them_without_asking_the_engine_more(context):
    ctx, engine = context(BASE + DEPS + CODE)

    def stopped(ref):
        raise Cancelled()  # what a stopped engine's inspect raises: close() must still go on to its clean-up

    engine.inspect_image = stopped
    ctx.settle_kept_image()
    assert engine.removed == ["deps"]


def test_an_engine_that_stops_answering_does_not_stop_the_clean_up(context):
    ctx, engine = context(BASE + DEPS + CODE)

    def unreachable(*args, **kwargs):
        raise requests.ConnectionError("the engine went away")

    engine.remove_kept_images = unreachable
    ctx.settle_kept_image()  # no exception: close() goes on to remove the session's objects


def test_each_grade_settles_once(context):
    ctx, engine = context(BASE + DEPS + CODE)
    ctx.settle_kept_image()
    ctx.settle_kept_image()
    assert engine.others_removed == [(SPEC.id, "deps")] and engine.removed == []
