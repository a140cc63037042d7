"""Checks of the service's HTTP API, asked through its published port: the health endpoint, right predictions
for the lab's known inputs, malformed input turned away politely (FastAPI's 422 where the lab asks for it), and
an OpenAPI document that describes the prediction endpoint."""

from __future__ import annotations

import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.http_probe import TIMEOUT_S, call, describe, json_or_none


def send_malformed(ctx: CheckContext, judge) -> tuple[list[str], list[int], bool]:
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


@register
class HealthEndpoint(Check):
    name = "HealthEndpoint"
    category = "http"
    title = "/health answers 200 with JSON"
    hint = 'Return a small JSON object with status 200 from /health, e.g. {"status": "ok"}.'

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
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
        "Validate the request before predicting: answer a body that is not JSON, a missing field or a value "
        "of the wrong type or shape with a JSON error and a 4xx status (400 or 422), never a 500."
    )

    def run(self, ctx: CheckContext) -> Outcome:
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


# --- OpenAPISchemaServed ---------------------------------------------------------------------------


def resolve(doc: dict, node, problems: list[str]):
    """`node`, or what its local "$ref" points at (one level); None (and a problem) when the target is missing."""
    if not (isinstance(node, dict) and "$ref" in node):
        return node
    ref = node["$ref"]
    target = doc
    if not (isinstance(ref, str) and ref.startswith("#/")):
        problems.append(f"the schema refers to {ref!r}, which is not inside the document")
        return None
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not (isinstance(target, dict) and part in target):
            problems.append(f"the schema refers to {ref}, which the document does not define")
            return None
        target = target[part]
    return target


def openapi_problems(doc, path: str, method: str, body_fields: list[str]) -> list[str]:
    """What is wrong with `doc` as an OpenAPI 3 description of `method` `path` with a request body."""
    if not isinstance(doc, dict):
        return ["the answer is not a JSON object"]
    problems = []
    version = doc.get("openapi")
    if not (isinstance(version, str) and version.startswith("3.")):
        problems.append(f'"openapi" is {version!r}, not an OpenAPI 3 version such as "3.1.0"')
    info = doc.get("info")
    if not (isinstance(info, dict) and isinstance(info.get("title"), str) and isinstance(info.get("version"), str)):
        problems.append('"info" needs a "title" and a "version"')
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        return problems + ['there is no "paths" object']
    if path not in paths:
        return problems + [f"{path} is not documented (documented: {', '.join(sorted(paths)) or 'nothing'})"]
    operation = (paths[path] or {}).get(method) if isinstance(paths[path], dict) else None
    if not isinstance(operation, dict):
        return problems + [f"{method.upper()} {path} is not documented"]
    body = resolve(doc, operation.get("requestBody"), problems)
    if not isinstance(body, dict):
        return problems + [f"{method.upper()} {path} documents no request body"]
    content = body.get("content") if isinstance(body.get("content"), dict) else {}
    media = next((v for k, v in content.items() if k.split(";")[0].strip() == "application/json"), None)
    if not isinstance(media, dict) or "schema" not in media:
        return problems + [f"the request body of {method.upper()} {path} has no application/json schema"]
    schema = resolve(doc, media["schema"], problems)
    if schema is None:
        return problems
    documented = set(schema.get("properties") or {}) if isinstance(schema, dict) else set()
    missing = [f for f in body_fields if f not in documented]
    if missing:
        problems.append(
            f"the request body's schema does not describe the field(s) {', '.join(missing)} "
            f"(it describes: {', '.join(sorted(documented)) or 'no fields at all'})"
        )
    return problems


@register
class OpenAPISchemaServed(Check):
    name = "OpenAPISchemaServed"
    category = "http"
    title = "The API describes itself (OpenAPI 3), request body included"
    hint = (
        "Keep FastAPI's generated schema on (do not pass openapi_url=None), and declare the request body as a "
        "pydantic model parameter, e.g. def predict(request: IrisRequest), so the schema documents its fields. "
        "Open /docs in a browser to see what clients see."
    )
    default_params = {"path": "/openapi.json", "method": "post", "body_fields": []}

    def run(self, ctx: CheckContext) -> Outcome:
        path, method = self.params["path"], self.params["method"].lower()
        predict_path = ctx.spec.http["predict"]["path"]
        reply = requests.get(ctx.service().base_url + path, timeout=TIMEOUT_S)
        if reply.status_code != 200:
            return Outcome.failed(
                f"GET {path} gave {describe(reply)}",
                hint=(
                    f"The service does not serve its schema at {path}. FastAPI does by default: remove "
                    "openapi_url=None (and docs_url=None) from FastAPI(...)."
                    if reply.status_code == 404
                    else None
                ),
            )
        problems = openapi_problems(json_or_none(reply), predict_path, method, list(self.params["body_fields"]))
        if problems:
            return Outcome.failed(
                f"{path} does not fully document {method.upper()} {predict_path}", "\n".join(problems)
            )
        doc = reply.json()
        return Outcome.passed(
            f"OpenAPI {doc['openapi']} document with {method.upper()} {predict_path} and its request body",
            evidence=f"documented paths: {', '.join(sorted(doc['paths']))}",
        )


# --- ValidationErrors422 ---------------------------------------------------------------------------


def validation_error_problem(status: int, body, expected: int) -> str | None:
    """Why an answer to a malformed request is not the expected validation error, or None when it is."""
    if status != expected:
        return f"status {status}, not {expected}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list) or not detail:
        return 'the JSON answer has no "detail" list of problems'
    if not all(isinstance(d, dict) and "loc" in d and "msg" in d for d in detail):
        return 'an entry of "detail" lacks "loc" (where) or "msg" (what)'
    return None


@register
class ValidationErrors422(Check):
    name = "ValidationErrors422"
    category = "http"
    title = "Malformed requests get 422 with the problems listed, and the service keeps answering"
    hint = (
        "Let FastAPI validate the body: declare it as a pydantic model and take that model as the endpoint's "
        "parameter. FastAPI then answers every request that does not fit with 422 and "
        '{"detail": [{"loc": [...], "msg": "..."}]}, before your code runs.'
    )
    default_params = {"status": 422}

    def run(self, ctx: CheckContext) -> Outcome:
        predict, expected = ctx.spec.http["predict"], int(self.params["status"])
        lines, wrong_statuses, alive = send_malformed(
            ctx, lambda reply: validation_error_problem(reply.status_code, json_or_none(reply), expected)
        )
        bad = len(wrong_statuses)
        total = len(predict["malformed"])
        if bad == 0 and alive:
            return Outcome.passed(
                f"all {total} malformed requests answered {expected} with the problems listed", "\n".join(lines)
            )
        message = f"{bad} of {total} malformed requests not answered {expected} with a list of problems"
        if not alive:
            message += "; then the service stopped answering"
        hint = None
        if any(status >= 500 for status in wrong_statuses):
            hint = (
                "The service failed (5xx) on bad input: its code used the request before checking it. "
                + self.hint
                + " Refuse what the model cannot use in the pydantic model itself: exactly 4 numbers "
                "(Field(min_length=4, max_length=4)), none of them NaN or Infinity (allow_inf_nan=False)."
            )
        return Outcome.failed(message, "\n".join(lines), hint=hint)
