"""Lab 01's reference app, through Flask's test client, against the cases its own lab.yaml grades."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
import yaml

from grader.spec import REPO_ROOT

APP = REPO_ROOT / "solutions" / "01-first-model-container" / "app"
HTTP = yaml.safe_load((APP.parent / "lab.yaml").read_text())["http"]
PREDICT = HTTP["predict"]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "model.joblib"
    trained = subprocess.run(
        [sys.executable, str(APP / "train.py")],
        env={**os.environ, "MODEL_PATH": str(model)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trained.returncode == 0, trained.stderr
    assert model.is_file()

    saved = os.environ.get("MODEL_PATH")
    os.environ["MODEL_PATH"] = str(model)  # app.py reads it once, at import
    try:
        spec = importlib.util.spec_from_file_location("lab01_app_under_test", APP / "app.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            del os.environ["MODEL_PATH"]
        else:
            os.environ["MODEL_PATH"] = saved
    assert module.MODEL_PATH == str(model)
    return module.app.test_client()


def post(client, case):
    if "raw" in case:
        return client.post(PREDICT["path"], data=case["raw"], content_type="application/json")
    return client.post(PREDICT["path"], json=case["body"])


def test_health_is_200_json(client):
    reply = client.get(HTTP["health"]["path"])
    assert reply.status_code == 200
    assert reply.is_json
    body = reply.get_json()
    assert body["status"] == "ok"
    assert body["model"]["classes"] == ["setosa", "versicolor", "virginica"]


@pytest.mark.parametrize("case", PREDICT["cases"], ids=[c["name"] for c in PREDICT["cases"]])
def test_known_inputs_are_classified_right(client, case):
    reply = post(client, case)
    assert reply.status_code == 200
    body = reply.get_json()
    for key, value in case["expect"].items():
        assert body[key] == value
    assert body["probabilities"][body["class"]] == max(body["probabilities"].values())
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)


@pytest.mark.parametrize("case", PREDICT["malformed"], ids=[c["name"] for c in PREDICT["malformed"]])
def test_malformed_input_gets_a_4xx_json_error(client, case):
    reply = post(client, case)
    assert 400 <= reply.status_code < 500
    assert reply.is_json
    body = reply.get_json()
    assert body["error"]
    assert body["hint"]


@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        ('{"features": [5.1, 3.5, 1.4, 0.2]}', "text/plain", 415),
        ('{"features": [true, 3.5, 1.4, 0.2]}', "application/json", 422),
        ('{"features": [NaN, 3.5, 1.4, 0.2]}', "application/json", 422),
        ('{"features": [5.1, 3.5, 1.4, null]}', "application/json", 422),
        ("[5.1, 3.5, 1.4, 0.2]", "application/json", 422),
        ("", "application/json", 400),
    ],
)
def test_more_malformed_bodies(client, data, content_type, status):
    reply = client.post(PREDICT["path"], data=data, content_type=content_type)
    assert reply.status_code == status
    assert reply.get_json()["error"]


def test_unknown_route_is_a_json_404(client):
    reply = client.get("/no-such-route")
    assert reply.status_code == 404
    assert reply.is_json
    assert "/predict" in reply.get_json()["hint"]


def test_wrong_method_is_a_json_405(client):
    reply = client.get(PREDICT["path"])
    assert reply.status_code == 405
    assert reply.is_json


def test_huge_body_is_refused_with_json(client):
    reply = client.post(PREDICT["path"], data="[" + "1," * 100_000 + "1]", content_type="application/json")
    assert reply.status_code == 413
    assert reply.is_json


def test_still_answers_after_bad_requests(client):
    for case in PREDICT["malformed"]:
        post(client, case)
    assert client.get(HTTP["health"]["path"]).status_code == 200
