"""Chapter 0's findings table and verdict, on made-up findings (no engine needed)."""

from __future__ import annotations

from grader.doctor import Finding
from workbook.setup_check import FindingsTable, problems, status_of, verdict

ENGINE = Finding("Engine", True, "Docker Engine 20.10.24 (API 1.41)")
NO_COMPOSE = Finding("Compose", False, "the 'docker compose' plugin is missing", fix="make engine")
NO_GPU = Finding("GPU runtime", False, "no NVIDIA runtime", fix="install the NVIDIA Container Toolkit", required=False)
NO_IMAGE = Finding("Image python:3.11-slim", False, "missing", fix="make images")


def test_a_missing_gpu_is_a_note_not_a_problem():
    assert status_of(NO_GPU) == "note"
    assert problems([ENGINE, NO_GPU]) == []
    assert verdict([ENGINE, NO_GPU]) == "Ready: every required part works"


def test_each_broken_required_part_is_counted():
    assert status_of(NO_COMPOSE) == "FIX" and status_of(ENGINE) == "ok"
    assert verdict([ENGINE, NO_COMPOSE]) == "1 problem: fix them with the commands above"
    assert verdict([ENGINE, NO_COMPOSE, NO_IMAGE, NO_GPU]) == "2 problems: fix them with the commands above"


def test_the_table_shows_the_fix_only_for_what_is_broken():
    table = FindingsTable([ENGINE, NO_COMPOSE])
    text = repr(table)
    assert "fix: make engine" in text and text.count("fix:") == 1
    page = table._repr_html_()
    assert "<code>make engine</code>" in page and page.count("<tr>") == 3  # header + 2 rows


def test_the_html_table_escapes_what_the_engine_said():
    page = FindingsTable([Finding("Engine", False, "cannot connect to <unix:///var/run/docker.sock>")])._repr_html_()
    assert "&lt;unix:///var/run/docker.sock&gt;" in page and "<unix:" not in page
