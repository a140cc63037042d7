"""Hidden checks: graded for the instructor, left out of what a learner sees, and out of the learner's maximum,
so that "all passed" on the learner's screen is never misleading."""

from __future__ import annotations

import io
import json

from made_results import lab01_spec, make_result, spec_with_hidden
from rich.console import Console

from grader.report import print_report
from grader.result import GradeResult

HIDDEN = ("PredictionsCorrect", "LayerCacheReused")  # 3 + 2 points


def report_text(result) -> str:
    buffer = io.StringIO()
    print_report(result, Console(file=buffer, width=120, color_system=None))
    return buffer.getvalue()


def test_learner_view_leaves_out_hidden_checks_and_their_points():
    spec = spec_with_hidden(*HIDDEN)
    result = make_result(spec, failed=("LayerCacheReused",))
    full = sum(c.points for c in spec.checks)
    assert (result.score, result.max_score) == (full - 2, full)
    view = result.learner_view()
    assert [t.id for t in view.tests] == [c.check for c in spec.checks if c.check not in HIDDEN]
    assert (view.score, view.max_score, view.hidden_checks) == (full - 5, full - 5, 2)
    # Every visible check passed: the learner's exit code says so, the instructor's does not.
    assert view.all_passed and view.exit_code == 0
    assert not result.all_passed and result.exit_code == 1
    assert len(result.tests) == len(spec.checks) and result.hidden_checks == 0  # the full result is untouched


def test_learner_view_of_a_lab_without_hidden_checks_is_the_result_itself():
    result = make_result(lab01_spec(), failed=("NonRootUser",))
    assert result.learner_view() is result


def test_learner_report_says_hidden_checks_exist_without_naming_them():
    result = make_result(spec_with_hidden(*HIDDEN), failed=("LayerCacheReused",))
    text = report_text(result.learner_view())
    assert "LayerCacheReused" not in text and "PredictionsCorrect" not in text
    assert "(the checks shown)" in text
    assert "2 more checks are hidden" in text
    full = report_text(result)
    assert "LayerCacheReused title (hidden from learners)" in full and "more checks are hidden" not in full


def test_a_failed_hidden_check_still_counts_in_the_full_score():
    spec = spec_with_hidden("NonRootUser")
    result = make_result(spec, failed=("NonRootUser",))
    view = result.learner_view()
    assert view.score == view.max_score
    assert "1 more check is hidden" in report_text(view)
    assert result.score == result.max_score - 2


def test_a_stored_result_round_trips():
    result = make_result(spec_with_hidden(*HIDDEN), failed=("NonRootUser",))
    again = GradeResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert GradeResult.from_dict({**result.to_dict(), "a_later_field": 1}) == result
