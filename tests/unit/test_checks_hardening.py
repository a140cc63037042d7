"""The pure parts of the production-hardening checks, without an engine."""

from __future__ import annotations

import re

import pytest

from grader.checks.on_dockerfile import unpinned_requirements
from grader.checks.on_image import is_numeric_user
from grader.checks.on_image_files import find_secrets, redact
from grader.checks.on_service import servers_running


@pytest.mark.parametrize(
    ("user", "numeric"),
    [
        ("10001", True),
        ("10001:10001", True),
        (" 1000 ", True),
        ("app", False),
        ("app:app", False),
        ("10001:app", False),
        ("", False),
        ("root", False),
    ],
)
def test_numeric_user(user, numeric):
    assert is_numeric_user(user) is numeric


def test_unpinned_requirements():
    text = """
# a comment
flask==3.1.3
gunicorn==23.0.0  # a trailing comment
uvicorn[standard]==0.30.1
pywin32==306; sys_platform == "win32"
-r base.txt
--index-url https://example.invalid/simple
numpy>=2
scipy
pandas==2.*
requests~=2.32
torch==2.4.0,<3
"""
    assert unpinned_requirements(text) == ["numpy>=2", "scipy", "pandas==2.*", "requests~=2.32", "torch==2.4.0,<3"]


def test_find_secrets_redacts_what_it_finds():
    patterns = [re.compile(r"sk-live-[A-Za-z0-9]+"), re.compile(r"BEGIN (RSA |EC |OPENSSH |)PRIVATE KEY")]
    found = find_secrets("API_KEY=sk-live-4f9aQ2 and -----BEGIN RSA PRIVATE KEY-----", patterns)
    assert found == ["sk-live-…", "BEGIN RS…"]
    assert find_secrets("PATH=/usr/local/bin", patterns) == []
    assert redact("short") == "…"


@pytest.mark.parametrize(
    ("commands", "found"),
    [
        ([["/usr/local/bin/python", "/usr/local/bin/gunicorn", "--bind", "0.0.0.0:5000", "app:app"]], ["gunicorn"]),
        ([["python", "-m", "uvicorn", "app:app"]], ["uvicorn"]),
        ([["uvicorn", "app:app"], ["uvicorn", "app:app"]], ["uvicorn"]),
        ([["python", "app.py"]], []),
        ([["/bin/sh", "-c", "gunicorn app:app"]], []),  # a shell's argument is not the running server
    ],
)
def test_servers_running(commands, found):
    assert servers_running(commands, ["gunicorn", "uvicorn"]) == found
