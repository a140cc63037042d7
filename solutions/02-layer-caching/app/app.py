"""A small prediction service for the wine model that train.py makes.

GET  /health   -> {"status": "ok", "model": {...}}
POST /predict  -> body   {"features": {"alcohol": 14.23, "malic_acid": 1.71, ... all 13 measurements}}
                  answer {"class": "cultivar_1", "class_id": 0, "probabilities": {...}}

Every error is JSON {"error": "...", "hint": "..."} with a 4xx status: a client can always read the
answer, and a bad request never takes the service down.
"""

import math
import os
import signal
import sys

import joblib
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
# 0.0.0.0: every interface. Inside a container 127.0.0.1 is the container's own loopback,
# which `docker run -p` cannot reach.
HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "5000"))

if not os.path.exists(MODEL_PATH):
    sys.exit(f"model file {MODEL_PATH} not found: run `python train.py` first (in a Dockerfile: RUN python train.py)")
bundle = joblib.load(MODEL_PATH)
model, CLASSES, FEATURES = bundle["model"], bundle["classes"], bundle["features"]
EXAMPLE = 'send {"features": {"alcohol": 14.23, "malic_acid": 1.71, ...}} with all of: ' + ", ".join(FEATURES)

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
        model={
            "type": type(model[-1]).__name__,
            "classes": CLASSES,
            "features": FEATURES,
            "sklearn_version": bundle["sklearn_version"],
        },
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
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        return error(422, 'the body must be a JSON object with a "features" object', EXAMPLE)
    features = data["features"]
    missing = [name for name in FEATURES if name not in features]
    unknown = sorted(set(features) - set(FEATURES))
    if missing or unknown:
        problems = [
            f"{what}: {', '.join(names)}" for what, names in (("missing", missing), ("unknown", unknown)) if names
        ]
        return error(
            422, f'"features" must hold exactly the {len(FEATURES)} measurements ({"; ".join(problems)})', EXAMPLE
        )
    not_numbers = [name for name in FEATURES if not is_number(features[name])]
    if not_numbers:
        return error(422, f"these measurements are not numbers: {', '.join(not_numbers)}", EXAMPLE)

    row = [[float(features[name]) for name in FEATURES]]
    class_id = int(model.predict(row)[0])
    probabilities = model.predict_proba(row)[0]
    return jsonify(
        {
            "class": CLASSES[class_id],
            "class_id": class_id,
            "probabilities": {name: round(float(p), 4) for name, p in zip(CLASSES, probabilities, strict=True)},
        }
    )


def stop(signum, frame):
    sys.exit(0)


if __name__ == "__main__":
    # In a container this program is PID 1, and Linux gives PID 1 no default action for SIGTERM:
    # without a handler, `docker stop` waits 10 s and then kills the service.
    signal.signal(signal.SIGTERM, stop)
    app.run(host=HOST, port=PORT)
