"""Shared fixtures. Tests that use the `engine` fixture are marked `engine` automatically.

An engine test needs a real Docker engine. Without one it is skipped with the reason on a laptop,
and FAILS in CI (CI=true), where a missing engine is a broken set-up, not a reason to pass.
"""

from __future__ import annotations

import os

import pytest

from grader.errors import EngineUnavailable

REQUIRE_ENGINE = os.environ.get("CI", "").lower() in ("1", "true", "yes")


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


def pytest_collection_modifyitems(items):
    for item in items:
        if "engine" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.engine)
