"""The HTTP contract: health endpoint, right predictions, and malformed input turned away politely."""

from __future__ import annotations

import requests

from grader.checks.base import Check, Outcome, register

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


@register
class HealthEndpoint(Check):
    name = "HealthEndpoint"
    category = "http"
    title = "/health answers 200 with JSON"
    hint = 'Return a small JSON object with status 200 from /health, e.g. {"status": "ok"}.'

    def run(self, ctx) -> Outcome:
        path = ctx.spec.http.get("health", {}).get("path", "/health")
        reply = requests.get(ctx.service().base_url + path, timeout=TIMEOUT_S)
        if reply.status_code == 200 and json_or_none(reply) is not None:
            return Outcome.passed(f"GET {path} -> 200", evidence=reply.text.strip()[:200])
        return Outcome.failed(f"GET {path} gave {describe(reply)}")


@register
class PredictionsCorrect(Check):
    name = "PredictionsCorrect"
    category = "http"
    title = "/predict returns the right class for known inputs"
    hint = "Check that the model is trained and loaded, and that /predict returns the fields the lab README names."

    def run(self, ctx) -> Outcome:
        predict = ctx.spec.http["predict"]
        base = ctx.service().base_url
        lines, right, answers = [], 0, []
        for case in predict["cases"]:
            reply = call(base, case, predict["path"])
            body = json_or_none(reply) or {}
            wrong = {k: body.get(k) for k, v in case["expect"].items() if body.get(k) != v}
            answers.append(body.get(next(iter(case["expect"]))))
            if reply.status_code == 200 and not wrong:
                right += 1
                lines.append(f"ok   {case['name']}: {case['expect']}")
            else:
                lines.append(f"FAIL {case['name']}: expected {case['expect']}, got {describe(reply)}")
        total = len(predict["cases"])
        if right == total:
            return Outcome.passed(f"{right} of {total} known inputs classified right", "\n".join(lines))
        hint = None
        if total > 1 and len(set(map(str, answers))) == 1 and answers[0] is not None:
            hint = (
                f"Every input got the same answer ({answers[0]!r}): the model looks untrained or constant. "
                "Check the training step and that the app loads the trained model."
            )
        return Outcome.failed(f"{right} of {total} known inputs classified right", "\n".join(lines), hint=hint)


@register
class MalformedInputRejected(Check):
    name = "MalformedInputRejected"
    category = "http"
    title = "Malformed input gets a 4xx JSON error, and the service keeps answering"
    hint = (
        "Validate the request before predicting: return a JSON error with status 400 for a body that is not "
        "JSON, a missing 'features' field, the wrong number of values, or values that are not numbers."
    )

    def run(self, ctx) -> Outcome:
        predict = ctx.spec.http["predict"]
        base = ctx.service().base_url
        lines, bad = [], 0
        for case in predict["malformed"]:
            try:
                reply = call(base, case, predict["path"])
            except requests.RequestException as err:
                bad += 1
                lines.append(f"FAIL {case['name']}: no answer ({type(err).__name__})")
                continue
            ok = 400 <= reply.status_code < 500 and json_or_none(reply) is not None
            bad += not ok
            lines.append(f"{'ok  ' if ok else 'FAIL'} {case['name']}: {describe(reply)}")
        try:
            alive = requests.get(base + ctx.spec.ready_path, timeout=TIMEOUT_S).status_code < 500
        except requests.RequestException:
            alive = False
        lines.append(f"{'ok  ' if alive else 'FAIL'} still answering {ctx.spec.ready_path} afterwards")
        if bad == 0 and alive:
            return Outcome.passed(
                f"all {len(predict['malformed'])} malformed requests rejected with a 4xx JSON error", "\n".join(lines)
            )
        what = (
            f"{bad} malformed request(s) not rejected with a 4xx JSON error" if bad else "the service stopped answering"
        )
        return Outcome.failed(what, "\n".join(lines))
