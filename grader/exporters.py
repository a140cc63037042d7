"""Exports of one result object: JSON (the object itself), JUnit XML, Gradescope results.json."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
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


WRITERS = {"json": to_json, "junit": to_junit, "gradescope": to_gradescope}


def write(result: GradeResult, fmt: str, path: Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(WRITERS[fmt](result))
