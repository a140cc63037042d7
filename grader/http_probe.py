"""Asking a learner's service over HTTP: one request of a lab's case, and its answer as a report can show it."""

from __future__ import annotations

import requests

TIMEOUT_S = 10


def call(base_url: str, case: dict, path: str) -> requests.Response:
    """POST one case: a JSON `body`, or `raw` text sent as if it were JSON."""
    url = base_url + path
    if "raw" in case:
        return requests.post(url, data=case["raw"], headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S)
    return requests.post(url, json=case["body"], timeout=TIMEOUT_S)


def json_or_none(reply: requests.Response):
    try:
        return reply.json()
    except ValueError:
        return None


def describe(reply: requests.Response) -> str:
    body = reply.text.strip().replace("\n", " ")
    return f"HTTP {reply.status_code}: {body[:160]}"
