"""Exports of one result object: JSON (the object itself), JUnit XML, Gradescope and PrairieLearn
results.json, and a gradebook CSV row."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from grader.result import COUNTED, GradeResult, effective_status

# Colour and cursor codes a service writes to its log (Flask's dev server does, even to a pipe), which end up
# in a check's evidence: CSI sequences (ESC [ ... letter) and two-character escapes (ESC letter).
ANSI_CODE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
# What XML 1.0 forbids in a document: every control character but tab, newline and carriage return, lone
# surrogates, and U+FFFE/U+FFFF.
NOT_XML = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def plain(text: str) -> str:
    """Text without terminal colour codes, for formats that show text as it is."""
    return ANSI_CODE.sub("", text or "")


def xml_text(text: str) -> str:
    """Text an XML 1.0 document can hold: colour codes removed, any other forbidden character written as
    `#xNN`, as pytest's JUnit report does (an XML parser refuses the raw character)."""
    return NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", plain(text))


def to_json(result: GradeResult) -> str:
    return json.dumps(result.to_dict(), indent=2, default=str)


def _grading_problem(result: GradeResult) -> tuple[str, str] | None:
    """Why grading as a whole did not finish (JUnit element, message), or None. A check that hit a fault is
    its own erroring testcase already."""
    first_line = (result.message or result.status).splitlines()[0]
    if result.status == "error":  # our fault (grader or engine): an error, not the learner's failure
        return "error", f"not graded, a grader or engine fault: {first_line}"
    if result.status == "invalid":
        return "failure", f"the submission could not be graded: {first_line}"
    if result.status == "timeout":
        return "failure", f"grading stopped at its time limit: {first_line}"
    return None


def to_junit(result: GradeResult) -> str:
    """JUnit XML: one testcase per check, so CI systems show failures with their hints.

    An attempt that was not graded in full (timeout, invalid submission, grader fault) adds a `grading`
    testcase that fails or errs, so no CI ever shows it green. The suite's properties name the learner,
    the lab, when it was graded and the score.
    """
    tests = result.tests
    problem = _grading_problem(result)
    lab = result.submission.get("lab", "")
    counts = {
        "tests": len(tests) + (problem is not None),
        "failures": sum(t.status == "failed" for t in tests) + (problem is not None and problem[0] == "failure"),
        "errors": sum(t.status == "error" for t in tests) + (problem is not None and problem[0] == "error"),
        "skipped": sum(t.status == "skipped" for t in tests),
    }
    total_s = str(result.timings.get("total_s", 0))
    timestamp = result.submission.get("submitted_at", "")
    root = ET.Element("testsuites", name="grader", time=total_s, **{k: str(v) for k, v in counts.items()})
    suite = ET.SubElement(
        root,
        "testsuite",
        name=f"lab-{lab}",
        timestamp=timestamp,
        time=total_s,
        **{k: str(v) for k, v in counts.items()},
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("learner", result.submission.get("learner", "")),
        ("lab", lab),
        ("timestamp", timestamp),
        ("status", effective_status(result)[0]),
        ("score", f"{result.score:g}"),
        ("max_score", f"{result.max_score:g}"),
        ("grader_version", result.grader.get("version", "")),
    ):
        ET.SubElement(properties, "property", name=name, value=xml_text(str(value)))
    if problem is not None:
        kind, message = problem
        case = ET.SubElement(suite, "testcase", classname=f"lab-{lab}.grading", name="grading", time=total_s)
        ET.SubElement(case, kind, message=xml_text(message)).text = xml_text(result.message)
    for t in tests:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"lab-{lab}.{t.category}",
            name=xml_text(t.name),
            time=str(t.duration_ms / 1000),
        )
        body = "\n".join(part for part in (t.evidence, f"Hint: {t.hint}" if t.hint else "") if part)
        if t.status in ("failed", "error"):
            node = ET.SubElement(case, "failure" if t.status == "failed" else "error", message=xml_text(t.message))
            node.text = xml_text(body)
        elif t.status == "skipped":
            ET.SubElement(case, "skipped", message=xml_text(t.message))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _text_format(*texts: str) -> str:
    """Gradescope's output_format for text that may hold colour codes: it renders "ansi" itself."""
    return "ansi" if any(ANSI_CODE.search(t or "") for t in texts) else "text"


def to_gradescope(result: GradeResult) -> str:
    """Gradescope's autograder results.json.

    Every check is listed with the lab's points, so the score is out of the lab's total; a check the lab
    hides is Gradescope's `hidden` (instructors see it, learners do not). An attempt that does not count
    (an invalid submission, a grader or engine fault) gets no score at all: Gradescope records no grade
    for it rather than charging the learner.
    """
    status, message = effective_status(result)
    lab = result.submission.get("lab", "")
    if status not in COUNTED:
        why = f"Lab {lab} was not graded ({status}): this attempt does not count.\n{message}"
        return json.dumps(
            {
                "execution_time": result.timings.get("total_s", 0),
                "output": why,
                "output_format": _text_format(why),
                "tests": [{"name": "Grading", "status": "failed", "output": why, "output_format": _text_format(why)}],
                "extra_data": {"status": status},
            },
            indent=2,
        )
    summary = f"Lab {lab}: {result.score:g}/{result.max_score:g}"
    if status == "timeout":
        summary += " (grading stopped at its time limit; the checks after it were not run)"
    tests = []
    for t in result.tests:
        output = "\n".join(p for p in (t.message, t.evidence, f"Hint: {t.hint}" if t.hint else "") if p)
        tests.append(
            {
                "name": t.name,
                "score": t.score,
                "max_score": t.max_score,
                "status": "passed" if t.status == "passed" else "failed",
                "output": output,
                "output_format": _text_format(output),
                "visibility": "hidden" if t.visibility == "hidden" else "visible",
            }
        )
    out = {
        "score": result.score,
        "execution_time": result.timings.get("total_s", 0),
        "output": result.message or summary,
        "output_format": _text_format(result.message),
        "tests": tests,
        "extra_data": {"status": status, "max_score": result.max_score},
    }
    return json.dumps(out, indent=2)


PRAIRIELEARN_OUTPUT_CHARS = 20_000  # PrairieLearn refuses a results.json over 1 MB: evidence is cut to fit
HIDDEN_MESSAGE = "hidden check: its details are shown by your instructor"


def to_prairielearn(result: GradeResult) -> str:
    """PrairieLearn's external-grading results.json: `score` is a fraction in [0, 1].

    A submission that could not be graded is `gradable: false`, so PrairieLearn charges no attempt for it.
    PrairieLearn shows every test to the student, so a hidden check keeps its points but not its details.
    """
    status, message = effective_status(result)
    if status not in COUNTED:
        errors = [line for line in plain(message or status).splitlines() if line.strip()] or [status]
        return json.dumps({"gradable": False, "format_errors": errors, "message": errors[0]}, indent=2)
    tests = []
    for t in result.tests:
        hidden = t.visibility == "hidden"
        message = (
            HIDDEN_MESSAGE
            if hidden
            else plain("\n".join(p for p in (t.message, f"Hint: {t.hint}" if t.hint else "") if p))
        )
        tests.append(
            {
                "name": t.name,
                "description": t.category,
                "points": t.score,
                "max_points": t.max_score,
                "message": message,
                "output": "" if hidden else _cut(plain(t.evidence), PRAIRIELEARN_OUTPUT_CHARS),
            }
        )
    summary = f"Lab {result.submission['lab']}: {result.score:g}/{result.max_score:g}"
    if status == "timeout":
        summary += " (grading stopped at its time limit; the checks after it were not run)"
    out = {
        "gradable": True,
        "score": round(result.score / result.max_score, 4) if result.max_score else 0.0,
        "message": summary,
        "output": plain(result.message),
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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes Excel, LibreOffice or Sheets run a cell


def _no_formula(value):
    """A text a spreadsheet would run as a formula ("=HYPERLINK(...)", "@SUM(...)") gets a leading apostrophe,
    as OWASP advises: spreadsheets then show it as text. A text that starts with an apostrophe gets one more,
    so that `csv_value` can undo either exactly."""
    if isinstance(value, str) and value.startswith((*FORMULA_START, "'")):
        return "'" + value
    return value


def csv_value(cell: str) -> str:
    """The value behind a cell of grades.csv: the apostrophe `_no_formula` added is taken off again, so
    learner ids round-trip exactly."""
    if cell.startswith("'") and cell[1:].startswith((*FORMULA_START, "'")):
        return cell[1:]
    return cell


WRITERS = {"json": to_json, "junit": to_junit, "gradescope": to_gradescope, "prairielearn": to_prairielearn}
STDOUT = "-"  # as an output path: write to standard output


def write_text(path: Path | str, text: str) -> Path | str:
    """Write `text` as UTF-8 whatever the locale (LC_ALL=C included); `-` writes it to standard output."""
    if str(path) == STDOUT:
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.flush()
        return STDOUT
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def write(result: GradeResult, fmt: str, path: Path | str) -> Path | str:
    return write_text(path, WRITERS[fmt](result))
