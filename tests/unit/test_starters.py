"""Starters are generated from solutions: the marker rules, and labs/ being up to date."""

from __future__ import annotations

import pytest

from grader.errors import GraderError
from grader.starters import generate, out_of_date, starter_text

SOLUTION = """FROM python:3.11-slim
# >>> TODO(user): create a user
#   with a fixed UID
RUN useradd --uid 10001 app
USER 10001
# <<<
# >>> TODO(order): requirements first
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# === starter
# COPY . .
#
# RUN pip install -r requirements.txt
# <<<
CMD ["python", "app.py"]
"""


def test_a_region_becomes_its_todo_hint_and_starter_lines():
    assert starter_text(SOLUTION) == (
        "FROM python:3.11-slim\n"
        "# TODO(user): create a user\n"
        "#   with a fixed UID\n"
        "# TODO(order): requirements first\n"
        "COPY . .\n"
        "\n"
        "RUN pip install -r requirements.txt\n"
        'CMD ["python", "app.py"]\n'
    )


def test_indented_regions_keep_their_indentation():
    text = "def f():\n    # >>> TODO: validate\n    check(x)\n    # === starter\n    # pass\n    # <<<\n"
    assert starter_text(text) == "def f():\n    # TODO: validate\n    pass\n"


@pytest.mark.parametrize(
    "broken, problem",
    [
        ("# >>> TODO: a\n# >>> TODO: b\n# <<<\n", "inside another region"),
        ("x\n# <<<\n", "without a region"),
        ("# === starter\n", "outside a region"),
        ("# >>> TODO: a\nline\n", "not closed"),
    ],
)
def test_malformed_regions_are_errors_naming_the_line(broken, problem):
    with pytest.raises(GraderError, match=problem):
        starter_text(broken, "Dockerfile")


def test_solution_only_files_stay_out_of_the_starter(tmp_path):
    solution = tmp_path / "solution"
    (solution / "app").mkdir(parents=True)
    (solution / ".dockerignore").write_text("# solution-only\ndata\n")
    (solution / "app" / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (solution / "app" / "run.sh").chmod(0o755)
    (solution / "model.bin").write_bytes(b"\xff\x00\xfe")
    generate(solution, tmp_path / "starter")
    assert not (tmp_path / "starter" / ".dockerignore").exists()
    assert (tmp_path / "starter" / "app" / "run.sh").stat().st_mode & 0o111
    assert (tmp_path / "starter" / "model.bin").read_bytes() == b"\xff\x00\xfe"


def test_labs_are_generated_from_the_current_solutions():
    assert out_of_date() == [], "run 'make labs' and commit labs/"
