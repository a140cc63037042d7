"""Unpacking submissions safely: crafted malicious archives are refused with a message, honest ones unpack."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from grader.batch.unpack import UnpackLimits, kind_of, unpack
from grader.errors import UnsafeSubmission

SMALL = UnpackLimits(max_bytes=100_000, max_files=20)


def make_zip(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A zip with `links` (symlinks) first, then `members`."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
        for name, data in members.items():
            z.writestr(name, data)
    return path


def make_tar(path: Path, members: list[tarfile.TarInfo], data: dict[str, bytes] | None = None) -> Path:
    data = data or {}
    with tarfile.open(path, "w:gz") as t:
        for info in members:
            body = data.get(info.name)
            if body is not None:
                info.size = len(body)
            t.addfile(info, io.BytesIO(body) if body is not None else None)
    return path


def member(name: str, kind=tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


def test_kinds(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    for name in ("a.zip", "a.tar", "a.tar.gz", "a.tgz", "a.tar.xz", "a.bundle", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    kinds = {p.name: kind_of(p) for p in tmp_path.iterdir()}
    assert kinds == {
        "folder": "folder",
        "repo": "git",
        "a.zip": "zip",
        "a.tar": "tar",
        "a.tar.gz": "tar",
        "a.tgz": "tar",
        "a.tar.xz": "tar",
        "a.bundle": "git",
        "notes.txt": None,
    }


# --- honest submissions -------------------------------------------------------------------------------
def test_a_zip_unpacks_and_its_single_top_folder_is_the_submission(tmp_path):
    archive = make_zip(tmp_path / "ada.zip", {"lab01/Dockerfile": b"FROM x\n", "lab01/app/app.py": b"print(1)\n"})
    top = unpack(archive, tmp_path / "out")
    assert top == tmp_path / "out" / "lab01"
    assert (top / "Dockerfile").read_text() == "FROM x\n"
    assert (top / "app" / "app.py").is_file()


def test_macos_noise_beside_the_top_folder_is_ignored(tmp_path):
    archive = make_zip(tmp_path / "ada.zip", {"lab/Dockerfile": b"FROM x\n", "__MACOSX/lab/._Dockerfile": b"junk"})
    assert unpack(archive, tmp_path / "out").name == "lab"


def test_a_tar_gz_unpacks_with_a_link_inside_it(tmp_path):
    archive = make_tar(
        tmp_path / "ada.tar.gz",
        [
            member("Dockerfile"),
            member("app", tarfile.DIRTYPE),
            member("app/main.py"),
            member("main.py", tarfile.SYMTYPE, "app/main.py"),
        ],
        {"Dockerfile": b"FROM x\n", "app/main.py": b"print(1)\n"},
    )
    top = unpack(archive, tmp_path / "out")
    assert (top / "main.py").is_symlink() and (top / "main.py").read_text() == "print(1)\n"


def test_a_folder_is_copied_not_used_in_place(tmp_path):
    source = tmp_path / "ada"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM x\n")
    top = unpack(source, tmp_path / "out")
    (top / "Dockerfile").write_text("changed")
    assert (source / "Dockerfile").read_text() == "FROM x\n"


# --- paths that escape ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil.txt", "lab/../../evil.txt", "..\\evil.txt"])
def test_zip_member_climbing_out_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "mal.zip", {"Dockerfile": b"FROM x\n", name: b"owned"})
    with pytest.raises(UnsafeSubmission, match=r"outside the submission folder \('\.\.'\)"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("name", ["/tmp/evil.txt", "C:/evil.txt"])
def test_zip_member_with_an_absolute_path_is_refused(tmp_path, name):
    archive = make_zip(tmp_path / "mal.zip", {name: b"owned"})
    with pytest.raises(UnsafeSubmission, match="absolute path"):
        unpack(archive, tmp_path / "out")


def test_zip_symlink_pointing_out_is_refused(tmp_path):
    archive = make_zip(tmp_path / "mal.zip", {"Dockerfile": b"FROM x\n"}, links={"secrets": "/etc"})
    with pytest.raises(UnsafeSubmission, match="is a link to '/etc', outside the submission"):
        unpack(archive, tmp_path / "out")


def test_zip_member_written_through_its_own_link_is_refused(tmp_path):
    archive = make_zip(tmp_path / "mal.zip", {"out/evil.txt": b"owned"}, links={"out": "."})
    with pytest.raises(UnsafeSubmission, match="written through a link"):
        unpack(archive, tmp_path / "x")


def test_zip_links_that_escape_only_together_are_refused(tmp_path):
    # Each link alone stays inside; followed on disk, t -> s/.. leaves the folder (s points to '.').
    archive = make_zip(tmp_path / "mal.zip", {"Dockerfile": b"FROM x\n"}, links={"s": ".", "t": "s/.."})
    with pytest.raises(UnsafeSubmission, match="outside the submission"):
        unpack(archive, tmp_path / "out")


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt"])
def test_tar_member_escaping_is_refused(tmp_path, name):
    archive = make_tar(tmp_path / "mal.tar.gz", [member(name)], {name: b"owned"})
    with pytest.raises(UnsafeSubmission, match="outside the submission folder|absolute path"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_tar_symlink_pointing_out_is_refused(tmp_path):
    archive = make_tar(tmp_path / "mal.tar", [member("passwd", tarfile.SYMTYPE, "/etc/passwd")])
    with pytest.raises(UnsafeSubmission, match="outside the submission"):
        unpack(archive, tmp_path / "out")


def test_tar_hardlink_pointing_out_is_refused(tmp_path):
    archive = make_tar(tmp_path / "mal.tar", [member("passwd", tarfile.LNKTYPE, "../../etc/passwd")])
    with pytest.raises(UnsafeSubmission, match="outside the submission"):
        unpack(archive, tmp_path / "out")


def test_tar_file_written_through_a_link_out_is_refused(tmp_path):
    archive = make_tar(
        tmp_path / "mal.tar",
        [member("d", tarfile.SYMTYPE, "."), member("e", tarfile.SYMTYPE, "d/.."), member("e/evil.txt")],
        {"e/evil.txt": b"owned"},
    )
    with pytest.raises(UnsafeSubmission):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_tar_device_files_are_refused(tmp_path, kind):
    archive = make_tar(tmp_path / "mal.tar", [member("dev", kind)])
    with pytest.raises(UnsafeSubmission, match="device file or FIFO"):
        unpack(archive, tmp_path / "out")


def test_folder_with_a_link_out_is_refused(tmp_path):
    source = tmp_path / "ada"
    source.mkdir()
    (source / "Dockerfile").write_text("FROM x\n")
    (source / "keys").symlink_to("/root")
    with pytest.raises(UnsafeSubmission, match="is a link to '/root', outside the submission"):
        unpack(source, tmp_path / "out")


def test_folder_with_a_fifo_is_refused(tmp_path):
    source = tmp_path / "ada"
    source.mkdir()
    os.mkfifo(source / "pipe")
    with pytest.raises(UnsafeSubmission, match="not a regular file"):
        unpack(source, tmp_path / "out")


# --- sizes ---------------------------------------------------------------------------------------------
def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(50 * 1024 * 1024)})
    assert archive.stat().st_size < 100_000  # 50 MB of zeros compress to almost nothing
    with pytest.raises(UnsafeSubmission, match="would unpack to 52 MB, more than the limit of 0 MB.*zip bomb"):
        unpack(archive, tmp_path / "out", limits=SMALL)
    assert not any((tmp_path / "out").rglob("*"))


def test_zip_member_with_an_absurd_ratio_is_refused_even_under_the_size_limit(tmp_path):
    archive = make_zip(tmp_path / "bomb.zip", {"zeros.bin": bytes(5 * 1024 * 1024)})
    with pytest.raises(UnsafeSubmission, match="refused as a zip bomb"):
        unpack(archive, tmp_path / "out")


def test_zip_whose_header_understates_a_member_is_stopped(tmp_path):
    archive = make_zip(tmp_path / "liar.zip", {"big.bin": os.urandom(4000)})
    raw = bytearray(archive.read_bytes())
    # Rewrite the declared size (local header and central directory) to 10 bytes.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        raw[at + offset : at + offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(UnsafeSubmission, match="damaged|larger than its header says"):
        unpack(archive, tmp_path / "out")
    assert all(p.stat().st_size <= 10 for p in (tmp_path / "out").rglob("*") if p.is_file())


def test_too_many_files_are_refused(tmp_path):
    archive = make_zip(tmp_path / "many.zip", {f"f{i}.txt": b"x" for i in range(21)})
    with pytest.raises(UnsafeSubmission, match="more than 20 files"):
        unpack(archive, tmp_path / "out", limits=SMALL)


def test_tar_too_large_is_refused_before_the_member_is_written(tmp_path):
    archive = make_tar(tmp_path / "big.tar.gz", [member("big.bin")], {"big.bin": bytes(200_000)})
    with pytest.raises(UnsafeSubmission, match="unpacks to more than 0 MB"):
        unpack(archive, tmp_path / "out", limits=SMALL)
    assert not (tmp_path / "out" / "big.bin").exists()


def test_not_an_archive(tmp_path):
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(UnsafeSubmission, match="not a readable zip archive"):
        unpack(tmp_path / "fake.zip", tmp_path / "out")
    (tmp_path / "fake.tar.gz").write_text("not a tar")
    with pytest.raises(UnsafeSubmission, match="not a readable tar archive"):
        unpack(tmp_path / "fake.tar.gz", tmp_path / "out2")


# --- git -----------------------------------------------------------------------------------------------
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(*args, cwd: Path) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.org", "-c", "user.name=t", *args], cwd=cwd, check=True, capture_output=True
    )


def make_repo(path: Path) -> Path:
    path.mkdir()
    (path / "Dockerfile").write_text("FROM x\n")
    git("init", "-q", cwd=path)
    git("add", "-A", cwd=path)
    git("commit", "-qm", "lab", cwd=path)
    (path / "Dockerfile").write_text("FROM uncommitted\n")  # only what was committed is graded
    return path


@needs_git
def test_a_working_copy_is_cloned_at_its_last_commit(tmp_path):
    top = unpack(make_repo(tmp_path / "ada"), tmp_path / "out")
    assert (top / "Dockerfile").read_text() == "FROM x\n"
    assert not (top / ".git").exists()


@needs_git
def test_a_bare_repository_and_a_bundle_are_cloned(tmp_path):
    repo = make_repo(tmp_path / "ada")
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(tmp_path / "ada.git")], check=True)
    git("bundle", "create", str(tmp_path / "ada.bundle"), "HEAD", cwd=repo)
    assert kind_of(tmp_path / "ada.git") == "git"
    assert (unpack(tmp_path / "ada.git", tmp_path / "out1") / "Dockerfile").read_text() == "FROM x\n"
    assert (unpack(tmp_path / "ada.bundle", tmp_path / "out2") / "Dockerfile").read_text() == "FROM x\n"


@needs_git
def test_a_repository_with_no_commit_is_refused(tmp_path):
    (tmp_path / "ada").mkdir()
    git("init", "-q", cwd=tmp_path / "ada")
    with pytest.raises(UnsafeSubmission, match="no committed files|git clone failed"):
        unpack(tmp_path / "ada", tmp_path / "out")


@needs_git
def test_a_committed_link_out_is_refused(tmp_path):
    repo = tmp_path / "ada"
    repo.mkdir()
    (repo / "keys").symlink_to("/root/.ssh")
    git("init", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "x", cwd=repo)
    with pytest.raises(UnsafeSubmission, match="outside the submission"):
        unpack(repo, tmp_path / "out")


def test_zip_link_over_an_unpacked_folder_is_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "mal.zip", "w") as z:
        z.writestr("app/x.py", b"x")
        info = zipfile.ZipInfo("app")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(info, "/etc")
    with pytest.raises(UnsafeSubmission):
        unpack(tmp_path / "mal.zip", tmp_path / "out")
