"""The engine report on the real engine: BuildKit is reached through the buildx plugin, and the engine `make engine`
starts (current) uses the containerd image store."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from grader.doctor import diagnose
from grader.engine_facts import engine_report, version_tuple

STARTED_KIND = Path("/var/run/grader-engine/kind")  # docker/engine.sh writes the kind of the engine it started


def started_kind() -> str | None:
    return STARTED_KIND.read_text().strip() if STARTED_KIND.is_file() else None


def test_buildkit_is_reached_through_buildx(engine):
    report = engine_report(engine)
    assert report.buildx_version and version_tuple(report.buildx_version) >= (0, 13), report


def test_the_engine_make_engine_started_reports_its_image_store(engine):
    report = engine_report(engine)
    kind = started_kind()
    if kind == "current":
        assert report.image_store == "containerd", f"{report.storage_driver}: expected the containerd image store"
        assert version_tuple(report.server_version) >= (23,) and report.limitations == [], report
        assert report.client_api_version and version_tuple(report.client_api_version) >= (1, 44), report
    elif kind == "legacy":  # Debian 12's docker.io 20.10
        assert report.image_store == "classic", report
        assert any("heredocs" in lim.feature for lim in report.limitations), report
    else:
        pytest.skip(f"this engine was not started by 'make engine': its {report.image_store} image store is its own")


def test_doctor_shows_the_same_report(engine):
    report = engine_report(engine)
    findings = {f.name: f for f in diagnose()}
    assert f"Docker Engine {report.server_version} (API {report.api_version}" in findings["Engine"].detail
    assert findings["Image store"].detail.startswith(f"{report.image_store} image store")
    assert findings["BuildKit"].ok and report.buildx_version in findings["BuildKit"].detail
    assert ("Limitation" in findings) == bool(report.limitations)


def gc_rules() -> list[dict[str, str]]:
    """The builder's garbage collection rules, as `docker buildx inspect` prints them ("GC Policy rule#N")."""
    out = subprocess.run(["docker", "buildx", "inspect"], capture_output=True, text=True, timeout=60, check=True).stdout
    rules: list[dict[str, str]] = []
    for line in out.splitlines():
        if line.startswith("GC Policy rule#"):
            rules.append({})
        elif rules and line.startswith(" ") and ":" in line:
            key, _, value = line.strip().partition(":")
            rules[-1][key] = value.strip()
    return rules


def test_the_engine_make_engine_started_never_collects_cache_used_in_the_last_half_hour(engine):
    # Docker's default rules rank records by use count as well as age, and collected cache a grade had built
    # seconds before its layer-cache rebuild (docker/engine.sh, write_daemon_json).
    if started_kind() != "current":
        pytest.skip("this engine was not started by 'make engine': its garbage collection rules are its own")
    rules = gc_rules()
    assert rules, "docker buildx inspect lists no garbage collection rule"
    for rule in rules:
        held = rule.get("Keep Duration", "0s")
        hours, minutes = re.match(r"(?:(\d+)h)?(?:(\d+)m)?", held).groups()
        assert int(hours or 0) * 60 + int(minutes or 0) >= 30, rules
