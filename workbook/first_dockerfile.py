"""Chapter 2 (your first Dockerfile): read an image's layers, find a published port, wait for a container.

Waiting is polling with a bounded timeout, never a fixed sleep: a slow machine gets more time, a fast
one does not wait for nothing, and a service that never comes up fails with a hint instead of hanging.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import requests

from workbook.shell import sh

NOP = "/bin/sh -c #(nop) "
SHELL = "/bin/sh -c "


@dataclass
class LayerRow:
    """One Dockerfile instruction of an image, as `docker history` and the image's root filesystem tell it."""

    instruction: str  # e.g. "RUN pip install ...", "ENV PYTHONUNBUFFERED=1", "FROM python:3.11-slim"
    size: int  # bytes its filesystem changes add (0 for an instruction that only sets metadata)
    layers: int | None  # filesystem layers it adds (0 = metadata only); None where the engine cannot tell


def instruction_of(created_by: str) -> str:
    """Turn `docker history`'s CREATED BY column back into the Dockerfile instruction that made the row.

    The classic builder records metadata steps as `/bin/sh -c #(nop)  ENV ...` and RUN steps as
    `/bin/sh -c pip install ...`; BuildKit records `RUN /bin/sh -c pip install ... # buildkit`.
    """
    text = created_by.strip()
    text = re.sub(r"\s*# buildkit$", "", text)
    if text.startswith(NOP):
        return re.sub(r"\s+", " ", text[len(NOP) :]).strip()
    if text.startswith(SHELL):
        return "RUN " + text[len(SHELL) :].strip()
    if text.startswith("RUN /bin/sh -c "):
        return "RUN " + text[len("RUN /bin/sh -c ") :].strip()
    return re.sub(r"\s+", " ", text)


def layer_rows(
    history: Sequence[tuple[str, int, str]], layer_counts: dict[str, int], base: tuple[str, str] | None = None
) -> list[LayerRow]:
    """Pair each history row (oldest first) with the filesystem layers it added.

    Args:
        history: (image id or "<missing>", size in bytes, CREATED BY) per row, OLDEST first.
        layer_counts: image id -> how many layers its root filesystem has (`.RootFS.Layers`). A row adds
            as many layers as its image has more than the row before it; 0 means the instruction only
            changed the image's configuration (its metadata).
        base: (base image id, name): the rows up to and including that id are folded into one
            "FROM name" row, since they are the base image's own history.
    """
    rows: list[LayerRow] = []
    start = 0
    previous: int | None = None
    if base is not None:
        base_id, name = base
        ids = [h[0] for h in history]
        if base_id in ids:
            start = ids.index(base_id) + 1
            previous = layer_counts.get(base_id)
            rows.append(LayerRow(f"FROM {name}", sum(h[1] for h in history[:start]), previous))
    for image_id, size, created_by in history[start:]:
        count = layer_counts.get(image_id)
        added = None if count is None or previous is None else count - previous
        rows.append(LayerRow(instruction_of(created_by) or "(empty)", size, added))
        previous = count
    return rows


def image_layers(image: str, base: str | None = None) -> list[LayerRow]:
    """The rows of `docker history IMAGE`, oldest first, each with the filesystem layers it added.

    Works on images built by the classic builder, which keeps an image id for every step; BuildKit and
    pulled images show `<missing>` for earlier steps, whose `layers` are then None.
    """
    fmt = "{{.ID}}\t{{.Size}}\t{{.CreatedBy}}"
    out = sh(f"docker history --no-trunc --human=false --format '{fmt}' {image}", show=False).out
    history = []
    for line in reversed(out.splitlines()):
        image_id, size, created_by = (line.split("\t", 2) + ["", ""])[:3]
        history.append((image_id, int(size or 0), created_by))
    ids = sorted({h[0] for h in history if h[0] != "<missing>"})
    counts: dict[str, int] = {}
    if ids:
        inspected = sh(
            f"docker image inspect --format '{{{{.Id}}}} {{{{len .RootFS.Layers}}}}' {' '.join(ids)}", show=False
        ).out
        for line in inspected.splitlines():
            image_id, count = line.split()
            counts[image_id] = int(count)
    base_ref = None
    if base:
        base_id = sh(f"docker image inspect --format '{{{{.Id}}}}' {base}", show=False).out.strip()
        base_ref = (base_id, base)
    return layer_rows(history, counts, base_ref)


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
