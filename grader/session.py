"""Grading one submission: the context checks draw on, and the loop that runs them.

The context builds the image and starts the service lazily, once, the first time a check asks,
so a lab's spec decides what happens just by listing checks. Whatever happens, everything the
session created is removed at the end (also on timeout and Ctrl-C).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
import traceback
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path

import docker.errors
import requests

from grader import __version__, build_cache, kept_image
from grader.buildkit import BuildRecord, BuildResult
from grader.checks import registry
from grader.checks.base import ERROR, SKIPPED, Check, Outcome
from grader.checks.needs import Service
from grader.compose_file import for_grading, violations
from grader.dockerfile import syntax_directive, without_syntax_directive
from grader.engine import Cancelled, ComposeRun, Engine, compose_config, connect
from grader.engine.client import KEPT_LABEL
from grader.errors import ComposeFileInvalid, EngineUnavailable, GraderError, InvalidSubmission, PrerequisiteFailed
from grader.progress import Progress
from grader.readiness import Waited, wait_until_answers
from grader.result import GradeResult, TestResult, submission_digest
from grader.spec import LabSpec
from grader.stack import Stack

HEALTHCHECK_INTERVAL_NS = 1_000_000_000  # the grader polls health every second instead of the image's interval
SERVICE_JOB = "service"  # the background job that starts the service (GradingContext.start_service_early)


class GradingContext:
    """What checks of one submission share: the submission, its spec, the engine, and lazily built state.

    It is the CheckContext (grader/checks/needs.py) that every check is written against.
    """

    def __init__(self, submission: Path, spec: LabSpec, engine: Engine, progress: Progress, checks=()):
        self.submission = submission
        self.checks = checks
        self.spec = spec
        self.engine = engine
        self.progress = progress
        self.scratch = Path(tempfile.mkdtemp(prefix="grader-"))
        self.timings: dict[str, float] = {}
        self._build: BuildResult | None = None
        self._config: dict | None = None
        self._sizes: dict[str, int] = {}
        self._records: dict[str, BuildRecord] = {}  # image id -> BuildKit's record of the build that made it
        self._kept: str | None = None  # the tag of the image of the lab's dependencies this grade may keep
        self._service: Service | None = None
        self._network = None
        self._stack: Stack | None = None
        self._stack_started: ComposeRun | None = None
        self._stack_images: list[str] = []
        # Work that checks start in the background once the image is built (a second build, say),
        # so that it overlaps with the runtime checks instead of adding to the total.
        # Four at most run side by side: measuring the image's size (a `docker save` stream), starting the
        # service, a check's probe container and a check's side build.
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="grader-background")
        self._size_lock = threading.Lock()
        self._jobs: dict[str, Future] = {}
        self._cancel = threading.Event()

    # --- the image --------------------------------------------------------------------------------
    def build(self) -> BuildResult:
        """The submission's image, built once."""
        if self._build is None:
            self._build = self.build_from(self.copy_of_submission("build"), "image", "Building the image")
            self.timings["build_s"] = round(self._build.seconds, 2)
            if self._build.ok:
                # Every grade reports the image's size: measure it while the service starts and is probed.
                self.in_background("image size", self.image_size)
                for check in self.checks:
                    check.after_build(self)
        return self._build

    def side_build(self, context: Path, tag_suffix: str, stop_when=None, keep: bool = False) -> BuildResult:
        """A check's own build of `context` (a copy), silently: it may run in the background, beside the progress.

        `keep`: the build is of the lab's dependencies (the Dockerfile up to its install step), and its image may
        outlive this grade for the next grade of the lab (grader/kept_image.py).
        """
        if not keep:
            return self.build_from(context, tag_suffix, None, stop_when)
        ref = kept_image.tag(self.spec.id, self.engine.session)
        with kept_image.lock():  # no grade may remove the lab's kept images between this build and its look-up
            built = self.build_from(context, tag_suffix, None, stop_when, keep_as=ref)
        if built.ok:
            self._kept = ref
        return built

    def build_from(
        self, context: Path, tag_suffix: str, title: str | None, stop_when=None, keep_as: str | None = None
    ) -> BuildResult:
        """Build `context`; with no title, silently (a background build must not draw over the progress)."""
        tag = f"grader-{self.spec.id}:{self.engine.session}-{tag_suffix}"
        notes = self.use_reachable_frontend(context / self.spec.dockerfile)
        options = dict(
            cancel=self._cancel, stop_when=stop_when, secrets=self.spec.build_secrets, target=self.spec.build_target
        )
        if keep_as:  # the image outlives this grade: its own tag, and the lab's label instead of the session's
            tag, options["labels"] = keep_as, {KEPT_LABEL: self.spec.id}
        if title is None:
            built = self.engine.build(context, self.spec.dockerfile, tag, self.spec.build_timeout_s, **options)
        else:
            with self.progress.step(title) as step:
                built = self.engine.build(
                    context, self.spec.dockerfile, tag, self.spec.build_timeout_s, on_line=step.update, **options
                )
        built.notes[:0] = notes
        if built.ok and built.record:
            self._records[built.image_id] = built.record
        return built

    def use_reachable_frontend(self, dockerfile: Path) -> list[str]:
        """Build with the engine's built-in Dockerfile frontend when `# syntax=` names one that cannot be had.

        BuildKit pulls the frontend image a `# syntax=` line names before it reads the rest; offline (a
        workshop room, a CI machine with no registry) that fails, though the built-in frontend reads the file
        just as well. Returns a note for the build's evidence when the line was dropped from the grader's copy.
        """
        if dockerfile.is_symlink() or not dockerfile.is_file():
            return []
        text = dockerfile.read_text(errors="replace")
        found = syntax_directive(text)
        if found is None or frontend_available(self.engine, found[1]):
            return []
        dockerfile.write_text(without_syntax_directive(text))
        return [
            f"note: the Dockerfile asks for the frontend image {found[1]} (`# syntax=`), which no registry here "
            "provides; the grader built it with the engine's built-in Dockerfile frontend instead."
        ]

    def copy_of_submission(self, name: str) -> Path:
        """A copy of the submission in the scratch folder, with the files the lab provides itself.

        Every build reads such a copy, so the grader may adapt it (a `# syntax=` line it cannot resolve
        offline) without touching the learner's files.
        """
        copy = self.scratch / name
        shutil.copytree(self.submission, copy, symlinks=True)
        for rel in self.spec.provided:
            official = self.spec.path / rel
            if not (copy / rel).exists() and official.exists():
                if official.is_dir():
                    shutil.copytree(official, copy / rel)
                else:
                    (copy / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(official, copy / rel)
        return copy

    def in_background(self, key: str, job) -> Future:
        """Start `job()` in the background once; later calls with the same key return the same future."""
        if key not in self._jobs:
            self._jobs[key] = self._pool.submit(job)
        return self._jobs[key]

    def image(self) -> str:
        """The built image's id; PrerequisiteFailed when it did not build."""
        built = self.build()
        if not built.ok:
            raise PrerequisiteFailed("skipped: the image did not build (see the build check)")
        return built.image_id

    def image_config(self) -> dict:
        if self._config is None:
            self._config = self.engine.inspect_image(self.image())
        return self._config

    def image_size(self, image_id: str | None = None) -> int:
        """The size of the built image (or of `image_id`) in bytes, measured once (grader/image_size.py)."""
        image_id = image_id or self.image()
        with self._size_lock:  # a check asking while the background measure runs waits for its answer
            if image_id not in self._sizes:
                self._sizes[image_id] = self.engine.image_size(image_id, self._records.get(image_id))
            return self._sizes[image_id]

    def healthcheck(self) -> dict | None:
        """The image's HEALTHCHECK as the engine stores it, or None when it declares none (or NONE)."""
        declared = self.image_config()["Config"].get("Healthcheck") or {}
        test = declared.get("Test")
        return declared if test and test[0] != "NONE" else None

    # --- the running service ----------------------------------------------------------------------
    def start_service(self) -> Service:
        """The service, started once (in the background if a check asked early) and waited for on its ready path."""
        started = self.start_service_early()
        if not started.done():
            with self.progress.step("Starting the service"):
                wait([started])
        return started.result()

    def start_service_early(self) -> Future:
        """Start the service in the background now, so it comes up while the image checks run."""
        return self.in_background(SERVICE_JOB, self._launch_service)

    def _launch_service(self) -> Service:
        image = self.image()
        healthcheck = None
        declared = self.healthcheck()
        if declared:
            # Same command as the image's HEALTHCHECK, only polled more often.
            healthcheck = {
                "test": declared["Test"],
                "interval": HEALTHCHECK_INTERVAL_NS,
                "timeout": declared.get("Timeout"),
                "retries": declared.get("Retries"),
                "start_period": declared.get("StartPeriod"),
                "start_interval": HEALTHCHECK_INTERVAL_NS,  # Engine 25+ probe at this pace while starting
            }
        self._network = self.engine.create_network(self.spec.limits)
        try:
            container = self.engine.start_service(
                image, self.spec.port, self.spec.limits, self._network.name, healthcheck
            )
        except docker.errors.APIError as err:  # e.g. CMD names a program the image does not have
            return Service(None, None, Waited(False, "not started", 0.0, str(err.explanation or err)))
        port = self.engine.host_port(container, self.spec.port)
        base_url = f"http://127.0.0.1:{port}" if port else None
        if base_url:
            ready = wait_until_answers(
                base_url + self.spec.ready_path,
                lambda: self.engine.state(container),
                self.spec.budgets.ready_s,
                stop=self._cancel,
            )
        else:
            ready = Waited(False, "exited", 0.0, "the container stopped before its port was published")
        self.timings["ready_s"] = round(ready.seconds, 2)
        self._service = Service(container, base_url, ready)
        return self._service

    def service_logs(self) -> str:
        """The tail of the service container's log, or '' when none was started."""
        return self.engine.logs_tail(self._service.container) if self._service and self._service.container else ""

    def service(self) -> Service:
        """The running, answering service; PrerequisiteFailed when it did not come up."""
        service = self.start_service()
        if not service.ready.ok:
            raise PrerequisiteFailed("skipped: the service never answered (see the readiness check)")
        return service

    # --- the Compose stack (labs graded as a stack) ---------------------------------------------------
    def start_stack(self) -> tuple[Stack, ComposeRun]:
        """Build and start the submission's stack once; returns it with how `up` went."""
        if self._stack is None:
            compose = self.spec.compose
            folder = self.copy_of_submission("stack")
            for check in self.checks:
                check.before_stack(self, folder)
            config = compose_config(folder, compose.file, project=Stack.project_name(self.engine))
            grading = for_grading(config, self.engine.labels, self.spec.limits)
            self._stack = Stack(self.engine, folder, compose, grading)
            with self.progress.step("Building the stack's images") as step:
                built = self._stack.build(self.spec.build_timeout_s, on_line=step.update)
            self.timings["build_s"] = round(built.seconds, 2)
            if not built.ok:
                self._stack_started = built
            else:
                with self.progress.step("Starting the stack (docker compose up --wait)") as step:
                    self._stack_started = self._stack.up(on_line=step.update)
                self._stack_images = self._stack.image_ids()
                self.timings["ready_s"] = round(self._stack_started.seconds, 2)
        return self._stack, self._stack_started

    def stack(self) -> Stack:
        """The running stack; PrerequisiteFailed when it did not come up."""
        stack, started = self.start_stack()
        if not started.ok:
            raise PrerequisiteFailed("skipped: the stack did not come up (see the stack check)")
        return stack

    def image_summary(self) -> dict:
        """Id, size and layer count of the built image (a stack's first built image); empty if none was built."""
        if self._build and self._build.ok:
            config = self.image_config()
        elif self._stack_images:
            config = self.engine.inspect_image(self._stack_images[0])
        else:
            return {}
        try:
            size_mb = round(self.image_size(config["Id"]) / 1e6, 1)
        except GraderError:
            size_mb = None  # a layer this Python cannot decompress (zstd): the size check says so
        return {"id": config["Id"], "size_mb": size_mb, "layers": len(config["RootFS"].get("Layers", []))}

    def settle_kept_image(self) -> None:
        """Keep this grade's image of the lab's dependencies for the next grade, or remove it (grader/kept_image.py).

        Kept where it helps and costs little: the submission's image built, starts with exactly these layers,
        and is within the lab's size budget."""
        ref, self._kept = self._kept, None
        if ref is None:
            return
        try:
            keep = self._worth_keeping(ref)
        except (docker.errors.DockerException, requests.RequestException, Cancelled):
            keep = False  # gone (a grade beside this one kept the same image under its tag), undecided, or stopping
        try:
            kept_image.settle(self.engine, self.spec.id, ref, keep)
        except (docker.errors.DockerException, requests.RequestException):
            pass  # the engine does not answer: the lab's next grade or `grader clean --cache` removes it

    def _worth_keeping(self, ref: str) -> bool:
        built = self._build
        if built is None or not built.ok or built.image_id not in self._sizes:
            return False
        if self._sizes[built.image_id] > self.spec.budgets.image_size_mb * 1e6:
            return False
        layers = self.engine.inspect_image(ref)["RootFS"]["Layers"]
        return self.image_config()["RootFS"]["Layers"][: len(layers)] == layers

    def close(self) -> dict[str, int]:
        self._cancel.set()  # a background build still running is stopped before its image is cleaned up
        self._pool.shutdown(wait=True)
        self.settle_kept_image()
        if self._stack is not None:
            self._stack.down(volumes=True)  # Compose's own order; the label sweep below catches anything left
        shutil.rmtree(self.scratch, ignore_errors=True)
        return self.engine.remove_session()


_FRONTENDS: dict[str, bool] = {}


def frontend_available(engine: Engine, image: str) -> bool:
    """Whether a Dockerfile frontend image is on the engine or can be pulled (asked once per image)."""
    if image not in _FRONTENDS:
        _FRONTENDS[image] = engine.image_labels(image) is not None or engine.pull(image)[0]
    return _FRONTENDS[image]


def run_check(check: Check, ctx: GradingContext, failures: int | None = None) -> TestResult:
    """Run one check; whatever goes wrong becomes its result, never a crash of the whole grade.

    `failures`: how often this learner failed the check before (picks the tier of a tiered hint)."""
    started = time.monotonic()
    try:
        outcome = check.run(ctx)
    except PrerequisiteFailed as why:
        outcome = Outcome.skipped(why.message)
    except requests.RequestException as err:
        # The learner's service stopped answering mid-check: their failure, not the grader's.
        logs = ctx.service_logs()
        outcome = Outcome.failed(
            f"the service stopped answering: {type(err).__name__}",
            evidence=logs,
            hint="The service crashed or hung while handling a request: read its log above.",
        )
    except docker.errors.DockerException as err:
        outcome = Outcome(ERROR, f"the engine failed during this check: {err}", traceback.format_exc(limit=3))
    except GraderError as err:
        outcome = Outcome(ERROR, err.message, hint=err.hint)
    except Exception as err:  # a grader bug: reported as an error of this check, the others still run
        outcome = Outcome(ERROR, f"grader error: {type(err).__name__}: {err}", traceback.format_exc(limit=5))
    spec = check.spec
    passed = outcome.status == "passed"
    return TestResult(
        id=spec.check,
        name=check.title,
        category=check.category,
        status=outcome.status,
        score=spec.points if passed else 0,
        max_score=spec.points if outcome.counted else 0,
        visibility=spec.visibility,
        message=outcome.message,
        hint="" if passed else check.hint_for(outcome.hint, failures),
        evidence=outcome.evidence,
        duration_ms=int((time.monotonic() - started) * 1000),
    )


def grade(
    submission: Path,
    spec: LabSpec,
    *,
    learner: str = "",
    progress: Progress | None = None,
    engine: Engine | None = None,
    timeout_s: float = 1800,
    failures_before: dict[str, int] | None = None,
    deadline: float | None = None,
) -> GradeResult:
    """Grade one submission against `spec` and return the result object (never raises for the learner's faults).

    `failures_before` (check id -> earlier failures of this learner) gives tiered hints their tier; without
    it a failed check shows its most complete hint. `deadline` (a time.monotonic() value) is when the time
    limit runs out, for a caller whose clock started earlier (a batch: its engine stops work at that moment,
    and the checks after it must then be reported as past the limit); by default `timeout_s` from now.
    """
    progress = progress or Progress(quiet=True)
    submission = Path(submission).resolve()
    result = GradeResult.start(spec, submission, learner, __version__)
    started = time.monotonic()
    try:
        checks = [registry.get(c.check)(c) for c in spec.checks]
        _validate(submission, spec)
        result.submission["sha256"] = submission_digest(submission)
        engine = engine or connect()
    except InvalidSubmission as err:
        return result.finish("invalid", str(err), started)
    except (EngineUnavailable, GraderError) as err:
        return result.finish("error", str(err), started)

    cache_before = build_cache.snapshot(engine)
    ctx = GradingContext(submission, spec, engine, progress, checks)
    try:
        for check in checks:
            if time.monotonic() >= (deadline if deadline is not None else started + timeout_s):
                result.tests.append(TestResult.not_run(check, SKIPPED, f"skipped: grading ran past {timeout_s:.0f}s"))
                result.status = "timeout"
                continue
            progress.checking(check.title)
            failures = None if failures_before is None else failures_before.get(check.spec.check, 0)
            result.tests.append(run_check(check, ctx, failures))
        result.image = ctx.image_summary()
    finally:
        with progress.step("Cleaning up"):
            ctx.close()
            build_cache.record_and_bound(engine, cache_before)
    result.timings.update(ctx.timings)
    return result.finish(result.status if result.status != "pending" else "graded", "", started)


def _validate(submission: Path, spec: LabSpec) -> None:
    if not submission.is_dir():
        raise InvalidSubmission(f"{submission} is not a folder", hint="pass the folder that holds your Dockerfile")
    _refuse_names_buildkit_cannot_send(submission)
    if spec.compose:
        _validate_compose(submission, spec)
        return
    if not (submission / spec.dockerfile).is_file():
        raise InvalidSubmission(
            f"no {spec.dockerfile} in {submission}",
            hint=f"lab {spec.id} expects a {spec.dockerfile} at the top of the submission folder",
        )


def _refuse_names_buildkit_cannot_send(submission: Path) -> None:
    """BuildKit sends file names as protobuf strings, which must be UTF-8: a build of a folder holding any other
    name fails with "string field contains invalid UTF-8" (`docker build` fails the same way for the learner)."""
    bad = []
    for path in submission.rglob("*"):
        name = os.fsencode(path.relative_to(submission))
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(name.decode("utf-8", errors="backslashreplace"))
    if bad:
        shown = ", ".join(sorted(bad)[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise InvalidSubmission(
            f"{len(bad)} file name(s) in the submission are not valid UTF-8: {shown}",
            hint="rename them (or delete them): Docker's builder cannot send such names, so `docker build` "
            "fails on this folder too. Archives made on other systems sometimes carry names in another encoding.",
        )


def _validate_compose(submission: Path, spec: LabSpec) -> None:
    """Refuse, before anything starts, a Compose file that could reach outside its containers."""
    if not (submission / spec.compose.file).is_file():
        raise InvalidSubmission(
            f"no {spec.compose.file} in {submission}",
            hint=f"lab {spec.id} expects a {spec.compose.file} at the top of the submission folder",
        )
    refused = violations(compose_config(submission, spec.compose.file), submission, spec.compose.allow_gpu)
    if refused:
        raise ComposeFileInvalid(
            "the grader refuses to run this Compose file (nothing was started):\n"
            + "\n".join(f"  - {r}" for r in refused),
            hint="a model service needs none of these: remove them. The grader runs learners' stacks on a shared "
            "machine, so nothing may reach the host's devices, namespaces, files or Docker socket.",
        )
