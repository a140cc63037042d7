"""The programs that run inside containers (grader/programs, workbook/programs) import the standard library
only, plus what their image has, and never the grader or the workbook: they run with the image's own Python,
where neither is installed (the grader's as `python -c TEXT`, the workbook's mounted or copied as files)."""

from __future__ import annotations

import ast
import sys

import pytest

from grader.spec import REPO_ROOT

# What each program's image has besides the standard library.
IMAGE_HAS = {
    "grader/programs/torch_probe.py": {"torch"},  # where there is one: the probe reports its absence too
    "workbook/programs/versioned_service.py": {"app"},  # lab 06's app.py, next to it in lab 06's image
}
PROGRAMS = sorted(
    path.relative_to(REPO_ROOT).as_posix()
    for folder in ("grader/programs", "workbook/programs")
    for path in (REPO_ROOT / folder).glob("*.py")
    if path.name != "__init__.py"
)


def top_level_imports(path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or "").split(".")[0])
    return found


def test_the_programs_are_found():
    assert set(IMAGE_HAS) <= set(PROGRAMS)
    assert {"grader/programs/find_tools.py", "workbook/programs/load_generator.py"} <= set(PROGRAMS)


@pytest.mark.parametrize("program", PROGRAMS)
def test_a_program_imports_only_what_its_image_has(program):
    extra = top_level_imports(REPO_ROOT / program) - set(sys.stdlib_module_names) - IMAGE_HAS.get(program, set())
    assert not extra, f"{program} runs in a container, where {', '.join(sorted(extra))} is not installed"
