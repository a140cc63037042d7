"""The one size of an image (grader/image_size.py) on small `docker save` archives built here in memory.

Both layouts the engines write are covered: the docker-archive one of 20.10 (`<id>/layer.tar`, a repeated
layer as a symlink), the one of Engine 25 and later (manifest.json over OCI blobs, gzip layers), and an OCI
layout alone (index.json, a nested index, an attestation to leave out). The manifest comes after the
blobs, as it may in a streamed archive, and every archive is read through a file that cannot seek.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import tarfile

import pytest

from grader import image_size
from grader.errors import ImageSizeUnknown
from grader.image_size import CHUNK, compression_of, measure_archive


def layer_tar(files: dict[str, int]) -> bytes:
    """An uncompressed layer: each file of the given size, filled with incompressible bytes."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, size in files.items():
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(os.urandom(size)))
    return out.getvalue()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def config_for(layers: list[bytes]) -> bytes:
    return json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [sha(x) for x in layers]}}
    ).encode()


class Archive:
    """A tar built member by member, in the order the test chooses."""

    def __init__(self):
        self.buffer = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buffer, mode="w")

    def add(self, name: str, data: bytes) -> Archive:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        return self

    def link(self, name: str, target: str) -> Archive:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tar.addfile(info)
        return self

    def stream(self) -> io.RawIOBase:
        self.tar.close()
        return OneWay(self.buffer.getvalue())


class OneWay(io.RawIOBase):
    """A file that can only be read forward, as the engine's stream can."""

    def __init__(self, data: bytes):
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:
        return self._data.readinto(buffer)


def blob(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()


def oci_archive(layers: list[bytes], stored: list[bytes], with_manifest_json: bool, nested: bool = True) -> Archive:
    """An archive as Engine 25 and later save it: blobs first, then index.json (and manifest.json)."""
    config = config_for(layers)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if s[:2] == b"\x1f\x8b" else ""),
                    "digest": sha(s),
                    "size": len(s),
                }
                for s in stored
            ],
        }
    ).encode()
    # An attestation, as buildx adds one: a manifest whose "layer" is an in-toto statement, not a layer.
    statement = b'{"_type": "https://in-toto.io/Statement/v0.1"}'
    att_config = b'{"architecture": "unknown", "os": "unknown", "rootfs": {"type": "layers", "diff_ids": []}}'
    attestation = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(att_config), "size": 1},
            "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": sha(statement), "size": len(statement)}],
        }
    ).encode()
    descriptors = [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(manifest),
            "size": len(manifest),
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(attestation),
            "size": len(attestation),
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": sha(manifest),
            },
        },
        # Another platform's manifest, listed by the index but not saved.
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:" + "0" * 64,
            "size": 1,
            "platform": {"architecture": "arm64", "os": "linux"},
        },
    ]
    inner = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
    ).encode()
    if nested:
        top = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(inner), "size": len(inner)}]
    else:
        top = descriptors
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": top}
    ).encode()
    archive = Archive()
    for data in [*stored, statement, att_config, config, attestation, manifest, inner]:
        archive.add(blob(data), data)
    archive.add("index.json", index)
    if with_manifest_json:
        archive.add(
            "manifest.json",
            json.dumps([{"Config": blob(config), "RepoTags": ["t:1"], "Layers": [blob(s) for s in stored]}]).encode(),
        )
    return archive.add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')


def test_docker_archive_of_20_10_counts_each_layer_tar_including_a_repeated_one():
    first, second = layer_tar({"app/model.bin": 70_000}), layer_tar({"app/a.py": 1_000, "app/b.py": 3})
    layers = [first, second, first]  # the third layer is the first again: saved once, then linked
    config = config_for(layers)
    archive = Archive()
    archive.add("aaa/VERSION", b"1.0").add("aaa/json", b"{}").add("aaa/layer.tar", first)
    archive.add("bbb/layer.tar", second).link("ccc/layer.tar", "../aaa/layer.tar")
    archive.add("cfg.json", config)
    archive.add(
        "manifest.json",
        json.dumps(
            [{"Config": "cfg.json", "RepoTags": ["t:1"], "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"]}]
        ).encode(),
    )
    size = measure_archive(archive.stream(), check_digests=True)
    assert size.layout == "docker-archive" and size.digests_checked
    assert [layer.size for layer in size.layers] == [len(first), len(second), len(first)]
    assert size.total == 2 * len(first) + len(second)
    assert [layer.diff_id for layer in size.layers] == [sha(x) for x in layers]


@pytest.mark.parametrize("with_manifest_json", [True, False], ids=["manifest.json", "oci-index-only"])
@pytest.mark.parametrize("nested", [True, False], ids=["nested-index", "flat-index"])
def test_oci_layout_with_gzip_and_uncompressed_layers(with_manifest_json, nested):
    layers = [layer_tar({"usr/lib/big": 200_000}), layer_tar({"etc/passwd": 700}), layer_tar({"app/x": 1})]
    stored = [gzip.compress(layers[0]), layers[1], gzip.compress(layers[2], compresslevel=1)]
    size = measure_archive(oci_archive(layers, stored, with_manifest_json, nested).stream(), check_digests=True)
    assert size.layout == ("docker-archive" if with_manifest_json else "oci")
    assert [(layer.compression, layer.size) for layer in size.layers] == [
        ("gzip", len(layers[0])),
        ("none", len(layers[1])),
        ("gzip", len(layers[2])),
    ]
    assert size.total == sum(len(x) for x in layers)
    assert size.archive_bytes > sum(len(s) for s in stored)  # configs and manifests are stored too, not counted


def test_the_size_does_not_depend_on_how_the_layers_are_stored():
    """The point of this size: the same layers give the same number whatever the store keeps of them."""
    layers = [layer_tar({"a": 50_000}), layer_tar({"b": 123_457})]
    sizes = {
        how: measure_archive(oci_archive(layers, [pack(x) for x in layers], True).stream()).total
        for how, pack in {
            "plain": lambda x: x,
            "gzip": gzip.compress,
            "xz": lzma.compress,
            "bzip2": bz2.compress,
            # pigz and eStargz write several gzip members; zero bytes after the last one are padding
            "multi-member": lambda x: gzip.compress(x[:10_000]) + gzip.compress(x[10_000:]) + b"\0" * 20,
        }.items()
    }
    assert set(sizes.values()) == {sum(len(x) for x in layers)}, sizes


def test_without_a_zstd_decompressor_a_zstd_layer_makes_the_size_unknown_not_wrong(monkeypatch):
    monkeypatch.setattr(
        image_size, "COMPRESSIONS", [(n, m, None if n == "zstd" else f) for n, m, f in image_size.COMPRESSIONS]
    )
    layers = [layer_tar({"a": 1000})]
    zstd_like = b"\x28\xb5\x2f\xfd" + b"\x00" * 100  # the zstd magic; the bytes after it are never read
    with pytest.raises(ImageSizeUnknown, match="zstd-compressed and this Python has no zstd decompressor") as err:
        measure_archive(oci_archive(layers, [zstd_like], True).stream())
    assert "compression=gzip" in err.value.hint


def test_a_zstd_blob_that_is_no_layer_of_the_image_does_not_matter(monkeypatch):
    monkeypatch.setattr(
        image_size, "COMPRESSIONS", [(n, m, None if n == "zstd" else f) for n, m, f in image_size.COMPRESSIONS]
    )
    layers = [layer_tar({"a": 1000})]
    archive = oci_archive(layers, layers, True)
    archive.add("blobs/sha256/" + "e" * 64, b"\x28\xb5\x2f\xfd" + b"\x00" * 100)
    assert measure_archive(archive.stream()).total == len(layers[0])


def test_a_truncated_gzip_layer_is_reported():
    layers = [layer_tar({"a": 100_000})]
    with pytest.raises(ImageSizeUnknown, match="gzip stream is damaged"):
        measure_archive(oci_archive(layers, [gzip.compress(layers[0])[:-5000]], True).stream())


def test_a_layer_that_is_not_the_diff_its_diff_id_hashes_is_caught_when_digests_are_checked():
    layers = [layer_tar({"a": 1000})]
    other = layer_tar({"b": 1000})
    archive = oci_archive(layers, [other], True)
    assert measure_archive(oci_archive(layers, [other], True).stream()).total == len(other)  # unchecked: counted
    with pytest.raises(ImageSizeUnknown, match="not to its diff_id"):
        measure_archive(archive.stream(), check_digests=True)


def test_layers_and_diff_ids_must_line_up():
    layers = [layer_tar({"a": 10}), layer_tar({"b": 10})]
    config = config_for(layers[:1])
    archive = Archive().add("x/layer.tar", layers[0]).add("y/layer.tar", layers[1]).add("c.json", config)
    archive.add("manifest.json", json.dumps([{"Config": "c.json", "Layers": ["x/layer.tar", "y/layer.tar"]}]).encode())
    with pytest.raises(ImageSizeUnknown, match="names 2 layers and its config 1 diff_ids"):
        measure_archive(archive.stream())


def test_archives_that_are_not_one_image_are_refused():
    with pytest.raises(ImageSizeUnknown, match="neither manifest.json nor index.json"):
        measure_archive(Archive().add("hello.txt", b"hi").stream())
    two = json.dumps([{"Config": "c.json", "Layers": []}, {"Config": "d.json", "Layers": []}]).encode()
    with pytest.raises(ImageSizeUnknown, match="describes 2 images"):
        measure_archive(Archive().add("manifest.json", two).stream())
    missing = json.dumps([{"Config": "c.json", "Layers": ["gone/layer.tar"]}]).encode()
    archive = Archive().add("c.json", config_for([b""])).add("manifest.json", missing)
    with pytest.raises(ImageSizeUnknown, match="gone/layer.tar is not in the archive"):
        measure_archive(archive.stream())


def test_compression_is_told_by_magic_bytes_and_a_plain_tar_by_its_ustar_header():
    assert compression_of(gzip.compress(b"x")) == "gzip"
    assert compression_of(lzma.compress(b"x")) == "xz"
    assert compression_of(bz2.compress(b"x")) == "bzip2"
    assert compression_of(b"\x28\xb5\x2f\xfd....") == "zstd"
    assert compression_of(layer_tar({"BZh91AY": 3})) == "none"  # a file named like bzip2's magic
    assert compression_of(b"\0" * 1024) == "none"  # an empty layer: the two zero blocks alone


def test_decompressing_never_holds_more_than_a_chunk():
    """A layer of 64 MiB of zeros is 64 KiB of gzip: it is counted a chunk at a time, never expanded whole."""
    data = gzip.compress(b"\0" * (64 << 20))
    reader = io.BytesIO(data)
    pieces = image_size._inflate(image_size._Gunzip, reader.read(CHUNK), reader)
    sizes = [len(p) for p in pieces]
    assert sum(sizes) == 64 << 20 and max(sizes) <= CHUNK


class FakeImage:
    def __init__(self, data: bytes, piece: int):
        self.data, self.piece, self.closed = data, piece, False

    def save(self, chunk_size):
        def chunks():
            try:
                for i in range(0, len(self.data), self.piece):
                    yield self.data[i : i + self.piece]
            finally:
                self.closed = True

        return chunks()


class FakeClient:
    def __init__(self, image: FakeImage):
        self.images = self
        self.image = image

    def get(self, ref):
        return self.image


@pytest.mark.parametrize("piece", [1, 777, 1 << 20])
def test_image_size_streams_the_engine_archive_in_whatever_pieces_it_comes(piece):
    layers = [layer_tar({"a": 5_000}), layer_tar({"b": 20_000})]
    archive = oci_archive(layers, [gzip.compress(layers[0]), layers[1]], True)
    archive.tar.close()
    image = FakeImage(archive.buffer.getvalue(), piece)
    assert image_size.image_size(FakeClient(image), "t:1").total == len(layers[0]) + len(layers[1])
    assert image.closed


def test_an_engine_stream_that_breaks_is_an_error_and_its_reader_stops():
    class Broken(FakeImage):
        def save(self, chunk_size):
            def chunks():
                yield self.data[:10_000]
                raise ConnectionError("the engine went away")

            return chunks()

    layers = [layer_tar({"a": 50_000})]
    archive = oci_archive(layers, layers, True)
    archive.tar.close()
    with pytest.raises(ConnectionError, match="went away"):
        image_size.image_size(FakeClient(Broken(archive.buffer.getvalue(), 1)), "t:1")


@pytest.mark.parametrize(
    "damage, message",
    [
        # tarfile takes a bad header after the first as the archive's end: the manifest is then missing
        (lambda data, at: data[:at] + b"\xff" * 512 + data[at + 512 :], "neither manifest.json nor index.json"),
        (lambda data, at: data[: at + 700], "cannot be read as a tar"),  # the stream ends inside a file
    ],
    ids=["bad-header", "cut-short"],
)
def test_a_damaged_archive_is_an_error_and_the_read_from_the_engine_stops(damage, message):
    layers = [layer_tar({"a": 50_000})]
    archive = oci_archive(layers, layers, True)
    archive.tar.close()
    data = archive.buffer.getvalue()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        at = tar.getmembers()[1].offset
    image = FakeImage(damage(data, at), 512)
    with pytest.raises(ImageSizeUnknown, match=message):
        image_size.image_size(FakeClient(image), "t:1")
    assert image.closed


class InspectableClient(FakeClient):
    """A fake engine that also answers `inspect_image` with the image's diff_ids, and counts saves."""

    def __init__(self, image: FakeImage, layers: list[bytes]):
        super().__init__(image)
        self.api = self
        self.layers = layers
        self.diff_ids = [sha(layer) for layer in layers]
        self.saves = 0

    def get(self, ref):
        self.saves += 1
        return self.image

    def inspect_image(self, ref):
        return {"RootFS": {"Type": "layers", "Layers": self.diff_ids}}


@pytest.fixture()
def fresh_lengths(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(image_size, "_LENGTHS", {})


def two_layer_image() -> tuple[InspectableClient, int]:
    layers = [layer_tar({"a": 5_000}), layer_tar({"b": 20_000})]
    archive = oci_archive(layers, [gzip.compress(layers[0]), layers[1]], True)
    archive.tar.close()
    return InspectableClient(FakeImage(archive.buffer.getvalue(), 4096), layers), len(layers[0]) + len(layers[1])


def test_an_image_whose_layers_were_all_measured_is_sized_without_a_save(fresh_lengths):
    client, total = two_layer_image()
    assert image_size.image_total(client, "t:1") == total
    assert image_size.image_total(client, "t:1") == total
    assert client.saves == 1
    # A new process reads the lengths back from the user's cache folder.
    image_size._LENGTHS.clear()
    assert image_size.image_total(client, "t:1") == total and client.saves == 1


def test_a_layer_never_measured_sends_the_image_through_save_again(fresh_lengths):
    client, total = two_layer_image()
    image_size.image_total(client, "t:1")
    client.diff_ids.append(sha(b"a layer never measured"))
    assert image_size.image_total(client, "t:1") == total  # measured from the archive, as the first time
    assert client.saves == 2


def test_a_damaged_lengths_file_means_measuring_again(fresh_lengths):
    image_size.lengths_path().parent.mkdir(parents=True)
    image_size.lengths_path().write_text("{not json")
    client, total = two_layer_image()
    assert image_size.image_total(client, "t:1") == total and client.saves == 1
    saved = json.loads(image_size.lengths_path().read_text())
    assert set(saved) == set(client.diff_ids) and sum(saved.values()) == total


class FakeRecord:
    """A build's record in BuildKit's history, serving its documents and blobs by digest and counting reads."""

    def __init__(self, stored: list[bytes], as_index: bool = False):
        self.docs: dict[str, bytes] = {sha(s): s for s in stored}
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(b"{}"), "size": 2},
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(s), "size": len(s)}
                    for s in stored
                ],
            }
        ).encode()
        self.docs[sha(manifest)] = manifest
        self.exported = sha(manifest)
        if as_index:  # what a build with provenance exports: the image's manifest beside an attestation's
            attestation = {"digest": sha(b"att"), "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
            index = json.dumps({"schemaVersion": 2, "manifests": [{"digest": sha(manifest)}, attestation]}).encode()
            self.docs[sha(index)] = index
            self.exported = sha(index)
        self.reads: list[str] = []

    def read(self, digest: str) -> bytes | None:
        self.reads.append(digest)
        return self.docs.get(digest)


@pytest.mark.parametrize("as_index", [False, True])
def test_new_layers_are_read_alone_from_the_build_record(fresh_lengths, as_index):
    client, total = two_layer_image()
    image_size.image_total(client, "t:1")  # measured once through `docker save`
    new = layer_tar({"app.py": 3_000})
    client.diff_ids.append(sha(new))
    # Only the new layer's blob is fetched; the known ones are not, and no save happens.
    record = FakeRecord([b"old-1", b"old-2", gzip.compress(new)], as_index)
    assert image_size.image_total(client, "t:2", record) == total + len(new)
    assert client.saves == 1
    assert sha(gzip.compress(new)) in record.reads and sha(b"old-1") not in record.reads
    assert image_size._known_lengths()[sha(new)] == len(new)  # remembered like a saved layer's


@pytest.mark.parametrize(
    "spoil",
    ["a blob that is not the layer", "a blob it cannot have", "layers that do not line up", "a layer too big"],
)
def test_a_record_that_cannot_tell_sends_the_image_through_save(fresh_lengths, monkeypatch, spoil):
    client, total = two_layer_image()
    image_size.image_total(client, "t:1")
    image_size._LENGTHS.clear()
    image_size.lengths_path().unlink()
    stored = [gzip.compress(layer) for layer in client.layers]
    record = FakeRecord(stored)
    if spoil == "a blob that is not the layer":
        record.docs[sha(stored[1])] = gzip.compress(layer_tar({"other": 10}))
    elif spoil == "a blob it cannot have":
        del record.docs[sha(stored[1])]
    elif spoil == "layers that do not line up":
        record = FakeRecord(stored[:1])
    else:
        monkeypatch.setattr(image_size, "RECORD_LIMIT", len(stored[0]))
    assert image_size.image_total(client, "t:1", record) == total  # right all the same: measured from the save
    assert client.saves == 2
