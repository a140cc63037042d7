"""Look inside an image's layers: what each layer adds, and the bytes an image ships but nobody can see.

An image is a stack of layer tars. A later layer cannot shrink an earlier one: deleting a file
writes a "whiteout" marker (`.wh.NAME`), overwriting a file adds a second copy, and the old bytes
stay in the image, downloaded by every pull. `wasted()` finds them:

    layers = read_image("workbook/ch04-apt-later")   # runs `docker save` and reads the tars
    waste = wasted(layers)
    print(waste.wasted_bytes, waste.efficiency)

`parse_history()` reads `docker history --human=false --format '{{.Size}}\\t{{.CreatedBy}}'`.
"""

from __future__ import annotations

import json
import posixpath
import subprocess
import tarfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, TypeVar

T = TypeVar("T")

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"  # "this directory's earlier contents are hidden", written by overlayfs


@dataclass(frozen=True)
class Entry:
    """One member of a layer tar, as the union filesystem sees it."""

    path: str  # normalised: no leading "./" or "/", no trailing "/"
    kind: str  # "file", "dir", "link" (symlink or hard link), "whiteout" or "opaque"
    size: int = 0  # bytes of content (regular files only)


@dataclass
class Layer:
    """A layer's entries in tar order; `name` is its file in the `docker save` archive."""

    name: str
    entries: list[Entry] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)


@dataclass(frozen=True)
class Hidden:
    """Bytes a layer added that a later layer hid (deleted or overwrote): shipped, never visible."""

    path: str
    size: int
    added_in: int  # layer index (0 = the bottom layer)
    hidden_in: int
    how: str  # "deleted" or "overwritten"


@dataclass
class Waste:
    total_bytes: int  # every file byte in every layer: what a pull downloads (before compression)
    items: list[Hidden]

    @property
    def wasted_bytes(self) -> int:
        return sum(h.size for h in self.items)

    @property
    def efficiency(self) -> float:
        """Share of the shipped bytes that the running container can see (1.0 = nothing wasted)."""
        return 1.0 if self.total_bytes == 0 else 1 - self.wasted_bytes / self.total_bytes

    def by_directory(self, depth: int = 3) -> dict[str, int]:
        """Wasted bytes per directory (the first `depth` path components), largest first."""
        sums: dict[str, int] = defaultdict(int)
        for h in self.items:
            parts = h.path.split("/")
            key = "/" + "/".join(parts[: min(depth, len(parts) - 1)]) if len(parts) > 1 else "/"
            sums[key] += h.size
        return dict(sorted(sums.items(), key=lambda kv: -kv[1]))


def _normalise(name: str) -> str:
    name = name.lstrip("/")
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name).strip("/") if name not in ("", ".") else ""


def entry_of(member: tarfile.TarInfo) -> Entry | None:
    """The Entry for one tar member, or None for the layer's root directory itself."""
    path = _normalise(member.name)
    if not path:
        return None
    base = posixpath.basename(path)
    if base == OPAQUE:
        return Entry(posixpath.dirname(path), "opaque")
    if base.startswith(WHITEOUT):
        return Entry(posixpath.join(posixpath.dirname(path), base[len(WHITEOUT) :]), "whiteout")
    if member.isdir():
        return Entry(path, "dir")
    if member.isfile():
        return Entry(path, "file", member.size)
    return Entry(path, "link")  # symlinks, hard links (size 0 in the tar), devices, fifos


def read_layer(fileobj: IO[bytes], name: str = "") -> Layer:
    """Read one layer tar (plain or compressed) from a stream, without extracting anything."""
    layer = Layer(name)
    with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
        for member in tar:
            entry = entry_of(member)
            if entry is not None:
                layer.entries.append(entry)
    return layer


def each_saved_layer(stream: IO[bytes], read: Callable[[IO[bytes], str], T]) -> list[T]:
    """`read(layer_tar, name)` of every layer, bottom first, of a `docker save` archive read from a stream.

    One pass: each layer tar is read as it streams by (legacy or OCI layout), and manifest.json (which
    names the order of the layers and usually comes last) puts the results in order at the end.
    """
    found: dict[str, T] = {}
    manifest = None
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            if not member.isfile():
                continue
            name = _normalise(member.name)
            if name == "manifest.json":
                manifest = json.load(outer.extractfile(member))
            elif name.endswith("layer.tar") or name.startswith("blobs/"):
                try:
                    found[name] = read(outer.extractfile(member), name)
                except tarfile.ReadError:
                    pass  # an OCI blob that is not a layer (a config or an index)
    if not manifest:
        raise ValueError("not a `docker save` archive: no manifest.json in it")
    order = [_normalise(p) for p in manifest[0]["Layers"]]
    missing = [p for p in order if p not in found]
    if missing:
        raise ValueError(f"manifest.json names layers the archive does not hold: {missing[:3]}")
    return [found[p] for p in order]


def read_saved(stream: IO[bytes]) -> list[Layer]:
    """The layers, bottom first, of a `docker save` archive read from a stream."""
    return each_saved_layer(stream, read_layer)


def read_image(ref: str, show: bool = True) -> list[Layer]:
    """Run `docker save REF` and read its layers as they stream by (nothing is written to disk)."""
    if show:
        print(f"$ docker save {ref} | workbook.layers.read_saved", flush=True)
    proc = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        layers = read_saved(proc.stdout)
        proc.stdout.read()  # drain what follows the last member, so docker save can exit
    finally:
        err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"`docker save {ref}` exited with {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return layers


def wasted(layers: list[Layer]) -> Waste:
    """Every file byte that some layer added and a later layer deleted or overwrote.

    Follows the union filesystem's rules, layer by layer: a whiteout hides the path and everything
    under it; an opaque marker hides everything under its directory; a file, link or whiteout at a
    path hides what was there (and under it, when a directory is replaced by a file); a directory
    hides only a non-directory at the same path (a directory entry alone does not touch its contents).
    """
    visible: dict[str, tuple[int, int]] = {}  # path -> (size, layer index) of the visible non-directories
    items: list[Hidden] = []
    total = 0

    def hide(path: str, index: int, how: str, subtree: bool) -> None:
        if path in visible:
            size, added = visible.pop(path)
            items.append(Hidden(path, size, added, index, how))
        if subtree:
            prefix = path + "/" if path else ""
            for p in [p for p in visible if p.startswith(prefix)]:
                size, added = visible.pop(p)
                items.append(Hidden(p, size, added, index, how))

    for index, layer in enumerate(layers):
        total += layer.size
        for e in layer.entries:  # deletions first: they refer to the layers below this one
            if e.kind == "whiteout":
                hide(e.path, index, "deleted", subtree=True)
            elif e.kind == "opaque":
                for p in [p for p in visible if p.startswith(e.path + "/" if e.path else "")]:
                    size, added = visible.pop(p)
                    items.append(Hidden(p, size, added, index, "deleted"))
        for e in layer.entries:
            if e.kind == "dir":
                if e.path in visible:
                    hide(e.path, index, "overwritten", subtree=False)
            elif e.kind in ("file", "link"):
                hide(e.path, index, "overwritten", subtree=True)
                visible[e.path] = (e.size, index)
    return Waste(total, items)


def parse_history(text: str) -> list[tuple[int, str]]:
    """(size in bytes, instruction) per layer, bottom first, from
    `docker history --no-trunc --human=false --format '{{.Size}}\\t{{.CreatedBy}}' IMAGE` (which lists top first).
    """
    rows = []
    for line in text.splitlines():
        size, _, created_by = line.partition("\t")
        if not size.strip().isdigit():
            continue  # a stray line (a warning), not a layer
        rows.append((int(size), short_instruction(created_by)))
    return rows[::-1]


def short_instruction(created_by: str, width: int = 60) -> str:
    """`/bin/sh -c #(nop)  COPY file:ab12... in .` -> `COPY file:ab12... in .`; RUN for commands; clipped."""
    text = " ".join(created_by.split())
    if not text:
        return "(base image layer)"
    if text.startswith("/bin/sh -c #(nop)"):
        text = text[len("/bin/sh -c #(nop)") :].strip()
    elif text.startswith("/bin/sh -c "):
        text = "RUN " + text[len("/bin/sh -c ") :]
    elif text.startswith("|"):  # BuildKit: "|2 ARG=... /bin/sh -c cmd"
        text = "RUN " + text.split("/bin/sh -c ", 1)[-1]
    return text if len(text) <= width else text[: width - 1] + "…"
