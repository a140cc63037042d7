"""What a check may ask of the grading of one submission: the interface checks are written against.

The grading session (grader/session.py) implements it; tests hand a check a small stand-in instead. A
check sees only what is named here, so checks never depend on how the session builds, starts or cleans up.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from grader.buildkit import BuildResult, BuildStep
from grader.engine import ComposeRun
from grader.engine.views import ContainerView
from grader.progress import Progress
from grader.readiness import Waited
from grader.spec import LabSpec, Limits
from grader.stack import Stack


@dataclass
class Service:
    """A started service container and how its start went."""

    container: Any  # the SDK's container object: handed back to the engine, read through ContainerEngine.view
    base_url: str | None
    ready: Waited


class ContainerEngine(Protocol):
    """The engine operations a check uses (grader.engine.Engine provides them)."""

    session: str

    def info(self) -> dict: ...
    def version(self) -> dict: ...
    def inspect_image(self, image_id: str) -> dict: ...
    def history(self, image_id: str) -> list[dict]: ...
    def run_once(self, image: str, entrypoint: list[str], timeout_s: float = 30) -> tuple[int, str]: ...
    def archive(self, image: str, path: str) -> AbstractContextManager[tarfile.TarFile | None]: ...
    def create_network(self, limits: Limits) -> Any: ...
    def start_service(
        self,
        image: str,
        port: int,
        limits: Limits,
        network: str,
        healthcheck: dict | None,
        name: str = "service",
        extra: dict | None = None,
    ) -> Any: ...
    def host_port(self, container, port: int) -> int | None: ...
    def view(self, container) -> ContainerView: ...
    def state(self, container) -> dict: ...
    def logs_tail(self, container, lines: int = 25) -> str: ...
    def exec(self, container, cmd: list[str]) -> tuple[int, str]: ...
    def events(self, since: float, filters: dict) -> list[dict]: ...
    def network(self, name: str) -> dict: ...
    def project_objects(self, project: str) -> dict[str, int]: ...


class CheckContext(Protocol):
    """The submission, its spec, and what was built and started from it, each made once when first asked for.

    A method that needs something that failed (the image did not build, the service never answered) raises
    grader.errors.PrerequisiteFailed, and the check is reported as skipped.
    """

    spec: LabSpec
    submission: Path  # the learner's folder: read it, never change it
    scratch: Path  # a folder of this grading's own, removed afterwards
    progress: Progress
    timings: dict[str, float]  # seconds a check measured, reported with the grade
    engine: ContainerEngine

    # --- the image -------------------------------------------------------------------------------------
    def build(self) -> BuildResult: ...
    def image(self) -> str: ...
    def image_config(self) -> dict: ...
    def image_size(self, image_id: str | None = None) -> int: ...
    def healthcheck(self) -> dict | None: ...
    def copy_of_submission(self, name: str) -> Path: ...
    def side_build(
        self,
        context: Path,
        tag_suffix: str,
        stop_when: Callable[[BuildStep], bool] | None = None,
        keep: bool = False,
    ) -> BuildResult:
        """Build `context` (a copy) quietly into an image of this grading; the result says how it went.

        `keep`: a build of the lab's dependencies alone, whose image the next grade of the lab may reuse."""
        ...

    def in_background(self, key: str, job: Callable[[], Any]) -> Future:
        """Start `job()` once, beside the other checks; the same key gives the same future."""
        ...

    # --- the running service ---------------------------------------------------------------------------
    def start_service(self) -> Service: ...
    def start_service_early(self) -> Future:
        """Start the service in the background now (from after_build), so it comes up beside other checks."""
        ...

    def service(self) -> Service: ...
    def service_logs(self) -> str: ...

    # --- the Compose stack -----------------------------------------------------------------------------
    def start_stack(self) -> tuple[Stack, ComposeRun]: ...
    def stack(self) -> Stack: ...
