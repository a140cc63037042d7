"""Unpacking a learner's submission into a scratch folder, safely.

A submission is a folder, a zip or tar archive, or a git repository (a working copy, a bare repository
or a bundle). Whatever it is, the grader only ever sees a plain folder in its scratch space:

- no member may land outside that folder (absolute paths, `..`, links pointing out of it);
- no device files, FIFOs or sockets;
- at most `max_files` files and `max_bytes` bytes, counted while writing, so an archive whose headers
  lie is stopped too; a zip member that expands more than `max_ratio` times is refused as a zip bomb.

Tar archives are extracted with Python's own `data` extraction filter as a second line of defence.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grader.errors import UnsafeSubmission

ZIP_SUFFIXES = (".zip",)
TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
GIT_SUFFIXES = (".bundle",)
# Folders that archive tools add beside the real content, left out when looking for the submission's top.
PACKAGING_NOISE = {"__MACOSX", ".DS_Store", "Thumbs.db"}
CHUNK = 1 << 16
GIT_TIMEOUT_S = 120


@dataclass(frozen=True)
class UnpackLimits:
    """How much one submission may hold once unpacked."""

    max_bytes: int = 200 * 1024 * 1024
    max_files: int = 5000
    max_ratio: float = 200.0  # uncompressed / compressed size of one zip member, above 1 MiB
    bomb_floor_bytes: int = 1024 * 1024


def kind_of(path: Path) -> str | None:
    """folder | zip | tar | git, or None when `path` is none of them."""
    name = path.name.lower()
    if path.is_dir():
        if (path / ".git").exists() or _is_bare_repository(path):
            return "git"
        return "folder"
    if path.is_file():
        if name.endswith(ZIP_SUFFIXES):
            return "zip"
        if name.endswith(TAR_SUFFIXES):
            return "tar"
        if name.endswith(GIT_SUFFIXES):
            return "git"
    return None


def unpack(source: Path, dest: Path, kind: str | None = None, limits: UnpackLimits | None = None) -> Path:
    """Unpack `source` into the new folder `dest`; returns the folder that holds the submission.

    When everything sits in one top folder (a zipped lab folder, say), that folder is returned.
    Raises UnsafeSubmission, with a message for the learner, when it cannot be unpacked safely.
    """
    limits = limits or UnpackLimits()
    kind = kind or kind_of(source)
    dest.mkdir(parents=True)
    if kind == "folder":
        _copy_folder(source, dest, limits)
    elif kind == "zip":
        _unzip(source, dest, limits)
    elif kind == "tar":
        _untar(source, dest, limits)
    elif kind == "git":
        _clone(source, dest, limits)
    else:
        raise UnsafeSubmission(
            f"{source.name} is not a folder, a zip or tar archive, or a git repository",
            hint="submit your lab folder, or a .zip / .tar.gz of it",
        )
    _check_links(dest, source.name)
    return _top(dest)


def _top(folder: Path) -> Path:
    entries = [p for p in folder.iterdir() if p.name not in PACKAGING_NOISE]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        return _top(entries[0])
    return folder


# --- names and limits ----------------------------------------------------------------------------------
def _safe_relative(name: str, archive: str) -> PurePosixPath:
    """The member name as a path inside the destination; refused when it is absolute or climbs out."""
    posix = name.replace("\\", "/")
    path = PurePosixPath(posix)
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise UnsafeSubmission(
            f"{archive}: member {name!r} has an absolute path",
            hint="archive the lab folder with relative paths (cd into its parent, then zip -r lab.zip lab/)",
        )
    if ".." in path.parts:
        raise UnsafeSubmission(
            f"{archive}: member {name!r} points outside the submission folder ('..')",
            hint="archive only the lab folder itself",
        )
    return PurePosixPath(*[p for p in path.parts if p not in ("", ".")])


def _inside(root: Path, link: Path, target: str) -> bool:
    """Whether a symlink at `link` pointing to `target` stays inside `root` (no filesystem access)."""
    if target.startswith("/"):
        return False
    parts: list[str] = list(link.parent.relative_to(root).parts)
    for part in PurePosixPath(target).parts:
        if part == "..":
            if not parts:
                return False
            parts.pop()
        elif part != ".":
            parts.append(part)
    return True


def _check_links(root: Path, source: str) -> None:
    """Every link, resolved on disk (links through links included), must end inside `root`."""
    top = root.resolve()
    for here, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(here) / name
            if path.is_symlink() and not Path(os.path.realpath(path)).is_relative_to(top):
                raise UnsafeSubmission(
                    f"{source}: {path.relative_to(root)} is a link to {os.readlink(path)!r}, outside the submission",
                    hint="replace the link with the file itself",
                )


class _Budget:
    """Counts files and bytes written, and refuses to go past the limits."""

    def __init__(self, limits: UnpackLimits, source: str):
        self.limits, self.source = limits, source
        self.files = 0
        self.bytes = 0

    def add_file(self) -> None:
        self.files += 1
        if self.files > self.limits.max_files:
            raise UnsafeSubmission(
                f"{self.source} holds more than {self.limits.max_files} files",
                hint="submit only the lab folder (no virtual environment, no data sets, no .git)",
            )

    def add_bytes(self, n: int) -> None:
        self.bytes += n
        if self.bytes > self.limits.max_bytes:
            raise UnsafeSubmission(
                f"{self.source} unpacks to more than {self.limits.max_bytes / 1e6:.0f} MB",
                hint="submit only the lab folder: leave out models, data sets and virtual environments",
            )


# --- folders ---------------------------------------------------------------------------------------------
def _check_tree(root: Path, budget: _Budget, skip: tuple[str, ...] = ()) -> None:
    """Walk `root` without following links: count files and bytes, refuse special files and escaping links."""
    for here, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in skip]
        for name in dirs + files:
            path = Path(here) / name
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                if not _inside(root, path, os.readlink(path)):
                    raise UnsafeSubmission(
                        f"{budget.source}: {path.relative_to(root)} is a link to {os.readlink(path)!r}, "
                        "outside the submission",
                        hint="replace the link with the file itself",
                    )
            elif stat.S_ISREG(info.st_mode):
                budget.add_file()
                budget.add_bytes(info.st_size)
            elif not stat.S_ISDIR(info.st_mode):
                raise UnsafeSubmission(
                    f"{budget.source}: {path.relative_to(root)} is not a regular file (a device, FIFO or socket)",
                    hint="submit regular files only",
                )


def _copy_folder(source: Path, dest: Path, limits: UnpackLimits) -> None:
    _check_tree(source, _Budget(limits, source.name))
    shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=True)


# --- zip -----------------------------------------------------------------------------------------------
def _unzip(source: Path, dest: Path, limits: UnpackLimits) -> None:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError) as err:
        raise UnsafeSubmission(f"{source.name} is not a readable zip archive: {err}") from None
    try:
        with archive:
            _unzip_members(archive, source, dest, limits)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as err:
        raise UnsafeSubmission(f"{source.name} is damaged: {err}", hint="make the zip archive again") from None


def _unzip_members(archive: zipfile.ZipFile, source: Path, dest: Path, limits: UnpackLimits) -> None:
    budget = _Budget(limits, source.name)
    infos = archive.infolist()
    declared = sum(i.file_size for i in infos)
    if declared > limits.max_bytes:
        raise UnsafeSubmission(
            f"{source.name} would unpack to {declared / 1e6:.0f} MB, more than the limit of "
            f"{limits.max_bytes / 1e6:.0f} MB: refused (a zip bomb?)",
            hint="submit only the lab folder: leave out models, data sets and virtual environments",
        )
    for info in infos:
        rel = _safe_relative(info.filename, source.name)
        if not rel.parts:
            continue
        target = dest.joinpath(*rel.parts)
        _refuse_if_taken(target, source.name, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            if target.exists():
                raise UnsafeSubmission(f"{source.name}: {info.filename} is a link over a path already unpacked")
            link = archive.read(info).decode("utf-8", errors="replace")
            if not _inside(dest, target, link):
                raise UnsafeSubmission(
                    f"{source.name}: {info.filename} is a link to {link!r}, outside the submission",
                    hint="replace the link with the file itself",
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(link, target)
            continue
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise UnsafeSubmission(f"{source.name}: {info.filename} is not a regular file")
        if info.file_size > limits.bomb_floor_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeSubmission(
                f"{source.name}: {info.filename} expands {info.file_size / max(info.compress_size, 1):.0f} "
                "times: refused as a zip bomb",
                hint="submit the lab folder as it is on your machine",
            )
        budget.add_file()
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with archive.open(info) as src, open(target, "wb") as out:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > info.file_size:  # the header lied about the size
                    raise UnsafeSubmission(f"{source.name}: {info.filename} is larger than its header says")
                budget.add_bytes(len(chunk))
                out.write(chunk)


def _refuse_if_taken(target: Path, archive: str, name: str) -> None:
    # A member written through a link that an earlier member made could land anywhere: never follow one.
    if any(p.is_symlink() for p in (target, *target.parents)):
        raise UnsafeSubmission(f"{archive}: {name} would be written through a link")


# --- tar -----------------------------------------------------------------------------------------------
def _untar(source: Path, dest: Path, limits: UnpackLimits) -> None:
    budget = _Budget(limits, source.name)
    try:
        # Streaming mode: each member is checked before it is written, and reading stops at the first refusal.
        with tarfile.open(source, mode="r|*") as archive:
            for member in archive:
                rel = _safe_relative(member.name, source.name)
                if member.isdev() or member.isfifo():
                    raise UnsafeSubmission(
                        f"{source.name}: {member.name} is a device file or FIFO", hint="submit regular files only"
                    )
                if member.issym() and not _inside(dest, dest.joinpath(*rel.parts), member.linkname):
                    raise UnsafeSubmission(
                        f"{source.name}: {member.name} is a link to {member.linkname!r}, outside the submission",
                        hint="replace the link with the file itself",
                    )
                if member.islnk():
                    _safe_relative(member.linkname, source.name)
                if member.isfile():
                    budget.add_file()
                    budget.add_bytes(member.size)
                archive.extract(member, dest, filter="data")
    except tarfile.FilterError as err:
        raise UnsafeSubmission(f"{source.name}: refused to unpack: {err}") from None
    except (tarfile.TarError, EOFError, OSError) as err:
        raise UnsafeSubmission(f"{source.name} is not a readable tar archive: {err}") from None


# --- git -----------------------------------------------------------------------------------------------
def _is_bare_repository(path: Path) -> bool:
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def _clone(source: Path, dest: Path, limits: UnpackLimits) -> None:
    """A shallow clone of the repository's checked-out branch: what was committed is what is graded."""
    if source.is_file():  # a bundle: cloned from its path (a bundle cannot be cloned shallow)
        where, shallow = str(source.resolve()), []
    else:  # file:// so that --depth applies to a local repository too
        where, shallow = source.resolve().as_uri(), ["--depth", "1"]
    env = {
        **os.environ,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_LFS_SKIP_SMUDGE": "1",
        # The learner's repository is not ours: git refuses to read one owned by another user otherwise.
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "safe.directory",
        "GIT_CONFIG_VALUE_0": "*",
    }
    cmd = ["git", "clone", "--quiet", *shallow, "--no-recurse-submodules", "--", where, str(dest)]
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False)
    except FileNotFoundError:
        raise UnsafeSubmission("git is not installed, so a git submission cannot be read") from None
    except subprocess.TimeoutExpired:
        raise UnsafeSubmission(f"{source.name}: git clone did not finish within {GIT_TIMEOUT_S}s") from None
    if done.returncode != 0:
        raise UnsafeSubmission(
            f"{source.name}: git clone failed: {done.stderr.strip() or done.returncode}",
            hint="commit your work (git add, git commit) before submitting the repository",
        )
    shutil.rmtree(dest / ".git", ignore_errors=True)
    if not any(dest.iterdir()):
        raise UnsafeSubmission(
            f"{source.name}: the repository has no committed files", hint="commit your work before submitting"
        )
    _check_tree(dest, _Budget(limits, source.name))
