"""The GitHub Actions template for learners' repositories: filled in, and valid against the workflow schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from grader.ci_template import render
from grader.errors import GraderError

# check-jsonschema ships the schema of GitHub workflows (SchemaStore's), so this works offline.
CHECK_JSONSCHEMA = str(Path(sys.executable).parent / "check-jsonschema")


def test_the_template_is_filled_in_and_grades_the_named_lab():
    text = render("06", "acme/ml-containers", "v1.2")
    assert "__LAB__" not in text and "__COURSE" not in text
    workflow = yaml.safe_load(text)
    assert workflow["env"] == {"LAB": "06", "COURSE_REPO": "acme/ml-containers", "COURSE_REF": "v1.2"}
    steps = {s["name"]: s for s in workflow["jobs"]["grade"]["steps"]}
    assert "--junit ../reports/junit.xml" in steps["Grade"]["run"]
    assert steps["Publish the report"]["if"] == "always()"


def test_the_workflow_schema_accepts_it_and_rejects_a_broken_one(tmp_path):
    good, bad = tmp_path / "grade.yml", tmp_path / "broken.yml"
    good.write_text(render("01", "acme/ml-containers"))
    bad.write_text(render("01", "acme/ml-containers").replace("runs-on:", "run-on:"))
    check = [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.github-workflows"]
    proc = subprocess.run([*check, str(good)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = subprocess.run([*check, str(bad)], capture_output=True, text=True)
    assert proc.returncode == 1 and "run-on" in proc.stdout + proc.stderr


@pytest.mark.parametrize("repo, ref", [("not a repo", "main"), ("acme/x", "main; rm -rf /"), ("acme/x", "$(id)")])
def test_bad_names_are_refused(repo, ref):
    with pytest.raises(GraderError):
        render("01", repo, ref)
