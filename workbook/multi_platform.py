"""One image for two processors (chapter 4, section 8): tiny programs, emulation, and the manifest list.

A program is machine code for one kind of processor. An x86-64 (amd64) CPU cannot run arm64 code, and
the kernel refuses with `exec format error`, unless an emulator (QEMU, Rosetta) is registered to run it.
An image holds programs, so it is built for one platform too; a *manifest list* (an OCI image index)
puts several builds of it under one name, and each machine pulls the one its processor runs.

So that the experiment needs no registry and no compiler, this module writes the smallest programs
that show it: static ELF files of a few hundred bytes, hand-assembled for amd64 and arm64, that print
one line and exit.

    folder = write_hello_context(WORK / "hello")      # Dockerfile + hello-amd64 + hello-arm64
    platforms = index_platforms(Path("hello.tar"), "workbook/ch04-hello")   # from `docker save`
    outcome = classify_run(result.code, result.out, "arm64")                # ran, or exec format error?
"""

from __future__ import annotations

import json
import posixpath
import struct
import tarfile
from dataclasses import dataclass
from pathlib import Path

ARCHES = ("amd64", "arm64")
# What `docker version` (Go's names) and `docker info` / `uname -m` (the kernel's names) call each one.
_ENGINE_NAMES = {"amd64": "amd64", "x86_64": "amd64", "arm64": "arm64", "aarch64": "arm64"}
# ELF's e_machine field says which processor a program is for (System V ABI).
E_MACHINE = {"amd64": 62, "arm64": 183}  # EM_X86_64, EM_AARCH64
BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")

# The program is loaded at this address: the conventional start of a non-PIE executable, far above the
# lowest addresses the kernel refuses to map (vm.mmap_min_addr).
LOAD_ADDRESS = 0x400000
EHDR_SIZE, PHDR_SIZE = 64, 56  # an ELF64 file header, one program header
CODE_OFFSET = EHDR_SIZE + PHDR_SIZE

# What buildx says when the engine's image store cannot keep a manifest list (the classic overlay2 store):
# newer buildx refuses before building, older ones fail when exporting.
MANIFEST_LIST_REFUSALS = (
    "Multi-platform build is not supported for the docker driver",
    "docker exporter does not currently support exporting manifest lists",
)

DOCKERFILE = """\
# No base image: the program needs no libraries, so the image holds that one file.
FROM scratch
# BuildKit sets TARGETARCH to the architecture of the platform being built (amd64, arm64).
ARG TARGETARCH
COPY hello-${TARGETARCH} /hello
ENTRYPOINT ["/hello"]
"""


def message(arch: str) -> str:
    """The line the `arch` program prints."""
    return f"hello from linux/{arch}"


def native_arch(engine_arch: str) -> str:
    """The engine's processor, "amd64" or "arm64", from `docker version`'s Arch or `docker info`'s Architecture."""
    try:
        return _ENGINE_NAMES[engine_arch.strip().lower()]
    except KeyError:
        raise ValueError(
            f"this section knows amd64 (x86_64) and arm64 (aarch64) processors, not {engine_arch!r}"
        ) from None


def foreign_arch(native: str) -> str:
    """The other one of the two: the processor this engine does not have."""
    if native not in ARCHES:
        raise ValueError(f"not one of {ARCHES}: {native!r}")
    return ARCHES[1 - ARCHES.index(native)]


# --- the programs ------------------------------------------------------------------------------------


def _amd64_code(text: bytes) -> bytes:
    """x86-64 Linux: write(1, text, len) is syscall 1, exit(0) is syscall 60; arguments in rdi, rsi, rdx."""
    code = [
        bytes.fromhex("b8 01 00 00 00"),  # mov eax, 1: the write system call
        bytes.fromhex("bf 01 00 00 00"),  # mov edi, 1: file descriptor 1, standard output
        b"",  # lea rsi, [rip + disp]: the text's address (below)
        b"\xba" + struct.pack("<I", len(text)),  # mov edx, len: how many bytes to write
        bytes.fromhex("0f 05"),  # syscall: write
        bytes.fromhex("b8 3c 00 00 00"),  # mov eax, 60: the exit system call
        bytes.fromhex("31 ff"),  # xor edi, edi: exit status 0
        bytes.fromhex("0f 05"),  # syscall: exit
    ]
    # rip-relative: disp counts from the end of the lea to the text, which follows the last instruction.
    code[2] = bytes.fromhex("48 8d 35") + struct.pack("<i", sum(map(len, code[3:])))
    return b"".join(code)


def _movz(register: int, value: int) -> int:
    """aarch64 `mov xN, #value` (MOVZ, 64-bit, no shift): 0xd2800000 | imm16 << 5 | Rd."""
    if not 0 <= value < 1 << 16:
        raise ValueError(f"mov takes a 16-bit immediate, not {value}")
    return 0xD2800000 | value << 5 | register


def _adr(register: int, offset: int) -> int:
    """aarch64 `adr xN, .+offset`: a PC-relative address; immlo (2 bits) at 29, immhi (19 bits) at 5."""
    if not -(1 << 20) <= offset < 1 << 20:
        raise ValueError(f"adr reaches +-1 MiB, not {offset}")
    imm = offset & ((1 << 21) - 1)
    return 0x10000000 | (imm & 3) << 29 | (imm >> 2) << 5 | register


SVC_0 = 0xD4000001  # svc #0: the system call whose number is in x8


def _arm64_code(text: bytes) -> bytes:
    """aarch64 Linux: write is syscall 64, exit is 93 (number in x8); arguments in x0, x1, x2."""
    words = [
        _movz(0, 1),  # mov x0, #1: file descriptor 1, standard output
        0,  # adr x1, text: the text's address (below)
        _movz(2, len(text)),  # mov x2, #len: how many bytes to write
        _movz(8, 64),  # mov x8, #64: the write system call
        SVC_0,  # svc #0: write
        _movz(0, 0),  # mov x0, #0: exit status 0
        _movz(8, 93),  # mov x8, #93: the exit system call
        SVC_0,  # svc #0: exit
    ]
    # The text follows the last instruction; adr is the second one (4 bytes in).
    words[1] = _adr(1, 4 * len(words) - 4)
    return b"".join(struct.pack("<I", w) for w in words)


def tiny_program(arch: str, text: str) -> bytes:
    """A complete static Linux executable for `arch` ("amd64" or "arm64") that prints `text` and exits 0.

    ELF64, little-endian, type ET_EXEC: the file header, one PT_LOAD program header that maps the whole
    file (read + execute) at LOAD_ADDRESS, then the machine code and the text. No libc, no sections.
    """
    data = text.encode() + b"\n"
    code = {"amd64": _amd64_code, "arm64": _arm64_code}[arch](data)
    size = CODE_OFFSET + len(code) + len(data)
    header = (
        b"\x7fELF"
        + bytes([2, 1, 1, 0])  # ELFCLASS64, little-endian, ELF version 1, System V ABI
        + bytes(8)  # padding of e_ident
        + struct.pack(
            "<HHIQQQIHHHHHH",
            2,  # e_type: ET_EXEC, an executable at a fixed address
            E_MACHINE[arch],
            1,  # e_version
            LOAD_ADDRESS + CODE_OFFSET,  # e_entry: the first instruction
            EHDR_SIZE,  # e_phoff: the program header follows the file header
            0,  # e_shoff: no section headers (only linkers and debuggers read them)
            0,  # e_flags
            EHDR_SIZE,
            PHDR_SIZE,
            1,  # e_phnum
            64,  # e_shentsize
            0,  # e_shnum
            0,  # e_shstrndx
        )
    )
    program_header = struct.pack(
        "<IIQQQQQQ",
        1,  # p_type: PT_LOAD
        5,  # p_flags: PF_R | PF_X
        0,  # p_offset: from the start of the file...
        LOAD_ADDRESS,  # p_vaddr
        LOAD_ADDRESS,  # p_paddr
        size,  # p_filesz: ...the whole file
        size,  # p_memsz
        0x1000,  # p_align: a page
    )
    program = header + program_header + code + data
    assert len(program) == size
    return program


def elf_arch(program: bytes) -> str:
    """Which processor an ELF program is for, from its header: "amd64", "arm64", or "e_machine N"."""
    if program[:4] != b"\x7fELF" or len(program) < 20:
        raise ValueError("not an ELF file")
    (machine,) = struct.unpack_from("<H", program, 18)
    return next((arch for arch, number in E_MACHINE.items() if number == machine), f"e_machine {machine}")


def write_hello_context(folder: Path) -> Path:
    """The build context of the two-platform image: the Dockerfile, and one program per processor."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    for arch in ARCHES:
        path = folder / f"hello-{arch}"
        path.write_bytes(tiny_program(arch, message(arch)))
        path.chmod(0o755)  # COPY keeps the mode: the file must be executable in the image
    return folder


# --- emulation ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Handler:
    """A binfmt_misc entry: the kernel hands programs that match its magic bytes to its interpreter."""

    name: str  # e.g. qemu-aarch64
    interpreter: str  # e.g. /usr/bin/qemu-aarch64-static
    flags: str  # F: the kernel opened the interpreter when it was registered, so containers can use it

    @property
    def works_in_containers(self) -> bool:
        # Without F the kernel looks the interpreter up in the container's own filesystem, where it is not.
        return "F" in self.flags

    def __str__(self) -> str:
        return f"{self.name} -> {self.interpreter} (flags {self.flags or 'none'})"


def _entry(text: str) -> dict[str, str]:
    """An entry file's lines ("enabled", "interpreter /usr/bin/...", "flags: F", "magic 7f45...") as a dict."""
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        fields[key.rstrip(":")] = value.strip()
    return fields


def emulation(arch: str, binfmt_dir: Path = BINFMT_DIR) -> Handler | None:
    """The enabled binfmt_misc handler that would run `arch` programs on this kernel, or None.

    The kernel picks a handler by comparing the first bytes of a program with each entry's magic (under
    its mask); this does the same with the header of `tiny_program(arch)`, so any name (qemu-aarch64,
    qemu-x86_64, ...) is found. Only a Linux host's own kernel shows here: Docker Desktop registers its
    emulators inside its VM, so only running a program in a container tells what the engine can run.
    """
    status = binfmt_dir / "status"
    try:
        if status.read_text().strip() != "enabled":
            return None
        entries = sorted(p for p in binfmt_dir.iterdir() if p.name not in ("status", "register"))
    except OSError:
        return None  # not Linux, or binfmt_misc not mounted
    header = tiny_program(arch, "")[:128]
    for path in entries:
        try:
            fields = _entry(path.read_text())
        except OSError:
            continue
        if "enabled" not in fields or "magic" not in fields:
            continue  # disabled, or matched by file name extension rather than by content
        magic = bytes.fromhex(fields["magic"])
        mask = bytes.fromhex(fields.get("mask", "ff" * len(magic)))
        offset = int(fields.get("offset", "0"))
        window = header[offset : offset + len(magic)]
        if len(window) == len(magic) and all((b & m) == (g & m) for b, m, g in zip(window, mask, magic, strict=True)):
            return Handler(path.name, fields.get("interpreter", ""), fields.get("flags", ""))
    return None


# --- running it --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """What happened when a container started the `arch` program."""

    arch: str
    kind: str  # "ran", "exec format error", "file not found" or "failed"
    code: int
    evidence: str  # the line of output that decided it

    @property
    def ran(self) -> bool:
        return self.kind == "ran"


def classify_run(code: int, output: str, arch: str) -> RunOutcome:
    """Classify a `docker run` of the hello image for `arch` from its exit status and output.

    "ran": it printed its line (natively, or under an emulator). "exec format error": the kernel found no
    way to run the program (machine code for another processor, and no emulator for it). "file not found":
    a file the start needed is missing; with an emulator registered without the F flag (see `Handler`),
    that file is the emulator, which the kernel looked for inside the container. Anything else: "failed".
    """
    lines = output.splitlines()

    def line_with(text: str) -> str:
        return next((line for line in lines if text in line.lower()), lines[-1] if lines else "")

    if code == 0 and message(arch) in output:
        return RunOutcome(arch, "ran", code, message(arch))
    if code != 0 and "exec format error" in output.lower():
        return RunOutcome(arch, "exec format error", code, line_with("exec format error"))
    if code != 0 and "no such file or directory" in output.lower():
        return RunOutcome(arch, "file not found", code, line_with("no such file or directory"))
    return RunOutcome(arch, "failed", code, lines[-1] if lines else "(no output)")


def refuses_manifest_lists(build_output: str) -> bool:
    """True when a multi-platform `--load` failed because this engine's image store cannot keep a manifest list."""
    return any(text in build_output for text in MANIFEST_LIST_REFUSALS)


# --- reading a `docker save` archive -----------------------------------------------------------------

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
IMAGE_NAME = "io.containerd.image.name"  # the full name, e.g. docker.io/workbook/ch04-hello:latest
REF_NAME = "org.opencontainers.image.ref.name"  # docker save writes the tag here
REFERENCE_TYPE = "vnd.docker.reference.type"  # "attestation-manifest": build provenance, not an image


def full_name(ref: str) -> str:
    """`workbook/ch04-hello` as the engine stores it: docker.io/workbook/ch04-hello:latest."""
    name, at, digest = ref.partition("@")
    if ":" not in name.rsplit("/", 1)[-1] and not at:
        name += ":latest"
    first, slash, _ = name.partition("/")
    if not slash:
        name = "docker.io/library/" + name
    elif "." not in first and ":" not in first and first != "localhost":
        name = "docker.io/" + name
    return name + at + digest


def _platform(spec: dict) -> str:
    parts = [spec.get("os", "?"), spec.get("architecture", "?")] + ([spec["variant"]] if spec.get("variant") else [])
    return "/".join(parts)


class _Archive:
    """The JSON files of a `docker save` archive (index.json, manifest.json, blobs/sha256/...), read by name."""

    def __init__(self, tar: tarfile.TarFile):
        self.tar = tar
        self.names = {posixpath.normpath(m.name): m for m in tar.getmembers() if m.isfile()}

    def json(self, name: str) -> dict | list | None:
        member = self.names.get(posixpath.normpath(name))
        return None if member is None else json.load(self.tar.extractfile(member))

    def blob(self, digest: str) -> dict | None:
        algorithm, _, encoded = digest.partition(":")
        return self.json(f"blobs/{algorithm}/{encoded}")

    def platforms(self, descriptor: dict) -> list[str]:
        """The platforms behind one descriptor: every image of an index (nested ones too), or one manifest's."""
        annotations = descriptor.get("annotations") or {}
        spec = descriptor.get("platform") or {}
        if annotations.get(REFERENCE_TYPE) == "attestation-manifest" or spec.get("architecture") == "unknown":
            return []
        content = self.blob(descriptor["digest"])
        if descriptor.get("mediaType") in INDEX_TYPES or (content and "manifests" in content):
            if content is None:
                raise ValueError(f"the archive lacks the index {descriptor['digest']}")
            found: list[str] = []
            for child in content.get("manifests", []):
                found += [p for p in self.platforms(child) if p not in found]
            return found
        if spec:
            return [_platform(spec)]
        if content is None:
            return []  # a platform the engine listed but never pulled, with no platform in its descriptor
        config = self.blob(content["config"]["digest"]) or {}
        return [_platform(config)] if config.get("architecture") else []


def index_platforms(archive: Path, ref: str) -> list[str]:
    """The platforms ("linux/amd64", "linux/arm64") of the image `ref` in a `docker save` archive.

    A manifest list (image index) gives each of its images' platforms, in its order; build attestations
    (platform unknown/unknown) are not images and are left out. A single image gives its own platform,
    from its config. Reads the OCI layout (index.json and blobs/, Engine 25 and later) and, for older
    engines, manifest.json. Raises LookupError, naming what the archive holds, when `ref` is not in it.
    """
    wanted = full_name(ref)
    with tarfile.open(archive) as tar:
        saved = _Archive(tar)
        index = saved.json("index.json")
        if index is not None:
            held = []
            for descriptor in index.get("manifests", []):
                annotations = descriptor.get("annotations") or {}
                # docker save names each image by its full name, and again by its tag alone in ref.name.
                name = annotations.get(IMAGE_NAME) or annotations.get(REF_NAME, "")
                held.append(name)
                if name and (full_name(name) == wanted or name == wanted.rpartition(":")[2]):
                    return saved.platforms(descriptor)
            raise LookupError(f"{ref} is not in {Path(archive).name}; its index.json names {held}")
        manifest = saved.json("manifest.json")
        if manifest is None:
            raise ValueError(f"{Path(archive).name} is not a `docker save` archive: no index.json, no manifest.json")
        for entry in manifest:
            if wanted in (full_name(tag) for tag in entry.get("RepoTags") or []):
                config = saved.json(entry["Config"]) or {}
                return [_platform(config)]
        held = [tag for entry in manifest for tag in entry.get("RepoTags") or []]
        raise LookupError(f"{ref} is not in {Path(archive).name}; its manifest.json names {held}")
