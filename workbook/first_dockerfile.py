"""Chapter 2 (your first Dockerfile): pair an image's steps with its layers, find a published port, wait.

Waiting is polling with a bounded timeout, never a fixed sleep: a slow machine gets more time, a fast
one does not wait for nothing, and a service that never comes up fails with a hint instead of hanging.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from workbook.layers import Step, image_steps, short_instruction
from workbook.shell import sh


@dataclass
class LayerRow:
    """One Dockerfile instruction of an image: the filesystem layer it added, if any, and that layer's size."""

    instruction: str  # e.g. "RUN pip install ...", "ENV PYTHONUNBUFFERED=1", "FROM python:3.11-slim"
    size: int  # bytes of the uncompressed layer tar it added (0 for an instruction that only sets metadata)
    layers: int  # filesystem layers it adds (0 = metadata only)


def instruction_of(created_by: str) -> str:
    """Turn a history entry's CREATED BY text back into the Dockerfile instruction that made it.

    BuildKit records `RUN /bin/sh -c pip install ... # buildkit` and `COPY app/ . # buildkit`; the legacy
    builder (what old tutorials show) recorded `/bin/sh -c #(nop)  ENV ...` and `/bin/sh -c pip install ...`.
    """
    return short_instruction(created_by, width=100_000)


def layer_rows(steps: Sequence[Step], base: tuple[int, str] | None = None) -> list[LayerRow]:
    """One row per step (oldest first), with the filesystem layers it added and their size.

    Args:
        steps: the image's history paired with its layers (`workbook.layers.image_steps`).
        base: (how many history entries the base image has, its name): those first entries are folded
            into one "FROM name" row, since they are the base image's own history.
    """
    rows: list[LayerRow] = []
    start = 0
    if base is not None:
        start, name = base
        own = steps[:start]
        rows.append(LayerRow(f"FROM {name}", sum(s.tar_bytes for s in own), sum(s.adds_layer for s in own)))
    for step in steps[start:]:
        rows.append(LayerRow(step.instruction, step.tar_bytes, int(step.adds_layer)))
    return rows


def image_layers(image: str, base: str | None = None) -> list[LayerRow]:
    """The steps of IMAGE, oldest first, each with the filesystem layer it added (from `docker save`).

    The image's config lists every step, and marks the ones that only changed the configuration
    (`empty_layer`); each other step made the next layer in the image's root filesystem. This works on
    every image store and for every builder, unlike the per-step image ids the legacy builder left behind.
    """
    steps = image_steps(image)
    base_ref = None
    if base:
        entries = sh(f"docker history -q {base}", show=False).out.split()
        base_ref = (len(entries), base)
    return layer_rows(steps, base_ref)


def human_size(nbytes: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as `docker images` prints them)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(nbytes) < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    raise AssertionError("unreachable")


def parse_port(output: str) -> str:
    """The first IPv4 `host:port` in `docker port CONTAINER PORT` output (it may list an IPv6 line too)."""
    for line in output.splitlines():
        match = re.fullmatch(r"\s*(\d{1,3}(?:\.\d{1,3}){3}):(\d+)\s*", line)
        if match:
            return f"{match.group(1)}:{match.group(2)}"
    raise ValueError(f"no IPv4 address in `docker port` output: {output!r}")


def published_address(container: str, port: int) -> str:
    """Where on the host `docker run -p 127.0.0.1::PORT` published the container's PORT, e.g. 127.0.0.1:32768."""
    return parse_port(sh(f"docker port {container} {port}").out)


def wait_for(check: Callable[[], bool], *, timeout: float, what: str, hint: str = "", interval: float = 0.2) -> float:
    """Call `check` until it returns True; return the seconds it took. Raises TimeoutError after `timeout`."""
    started = time.perf_counter()
    while True:
        try:
            if check():
                return time.perf_counter() - started
        except Exception:  # "not yet" comes in many shapes: refused, reset, not found
            pass
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f} s." + (f" Hint: {hint}" if hint else ""))
        time.sleep(interval)


def wait_for_http(url: str, timeout: float = 30, container: str | None = None) -> float:
    """Poll `url` until it answers 200; return the seconds it took."""
    hint = f"read `docker logs {container}`: did the app start, and does it listen on 0.0.0.0?" if container else ""
    return wait_for(
        lambda: requests.get(url, timeout=2).status_code == 200,
        timeout=timeout,
        what=f"GET {url} answering 200",
        hint=hint,
    )


def wait_for_log(container: str, text: str, timeout: float = 30) -> float:
    """Poll `docker logs CONTAINER` until it contains `text`; return the seconds it took."""
    return wait_for(
        lambda: text in sh(f"docker logs {container}", show=False, expect=None).out,
        timeout=timeout,
        what=f"{text!r} in the logs of {container}",
        hint=f"read `docker logs {container}`: did the program crash at start?",
    )


def timed_stop(container: str, grace: int = 10, show: bool = True) -> tuple[float, int]:
    """Run `docker stop -t GRACE CONTAINER`; return (seconds it took, the exit code the container ended with)."""
    result = sh(f"docker stop -t {grace} {container}", show=show)
    code = int(sh(f"docker inspect --format '{{{{.State.ExitCode}}}}' {container}", show=False).out.strip())
    return result.seconds, code
