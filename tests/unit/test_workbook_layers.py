"""workbook.layers on small synthetic layer tars and `docker save` archives: no engine needed."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest

from workbook.layers import (
    Entry,
    Layer,
    Step,
    entry_of,
    layer_tar_bytes,
    parse_history,
    read_layer,
    read_saved,
    read_saved_image,
    short_instruction,
    steps_of,
    wasted,
)


def layer_tar(members: list[tuple[str, str, int]], compress: str = "") -> bytes:
    """A layer tar from (name, kind, size) with kind "file", "dir" or "symlink"."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=f"w:{compress}") as tar:
        for name, kind, size in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = "target"
                tar.addfile(info)
            else:
                info.size = size
                tar.addfile(info, io.BytesIO(b"x" * size))
    return buf.getvalue()


def saved_archive(layers: list[bytes], oci: bool = False, config: dict | None = None) -> bytes:
    """A `docker save`-shaped archive: config and layer blobs first, manifest.json last (as the engine writes it)."""
    buf = io.BytesIO()
    names = []
    config_name = "blobs/sha256/config" if oci else "config.json"
    with tarfile.open(fileobj=buf, mode="w") as tar:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add(config_name, json.dumps(config or {"architecture": "amd64"}).encode())
        # Written in reverse, so only manifest.json can put them in order.
        for i, data in reversed(list(enumerate(layers))):
            name = f"blobs/sha256/layer{i}" if oci else f"{i:064x}/layer.tar"
            add(name, data)
            names.insert(0, name)
        add("index.json", b'{"schemaVersion": 2, "manifests": []}')
        add("manifest.json", json.dumps([{"Config": config_name, "Layers": names}]).encode())
    return buf.getvalue()


def entries(*members) -> Layer:
    return read_layer(io.BytesIO(layer_tar(list(members))))


def test_entry_kinds_and_paths_are_normalised():
    layer = entries(
        ("./", "dir", 0),
        ("./usr/", "dir", 0),
        ("./usr/bin/tool", "file", 7),
        ("usr/bin/alias", "symlink", 0),
        ("var/lib/apt/lists/.wh.cache", "file", 0),
        ("opt/venv/.wh..wh..opq", "file", 0),
    )
    assert layer.entries == [
        Entry("usr", "dir"),
        Entry("usr/bin/tool", "file", 7),
        Entry("usr/bin/alias", "link"),
        Entry("var/lib/apt/lists/cache", "whiteout"),
        Entry("opt/venv", "opaque"),
    ]
    assert layer.size == 7


def test_root_entry_is_skipped():
    assert entry_of(tarfile.TarInfo("./")) is None


def test_compressed_layers_are_read():
    data = layer_tar([("a/b", "file", 3)], compress="gz")
    assert read_layer(io.BytesIO(data)).entries == [Entry("a/b", "file", 3)]


def test_nothing_wasted_when_nothing_is_deleted():
    waste = wasted([entries(("a", "file", 10)), entries(("b", "file", 5))])
    assert waste.total_bytes == 15
    assert waste.wasted_bytes == 0
    assert waste.efficiency == 1.0


def test_deleted_file_counts_its_earlier_size():
    waste = wasted([entries(("keep", "file", 10), ("junk", "file", 90)), entries((".wh.junk", "file", 0))])
    assert waste.wasted_bytes == 90
    assert waste.items[0].path == "junk"
    assert (waste.items[0].added_in, waste.items[0].hidden_in, waste.items[0].how) == (0, 1, "deleted")
    assert waste.efficiency == pytest.approx(0.1)


def test_deleting_a_directory_hides_everything_under_it_but_not_its_siblings():
    waste = wasted(
        [
            entries(
                ("var/lib/apt/lists/a", "file", 30),
                ("var/lib/apt/lists/b", "file", 20),
                ("var/lib/apt/listsX", "file", 5),
            ),
            entries(("var/lib/apt/.wh.lists", "file", 0)),
        ]
    )
    assert sorted(h.path for h in waste.items) == ["var/lib/apt/lists/a", "var/lib/apt/lists/b"]
    assert waste.wasted_bytes == 50
    assert waste.by_directory(depth=3) == {"/var/lib/apt": 50}


def test_overwritten_file_counts_only_the_hidden_copy():
    waste = wasted([entries(("model.bin", "file", 100)), entries(("model.bin", "file", 40))])
    assert waste.wasted_bytes == 100
    assert waste.items[0].how == "overwritten"
    assert waste.total_bytes == 140


def test_opaque_directory_hides_earlier_contents_but_keeps_new_ones():
    waste = wasted(
        [
            entries(("opt/venv/old.py", "file", 8), ("opt/other", "file", 2)),
            entries(("opt/venv/.wh..wh..opq", "file", 0), ("opt/venv/new.py", "file", 3)),
        ]
    )
    assert [h.path for h in waste.items] == ["opt/venv/old.py"]
    assert waste.wasted_bytes == 8


def test_directory_entry_alone_does_not_hide_its_contents():
    # `chmod` of a directory in a later layer copies the directory entry up, not its files.
    waste = wasted([entries(("app/", "dir", 0), ("app/model.bin", "file", 50)), entries(("app/", "dir", 0))])
    assert waste.wasted_bytes == 0


def test_file_replaced_by_directory_and_directory_replaced_by_file():
    waste = wasted(
        [
            entries(("x", "file", 4), ("d/inner", "file", 6)),
            entries(("x/", "dir", 0), ("x/y", "file", 1), ("d", "file", 2)),
        ]
    )
    assert sorted((h.path, h.size) for h in waste.items) == [("d/inner", 6), ("x", 4)]


def test_a_file_deleted_then_recreated_is_counted_once():
    waste = wasted([entries(("f", "file", 10)), entries((".wh.f", "file", 0)), entries(("f", "file", 10))])
    assert waste.wasted_bytes == 10


def test_read_saved_orders_layers_by_the_manifest():
    archive = saved_archive([layer_tar([("junk", "file", 90)]), layer_tar([(".wh.junk", "file", 0)])])
    layers = read_saved(io.BytesIO(archive))
    assert [layer.entries[0].kind for layer in layers] == ["file", "whiteout"]
    assert wasted(layers).wasted_bytes == 90


def test_read_saved_reads_the_oci_layout_and_skips_blobs_that_are_not_layers():
    archive = saved_archive([layer_tar([("a", "file", 1)]), layer_tar([("b", "file", 2)])], oci=True)
    layers = read_saved(io.BytesIO(archive))
    assert [layer.size for layer in layers] == [1, 2]


def test_read_saved_follows_a_layer_linked_to_its_first_copy():
    archive = io.BytesIO()
    first = layer_tar([("a", "file", 4)])
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("one/layer.tar", first), ("config.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("two/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../one/layer.tar"
        tar.addfile(link)
        manifest = json.dumps([{"Config": "config.json", "Layers": ["one/layer.tar", "two/layer.tar"]}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    layers = read_saved(io.BytesIO(archive.getvalue()))
    assert [layer.size for layer in layers] == [4, 4]


def test_read_saved_rejects_an_archive_without_manifest():
    with pytest.raises(ValueError, match="manifest.json"):
        read_saved(io.BytesIO(layer_tar([("a", "file", 1)])))


def test_parse_history_is_bottom_first_with_short_instructions():
    text = (
        '0\t/bin/sh -c #(nop)  CMD ["python" "app.py"]\n'
        "52428800\t/bin/sh -c pip install --no-cache-dir -r requirements.txt\n"
        "1234\t/bin/sh -c #(nop) COPY file:0123abc in . \n"
        "193176636\t\n"
    )
    assert parse_history(text) == [
        (193176636, "(base image layer)"),
        (1234, "COPY file:0123abc in ."),
        (52428800, "RUN pip install --no-cache-dir -r requirements.txt"),
        (0, 'CMD ["python" "app.py"]'),
    ]


def test_short_instruction_clips_and_reads_buildkit_lines():
    assert short_instruction("|1 X=1 /bin/sh -c make all") == "RUN make all"
    clipped = short_instruction("/bin/sh -c " + "a" * 100, width=20)
    assert len(clipped) == 20 and clipped.endswith("…")


def test_gzip_layers_are_read_and_measured_uncompressed():
    plain = layer_tar([("a/b", "file", 3000)])
    packed = gzip.compress(plain)
    layer = read_layer(io.BytesIO(packed))
    assert layer.entries == [Entry("a/b", "file", 3000)]
    assert layer.tar_bytes == len(plain) == layer_tar_bytes(io.BytesIO(packed))
    assert layer_tar_bytes(io.BytesIO(plain)) == len(plain)


def test_a_gzip_file_of_several_members_is_read_whole():
    plain = layer_tar([("a", "file", 700), ("b", "file", 900)])
    packed = gzip.compress(plain[:1024]) + gzip.compress(plain[1024:])
    assert layer_tar_bytes(io.BytesIO(packed)) == len(plain)


def test_read_saved_image_returns_the_config_and_the_layers_of_the_oci_layout():
    config = {"history": [{"created_by": "ADD rootfs.tar /"}], "rootfs": {"diff_ids": ["sha256:x"]}}
    layers = [gzip.compress(layer_tar([("a", "file", 10)])), gzip.compress(layer_tar([("b", "file", 20)]))]
    saved = read_saved_image(io.BytesIO(saved_archive(layers, oci=True, config=config)), layer_tar_bytes)
    assert saved.config == config
    assert saved.layers == [len(gzip.decompress(data)) for data in layers]


HISTORY = [  # as BuildKit writes an image config's history (the base image's own entries first)
    {"created_by": "# debian.sh --arch 'amd64' out/ 'bookworm' '@1733097600'"},
    {"created_by": 'CMD ["python3"]', "empty_layer": True},
    {"created_by": "ENV PYTHONUNBUFFERED=1", "comment": "buildkit.dockerfile.v0", "empty_layer": True},
    {"created_by": "WORKDIR /app", "comment": "buildkit.dockerfile.v0"},
    {"created_by": "RUN /bin/sh -c pip install flask # buildkit", "comment": "buildkit.dockerfile.v0"},
    {"created_by": 'CMD ["python" "app.py"]', "comment": "buildkit.dockerfile.v0", "empty_layer": True},
]


def test_steps_of_pairs_each_layer_with_the_step_that_made_it():
    steps = steps_of({"history": HISTORY}, [1000, 1536, 5000])
    assert [(s.instruction.split()[0], s.adds_layer, s.tar_bytes) for s in steps] == [
        ("#", True, 1000),
        ("CMD", False, 0),
        ("ENV", False, 0),
        ("WORKDIR", True, 1536),
        ("RUN", True, 5000),
        ("CMD", False, 0),
    ]
    assert steps[4] == Step("RUN pip install flask", True, 5000)


def test_steps_of_refuses_a_history_that_does_not_match_the_layers():
    with pytest.raises(ValueError, match="names 3 layer-making steps, but it has 2 layers"):
        steps_of({"history": HISTORY}, [1, 2])


def test_short_instruction_reads_buildkit_history():
    assert short_instruction("RUN /bin/sh -c pip install -r requirements.txt # buildkit") == (
        "RUN pip install -r requirements.txt"
    )
    assert short_instruction("RUN |1 GREETING=hey /bin/sh -c echo $GREETING # buildkit") == "RUN echo $GREETING"
    assert short_instruction("COPY app/ . # buildkit") == "COPY app/ ."
    assert short_instruction("WORKDIR /app") == "WORKDIR /app"
