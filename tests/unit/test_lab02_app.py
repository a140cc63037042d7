"""Lab 02's reference app, through Flask's test client, against the cases its own lab.yaml grades."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import yaml

from grader.spec import REPO_ROOT

APP = REPO_ROOT / "solutions" / "02-layer-caching" / "app"
HTTP = yaml.safe_load((APP.parent / "lab.yaml").read_text())["http"]
PREDICT = HTTP["predict"]
GOOD = PREDICT["cases"][0]["body"]["features"]


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
    saved = os.environ.get("MODEL_PATH")
    os.environ["MODEL_PATH"] = str(model)  # app.py reads it once, at import
    try:
        spec = importlib.util.spec_from_file_location("lab02_app_under_test", APP / "app.py")
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


def test_health_lists_classes_and_features(client):
    reply = client.get(HTTP["health"]["path"])
    assert reply.status_code == 200
    model = reply.get_json()["model"]
    assert model["classes"] == ["cultivar_1", "cultivar_2", "cultivar_3"]
    assert model["features"] == list(GOOD)  # the lab's cases name every feature, in the model's order


@pytest.mark.parametrize("case", PREDICT["cases"], ids=[c["name"] for c in PREDICT["cases"]])
def test_known_inputs_are_classified_right(client, case):
    reply = post(client, case)
    assert reply.status_code == 200
    body = reply.get_json()
    for key, value in case["expect"].items():
        assert body[key] == value
    assert body["probabilities"][body["class"]] == max(body["probabilities"].values())


def test_key_order_does_not_matter(client):
    shuffled = dict(reversed(list(GOOD.items())))
    assert client.post(PREDICT["path"], json={"features": shuffled}).get_json()["class"] == "cultivar_1"


@pytest.mark.parametrize("case", PREDICT["malformed"], ids=[c["name"] for c in PREDICT["malformed"]])
def test_malformed_input_gets_a_4xx_json_error(client, case):
    reply = post(client, case)
    assert 400 <= reply.status_code < 500
    assert reply.get_json()["error"] and reply.get_json()["hint"]


@pytest.mark.parametrize(
    ("features", "status", "word"),
    [
        ({**GOOD, "colour": 1.0}, 422, "unknown: colour"),
        ({k: v for k, v in GOOD.items() if k != "proline"}, 422, "missing: proline"),
        ({**GOOD, "hue": True}, 422, "hue"),
        ({**GOOD, "hue": None}, 422, "hue"),
    ],
)
def test_feature_problems_are_named(client, features, status, word):
    reply = client.post(PREDICT["path"], json={"features": features})
    assert reply.status_code == status
    assert word in reply.get_json()["error"]


def test_nan_is_refused(client):
    body = json.dumps({"features": GOOD}).replace("1065", "NaN")
    reply = client.post(PREDICT["path"], data=body, content_type="application/json")
    assert reply.status_code == 422 and "proline" in reply.get_json()["error"]


def test_unknown_route_and_wrong_method_are_json(client):
    assert client.get("/no-such-route").status_code == 404
    assert client.get(PREDICT["path"]).status_code == 405
    assert client.get(PREDICT["path"]).is_json
