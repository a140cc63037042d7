"""Lab 08's reference app, through Flask's test client, against the cases its own lab.yaml grades."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import joblib
import pytest
import yaml

from grader.spec import REPO_ROOT

APP = REPO_ROOT / "solutions" / "08-text-classifier" / "app"
HTTP = yaml.safe_load((APP.parent / "lab.yaml").read_text())["http"]
PREDICT = HTTP["predict"]
LABELS = ["account", "billing", "technical"]


def train(model):
    """Run train.py as the Dockerfile does, writing the model to `model`."""
    trained = subprocess.run(
        [sys.executable, str(APP / "train.py")],
        env={**os.environ, "MODEL_PATH": str(model)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert trained.returncode == 0, trained.stderr
    assert model.is_file()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "model.joblib"
    train(model)
    saved = os.environ.get("MODEL_PATH")
    os.environ["MODEL_PATH"] = str(model)  # app.py reads it once, at import
    try:
        spec = importlib.util.spec_from_file_location("lab08_app_under_test", APP / "app.py")
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


def test_training_is_deterministic(tmp_path):
    # A fixed random_state: two builds of the same files serve the same model.
    texts = [case["body"]["text"] for case in PREDICT["cases"]]
    bundles = []
    for build in ("first", "second"):
        train(tmp_path / f"{build}.joblib")
        bundles.append(joblib.load(tmp_path / f"{build}.joblib"))
    first, second = bundles
    assert first["cv_accuracy"] == second["cv_accuracy"]
    assert (first["model"].predict_proba(texts) == second["model"].predict_proba(texts)).all()


def test_the_examples_are_balanced_across_the_labels():
    rows = (APP / "tickets.csv").read_text().splitlines()[1:]
    counts = {label: sum(row.endswith("," + label) for row in rows) for label in LABELS}
    assert sum(counts.values()) == len(rows)
    assert len(set(counts.values())) == 1, counts


def test_health_is_200_json(client):
    reply = client.get(HTTP["health"]["path"])
    assert reply.status_code == 200
    assert reply.is_json
    body = reply.get_json()
    assert body["status"] == "ok"
    assert body["model"]["labels"] == LABELS


@pytest.mark.parametrize("case", PREDICT["cases"], ids=[c["name"] for c in PREDICT["cases"]])
def test_known_texts_are_classified_right(client, case):
    reply = post(client, case)
    assert reply.status_code == 200
    body = reply.get_json()
    for key, value in case["expect"].items():
        assert body[key] == value
    assert sorted(body["probabilities"]) == LABELS
    assert body["probabilities"][body["label"]] == max(body["probabilities"].values())
    assert sum(body["probabilities"].values()) == pytest.approx(1, abs=1e-3)


def test_the_cases_cover_every_label():
    assert sorted(case["expect"]["label"] for case in PREDICT["cases"]) == LABELS


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
        ('{"text": "refund me"}', "text/plain", 415),
        ('{"text": "   "}', "application/json", 422),
        ('{"text": null}', "application/json", 422),
        ('{"text": true}', "application/json", 422),
        ('{"text": ["refund", "me"]}', "application/json", 422),
        ('["refund me"]', "application/json", 422),
        ('{"text": "' + "a" * 2001 + '"}', "application/json", 422),
        ("", "application/json", 400),
    ],
)
def test_more_malformed_bodies(client, data, content_type, status):
    reply = client.post(PREDICT["path"], data=data, content_type=content_type)
    assert reply.status_code == status
    assert reply.get_json()["error"]
    assert reply.get_json()["hint"]


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
    reply = client.post(PREDICT["path"], data='{"text": "' + "a" * 100_000 + '"}', content_type="application/json")
    assert reply.status_code == 413
    assert reply.is_json


def test_still_answers_after_bad_requests(client):
    for case in PREDICT["malformed"]:
        post(client, case)
    assert client.get(HTTP["health"]["path"]).status_code == 200
