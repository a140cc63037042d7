"""Reading a classic build's log and an image's history for the build cache: which step images a build
made, which it took from the cache, when to stop a rebuild, and which step images a grade may remove."""

from __future__ import annotations

from types import SimpleNamespace

from test_cache_history import HISTORY, PIP

from grader.checks.cache import when_step_runs
from grader.engine import Engine, built_layers, last_cached_layer

# The classic builder's log of lab 01's starter after a code change (lines as Engine.build keeps them).
STARTER_REBUILD = [
    "Step 1/6 : FROM python:3.11-slim",
    " ---> eb44fe36795d",
    "Step 2/6 : ENV PYTHONUNBUFFERED=1     PYTHONDONTWRITEBYTECODE=1",
    " ---> Using cache",
    " ---> 510c3bfc0d51",
    "Step 3/6 : WORKDIR /app",
    " ---> Using cache",
    " ---> 4c5e331771b2",
    "Step 4/6 : COPY . .",
    " ---> 8dda953cb243",
    "Step 5/6 : RUN pip install --no-cache-dir -r app/requirements.txt",
    " ---> Running in e5c9ee84bd1e",
    "Collecting flask==3.1.3",
    "Removing intermediate container e5c9ee84bd1e",
    " ---> 34777c72b4fa",
    "Step 6/6 : LABEL org.mlcontainers.grader=3f2a1b0c9d8e",
    " ---> Running in 1cfdef5ce194",
    "Removing intermediate container 1cfdef5ce194",
    " ---> 2e3d24d3d55d",
    "Successfully built 2e3d24d3d55d",
]


def test_the_step_images_a_build_made_are_listed_newest_first_without_the_base():
    assert built_layers(STARTER_REBUILD) == ["2e3d24d3d55d", "34777c72b4fa", "8dda953cb243"]


def test_the_last_cached_step_is_the_one_before_the_first_step_that_ran():
    assert last_cached_layer(STARTER_REBUILD) == "4c5e331771b2"
    assert last_cached_layer(STARTER_REBUILD[:2]) is None  # only the FROM line: nothing came from the cache


def test_a_rebuild_stops_when_the_install_step_runs_again():
    stop = when_step_runs(5)
    fired = [line for line in STARTER_REBUILD if stop(line)]
    assert fired == [" ---> Running in e5c9ee84bd1e"]
    assert not any(when_step_runs(3)(line) for line in STARTER_REBUILD)  # step 3 came from the cache


def engine_with(history: list[dict]) -> Engine:
    return Engine(SimpleNamespace(api=SimpleNamespace(history=lambda image_id: history)), session="s")


def test_a_grade_may_remove_the_step_images_after_the_reusable_one():
    newer = [entry["Id"] for entry in HISTORY[1:6]]  # HEALTHCHECK ... the COPY of the code
    assert engine_with(HISTORY).layers_after("image", lambda step: PIP in step["CreatedBy"]) == newer


def test_nothing_is_removed_without_a_reusable_step_or_a_local_id():
    assert engine_with(HISTORY).layers_after("image", lambda step: False) == []
    pulled = [{**entry, "Id": "<missing>"} for entry in HISTORY]  # the containerd image store keeps no step images
    assert engine_with(pulled).layers_after("image", lambda step: PIP in step["CreatedBy"]) == []


def test_a_failed_build_keeps_its_install_and_what_came_before():
    failed = [*STARTER_REBUILD[:15], "Step 6/7 : RUN python app/train.py", " ---> Running in 6f521901ff5b", "boom"]
    assert built_layers(failed, after="pip install") == []
    assert built_layers(failed, after="WORKDIR") == ["34777c72b4fa", "8dda953cb243"]
