"""The ledger of build cache that grading made, on a fake engine that holds BuildKit cache records."""

from __future__ import annotations

import pytest

from grader import build_cache


class CacheEngine:
    """Just the calls build_cache makes, over a dict of records as GET /system/df returns them."""

    def __init__(self):
        self.records: dict[str, dict] = {}
        self.kept_images = 2

    def remove_kept_images(self, lab=None, keep=None):
        removed, self.kept_images = self.kept_images, 0
        return removed

    def add(self, record_id: str, size_mb: float, used: str, in_use: bool = False, shared: bool = False) -> None:
        self.records[record_id] = {
            "ID": record_id,
            "Size": int(size_mb * 1e6),
            "InUse": in_use,
            "Shared": shared,
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
    assert build_cache.clear(engine) == (31_000_000, 2)
    assert engine.kept_images == 0
    assert set(engine.records) == {"learners-own"}


def grade(engine, made=(), touched=()):
    """One grade as the ledger sees it: records it made (id, MB, in use) and cached records it used again."""
    before = build_cache.snapshot(engine)
    for record_id, size_mb, in_use in made:
        engine.add(record_id, size_mb, f"{len(engine.records):02d}:00", in_use=in_use)
    for record_id in touched:
        engine.records[record_id]["LastUsedAt"] = f"2026-12-04T12:{len(engine.records):02d}:00.5Z"
    return build_cache.record_and_bound(engine, before)


def test_past_the_budget_the_least_recently_used_grades_go_first(monkeypatch):
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    engine.add("someone-elses", 500, "00:00")
    assert grade(engine, made=[("old-base", 40, False), ("old-top", 20, False), ("busy", 10, True)]) == 0
    # 110 MB against 100: the older grade goes, newest record first, until no more than 80 MB are left;
    # the record in use stays, and so does all of what the grade just made.
    assert grade(engine, made=[("new", 40, False)]) == 60_000_000
    assert set(engine.records) == {"someone-elses", "busy", "new"}


def test_a_cached_regrade_keeps_the_steps_its_last_records_stand_on(monkeypatch):
    """A fully cached build touches only its last records: the `pip install` below them must stay too."""
    monkeypatch.setenv(build_cache.BUDGET_ENV, "110")
    engine = CacheEngine()
    grade(engine, made=[("lab07-pip-install", 50, False), ("lab07-final", 5, False)])
    grade(engine, made=[("lab01-build", 40, False)])
    grade(engine, touched=["lab07-final"])  # lab 07 again, cached to the end
    # 125 MB against 110: lab 01's grade is now the least recently used; lab 07's pip install (its own
    # LastUsedAt the oldest of all) stays with the record that stands on it.
    assert grade(engine, made=[("lab02-build", 30, False)]) == 40_000_000
    assert set(engine.records) == {"lab07-pip-install", "lab07-final", "lab02-build"}


def test_a_group_built_on_another_keeps_it_while_it_is_used(monkeypatch):
    """Lab 07's final stage, built on a builder stage an earlier grade made, then regraded from cache."""
    monkeypatch.setenv(build_cache.BUDGET_ENV, "110")
    engine = CacheEngine()
    grade(engine, made=[("builder-pip-install", 50, False)])
    grade(engine, made=[("final-stage", 5, False)], touched=["builder-pip-install"])
    grade(engine, made=[("lab01-build", 40, False)])
    grade(engine, touched=["final-stage"])  # cached to the end: the builder's records are not touched
    assert grade(engine, made=[("lab02-build", 30, False)]) == 40_000_000
    assert set(engine.records) == {"builder-pip-install", "final-stage", "lab02-build"}
    groups = build_cache._read_groups(build_cache.ledger_path())
    assert [sorted(g["ids"]) for g in groups] == [["builder-pip-install"], ["final-stage"], ["lab02-build"]]


def test_a_ledger_in_the_first_format_is_one_group_older_than_any_grade(monkeypatch):
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    engine.add("from-an-older-grader", 60, "00:00")
    build_cache.ledger_path().parent.mkdir(parents=True)
    build_cache.ledger_path().write_text('["from-an-older-grader", "gone-from-the-engine"]')
    assert grade(engine, made=[("new", 50, False)]) == 60_000_000
    assert set(engine.records) == {"new"}


def test_a_damaged_ledger_is_started_afresh():
    engine = CacheEngine()
    build_cache.ledger_path().parent.mkdir(parents=True)
    build_cache.ledger_path().write_text('{"groups": [{"ids": 3}]}')
    grade(engine, made=[("new", 1, False)])
    assert build_cache._read(build_cache.ledger_path()) == {"new"}


def test_within_the_budget_nothing_is_pruned(monkeypatch):
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    before = build_cache.snapshot(engine)
    engine.add("a", 60, "00:01")
    engine.add("b", 39, "00:02")
    assert build_cache.record_and_bound(engine, before) == 0
    assert set(engine.records) == {"a", "b"}


def test_records_an_image_shares_count_for_nothing_and_are_never_pruned(monkeypatch):
    """In the containerd image store every image layer is also a cache record, marked Shared: counting those
    put a class far past any budget and pruned the cache every next grade needed."""
    monkeypatch.setenv(build_cache.BUDGET_ENV, "100")
    engine = CacheEngine()
    before = build_cache.snapshot(engine)
    engine.add("image-layer", 900, "00:01", shared=True)
    engine.add("pip-install", 90, "00:02")
    assert build_cache.record_and_bound(engine, before) == 0
    assert grade(engine, made=[("next-grade", 20, False)]) == 90_000_000  # 110 private MB: the older grade goes
    assert set(engine.records) == {"image-layer", "next-grade"}


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


def _record_one(index: int, count: int) -> None:
    """One grading process: its engine holds every record, and record `index` appeared while it graded."""
    engine = CacheEngine()
    for i in range(count):
        engine.add(f"r{i}", 1, f"00:{i:02d}")
    before = {r["ID"]: r["LastUsedAt"] for r in engine.build_cache_records() if r["ID"] != f"r{index}"}
    build_cache.record_and_bound(engine, before)


def test_grading_processes_finishing_together_lose_no_record_of_each_other():
    """Grading workers are processes sharing one ledger: each read-modify-write must see the others'."""
    import multiprocessing

    count = 12
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_record_one, args=(i, count)) for i in range(count)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert [worker.exitcode for worker in workers] == [0] * count
    assert build_cache._read(build_cache.ledger_path()) == {f"r{i}" for i in range(count)}
