"""Reliability run: every hostile submission of tests/engine/hostile.py graded on the engine, with its figures.

For each case: the check that decides it and its status, wall time against the case's limit (a ratio; under
1 is good), the largest container log seen while it ran (the cap is 2 x 2 MB), and how much more of the
engine's disk is in use afterwards, less the build cache the grader keeps (goal: about 0). Nothing is
asserted; the exit status is non-zero only when a case could not be graded at all or left objects behind.

Usage: .venv/bin/python benchmarks/bench_hostile.py [CASE ...]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "engine"))  # the cases and their runner live beside the engine tests

from hostile import CASES, run_case  # noqa: E402

from grader.engine import Engine, connect  # noqa: E402

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in CASES]
    if unknown:
        console.print(f"unknown case(s): {', '.join(unknown)}; the cases are: {', '.join(CASES)}", style="red")
        return 2
    engine = Engine(connect().client)
    table = Table(title="Hostile submissions of lab 01, graded on the engine")
    for column in ("case", "exit", "worst check", "wall s", "limit s", "wall/limit", "peak log", "disk after"):
        table.add_column(column, justify="left" if column in ("case", "worst check") else "right")
    failed = False
    try:
        for name in names or list(CASES):
            with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
                outcome = run_case(name, engine, Path(tmp))
            result = outcome.result
            worst = next((t for t in result.tests if t.status in ("failed", "error")), None)
            left = engine.leftovers()
            failed |= result.status == "error" or any(left.values())
            table.add_row(
                name,
                str(result.exit_code),
                f"{worst.id}: {worst.status}" if worst else "all passed",
                f"{outcome.seconds:.0f}",
                f"{CASES[name].limit_s:.0f}",
                f"{outcome.seconds / CASES[name].limit_s:.2f}",
                f"{outcome.peak_log_bytes / 1e6:.1f} MB",
                f"{outcome.disk_after_mb:+.0f} MB" + ("" if not any(left.values()) else f" LEFT {left}"),
            )
    finally:
        engine.remove_session()
    console.print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
