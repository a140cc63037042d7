"""The one size of an image (grader/image_size.py) on the real engine, against a value found another way.

A tiny image FROM scratch gets two COPY layers of known files. The reference is computed here without
grader/image_size.py: `docker save` to a file through the CLI, each layer file read whole with tarfile and
gzip, matched to the config's diff_ids by its sha256. The layers must hold exactly the files copied, and
the test names the image store it ran on (overlay2 on 20.10, containerd on 28.5), where `docker image
inspect`'s Size means different things.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from grader.image_size import image_size

FILES = {"a.bin": 300_001, "data/b.bin": 1_234_567}  # incompressible, sizes not multiples of 512


def image_store(engine) -> str:
    info = engine.info()
    status = dict(info.get("DriverStatus") or [])
    if status.get("driver-type") == "io.containerd.snapshotter.v1":
        return f"containerd store ({info['Driver']} snapshotter)"
    return f"graph driver store ({info['Driver']})"


def reference_sizes(archive: Path) -> tuple[list[str], dict[str, int], dict[str, list[tuple[str, int]]]]:
    """diff_ids, and for every layer file in the archive: its uncompressed length and entries, by sha256."""
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        config = json.load(tar.extractfile(manifest[0]["Config"]))
        lengths, entries = {}, {}
        for member in tar.getmembers():
            if not member.isfile() or not (member.name.startswith("blobs/") or member.name.endswith("layer.tar")):
                continue
            data = tar.extractfile(member).read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            lengths[digest] = len(data)
            try:
                with tarfile.open(fileobj=io.BytesIO(data)) as layer:
                    entries[digest] = [(m.name, m.size) for m in layer.getmembers() if m.isfile()]
            except tarfile.TarError:
                pass  # a config or manifest, not a layer
    return config["rootfs"]["diff_ids"], lengths, entries


@pytest.fixture
def context(tmp_path):
    for name, size in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(os.urandom(size))
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY a.bin /a.bin\nCOPY data/b.bin /data/b.bin\n")
    return tmp_path


def build(engine, context: Path, builder: str) -> str:
    """The image's id, built by BuildKit (the grader's builder) or the classic builder (20.10's default)."""
    tag = f"grader-size-probe:{builder}-{engine.session}"
    if builder == "classic":
        image, _ = engine.client.images.build(path=str(context), tag=tag, labels=engine.labels, rm=True, forcerm=True)
        return image.id
    built = engine.build(context, "Dockerfile", tag, timeout_s=300)
    assert built.ok, f"{built.error}\n{built.log_tail()}"
    return built.image_id


@pytest.mark.parametrize("builder", ["buildkit", "classic"])
def test_image_size_equals_the_layer_tars_docker_save_writes(engine, builder, context, tmp_path, record_property):
    store = image_store(engine)
    record_property("image_store", store)
    image_id = build(engine, context, builder)

    measured = image_size(engine.client, image_id, check_digests=True)

    archive = tmp_path / "saved.tar"
    subprocess.run(["docker", "save", "--output", str(archive), image_id], check=True, capture_output=True)
    diff_ids, lengths, entries = reference_sizes(archive)
    assert [layer.diff_id for layer in measured.layers] == diff_ids, store
    expected = sum(lengths[d] for d in diff_ids)
    assert measured.total == expected, f"[{store}] image_size {measured.total} B, docker save's layer tars {expected} B"
    # The layers are the two COPYs, each holding exactly its file.
    assert [entries[d] for d in diff_ids] == [[(name, size)] for name, size in FILES.items()], store
    # A tar is its files plus a 512-byte header each, padding to 512 and an end: a little more than the files.
    assert sum(FILES.values()) < measured.total < sum(FILES.values()) + 16 * 512, store
    inspect_size = engine.inspect_image(image_id)["Size"]
    record_property("sizes", {"image_size": measured.total, "inspect": inspect_size, "layout": measured.layout})
    print(f"{store}, {builder} builder: image_size {measured.total} B, docker image inspect Size {inspect_size} B")


def test_a_graded_image_reports_that_size(engine, tmp_path):
    """The grade's `image.size_mb` (what budgets use) is lab 01's image measured as above, on this store."""
    from grader.session import grade
    from grader.spec import official_specs

    spec = official_specs()["01"]
    tag = f"grader-size-probe:lab01-{engine.session}"
    built = engine.build(spec.path, spec.dockerfile, tag, timeout_s=900)
    assert built.ok, built.log_tail()
    archive = tmp_path / "lab01.tar"
    subprocess.run(["docker", "save", "--output", str(archive), tag], check=True, capture_output=True)
    diff_ids, lengths, _ = reference_sizes(archive)
    expected_mb = round(sum(lengths[d] for d in diff_ids) / 1e6, 1)

    result = grade(spec.path, spec, engine=engine)
    assert result.image["id"] == built.image_id, "the grade built another image from the same files"
    assert result.image["size_mb"] == expected_mb, f"[{image_store(engine)}] graded {result.image['size_mb']} MB"
    budget = next(t for t in result.tests if t.id == "ImageSizeBudget")
    assert budget.status == "passed" and f"{expected_mb:.0f} MB" in budget.message


def test_a_rebuilt_layer_is_sized_from_the_build_record_without_a_save(engine, context, tmp_path, monkeypatch):
    """After a change to one file, the new layer is read alone from BuildKit's record of the build."""
    from grader import image_size as sizes

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(sizes, "_LENGTHS", {})
    first = build(engine, context, "buildkit")
    sizes.image_total(engine.client, first)  # measured through `docker save`, as a cold grade is
    (context / "data" / "b.bin").write_bytes(os.urandom(777_777))
    rebuilt = engine.build(context, "Dockerfile", f"grader-size-probe:rebuilt-{engine.session}", timeout_s=300)
    assert rebuilt.ok, rebuilt.log_tail()
    if rebuilt.record is None:
        pytest.skip(f"this engine keeps no build records ({image_store(engine)}): sizes come from `docker save`")
    saves = []
    monkeypatch.setattr(sizes, "image_size", lambda *a, **k: saves.append(a) or pytest.fail("docker save was used"))

    measured = sizes.image_total(engine.client, rebuilt.image_id, rebuilt.record)

    archive = tmp_path / "rebuilt.tar"
    subprocess.run(["docker", "save", "--output", str(archive), rebuilt.image_id], check=True, capture_output=True)
    diff_ids, lengths, entries = reference_sizes(archive)
    assert measured == sum(lengths[d] for d in diff_ids), image_store(engine)
    assert entries[diff_ids[-1]] == [("data/b.bin", 777_777)]
    assert not saves
