"""workbook/programs/versioned_service.py, in-process on top of lab 06's reference app.py (as chapter 9 puts it
on lab 06's image), through Flask's test client: every answer names the release; without APP_VERSION it does not
start, and neither does chapter 9's broken release, the same file with the variable's name misspelt."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest

from grader.spec import REPO_ROOT
from workbook.programs import FOLDER

LAB_API = REPO_ROOT / "solutions" / "06-compose-stack" / "api"
VERSIONED = FOLDER / "versioned_service.py"
# Chapter 9's release 3: the same replace as the notebook's.
GOOD_READ, BROKEN_READ = 'os.environ["APP_VERSION"]', 'os.environ["APP_VERISON"]'
FLOWER = {"features": [5.1, 3.5, 1.4, 0.2]}


@pytest.fixture(scope="module")
def lab_folder(tmp_path_factory):
    """A copy of lab 06's app.py with its model trained next to it, as in the lab's image."""
    folder = tmp_path_factory.mktemp("lab06-api")
    shutil.copy(LAB_API / "app.py", folder / "app.py")
    trained = subprocess.run(
        [sys.executable, str(LAB_API / "train.py")],
        env={**os.environ, "MODEL_PATH": str(folder / "model.joblib")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trained.returncode == 0, trained.stderr
    return folder


@pytest.fixture()
def lab_app(lab_folder, monkeypatch):
    """Lab 06's app module, fresh for each test, registered as `app` (what `from app import app` finds)."""
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there: the cache is down
    spec = importlib.util.spec_from_file_location("app", lab_folder / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "app", module)
    return module


def load_versioned(path):
    spec = importlib.util.spec_from_file_location("versioned", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_answer_names_the_release(lab_app, monkeypatch):
    monkeypatch.setenv("APP_VERSION", "7")
    versioned = load_versioned(VERSIONED)
    assert versioned.app is lab_app.app, "gunicorn serves versioned:app, which is lab 06's app"
    client = versioned.app.test_client()

    health = client.get("/health")
    assert health.status_code == 200 and health.get_json()["status"] == "ok"
    assert health.headers["X-App-Version"] == "7"
    assert health.headers["X-Served-By"], "lab 06's own header is still there"

    predicted = client.post("/predict", json=FLOWER)
    assert predicted.status_code == 200 and predicted.get_json()["class"] == "setosa"
    assert predicted.headers["X-App-Version"] == "7" and predicted.headers["X-Cache"] == "MISS"

    refused = client.post("/predict", data="not json", content_type="application/json")
    assert refused.status_code == 400 and refused.headers["X-App-Version"] == "7", "errors name the release too"


def test_without_app_version_it_does_not_start(lab_app, monkeypatch):
    monkeypatch.delenv("APP_VERSION", raising=False)
    with pytest.raises(KeyError, match="APP_VERSION"):
        load_versioned(VERSIONED)


def test_the_broken_release_does_not_start_though_app_version_is_set(lab_app, monkeypatch, tmp_path):
    text = VERSIONED.read_text()
    assert text.count(GOOD_READ) == 1, "the notebook's replace must find the one read of APP_VERSION"
    broken = tmp_path / "broken.py"
    broken.write_text(text.replace(GOOD_READ, BROKEN_READ))
    monkeypatch.setenv("APP_VERSION", "3")
    monkeypatch.delenv("APP_VERISON", raising=False)
    with pytest.raises(KeyError, match="APP_VERISON"):
        load_versioned(broken)
