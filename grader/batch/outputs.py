"""Files made from the gradebook for a lab: the grades CSV, per-learner exports, and per-learner feedback.

Layout under the output folder (reports/<lab>/ by default):
    grades.csv                          one row per learner (the roster's learners without a submission too)
    gradescope/<learner>/results.json   Gradescope's format, every check with its visibility
    prairielearn/<learner>/results.json PrairieLearn's format (score as a fraction)
    junit/<learner>.xml                 JUnit XML, every check
    feedback/<learner>.txt, .json       the learner's view: hidden checks left out
Each learner's files come from the attempt that counts (the latest graded one), or else from their latest
attempt, so that a learner whose submission could not be graded is told why.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich.console import Console

from grader import exporters
from grader.gradebook import Gradebook, LearnerSummary
from grader.report import print_report
from grader.result import GradeResult

FORMATS = ("csv", "gradescope", "prairielearn", "junit")
PER_LEARNER = {
    "gradescope": ("gradescope/{learner}/results.json", exporters.to_gradescope),
    "prairielearn": ("prairielearn/{learner}/results.json", exporters.to_prairielearn),
    "junit": ("junit/{learner}.xml", exporters.to_junit),
}


def file_name(learner: str) -> str:
    """A learner id made safe as a file name (ids come from file names and rosters: trust neither)."""
    return re.sub(r"[^\w.@-]", "_", learner).lstrip(".") or "_"


def shown_results(gradebook: Gradebook, lab: str) -> list[tuple[LearnerSummary, GradeResult | None]]:
    """Each learner's summary with the result their files show (None for a learner with no attempt)."""
    out = []
    for summary in gradebook.summaries(lab):
        attempt = summary.counting or summary.latest
        out.append((summary, gradebook.result(attempt.id) if attempt else None))
    return out


def csv_rows(gradebook: Gradebook, lab: str, max_score: float | None = None) -> list[dict]:
    """The grades.csv rows of `lab`: one per learner, the roster's learners without a submission too."""
    people = gradebook.learners()
    rows = []
    for summary, result in shown_results(gradebook, lab):
        latest = summary.latest
        row = exporters.csv_row(
            result,
            lab=lab,
            learner=summary.learner,
            attempts=summary.attempts,
            status=summary.status,
            last_submitted=latest.submitted_at.isoformat(timespec="seconds") if latest else "",
            person=people.get(summary.learner),
            message=(summary.counting or latest).message if latest else "",
        )
        if result is None and max_score is not None:
            row["max_score"] = f"{max_score:g}"
        rows.append(row)
    return rows


def write_exports(
    gradebook: Gradebook, lab: str, out: Path, formats=FORMATS, max_score: float | None = None
) -> list[Path]:
    """Write the chosen export formats for every learner of `lab`; returns the files written."""
    written = []
    if "csv" in formats:
        written.append(exporters.write_text(out / "grades.csv", exporters.to_csv(csv_rows(gradebook, lab, max_score))))
    shown = shown_results(gradebook, lab)
    for fmt in formats:
        if fmt not in PER_LEARNER:
            continue
        pattern, render = PER_LEARNER[fmt]
        for summary, result in shown:
            if result is not None:
                path = out / pattern.format(learner=file_name(summary.learner))
                written.append(exporters.write_text(path, render(result)))
    return written


def feedback_text(result: GradeResult, width: int = 100) -> str:
    """The terminal report of the learner's view, as plain text."""
    buffer = io.StringIO()
    print_report(result.learner_view(), Console(file=buffer, width=width, color_system=None, highlight=False))
    return buffer.getvalue()


def write_feedback(gradebook: Gradebook, lab: str, out: Path) -> list[Path]:
    """Per-learner feedback: what the learner may see of the result that counts (hidden checks left out)."""
    written = []
    for summary, result in shown_results(gradebook, lab):
        if result is None:
            continue
        base = out / "feedback" / file_name(summary.learner)
        view = result.learner_view()
        written.append(exporters.write_text(base.with_suffix(".txt"), feedback_text(result)))
        view_json = json.dumps(view.to_dict(), indent=2, default=str)
        written.append(exporters.write_text(base.with_suffix(".json"), view_json))
    return written
