"""workbook.security on synthetic `docker save` archives and /proc status text: no engine needed."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from workbook.security import MAX_FILE, find_in_saved, uid_of_status


def tar_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def saved(layers: list[dict[str, bytes]]) -> io.BytesIO:
    names = [f"l{i}/layer.tar" for i in range(len(layers))]
    files = {n: tar_of(layer) for n, layer in zip(names, layers, strict=True)}
    files["manifest.json"] = json.dumps([{"Layers": names}]).encode()
    return io.BytesIO(tar_of(files))


def test_finds_a_file_deleted_in_a_later_layer():
    archive = saved(
        [
            {"usr/lib/x.so": b"nothing here"},
            {"app/secret.txt": b"header\nAPI_KEY=sk-demo-123\n"},
            {"app/.wh.secret.txt": b""},
        ]
    )
    hits = find_in_saved(archive, b"sk-demo")
    assert [(h.layer, h.path, h.line) for h in hits] == [(1, "app/secret.txt", "API_KEY=sk-demo-123")]


def test_nothing_found_and_big_files_skipped():
    archive = saved([{"big.bin": b"sk-demo" + b"x" * MAX_FILE}, {"app/ok.txt": b"clean"}])
    assert find_in_saved(archive, b"sk-demo") == []


def test_not_an_archive():
    with pytest.raises(ValueError):
        find_in_saved(io.BytesIO(tar_of({"x": b"y"})), b"sk")


def test_uid_of_status():
    assert uid_of_status("Name:\tsleep\nUid:\t10001\t10001\t10001\t10001\n") == 10001
    with pytest.raises(ValueError):
        uid_of_status("Name:\tsleep\n")
