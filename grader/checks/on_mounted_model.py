"""Checks of containers started with a model mounted (or a broken one, or none): predictions come from the
mounted model, the service reports which model it serves, and an unusable model stops the container at once.

(That the image holds no model of its own is NoModelInImage's question, in on_image_files.)

Every check here starts its own containers of the image, each with a model file mounted read-only
(or none), since the lab's main service has no model to serve. The model files are the lab's
official ones (`models` params, relative to the lab's folder), never the submission's: a learner
cannot make a check pass by editing them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import docker.errors
import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import SpecError
from grader.http_probe import TIMEOUT_S, describe, json_or_none
from grader.readiness import wait_until_answers

VARIABLE = "the environment variable the app reads its model's path from, e.g. MODEL_PATH"
GARBAGE = bytes(range(256)) * 8  # not a pickle, not a zip: what a truncated download or a wrong file looks like


# --- pure helpers ---------------------------------------------------------------------------------
def dig(data, dotted: str):
    """data["a"]["b"] for "a.b"; None when a level is missing or not an object."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def official_models(ctx: CheckContext, names: list[str]) -> list[Path]:
    """The lab's own model files named in params (relative to the lab's folder)."""
    paths = [ctx.spec.path / name for name in names]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SpecError(f"the lab's model file(s) {missing} do not exist")
    return paths


# --- containers with a model ----------------------------------------------------------------------
def staged(ctx: CheckContext, source: Path | None, name: str, data: bytes | None = None) -> Path:
    """A world-readable copy of `source` (or `data`) in the scratch folder, for the container's user."""
    folder = ctx.scratch / "models"
    folder.mkdir(exist_ok=True)
    os.chmod(folder, 0o755)
    target = folder / name
    if data is not None:
        target.write_bytes(data)
    else:
        shutil.copyfile(source, target)
    os.chmod(target, 0o644)
    return target


@contextmanager
def model_container(ctx: CheckContext, name: str, variable: str, model_path: str, host_file: Path | None):
    """A container of the image with `variable`=model_path and `host_file` (if any) mounted there read-only.

    Yields (container, base_url or None); the container and its network are removed afterwards.
    """
    network = ctx.engine.create_network(ctx.spec.limits)
    extra = {"environment": {variable: model_path}}
    if host_file is not None:
        extra["volumes"] = {str(host_file): {"bind": model_path, "mode": "ro"}}
    container = None
    try:
        container = ctx.engine.start_service(
            ctx.image(), ctx.spec.port, ctx.spec.limits, network.name, None, name=name, extra=extra
        )
        port = ctx.engine.host_port(container, ctx.spec.port)
        yield container, (f"http://127.0.0.1:{port}" if port else None)
    finally:
        if container is not None:
            container.remove(force=True)
        network.remove()


def served(ctx: CheckContext, container, base_url: str | None) -> str | None:
    """None when the container answers on its ready path in time, else why not."""
    if base_url is None:
        return "the container stopped before its port was published"
    waited = wait_until_answers(
        base_url + ctx.spec.ready_path, lambda: ctx.engine.state(container), ctx.spec.budgets.ready_s
    )
    return None if waited.ok else f"it never answered {ctx.spec.ready_path} ({waited.reason})"


class MountedModelCheck(Check):
    """Starts one container per official model, the model mounted at `mount_at`, and asks each one."""

    required_params = {
        "variable": VARIABLE,
        "mount_at": "where the model file is mounted in the container, e.g. /models/model.joblib",
        "models": "the lab's own model files (at least two, relative to the lab's folder), one container each",
    }

    def __init__(self, spec):
        super().__init__(spec)
        if len(self.params["models"]) < 2:
            raise SpecError(f"check {self.name}: `models` must name at least two different model files")

    def run(self, ctx: CheckContext) -> Outcome:
        ctx.image()
        lines, ok = [], True
        variable, mount_at = self.params["variable"], self.params["mount_at"]
        for i, path in enumerate(official_models(ctx, self.params["models"])):
            host_file = staged(ctx, path, f"model-{i}{path.suffix}")
            try:
                with model_container(ctx, f"model-{i}", variable, mount_at, host_file) as (container, base):
                    why = served(ctx, container, base)
                    if why:
                        return Outcome.failed(
                            f"with {path.name} mounted at {self.params['mount_at']}, {why}",
                            evidence=ctx.engine.logs_tail(container),
                        )
                    good, line = self.ask(ctx, base, i, path)
            except docker.errors.APIError as err:
                return Outcome.failed(f"the engine could not start the container: {err.explanation or err}")
            ok &= good
            lines.append(line)
        return self.verdict(ok, lines)

    def ask(self, ctx: CheckContext, base: str, index: int, path: Path) -> tuple[bool, str]:
        raise NotImplementedError

    def verdict(self, ok: bool, lines: list[str]) -> Outcome:
        raise NotImplementedError


# --- MountedModelIsUsed -----------------------------------------------------------------------------
@register
class MountedModelIsUsed(MountedModelCheck):
    name = "MountedModelIsUsed"
    category = "runtime"
    title = "Predictions come from the mounted model"
    hint = (
        "Read the model from the path in the MODEL_PATH environment variable "
        '(MODEL_PATH = os.environ.get("MODEL_PATH", "/models/model.joblib")) and do not train or copy a '
        'model into the image: docker run -v "$PWD/models/v2.joblib:/models/model.joblib:ro" must serve v2.'
    )
    required_params = {
        **MountedModelCheck.required_params,
        "probe": "the request asked of each container: {path, body, field (dotted), expect: one answer per model}",
    }

    def __init__(self, spec):
        super().__init__(spec)
        if len(self.params["probe"].get("expect", [])) != len(self.params["models"]):
            raise SpecError(f"check {self.name}: probe.expect needs one answer per model")

    def ask(self, ctx, base, index, path):
        probe = self.params["probe"]
        reply = requests.post(base + probe["path"], json=probe["body"], timeout=TIMEOUT_S)
        got = dig(json_or_none(reply), probe["field"])
        want = probe["expect"][index]
        shown = repr(got) if reply.status_code == 200 else describe(reply)
        mark = "ok" if got == want else "WRONG"
        return (
            got == want and reply.status_code == 200,
            f"{path.name}: {probe['field']} {shown}, expected {want!r} [{mark}]",
        )

    def verdict(self, ok, lines):
        if ok:
            return Outcome.passed("each mounted model gave its own prediction", evidence="\n".join(lines))
        return Outcome.failed(
            "the prediction does not follow the mounted model: the container serves another model",
            evidence="\n".join(lines),
        )


# --- HealthReportsModelVersion ----------------------------------------------------------------------
@register
class HealthReportsModelVersion(MountedModelCheck):
    name = "HealthReportsModelVersion"
    category = "http"
    title = "/health reports the mounted model's version"
    hint = (
        "Report the loaded model in /health: its version from the bundle and the sha256 of the file, e.g. "
        '{"status": "ok", "model": {"version": "1.0.0", "sha256": "..."}}. Without them nobody can tell '
        "which model answered a request."
    )
    # sha256_field: where the sha256 of the model file must appear ("" to not ask for it).
    default_params = {"sha256_field": ""}
    required_params = {
        **MountedModelCheck.required_params,
        "field": "where the health answer holds the model's version (dotted, e.g. model.version)",
        "versions": "the version each of the lab's models reports, in the order of `models`",
    }

    def __init__(self, spec):
        super().__init__(spec)
        if len(self.params["versions"]) != len(self.params["models"]):
            raise SpecError(f"check {self.name}: `versions` needs one version per model")

    def ask(self, ctx, base, index, path):
        health = ctx.spec.http.get("health", {}).get("path", ctx.spec.ready_path)
        reply = requests.get(base + health, timeout=TIMEOUT_S)
        body = json_or_none(reply)
        got, want = dig(body, self.params["field"]), self.params["versions"][index]
        good = reply.status_code == 200 and got == want
        line = f"{path.name}: {self.params['field']} {got!r}, expected {want!r}"
        if self.params["sha256_field"]:
            digest, expected = dig(body, self.params["sha256_field"]), sha256_of(path)
            good &= digest == expected
            line += f"; {self.params['sha256_field']} {'matches' if digest == expected else repr(digest)}"
        return good, line + (" [ok]" if good else " [WRONG]")

    def verdict(self, ok, lines):
        if ok:
            return Outcome.passed("/health named the version of each mounted model", evidence="\n".join(lines))
        return Outcome.failed("/health does not report the mounted model's version", evidence="\n".join(lines))


# --- BadModelFailsFast ------------------------------------------------------------------------------
def wait_for_exit(ctx: CheckContext, container, timeout_s: float) -> dict:
    """The container's state once it has exited, or when `timeout_s` has passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = ctx.engine.state(container)
        if not state.get("Running") or time.monotonic() > deadline:
            return state
        time.sleep(0.25)


def what_it_answers(ctx: CheckContext, base: str | None) -> str:
    """What a container that kept running says on its ready path (it should have stopped)."""
    if base is None:
        return "its port is not published"
    try:
        reply = requests.get(base + ctx.spec.ready_path, timeout=3)
    except requests.RequestException as err:
        return f"{ctx.spec.ready_path} does not answer ({type(err).__name__}): it hangs"
    return f"{ctx.spec.ready_path} answered {describe(reply)}"


@register
class BadModelFailsFast(Check):
    name = "BadModelFailsFast"
    category = "runtime"
    title = "A missing or corrupt model stops the container at once"
    hint = (
        "Load the model at start-up, not at the first request, and when it fails stop the process with a "
        'message naming the file: sys.exit(f"could not load the model from {path}: {exc}"). With gunicorn, '
        "--preload loads the app in the main process, so the whole server stops. Never fall back to "
        "training, never wait for the file: the platform restarts and reports a container that exits."
    )
    default_params = {"timeout_s": 20}
    required_params = {
        "mount_at": "where the model file is mounted in the container, e.g. /models/model.joblib",
        "variable": VARIABLE,
        "missing_path": "a model path where no file is, e.g. /models/missing.joblib",
    }

    def run(self, ctx: CheckContext) -> Outcome:
        ctx.image()
        corrupt = staged(ctx, None, "corrupt.joblib", data=GARBAGE)
        variable = self.params["variable"]
        cases = [
            ("missing", f"{variable}={self.params['missing_path']}, no file there", self.params["missing_path"], None),
            ("corrupt", f"garbage bytes mounted at {self.params['mount_at']}", self.params["mount_at"], corrupt),
        ]
        lines, failures = [], []
        for key, label, path, host_file in cases:
            try:
                with model_container(ctx, f"bad-{key}", variable, path, host_file) as (container, base):
                    started = time.monotonic()
                    state = wait_for_exit(ctx, container, self.params["timeout_s"])
                    seconds = time.monotonic() - started
                    logs = ctx.engine.logs_tail(container, 200)
                    if state.get("Running"):
                        failures.append(key)
                        lines.append(
                            f"{label}: still running after {self.params['timeout_s']}s; "
                            f"{what_it_answers(ctx, base)}\n{ctx.engine.logs_tail(container, 8)}"
                        )
                        continue
            except docker.errors.APIError as err:
                return Outcome.failed(f"the engine could not start the container: {err.explanation or err}")
            code = state.get("ExitCode")
            named = path in logs
            last = "\n".join(logs.splitlines()[-3:])
            if code == 0:
                failures.append(key)
                lines.append(f"{label}: exited with code 0 (a success, to the platform)\n{last}")
            elif not named:
                failures.append(key)
                lines.append(
                    f"{label}: exited with code {code} in {seconds:.1f}s, but its log never names {path}\n{last}"
                )
            else:
                lines.append(f"{label}: exited with code {code} in {seconds:.1f}s, naming the file [ok]\n{last}")
        if failures:
            return Outcome.failed(
                f"with a {' and a '.join(failures)} model the container did not stop with a clear error",
                evidence="\n\n".join(lines),
            )
        return Outcome.passed(
            "a missing and a corrupt model each stopped the container with an error naming the file",
            evidence="\n\n".join(lines),
        )
