"""Look inside an image's layers: what each layer adds, and the bytes an image ships but nobody can see.

An image is a stack of layer tars. A later layer cannot shrink an earlier one: deleting a file
writes a "whiteout" marker (`.wh.NAME`), overwriting a file adds a second copy, and the old bytes
stay in the image, downloaded by every pull. `wasted()` finds them:

    layers = read_image("workbook/ch04-apt-later")   # runs `docker save` and reads the tars
    waste = wasted(layers)
    print(waste.wasted_bytes, waste.efficiency)

Sizes are measured the same way on every engine: a layer's size is the length of its uncompressed tar,
and an image's size is the sum over its layers (`image_bytes()`). The engine's own figures depend on
its image store: on the containerd store `docker image inspect`'s Size counts the *compressed* layers,
and `docker history` the space each unpacked layer takes on disk (`image_store()` says which store
this engine uses). `image_steps()` pairs each Dockerfile step with the layer it made, from the image's
own config.

`parse_history()` reads `docker history --human=false --format '{{.Size}}\\t{{.CreatedBy}}'`.
"""

from __future__ import annotations

import functools
import io
import json
import posixpath
import re
import subprocess
import tarfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TypeVar

from grader.streams import ChunkReader

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
    tar_bytes: int = 0  # length of the uncompressed layer tar: headers and padding included

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


GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
CHUNK = 1 << 20


def _uncompressed_chunks(fileobj: IO[bytes]) -> Iterator[bytes]:
    """The bytes of a layer blob as a tar: gunzipped when gzip-compressed (as the containerd store saves them)."""
    first = fileobj.read(CHUNK)
    if first.startswith(ZSTD_MAGIC):
        raise ValueError("this layer is zstd-compressed, which workbook.layers cannot read (only plain or gzip)")
    if not first.startswith(GZIP_MAGIC):
        while first:
            yield first
            first = fileobj.read(CHUNK)
        return
    data = first
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    while data:
        yield inflate.decompress(data)
        while inflate.eof and inflate.unused_data:  # a gzip file may hold several members back to back
            rest = inflate.unused_data
            inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            yield inflate.decompress(rest)
        data = fileobj.read(CHUNK)
    yield inflate.flush()


class Uncompressed(ChunkReader):
    """A layer blob read as its uncompressed tar, counting the bytes (`count`) as they are read."""

    def __init__(self, fileobj: IO[bytes]):
        super().__init__(_uncompressed_chunks(fileobj))
        self.count = 0

    def readinto(self, buffer) -> int:
        n = super().readinto(buffer)
        self.count += n
        return n

    def drain(self) -> int:
        """Read to the end (tar readers stop at the end-of-archive marker); the total number of bytes."""
        while self.read(CHUNK):
            pass
        return self.count


def read_layer(fileobj: IO[bytes], name: str = "") -> Layer:
    """Read one layer tar (plain or gzip-compressed) from a stream, without extracting anything."""
    layer = Layer(name)
    data = Uncompressed(fileobj)
    with tarfile.open(fileobj=io.BufferedReader(data, CHUNK), mode="r|") as tar:
        for member in tar:
            entry = entry_of(member)
            if entry is not None:
                layer.entries.append(entry)
    layer.tar_bytes = data.drain()
    return layer


def layer_tar_bytes(fileobj: IO[bytes], name: str = "") -> int:
    """The length of one layer's uncompressed tar, without reading its entries (faster than read_layer)."""
    return Uncompressed(fileobj).drain()


@dataclass
class SavedImage:
    """What a `docker save` archive holds for one image: its config (history, rootfs) and its layers."""

    config: dict
    layers: list  # what the reader returned for each layer, bottom first


def read_saved_image(stream: IO[bytes], read: Callable[[IO[bytes], str], T]) -> SavedImage:
    """`read(layer_tar, name)` of every layer, bottom first, and the image config, from a `docker save` stream.

    One pass: each blob is read as it streams by (legacy or OCI layout, as both stores write it), and
    manifest.json (which names the config and the order of the layers, and usually comes last) picks the
    results at the end. Small blobs are kept in memory, since any of them may turn out to be the config.
    """
    found: dict[str, T] = {}
    small: dict[str, bytes] = {}
    links: dict[str, str] = {}  # 20.10's `docker save` links a layer that two images share to its first copy
    manifest = None
    with tarfile.open(fileobj=stream, mode="r|") as outer:
        for member in outer:
            name = _normalise(member.name)
            if member.issym():
                links[name] = _normalise(posixpath.join(posixpath.dirname(name), member.linkname))
            if not member.isfile():
                continue
            if name == "manifest.json":
                manifest = json.load(outer.extractfile(member))
                continue
            if not (name.endswith((".tar", ".json")) or name.startswith("blobs/")):
                continue  # oci-layout, repositories
            source: IO[bytes] = outer.extractfile(member)
            if member.size <= CHUNK:
                small[name] = source.read()
                source = io.BytesIO(small[name])
            try:
                found[name] = read(source, name)
            except (tarfile.ReadError, ValueError, zlib.error):
                pass  # a blob that is not a layer (a config, a manifest or an index)
    if not manifest:
        raise ValueError("not a `docker save` archive: no manifest.json in it")
    order = [links.get(_normalise(p), _normalise(p)) for p in manifest[0]["Layers"]]
    missing = [p for p in order if p not in found]
    if missing:
        raise ValueError(f"manifest.json names layers the archive does not hold: {missing[:3]}")
    config_name = _normalise(manifest[0].get("Config", ""))
    config = json.loads(small[config_name]) if config_name in small else {}
    return SavedImage(config, [found[p] for p in order])


def each_saved_layer(stream: IO[bytes], read: Callable[[IO[bytes], str], T]) -> list[T]:
    """`read(layer_tar, name)` of every layer, bottom first, of a `docker save` archive read from a stream."""
    return read_saved_image(stream, read).layers


def read_saved(stream: IO[bytes]) -> list[Layer]:
    """The layers, bottom first, of a `docker save` archive read from a stream."""
    return each_saved_layer(stream, read_layer)


def save_image(ref: str, read: Callable[[IO[bytes], str], T], show: bool = True) -> SavedImage:
    """Run `docker save REF` and read its config and layers as they stream by (nothing is written to disk)."""
    if show:
        print(f"$ docker save {ref} | workbook.layers.read_saved_image", flush=True)
    proc = subprocess.Popen(["docker", "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        saved = read_saved_image(proc.stdout, read)
        proc.stdout.read()  # drain what follows the last member, so docker save can exit
    finally:
        err = proc.communicate()[1]
    if proc.returncode != 0:
        raise RuntimeError(f"`docker save {ref}` exited with {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return saved


def read_image(ref: str, show: bool = True) -> list[Layer]:
    """Run `docker save REF` and read its layers as they stream by (nothing is written to disk)."""
    return save_image(ref, read_layer, show).layers


@dataclass(frozen=True)
class Step:
    """One entry of an image's history (one Dockerfile instruction) and the layer it made, if any."""

    instruction: str  # e.g. "RUN pip install ...", "ENV A=1"; "(base image layer)" when the history is empty
    adds_layer: bool  # False: the instruction only changed the image's configuration (its metadata)
    tar_bytes: int  # the length of its layer's uncompressed tar; 0 when it adds no layer


def steps_of(config: dict, tar_bytes: list[int]) -> list[Step]:
    """Pair the image config's history with its layers (bottom first): each entry not marked
    `empty_layer` made the next layer. Raises ValueError when the two do not line up."""
    history = config.get("history") or []
    adding = [h for h in history if not h.get("empty_layer")]
    if len(adding) != len(tar_bytes):
        raise ValueError(
            f"the image's history names {len(adding)} layer-making steps, but it has {len(tar_bytes)} layers"
        )
    sizes = iter(tar_bytes)
    return [
        Step(
            short_instruction(h.get("created_by", ""), width=10_000),
            not h.get("empty_layer", False),
            0 if h.get("empty_layer") else next(sizes),
        )
        for h in history
    ]


@functools.cache
def _saved_steps(image_id: str) -> tuple[Step, ...]:
    saved = save_image(image_id, layer_tar_bytes, show=False)
    return tuple(steps_of(saved.config, saved.layers))


def image_id(ref: str) -> str:
    """The image's id (`docker image inspect -f {{.Id}}`)."""
    out = subprocess.run(["docker", "image", "inspect", "-f", "{{.Id}}", ref], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"`docker image inspect {ref}` exited with {out.returncode}: {out.stderr.strip()[-300:]}")
    return out.stdout.strip()


def image_steps(ref: str) -> list[Step]:
    """Every step of the image's history, bottom first, with the uncompressed size of the layer it made.

    One `docker save` per image (remembered by image id, so asking twice costs nothing).
    """
    return list(_saved_steps(image_id(ref)))


@functools.cache
def _measured_bytes(image: str) -> int:
    import docker  # the grader's dependency; imported here so that the layer reader needs no engine
    from grader.image_size import image_size

    client = docker.from_env()
    try:
        return image_size(client, image).total
    finally:
        client.close()


def image_bytes(ref: str) -> int:
    """The image's size as the grader measures it (`grader.image_size`): its layers' uncompressed tars
    added up, the same on every image store. One `docker save` per image (remembered by image id)."""
    return _measured_bytes(image_id(ref))


def image_store() -> str:
    """Which image store the engine keeps images in: "containerd" (the containerd image store, the default
    for new installs since Engine 29) or the name of its classic storage driver ("overlay2")."""
    out = subprocess.run(
        ["docker", "info", "--format", "{{.Driver}}\t{{json .DriverStatus}}"], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(f"`docker info` exited with {out.returncode}: {out.stderr.strip()[-300:]}")
    driver, _, status = out.stdout.strip().partition("\t")
    return "containerd" if "io.containerd.snapshotter" in status else driver


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
    """The Dockerfile instruction behind a history entry, clipped to `width`:

    `/bin/sh -c #(nop)  COPY file:ab12... in .` -> `COPY file:ab12... in .` and `/bin/sh -c cmd` -> `RUN cmd`
    (the legacy builder); `RUN /bin/sh -c cmd # buildkit` and `RUN |1 A=1 /bin/sh -c cmd # buildkit` ->
    `RUN cmd` (BuildKit).
    """
    text = " ".join(created_by.split())
    text = re.sub(r"\s*# buildkit$", "", text)
    if not text:
        return "(base image layer)"
    if text.startswith("/bin/sh -c #(nop)"):
        text = text[len("/bin/sh -c #(nop)") :].strip()
    elif text.startswith("/bin/sh -c "):
        text = "RUN " + text[len("/bin/sh -c ") :]
    elif text.startswith(("|", "RUN |", "RUN /bin/sh -c ")) and "/bin/sh -c " in text:
        text = "RUN " + text.split("/bin/sh -c ", 1)[1]
    return text if len(text) <= width else text[: width - 1] + "…"
