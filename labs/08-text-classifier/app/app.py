"""A small prediction service for the support-ticket classifier that train.py makes.

GET  /health   -> {"status": "ok", "model": {...}}
POST /predict  -> body   {"text": "I was charged twice this month"}
                  answer {"label": "billing", "probabilities": {"account": 0.02, "billing": 0.95, ...}}

Every error is JSON {"error": "...", "hint": "..."} with a 4xx status: a client can always read the
answer, and a bad request never takes the service down.
"""

import os
import signal
import sys

import joblib
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.environ.get("MODEL_PATH", os.path.join(HERE, "model.joblib"))
# 0.0.0.0 means "every network interface". Inside a container 127.0.0.1 is the container's OWN
# loopback: `docker run -p` forwards traffic to the container's network interface, so a server
# listening on 127.0.0.1 there can never be reached from outside.
HOST = os.environ.get("HOST", "0.0.0.0")
PORT = int(os.environ.get("PORT", "5000"))
MAX_TEXT_CHARS = 2000  # a support ticket's subject or first lines, not a whole document
EXAMPLE = 'send {"text": "I was charged twice this month"}: the text of one support ticket'

# Load the model once, at start-up. If it is missing, stop now with a clear message
# instead of failing on the first request.
if not os.path.exists(MODEL_PATH):
    sys.exit(f"model file {MODEL_PATH} not found: run `python train.py` first (in a Dockerfile: RUN python train.py)")
bundle = joblib.load(MODEL_PATH)
model, LABELS = bundle["model"], bundle["labels"]

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


@app.get("/health")
def health():
    return jsonify(
        status="ok",
        model={"type": type(model[-1]).__name__, "labels": LABELS, "sklearn_version": bundle["sklearn_version"]},
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
    if not isinstance(data, dict) or "text" not in data:
        return error(422, 'the body must be a JSON object with a "text" field', EXAMPLE)
    text = data["text"]
    if not isinstance(text, str):
        return error(422, '"text" must be a string (not a number, a list, a boolean or null)', EXAMPLE)
    if not text.strip():
        return error(422, '"text" is empty: there is nothing to classify', EXAMPLE)
    if len(text) > MAX_TEXT_CHARS:
        return error(422, f'"text" is over {MAX_TEXT_CHARS} characters', "send one ticket's subject or first lines")

    # LABELS is in the order of the model's columns: train.py saved it from model.classes_.
    probabilities = model.predict_proba([text])[0]
    return jsonify(
        label=LABELS[int(probabilities.argmax())],
        probabilities={label: round(float(p), 4) for label, p in zip(LABELS, probabilities, strict=True)},
    )


def stop(signum, frame):
    sys.exit(0)


if __name__ == "__main__":
    # In a container this program is PID 1, and Linux gives PID 1 no default action for SIGTERM:
    # without a handler, `docker stop` waits 10 s and then kills the service.
    signal.signal(signal.SIGTERM, stop)
    # Flask's built-in server is fine for a small lab; later labs use a production server (gunicorn).
    app.run(host=HOST, port=PORT)
