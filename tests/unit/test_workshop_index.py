"""The workshop pack's pure parts: the PEP 503 index over a wheelhouse, and what goes into the pack."""

from __future__ import annotations

import hashlib
import re

import pytest

from grader import workshop


@pytest.mark.parametrize(
    "filename, project",
    [
        ("scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl", "scikit-learn"),
        ("typing_extensions-4.16.0-py3-none-any.whl", "typing-extensions"),
        ("torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl", "torch"),
        ("psutil-7.2.2.tar.gz", "psutil"),
        ("zope.interface-7.0.zip", "zope-interface"),
        ("Flask-3.1.3-py3-none-any.whl", "flask"),
    ],
)
def test_project_names_are_read_from_file_names_as_pep_503_writes_them(filename, project):
    assert workshop.project_of(filename) == project


def test_the_simple_index_lists_every_file_with_its_hash(tmp_path):
    files = {"scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl": b"w1", "psutil-7.2.2.tar.gz": b"s1"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "notes.txt").write_text("not a package")
    hashes = workshop.write_simple_index(tmp_path)
    assert hashes == {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}  # packages only
    root = (tmp_path / "simple" / "index.html").read_text()
    assert re.findall(r'href="([^"]+)"', root) == ["psutil/", "scikit-learn/"]
    page = (tmp_path / "simple" / "scikit-learn" / "index.html").read_text()
    name = "scikit_learn-1.9.1-cp311-cp311-manylinux_2_28_x86_64.whl"
    assert f'href="../../{name}#sha256={hashlib.sha256(b"w1").hexdigest()}"' in page
    assert workshop.write_simple_index(tmp_path) == hashes  # rewriting replaces the old index


def test_every_lab_requirements_file_is_packed_and_pip_conf_names_the_wheelhouse():
    files = [str(p.relative_to(workshop.REPO_ROOT)) for p in workshop.requirement_files()]
    assert "solutions/01-first-model-container/app/requirements.txt" in files
    assert "solutions/06-compose-stack/api/requirements.txt" in files
    assert all(f.startswith("solutions/") for f in files)
    conf = workshop.pip_conf("172.17.0.1:3141")
    assert "index-url = http://172.17.0.1:3141/simple/\ntrusted-host = 172.17.0.1\n" in conf
