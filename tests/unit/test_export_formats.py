"""Every export of a class gradebook validates against its published format.

The class is the awkward but ordinary mix an instructor meets: a pass, a failure whose evidence holds a
service's colour codes, a failed build, an invalid submission, a timeout, a check that hit an engine fault,
a grader fault, formula-like and UTF-8 learner ids, and a roster learner with no submission. JUnit files are
checked against tests/formats/junit.xsd (xmlschema), Gradescope and PrairieLearn results.json against the
JSON Schemas in tests/formats (check-jsonschema, as an instructor's CI would run it), and the CSV is read
back under LC_ALL=C.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from made_results import make_result, spec_with_hidden

from grader import exporters
from grader.batch.outputs import FORMATS, file_name, write_exports
from grader.gradebook import Gradebook

FORMATS_DIR = Path(__file__).resolve().parents[1] / "formats"
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
HIDDEN = "LayerCacheReused"
COLOUR_LOG = "\x1b[31mWARNING\x1b[0m: This is a development server.\x1b[33m * Running on http://0.0.0.0:5000\x1b[0m"

# learner -> (status, failed checks, errored checks, message): one of each kind the gradebook holds.
CLASS = {
    "ada": ("graded", (), (), ""),
    "bob": ("graded", ("NonRootUser", HIDDEN), (), ""),  # colour codes in his evidence (below)
    "cy": ("graded", ("ImageBuilds",), (), ""),
    '=HYPERLINK("http://x";"1")': ("invalid", (), (), "no Dockerfile in the submission\nHint: add one"),
    "+dave": ("timeout", (), (), "grading stopped after 900 s"),
    "zoë-ünïcode": ("graded", (), ("HealthEndpoint",), ""),
    "@eve": ("error", (), (), "the engine stopped answering"),
}
NOT_COUNTED = {'=HYPERLINK("http://x";"1")', "zoë-ünïcode", "@eve"}
ROSTER_ONLY = "'-émile"  # an apostrophe of its own, then a formula character


@pytest.fixture(scope="module")
def spec():
    return spec_with_hidden(HIDDEN)


@pytest.fixture(scope="module")
def exported(spec, tmp_path_factory):
    """The gradebook of the class and every export written from it."""
    folder = tmp_path_factory.mktemp("class")
    url = f"sqlite:///{folder}/gradebook.sqlite"
    book = Gradebook(url)
    book.add_learners([{"id": ROSTER_ONLY, "first_name": "Émile", "last_name": "=1+2", "email": ""}])
    for learner, (status, failed, errored, message) in CLASS.items():
        result = make_result(spec, learner=learner, status=status, failed=failed, errored=errored, message=message)
        for t in result.tests:
            if learner == "bob" and t.status == "failed":
                t.evidence = COLOUR_LOG
        book.record(result, submission=learner, source="folder", grading_key="k", timeout_s=900)
    out = folder / "out"
    write_exports(book, spec.id, out, FORMATS, max_score=sum(c.points for c in spec.checks))
    book.close()
    return {"url": url, "out": out, "total": sum(c.points for c in spec.checks)}


def per_learner(exported, fmt: str) -> dict[str, Path]:
    pattern = {"junit": "junit/{}.xml", "gradescope": "gradescope/{}/results.json"}.get(
        fmt, "prairielearn/{}/results.json"
    )
    return {learner: exported["out"] / pattern.format(file_name(learner)) for learner in CLASS}


# --- JUnit -------------------------------------------------------------------------------------------------


def test_every_junit_file_is_valid_against_the_junit_schema(exported):
    schema = xmlschema.XMLSchema(FORMATS_DIR / "junit.xsd")
    for learner, path in per_learner(exported, "junit").items():
        errors = list(schema.iter_errors(str(path)))
        assert errors == [], f"{learner}: {errors[:1]}"
        assert "\x1b" not in path.read_text(encoding="utf-8")


def test_no_junit_file_of_an_attempt_that_was_not_fully_graded_is_green(exported):
    for learner, path in per_learner(exported, "junit").items():
        suite = ET.parse(path).getroot().find("testsuite")
        red = int(suite.get("failures")) + int(suite.get("errors"))
        status = CLASS[learner][0]
        if learner == "ada":
            assert red == 0
        else:
            assert red > 0, f"{learner} ({status}) shows green"
        properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
        assert properties["learner"] == learner and properties["lab"] == "01"
        assert properties["timestamp"] and properties["score"] != "" and properties["max_score"] != ""


# --- Gradescope and PrairieLearn ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["gradescope", "prairielearn"])
def test_every_results_json_is_valid_against_the_platform_schema(exported, fmt):
    files = [str(p) for p in per_learner(exported, fmt).values()]
    schema = FORMATS_DIR / f"{fmt}-results.schema.json"
    check = subprocess.run(
        [str(CHECK_JSONSCHEMA), "--schemafile", str(schema), *files], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_format_schemas_reject_what_the_platforms_reject(tmp_path):
    """The schemas are not vacuous: a score as text, an unknown visibility, a score above 1 all fail."""
    bad = {
        "gradescope": {"score": "25", "tests": [{"name": "x", "visibility": "after_publish"}]},
        "prairielearn": {"gradable": True, "score": 1.5},
    }
    for fmt, data in bad.items():
        path = tmp_path / f"{fmt}.json"
        path.write_text(json.dumps(data))
        schema = FORMATS_DIR / f"{fmt}-results.schema.json"
        check = subprocess.run([str(CHECK_JSONSCHEMA), "--schemafile", str(schema), str(path)], capture_output=True)
        assert check.returncode == 1, fmt


def test_gradescope_grades_only_counted_attempts_out_of_the_lab_total(exported):
    for learner, path in per_learner(exported, "gradescope").items():
        data = json.loads(path.read_text(encoding="utf-8"))
        if learner in NOT_COUNTED:
            assert "score" not in data and all("score" not in t for t in data["tests"]), learner
            continue
        assert sum(t["max_score"] for t in data["tests"]) == exported["total"]
        hidden = [t for t in data["tests"] if t["name"] == f"{HIDDEN} title"]
        assert [t["visibility"] for t in hidden] == ["hidden"]
    bob = json.loads(per_learner(exported, "gradescope")["bob"].read_text())
    assert {t["output_format"] for t in bob["tests"] if t["status"] == "failed"} == {"ansi"}


def test_prairielearn_charges_no_attempt_that_does_not_count(exported):
    for learner, path in per_learner(exported, "prairielearn").items():
        data = json.loads(path.read_text(encoding="utf-8"))
        assert data["gradable"] is (learner not in NOT_COUNTED), learner
        assert "\x1b" not in json.dumps(data, ensure_ascii=False)


# --- CSV ---------------------------------------------------------------------------------------------------


def test_the_csv_is_utf8_formula_safe_and_round_trips_learner_ids_under_lc_all_c(exported):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    run = subprocess.run(
        [sys.executable, "-m", "grader", "export", "--lab", "01", "--format", "csv"]
        + ["--gradebook", exported["url"], "--out", "-"],
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr.decode("utf-8", "replace")
    text = run.stdout.decode("utf-8")  # raises if the bytes are not UTF-8
    assert text == (exported["out"] / "grades.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(exporters.FORMULA_START), (column, cell)
    assert {exporters.csv_value(r["learner"]) for r in rows} == {*CLASS, ROSTER_ONLY}
    by_id = {exporters.csv_value(r["learner"]): r for r in rows}
    assert by_id["zoë-ünïcode"]["status"] == "error" and by_id["zoë-ünïcode"]["score"] == ""
    assert by_id["+dave"]["status"] == "timeout" and by_id[ROSTER_ONLY]["status"] == "missing"
    assert exporters.csv_value(by_id[ROSTER_ONLY]["last_name"]) == "=1+2"
