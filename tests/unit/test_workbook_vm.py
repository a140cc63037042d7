"""The VM kit's pure parts (initramfs writer, ELF check, kernel choice, QEMU command line, console
timing) and its KVM-to-TCG fallback, with a fake emulator: no QEMU, kernel or root needed."""

from __future__ import annotations

import os
import shutil
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from workbook import vm
from workbook.vm import CpioEntry, newc_archive, read_newc

ENTRIES = [
    CpioEntry.directory("bin"),
    CpioEntry.file("bin/tool", b"#!/bin/sh\necho hi\n", 0o755),
    CpioEntry.symlink("bin/sh", "tool"),
    CpioEntry.char_device("dev/console", 5, 1),
    CpioEntry.file("empty", b""),
    CpioEntry.file("odd", b"abc"),  # a length that needs padding
]


# --- cpio newc ---------------------------------------------------------------------------------------


def test_newc_round_trip_keeps_names_modes_data_and_device_numbers():
    assert read_newc(newc_archive(ENTRIES)) == ENTRIES


def test_newc_header_layout_and_alignment():
    archive = newc_archive([CpioEntry.file("odd", b"abc")])
    assert archive.startswith(b"070701")
    assert len(archive) % 4 == 0
    # 6 magic + 13 fields of 8 hex digits, then the name with its NUL
    fields = [int(archive[6 + 8 * i : 14 + 8 * i], 16) for i in range(13)]
    mode, filesize, namesize = fields[1], fields[6], fields[11]
    assert stat.S_ISREG(mode) and mode & 0o777 == 0o644
    assert filesize == 3 and namesize == len("odd") + 1
    assert archive[110:114] == b"odd\0"
    assert b"TRAILER!!!\0" in archive[-128:]


def test_newc_is_deterministic():
    assert newc_archive(ENTRIES) == newc_archive(ENTRIES)


def test_newc_rejects_absolute_and_empty_names():
    with pytest.raises(ValueError, match="relative"):
        newc_archive([CpioEntry.file("/init", b"")])
    with pytest.raises(ValueError):
        newc_archive([CpioEntry.file("", b"")])


def test_read_newc_rejects_garbage():
    with pytest.raises(ValueError, match="no newc header"):
        read_newc(b"not a cpio archive")


@pytest.mark.skipif(not shutil.which("cpio"), reason="the cpio tool is not installed")
def test_the_real_cpio_tool_reads_our_archive():
    listing = subprocess.run(["cpio", "-t", "--quiet"], input=newc_archive(ENTRIES), capture_output=True, check=True)
    assert listing.stdout.decode().split() == [e.name for e in ENTRIES]


def test_initramfs_has_an_executable_init_and_a_console_node():
    entries = {e.name: e for e in vm.initramfs_entries(b"\x7fELF-busybox", vm.init_script())}
    assert entries["init"].mode & 0o111 and stat.S_ISREG(entries["init"].mode)
    assert entries["bin/busybox"].data == b"\x7fELF-busybox"
    assert stat.S_ISCHR(entries["dev/console"].mode) and entries["dev/console"].rdev == (5, 1)
    assert stat.S_ISDIR(entries["proc"].mode)


def test_init_script_prints_the_marker_runs_commands_then_powers_off():
    script = vm.init_script("MARK", commands="echo work\n")
    lines = script.splitlines()
    assert lines[0] == "#!/bin/busybox sh"
    assert "echo MARK" in lines
    assert lines.index("echo MARK") < lines.index("echo work") < lines.index("poweroff -f") == len(lines) - 1


# --- ELF ---------------------------------------------------------------------------------------------


def elf64(program_header_types: list[int]) -> bytes:
    """A minimal little-endian ELF64 header followed by program headers of the given types."""
    phoff, phentsize = 64, 56
    header = bytearray(64)
    header[:6] = b"\x7fELF\x02\x01"
    struct.pack_into("<Q", header, 0x20, phoff)
    struct.pack_into("<HH", header, 0x36, phentsize, len(program_header_types))
    phdrs = b"".join(struct.pack("<I", t) + bytes(phentsize - 4) for t in program_header_types)
    return bytes(header) + phdrs


def elf32(program_header_types: list[int]) -> bytes:
    phoff, phentsize = 52, 32
    header = bytearray(52)
    header[:6] = b"\x7fELF\x01\x01"
    struct.pack_into("<I", header, 0x1C, phoff)
    struct.pack_into("<HH", header, 0x2A, phentsize, len(program_header_types))
    return bytes(header) + b"".join(struct.pack("<I", t) + bytes(phentsize - 4) for t in program_header_types)


@pytest.mark.parametrize("build", [elf64, elf32])
def test_static_elf_has_no_interpreter(build):
    pt_load, pt_interp, pt_dynamic = 1, 3, 2
    assert vm.is_static_elf(build([pt_load, pt_load]))
    assert not vm.is_static_elf(build([pt_load, pt_interp, pt_dynamic]))


def test_not_an_elf_is_not_static():
    assert not vm.is_static_elf(b"#!/bin/sh\n")
    assert not vm.is_static_elf(b"")


@pytest.mark.skipif(not Path(sys.executable).resolve().is_file(), reason="no interpreter binary to inspect")
def test_this_python_is_dynamically_linked():
    assert not vm.is_static_elf(Path(sys.executable).resolve().read_bytes()[: 1 << 16])


# --- finding the kit ---------------------------------------------------------------------------------


def test_newest_kernel_orders_versions_numerically():
    paths = [Path(f"/c/vmlinuz-6.1.0-{n}-cloud-amd64") for n in (9, 10, 56)] + [Path("/c/initramfs-x.cpio")]
    assert vm.newest_kernel(paths) == Path("/c/vmlinuz-6.1.0-56-cloud-amd64")
    assert vm.newest_kernel([Path("/c/config-6.1")]) is None


def test_find_kernel_prefers_the_cache(tmp_path):
    (tmp_path / "vmlinuz-6.1.0-10-cloud-amd64").write_bytes(b"k")
    (tmp_path / "vmlinuz-6.1.0-9-cloud-amd64").write_bytes(b"k")
    assert vm.find_kernel(tmp_path).name == "vmlinuz-6.1.0-10-cloud-amd64"


def test_find_kit_names_what_is_missing_and_the_script(monkeypatch, tmp_path):
    monkeypatch.setattr(vm, "find_qemu", lambda: None)
    monkeypatch.setattr(vm, "find_kernel", lambda cache_dir: None)
    monkeypatch.setattr(vm, "find_busybox", lambda: Path("/bin/busybox"))
    with pytest.raises(vm.VMKitMissing) as err:
        vm.find_kit(tmp_path)
    message = str(err.value)
    assert "qemu-system-x86_64" in message and "kernel" in message and "busybox" not in message.split("Hint")[0]
    assert "docker/vm-kit.sh" in message


def test_kvm_usable_needs_the_device(tmp_path):
    assert not vm.kvm_usable(str(tmp_path / "kvm"))


def test_accelerators_order(monkeypatch):
    monkeypatch.setattr(vm, "kvm_usable", lambda: True)
    assert vm.accelerators() == ["kvm", "tcg"]
    assert vm.accelerators("tcg") == ["tcg"]
    monkeypatch.setattr(vm, "kvm_usable", lambda: False)
    assert vm.accelerators() == ["tcg"]


def test_qemu_command_line():
    tcg = vm.qemu_command("qemu", Path("/k"), Path("/i.cpio"), "tcg", memory_mb=128)
    assert tcg[:3] == ["qemu", "-accel", "tcg"] and "-cpu" not in tcg
    assert tcg[tcg.index("-m") + 1] == "128"
    assert tcg[tcg.index("-kernel") + 1] == "/k" and tcg[tcg.index("-initrd") + 1] == "/i.cpio"
    assert "-no-reboot" in tcg and "console=ttyS0" in tcg[tcg.index("-append") + 1]
    kvm = vm.qemu_command("qemu", Path("/k"), Path("/i.cpio"), "kvm")
    assert kvm[kvm.index("-cpu") + 1] == "host"


# --- the console and the fallback --------------------------------------------------------------------


def test_marker_time_and_tail():
    lines = [(0.1, "booting"), (0.5, " WORKBOOK-VM-READY "), (0.6, "kernel: x")]
    assert vm.marker_time(lines) == 0.5
    assert vm.marker_time(lines[:1]) is None
    assert vm.tail(lines, 2) == " WORKBOOK-VM-READY \nkernel: x"


def py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_console_timestamps_lines_until_exit():
    console = vm.run_console(py(f"print('a'); print({vm.MARKER!r}); print('b', end='')"), timeout=20)
    assert console.exited
    assert [line for _, line in console.lines] == ["a", vm.MARKER, "b"]
    times = [t for t, _ in console.lines]
    assert times == sorted(times)


def test_run_console_gives_up_when_the_marker_does_not_come():
    console = vm.run_console(
        py("import time; print('stuck', flush=True); time.sleep(60)"), timeout=60, marker_timeout=0.5
    )
    assert not console.exited
    assert console.lines[-1][1] == "stuck"
    assert "no WORKBOOK-VM-READY line within 0.5 s" in vm.give_up_reason(console, 0.5)


def test_run_console_keeps_going_after_the_marker_until_the_hard_timeout():
    code = f"import time; print({vm.MARKER!r}, flush=True); time.sleep(0.8); print('done')"
    console = vm.run_console(py(code), timeout=20, marker_timeout=0.3)
    assert console.exited and console.lines[-1][1] == "done"


def test_give_up_reason_for_an_emulator_that_exits_early():
    console = vm.Console([(0.1, "assertion failed")], exited=True)
    assert vm.give_up_reason(console, 6).startswith("QEMU exited before")


@pytest.fixture
def fake_kit(tmp_path, monkeypatch):
    """A kit whose 'QEMU' is a Python one-liner: it hangs under kvm and boots under tcg."""
    busybox = tmp_path / "busybox"
    busybox.write_bytes(elf64([1]))
    behaviour = {
        "kvm": "import time; time.sleep(60)",
        "tcg": f"print('Linux booting'); print({vm.MARKER!r}); print('kernel: fake')",
    }
    monkeypatch.setattr(vm, "qemu_command", lambda qemu, kernel, initramfs, accel, memory_mb=256: py(behaviour[accel]))
    monkeypatch.setattr(vm, "kvm_usable", lambda: True)
    return vm.VMKit("qemu", tmp_path / "vmlinuz-1", busybox, tmp_path / "cache"), behaviour


def test_boot_falls_back_from_a_hung_kvm_to_tcg_and_says_so(fake_kit):
    kit, _ = fake_kit
    boot = vm.boot_vm(kit, kvm_timeout=0.5, timeout=20)
    assert boot.accel == "tcg"
    assert len(boot.notes) == 1 and boot.notes[0].startswith("kvm: no WORKBOOK-VM-READY line within 0.5 s")
    assert 0 < boot.seconds < 20 and "kernel: fake" in boot.tail
    assert list((kit.cache_dir).glob("initramfs-*.cpio")), "the initramfs is built into the cache"


def test_boot_with_a_working_kvm_does_not_try_tcg(fake_kit):
    kit, behaviour = fake_kit
    behaviour["kvm"] = behaviour["tcg"]
    behaviour["tcg"] = "raise SystemExit('tcg must not run')"
    boot = vm.boot_vm(kit, kvm_timeout=5)
    assert boot.accel == "kvm" and boot.notes == ()


def test_boot_fails_with_every_reason_when_nothing_boots(fake_kit):
    kit, behaviour = fake_kit
    behaviour["tcg"] = "print('Kernel panic')"
    with pytest.raises(vm.VMBootFailed, match=r"kvm: no .* tcg: QEMU exited before .*Kernel panic"):
        vm.boot_vm(kit, kvm_timeout=0.3, timeout=5)


def test_initramfs_is_built_once_per_content(fake_kit):
    kit, _ = fake_kit
    first = vm.build_initramfs(kit, vm.init_script())
    again = vm.build_initramfs(kit, vm.init_script())
    other = vm.build_initramfs(kit, vm.init_script(commands="echo x"))
    assert first == again != other
    assert read_newc(first.read_bytes())[-1].name == "init"


def test_initramfs_files_unused_for_a_week_are_removed(fake_kit):
    kit, _ = fake_kit
    old = vm.build_initramfs(kit, vm.init_script(commands="echo old"))
    long_ago = old.stat().st_mtime - vm.STALE_AFTER_S - 60
    os.utime(old, (long_ago, long_ago))
    fresh = vm.build_initramfs(kit, vm.init_script())
    assert fresh.exists() and not old.exists()
