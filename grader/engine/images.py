"""Images: building one with BuildKit, and what the engine knows of one (labels, history, size)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import docker.errors

from grader import build_limits, buildkit, image_size
from grader.buildkit import BuildResult, BuildStep
from grader.engine.client import Connection


class Images(Connection):
    """Building images, and reading what the engine knows of one."""

    def image_labels(self, ref: str) -> dict[str, str] | None:
        """The labels of a local image, or None when the image is not present."""
        try:
            return self.client.images.get(ref).labels or {}
        except docker.errors.ImageNotFound:
            return None

    def pull(self, ref: str) -> tuple[bool, str]:
        try:
            self.client.images.pull(ref)
            return True, ""
        except docker.errors.APIError as err:
            return False, str(err.explanation or err)

    def inspect_image(self, image_id: str) -> dict:
        self._raise_if_stopped()
        return self.client.api.inspect_image(image_id)

    def image_size(self, ref: str, record: buildkit.BuildRecord | None = None) -> int:
        """The one size of an image every check and report uses: its layers as uncompressed tars, in bytes.

        The same on both image stores (grader/image_size.py says why `docker image inspect`'s Size is not).
        `record` is the BuildKit record of the build that made the image, where new layers can be read alone.
        """
        return image_size.image_total(self.client, ref, record)

    def history(self, image_id: str) -> list[dict]:
        self._raise_if_stopped()
        return self.client.api.history(image_id)

    def build(
        self,
        context: Path,
        dockerfile: str,
        tag: str,
        timeout_s: float,
        on_line: Callable[[str], None] | None = None,
        cancel: threading.Event | None = None,
        stop_when: Callable[[BuildStep], bool] | None = None,
        secrets: dict[str, str] | None = None,
        target: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> BuildResult:
        """Build `context` with BuildKit (grader/buildkit.py) into this engine's image store as `tag`.

        The image carries this session's label (or `labels`). A build past `timeout_s` or this engine's
        deadline, or `cancel` or this engine's stop set, is interrupted; `stop_when(step)` stops it on
        purpose. Its RUN steps run under the grader's memory and process limits where this engine allows
        it, and a build that fills the disk is stopped (grader/build_limits.py).
        """
        self._raise_if_stopped()
        if self.deadline is not None:
            timeout_s = max(1.0, min(timeout_s, self.deadline - time.monotonic()))
        info = self.info()
        disk = build_limits.DiskWatch(info)
        with build_limits.step_cgroup(info) as limits:
            result = buildkit.build(
                context,
                dockerfile,
                tag,
                timeout_s=timeout_s,
                labels=labels or self.labels,
                secrets=secrets,
                target=target,
                cgroup_parent=limits.cgroup_parent,
                guard=disk.exceeded,
                on_line=on_line,
                cancel=[event for event in (cancel, self.stop) if event is not None],
                stop_when=stop_when,
            )
        if limits.cgroup_parent is None:
            result.notes.append(limits.note)
        if result.ok:
            try:  # the id the engine lists (the metadata's digest differs between the two image stores)
                result.image_id = self.client.images.get(tag).id
            except docker.errors.ImageNotFound:
                result.ok, result.image_id = False, None
                result.error = f"the build finished but {tag} is not in the engine's image store"
        return result
