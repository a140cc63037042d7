"""One size of an image, measured the same on every engine: the bytes of its layers as uncompressed tars.

Why: `docker image inspect`'s Size depends on the engine's image store. Debian 12's docker.io 20.10
(overlay2 store) adds up the unpacked files of the layers: lab 01's reference image is 474 MB there, and
its layers' regular files do add up to 474.3 MB. Engine 28.5 with the containerd store reports the
compressed blobs it keeps (159.9 MB for the same image), `docker history` there the snapshots' disk use
(516.5 MB) and `docker images` both added (676 MB). A size budget would mean something different for each
learner. What every store holds the same is each layer as a tar, the diff that the image config's
`rootfs.diff_ids` hash; the length of those tars added up is this module's size (487.1 MB for lab 01: the
files plus a 512-byte header for each of its 17,137 entries and padding).

It is measured from `docker save`, streamed through the Docker SDK and never written to disk. The archive
is read once, in order, in chunks: every file in it is measured as it passes (a compressed blob is
decompressed and its output counted, never held), and the layers are picked once the manifest has been
read, because the manifest may come after the blobs. Both archive layouts are read: the docker-archive
one (`manifest.json` whose "Layers" name `<id>/layer.tar`, or blobs on Engine 25 and later) and the OCI
layout alone (`index.json`, manifests, then `blobs/sha256/<digest>` layers). A layer may be an
uncompressed tar, or gzip-, zstd-, xz- or bzip2-compressed; the magic bytes tell which, as they do for the
engine. zstd needs a decompressor that this Python may lack (the standard library has one from Python 3.14
on); such a layer makes the size unknown, with the reason, rather than wrong.

The engine reports no layer's tar length (inspect, history, `system df` and the manifests' sizes are the
stored blobs or the snapshots' disk use), and a gzip trailer's length field needs the blob streamed all
the same, is modulo 4 GiB and counts only the last member of a multi-member (pigz, eStargz) layer. So a
length, once measured, is kept by diff_id, and the few new layers of a rebuild are read alone from
BuildKit's record of the build that made them (`docker buildx history inspect attachment`) rather than
through a `docker save` of the whole image (`image_total`).
"""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import lzma
import posixpath
import queue
import re
import tarfile
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from grader import buildkit
from grader.errors import ImageSizeUnknown
from grader.streams import ChunkReader
from grader.user_cache import user_cache_dir

CHUNK = 1 << 20
# Blobs named by their own digest (blobs/sha256/<hex>) never change: a layer measured once (the base image's,
# the dependency install a class shares) is not decompressed again by later measures in this process.
CONTENT_ADDRESSED = re.compile(r"^blobs/sha256/[0-9a-f]{64}$")
_MEASURED: dict[str, Blob] = {}
# A file of the archive kept whole to be read as JSON afterwards (manifest.json, index.json, an image
# config, a manifest). Configs of images with long histories reach tens of kilobytes; layers are never kept.
JSON_LIMIT = 4 << 20

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}


def _zstd_decompressor() -> Callable[[], Any] | None:
    """The zstd decompressor of the standard library (Python 3.14 on), or None where there is none."""
    try:
        from compression import zstd  # type: ignore[import-not-found]
    except ImportError:
        return None
    return zstd.ZstdDecompressor


class _Gunzip:
    """zlib's gzip decompressor behind the interface that lzma's, bz2's and zstd's share."""

    def __init__(self):
        self._d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def unused_data(self) -> bytes:
        return self._d.unused_data

    @property
    def needs_input(self) -> bool:
        return not self._d.unconsumed_tail

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return self._d.decompress(self._d.unconsumed_tail + data if data else self._d.unconsumed_tail, max_length)


# (name, magic bytes at offset 0, decompressor factory or None when this Python has none)
COMPRESSIONS: list[tuple[str, bytes, Callable[[], Any] | None]] = [
    ("gzip", b"\x1f\x8b", _Gunzip),
    ("zstd", b"\x28\xb5\x2f\xfd", _zstd_decompressor()),
    ("xz", b"\xfd7zXZ\x00", lzma.LZMADecompressor),
    ("bzip2", b"BZh", bz2.BZ2Decompressor),
]


def compression_of(head: bytes) -> str:
    """The compression a blob starting with `head` uses, by its magic bytes ("none" for a plain tar).

    A tar with the ustar magic is plain whatever its first bytes are (a file named "BZh..." is no bzip2).
    """
    if head[257:262] == b"ustar":
        return "none"
    for name, magic, _ in COMPRESSIONS:
        if head.startswith(magic):
            return name
    return "none"


@dataclass(frozen=True)
class Blob:
    """One file of the archive as it passed: its length once uncompressed (None when it cannot be known)."""

    stored: int  # bytes in the archive
    compression: str  # "none", "gzip", "zstd", "xz", "bzip2"
    size: int | None  # bytes once uncompressed; None when they cannot be counted (see `error`)
    digest: str | None = None  # "sha256:..." of the uncompressed bytes, when asked for
    error: str = ""  # why `size` is None


@dataclass(frozen=True)
class Layer:
    """One layer of the image, in the config's order: a repeated layer is counted each time, as it is stored."""

    path: str  # the layer's file in the archive ("blobs/sha256/...", "<id>/layer.tar")
    size: int  # bytes of the uncompressed tar
    compression: str
    diff_id: str  # from the image config's rootfs.diff_ids


@dataclass(frozen=True)
class ImageSize:
    """An image's layers and the sum of their uncompressed tars' lengths (`total`), the grader's image size."""

    layers: tuple[Layer, ...]
    layout: str  # "docker-archive" (manifest.json) or "oci" (index.json alone)
    archive_bytes: int  # what the archive's files add up to (compressed layers, configs, manifests)
    digests_checked: bool = False  # each layer's uncompressed bytes hashed and compared with its diff_id

    @property
    def total(self) -> int:
        """The size: bytes of the layers' uncompressed tars, added up."""
        return sum(layer.size for layer in self.layers)

    @property
    def mb(self) -> float:
        return self.total / 1e6


def measure_archive(fileobj: IO[bytes], check_digests: bool = False) -> ImageSize:
    """The size of the one image in a `docker save` archive, read once from `fileobj` as a stream.

    `check_digests` also hashes each layer's uncompressed bytes and compares them with the config's
    diff_ids: proof that what was counted is the diff the image is made of, at the price of a sha256 pass.
    """
    blobs: dict[str, Blob] = {}
    links: dict[str, str] = {}
    docs: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=fileobj, mode="r|*") as tar:
            for member in tar:
                name = _norm(member.name)
                if member.issym():
                    links[name] = _norm(posixpath.join(posixpath.dirname(name), member.linkname))
                elif member.islnk():
                    links[name] = _norm(member.linkname)
                elif member.isfile() and not check_digests and name in _MEASURED:
                    blobs[name] = _MEASURED[name]  # tarfile skips the unread bytes by itself
                elif member.isfile():
                    reader = tar.extractfile(member)
                    assert reader is not None
                    blobs[name], doc = _measure(reader, member.size, check_digests)
                    if doc is not None:
                        docs[name] = doc
                    elif blobs[name].size is not None and CONTENT_ADDRESSED.match(name):
                        _MEASURED[name] = blobs[name]
    except tarfile.TarError as err:
        raise ImageSizeUnknown(f"the `docker save` archive cannot be read as a tar: {err}") from None
    layout, paths, config = _pick_layers(docs, blobs, links)
    diff_ids = config.get("rootfs", {}).get("diff_ids") or []
    if len(diff_ids) != len(paths):
        raise ImageSizeUnknown(
            f"the image's manifest names {len(paths)} layers and its config {len(diff_ids)} diff_ids",
            hint="the archive is not one `docker save` wrote for a single image",
        )
    layers = []
    for path, diff_id in zip(paths, diff_ids, strict=True):
        blob = blobs[_resolve(path, links, blobs)]
        if blob.size is None:
            raise ImageSizeUnknown(
                f"the uncompressed size of layer {path} cannot be measured here: {blob.error}",
                hint="Python 3.14's standard library decompresses zstd; or rebuild the image with gzip layers "
                "(docker buildx build --output type=image,name=TAG,compression=gzip,force-compression=true)"
                if blob.compression == "zstd"
                else "",
            )
        if check_digests and blob.digest != diff_id:
            raise ImageSizeUnknown(f"layer {path} hashes to {blob.digest}, not to its diff_id {diff_id}")
        layers.append(Layer(path, blob.size, blob.compression, diff_id))
    return ImageSize(tuple(layers), layout, sum(b.stored for b in blobs.values()), check_digests)


def image_size(client, ref: str, check_digests: bool = False) -> ImageSize:
    """The size of local image `ref`: its `docker save` archive streamed from the engine through the Docker SDK.

    Nothing is written to disk and memory stays bounded (1 MiB chunks, at most 8 of them read ahead). The
    engine's stream is read by a thread of its own while this one decompresses (zlib lets go of the GIL),
    so that waiting on the engine and decompressing overlap where a CPU is free. Measured on Engine 28.5
    with the containerd store, on 2 CPUs busy with other builds, lab 01's reference image (7 gzip layers,
    160 MB in the archive, 487 MB uncompressed): `docker save` to /dev/null 3.0-5.6 s, the SDK's stream
    alone 2.9-4.5 s, this measure 4.2-7.3 s (4.6-7.3 s without the read-ahead; gunzip alone, from a file,
    1.9 s). The engine's save is the floor: 55 MB/s of archive at best there. `check_digests` adds
    the sha256 of every layer (0.2-0.3 s of CPU more there).
    """
    chunks = _read_ahead(client.images.get(ref).save(chunk_size=CHUNK))
    try:
        return measure_archive(io.BufferedReader(ChunkReader(chunks), CHUNK), check_digests)
    finally:
        chunks.close()  # at once, also on an error: the read-ahead thread stops and the engine's stream is let go


def image_total(client, ref: str, record: buildkit.BuildRecord | None = None) -> int:
    """`image_size(client, ref).total`, without `docker save` where it can do without.

    A layer's diff_id is the sha256 of its uncompressed tar, so the tar's length belongs to the diff_id for
    good: lengths measured once are kept (in this process and in the user's cache folder), and an image
    whose diff_ids are all known is sized from its config alone. A regrade of lab 07 (about 1 GB of
    layers) then takes the engine's inspect instead of streaming the whole archive, about 5 s.
    When only a few small layers are new (a code-only change) and `record` names the build that made the
    image, those layers alone are read from BuildKit's record of that build (`lengths_from_record`).
    """
    diff_ids = (client.api.inspect_image(ref).get("RootFS") or {}).get("Layers") or []
    known = _known_lengths()
    if diff_ids and all(d in known for d in diff_ids):
        return sum(known[d] for d in diff_ids)
    new = lengths_from_record(record, diff_ids, known) if record and diff_ids else None
    if new is not None:
        _remember_lengths(new)
        return sum({**known, **new}[d] for d in diff_ids)
    measured = image_size(client, ref)
    _remember_lengths({layer.diff_id: layer.size for layer in measured.layers})
    return measured.total


RECORD_LIMIT = 16 << 20  # stored bytes of new layers read from a build's record; more go through `docker save`


def lengths_from_record(
    record: buildkit.BuildRecord, diff_ids: list[str], known: dict[str, int]
) -> dict[str, int] | None:
    """The lengths of the layers not in `known`, each read alone from the record of the build that made them.

    The record's image manifest lists the layers as stored, in the order of the config's diff_ids. Each new
    one is fetched, decompressed and hashed: its length counts only when it hashes to its diff_id. Lab 01's
    regrade reads two layers of a few kilobytes (0.3 s) where `docker save` streams 160 MB (3 s). None
    when the record cannot tell (no history on an old engine, a layer too big to hold, any mismatch): the
    caller then measures the whole image.
    """
    try:
        stored = _exported_manifest(record)["layers"]
        pairs = [(d, str(layer["digest"]), int(layer["size"])) for d, layer in zip(diff_ids, stored, strict=True)]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None  # no manifest, or not one of this image
    missing = {diff_id: (digest, size) for diff_id, digest, size in pairs if diff_id not in known}
    if sum(size for _, size in missing.values()) > RECORD_LIMIT:
        return None

    def length(diff_id: str) -> int | None:
        data = record.read(missing[diff_id][0])
        if data is None:
            return None
        blob, _ = _measure(io.BytesIO(data), len(data), check_digests=True)
        return blob.size if blob.digest == diff_id else None

    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="image-size-record") as pool:
        lengths = dict(zip(missing, pool.map(length, missing), strict=True))
    return None if None in lengths.values() else lengths


def _exported_manifest(record: buildkit.BuildRecord) -> dict:
    """The image manifest the build exported: the one an exported index holds beside its attestations."""
    doc = json.loads(record.read(record.exported) or b"null")
    if "manifests" in doc:
        images = [m for m in doc["manifests"] if not _is_attestation(m)]
        if len(images) != 1:
            raise ValueError(f"the build exported {len(images)} image manifests")
        doc = json.loads(record.read(images[0]["digest"]) or b"null")
    return doc


def _is_attestation(descriptor: dict) -> bool:
    """An index's entry for a manifest of attestations (provenance, SBOM), not of an image."""
    return (descriptor.get("annotations") or {}).get("vnd.docker.reference.type") == "attestation-manifest"


_LENGTHS: dict[str, int] = {}
_LENGTHS_LOCK = threading.Lock()  # the grades of a batch measure in threads of one process
LENGTHS_KEPT = 20_000  # diff_ids remembered on disk (about 100 bytes each), the newest


def lengths_path() -> Path:
    """In the user's cache folder, beside the build cache ledger (grader/build_cache.py)."""
    return user_cache_dir() / "layer-lengths.json"


def _known_lengths() -> dict[str, int]:
    with _LENGTHS_LOCK:
        if not _LENGTHS:
            try:
                saved = json.loads(lengths_path().read_text())
                _LENGTHS.update({str(k): int(v) for k, v in saved.items()})
            except (OSError, ValueError, TypeError, AttributeError):
                pass  # none yet, or damaged: measured again, which is only slower
        return dict(_LENGTHS)


def _remember_lengths(lengths: dict[str, int]) -> None:
    with _LENGTHS_LOCK:
        _LENGTHS.update(lengths)
        kept = dict(list(_LENGTHS.items())[-LENGTHS_KEPT:])
        try:
            path = lengths_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(kept))
            tmp.replace(path)  # atomic: a reader never sees half a file
        except OSError:
            pass  # a read-only home: the lengths stay in this process only


def _read_ahead(chunks: Iterator[bytes], depth: int = 8) -> Iterator[bytes]:
    """`chunks` fetched by a thread of their own, at most `depth` ahead of the reader.

    Closing this iterator early (a reader that stops at an error) stops the thread, which then closes
    `chunks` and so lets the engine's stream go.
    """
    pipe: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                pipe.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for piece in chunks:
                if not put(piece):
                    return
            put(end)
        except BaseException as err:  # noqa: BLE001 - handed over to the reader, which raises it
            put(err)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="image-size-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = pipe.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


# --- reading one file of the archive ------------------------------------------------------------------


def _measure(reader: IO[bytes], stored: int, check_digests: bool) -> tuple[Blob, bytes | None]:
    """Measure one file of the archive as it streams past; keep it too when it may be a JSON document."""
    head = reader.read(min(stored, CHUNK))
    if stored <= JSON_LIMIT and head[:1] in (b"{", b"["):
        whole = head + reader.read()
        digest = "sha256:" + hashlib.sha256(whole).hexdigest() if check_digests else None
        return Blob(stored, "none", stored, digest), whole
    kind = compression_of(head)
    if kind == "none":
        if not check_digests:
            return Blob(stored, kind, stored), None  # tarfile skips the rest on its own
        sha = hashlib.sha256(head)
        for piece in iter(lambda: reader.read(CHUNK), b""):
            sha.update(piece)
        return Blob(stored, kind, stored, "sha256:" + sha.hexdigest()), None
    make = next(factory for name, _, factory in COMPRESSIONS if name == kind)
    if make is None:
        why = f"it is {kind}-compressed and this Python has no {kind} decompressor"
        return Blob(stored, kind, None, error=why), None
    sha = hashlib.sha256() if check_digests else None
    size = 0
    try:
        for piece in _inflate(make, head, reader):
            size += len(piece)
            if sha is not None:
                sha.update(piece)
    except (zlib.error, lzma.LZMAError, OSError, ValueError, EOFError, ImageSizeUnknown) as err:
        # Not a layer after all, or a damaged one: only an error if the image's manifest names it.
        return Blob(stored, kind, None, error=f"its {kind} stream is damaged ({err})"), None
    return Blob(stored, kind, size, "sha256:" + sha.hexdigest() if sha else None), None


def _inflate(make: Callable[[], Any], head: bytes, reader: IO[bytes]) -> Iterator[bytes]:
    """The decompressed bytes of a stream, at most CHUNK at a time, across concatenated members or frames.

    Concatenated members are legal in gzip, xz, bzip2 and zstd alike (pigz and eStargz layers have
    several); zero bytes after the last one are padding, not data.
    """
    inputs = _chain(head, reader)
    d = None
    for data in inputs:
        while data:
            if d is None:
                if not data.strip(b"\0"):
                    break
                d = make()
            yield d.decompress(data, CHUNK)
            while not d.eof and not d.needs_input:
                yield d.decompress(b"", CHUNK)
            data = b""
            if d.eof:
                data, d = d.unused_data, None
    if d is not None:
        raise EOFError("the file ends before its compressed stream does")


def _chain(head: bytes, reader: IO[bytes]) -> Iterator[bytes]:
    yield head
    yield from iter(lambda: reader.read(CHUNK), b"")


# --- finding the layers -----------------------------------------------------------------------------------


def _pick_layers(docs: dict[str, bytes], blobs: dict[str, Blob], links: dict[str, str]) -> tuple[str, list, dict]:
    """The archive's layout, its image's layer paths in order, and its image config."""
    if "manifest.json" in docs:
        entries = _json(docs, "manifest.json")
        if not isinstance(entries, list) or len(entries) != 1:
            count = len(entries) if isinstance(entries, list) else 0
            raise ImageSizeUnknown(f"the archive's manifest.json describes {count} images, not one")
        entry = entries[0]
        config = _json(docs, _resolve(_norm(entry["Config"]), links, blobs))
        paths = [_norm(p) for p in entry.get("Layers") or []]
        layout = "docker-archive"
    elif "index.json" in docs:
        manifests = _image_manifests(_json(docs, "index.json"), docs)
        if len(manifests) != 1:
            raise ImageSizeUnknown(f"the archive's index.json leads to {len(manifests)} image manifests, not one")
        manifest = manifests[0]
        config = _json(docs, _blob_path(manifest["config"]["digest"]))
        paths = [_blob_path(layer["digest"]) for layer in manifest.get("layers") or []]
        layout = "oci"
    else:
        raise ImageSizeUnknown("the archive has neither manifest.json nor index.json: it is no `docker save` output")
    for path in paths:
        if _resolve(path, links, blobs) not in blobs:
            raise ImageSizeUnknown(f"layer {path} is not in the archive")
    return layout, paths, config


def _image_manifests(index: dict, docs: dict[str, bytes], depth: int = 0) -> list[dict]:
    """The image manifests an OCI index leads to whose blobs the archive holds; attestations left out."""
    found: list[dict] = []
    seen: set[str] = set()
    for desc in index.get("manifests") or []:
        digest = desc.get("digest", "")
        if digest in seen or _is_attestation(desc):
            continue
        seen.add(digest)
        path = _blob_path(digest)
        if path not in docs:
            continue  # another platform's manifest, not saved
        doc = _json(docs, path)
        kind = desc.get("mediaType") or doc.get("mediaType")
        if kind in INDEX_TYPES and depth < 4:
            found.extend(m for m in _image_manifests(doc, docs, depth + 1) if m not in found)
        elif kind in MANIFEST_TYPES and _blob_path(doc.get("config", {}).get("digest", "")) in docs:
            found.append(doc)
    return found


def _json(docs: dict[str, bytes], path: str) -> Any:
    if path not in docs:
        raise ImageSizeUnknown(f"{path} is missing from the archive (or is not a JSON document)")
    try:
        return json.loads(docs[path])
    except ValueError as err:
        raise ImageSizeUnknown(f"{path} in the archive is not valid JSON: {err}") from None


def _blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def _norm(name: str) -> str:
    return posixpath.normpath(name.lstrip("/")).removeprefix("./")


def _resolve(path: str, links: dict[str, str], blobs: dict[str, Blob]) -> str:
    """Follow links between archive members: 20.10's `docker save` links a repeated layer to its first copy."""
    for _ in range(8):
        if path in blobs or path not in links:
            return path
        path = links[path]
    return path
