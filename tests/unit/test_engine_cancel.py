"""An engine given a stop and a deadline (as each grade of a batch gets one), on a stand-in Docker client.

Once the stop is set, every step that starts or waits on engine work raises Cancelled before it reaches
the engine; clean-up still runs; a build never runs past the deadline and is interrupted by the stop.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from grader import buildkit
from grader.buildkit import BuildResult
from grader.engine import Cancelled, Engine
from grader.spec import Limits


class Shelf:
    """One kind of the stand-in engine's objects (containers, networks, volumes or images)."""

    def __init__(self, count: int = 0):
        self.items = [SimpleNamespace(id=f"id{n}", remove=self.remove) for n in range(count)]
        self.removed = 0

    def list(self, **filters):
        return list(self.items)

    def remove(self, *args, **kwargs):  # an object's own remove(), and images.remove(id)
        self.removed += 1


class StandInClient:
    """What Engine asks of the Docker SDK's client in these tests; nothing else answers."""

    def __init__(self):
        self.containers, self.networks, self.volumes, self.images = Shelf(1), Shelf(1), Shelf(0), Shelf(2)

    def info(self) -> dict:
        return {}  # an engine elsewhere: no build limits, no disk watch


class Container:
    """A container as the SDK hands it out: `reload()` reads `attrs` again."""

    def __init__(self):
        self.attrs = {"Name": "/c", "State": {"Status": "running", "Running": True}, "NetworkSettings": {"Ports": {}}}
        self.reloads = 0

    def reload(self):
        self.reloads += 1

    def exec_run(self, cmd):
        return 0, b"ok"


def test_a_stopped_engine_stops_every_step_and_still_cleans_up():
    stop = threading.Event()
    engine = Engine(StandInClient(), session="s1", stop=stop)
    container = Container()
    assert engine.state(container) == {"Status": "running", "Running": True}
    assert engine.view(container).status == "running"
    assert engine.exec(container, ["true"]) == (0, "ok")
    stop.set()
    for call in (
        lambda: engine.state(container),
        lambda: engine.view(container),
        lambda: engine.host_port(container, 5000),
        lambda: engine.exec(container, ["true"]),
        lambda: engine.run_once("img", ["id"]),
        lambda: engine.start_service("img", 5000, Limits(), "net", None),
        lambda: engine.create_network(Limits()),
        lambda: engine.inspect_image("img"),
        lambda: engine.history("img"),
        lambda: engine.build(".", "Dockerfile", "t", 60),
    ):
        with pytest.raises(Cancelled):
            call()
    with pytest.raises(Cancelled), engine.archive("img", "/app"):
        pass
    assert container.reloads == 2  # nothing after the stop reached the container
    # Clean-up is never stopped: a cancelled grade still removes what it made.
    assert engine.remove_session() == {"containers": 1, "networks": 1, "volumes": 0, "images": 2}
    assert [engine.client.containers.removed, engine.client.images.removed] == [1, 2]


def test_an_engine_without_a_stop_is_never_cancelled():
    engine = Engine(StandInClient())
    assert engine.state(Container())["Running"]
    assert engine.session and engine.stop is None and engine.deadline is None


def test_a_build_never_runs_past_the_deadline_and_stops_with_the_batch(monkeypatch):
    seen = {}

    def build(context, dockerfile, tag, *, timeout_s, cancel, **options):
        seen["timeout_s"], seen["cancel"] = timeout_s, cancel
        return BuildResult(ok=False, image_id=None, seconds=0.0, error="stand-in")

    monkeypatch.setattr(buildkit, "build", build)
    stop, mine = threading.Event(), threading.Event()
    engine = Engine(StandInClient(), session="s1", stop=stop, deadline=time.monotonic() + 30)
    engine.build(".", "Dockerfile", "t", 600, cancel=mine)
    assert 28 < seen["timeout_s"] <= 30
    assert not any(event.is_set() for event in seen["cancel"])
    stop.set()
    assert any(event.is_set() for event in seen["cancel"])  # the batch's stop cancels the running build
    stop.clear()
    mine.set()
    assert any(event.is_set() for event in seen["cancel"])  # and so does the caller's own cancel


def test_without_a_deadline_a_build_keeps_its_own_time_limit(monkeypatch):
    seen = {}

    def build(context, dockerfile, tag, *, timeout_s, cancel, **options):
        seen["timeout_s"], seen["cancel"] = timeout_s, cancel
        return BuildResult(ok=False, image_id=None, seconds=0.0, error="stand-in")

    monkeypatch.setattr(buildkit, "build", build)
    Engine(StandInClient()).build(".", "Dockerfile", "t", 600)
    assert seen == {"timeout_s": 600, "cancel": []}
