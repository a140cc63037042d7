"""The BuildKit build cache that grading makes: recorded, kept within a budget, and removed on request.

BuildKit keeps its cache apart from images and labels none of it, so removing a grade's images leaves its
cache behind, and a class of a hundred grades would fill the disk. The grader therefore notes which cache
records appeared while it graded (a ledger in the user's cache folder), keeps them within a budget by
pruning the least recently used, and `python -m grader clean --cache` removes exactly those, never the
cache of the learner's or anyone else's own builds.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import docker.errors
import requests

from grader.buildkit import parse_time
from grader.engine import Engine

BUDGET_ENV = "GRADER_BUILD_CACHE_MB"  # how much build cache grading may keep (default below)
DEFAULT_BUDGET_MB = 20_000
PRUNE_TO = 0.8  # past the budget, the oldest grading cache goes until this fraction of it is left
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)
_LEDGER_LOCK = threading.Lock()  # the grades of a batch finish in threads of one process


def ledger_path() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ml-grader" / "build-cache.json"


def budget_bytes() -> int:
    try:
        return int(float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_MB)) * 1e6)
    except ValueError:
        return int(DEFAULT_BUDGET_MB * 1e6)


def _read(path: Path) -> set[str]:
    try:
        return set(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return set()  # no ledger yet, or a damaged one: the worst case is cache left for `docker buildx prune`


def _write(path: Path, ids: set[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(sorted(ids)))
    tmp.replace(path)  # atomic: two grades finishing at once never leave half a file


def snapshot(engine: Engine) -> set[str]:
    """The ids of the build cache records on the engine now (taken before a grade builds)."""
    try:
        return {record["ID"] for record in engine.build_cache_records()}
    except ENGINE_ERRORS:
        return set()


def record_and_bound(engine: Engine, before: set[str]) -> int:
    """Add the records that appeared since `before` to the ledger; past the budget, prune grading's oldest.

    Returns the bytes pruned. Records in use (a build of another grade still running) are never pruned.
    """
    with _LEDGER_LOCK:
        try:
            return _record_and_bound(engine, before)
        except ENGINE_ERRORS:
            return 0  # an engine too busy to answer: the next grade records and bounds it


def _record_and_bound(engine: Engine, before: set[str]) -> int:
    path = ledger_path()
    records = {r["ID"]: r for r in engine.build_cache_records()}
    ours = (_read(path) | (set(records) - before)) & set(records)  # ids the engine no longer has are dropped
    total = sum(records[i].get("Size") or 0 for i in ours)
    freed, budget = 0, budget_bytes()
    if total <= budget:
        _write(path, ours)
        return 0
    budget = int(budget * PRUNE_TO)  # well under it: the next grades do not each prune a little
    # Least recently used first; among equals the newest first, so a child goes before its parent.
    by_age = sorted(ours, key=lambda i: (_used(records[i]), -_created(records[i])))
    for record_id in by_age:
        if total <= budget:
            break
        if records[record_id].get("InUse"):
            continue
        size = records[record_id].get("Size") or 0
        if engine.prune_build_cache_record(record_id):
            ours.discard(record_id)
            total -= size
            freed += size
    _write(path, ours)
    return freed


def clear(engine: Engine) -> int:
    """Remove every build cache record grading made (and nothing else); returns the bytes freed."""
    path = ledger_path()
    with _LEDGER_LOCK:
        ours = _read(path)
    records = {r["ID"]: r for r in engine.build_cache_records()}
    freed = 0
    # Newest first: BuildKit keeps a record while a newer one is built on it.
    for record_id in sorted(ours & set(records), key=lambda i: -_created(records[i])):
        if engine.prune_build_cache_record(record_id):
            freed += records[record_id].get("Size") or 0
    left = {r["ID"] for r in engine.build_cache_records()} & ours
    _write(path, left)
    return freed


def _created(record: dict) -> float:
    """The record's CreatedAt as a Unix time (0 when missing)."""
    created = parse_time(record.get("CreatedAt"))
    return created.timestamp() if created else 0.0


def _used(record: dict) -> float:
    used = parse_time(record.get("LastUsedAt"))
    return used.timestamp() if used else 0.0
