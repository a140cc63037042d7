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


def send_malformed(ctx, judge) -> tuple[list[str], list[int], bool]:
    """POST each of the spec's malformed cases, then ask the ready path whether the service still answers.

    `judge(reply)` returns what is wrong with a reply, or None. Returns the evidence lines, the statuses
    of the replies judged wrong (0 for no answer at all), and whether the service still answers.
    """
    predict = ctx.spec.http["predict"]
    base = ctx.service().base_url
    lines, wrong = [], []
    for case in predict["malformed"]:
        try:
            reply = call(base, case, predict["path"])
        except requests.RequestException as err:
            wrong.append(0)
            lines.append(f"FAIL {case['name']}: no answer ({type(err).__name__})")
            continue
        problem = judge(reply)
        if problem:
            wrong.append(reply.status_code)
        lines.append(f"{'FAIL' if problem else 'ok  '} {case['name']}: {problem or 'as expected'}")
        lines.append(f"     {describe(reply)}")
    try:
        alive = requests.get(base + ctx.spec.ready_path, timeout=TIMEOUT_S).status_code < 500
    except requests.RequestException:
        alive = False
    lines.append(f"{'ok  ' if alive else 'FAIL'} still answering {ctx.spec.ready_path} afterwards")
    return lines, wrong, alive


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
        def judge(reply):
            if not 400 <= reply.status_code < 500:
                return f"expected a 4xx status, got {reply.status_code}"
            return None if json_or_none(reply) is not None else "the error body is not JSON"

        lines, wrong, alive = send_malformed(ctx, judge)
        if not wrong and alive:
            total = len(ctx.spec.http["predict"]["malformed"])
            return Outcome.passed(f"all {total} malformed requests rejected with a 4xx JSON error", "\n".join(lines))
        what = (
            f"{len(wrong)} malformed request(s) not rejected with a 4xx JSON error"
            if wrong
            else "the service stopped answering"
        )
        return Outcome.failed(what, "\n".join(lines))
