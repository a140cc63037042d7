"""workbook.multi_platform without an engine: the hand-assembled programs (run where this host can),
binfmt_misc entries, `docker run` outcomes, and platforms read from OCI-layout `docker save` archives."""

from __future__ import annotations

import hashlib
import io
import json
import platform
import shutil
import stat
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest

from workbook import vm
from workbook.multi_platform import (
    CODE_OFFSET,
    DOCKERFILE,
    LOAD_ADDRESS,
    _adr,
    _movz,
    classify_run,
    elf_arch,
    emulation,
    foreign_arch,
    full_name,
    index_platforms,
    message,
    native_arch,
    refuses_manifest_lists,
    tiny_program,
    write_hello_context,
)

HOST_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower())
QEMU = {
    "arm64": shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64"),
    "amd64": shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64"),
}


def run_program(path: Path, arch: str) -> subprocess.CompletedProcess:
    """Run `path` natively where the host has that processor, else under QEMU user emulation, else skip."""
    if HOST_ARCH == arch:
        command = [str(path)]
    elif QEMU[arch]:
        command = [QEMU[arch], str(path)]
    else:
        pytest.skip(f"this host ({platform.machine()}) cannot run {arch} programs: no qemu-user for it on PATH")
    return subprocess.run(command, capture_output=True, timeout=30)


# --- the programs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_program_prints_its_line_and_exits_0(tmp_path, arch):
    path = tmp_path / f"hello-{arch}"
    path.write_bytes(tiny_program(arch, message(arch)))
    path.chmod(0o755)
    done = run_program(path, arch)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"hello from linux/{arch}\n".encode()
    assert done.stderr == b""


@pytest.mark.parametrize("arch, machine", [("amd64", 62), ("arm64", 183)])
def test_the_header_describes_one_static_little_endian_executable(arch, machine):
    program = tiny_program(arch, "hi")
    assert program[:6] == b"\x7fELF\x02\x01"  # ELF, 64-bit, little-endian
    e_type, e_machine, _, e_entry, e_phoff = struct.unpack_from("<HHIQQ", program, 16)
    assert (e_type, e_machine) == (2, machine)  # ET_EXEC
    assert elf_arch(program) == arch
    assert vm.is_static_elf(program)  # no PT_INTERP: no dynamic loader needed
    p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, p_align = struct.unpack_from(
        "<IIQQQQQQ", program, e_phoff
    )
    assert (p_type, p_flags, p_offset, p_vaddr) == (1, 5, 0, LOAD_ADDRESS)  # PT_LOAD, R+X, the whole file
    assert p_filesz == p_memsz == len(program)
    assert p_vaddr % p_align == p_offset % p_align
    assert e_entry == LOAD_ADDRESS + CODE_OFFSET
    assert program.endswith(b"hi\n")


def test_aarch64_encodings_match_the_arm_reference():
    # The values the Arm Architecture Reference Manual gives (and assemblers emit) for these instructions.
    assert _movz(0, 1) == 0xD2800020  # mov x0, #1
    assert _movz(8, 64) == 0xD2800808  # mov x8, #64
    assert _movz(8, 93) == 0xD2800BA8  # mov x8, #93
    assert _movz(0, 0) == 0xD2800000  # mov x0, #0
    assert _movz(2, 22) == 0xD28002C2  # mov x2, #22
    assert _adr(1, 28) == 0x100000E1  # adr x1, .+28
    assert _adr(3, 5) == 0x30000023  # adr x3, .+5: the low two bits of the offset go to bits 29-30
    assert _adr(0, -4) == 0x10FFFFE0  # adr x0, .-4
    with pytest.raises(ValueError):
        _movz(2, 1 << 16)


def test_the_arm64_code_addresses_its_text_and_calls_write_then_exit():
    text = message("arm64")
    program = tiny_program("arm64", text)
    words = struct.unpack_from("<8I", program, CODE_OFFSET)
    assert words == (
        0xD2800020,  # mov x0, #1
        _adr(1, 28),  # adr x1, text: 7 instructions after the adr
        _movz(2, len(text) + 1),  # mov x2, #len (the line and its newline)
        0xD2800808,  # mov x8, #64 (write)
        0xD4000001,  # svc #0
        0xD2800000,  # mov x0, #0
        0xD2800BA8,  # mov x8, #93 (exit)
        0xD4000001,  # svc #0
    )
    assert program[CODE_OFFSET + 4 + 28 :] == f"{text}\n".encode()


def test_the_amd64_code_addresses_its_text_rip_relative():
    text = message("amd64")
    program = tiny_program("amd64", text)
    code = program[CODE_OFFSET:]
    assert code[10:13] == bytes.fromhex("488d35")  # lea rsi, [rip + disp32]
    (disp,) = struct.unpack_from("<i", code, 13)
    assert code[17 + disp :] == f"{text}\n".encode()  # rip is the address after the 7-byte lea
    assert code[17:22] == b"\xba" + struct.pack("<I", len(text) + 1)  # mov edx, len


@pytest.mark.skipif(shutil.which("llvm-mc") is None, reason="llvm-mc (LLVM's assembler) is not installed")
@pytest.mark.parametrize(
    "arch, triple, expected",
    [
        (
            "arm64",
            "aarch64",
            [
                "mov x0, #1",
                "adr x1, #28",
                "mov x2, #23",
                "mov x8, #64",
                "svc #0",
                "mov x0, #0",
                "mov x8, #93",
                "svc #0",
            ],
        ),
        (
            "amd64",
            "x86_64",
            [
                "movl $1, %eax",
                "movl $1, %edi",
                "leaq 16(%rip), %rsi",
                "movl $23, %edx",
                "syscall",
                "movl $60, %eax",
                "xorl %edi, %edi",
                "syscall",
            ],
        ),
    ],
)
def test_a_disassembler_reads_the_code_as_written(arch, triple, expected):
    # An independent check of the hand assembly: LLVM's disassembler decodes the bytes back to instructions.
    program = tiny_program(arch, message(arch))
    code = program[CODE_OFFSET : -len(message(arch)) - 1]
    out = subprocess.run(
        ["llvm-mc", "--disassemble", f"-triple={triple}"],
        input=" ".join(f"0x{b:02x}" for b in code),
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or "invalid" in out.stderr:
        pytest.skip(f"this llvm-mc cannot disassemble {triple}: {out.stderr.strip()[:200]}")
    listing = [" ".join(line.split("//")[0].split()) for line in out.stdout.splitlines()]
    assert [line for line in listing if line and not line.startswith(".")] == expected


def test_elf_arch_names_other_processors_by_number():
    riscv = bytearray(tiny_program("amd64", ""))
    riscv[18:20] = struct.pack("<H", 243)
    assert elf_arch(bytes(riscv)) == "e_machine 243"
    with pytest.raises(ValueError):
        elf_arch(b"#!/bin/sh\n")


def test_the_build_context_holds_the_dockerfile_and_both_programs(tmp_path):
    folder = write_hello_context(tmp_path / "hello")
    assert (folder / "Dockerfile").read_text() == DOCKERFILE
    assert "FROM scratch" in DOCKERFILE and "ARG TARGETARCH" in DOCKERFILE
    assert "COPY hello-${TARGETARCH} /hello" in DOCKERFILE and 'ENTRYPOINT ["/hello"]' in DOCKERFILE
    for arch in ("amd64", "arm64"):
        program = folder / f"hello-{arch}"
        assert elf_arch(program.read_bytes()) == arch
        assert stat.S_IMODE(program.stat().st_mode) == 0o755
        assert message(arch).encode() in program.read_bytes()


# --- architectures -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reported, native", [("amd64", "amd64"), ("x86_64", "amd64"), ("arm64", "arm64"), ("aarch64", "arm64\n")]
)
def test_native_arch_maps_what_docker_version_and_docker_info_report(reported, native):
    assert native_arch(reported) == native.strip()


def test_unknown_processors_and_the_other_one():
    with pytest.raises(ValueError, match="s390x"):
        native_arch("s390x")
    assert foreign_arch("amd64") == "arm64" and foreign_arch("arm64") == "amd64"
    with pytest.raises(ValueError):
        foreign_arch("x86_64")


# --- binfmt_misc -------------------------------------------------------------------------------------

# As the kernel shows them: Debian's qemu-user-static entry, and one that tonistiigi/binfmt registers.
QEMU_AARCH64 = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""
QEMU_X86_64 = """enabled
interpreter /usr/bin/qemu-x86_64
flags: POCF
offset 0
magic 7f454c4602010100000000000000000002003e00
mask fffffffffffefefcfffffffffffffffffeffffff
"""


def binfmt(tmp_path: Path, entries: dict[str, str], status: str = "enabled") -> Path:
    folder = tmp_path / "binfmt_misc"
    folder.mkdir(parents=True)
    (folder / "status").write_text(status + "\n")
    (folder / "register").write_text("")
    for name, text in entries.items():
        (folder / name).write_text(text)
    return folder


def test_no_handler_where_nothing_is_registered_or_binfmt_misc_is_missing(tmp_path):
    assert emulation("arm64", binfmt(tmp_path, {})) is None
    assert emulation("arm64", tmp_path / "not-mounted") is None


def test_the_handler_is_found_by_its_magic_not_by_its_name(tmp_path):
    folder = binfmt(
        tmp_path,
        {
            "python3.11": "enabled\ninterpreter /usr/bin/python3.11\nflags: \noffset 0\nmagic a70d0d0a\n",
            "aarch64-emulator": QEMU_AARCH64,
        },
    )
    handler = emulation("arm64", folder)
    assert handler is not None and handler.name == "aarch64-emulator"
    assert handler.interpreter == "/usr/libexec/qemu-binfmt/aarch64-binfmt-P"
    assert handler.flags == "POCF" and handler.works_in_containers
    assert "aarch64-binfmt-P" in str(handler)
    assert emulation("amd64", folder) is None  # an arm64 emulator does not run amd64 programs


def test_an_x86_64_handler_runs_amd64_programs(tmp_path):
    handler = emulation("amd64", binfmt(tmp_path, {"qemu-x86_64": QEMU_X86_64}))
    assert handler is not None and handler.interpreter == "/usr/bin/qemu-x86_64"


def test_disabled_entries_and_a_disabled_binfmt_misc_run_nothing(tmp_path):
    disabled = QEMU_AARCH64.replace("enabled", "disabled", 1)
    assert emulation("arm64", binfmt(tmp_path, {"qemu-aarch64": disabled})) is None
    assert emulation("arm64", binfmt(tmp_path / "off", {"qemu-aarch64": QEMU_AARCH64}, status="disabled")) is None


def test_an_extension_entry_and_an_entry_without_fix_binary(tmp_path):
    by_extension = "enabled\ninterpreter /usr/bin/wine\nflags: \nextension .exe\n"
    no_f = QEMU_AARCH64.replace("flags: POCF", "flags: OC")
    handler = emulation("arm64", binfmt(tmp_path, {"wine": by_extension, "qemu-aarch64": no_f}))
    assert handler is not None and handler.flags == "OC" and not handler.works_in_containers


# --- docker run outcomes -----------------------------------------------------------------------------


def test_a_run_that_prints_the_line_ran():
    outcome = classify_run(0, "hello from linux/arm64", "arm64")
    assert outcome.kind == "ran" and outcome.ran and outcome.code == 0


def test_exec_format_error_in_its_current_and_older_wordings():
    for output in (
        "exec /hello: exec format error",
        "standard_init_linux.go:228: exec user process caused: exec format error",
        "WARNING: The requested image's platform (linux/arm64) does not match the detected host platform "
        "(linux/amd64/v3) and no specific platform was requested\nexec /hello: exec format error",
    ):
        outcome = classify_run(255, output, "arm64")
        assert outcome.kind == "exec format error" and not outcome.ran
        assert outcome.evidence.endswith("exec format error")


def test_other_failures_are_not_taken_for_either():
    assert classify_run(0, "hello from linux/amd64", "arm64").kind == "failed"  # the wrong program ran
    assert classify_run(1, "hello from linux/arm64", "arm64").kind == "failed"
    assert classify_run(255, "exec /hello: no such file or directory", "arm64").kind == "file not found"
    assert classify_run(125, "", "arm64").evidence == "(no output)"


def test_manifest_list_refusals_of_the_classic_image_store():
    assert refuses_manifest_lists(
        "ERROR: Multi-platform build is not supported for the docker driver.\n"
        "Switch to a different driver, or turn on the containerd image store, and try again."
    )
    assert refuses_manifest_lists("ERROR: docker exporter does not currently support exporting manifest lists")
    assert not refuses_manifest_lists("ERROR: failed to solve: process did not complete successfully")


# --- docker save archives ----------------------------------------------------------------------------

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class Layout:
    """An OCI image layout written as `docker save` writes it: blobs/sha256/<hex>, index.json, oci-layout."""

    def __init__(self):
        self.files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}'}

    def blob(self, content: dict | bytes, media_type: str, **extra) -> dict:
        data = content if isinstance(content, bytes) else json.dumps(content).encode()
        digest = hashlib.sha256(data).hexdigest()
        self.files[f"blobs/sha256/{digest}"] = data
        return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}

    def image(self, arch: str, os: str = "linux", variant: str = "") -> dict:
        """A one-layer image's manifest descriptor (no platform in it: read from the config)."""
        config = {"architecture": arch, "os": os, "rootfs": {"type": "layers", "diff_ids": []}}
        if variant:
            config["variant"] = variant
        return self.blob(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": self.blob(config, "application/vnd.oci.image.config.v1+json"),
                "layers": [self.blob(b"layer " + arch.encode(), "application/vnd.oci.image.layer.v1.tar")],
            },
            OCI_MANIFEST,
        )

    def index(self, manifests: list[dict]) -> dict:
        return self.blob({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, OCI_INDEX)

    def attestation(self, of: dict) -> dict:
        manifest = self.image("unknown", os="unknown")
        return {
            **manifest,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.digest": of["digest"],
                "vnd.docker.reference.type": "attestation-manifest",
            },
        }

    def write(self, path: Path, named: dict[str, dict], manifest_json: list | None = None) -> Path:
        """Write the archive; `named` maps full image names to the descriptor index.json gives them."""
        index = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **descriptor,
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name.rpartition(":")[2],
                    },
                }
                for name, descriptor in named.items()
            ],
        }
        files = {**self.files, "index.json": json.dumps(index).encode()}
        if manifest_json is not None:
            files["manifest.json"] = json.dumps(manifest_json).encode()
        with tarfile.open(path, "w") as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path


def with_platform(descriptor: dict, arch: str, variant: str = "") -> dict:
    spec = {"architecture": arch, "os": "linux", **({"variant": variant} if variant else {})}
    return {**descriptor, "platform": spec}


def test_a_manifest_list_gives_its_platforms_without_attestations(tmp_path):
    layout = Layout()
    amd64 = with_platform(layout.image("amd64"), "amd64")
    arm64 = with_platform(layout.image("arm64"), "arm64")
    index = layout.index([amd64, arm64, layout.attestation(amd64), layout.attestation(arm64)])
    archive = layout.write(tmp_path / "hello.tar", {"docker.io/workbook/ch04-hello:latest": index})
    assert index_platforms(archive, "workbook/ch04-hello") == ["linux/amd64", "linux/arm64"]
    assert index_platforms(archive, "workbook/ch04-hello:latest") == ["linux/amd64", "linux/arm64"]
    assert index_platforms(archive, "docker.io/workbook/ch04-hello:latest") == ["linux/amd64", "linux/arm64"]


def test_nested_indexes_variants_and_missing_platform_fields(tmp_path):
    layout = Layout()
    inner = layout.index([with_platform(layout.image("arm64", variant="v8"), "arm64", "v8")])
    outer = layout.index([layout.image("amd64"), inner])  # no platform on the descriptor: read the config
    archive = layout.write(tmp_path / "nested.tar", {"docker.io/library/python:3.11-slim": outer})
    assert index_platforms(archive, "python:3.11-slim") == ["linux/amd64", "linux/arm64/v8"]


def test_a_platform_listed_but_never_pulled_still_counts_from_its_descriptor(tmp_path):
    layout = Layout()
    pulled = with_platform(layout.image("amd64"), "amd64")
    absent = {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + "0" * 64,
        "size": 1,
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    archive = layout.write(
        tmp_path / "partial.tar", {"docker.io/library/python:3.11-slim": layout.index([pulled, absent])}
    )
    assert index_platforms(archive, "python:3.11-slim") == ["linux/amd64", "linux/arm64"]


def test_single_platform_images_one_tag_each_as_the_classic_store_saves_them(tmp_path):
    layout = Layout()
    amd64 = with_platform(layout.image("amd64"), "amd64")  # the classic store puts the platform here
    arm64 = layout.image("arm64")  # ...and the containerd store does not: the config says it
    archive = layout.write(
        tmp_path / "tags.tar",
        {"docker.io/workbook/ch04-hello:amd64": amd64, "docker.io/workbook/ch04-hello:arm64": arm64},
    )
    assert index_platforms(archive, "workbook/ch04-hello:amd64") == ["linux/amd64"]
    assert index_platforms(archive, "workbook/ch04-hello:arm64") == ["linux/arm64"]


def test_a_ref_that_is_not_in_the_archive_is_named_in_the_error(tmp_path):
    layout = Layout()
    archive = layout.write(tmp_path / "one.tar", {"docker.io/workbook/ch04-hello:amd64": layout.image("amd64")})
    with pytest.raises(LookupError, match=r"workbook/ch04-hello:arm64 is not in one\.tar.*ch04-hello:amd64"):
        index_platforms(archive, "workbook/ch04-hello:arm64")
    with pytest.raises(LookupError):
        index_platforms(archive, "workbook/ch04-hello")  # :latest is not there either


def test_an_older_engines_archive_without_index_json(tmp_path):
    config = json.dumps({"architecture": "arm64", "os": "linux"}).encode()
    path = tmp_path / "legacy.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in {
            "abc123.json": config,
            "manifest.json": json.dumps(
                [{"Config": "abc123.json", "RepoTags": ["workbook/ch04-hello:arm64"], "Layers": []}]
            ).encode(),
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert index_platforms(path, "workbook/ch04-hello:arm64") == ["linux/arm64"]
    with pytest.raises(LookupError, match="manifest.json names"):
        index_platforms(path, "workbook/ch04-hello:amd64")


def test_full_names_as_the_engine_stores_them():
    assert full_name("python:3.11-slim") == "docker.io/library/python:3.11-slim"
    assert full_name("workbook/ch04-hello") == "docker.io/workbook/ch04-hello:latest"
    assert full_name("localhost:5000/lab:1") == "localhost:5000/lab:1"
    assert full_name("ghcr.io/org/app") == "ghcr.io/org/app:latest"
    assert full_name("docker.io/workbook/ch04-hello:latest") == "docker.io/workbook/ch04-hello:latest"
