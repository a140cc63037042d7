"""Progress shown on stderr during long steps, so a learner sees the build is moving."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


class Step:
    def __init__(self, update: Callable[[str], None]):
        self.update = update


class Progress:
    """A spinner with the current build step on a terminal; plain step lines elsewhere (CI logs)."""

    def __init__(self, quiet: bool = False, console: Console | None = None):
        self.quiet = quiet
        self.console = console or Console(stderr=True, highlight=False)

    @contextmanager
    def step(self, title: str) -> Iterator[Step]:
        if self.quiet:
            yield Step(lambda line: None)
            return
        start = time.monotonic()
        if self.console.is_terminal:
            with self.console.status(title) as status:
                yield Step(lambda line: status.update(f"{title}: {_short(line)}") if _is_step(line) else None)
        else:
            self.console.print(f"- {title}...")
            yield Step(lambda line: self.console.print(f"    {_short(line)}") if _is_step(line) else None)
        self.console.print(f"[green]✓[/] {title} [dim]({time.monotonic() - start:.1f}s)[/]")

    def checking(self, title: str) -> None:
        if not self.quiet and not self.console.is_terminal:
            self.console.print(f"- checking: {title}")


def _is_step(line: str) -> bool:
    return line.startswith("Step ")


def _short(line: str, width: int = 90) -> str:
    line = line.strip()
    return line if len(line) <= width else line[: width - 1] + "…"
