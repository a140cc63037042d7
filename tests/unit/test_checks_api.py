"""The pure parts of the web-API lab's checks (grader/checks/on_image_files.py, on_image.py, on_api.py,
on_service.py): the build-tool probe and its output, the size verdict, the OpenAPI document's problems,
FastAPI's validation-error shape, and dev flags in process command lines (grader/processes.py)."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader.checks.base import registry
from grader.checks.on_api import openapi_problems, validation_error_problem
from grader.checks.on_image import size_ratio_outcome
from grader.checks.on_image_files import PROBE_DONE, PROBE_PY, PROBE_SH, found_tools, probe_commands
from grader.checks.on_service import dev_flags
from grader.errors import SpecError
from grader.processes import command_lines
from grader.programs import find_tools
from grader.spec import CheckSpec

# --- the build-tool probe ------------------------------------------------------------------------


@pytest.fixture
def fake_bin(tmp_path):
    """A folder with an executable tool, a file that is not executable, and a dangling link."""
    folder = tmp_path / "bin"
    folder.mkdir()
    tool = folder / "lab03-fake-cc"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    (folder / "lab03-fake-make").write_text("not executable\n")
    (folder / "lab03-fake-git").symlink_to(tmp_path / "gone")
    (folder / "lab03-fake-dir").mkdir()
    return folder


TOOLS = ["lab03-fake-cc", "lab03-fake-make", "lab03-fake-git", "lab03-fake-dir", "lab03-fake-none"]


def run_probe(command: list[str], folder) -> str:
    env = {**os.environ, "PATH": f"{folder}:{os.environ.get('PATH', '')}"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=30, check=True).stdout


def test_shell_probe_finds_executable_files_only(fake_bin):
    output = run_probe(["sh", "-c", PROBE_SH, "probe", *TOOLS], fake_bin)
    assert found_tools(output) == {"lab03-fake-cc": f"{fake_bin}/lab03-fake-cc"}


def test_python_probe_agrees_with_the_shell_probe(fake_bin):
    output = run_probe([sys.executable, "-c", PROBE_PY, *TOOLS], fake_bin)
    assert found_tools(output) == {"lab03-fake-cc": f"{fake_bin}/lab03-fake-cc"}


def test_python_probe_is_the_program_file_and_runs_in_process(fake_bin, monkeypatch, capsys):
    assert PROBE_PY == Path(find_tools.__file__).read_text(encoding="utf-8")
    monkeypatch.setenv("PATH", str(fake_bin))
    find_tools.main([*TOOLS, "ls"])  # ls: from the standard folders, which PATH leaves out here
    found = found_tools(capsys.readouterr().out)
    assert found["lab03-fake-cc"] == f"{fake_bin}/lab03-fake-cc" and found["ls"].endswith("/ls")
    assert set(found) == {"lab03-fake-cc", "ls"}


def test_probe_looks_in_standard_folders_even_when_path_leaves_them_out():
    env = {"PATH": "/nonexistent"}
    # `sh` by its full path: PATH does not find it here. Every Debian-like system has /bin/sh and ls.
    output = subprocess.run(
        ["/bin/sh", "-c", PROBE_SH, "probe", "ls"], capture_output=True, text=True, env=env, timeout=30
    ).stdout
    assert "ls" in found_tools(output)


def test_probe_commands_try_the_shell_first_then_python():
    commands = probe_commands(["gcc", "make"])
    assert [c[0] for c in commands] == ["sh", "python3", "python"]
    assert all(c[-2:] == ["gcc", "make"] for c in commands)


def test_found_tools_needs_the_probe_to_have_finished():
    assert found_tools("found gcc /usr/bin/gcc\n") is None  # cut short: no verdict from half a probe
    assert found_tools(f"{PROBE_DONE}\n") == {}
    recorded = f"found gcc /usr/bin/gcc\nfound cc /usr/bin/cc\nfound gcc /usr/local/bin/gcc\n{PROBE_DONE}\n"
    assert found_tools(recorded) == {"gcc": "/usr/bin/gcc", "cc": "/usr/bin/cc"}


def test_verdict_names_what_was_found_and_hints_at_python_for_download_tools_only():
    check = registry.get("NoBuildToolsInImage")(CheckSpec("NoBuildToolsInImage"))
    assert check.verdict(["gcc"], {}, "sh").status == "passed"
    compilers = check.verdict(["gcc", "curl"], {"gcc": "/usr/bin/gcc", "curl": "/usr/bin/curl"}, "sh")
    assert compilers.status == "failed" and "gcc, curl" in compilers.message
    assert compilers.hint is None and "multi-stage" in check.learner_hint  # the default hint
    downloads = check.verdict(["curl"], {"curl": "/usr/bin/curl"}, "sh")
    assert downloads.status == "failed" and "urllib.request" in downloads.hint


# --- the size verdict ----------------------------------------------------------------------------


def test_size_ratio_passes_at_or_under_the_budget():
    outcome = size_ratio_outcome(500_000_000, 1_000_000_000, 0.6, "Dockerfile.naive")
    assert outcome.status == "passed" and "50%" in outcome.message
    assert "500 MB" in outcome.evidence and "1000 MB" in outcome.evidence and "0.50" in outcome.evidence
    assert size_ratio_outcome(600, 1000, 0.6, "naive").status == "passed"


def test_size_ratio_over_the_budget_fails_and_no_gain_at_all_says_so():
    over = size_ratio_outcome(650, 1000, 0.6, "naive")
    assert over.status == "failed" and "65%" in over.message and over.hint is None
    none = size_ratio_outcome(1260, 1000, 0.6, "naive")
    assert none.status == "failed" and "no smaller" in none.message and "COPY --from=builder / /" in none.hint


# --- the OpenAPI document ------------------------------------------------------------------------

# Recorded from the lab 03 solution's /openapi.json (FastAPI 0.165), trimmed to what the check reads.
SOLUTION_DOC = {
    "openapi": "3.1.0",
    "info": {"title": "Iris classifier", "version": "1.0.0"},
    "paths": {
        "/health": {"get": {"responses": {}}},
        "/predict": {
            "post": {
                "requestBody": {
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IrisRequest"}}},
                    "required": True,
                },
                "responses": {},
            }
        },
    },
    "components": {
        "schemas": {
            "IrisRequest": {
                "properties": {"features": {"items": {"type": "number"}, "type": "array", "maxItems": 4}},
                "additionalProperties": False,
                "type": "object",
                "required": ["features"],
            }
        }
    },
}
# Recorded from the starter: the endpoint reads the raw request, so no body is documented.
STARTER_PREDICT = {"post": {"summary": "Predict", "responses": {"200": {"description": "Successful Response"}}}}


def problems(doc, fields=("features",)):
    return openapi_problems(doc, "/predict", "post", list(fields))


def test_the_solutions_document_has_no_problems():
    assert problems(SOLUTION_DOC) == []


def test_an_endpoint_without_a_request_body_is_a_problem():
    doc = copy.deepcopy(SOLUTION_DOC)
    doc["paths"]["/predict"] = STARTER_PREDICT
    assert problems(doc) == ["POST /predict documents no request body"]


def test_a_raw_dict_body_documents_no_fields():
    doc = copy.deepcopy(SOLUTION_DOC)
    doc["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
        "type": "object",
        "additionalProperties": True,
    }
    assert problems(doc, ()) == []
    assert problems(doc) == [
        "the request body's schema does not describe the field(s) features (it describes: no fields at all)"
    ]


def test_version_info_path_and_method_are_checked():
    swagger = {**SOLUTION_DOC, "openapi": None, "swagger": "2.0", "info": {}}
    found = problems(swagger)
    assert any("not an OpenAPI 3 version" in p for p in found) and any('"info"' in p for p in found)
    assert problems({**SOLUTION_DOC, "paths": {"/health": {}}}) == ["/predict is not documented (documented: /health)"]
    assert problems({**SOLUTION_DOC, "paths": {"/predict": {"get": {}}}}) == ["POST /predict is not documented"]
    assert problems({**SOLUTION_DOC, "paths": None}) == ['there is no "paths" object']
    assert problems(["not", "a", "document"]) == ["the answer is not a JSON object"]


def test_a_dangling_reference_and_a_missing_json_schema_are_problems():
    dangling = {**SOLUTION_DOC, "components": {"schemas": {}}}
    assert problems(dangling) == [
        "the schema refers to #/components/schemas/IrisRequest, which the document does not define"
    ]
    external = copy.deepcopy(SOLUTION_DOC)
    external["paths"]["/predict"]["post"]["requestBody"] = {"$ref": "https://example.org/body.json"}
    assert "which is not inside the document" in problems(external)[0]
    form = copy.deepcopy(SOLUTION_DOC)
    form["paths"]["/predict"]["post"]["requestBody"]["content"] = {"application/x-www-form-urlencoded": {}}
    assert problems(form) == ["the request body of POST /predict has no application/json schema"]


# --- FastAPI's validation errors -----------------------------------------------------------------

FASTAPI_422 = {"detail": [{"type": "missing", "loc": ["body", "features"], "msg": "Field required", "input": {}}]}


def test_fastapis_validation_error_is_what_is_expected():
    assert validation_error_problem(422, FASTAPI_422, 422) is None


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (500, None, "status 500, not 422"),
        (400, {"error": "bad", "hint": "..."}, "status 400, not 422"),
        (422, {"error": "bad"}, 'no "detail" list'),
        (422, {"detail": "bad input"}, 'no "detail" list'),
        (422, {"detail": []}, 'no "detail" list'),
        (422, None, 'no "detail" list'),
        (422, {"detail": [{"msg": "Field required"}]}, 'lacks "loc"'),
    ],
)
def test_other_answers_say_what_is_wrong(status, body, why):
    assert why in validation_error_problem(status, body, 422)


# --- development flags in the running processes --------------------------------------------------

# Recorded from `sh -c LIST_PROCESSES` in a container started with uvicorn --reload.
PROCESSES = (
    "/opt/venv/bin/python\0/opt/venv/bin/uvicorn\0app:app\0--host\x000.0.0.0\0--port\08000\0--reload\0\n"
    "/opt/venv/bin/python\0-c\0from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)\0\n"
    'sh\0-c\0for f in /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done\0\n'
    "cat\0/proc/12/cmdline\0\n"
    "\n"
)


def test_command_lines_leave_out_the_probe_itself():
    commands = command_lines(PROCESSES)
    assert len(commands) == 2
    assert commands[0][:3] == ["/opt/venv/bin/python", "/opt/venv/bin/uvicorn", "app:app"]


def test_dev_flags_are_found_as_whole_arguments():
    commands = command_lines(PROCESSES)
    assert dev_flags(commands, ["--reload", "--debug"]) == [("--reload", commands[0])]
    assert dev_flags([["flask", "run", "--debug=1"]], ["--debug"]) == [("--debug", ["flask", "run", "--debug=1"])]
    assert dev_flags([["uvicorn", "app:app", "--reload-dir-free", "--no-reload"]], ["--reload"]) == []


# --- params ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["NoBuildToolsInImage", "ImageSizeRelativeBudget", "OpenAPISchemaServed", "ValidationErrors422"]
)
def test_unknown_params_are_refused(name):
    with pytest.raises(SpecError, match="unknown param"):
        registry.get(name)(CheckSpec(name, params={"typo": 1}))
