"""What an instructor sees while a class is graded: a progress bar with a line per running submission on a
terminal, one line per finished submission in a log (CI), nothing with --quiet."""

from __future__ import annotations

import threading

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

from grader.batch.roster import Submission
from grader.batch.runner import Display, Graded
from grader.result import effective_status

MARKS = {
    "passed": "[green]✓[/]",
    "failed": "[yellow]✗[/]",
    "timeout": "[red]⏱[/]",
    "invalid": "[red]![/]",
    "error": "[magenta]![/]",
}


def finished_line(graded: Graded) -> str:
    """One line about a finished submission, e.g. '✓ ada (ada.zip)  26/26  graded  8.1s'."""
    r = graded.result
    status, message = effective_status(r)
    mark = MARKS["passed" if r.all_passed and status == "graded" else ("failed" if status == "graded" else status)]
    who = escape(r.submission["learner"])
    name = escape(graded.submission.name)
    where = "from the gradebook" if graded.reused else f"{graded.seconds:.1f}s"
    if status in ("invalid", "error"):
        first = escape(message.splitlines()[0]) if message else ""
        return f"{mark} {who} ({name})  {status}: {first}  [dim]{where}[/]"
    return f"{mark} {who} ({name})  {r.score:g}/{r.max_score:g}  {status}  [dim]{where}[/]"


class BatchDisplay(Display):
    """Progress of a batch on `console` (stderr by default)."""

    def __init__(self, total: int, console: Console | None = None, quiet: bool = False, checks: int | None = None):
        # soft_wrap: in a log (CI), a long line stays one line
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.quiet = quiet
        self.total = total
        self.checks = checks  # per submission: its row counts the checks started
        self.done = 0
        self._lock = threading.Lock()
        self._rows: dict[str, int] = {}
        self._bar: RichProgress | None = None
        self._overall = None

    def __enter__(self) -> BatchDisplay:
        if not self.quiet and self.console.is_terminal:
            self._bar = RichProgress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar.start()
            self._overall = self._bar.add_task("Grading", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def started(self, submission: Submission) -> None:
        if self._bar is not None:
            with self._lock:
                self._rows[submission.name] = self._bar.add_task(f"  {escape(submission.learner)}", total=self.checks)

    def status(self, submission: Submission, text: str, check: bool = False) -> None:
        row = self._rows.get(submission.name) if self._bar is not None else None
        if row is not None:
            self._bar.update(row, description=f"  {escape(submission.learner)}: {escape(text)}", advance=int(check))

    def stopped(self, submission: Submission) -> None:
        if self._bar is not None:
            with self._lock:
                row = self._rows.pop(submission.name, None)
            if row is not None:
                self._bar.remove_task(row)

    def finished(self, graded: Graded) -> None:
        with self._lock:
            self.done += 1
            done = self.done
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.advance(self._overall)
            self._bar.console.print(finished_line(graded))
        else:
            width = len(str(self.total))
            self.console.print(escape(f"[{done:>{width}}/{self.total}]") + " " + finished_line(graded))

    def note(self, text: str) -> None:
        if not self.quiet:
            (self._bar.console if self._bar is not None else self.console).print(text)
