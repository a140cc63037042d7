"""Checks of a web API's contract and of what its final image ships.

- NoBuildToolsInImage: the image has no compilers, build or download tools (a multi-stage build leaves
  them in the builder stage).
- ImageSizeRelativeBudget: the image is at most a given fraction of the size of the lab's naive,
  single-stage build of the same code, which the grader builds next to it.
- OpenAPISchemaServed: the service describes itself with an OpenAPI 3 document that documents the
  lab's prediction endpoint and its request body.
- ValidationErrors422: malformed requests get exactly 422 with FastAPI's error shape (`detail`, a list
  of problems), and the service keeps answering.
- NoDevServerFlags: the running service was not started with development flags such as --reload.
"""

from __future__ import annotations

import docker.errors
import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.http import TIMEOUT_S, describe, json_or_none, send_malformed

# --- NoBuildToolsInImage ----------------------------------------------------------------------------

# Besides the image's own PATH, the folders where Debian and the official images put programs:
# a tool does not stop being there because PATH leaves its folder out.
STANDARD_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
PROBE_DONE = "probe done"

# Run as `sh -c PROBE_SH probe TOOL...`: prints "found TOOL PATH" for each tool that is an executable
# file in a folder of PATH or of STANDARD_DIRS (following links, so a dangling link does not count).
PROBE_SH = (
    f'dirs="$PATH:{":".join(STANDARD_DIRS)}"\n'
    'for tool in "$@"; do\n'
    "  IFS=:\n"
    "  for dir in $dirs; do\n"
    '    if [ -n "$dir" ] && [ -f "$dir/$tool" ] && [ -x "$dir/$tool" ]; then\n'
    '      echo "found $tool $dir/$tool"; break\n'
    "    fi\n"
    "  done\n"
    "  unset IFS\n"
    "done\n"
    f'echo "{PROBE_DONE}"\n'
)

# The same probe in Python, for an image with no shell: `python3 -c PROBE_PY TOOL...`.
PROBE_PY = (
    "import os, sys\n"
    f"dirs = os.environ.get('PATH', '').split(os.pathsep) + {list(STANDARD_DIRS)!r}\n"
    "for tool in sys.argv[1:]:\n"
    "    for d in filter(None, dirs):\n"
    "        p = os.path.join(d, tool)\n"
    "        if os.path.isfile(p) and os.access(p, os.X_OK):\n"
    "            print('found', tool, p)\n"
    "            break\n"
    f"print({PROBE_DONE!r})\n"
)

DOWNLOAD_TOOLS = {"curl", "wget"}


def probe_commands(tools: list[str]) -> list[list[str]]:
    """The probe commands to try in turn: with the shell, else with Python."""
    return [
        ["sh", "-c", PROBE_SH, "probe", *tools],
        ["python3", "-c", PROBE_PY, *tools],
        ["python", "-c", PROBE_PY, *tools],
    ]


def found_tools(output: str) -> dict[str, str] | None:
    """{tool: path} from a probe's output, or None when the probe did not run to its end."""
    lines = output.splitlines()
    if PROBE_DONE not in (line.strip() for line in lines):
        return None
    found = {}
    for line in lines:
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] == "found":
            found.setdefault(parts[1], parts[2])
    return found


@register
class NoBuildToolsInImage(Check):
    name = "NoBuildToolsInImage"
    category = "security"
    title = "No compilers or build tools in the final image"
    hint = (
        "Use a multi-stage build. Install (and compile) the dependencies in a first stage that has the tools, "
        "e.g. FROM python:3.11 AS builder with RUN python -m venv /opt/venv && /opt/venv/bin/pip install ..., "
        "then start the final stage FROM python:3.11-slim and copy only the result: "
        "COPY --from=builder /opt/venv /opt/venv. The compiler stays behind in the builder stage."
    )
    default_params = {"tools": ["gcc", "cc", "g++", "make", "git", "curl", "wget"]}

    def run(self, ctx) -> Outcome:
        image, tools = ctx.image(), list(self.params["tools"])
        attempts = []
        for command in probe_commands(tools):
            try:
                code, output = ctx.engine.run_once(image, command)
            except docker.errors.APIError as err:  # the image has no such program: try the next probe
                attempts.append(f"{command[0]}: {err.explanation or err}")
                continue
            found = found_tools(output)
            if found is None:
                attempts.append(f"{command[0]} (exit {code}): {output[-300:]}")
                continue
            return self.verdict(tools, found, command[0])
        return Outcome.passed(
            "the image has neither a shell nor Python to run the probe with, so no build tool can run in it either",
            evidence="\n".join(attempts),
        )

    @staticmethod
    def verdict(tools: list[str], found: dict[str, str], probe: str) -> Outcome:
        if not found:
            return Outcome.passed(f"none of {', '.join(tools)} is in the image (looked with {probe})")
        evidence = "\n".join(f"{tool}: {path}" for tool, path in found.items())
        message = f"the image ships {', '.join(found)}"
        if set(found) <= DOWNLOAD_TOOLS:
            return Outcome.failed(
                message,
                evidence,
                hint=(
                    "Download tools in a serving image help whoever breaks in fetch their own tools. If you installed "
                    "curl or wget for the HEALTHCHECK, use Python instead: HEALTHCHECK CMD "
                    '["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:PORT/health\', '
                    'timeout=2)"]. If you need them to build, do that in a builder stage.'
                ),
            )
        return Outcome.failed(message + ": it was built on (or copied from) an image made for building", evidence)


# --- ImageSizeRelativeBudget -----------------------------------------------------------------------

NAIVE_BUILD = "naive single-stage build"


def size_ratio_outcome(size: int, naive_size: int, max_ratio: float, naive_name: str) -> Outcome:
    """Pass when `size` is at most `max_ratio` times `naive_size` (both in bytes)."""
    ratio, mine, naive = size / naive_size, f"{size / 1e6:.0f} MB", f"{naive_size / 1e6:.0f} MB"
    sizes = f"your image {mine}, {naive_name} {naive}: ratio {ratio:.2f} (at most {max_ratio:.2f})"
    if ratio <= max_ratio:
        return Outcome.passed(
            f"{mine}, {ratio:.0%} of the naive build's {naive} (at most {max_ratio:.0%})",
            evidence=sizes,
        )
    if ratio >= 1:
        return Outcome.failed(
            f"your image is no smaller than the naive single-stage build ({ratio:.0%} of its size)",
            sizes,
            hint=(
                "Your final image carries everything the naive build does (or more). Start the final stage FROM "
                "python:3.11-slim and copy only what the service needs from the builder, e.g. "
                "COPY --from=builder /opt/venv /opt/venv, never the builder's whole filesystem "
                "(COPY --from=builder / /)."
            ),
        )
    return Outcome.failed(f"your image is {ratio:.0%} of the naive build's size, over {max_ratio:.0%}", sizes)


@register
class ImageSizeRelativeBudget(Check):
    name = "ImageSizeRelativeBudget"
    category = "image"
    title = "Image much smaller than the naive single-stage build"
    hint = (
        "Build the dependencies in a builder stage and start the final stage FROM python:3.11-slim, copying only "
        "the installed packages (COPY --from=builder /opt/venv /opt/venv). Keep pip's cache out (--no-cache-dir) "
        "and see which layer is big with `docker history IMAGE`."
    )
    default_params = {"naive_dockerfile": "Dockerfile.naive", "max_ratio": 0.6}

    def after_build(self, ctx) -> None:
        # The naive build needs nothing from the checks that follow: it runs while they do.
        ctx.in_background(NAIVE_BUILD, lambda: self.build_naive(ctx))

    def build_naive(self, ctx):
        """Build the lab's naive Dockerfile on a copy of the submission; an Outcome if that cannot start."""
        name = self.params["naive_dockerfile"]
        copy = ctx.copy_of_submission("naive")
        # The lab's own copy when there is one, so that editing the file in a submission changes nothing.
        official = ctx.spec.path / name
        source = official if official.is_file() else copy / name
        if not source.is_file():
            return Outcome.failed(
                f"{name} is missing, so the grader has nothing to compare your image with",
                hint=f"Keep {name} as the lab hands it out, next to your Dockerfile.",
            )
        (copy / ctx.spec.dockerfile).write_text(source.read_text())
        return ctx.build_from(copy, "naive", title=None)

    def run(self, ctx) -> Outcome:
        size = ctx.image_size()
        name = self.params["naive_dockerfile"]
        with ctx.progress.step(f"Building {name} to compare sizes"):
            naive = ctx.in_background(NAIVE_BUILD, lambda: self.build_naive(ctx)).result()
        if isinstance(naive, Outcome):
            return naive
        ctx.timings["naive_build_s"] = round(naive.seconds, 2)
        if not naive.ok:
            return Outcome.failed(
                f"the grader could not build {name} from your folder to compare sizes: {naive.error}",
                evidence=naive.log_tail(),
                hint=(
                    f"{name} builds the same app/ folder in a single stage: keep app/requirements.txt and the "
                    f"app installable that way, and {name} as handed out."
                ),
            )
        naive_size = ctx.image_size(naive.image_id)
        return size_ratio_outcome(size, naive_size, float(self.params["max_ratio"]), name)


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

    def run(self, ctx) -> Outcome:
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

    def run(self, ctx) -> Outcome:
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


# --- NoDevServerFlags ------------------------------------------------------------------------------

# Prints each process's command line, its arguments separated by NUL bytes, one process a line.
LIST_PROCESSES = 'for f in /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done'


def command_lines(text: str) -> list[list[str]]:
    """The argument lists in LIST_PROCESSES output (NUL-separated arguments, one process a line)."""
    found = []
    for line in text.splitlines():
        args = [a for a in line.split("\0") if a]
        probe = args == ["sh", "-c", LIST_PROCESSES] or (len(args) == 2 and args[0] == "cat")
        if args and not probe:
            found.append(args)
    return found


def dev_flags(commands: list[list[str]], forbidden: list[str]) -> list[tuple[str, list[str]]]:
    """(flag, command) for each forbidden flag (`--reload`, or `--reload=...`) in a command line."""
    hits = []
    for args in commands:
        for arg in args:
            for flag in forbidden:
                if arg == flag or arg.startswith(flag + "="):
                    hits.append((flag, args))
    return hits


def running_commands(ctx, service) -> tuple[list[list[str]], str]:
    """The command lines of the service container's processes, and where they were read from.

    Without a shell in the image the processes cannot be listed; then the command the image declares
    (ENTRYPOINT + CMD) stands in for them.
    """
    try:
        code, text = ctx.engine.exec(service.container, ["sh", "-c", LIST_PROCESSES])
    except docker.errors.APIError:  # no shell in the image
        code, text = 1, ""
    commands = command_lines(text) if code == 0 else []
    if commands:
        return commands, "the running container's processes"
    config = ctx.image_config()["Config"]
    return [(config.get("Entrypoint") or []) + (config.get("Cmd") or [])], "the image's ENTRYPOINT and CMD"


@register
class NoDevServerFlags(Check):
    name = "NoDevServerFlags"
    category = "runtime"
    title = "The server runs without development flags (--reload, --debug)"
    hint = (
        "Remove --reload from the server command: it watches the code and restarts the server when a file "
        "changes, which is for your laptop. In an image the code never changes; the watcher only costs CPU "
        "and memory, runs your app in a second process, and a restart drops requests. "
        'Write e.g. CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"].'
    )
    default_params = {"forbidden": ["--reload", "--debug"]}

    def run(self, ctx) -> Outcome:
        service = ctx.service()
        commands, where = running_commands(ctx, service)
        hits = dev_flags(commands, list(self.params["forbidden"]))
        shown = "\n".join(" ".join(args) for args in commands)
        if hits:
            flags = sorted({flag for flag, _ in hits})
            return Outcome.failed(f"the server runs with {', '.join(flags)} ({where})", evidence=shown)
        return Outcome.passed(f"no {', '.join(self.params['forbidden'])} in {where}", evidence=shown)
