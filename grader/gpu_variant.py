"""Reading a model service's CPU and GPU variants: which torch an image holds, what a health answer says about
the device, and what a GPU Dockerfile and Compose file ask for. Pure functions: the GPU checks and chapter 8 of
the workbook use them alike."""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
from pathlib import Path

from grader.dockerfile import Instruction
from grader.programs import program_text
from grader.programs.torch_probe import PROBE_MARK

HEALTH_FIELDS = {"device_field": "device", "cuda_field": "cuda_available", "gpu_name_field": "gpu_name"}


# --- what a health endpoint says about its device ---------------------------------------------------
def lookup(data, dotted: str) -> tuple[bool, object]:
    """(found, value) of data["a"]["b"] for "a.b": a null value is found, a missing key is not."""
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return False, None
        data = data[key]
    return True, data


def device_problems(health, expect_gpu: bool, fields: dict[str, str] = HEALTH_FIELDS) -> list[str]:
    """What is wrong with a health answer's device report, for a container given a GPU or not."""
    if not isinstance(health, dict):
        return ["the answer is not a JSON object"]
    device_field, cuda_field, gpu_field = fields["device_field"], fields["cuda_field"], fields["gpu_name_field"]
    problems = []
    values = {}
    for name in (device_field, cuda_field, gpu_field):
        found, value = lookup(health, name)
        if found:
            values[name] = value
        else:
            problems.append(f'"{name}" is missing')
    if cuda_field in values and not isinstance(values[cuda_field], bool):
        problems.append(f'"{cuda_field}" is {values[cuda_field]!r}, not true or false')
    device, cuda, gpu = values.get(device_field), values.get(cuda_field), values.get(gpu_field)
    if expect_gpu:
        if device_field in values and not str(device).startswith("cuda"):
            problems.append(
                f'"{device_field}" is {device!r}, not "cuda": the model does not run on the GPU it was given'
            )
        if cuda_field in values and cuda is not True:
            problems.append(f'"{cuda_field}" is {cuda!r} in a container that was given a GPU')
        if gpu_field in values and not (isinstance(gpu, str) and gpu.strip()):
            problems.append(f'"{gpu_field}" is {gpu!r}, not the name of the GPU')
    else:
        if device_field in values and device != "cpu":
            problems.append(f'"{device_field}" is {device!r}, but this container was given no GPU: expected "cpu"')
        if cuda_field in values and cuda is not False:
            problems.append(f'"{cuda_field}" is {cuda!r}, but this container was given no GPU: expected false')
        if gpu_field in values and gpu is not None:
            problems.append(f'"{gpu_field}" is {gpu!r}, but this container was given no GPU: expected null')
    return problems


# --- which torch an image holds ---------------------------------------------------------------------
# The text of grader/programs/torch_probe.py, run inside the image with its own Python (`python -c TORCH_PROBE`):
# which torch, which CUDA it was built for, and every installed distribution, as one JSON line after PROBE_MARK.
TORCH_PROBE = program_text("torch_probe")


def probe_report(output: str) -> dict | None:
    """The probe's JSON report from its output, or None when it printed none."""
    for line in reversed(output.splitlines()):
        if line.startswith(PROBE_MARK):
            try:
                return json.loads(line[len(PROBE_MARK) :])
            except json.JSONDecodeError:
                return None
    return None


def forbidden_distributions(distributions: list[str], patterns: list[str]) -> list[str]:
    """The 'name==version' entries whose name matches one of `patterns` (fnmatch, case-insensitive)."""
    return [d for d in distributions if any(fnmatch.fnmatch(d.split("==")[0].lower(), p.lower()) for p in patterns)]


def cpu_only_problems(report: dict, patterns: list[str]) -> list[str]:
    """What makes the probed torch installation something other than a CPU-only one."""
    if report.get("error") or not report.get("torch"):
        return [f"torch does not import in the image: {report.get('error') or 'no version reported'}"]
    problems = []
    if report.get("cuda") is not None:
        problems.append(
            f"torch {report['torch']} is a CUDA build (torch.version.cuda is {report['cuda']!r}), not the CPU build"
        )
    found = forbidden_distributions(report.get("distributions") or [], patterns)
    if found:
        problems.append(f"{len(found)} CUDA package(s) installed, which a CPU image never uses: {', '.join(found)}")
    return problems


# --- which base image a GPU Dockerfile starts from ---------------------------------------------------
def split_image(ref: str) -> tuple[str, str]:
    """(repository, tag) of an image reference; the Docker Hub prefixes are dropped, a missing tag is ''."""
    ref = ref.split("@")[0]
    last = ref.rsplit("/", 1)[-1]
    repo, tag = ref.rsplit(":", 1) if ":" in last else (ref, "")
    repo = repo.lower()
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if repo.startswith(prefix):
            repo = repo[len(prefix) :]
    return repo.removeprefix("library/"), tag


def cuda_base_problem(image: str | None, repositories: list[str], tag_words: list[str]) -> str | None:
    """Why `image` is not an NVIDIA CUDA runtime image, or None when it is one."""
    if not image:
        return "it has no FROM line"
    repo, tag = split_image(image)
    wanted = " or ".join(f"{r}:<version>-runtime-<os>" for r in repositories)
    if repo not in [r.lower() for r in repositories]:
        return (
            f"its final stage starts FROM {image}, which is not an NVIDIA CUDA image ({wanted}): "
            "it has none of the CUDA libraries, nor the settings the NVIDIA runtime reads to hand over the GPU"
        )
    if not tag or tag == "latest":
        return f"FROM {image} names no CUDA version: pin a tag such as {repositories[0]}:12.8.1-runtime-ubuntu24.04"
    if "devel" in tag:
        return (
            f"FROM {image} is a devel image: compilers and headers for building CUDA code, gigabytes a service "
            "never uses. Use the runtime variant of the same version"
        )
    if not any(word in tag for word in tag_words):
        return (
            f"FROM {image} is not a runtime image (tags with {' or '.join(tag_words)}): the 'base' images lack "
            "the CUDA libraries"
        )
    return None


# --- which torch a Dockerfile installs --------------------------------------------------------------
TORCH_REQUIREMENT = re.compile(r"^torch(\[[^\]]*\])?\s*((===|==|>=|<=|~=|!=|>|<)\s*\S+)?$", re.IGNORECASE)
INDEX_OPTIONS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links")
REQUIREMENT_OPTIONS = ("-r", "--requirement")


def split_words(text: str) -> list[str]:
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:  # an unbalanced quote: good enough for finding options and names
        return text.split()


def option_values(words: list[str], options: tuple[str, ...]) -> list[str]:
    """The values given to `options` in a word list: `-r x`, `--requirement x` and `--requirement=x`."""
    values = []
    for i, word in enumerate(words):
        if word in options and i + 1 < len(words):
            values.append(words[i + 1])
        for option in options:
            if option.startswith("--") and word.startswith(option + "="):
                values.append(word.split("=", 1)[1])
    return values


def is_pip_install(words: list[str]) -> bool:
    pips = [i for i, w in enumerate(words) if re.fullmatch(r"pip(3(\.\d+)?)?", posixpath.basename(w))]
    return bool(pips) and "install" in words[pips[0] :]


def requirement_lines(text: str) -> tuple[list[str], list[str]]:
    """(torch requirements, index and find-links URLs) in the text of a requirements file."""
    specs, indexes = [], []
    for raw in text.splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            indexes += option_values(split_words(line.replace("=", " ", 1)), INDEX_OPTIONS)
            continue
        requirement = line.split(";")[0].strip()
        if TORCH_REQUIREMENT.match(requirement):
            specs.append(requirement)
    return specs, indexes


def copied_file(instructions: list[Instruction], folder: Path, name: str) -> Path | None:
    """The file of `folder` that a COPY/ADD puts where a later `-r name` reads it (matched by file name)."""
    base = posixpath.basename(name)
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD") or "--from" in ins.args:
            continue
        words = [w for w in split_words(ins.args) if not w.startswith("--")]
        for source in words[:-1]:
            path = folder / source
            if path.is_file() and path.name == base:
                return path
            if path.is_dir() and (path / base).is_file():
                return path / base
    return None


def torch_installs(instructions: list[Instruction], folder: Path) -> tuple[list[str], list[str]]:
    """(torch requirements, index URLs) of the pip installs in a Dockerfile and the requirement files it copies."""
    specs, indexes = [], []
    for ins in instructions:
        if ins.keyword != "RUN":
            continue
        words = split_words(ins.args)
        if not is_pip_install(words):
            continue
        specs += [w for w in words if TORCH_REQUIREMENT.match(w)]
        indexes += option_values(words, INDEX_OPTIONS)
        for name in option_values(words, REQUIREMENT_OPTIONS):
            path = copied_file(instructions, folder, name)
            if path is not None:
                more_specs, more_indexes = requirement_lines(path.read_text(errors="replace"))
                specs += more_specs
                indexes += more_indexes
    return specs, indexes


def torch_build_problems(specs: list[str], indexes: list[str]) -> list[str]:
    """Why these torch requirements and indexes do not give a CUDA build of torch (empty when they do)."""
    if not specs:
        return ["it installs no torch (no torch requirement in its pip installs or the requirement files they read)"]
    problems = []
    cpu = [s for s in specs if "+cpu" in s.lower()]
    if cpu:
        problems.append(f"it installs torch's CPU build ({', '.join(cpu)}): it would run, but never on the GPU")
    cpu_indexes = [i for i in indexes if "/whl/cpu" in i.lower()]
    if cpu_indexes:
        problems.append(f"it installs from PyTorch's CPU index ({', '.join(cpu_indexes)}), which holds only CPU builds")
    return problems


# --- the GPU Compose file ---------------------------------------------------------------------------
def reserved_devices(service: dict) -> list:
    deploy = service.get("deploy") or {}
    return ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []


def compose_gpu_problems(
    config: dict, driver: str, capabilities: list[str], dockerfile: str
) -> tuple[list[str], list[str]]:
    """(problems, services reserving a GPU) of a Compose file as `docker compose config --format json` prints it."""
    services = config.get("services") or {}
    if not services:
        return ["it defines no services"], []
    wanted = f"driver: {driver}, capabilities: [{', '.join(capabilities)}]"
    reserving, problems, near = [], [], []
    for name, service in sorted(services.items()):
        devices = reserved_devices(service)
        good = [
            d
            for d in devices
            if isinstance(d, dict)
            and (not driver or d.get("driver") == driver)
            and set(capabilities) <= set(d.get("capabilities") or [])
        ]
        if good:
            reserving.append(name)
            build = service.get("build")
            built_from = posixpath.basename((build or {}).get("dockerfile") or "Dockerfile") if build else None
            if dockerfile and built_from and built_from != dockerfile:
                problems.append(f"service {name} reserves a GPU but builds {built_from}, not {dockerfile}")
        elif devices:
            near.append(f"service {name} reserves devices, but none with {wanted}: {json.dumps(devices)}")
        elif service.get("gpus"):
            near.append(
                f"service {name} asks for GPUs with the `gpus:` attribute; this lab asks for the reservation under "
                "deploy.resources.reservations.devices, which every Compose v2 reads"
            )
    if not reserving:
        problems += near or [
            f"no service reserves a GPU: none has deploy.resources.reservations.devices with {wanted}, so its "
            "container starts without a GPU and the service quietly runs on the CPU"
        ]
    return problems, reserving
