"""The pure parts of the model-packaging checks."""

from __future__ import annotations

import pytest

from grader.checks.on_image_files import model_files
from grader.checks.on_mounted_model import (
    BadModelFailsFast,
    HealthReportsModelVersion,
    MountedModelIsUsed,
    dig,
    sha256_of,
)
from grader.errors import SpecError
from grader.spec import CheckSpec, official_specs


def test_dig_follows_dotted_keys():
    assert dig({"model": {"version": "1.0.0"}}, "model.version") == "1.0.0"
    assert dig({"model": {}}, "model.version") is None
    assert dig({"model": "v1"}, "model.version") is None
    assert dig(None, "model") is None


def test_model_files_match_file_names_only():
    paths = ["/app/model.joblib", "/app/joblib/x.py", "/models/net.pt", "/app/app.py", "/app/a.PKL"]
    assert model_files(paths, ["*.joblib", "*.pt"]) == ["/app/model.joblib", "/models/net.pt"]


def test_sha256_of(tmp_path):
    path = tmp_path / "m"
    path.write_bytes(b"abc")
    assert sha256_of(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def spec(check, **params):
    return CheckSpec(check=check, points=1, params=params)


MOUNTED = {"variable": "MODEL_PATH", "mount_at": "/models/model.joblib"}


def test_model_checks_need_two_models_and_one_answer_each():
    with pytest.raises(SpecError, match="two"):
        MountedModelIsUsed(spec("MountedModelIsUsed", **MOUNTED, models=["a.joblib"], probe={"expect": ["x"]}))
    with pytest.raises(SpecError, match="one answer per model"):
        MountedModelIsUsed(spec("MountedModelIsUsed", **MOUNTED, models=["a", "b"], probe={"expect": ["x"]}))
    with pytest.raises(SpecError, match="one version per model"):
        HealthReportsModelVersion(
            spec("HealthReportsModelVersion", **MOUNTED, models=["a", "b"], field="model.version", versions=["1"])
        )
    with pytest.raises(SpecError, match="unknown"):
        BadModelFailsFast(spec("BadModelFailsFast", wait_s=3))


def test_model_checks_take_the_mount_point_from_the_lab():
    with pytest.raises(SpecError, match="'mount_at' \\(where the model file is mounted"):
        BadModelFailsFast(spec("BadModelFailsFast", missing_path="/models/missing.joblib"))


def test_lab05_ships_two_different_small_models():
    lab = official_specs()["05"]
    for check in lab.checks:
        for name in check.params.get("models", []):
            assert (lab.path / name).is_file() and (lab.path / name).stat().st_size < 64 * 1024
    assert sha256_of(lab.path / "models/v1.joblib") != sha256_of(lab.path / "models/v2.joblib")
    assert "models" in (lab.path / ".dockerignore").read_text().split()
