"""The grader's folder in the user's cache: what it keeps between runs that can always be made again."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: grades of one process are still kept apart by the thread lock
    fcntl = None

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_LOCK = threading.Lock()


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ml-grader, or ~/.cache/ml-grader."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-grader"


@contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the lock `name` against other threads (the grades of a batch) and other processes (grading workers
    on the same machine): a lock file in the cache folder, held with flock and released when it closes."""
    with _THREAD_LOCKS_LOCK:
        threads = _THREAD_LOCKS.setdefault(name, threading.Lock())
    with threads:
        path = user_cache_dir() / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as held:
            if fcntl is not None:
                fcntl.flock(held, fcntl.LOCK_EX)
            yield
