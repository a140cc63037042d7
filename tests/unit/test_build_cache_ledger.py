"""The ledger of build cache that grading made, on a fake engine that holds BuildKit cache records."""

from __future__ import annotations

import pytest

from grader import build_cache


class CacheEngine:
    """Just the two calls build_cache makes, over a dict of records as GET /system/df returns them."""

    def __init__(self):
        self.records: dict[str, dict] = {}

    def add(self, record_id: str, size_mb: float, used: str, in_use: bool = False) -> None:
        self.records[record_id] = {
            "ID": record_id,
            "Size": int(size_mb * 1e6),
            "InUse": in_use,
            "CreatedAt": f"2026-12-04T10:{used}.123456789Z",
            "LastUsedAt": f"2026-12-04T11:{used}.5Z",
        }

    def build_cache_records(self):
        return list(self.records.values())

    def prune_build_cache_record(self, record_id):
        return self.records.pop(record_id, None) is not None


@pytest.fixture(autouse=True)
def ledger_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))


def test_only_records_that_appeared_during_a_grade_are_noted_and_cleared():
    engine = CacheEngine()
    engine.add("learners-own", 50, "00:01")
    before = build_cache.snapshot(engine)
    engine.add("grade-step", 30, "00:02")
    engine.add("grade-context", 1, "00:03")
    assert build_cache.record_and_bound(engine, before) == 0  # well within the default budget
    assert build_cache.clear(engine) == 31_000_000
    assert set(engine.records) == {"learners-own"}


def test_past_the_budget_the_least_recently_used_grading_cache_goes_first(monkeypatch):
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    engine.add("someone-elses", 500, "00:00")
    before = build_cache.snapshot(engine)
    engine.add("old", 80, "00:01")
    engine.add("busy", 80, "00:02", in_use=True)
    engine.add("new", 15, "00:03")
    freed = build_cache.record_and_bound(engine, before)
    # 175 MB of grading cache against 100 (pruned down to 80): "old" goes; "busy" is in use and stays; "new"
    # goes too, as 95 MB is still over 80.
    assert freed == 95_000_000
    assert set(engine.records) == {"someone-elses", "busy"}


def test_within_the_budget_nothing_is_pruned(monkeypatch):
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    before = build_cache.snapshot(engine)
    engine.add("a", 60, "00:01")
    engine.add("b", 39, "00:02")
    assert build_cache.record_and_bound(engine, before) == 0
    assert set(engine.records) == {"a", "b"}


def test_the_ledger_survives_a_later_grade_and_forgets_what_the_engine_lost():
    engine = CacheEngine()
    before = build_cache.snapshot(engine)
    engine.add("first", 1, "00:01")
    build_cache.record_and_bound(engine, before)
    engine.records.pop("first")  # pruned by someone else, say `docker buildx prune`
    before = build_cache.snapshot(engine)
    engine.add("second", 2, "00:02")
    build_cache.record_and_bound(engine, before)
    assert build_cache._read(build_cache.ledger_path()) == {"second"}


def test_times_with_nanoseconds_are_read():
    from grader.buildkit import parse_time

    assert parse_time("2026-12-04T16:46:56.984167869Z").microsecond == 984167
    assert parse_time("2026-12-04T16:46:56Z").second == 56
    assert parse_time(None) is None
