"""Shared fixtures. Tests that use the `engine` fixture are marked `engine` automatically.

An engine test needs a real Docker engine. Without one it is skipped with the reason on a laptop,
and FAILS in CI (CI=true), where a missing engine is a broken set-up, not a reason to pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from grader.errors import EngineUnavailable

REQUIRE_ENGINE = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# The learner's own record (grader/learner_record.py) of what the tests grade and answer goes to a file of
# the run's own, never into the record of whoever runs the tests.
os.environ.setdefault("GRADER_PROGRESS", os.path.join(tempfile.mkdtemp(prefix="grader-progress-"), "progress.sqlite"))
# Below this much free space at the engine's data root the suite clears the build cache before the next
# engine test or notebook: a full disk fails builds half-way, and chapter 0 asks for 10 GB.
LOW_DISK_GB = float(os.environ.get("TEST_LOW_DISK_GB", "15"))
KEEP_CACHE_GB = 5  # what a prune for room leaves of the build cache: the labs' dependency layers


@pytest.fixture(scope="session")
def engine_probe():
    """Ping the engine once per run; remember why it failed."""
    from grader.engine import connect

    try:
        return connect(), ""
    except EngineUnavailable as err:
        return None, str(err)


@pytest.fixture
def engine(engine_probe):
    """A connected Engine with a session label of its own; its objects are removed afterwards."""
    from grader.engine import Engine

    connected, why = engine_probe
    if connected is None:
        if REQUIRE_ENGINE:
            pytest.fail(f"CI needs a Docker engine and none answers: {why}")
        pytest.skip(f"no Docker engine: {why}")
    mine = Engine(connected.client)
    yield mine
    mine.remove_session()


def _engine_root() -> str | None:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{.DockerRootDir}}"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out if out and os.path.isdir(out) else None


@pytest.fixture(autouse=True)
def roomy_disk(request):
    """Clear the build cache when the engine's disk runs low, before an engine test or a notebook runs.

    BuildKit's own GC counts only a record's private size, so a suite that builds torch images many times
    over can fill a small disk while the cache is nominally "under its limit".
    """
    if request.node.get_closest_marker("engine") is None and not str(request.node.fspath).endswith(".ipynb"):
        return
    cfg = request.config
    if not hasattr(cfg, "_engine_root"):
        cfg._engine_root = _engine_root()
    root = cfg._engine_root
    if root is None or shutil.disk_usage(root).free / 1e9 >= LOW_DISK_GB:
        return
    before = shutil.disk_usage(root).free / 1e9
    # Untagged images first (they hold whole layers), then the build cache down to KEEP_CACHE_GB, oldest
    # first: clearing all of it would make every later grade rebuild its lab from nothing.
    subprocess.run(["docker", "image", "prune", "--force"], capture_output=True, timeout=600)
    for keep in ("--max-used-space", "--keep-storage"):  # buildx 0.20 renamed the option
        pruned = subprocess.run(
            ["docker", "buildx", "prune", "--force", keep, f"{KEEP_CACHE_GB}gb"], capture_output=True, timeout=600
        )
        if pruned.returncode == 0:
            break
    after = shutil.disk_usage(root).free / 1e9
    if after < LOW_DISK_GB:
        subprocess.run(["docker", "buildx", "prune", "--all", "--force"], capture_output=True, timeout=600)
        after = shutil.disk_usage(root).free / 1e9
    # To the terminal even while pytest captures output: a run that cleared its cache is slower, and says why.
    sys.__stderr__.write(f"\n[disk] {before:.0f} GB free at {root}: pruned the build cache, now {after:.0f} GB free\n")


def pytest_collection_modifyitems(items):
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
