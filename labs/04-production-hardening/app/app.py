"""A small prediction service for the iris model that train.py makes.

GET  /health   -> {"status": "ok", "model": {...}}
POST /predict  -> body   {"features": [sepal length, sepal width, petal length, petal width]}  (cm)
                  answer {"class": "setosa", "class_id": 0, "probabilities": {...}}

Every error is JSON {"error": "...", "hint": "..."} with a 4xx status: a client can always read the
answer, and a bad request never takes the service down.
"""

import logging
import math
import os
import sys

import joblib
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

# TODO(logs): this writes the log to a file inside the container: `docker logs` shows nothing, the
#   file fills the container's disk, and with a read-only root file system the app cannot even start.
#   Log to stdout instead (logging.basicConfig(stream=sys.stdout, ...)).
LOG_DIR = os.path.expanduser("~/logs")
os.makedirs(LOG_DIR, exist_ok=True)
logging.basicConfig(filename=os.path.join(LOG_DIR, "service.log"), level=logging.INFO)
log = logging.getLogger("iris")

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
# 0.0.0.0 means "every network interface". Inside a container 127.0.0.1 is the container's OWN
# loopback: `docker run -p` forwards traffic to the container's network interface, so a server
# listening on 127.0.0.1 there can never be reached from outside.
HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "5000"))
N_FEATURES = 4
EXAMPLE = 'send {"features": [5.1, 3.5, 1.4, 0.2]}: sepal length, sepal width, petal length, petal width in cm'

# Load the model once, at start-up. If it is missing, stop now with a clear message
# instead of failing on the first request.
if not os.path.exists(MODEL_PATH):
    sys.exit(f"model file {MODEL_PATH} not found: run `python train.py` first (in a Dockerfile: RUN python train.py)")
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
    return jsonify(
        status="ok",
        model={"type": type(model[-1]).__name__, "classes": CLASSES, "sklearn_version": bundle["sklearn_version"]},
    )


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
        }
    )


if __name__ == "__main__":
    # Flask's development server, for trying the app on your laptop only. The image runs gunicorn,
    # which imports `app` from this module (CMD in the Dockerfile).
    app.run(host=HOST, port=PORT)
