"""Exports of one result object: JSON (the object itself), JUnit XML, Gradescope and PrairieLearn
results.json, and a gradebook CSV row."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from grader.result import GradeResult


def to_json(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)


def to_junit(result: GradeResult) -> str:
    """JUnit XML: one testcase per check, so CI systems show failures with their hints."""
    tests = result.tests
    ungraded = result.status in ("invalid", "error")
    suite = ET.Element(
        "testsuite",
        name=f"lab-{result.submission['lab']}",
        tests=str(len(tests) + ungraded),
        failures=str(sum(t.status == "failed" for t in tests)),
        errors=str(sum(t.status == "error" for t in tests) + ungraded),
        skipped=str(sum(t.status == "skipped" for t in tests)),
        time=str(result.timings.get("total_s", 0)),
    )
    if ungraded:
        case = ET.SubElement(suite, "testcase", classname="grader", name="grading")
        ET.SubElement(case, "error", message=result.message.splitlines()[0] if result.message else result.status)
    for t in tests:
        case = ET.SubElement(suite, "testcase", classname=t.category, name=t.name, time=str(t.duration_ms / 1000))
        body = "\n".join(part for part in (t.evidence, f"Hint: {t.hint}" if t.hint else "") if part)
        if t.status in ("failed", "error"):
            node = ET.SubElement(case, "failure" if t.status == "failed" else "error", message=t.message)
            node.text = body
        elif t.status == "skipped":
            ET.SubElement(case, "skipped", message=t.message)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def to_gradescope(result: GradeResult) -> str:
    """Gradescope's autograder results.json format."""
    out = {
        "score": result.score,
        "execution_time": result.timings.get("total_s", 0),
        "output": result.message or f"Lab {result.submission['lab']}: {result.score:g}/{result.max_score:g}",
        "tests": [
            {
                "name": t.name,
                "score": t.score,
                "max_score": t.max_score,
                "status": "passed" if t.status == "passed" else "failed",
                "output": "\n".join(p for p in (t.message, t.evidence, f"Hint: {t.hint}" if t.hint else "") if p),
                "visibility": "visible" if t.visibility == "visible" else "after_published",
            }
            for t in result.tests
        ],
    }
    return json.dumps(out, indent=2)


PRAIRIELEARN_OUTPUT_CHARS = 20_000  # PrairieLearn refuses a results.json over 1 MB: evidence is cut to fit
HIDDEN_MESSAGE = "hidden check: its details are shown by your instructor"


def to_prairielearn(result: GradeResult) -> str:
    """PrairieLearn's external-grading results.json: `score` is a fraction in [0, 1].

    A submission that could not be graded is `gradable: false`, so PrairieLearn charges no attempt for it.
    PrairieLearn shows every test to the student, so a hidden check keeps its points but not its details.
    """
    if result.status in ("invalid", "error"):
        errors = [line for line in (result.message or result.status).splitlines() if line.strip()]
        return json.dumps({"gradable": False, "format_errors": errors, "message": errors[0]}, indent=2)
    tests = []
    for t in result.tests:
        hidden = t.visibility == "hidden"
        message = (
            HIDDEN_MESSAGE if hidden else "\n".join(p for p in (t.message, f"Hint: {t.hint}" if t.hint else "") if p)
        )
        tests.append(
            {
                "name": t.name,
                "description": t.category,
                "points": t.score,
                "max_points": t.max_score,
                "message": message,
                "output": "" if hidden else _cut(t.evidence, PRAIRIELEARN_OUTPUT_CHARS),
            }
        )
    summary = f"Lab {result.submission['lab']}: {result.score:g}/{result.max_score:g}"
    if result.status == "timeout":
        summary += " (grading stopped at its time limit; the checks after it were not run)"
    out = {
        "gradable": True,
        "score": round(result.score / result.max_score, 4) if result.max_score else 0.0,
        "message": summary,
        "output": result.message,
        "tests": tests,
    }
    return json.dumps(out, indent=2)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


# One row per learner and lab, in the spirit of nbgrader's grade export, plus the grading status.
CSV_COLUMNS = (
    "lab",
    "learner",
    "last_name",
    "first_name",
    "email",
    "last_submitted",
    "attempts",
    "status",
    "score",
    "max_score",
    "message",
)


def csv_row(
    result: GradeResult | None,
    *,
    lab: str,
    learner: str,
    attempts: int,
    status: str,
    last_submitted: str = "",
    person: dict | None = None,
    message: str | None = None,
) -> dict:
    """The CSV row of one learner: `result` is the attempt that counts, or why none does (None: no attempt).

    `status` is the learner's standing (graded | timeout | invalid | error | missing); the score is
    filled in only for a counted attempt (graded or timeout).
    """
    person = person or {}
    message = result.message if message is None and result is not None else (message or "")
    return {
        "lab": lab,
        "learner": learner,
        "last_name": person.get("last_name", ""),
        "first_name": person.get("first_name", ""),
        "email": person.get("email", ""),
        "last_submitted": last_submitted,
        "attempts": attempts,
        "status": status,
        "score": f"{result.score:g}" if result is not None and status in ("graded", "timeout") else "",
        "max_score": f"{result.max_score:g}" if result is not None else "",
        "message": message.splitlines()[0] if message else "",
    }


def to_csv(rows: Iterable[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _no_formula(v) for k, v in row.items()})
    return buf.getvalue()


def _no_formula(value):
    """A learner-chosen text that a spreadsheet would run as a formula ("=HYPERLINK(...)") is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


WRITERS = {"json": to_json, "junit": to_junit, "gradescope": to_gradescope, "prairielearn": to_prairielearn}


def write(result: GradeResult, fmt: str, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(WRITERS[fmt](result))
