"""A small prediction service for an iris model bundle that is NOT part of the image.

The model is mounted at run time (read-only) where the environment variable MODEL_PATH points:
    docker run --rm -p 127.0.0.1:5000:5000 \
        -v "$PWD/models/v1.joblib:/models/model.joblib:ro" lab05

GET  /health   -> {"status": "ok", "model": {"version": "1.0.0", "sha256": "...", ...}}
POST /predict  -> body   {"features": [sepal length, sepal width, petal length, petal width]}  (cm)
                  answer {"class": "setosa", "class_id": 0, "probabilities": {...}, "model_version": "1.0.0"}

Every error is JSON {"error": "...", "hint": "..."} with a 4xx status: a client can always read the
answer, and a bad request never takes the service down.
"""

import hashlib
import logging
import math
import os
import sys

import joblib
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("iris")

# TODO(model-path): the model is baked into the image next to this file, and MODEL_PATH is ignored:
#   a new model means a new image. Read the path from the environment variable MODEL_PATH instead
#   (default /models/model.joblib, where it will be mounted).
HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.path.join(HERE, "model.joblib")  # written into the image by RUN python train.py
# 0.0.0.0 means "every network interface". Inside a container 127.0.0.1 is the container's OWN
# loopback: `docker run -p` forwards traffic to the container's network interface, so a server
# listening on 127.0.0.1 there can never be reached from outside.
HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "5000"))
N_FEATURES = 4
EXAMPLE = 'send {"features": [5.1, 3.5, 1.4, 0.2]}: sepal length, sepal width, petal length, petal width in cm'

# TODO(fail-fast): load the model once, at start-up, and if it cannot be loaded (missing file,
#   corrupt file, a bundle without a version) stop the process now with a clear message naming the
#   file: sys.exit("could not load the model from ...: ..."). A container that exits is restarted
#   and reported by the platform; one that runs without a usable model fails every request instead.
bundle = joblib.load(MODEL_PATH)
model, CLASSES = bundle["model"], bundle["classes"]

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024  # a prediction request is tiny: refuse huge bodies (413)


def error(status, message, hint):
    """Every error the service sends has this one shape."""
    return jsonify(error=message, hint=hint), status


@app.errorhandler(HTTPException)
def http_error(exc):
    # Flask's built-in error pages are HTML. A JSON API answers JSON, also for 404, 405 and 413.
    hints = {404: "this service has GET /health and POST /predict", 405: "use GET for /health and POST for /predict"}
    return error(exc.code, exc.name, hints.get(exc.code, exc.description))


@app.errorhandler(Exception)
def unexpected_error(exc):
    # A bug must not leak a Python traceback to the client; it goes to the logs (`docker logs`).
    app.logger.exception("unexpected error")
    return error(500, "Internal Server Error", "a bug in the service: see the container logs")


def is_number(value):
    """True for a finite int or float. JSON true/false become Python bools, which are ints: refuse them."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # refuses NaN and Infinity, which Python's JSON parser accepts
    except OverflowError:  # an integer too big to be a float
        return False


@app.get("/health")
def health():
    # TODO(version): report which model this container serves: its version (bundle["version"])
    #   and the sha256 of the file, so that anyone can tell which model answered.
    info = {}
    info.update(type=type(model[-1]).__name__, classes=CLASSES, sklearn_version=bundle["sklearn_version"])
    return jsonify(status="ok", model=info)


@app.post("/predict")
def predict():
    # silent=True gives None instead of Flask's HTML error, so we can answer with our own JSON one.
    data = request.get_json(silent=True)
    if data is None and not request.is_json:
        return error(415, "the body must be JSON", "add the header Content-Type: application/json, and " + EXAMPLE)
    if data is None:
        return error(400, "the body is not valid JSON", EXAMPLE)
    # From here the body is valid JSON, so a problem is with its content: 422 Unprocessable Content.
    if not isinstance(data, dict) or "features" not in data:
        return error(422, 'the body must be a JSON object with a "features" field', EXAMPLE)
    features = data["features"]
    if not isinstance(features, list) or len(features) != N_FEATURES:
        return error(422, f'"features" must be a list of exactly {N_FEATURES} numbers', EXAMPLE)
    if not all(is_number(x) for x in features):
        return error(422, '"features" must hold only numbers (no strings, booleans, null or NaN)', EXAMPLE)

    row = [[float(x) for x in features]]
    class_id = int(model.predict(row)[0])
    log.info("predicted %s for %s", CLASSES[class_id], features)
    probabilities = model.predict_proba(row)[0]
    return jsonify(
        {
            "class": CLASSES[class_id],
            "class_id": class_id,
            "probabilities": {name: round(float(p), 4) for name, p in zip(CLASSES, probabilities, strict=True)},
            "model_version": bundle.get("version"),
        }
    )


if __name__ == "__main__":
    # Flask's development server, for trying the app on your laptop only. The image runs gunicorn,
    # which imports `app` from this module (CMD in the Dockerfile).
    app.run(host=HOST, port=PORT)
