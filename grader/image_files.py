"""The files of an image, read through the engine without running anything of it."""

from __future__ import annotations

import posixpath
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass
class Entry:
    """One file system entry of the image: its absolute path, and its content on request."""

    path: str
    size: int
    is_file: bool
    read: Callable[[], bytes] | None = None  # valid only while the entry is the stream's current one


def tar_entries(tar: tarfile.TarFile, root: str) -> Iterator[Entry]:
    """The entries of an archive the engine made of the image's folder `root`, with absolute paths.

    The engine names members after the folder's last component ("app/app.py" for /app), or with a
    leading slash for "/" itself.
    """
    parent = posixpath.dirname(root.rstrip("/")) or "/"
    for member in tar:
        path = posixpath.normpath(posixpath.join(parent, member.name))
        yield Entry(path, member.size, member.isfile(), lambda m=member: tar.extractfile(m).read())


def image_entries(engine, image: str, root: str) -> Iterator[Entry]:
    """Every file system entry under `root` in `image` (none when the image lacks `root`).

    `engine` is anything with the engine's `archive(image, path)` (grader.engine.Engine)."""
    with engine.archive(image, root) as tar:
        if tar is not None:
            yield from tar_entries(tar, root)
