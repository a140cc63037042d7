"""requirements.txt (the .venv) and environment.yml (conda) describe the same pinned environment."""

from __future__ import annotations

import re

import yaml

from grader.spec import REPO_ROOT


def requirement_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.txt: {line!r} is not pinned with =="
            pins[name.lower()] = version
    return pins


def conda_pins() -> dict[str, str]:
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {name.lower(): version for name, _, version in (p.partition("==") for p in pip_section)}


def test_every_requirement_is_pinned_and_listed_for_conda():
    assert requirement_pins() == conda_pins()


def test_conda_python_matches_the_venv_python_series():
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert re.fullmatch(r"python=3\.11", python)
