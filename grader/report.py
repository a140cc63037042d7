"""The terminal report: a readable table of checks, then what to fix and how."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from grader.result import GradeResult

MARKS = {
    "passed": "[green]PASS[/]",
    "failed": "[red]FAIL[/]",
    "skipped": "[yellow]SKIP[/]",
    "error": "[magenta]ERROR[/]",
}


def print_report(result: GradeResult, console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    lab = result.submission["lab"]
    if result.status in ("invalid", "error"):
        console.print(f"[bold red]Lab {lab}: could not grade {result.submission['path']} ({result.status})[/]")
        console.print(result.message)
        return
    table = Table(title=f"Lab {lab}: {result.submission['path']}", title_justify="left", expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("Check")
    table.add_column("Points", justify="right", no_wrap=True)
    table.add_column("Result")
    for t in result.tests:
        name = t.name + (" [dim](hidden from learners)[/]" if t.visibility == "hidden" else "")
        # escape(): a message may quote text in square brackets ("capabilities: [[gpu]]"), not rich markup.
        table.add_row(MARKS.get(t.status, t.status), name, f"{t.score:g}/{t.max_score:g}", escape(t.message))
    console.print(table)
    todo = [t for t in result.tests if t.status != "passed" and (t.hint or t.evidence)]
    for t in todo:
        console.print(f"\n[bold]{MARKS.get(t.status, t.status)} {t.name}[/]: {escape(t.message)}")
        if t.evidence:
            console.print("[dim]" + _indent(t.evidence) + "[/]", markup=True, highlight=False)
        if t.hint:
            console.print(f"[cyan]  Hint:[/] {_indent(t.hint).lstrip()}")  # _indent escapes brackets
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    colour = "green" if result.all_passed else "yellow"
    of_what = " (the checks shown)" if result.hidden_checks else ""
    console.print(f"\n[bold {colour}]Score: {result.score:g}/{result.max_score:g}{of_what}[/]  [dim]({timings})[/]")
    if result.hidden_checks:
        # Never let "all passed" read as the final grade when the instructor grades more than was shown.
        n = result.hidden_checks
        console.print(
            f"{n} more check{'s are' if n > 1 else ' is'} hidden: your instructor grades "
            f"{'them' if n > 1 else 'it'} too, so your final score can be lower."
        )
    if result.status == "timeout":
        console.print("[red]Grading stopped at its time limit; the checks after it were not run.[/]")


def _indent(text: str, pad: str = "    ") -> str:
    return "\n".join(pad + line.replace("[", r"\[") for line in text.splitlines())
