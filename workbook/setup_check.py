"""Chapter 0 (setup check): show what `grader.doctor.diagnose()` found as a table, and a one-line verdict.

from grader.doctor import diagnose
table = FindingsTable(diagnose())
table            # an HTML table in JupyterLab, aligned text elsewhere
print(verdict(table.findings))
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from grader.doctor import Finding

HEADERS = ("Part", "Status", "What was found", "How to fix it")
COLOURS = {"ok": "#1a7f37", "FIX": "#cf222e", "note": "#9a6700"}


def status_of(finding: Finding) -> str:
    """'ok', 'FIX' (a required part is broken) or 'note' (an optional part, such as a GPU, is missing)."""
    if finding.ok:
        return "ok"
    return "FIX" if finding.required else "note"


def problems(findings: Sequence[Finding]) -> list[Finding]:
    """The required parts that do not work: each one stops the labs from building or grading."""
    return [f for f in findings if f.required and not f.ok]


def verdict(findings: Sequence[Finding]) -> str:
    """One line a newcomer can act on."""
    broken = problems(findings)
    if not broken:
        return "Ready: every required part works"
    return f"{len(broken)} problem{'s' if len(broken) > 1 else ''}: fix them with the commands above"


def _fix(finding: Finding) -> str:
    return finding.fix if not finding.ok else ""


class FindingsTable:
    """The findings as a table: HTML in a notebook front end, aligned plain text everywhere else."""

    def __init__(self, findings: Sequence[Finding]):
        self.findings = list(findings)

    def rows(self) -> list[tuple[str, str, str, str]]:
        return [(f.name, status_of(f), f.detail, _fix(f)) for f in self.findings]

    def _repr_html_(self) -> str:
        head = "".join(f"<th style='text-align:left'>{h}</th>" for h in HEADERS)
        body = []
        for name, status, detail, fix in self.rows():
            colour = COLOURS[status]
            fix_cell = f"<code>{html.escape(fix)}</code>" if fix else ""
            body.append(
                f"<tr><td>{html.escape(name)}</td>"
                f"<td style='color:{colour};font-weight:bold'>{status}</td>"
                f"<td style='text-align:left'>{html.escape(detail)}</td>"
                f"<td style='text-align:left'>{fix_cell}</td></tr>"
            )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"

    def __repr__(self) -> str:
        rows = self.rows()
        width = max([len(HEADERS[0])] + [len(r[0]) for r in rows])
        lines = [f"{HEADERS[0]:<{width}}  {HEADERS[1]:<6}  {HEADERS[2]}"]
        for name, status, detail, fix in rows:
            lines.append(f"{name:<{width}}  {status:<6}  {detail}")
            if fix:
                lines.append(f"{'':<{width}}  {'':<6}  fix: {fix}")
        return "\n".join(lines)
