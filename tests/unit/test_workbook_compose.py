"""Chapter 7's helpers: Compose command lines, the solution view of a marked file, engine events, and
counting replicas (no engine needed: events are lines recorded from `docker events` on a 20.10 engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.spec import REPO_ROOT
from grader.starters import starter_text
from workbook import compose
from workbook.compose import HEALTHY, Event, Project, compose_command, first_times, parse_event, solution_text

# Recorded while `docker compose up -d --wait` started lab 06's stack (trimmed to the fields used).
RECORDED = [
    {
        "status": "create",
        "Action": "create",
        "timeNano": 1795251180368179600,
        "Actor": {"Attributes": {"com.docker.compose.service": "cache", "name": "p-cache-1"}},
    },
    {
        "status": "start",
        "Action": "start",
        "timeNano": 1795251180721839200,
        "Actor": {"Attributes": {"com.docker.compose.service": "cache", "name": "p-cache-1"}},
    },
    {
        "status": "exec_start: redis-cli ping",
        "Action": "exec_start: redis-cli ping",
        "timeNano": 1795251182714997500,
        "Actor": {"Attributes": {"com.docker.compose.service": "cache", "name": "p-cache-1"}},
    },
    {
        "status": "health_status: healthy",
        "Action": "health_status: healthy",
        "timeNano": 1795251182771836800,
        "Actor": {"Attributes": {"com.docker.compose.service": "cache", "name": "p-cache-1"}},
    },
    {
        "status": "start",
        "Action": "start",
        "timeNano": 1795251183593002600,
        "Actor": {"Attributes": {"com.docker.compose.service": "api", "name": "p-api-1"}},
    },
    {
        "status": "health_status: healthy",
        "Action": "health_status: healthy",
        "timeNano": 1795251188707245000,
        "Actor": {"Attributes": {"com.docker.compose.service": "api", "name": "p-api-1"}},
    },
    {
        "status": "start",
        "Action": "start",
        "timeNano": 1795251189000000000,
        "Actor": {"Attributes": {"com.docker.compose.service": "api", "name": "p-api-2"}},
    },
]


def test_parse_event_reads_time_action_service_and_name():
    event = parse_event(json.dumps(RECORDED[3]))
    assert (event.action, event.service, event.container) == (HEALTHY, "cache", "p-cache-1")
    assert event.time == pytest.approx(1795251182.7718368, abs=1e-6)


@pytest.mark.parametrize("line", ["", "not json", "[]", '{"Action": "start"}'])
def test_parse_event_ignores_lines_that_are_not_events(line):
    assert parse_event(line) is None


def test_first_times_takes_each_services_first_start_and_healthy():
    events = [parse_event(json.dumps(raw)) for raw in reversed(RECORDED)]  # order does not matter
    times = first_times(events)
    assert set(times) == {"cache", "api"}
    assert times["cache"]["start"] == pytest.approx(1795251180.7218392)
    assert times["cache"]["healthy"] == pytest.approx(1795251182.7718368)
    assert times["api"]["start"] == pytest.approx(1795251183.5930026), "the first replica's start counts"
    assert times["api"]["healthy"] - times["cache"]["healthy"] > 0


def test_first_times_skips_containers_compose_did_not_create():
    assert first_times([Event(1.0, "start", "", "someone-elses")]) == {}


def test_compose_command_always_names_the_project():
    assert compose_command("workbook-ch07-x", "up -d", ["compose.yaml", "o.yaml"]) == (
        "docker compose -p workbook-ch07-x -f compose.yaml -f o.yaml up -d"
    )
    assert compose_command("workbook-ch07-x", "down") == "docker compose -p workbook-ch07-x down"
    project = Project("workbook-ch07-x", Path("/tmp"), ("a.yaml",))
    assert project.command("ps") == "docker compose -p workbook-ch07-x -f a.yaml ps"
    assert project.command("ps", files=["a.yaml", "b.yaml"]).endswith("-f a.yaml -f b.yaml ps")


MARKED = """\
services:
  api:
# >>> TODO(config): move the settings to .env
#   and load them with env_file
    env_file: .env
# === starter
#     environment:
#       LOG_LEVEL: INFO
# <<<
    image: x
# >>> TODO(volume): declare it
volumes:
  data: {}
# <<<
"""


def test_solution_text_keeps_only_the_solutions_lines():
    assert solution_text(MARKED) == "services:\n  api:\n    env_file: .env\n    image: x\nvolumes:\n  data: {}\n"


def test_solution_text_and_starter_text_split_the_same_regions():
    starter = starter_text(MARKED)
    assert "environment:" in starter and "env_file" not in starter.replace("env_file\n", "")
    assert "environment:" not in solution_text(MARKED)


def test_solution_text_of_lab_06_is_the_reference_stack():
    text = solution_text((REPO_ROOT / "solutions/06-compose-stack/compose.yaml").read_text())
    assert "# >>>" not in text and "# ===" not in text and "# <<<" not in text
    assert "env_file: .env" in text and "internal: true" in text and "6379" not in text


def test_copy_solution_writes_the_solution_view(tmp_path):
    source = tmp_path / "src"
    (source / "proxy").mkdir(parents=True)
    (source / "compose.yaml").write_text(MARKED)
    (source / "proxy" / "default.conf").write_text("server {}\n")
    (source / ".env").write_text("A=1\n")
    compose.copy_solution(source, tmp_path / "dst")
    assert (tmp_path / "dst" / "compose.yaml").read_text() == solution_text(MARKED)
    assert (tmp_path / "dst" / "proxy" / "default.conf").read_text() == "server {}\n"
    assert (tmp_path / "dst" / ".env").read_text() == "A=1\n"


class _Answer:
    def __init__(self, who):
        self.headers = {"X-Served-By": who}

    def raise_for_status(self):
        pass


def test_served_by_counts_the_replicas_that_answered(monkeypatch):
    replies = iter(["a", "b", "a", "c", "a"])

    class Session:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass

        def get(self, url, timeout):
            return _Answer(next(replies))

    monkeypatch.setattr(compose.requests, "Session", Session)
    assert compose.served_by("http://127.0.0.1:1/health", 5) == {"a": 3, "b": 1, "c": 1}
