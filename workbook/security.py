"""Chapter 5 helpers: which host user a container's process is, and where a secret hides in an image.

    host_uid("ch05-root")                       # the uid the kernel of the host sees, from /proc
    find_in_image("workbook/ch05-env", b"sk-")  # every layer file whose bytes contain the needle

`find_in_saved()` reads a `docker save` archive as it streams by (nothing is extracted to disk) and
looks inside every file of every layer, including files that a later layer deleted: they are still
in the archive, which is the point.
"""

from __future__ import annotations

import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from workbook.layers import _normalise, each_saved_layer

MAX_FILE = 4 * 1024 * 1024  # bytes: larger files are not searched (a secret is small; libraries are big)


def host_uid(container: str, proc: Path = Path("/proc")) -> int:
    """The real uid, as the host's kernel sees it, of a running container's main process."""
    pid = subprocess.run(
        ["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True, text=True, check=True
    ).stdout.strip()
    return uid_of_status((proc / pid / "status").read_text())


def uid_of_status(status: str) -> int:
    """The real uid from the text of /proc/PID/status (its `Uid:` line: real, effective, saved, fs)."""
    for line in status.splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise ValueError("no Uid: line in this /proc/PID/status text")


@dataclass(frozen=True)
class Hit:
    layer: int  # index in the image's layer list, 0 = the bottom layer
    path: str  # the file inside the layer
    line: str  # the first line of the file that holds the needle (truncated to 120 characters)


def _search_layer(fileobj: IO[bytes], needle: bytes) -> list[tuple[str, str]]:
    found = []
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in tar:
            if not member.isfile() or member.size > MAX_FILE:
                continue
            data = tar.extractfile(member).read()
            if needle in data:
                line = next(ln for ln in data.splitlines() if needle in ln)
                found.append((_normalise(member.name), line.decode(errors="replace")[:120]))
    return found


def find_in_saved(stream: IO[bytes], needle: bytes) -> list[Hit]:
    """Every file in every layer of a `docker save` archive (legacy or OCI layout) containing `needle`."""
    per_layer = each_saved_layer(stream, lambda fileobj, name: _search_layer(fileobj, needle))
    return [Hit(i, path, line) for i, hits in enumerate(per_layer) for path, line in hits]


def find_in_image(ref: str, needle: bytes, show: bool = True) -> list[Hit]:
    """Run `docker save REF` and search every layer's files for `needle` as the archive streams by."""
    if show:
        print(f"$ docker save {ref} | workbook.security.find_in_saved(needle)", flush=True)
    proc = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        hits = find_in_saved(proc.stdout, needle)
        proc.stdout.read()
    finally:
        err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"`docker save {ref}` exited with {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return hits
