"""The grader's service container is probed every second while it starts, also on Engine 25 and later.

There, during the image's start period, the engine probes every StartInterval (5 s unless set) whatever the
interval; the Docker SDK cannot send StartInterval, so grader/engine/containers.py adds it to the request.
"""

from __future__ import annotations

import time

from docker.utils import version_gte

from grader.engine.containers import START_INTERVAL_API
from grader.session import HEALTHCHECK_INTERVAL_NS
from grader.spec import Limits

# Healthy from its first probe, with a long start period (as the labs' HEALTHCHECKs have): how soon the
# engine calls it healthy is how soon it first probes.
DOCKERFILE = """FROM python:3.11-slim
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["true"]
CMD ["sleep", "300"]
"""


def seconds_to_healthy(engine, container, limit_s: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        health = engine.state(container).get("Health") or {}
        if health.get("Status") == "healthy":
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"not healthy within {limit_s}s: {engine.state(container)}")


def test_the_service_is_probed_every_second_while_it_starts(engine, tmp_path):
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    built = engine.build(tmp_path, "Dockerfile", engine.name("pace"), timeout_s=120)
    assert built.ok, built.log_tail()
    declared = engine.inspect_image(built.image_id)["Config"]["Healthcheck"]
    healthcheck = {
        "test": declared["Test"],
        "interval": HEALTHCHECK_INTERVAL_NS,
        "timeout": declared["Timeout"],
        "retries": declared["Retries"],
        "start_period": declared["StartPeriod"],
        "start_interval": HEALTHCHECK_INTERVAL_NS,
    }
    network = engine.create_network(Limits())
    container = engine.start_service(built.image_id, 5000, Limits(), network.name, healthcheck)
    took = seconds_to_healthy(engine, container)
    sent = engine.client.api.inspect_container(container.id)["Config"]["Healthcheck"]
    if version_gte(engine.client.api.api_version, START_INTERVAL_API):
        assert sent.get("StartInterval") == HEALTHCHECK_INTERVAL_NS, sent
        assert took < 4, f"healthy after {took:.1f}s: the first probe waited for the engine's default 5 s"
    else:  # older engines have no start interval: they probe at the interval during the start period too
        assert "StartInterval" not in sent
        assert took < 4, f"healthy after {took:.1f}s with a 1 s interval"
    assert sent["StartPeriod"] == declared["StartPeriod"] and sent["Test"] == declared["Test"]
