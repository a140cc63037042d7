"""Boot a real, minimal virtual machine beside a container (chapter 1), so the comparison is measured.

The VM is as small as a Linux VM gets: QEMU, a distribution kernel, and an initramfs holding a static
busybox and an `/init` script that prints a marker line and powers the machine off. The time from
starting QEMU to the marker on the VM's serial console is its boot time. KVM is tried first where
/dev/kvm is usable, with a short timeout (on nested or sandboxed hosts it can hang), and software
emulation (`-accel tcg`) is the fallback; the result says which one ran.

`docker/vm-kit.sh` installs QEMU and busybox and unpacks a kernel into `.cache/vm/`; everything built
here (the initramfs) goes there too. Nothing in this module needs root.

    kit = find_kit()                      # raises VMKitMissing, with what to do, when a piece is absent
    boot = boot_vm(kit)                   # VMBoot(seconds, accel, tail, notes)
"""

from __future__ import annotations

import hashlib
import os
import re
import selectors
import shutil
import signal
import stat
import struct
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from grader.spec import REPO_ROOT

CACHE_DIR = REPO_ROOT / ".cache" / "vm"
MARKER = "WORKBOOK-VM-READY"
KIT_SCRIPT = "docker/vm-kit.sh"
TAIL_LINES = 15


class VMError(RuntimeError):
    """Base of this module's errors."""


class VMKitMissing(VMError):
    """Raised when QEMU, a kernel or a static busybox cannot be found; the message says how to get it."""


class VMBootFailed(VMError):
    """Raised when no accelerator brought the VM to its marker line within the timeout."""


# --- the initramfs: a cpio archive in the "newc" format the kernel unpacks at boot ---------------------


@dataclass(frozen=True)
class CpioEntry:
    """One member of a cpio archive: a path (no leading slash), its mode bits and its content."""

    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)  # (major, minor) of a device node

    @classmethod
    def directory(cls, name: str, perm: int = 0o755) -> CpioEntry:
        return cls(name, stat.S_IFDIR | perm)

    @classmethod
    def file(cls, name: str, data: bytes, perm: int = 0o644) -> CpioEntry:
        return cls(name, stat.S_IFREG | perm, data)

    @classmethod
    def symlink(cls, name: str, target: str) -> CpioEntry:
        return cls(name, stat.S_IFLNK | 0o777, target.encode())

    @classmethod
    def char_device(cls, name: str, major: int, minor: int, perm: int = 0o600) -> CpioEntry:
        return cls(name, stat.S_IFCHR | perm, b"", (major, minor))


_NEWC_MAGIC = b"070701"
_NEWC_FIELDS = 13  # after the magic: 13 fields of 8 hex digits
_TRAILER = "TRAILER!!!"


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _newc_header(ino: int, entry: CpioEntry, nlink: int) -> bytes:
    name = entry.name.encode() + b"\0"
    fields = (
        ino,
        entry.mode,
        0,
        0,
        nlink,
        0,
        len(entry.data),  # ino mode uid gid nlink mtime filesize
        0,
        0,
        entry.rdev[0],
        entry.rdev[1],
        len(name),
        0,  # devmajor devminor rdevmajor rdevminor namesize check
    )
    header = _NEWC_MAGIC + b"".join(b"%08x" % f for f in fields) + name
    return header + _pad4(len(header))


def newc_archive(entries: Iterable[CpioEntry]) -> bytes:
    """A cpio archive in the SVR4 "newc" format (the one the Linux kernel accepts as an initramfs).

    Owners are root and times are zero, so the same entries always give the same bytes. Device nodes
    need no root here: they are only bytes in the archive until the kernel unpacks them.
    """
    parts = []
    for ino, entry in enumerate(entries, start=1):
        if entry.name.startswith("/") or not entry.name:
            raise ValueError(f"cpio member names are relative paths, got {entry.name!r}")
        nlink = 2 if stat.S_ISDIR(entry.mode) else 1
        parts += [_newc_header(ino, entry, nlink), entry.data, _pad4(len(entry.data))]
    parts.append(_newc_header(0, CpioEntry(_TRAILER, 0), 1))
    return b"".join(parts)


def read_newc(archive: bytes) -> list[CpioEntry]:
    """The entries of a newc archive, up to its trailer (the inverse of `newc_archive`, for checking)."""
    entries, pos = [], 0
    while True:
        if archive[pos : pos + 6] != _NEWC_MAGIC:
            raise ValueError(f"no newc header at offset {pos}")
        raw = archive[pos + 6 : pos + 6 + 8 * _NEWC_FIELDS]
        fields = [int(raw[i : i + 8], 16) for i in range(0, len(raw), 8)]
        mode, filesize, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        pos += 6 + 8 * _NEWC_FIELDS
        name = archive[pos : pos + namesize - 1].decode()
        pos += namesize + (-(6 + 8 * _NEWC_FIELDS + namesize) % 4)
        if name == _TRAILER:
            return entries
        data = archive[pos : pos + filesize]
        pos += filesize + (-filesize % 4)
        entries.append(CpioEntry(name, mode, data, rdev))


def is_static_elf(binary: bytes) -> bool:
    """True for an ELF executable that needs no dynamic loader (no PT_INTERP program header).

    A dynamically linked busybox would not start in an initramfs that holds no shared libraries.
    """
    if binary[:4] != b"\x7fELF" or binary[4] not in (1, 2) or binary[5] not in (1, 2):
        return False
    is64, endian = binary[4] == 2, "<" if binary[5] == 1 else ">"
    if is64:
        (phoff,) = struct.unpack_from(endian + "Q", binary, 0x20)
        phentsize, phnum = struct.unpack_from(endian + "HH", binary, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", binary, 0x1C)
        phentsize, phnum = struct.unpack_from(endian + "HH", binary, 0x2A)
    pt_interp = 3
    for i in range(phnum):
        (p_type,) = struct.unpack_from(endian + "I", binary, phoff + i * phentsize)
        if p_type == pt_interp:
            return False
    return True


def init_script(marker: str = MARKER, commands: str = "") -> str:
    """The VM's /init: mount /proc, print the marker and facts about this kernel, run `commands`, power off."""
    lines = [
        "#!/bin/busybox sh",
        "/bin/busybox --install -s /bin",
        "export PATH=/bin",
        "mount -t proc proc /proc",
        f"echo {marker}",
        'echo "kernel: $(uname -r)"',
        'echo "boot_id: $(cat /proc/sys/kernel/random/boot_id)"',
        'echo "cpus: $(grep -c ^processor /proc/cpuinfo)"',
        "echo \"memory: $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB\"",
    ]
    if commands:
        lines.append(commands.rstrip("\n"))
    # -f: no init system to ask, the kernel powers off (ACPI) and QEMU exits.
    lines.append("poweroff -f")
    return "\n".join(lines) + "\n"


def initramfs_entries(busybox: bytes, init: str) -> list[CpioEntry]:
    """The members of the VM's initramfs: busybox, /init, and the few directories and nodes it needs."""
    return [
        CpioEntry.directory("bin"),
        CpioEntry.file("bin/busybox", busybox, 0o755),
        CpioEntry.symlink("bin/sh", "busybox"),
        CpioEntry.directory("dev"),
        CpioEntry.char_device("dev/console", 5, 1),
        CpioEntry.char_device("dev/null", 1, 3, 0o666),
        CpioEntry.directory("proc"),
        CpioEntry.directory("tmp", 0o1777),
        CpioEntry.file("init", init.encode(), 0o755),
    ]


# --- finding the pieces -----------------------------------------------------------------------------


def version_key(path: Path) -> tuple:
    """Sort key that orders kernel file names by version: vmlinuz-6.1.0-9 before vmlinuz-6.1.0-10."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name))


def newest_kernel(paths: Iterable[Path]) -> Path | None:
    """The kernel image with the highest version among `paths` (vmlinuz-*), or None."""
    kernels = [p for p in paths if p.name.startswith("vmlinuz")]
    return max(kernels, key=version_key) if kernels else None


def find_qemu() -> str | None:
    """The QEMU system emulator for this machine's architecture (x86-64), or None."""
    return shutil.which("qemu-system-x86_64")


def find_kernel(cache_dir: Path = CACHE_DIR) -> Path | None:
    """A kernel image to boot: one unpacked by docker/vm-kit.sh into `cache_dir`, else a readable /boot one."""
    found = newest_kernel(cache_dir.glob("vmlinuz*")) if cache_dir.is_dir() else None
    if found:
        return found
    readable = [p for p in Path("/boot").glob("vmlinuz*") if os.access(p, os.R_OK)]
    return newest_kernel(readable)


def find_busybox() -> Path | None:
    """A statically linked busybox (Debian's busybox-static package), or None."""
    for candidate in (shutil.which("busybox"), "/bin/busybox", "/usr/bin/busybox"):
        if candidate and Path(candidate).is_file():
            with open(candidate, "rb") as f:
                if is_static_elf(f.read(1 << 16)):
                    return Path(candidate)
    return None


@dataclass(frozen=True)
class VMKit:
    qemu: str
    kernel: Path
    busybox: Path
    cache_dir: Path = CACHE_DIR


def find_kit(cache_dir: Path = CACHE_DIR) -> VMKit:
    """QEMU, a kernel and a static busybox; raises VMKitMissing naming what is absent and how to get it."""
    qemu, kernel, busybox = find_qemu(), find_kernel(cache_dir), find_busybox()
    missing = [
        name
        for name, found in (
            ("qemu-system-x86_64", qemu),
            (f"a kernel (vmlinuz-*) in {cache_dir}", kernel),
            ("a static busybox", busybox),
        )
        if not found
    ]
    if missing:
        raise VMKitMissing(
            f"no VM kit here: missing {', '.join(missing)}. "
            f"Hint: run `bash {KIT_SCRIPT}` (as root on Debian/Ubuntu it installs qemu-system-x86, busybox-static "
            "and unpacks a kernel into .cache/vm/; elsewhere it prints the steps)."
        )
    return VMKit(qemu, kernel, busybox, cache_dir)


def kvm_usable(device: str = "/dev/kvm") -> bool:
    """Whether this user can open the KVM device (needed, not sufficient: a nested KVM can still hang)."""
    return os.path.exists(device) and os.access(device, os.R_OK | os.W_OK)


STALE_AFTER_S = 7 * 24 * 3600


def build_initramfs(kit: VMKit, init: str) -> Path:
    """Write the initramfs for `init` into the cache (named by its content, so it is built once) and return it.

    Initramfs files not used for a week are removed, so trying many /init scripts does not fill the disk.
    """
    archive = newc_archive(initramfs_entries(kit.busybox.read_bytes(), init))
    path = kit.cache_dir / f"initramfs-{hashlib.sha256(archive).hexdigest()[:12]}.cpio"
    if path.exists():
        os.utime(path)  # recently used: not stale
    else:
        kit.cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(archive)
        os.replace(partial, path)  # atomic: a concurrent run never boots half a file
    for old in kit.cache_dir.glob("initramfs-*.cpio"):
        try:
            if time.time() - old.stat().st_mtime > STALE_AFTER_S:
                old.unlink()
        except FileNotFoundError:  # another run removed it first
            pass
    return path


# --- booting -----------------------------------------------------------------------------------------


def qemu_command(qemu: str, kernel: Path, initramfs: Path, accel: str, memory_mb: int = 256) -> list[str]:
    """The QEMU command line: no devices but a serial console on stdout, exit instead of rebooting."""
    cmd = [qemu, "-accel", accel]
    if accel == "kvm":
        cmd += ["-cpu", "host"]
    return cmd + [
        "-m",
        str(memory_mb),
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-no-reboot",
        "-kernel",
        str(kernel),
        "-initrd",
        str(initramfs),
        # panic=-1: a kernel panic reboots at once, and -no-reboot turns that into QEMU exiting.
        "-append",
        "console=ttyS0 quiet panic=-1",
    ]


class Console(NamedTuple):
    lines: list[tuple[float, str]]  # (seconds since start, line) as each line arrived
    exited: bool  # QEMU exited by itself (the VM powered off) rather than being killed at the timeout


def marker_time(lines: list[tuple[float, str]], marker: str = MARKER) -> float | None:
    """When the marker line arrived on the console, or None if it never did."""
    return next((t for t, line in lines if line.strip() == marker), None)


def tail(lines: list[tuple[float, str]], n: int = TAIL_LINES) -> str:
    return "\n".join(line for _, line in lines[-n:])


def run_console(cmd: list[str], timeout: float, marker: str = MARKER, marker_timeout: float | None = None) -> Console:
    """Run `cmd`, timestamp every line of its output, and kill it (and only it) when time is up.

    Time is up after `timeout` seconds, or after `marker_timeout` seconds if the marker line has not
    appeared by then (how a hung KVM boot is told from a slow one).
    """
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    lines: list[tuple[float, str]] = []
    pending = b""
    exited = False

    def time_left() -> float:
        limit = timeout
        if marker_timeout is not None and marker_time(lines, marker) is None:
            limit = min(limit, marker_timeout)
        return limit - (time.perf_counter() - started)

    try:
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while (left := time_left()) > 0:
                if not sel.select(timeout=left):
                    continue
                chunk = os.read(proc.stdout.fileno(), 65536)
                now = time.perf_counter() - started
                if not chunk:  # end of output: QEMU exited
                    exited = True
                    break
                pending += chunk
                *complete, pending = pending.split(b"\n")
                lines += [(now, raw.decode(errors="replace").rstrip("\r")) for raw in complete]
        if pending:
            lines.append((time.perf_counter() - started, pending.decode(errors="replace").rstrip("\r")))
    finally:
        try:
            proc.wait(timeout=5 if exited else 0)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # QEMU runs in a session of its own: nothing else is in it
            proc.wait()
        proc.stdout.close()
    return Console(lines, exited)


class VMBoot(NamedTuple):
    seconds: float  # from starting QEMU to the marker line on the serial console
    accel: str  # "kvm" or "tcg": which one actually booted the VM
    tail: str  # the last lines of the console
    notes: tuple[str, ...] = ()  # what was tried first and why it was given up (e.g. a hung KVM)
    console: tuple[tuple[float, str], ...] = ()  # every console line with its arrival time


def give_up_reason(console: Console, limit: float) -> str:
    """Why a run did not count as a boot, with the last console lines as evidence."""
    seen = tail(console.lines, 3).replace("\n", " | ") or "no output at all"
    if marker_time(console.lines) is not None:
        return f"booted but did not power off within {limit:g} s ({seen})"
    if console.exited:
        return f"QEMU exited before the {MARKER} line ({seen})"
    return f"no {MARKER} line within {limit:g} s, stopped ({seen})"


def accelerators(prefer: str | None = None) -> list[str]:
    """The accelerators to try, in order: the one asked for, else KVM when usable, then TCG."""
    if prefer:
        return [prefer]
    return ["kvm", "tcg"] if kvm_usable() else ["tcg"]


def boot_vm(
    kit: VMKit,
    *,
    commands: str = "",
    accel: str | None = None,
    timeout: float = 90,
    kvm_timeout: float = 6,
    memory_mb: int = 256,
) -> VMBoot:
    """Boot the VM, run `commands` in it, and time the boot from QEMU's start to the marker line.

    Args:
        accel: "kvm" or "tcg" to use only that one; None tries KVM (when usable) and then TCG.
        timeout: hard limit for a whole run (boot, commands, power-off) under each accelerator.
        kvm_timeout: how long to wait for the marker under KVM before giving KVM up; a KVM boot reaches it
            in about a second where KVM works, and hangs where nested virtualisation is broken.
    """
    initramfs = build_initramfs(kit, init_script(MARKER, commands))
    order = accelerators(accel)
    notes: list[str] = []
    for i, name in enumerate(order):
        last = i == len(order) - 1
        console = run_console(
            qemu_command(kit.qemu, kit.kernel, initramfs, name, memory_mb),
            timeout,
            marker_timeout=None if last else kvm_timeout,
        )
        at = marker_time(console.lines)
        if at is not None and console.exited:
            return VMBoot(at, name, tail(console.lines), tuple(notes), tuple(console.lines))
        notes.append(f"{name}: {give_up_reason(console, timeout if last else kvm_timeout)}")
    raise VMBootFailed("the VM did not boot: " + "; ".join(notes))
