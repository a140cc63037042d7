"""Reading and validating lab specs, and choosing the spec that grades a submission."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

from grader.errors import SpecError
from grader.spec import REPO_ROOT, SCHEMA_PATH, load_spec, official_specs, resolve_spec, schema_comment

LAB01 = REPO_ROOT / "solutions" / "01-first-model-container"
LAB01_SPEC = LAB01 / "lab.yaml"

MINIMAL = {"id": "77", "slug": "tiny", "title": "A tiny lab", "checks": [{"check": "ImageBuilds"}]}


def write_spec(folder: Path, data) -> Path:
    path = folder / "lab.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def lab01_raw() -> dict:
    return yaml.safe_load(LAB01_SPEC.read_text())


# --- load_spec ---------------------------------------------------------------------------------------


def test_lab01_spec_fields_are_parsed():
    spec = load_spec(LAB01_SPEC)
    assert spec.id == "01"
    assert spec.slug == "first-model-container"
    assert spec.name == "01-first-model-container"
    assert spec.path == LAB01
    assert spec.port == 5000
    assert spec.ready_path == "/health"
    assert spec.dockerfile == "Dockerfile"
    assert spec.build_timeout_s == 600
    assert spec.budgets.image_size_mb == 700
    assert spec.budgets.ready_s == 30
    assert spec.budgets.healthy_s == 45
    assert spec.budgets.rebuild_s is None  # lab 01 asks only whether the install layer is reused, not how fast
    assert spec.limits.memory_mb == 512
    assert spec.forbidden_paths == ("data", "notebooks", ".venv", ".git")
    assert spec.code_change == "app/app.py"
    assert spec.install_step == "pip install"
    assert spec.base_images == ("python:3.11-slim",)
    assert len(spec.http["predict"]["cases"]) == 3


def test_lab01_checks_keep_order_points_and_params():
    spec = load_spec(LAB01_SPEC)
    raw = lab01_raw()["checks"]
    assert [c.check for c in spec.checks] == [c["check"] for c in raw]
    assert [c.points for c in spec.checks] == [c.get("points", 1) for c in raw]
    lint = spec.checks[0]
    assert lint.check == "DockerfileLint"
    assert lint.params == {"failure_threshold": "warning"}
    assert all(c.visibility in ("visible", "hidden") for c in spec.checks)


def test_minimal_spec_takes_defaults(tmp_path):
    spec = load_spec(write_spec(tmp_path, MINIMAL))
    assert spec.port == 5000
    assert spec.budgets.image_size_mb == 1000
    assert spec.checks[0].points == 1
    assert spec.checks[0].visibility == "visible"
    assert spec.forbidden_paths == ()


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"colour": "blue"}, "colour"),
        ({"budgets": {"image_size_mb": 500, "image_sise_mb": 400}}, "image_sise_mb"),
        ({"limits": {"cpus": 1, "memory": 256}}, "memory"),
        ({"build": {"dockerfile": "Dockerfile", "context": "."}}, "build.context"),
        ({"service": {"port": 8000, "ready": "/health"}}, "service.ready"),
    ],
)
def test_unknown_key_is_an_error_naming_it(tmp_path, change, key):
    path = write_spec(tmp_path, {**MINIMAL, **change})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert key in str(err.value)


def test_unknown_key_in_a_check_names_the_key_and_the_check_index(tmp_path):
    checks = [{"check": "ImageBuilds"}, {"check": "PortExposed", "pionts": 2}]
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, {**MINIMAL, "checks": checks}))
    assert "pionts" in str(err.value)
    assert "checks[1]" in str(err.value)


def test_a_check_that_is_not_a_mapping_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="checks\\[0\\]: 'ImageBuilds' is not of type 'object'"):
        load_spec(write_spec(tmp_path, {**MINIMAL, "checks": ["ImageBuilds"]}))


@pytest.mark.parametrize("checks", [None, [], "ImageBuilds"])
def test_checks_must_be_a_non_empty_list(tmp_path, checks):
    data = {**MINIMAL, "checks": checks}
    with pytest.raises(SpecError, match=r"lab\.yaml: checks: .*(non-empty|not of type 'array')"):
        load_spec(write_spec(tmp_path, data))


def test_missing_checks_is_an_error(tmp_path):
    data = {k: v for k, v in MINIMAL.items() if k != "checks"}
    with pytest.raises(SpecError, match="checks: required key 'checks' is missing"):
        load_spec(write_spec(tmp_path, data))


@pytest.mark.parametrize("text", ["- id: 01\n- checks: []\n", "just a sentence\n", ""])
def test_non_mapping_yaml_is_an_error(tmp_path, text):
    with pytest.raises(SpecError, match="mapping at the top level"):
        load_spec(write_spec(tmp_path, text))


def test_invalid_yaml_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(write_spec(tmp_path, "id: [01\nchecks: {\n"))


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(SpecError, match="no spec file"):
        load_spec(tmp_path / "lab.yaml")


def test_missing_id_is_an_error(tmp_path):
    data = {k: v for k, v in MINIMAL.items() if k != "id"}
    with pytest.raises(SpecError, match="'id'"):
        load_spec(write_spec(tmp_path, data))


def test_bad_visibility_names_the_check_and_the_key(tmp_path):
    checks = [{"check": "ImageBuilds"}, {"check": "PortExposed", "visibility": "secret"}]
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, {**MINIMAL, "checks": checks}))
    assert "PortExposed" in str(err.value)
    assert "visibility" in str(err.value)


def test_hidden_visibility_is_accepted(tmp_path):
    checks = [{"check": "ImageBuilds", "visibility": "hidden", "points": 3}]
    spec = load_spec(write_spec(tmp_path, {**MINIMAL, "checks": checks}))
    assert spec.checks[0].visibility == "hidden"
    assert spec.checks[0].points == 3


def test_learning_targets_are_parsed_and_must_be_selected_checks(tmp_path):
    spec = load_spec(LAB01_SPEC)
    assert "NonRootUser" in spec.learning_targets
    assert set(spec.learning_targets) <= {c.check for c in spec.checks}
    with pytest.raises(SpecError, match="PortExposed"):
        load_spec(write_spec(tmp_path, {**MINIMAL, "learning_targets": ["PortExposed"]}))


# --- resolve_spec ------------------------------------------------------------------------------------


def test_official_specs_include_lab01():
    specs = official_specs()
    assert "01" in specs
    assert specs["01"].path == LAB01


def test_submission_with_its_own_edited_spec_gets_the_official_one(tmp_path):
    edited = lab01_raw()
    edited["budgets"]["image_size_mb"] = 99999
    edited["budgets"]["ready_s"] = 9999
    edited["checks"] = [{**c, "points": 100} for c in edited["checks"]]
    write_spec(tmp_path, edited)
    assert load_spec(tmp_path / "lab.yaml").budgets.image_size_mb == 99999  # the copy really was relaxed

    spec = resolve_spec(tmp_path)
    assert spec.path == LAB01
    assert spec.budgets.image_size_mb == 700
    assert spec.budgets.ready_s == 30
    assert {c.points for c in spec.checks} != {100}
    assert spec == load_spec(LAB01_SPEC)


def test_bare_folder_with_lab_id(tmp_path):
    shutil.copy(LAB01 / "Dockerfile", tmp_path / "Dockerfile")
    spec = resolve_spec(tmp_path, "01")
    assert spec.id == "01"
    assert spec.path == LAB01


def test_lab_id_may_be_the_full_lab_name(tmp_path):
    assert resolve_spec(tmp_path, "01-first-model-container").id == "01"


def test_bare_folder_without_lab_id_hints_at_the_lab_option(tmp_path):
    with pytest.raises(SpecError) as err:
        resolve_spec(tmp_path)
    assert "--lab" in err.value.hint
    assert "01" in err.value.hint  # the known labs are listed
    assert "lab.yaml" in err.value.message


def test_unknown_lab_id_lists_the_known_labs(tmp_path):
    with pytest.raises(SpecError) as err:
        resolve_spec(tmp_path, "99")
    assert "'99'" in err.value.message
    assert "01" in err.value.hint


def test_a_lab_this_repository_does_not_ship_is_graded_by_its_own_spec(tmp_path):
    write_spec(tmp_path, MINIMAL)
    spec = resolve_spec(tmp_path)
    assert spec.id == "77"
    assert spec.path == tmp_path


def test_an_official_lab_cannot_be_swapped_for_the_learners_spec(tmp_path):
    """--lab naming another (unknown) lab, or an id spelt differently, still gets the official spec."""
    edited = lab01_raw()
    edited["budgets"]["image_size_mb"] = 99999
    write_spec(tmp_path, edited)
    with pytest.raises(SpecError) as err:
        resolve_spec(tmp_path, "99")
    assert "lab 01" in err.value.message
    edited["id"] = "1"
    write_spec(tmp_path, edited)
    assert resolve_spec(tmp_path).budgets.image_size_mb == 700


def test_only_the_id_of_the_learners_copy_is_read(tmp_path):
    """An out-of-date key in a starter's lab.yaml does not stop grading against the official spec."""
    stale = lab01_raw()
    stale["a_key_removed_since"] = True
    write_spec(tmp_path, stale)
    assert resolve_spec(tmp_path).path == LAB01


# --- the published schema (grader/schemas/lab.schema.json) -------------------------------------------

SHIPPED_SPECS = sorted(REPO_ROOT.glob("solutions/*/lab.yaml")) + sorted(REPO_ROOT.glob("labs/*/lab.yaml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")  # installed next to this Python


def check_jsonschema(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK_JSONSCHEMA), *args], capture_output=True, text=True, timeout=120)


def test_every_lab_is_shipped_with_a_spec():
    assert len(SHIPPED_SPECS) == 16  # 8 solutions and their 8 starters


def test_the_schema_is_a_valid_draft_2020_12_schema():
    Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))
    run = check_jsonschema("--check-metaschema", str(SCHEMA_PATH))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_shipped_lab_yaml_validates_against_the_schema():
    run = check_jsonschema("--schemafile", str(SCHEMA_PATH), *map(str, SHIPPED_SPECS))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_property_of_the_schema_is_described():
    """Editors show the descriptions while an instructor types a key."""

    def walk(node, where):
        if isinstance(node, dict):
            for key, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}.{key}"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(json.loads(SCHEMA_PATH.read_text()), "schema")


@pytest.mark.parametrize("spec_file", SHIPPED_SPECS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_lab_yaml_points_editors_at_the_schema(spec_file):
    first = spec_file.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../../grader/schemas/lab.schema.json"
    assert first == schema_comment(spec_file)
    assert (spec_file.parent / first.partition("$schema=")[2]).resolve() == SCHEMA_PATH


@pytest.mark.parametrize(
    ("change", "key_path", "expected"),
    [
        ({"checks": [{"check": "ImageBuilds", "points": "two"}]}, "checks[0].points", "'number'"),
        ({"limits": {"memory_mb": "lots"}}, "limits.memory_mb", "'integer'"),
        ({"limits": [1, 2]}, "limits", "'object'"),
        ({"service": {"port": 80.5}}, "service.port", "'integer'"),
        ({"build": {"secrets": {"token": 123}}}, "build.secrets.token", "'string'"),
        ({"compose": {"allow_gpu": "sometimes"}}, "compose.allow_gpu", "'boolean'"),
        ({"http": {"predict": {"path": "/predict", "cases": "all"}}}, "http.predict.cases", "'array'"),
    ],
)
def test_a_value_of_the_wrong_type_names_the_file_the_key_and_the_type(tmp_path, change, key_path, expected):
    path = write_spec(tmp_path, {**MINIMAL, **change})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}: {key_path}" in err.value.message
    assert f"is not of type {expected}" in err.value.message
    assert "lab.schema.json" in err.value.hint
    assert "yaml-language-server" in err.value.hint


def test_a_wrong_type_inside_a_check_names_the_check_too(tmp_path):
    checks = [{"check": "ImageBuilds"}, {"check": "NonRootUser", "points": "two"}]
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, {**MINIMAL, "checks": checks}))
    assert "checks[1].points (check NonRootUser): 'two' is not of type 'number'" in err.value.message


def test_an_unknown_key_names_its_path_and_the_known_keys(tmp_path):
    path = write_spec(tmp_path, {**MINIMAL, "limits": {"cpus": 1, "memory": 256}})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}: limits.memory: unknown key; known keys: cpus, memory_mb, network, pids" in err.value.message


def test_missing_checks_names_the_file_the_key_and_the_type(tmp_path):
    path = write_spec(tmp_path, {k: v for k, v in MINIMAL.items() if k != "checks"})
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}: checks: required key 'checks' is missing (expected type 'array')" in err.value.message


def test_an_unquoted_id_is_an_error_saying_to_quote_it(tmp_path):
    path = write_spec(tmp_path, "id: 01\nchecks: [{check: ImageBuilds}]\n")
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert f"{path}: id: 1 is not of type 'string'" in err.value.message
    assert "quotes" in err.value.message


def test_every_problem_is_reported_at_once_one_line_each_in_key_order(tmp_path):
    data = {**MINIMAL, "limits": {"memory_mb": "lots"}, "checks": [{"check": "ImageBuilds", "points": "two"}]}
    path = write_spec(tmp_path, data)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert err.value.message.splitlines() == [
        f"{path}: checks[0].points (check ImageBuilds): 'two' is not of type 'number'",
        f"{path}: limits.memory_mb: 'lots' is not of type 'integer'",
    ]


def test_a_request_of_the_http_contract_needs_a_body_or_raw_text(tmp_path):
    http = {"predict": {"path": "/predict", "malformed": [{"name": "no body"}, {"name": "text", "raw": "x=1"}]}}
    with pytest.raises(SpecError) as err:
        load_spec(write_spec(tmp_path, {**MINIMAL, "http": http}))
    assert err.value.message.count("\n") == 0
    assert "http.predict.malformed[0].body: required key 'body' is missing" in err.value.message


def test_a_learners_lab_yaml_that_is_not_yaml_is_a_spec_error(tmp_path):
    write_spec(tmp_path, "id: '01\nchecks: [\n")
    with pytest.raises(SpecError) as err:
        resolve_spec(tmp_path)
    assert str(tmp_path / "lab.yaml") in err.value.message
    assert "not valid YAML" in err.value.message


def test_a_learners_lab_yaml_that_is_not_utf8_is_a_spec_error(tmp_path):
    (tmp_path / "lab.yaml").write_bytes(b"id: '\xff01'\n")
    with pytest.raises(SpecError, match="not UTF-8"):
        resolve_spec(tmp_path)


def test_a_learners_lab_yaml_that_cannot_be_read_is_a_spec_error(tmp_path, monkeypatch):
    own = write_spec(tmp_path, MINIMAL)
    read_text = Path.read_text

    def refuse(self, *args, **kwargs):
        if self == own:
            raise PermissionError(13, "Permission denied", str(self))
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refuse)  # a chmod would not stop root, who runs CI's container
    with pytest.raises(SpecError, match=f"cannot read {own}: Permission denied"):
        resolve_spec(tmp_path)
