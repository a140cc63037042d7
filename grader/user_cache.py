"""The grader's folder in the user's cache: what it keeps between runs that can always be made again."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache_dir() -> Path:
    """$XDG_CACHE_HOME/ml-grader, or ~/.cache/ml-grader."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ml-grader"
