"""Exports of one hand-built result object: JSON, JUnit XML and Gradescope results.json."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grader import exporters
from grader.result import SCHEMA_VERSION, GradeResult
from grader.result import TestResult as CheckResult  # not "Test*", so pytest does not try to collect it
from grader.spec import REPO_ROOT, load_spec

LAB01_SPEC = REPO_ROOT / "solutions" / "01-first-model-container" / "lab.yaml"
TEST_FIELDS = {"name", "status", "score", "max_score", "message", "hint"}


@pytest.fixture(scope="module")
def spec():
    return load_spec(LAB01_SPEC)


def make_tests() -> list[CheckResult]:
    return [
        CheckResult(
            "ImageBuilds", "Image builds", "build", "passed", 3, 3, "visible", "built in 12.3s", duration_ms=12300
        ),
        CheckResult(
            "NonRootUser",
            "Runs as a non-root user",
            "security",
            "failed",
            0,
            2,
            "visible",
            "processes run as root (uid 0); USER is (no USER line)",
            hint="Create a user with a fixed UID and switch to it before CMD",
            evidence="id -u printed 0",
            duration_ms=800,
        ),
        CheckResult(
            "HealthcheckHealthy",
            "HEALTHCHECK reports healthy",
            "runtime",
            "skipped",
            0,
            2,
            "hidden",
            "skipped: the image declares no HEALTHCHECK (see that check)",
        ),
        CheckResult(
            "HealthEndpoint",
            "/health answers 200 with JSON",
            "http",
            "error",
            0,
            1,
            "visible",
            "the engine failed during this check: 500 Server Error",
            hint="run it again",
            evidence="Traceback (most recent call last): ...",
        ),
    ]


def counted_tests() -> list[CheckResult]:
    """make_tests() without the check that hit an engine fault: an attempt the gradebook counts."""
    tests = make_tests()
    tests[3].status, tests[3].message = "failed", "/health answered 500"
    return tests


def make_result(spec, tests, status="graded", message="") -> GradeResult:
    result = GradeResult.start(spec, Path("/submissions/ada"), "ada", "0.1.0")
    result.timings["build_s"] = 12.3
    result.tests.extend(tests)
    return result.finish(status, message, time.monotonic() - 20)


def all_passed(spec) -> list[CheckResult]:
    return [CheckResult(c.check, c.check, "x", "passed", c.points, c.points, c.visibility, "ok") for c in spec.checks]


# --- the result object --------------------------------------------------------------------------------


def test_start_and_finish_fill_in_the_summary(spec):
    tests = make_tests()
    result = make_result(spec, tests)
    # The total is what the checks graded could give (a check this machine cannot run gives none).
    assert result.max_score == sum(t.max_score for t in tests)
    assert result.score == 3
    assert result.status == "graded"
    assert result.submission["lab"] == "01"
    assert result.submission["learner"] == "ada"
    assert result.submission["id"] == "ada"
    assert result.limits["memory_mb"] == spec.limits.memory_mb
    assert result.timings["total_s"] >= 20
    assert result.timings["build_s"] == 12.3
    assert result.timings["tests_s"] == pytest.approx(result.timings["total_s"] - 12.3, abs=0.02)


def test_learner_defaults_to_the_folder_name(spec):
    result = GradeResult.start(spec, Path("/submissions/grace"), "", "0.1.0")
    assert result.submission["learner"] == "grace"


# --- JSON -------------------------------------------------------------------------------------------------


def test_json_round_trips(spec):
    result = make_result(spec, make_tests())
    data = json.loads(exporters.to_json(result))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["status"] == "graded"
    assert data["score"] == 3
    assert data["max_score"] == result.max_score
    assert set(data["timings"]) >= {"build_s", "tests_s", "total_s"}
    assert len(data["tests"]) == 4
    for t in data["tests"]:
        assert TEST_FIELDS <= set(t)
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "skipped", "error"]
    assert data["tests"][1]["hint"].startswith("Create a user")
    assert data["tests"][2]["visibility"] == "hidden"
    assert data == result.to_dict()


# --- JUnit ------------------------------------------------------------------------------------------------


def test_junit_counts_and_bodies(spec):
    root = ET.fromstring(exporters.to_junit(make_result(spec, make_tests())))
    assert root.tag == "testsuites" and root.get("tests") == "4"
    suite = root.find("testsuite")
    assert suite.get("name") == "lab-01"
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert properties["learner"] == "ada" and properties["lab"] == "01" and properties["status"] == "error"
    assert properties["score"] == "3" and properties["timestamp"] == suite.get("timestamp") != ""
    cases = suite.findall("testcase")
    assert len(cases) == 4
    counts = {key: suite.get(key) for key in ("tests", "failures", "errors", "skipped")}
    assert counts == {"tests": "4", "failures": "1", "errors": "1", "skipped": "1"}
    assert len(suite.findall("testcase/failure")) == 1
    assert len(suite.findall("testcase/error")) == 1
    assert len(suite.findall("testcase/skipped")) == 1

    by_name = {c.get("name"): c for c in cases}
    assert by_name["Image builds"].find("*") is None  # a passed test has no child
    assert by_name["Image builds"].get("time") == "12.3"
    failure = by_name["Runs as a non-root user"].find("failure")
    assert failure.get("message").startswith("processes run as root")
    assert "id -u printed 0" in failure.text
    assert "Hint: Create a user with a fixed UID" in failure.text
    error = by_name["/health answers 200 with JSON"].find("error")
    assert "Hint: run it again" in error.text
    assert by_name["HEALTHCHECK reports healthy"].find("skipped").get("message").startswith("skipped:")


@pytest.mark.parametrize(
    ("status", "element", "says"),
    [("invalid", "failure", "could not be graded"), ("error", "error", "grader or engine fault")],
)
def test_junit_for_an_ungradable_submission_has_a_red_testcase(spec, status, element, says):
    message = "no Dockerfile in /submissions/ada\nHint: lab 01 expects a Dockerfile"
    suite = ET.fromstring(exporters.to_junit(make_result(spec, [], status=status, message=message))).find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 1
    assert cases[0].get("name") == "grading"
    assert cases[0].find(element).get("message").endswith(f"{says}: no Dockerfile in /submissions/ada")
    assert suite.get(element + "s") == "1"
    assert suite.get("tests") == "1"  # passed = tests - failures - errors - skipped stays >= 0


def test_junit_for_a_timeout_is_never_green(spec):
    suite = ET.fromstring(exporters.to_junit(make_result(spec, all_passed(spec), status="timeout")))
    assert int(suite.get("failures")) == 1
    assert suite.find("testsuite/testcase[@name='grading']/failure") is not None


def test_junit_escapes_what_xml_forbids(spec):
    tests = make_tests()
    tests[1].evidence = "\x1b[31m * Running on http://127.0.0.1:5000\x1b[0m\x00 bell\x07 \ufffe end"
    text = exporters.to_junit(make_result(spec, tests))
    body = ET.fromstring(text).find(".//testcase[@name='Runs as a non-root user']/failure").text
    assert "\x1b" not in text and "[31m" not in body  # colour codes are removed
    assert "#x00 bell#x07 #xFFFE end" in body  # any other forbidden character is written out


# --- Gradescope --------------------------------------------------------------------------------------------


def test_gradescope_scores_and_visibility(spec):
    result = make_result(spec, counted_tests())
    data = json.loads(exporters.to_gradescope(result))
    assert data["score"] == 3
    assert data["execution_time"] == result.timings["total_s"]
    assert data["output"] == f"Lab 01: 3/{result.max_score:g}"
    tests = data["tests"]
    assert [t["visibility"] for t in tests] == ["visible", "visible", "hidden", "visible"]
    assert sum(t["max_score"] for t in tests) == result.max_score  # the hidden check's points stay in the total
    assert [t["status"] for t in tests] == ["passed", "failed", "failed", "failed"]
    assert [(t["score"], t["max_score"]) for t in tests] == [(3, 3), (0, 2), (0, 2), (0, 1)]
    assert "Hint: Create a user" in tests[1]["output"]
    assert tests[1]["output"].startswith("processes run as root")


@pytest.mark.parametrize("status", ["invalid", "error"])
def test_gradescope_gives_no_grade_for_an_attempt_that_does_not_count(spec, status):
    data = json.loads(exporters.to_gradescope(make_result(spec, [], status=status, message="engine gone")))
    assert data["output"].endswith("does not count.\nengine gone")
    assert "score" not in data and all("score" not in t for t in data["tests"])
    assert data["extra_data"] == {"status": status}


def test_gradescope_gives_no_grade_when_a_check_hit_an_engine_fault(spec):
    data = json.loads(exporters.to_gradescope(make_result(spec, make_tests())))
    assert "score" not in data and "check HealthEndpoint hit a grader or engine error" in data["output"]


def test_gradescope_marks_colour_codes_as_ansi(spec):
    tests = counted_tests()
    tests[1].evidence = "\x1b[33mWARNING\x1b[0m: dev server"
    formats = [t["output_format"] for t in json.loads(exporters.to_gradescope(make_result(spec, tests)))["tests"]]
    assert formats == ["text", "ansi", "text", "text"]


# --- exit codes --------------------------------------------------------------------------------------------


def test_exit_code_all_passed(spec):
    result = make_result(spec, all_passed(spec))
    assert result.score == result.max_score
    assert result.all_passed
    assert result.exit_code == 0


def test_exit_code_some_failed(spec):
    tests = all_passed(spec)
    tests[0].status, tests[0].score = "failed", 0
    result = make_result(spec, tests)
    assert not result.all_passed
    assert result.exit_code == 1


def test_exit_code_skipped_is_not_passed(spec):
    tests = all_passed(spec)
    tests[-1].status, tests[-1].score = "skipped", 0
    assert make_result(spec, tests).exit_code == 1


@pytest.mark.parametrize(("status", "code"), [("invalid", 2), ("error", 3)])
def test_exit_code_ungradable(spec, status, code):
    result = make_result(spec, [], status=status, message="cannot grade")
    assert result.exit_code == code
    assert not result.all_passed


def test_exit_code_of_a_check_that_hit_a_fault_is_3(spec):
    assert make_result(spec, make_tests()).exit_code == 3


def test_exit_code_timeout_is_a_failed_attempt(spec):
    assert make_result(spec, all_passed(spec), status="timeout").exit_code == 1


# --- writing ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(exporters.WRITERS))
def test_write_creates_parent_folders(spec, tmp_path, fmt):
    result = make_result(spec, make_tests())
    path = tmp_path / "out" / "deeper" / f"result.{fmt}"
    exporters.write(result, fmt, path)
    assert path.read_text() == exporters.WRITERS[fmt](result)


# --- PrairieLearn ------------------------------------------------------------------------------------------


def test_prairielearn_score_is_a_fraction_and_hidden_details_are_withheld(spec):
    result = make_result(spec, counted_tests())
    data = json.loads(exporters.to_prairielearn(result))
    assert data["gradable"] is True
    assert data["score"] == round(3 / result.max_score, 4)
    assert data["message"] == f"Lab 01: 3/{result.max_score:g}"
    tests = data["tests"]
    assert [(t["name"], t["points"], t["max_points"]) for t in tests] == [
        ("Image builds", 3, 3),
        ("Runs as a non-root user", 0, 2),
        ("HEALTHCHECK reports healthy", 0, 2),
        ("/health answers 200 with JSON", 0, 1),
    ]
    assert set(tests[0]) == {"name", "description", "points", "max_points", "message", "output"}
    assert tests[1]["message"].startswith("processes run as root") and "Hint: Create a user" in tests[1]["message"]
    assert tests[1]["output"] == "id -u printed 0"
    hidden = tests[2]  # its points count, its details are not shown (PrairieLearn shows every test)
    assert hidden["message"] == exporters.HIDDEN_MESSAGE and hidden["output"] == ""


@pytest.mark.parametrize("status", ["invalid", "error"])
def test_prairielearn_ungradable_costs_no_attempt(spec, status):
    message = "no Dockerfile in ada.zip\nHint: lab 01 expects a Dockerfile"
    data = json.loads(exporters.to_prairielearn(make_result(spec, [], status=status, message=message)))
    assert data == {
        "gradable": False,
        "format_errors": ["no Dockerfile in ada.zip", "Hint: lab 01 expects a Dockerfile"],
        "message": "no Dockerfile in ada.zip",
    }


def test_prairielearn_charges_nothing_when_a_check_hit_an_engine_fault(spec):
    data = json.loads(exporters.to_prairielearn(make_result(spec, make_tests())))
    assert data["gradable"] is False and "grader or engine error" in data["message"]


def test_prairielearn_timeout_is_gradable_and_says_so(spec):
    data = json.loads(exporters.to_prairielearn(make_result(spec, counted_tests(), status="timeout")))
    assert data["gradable"] is True
    assert "time limit" in data["message"]


def test_prairielearn_output_is_cut_to_stay_under_its_size_limit(spec):
    tests = make_tests()
    tests[1].evidence = "x" * 500_000
    data = exporters.to_prairielearn(make_result(spec, tests))
    assert len(data) < 100_000


# --- CSV ---------------------------------------------------------------------------------------------------


def test_csv_rows(spec):
    import csv
    import io

    graded = make_result(spec, make_tests())
    invalid = make_result(spec, [], status="invalid", message="no Dockerfile in bob.zip\nHint: ...")
    rows = [
        exporters.csv_row(
            graded,
            lab="01",
            learner="ada",
            attempts=2,
            status="graded",
            last_submitted="2026-01-05T10:00:00+00:00",
            person={"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"},
        ),
        exporters.csv_row(invalid, lab="01", learner="bob", attempts=0, status="invalid"),
        exporters.csv_row(None, lab="01", learner="=HYPERLINK(1)", attempts=0, status="missing"),
    ]
    parsed = list(csv.DictReader(io.StringIO(exporters.to_csv(rows))))
    assert list(parsed[0]) == list(exporters.CSV_COLUMNS)
    assert parsed[0] == {
        "lab": "01",
        "learner": "ada",
        "last_name": "Lovelace",
        "first_name": "Ada",
        "email": "ada@example.org",
        "last_submitted": "2026-01-05T10:00:00+00:00",
        "attempts": "2",
        "status": "graded",
        "score": "3",
        "max_score": f"{graded.max_score:g}",
        "message": "",
    }
    assert (parsed[1]["status"], parsed[1]["score"], parsed[1]["message"]) == (
        "invalid",
        "",
        "no Dockerfile in bob.zip",
    )
    assert parsed[2]["learner"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it
    assert exporters.csv_value(parsed[2]["learner"]) == "=HYPERLINK(1)"  # and the id comes back exactly
    assert (parsed[2]["status"], parsed[2]["score"], parsed[2]["max_score"]) == ("missing", "", "")


@pytest.mark.parametrize("value", ["=x", "'=x", "'", "''", "abc", "-1", "'abc", "@SUM(A1)", "\tq", "+", "", "ü=1"])
def test_a_csv_cell_is_never_a_formula_and_gives_its_value_back_exactly(value):
    cell = exporters._no_formula(value)
    assert not cell.startswith(exporters.FORMULA_START)
    assert exporters.csv_value(cell) == value
