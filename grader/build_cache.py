"""The BuildKit build cache that grading makes: recorded, kept within a budget, and removed on request.

BuildKit keeps its cache apart from images and labels none of it, so removing a grade's images leaves its
cache behind, and a class of a hundred grades would fill the disk. The grader therefore notes which cache
records appeared while it graded (a ledger in the user's cache folder), keeps them within a budget by
pruning the least recently used, and `python -m grader clean --cache` removes exactly those, never the
cache of the learner's or anyone else's own builds.

"Least recently used" is judged per group of records, not per record: a build that is cached to the end
touches only its last records (their LastUsedAt moves), never the earlier steps they stand on (a builder
stage's `pip install`, say). Judged record by record, those steps look old and are pruned first, and the
next grade of the same lab rebuilds from scratch (a builder stage's result is what BuildKit checksums to
find a cached `COPY --from`). So the records one grade made form a group; a grade that touches records of
earlier groups refreshes them, and the group it makes remembers it needs them (a cached refresh of it
refreshes them too). Whole groups go, least recently used first, never one the grade at hand needs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import docker.errors
import requests

from grader import kept_image
from grader.buildkit import parse_time
from grader.engine import Engine
from grader.user_cache import locked, user_cache_dir

BUDGET_ENV = "GRADER_BUILD_CACHE_MB"  # how much build cache grading may keep (default below)
DEFAULT_BUDGET_MB = 20_000
PRUNE_TO = 0.8  # past the budget, the oldest grading cache goes until this fraction of it is left
ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


def _ledger_lock():
    """The ledger to this thread alone, also against other processes (grading workers share one ledger)."""
    return locked("build-cache")


def ledger_path() -> Path:
    return user_cache_dir() / "build-cache.json"


def budget_bytes() -> int:
    try:
        return int(float(os.environ.get(BUDGET_ENV, DEFAULT_BUDGET_MB)) * 1e6)
    except ValueError:
        return int(DEFAULT_BUDGET_MB * 1e6)


def _read_groups(path: Path) -> list[dict]:
    """The ledger: groups of record ids, each with an id, when a grade last used it (a Unix time) and the
    groups it was built on."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, TypeError):
        return []  # no ledger yet, or a damaged one: the worst case is cache left for `docker buildx prune`
    if isinstance(data, list):  # the first format, a plain list of ids: one group, older than any other
        return [{"id": 0, "ids": set(map(str, data)), "used": 0.0, "needs": set()}]
    try:
        return [
            {"id": int(g["id"]), "ids": set(map(str, g["ids"])), "used": float(g["used"]), "needs": set(g["needs"])}
            for g in data["groups"]
        ]
    except (KeyError, TypeError, ValueError):
        return []


def _read(path: Path) -> set[str]:
    """Every record id the ledger holds."""
    return {i for group in _read_groups(path) for i in group["ids"]}


def _write(path: Path, groups: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    kept = [{**g, "ids": sorted(g["ids"]), "needs": sorted(g["needs"])} for g in groups if g["ids"]]
    tmp.write_text(json.dumps({"groups": kept}))
    tmp.replace(path)  # atomic: two grades finishing at once never leave half a file


def snapshot(engine: Engine) -> dict[str, str]:
    """The build cache records on the engine now, id -> LastUsedAt (taken before a grade builds)."""
    try:
        return {record["ID"]: record.get("LastUsedAt") or "" for record in engine.build_cache_records()}
    except ENGINE_ERRORS:
        return {}


def record_and_bound(engine: Engine, before: dict[str, str]) -> int:
    """Add the records that appeared since `before` to the ledger; past the budget, prune grading's oldest.

    Returns the bytes pruned. Records in use (a build of another grade still running) are never pruned.
    """
    with _ledger_lock():
        try:
            return _record_and_bound(engine, before)
        except ENGINE_ERRORS:
            return 0  # an engine too busy to answer: the next grade records and bounds it


def _needed(groups: dict[int, dict], start: set[int]) -> set[int]:
    """`start` and every group they were built on, directly or not."""
    seen: set[int] = set()
    todo = list(start)
    while todo:
        group_id = todo.pop()
        if group_id in seen or group_id not in groups:
            continue
        seen.add(group_id)
        todo.extend(groups[group_id]["needs"])
    return seen


def _record_and_bound(engine: Engine, before: dict[str, str]) -> int:
    path = ledger_path()
    records = {r["ID"]: r for r in engine.build_cache_records()}
    groups: dict[int, dict] = {}
    for group in _read_groups(path):
        group["ids"] &= set(records)  # ids the engine no longer has are dropped
        if group["ids"]:
            groups[group["id"]] = group
    # The groups this grade used again (a record's LastUsedAt moved), and the one it made on top of them.
    touched = {i for i, used in before.items() if i in records and (records[i].get("LastUsedAt") or "") != used}
    used = {g["id"] for g in groups.values() if g["ids"] & touched}
    made = set(records) - set(before)
    if made:
        new_id = max(groups, default=0) + 1
        groups[new_id] = {"id": new_id, "ids": made, "used": 0.0, "needs": set(used)}
        used.add(new_id)
    needed = _needed(groups, used)
    now = time.time()
    for group_id in needed:
        groups[group_id]["used"] = now
    total = sum(_private_size(records[i]) for g in groups.values() for i in g["ids"])
    freed = 0
    if total > budget_bytes():
        target = int(budget_bytes() * PRUNE_TO)  # well under the budget: the next grades do not each prune a little
        for group in sorted(groups.values(), key=lambda g: g["used"]):
            if group["id"] in needed:
                continue  # never what the grade at hand stands on: the next grade of this lab wants it
            # Newest first within a group: BuildKit keeps a record while a newer one is built on it.
            for record_id in sorted(group["ids"], key=lambda i: -_created(records[i])):
                if total <= target:
                    break
                record = records[record_id]
                if record.get("Shared") or record.get("InUse"):
                    continue  # an image's layer (pruning it frees nothing), or a build of another grade's
                if engine.prune_build_cache_record(record_id):
                    group["ids"].discard(record_id)
                    total -= _private_size(record)
                    freed += _private_size(record)
    _write(path, list(groups.values()))
    return freed


def _private_size(record: dict) -> int:
    """The disk a record alone holds. A shared record is also a layer of an image in the store (every image
    is, in the containerd image store): pruning it frees nothing, so it never counts against the budget.
    Counting it made every grade prune the cache the next grade of the same lab needed."""
    return 0 if record.get("Shared") else record.get("Size") or 0


def clear(engine: Engine) -> tuple[int, int]:
    """Remove every build cache record grading made and the images grades kept (nothing else).

    Returns the bytes of build cache freed and the number of kept images removed."""
    # First the kept images: their layers are the records' (Shared), which pruning frees only once they are gone.
    kept = kept_image.remove_all(engine)
    path = ledger_path()
    with _ledger_lock():
        ours = _read(path)
    records = {r["ID"]: r for r in engine.build_cache_records()}
    freed = 0
    # Newest first: BuildKit keeps a record while a newer one is built on it.
    for record_id in sorted(ours & set(records), key=lambda i: -_created(records[i])):
        if engine.prune_build_cache_record(record_id):
            freed += records[record_id].get("Size") or 0
    left = {r["ID"] for r in engine.build_cache_records()} & ours
    with _ledger_lock():
        _write(path, [{"id": 0, "ids": left, "used": 0.0, "needs": set()}])
    return freed, kept


def _created(record: dict) -> float:
    """The record's CreatedAt as a Unix time (0 when missing)."""
    created = parse_time(record.get("CreatedAt"))
    return created.timestamp() if created else 0.0
