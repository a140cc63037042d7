"""Checks of a service that runs on a GPU where there is one, and of its CPU and GPU images.

- CpuOnlyTorch: the CPU image holds a CPU build of torch (torch.version.cuda is None) and none of the
  CUDA packages a plain `pip install torch` pulls from PyPI (nvidia-*, triton).
- HealthReportsDevice: the health endpoint says which device the model runs on, whether CUDA is
  available and the GPU's name, and says it truthfully for a container that was given no GPU.
- GpuVariantLint: the GPU Dockerfile passes hadolint, starts FROM an NVIDIA CUDA runtime image and
  installs a CUDA build of torch; the GPU Compose file reserves a GPU for a service.
- GpuImageRuns: where the engine has the NVIDIA runtime, the GPU image builds, starts with a GPU and
  reports it in its health endpoint; elsewhere it is skipped, saying so. Its message compares the CPU
  and CUDA image sizes where both exist.

No machine here has a GPU: everything that can be judged without one is (the files, the CPU image,
what the service reports on a CPU), and the GPU run is left to an engine that can do it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import posixpath
import re
import shlex
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import docker.types
import requests

from grader.checks.base import Check, Outcome, register
from grader.checks.http import TIMEOUT_S, call, describe, json_or_none
from grader.checks.lint import LEVELS, DockerfileLint
from grader.dockerfile import Instruction, dockerfile_instructions, final_base_image
from grader.engine import compose_config
from grader.errors import ComposeFileInvalid, SpecError
from grader.readiness import wait_until_answers
from grader.spec import CheckSpec

GPU_RUNTIME = "nvidia"  # the runtime the NVIDIA Container Toolkit adds to the engine
HEALTH_FIELDS = {"device_field": "device", "cuda_field": "cuda_available", "gpu_name_field": "gpu_name"}
CPU_TORCH_HINT = (
    "Install torch's CPU build, pinned with its local label so that no other build can match: "
    "pip install --no-cache-dir torch==VERSION+cpu --extra-index-url https://download.pytorch.org/whl/cpu "
    "(in this lab: --find-links /tmp/wheels after COPY wheels/ /tmp/wheels/). On Linux a plain "
    "`pip install torch` from PyPI is the CUDA build, with gigabytes of nvidia-* packages a CPU server never uses."
)


# --- the engine's runtimes --------------------------------------------------------------------------
def gpu_runtime(info: dict) -> tuple[bool, list[str]]:
    """Whether `docker info` lists the NVIDIA runtime, and the runtimes it lists."""
    runtimes = sorted(info.get("Runtimes") or {})
    return GPU_RUNTIME in runtimes, runtimes


def megabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:.0f} MB"


def size_comparison(cpu_bytes: int | None, cuda_bytes: int | None) -> str:
    """A sentence comparing the CPU and CUDA image sizes, or saying which one is missing."""
    if cpu_bytes and cuda_bytes:
        return (
            f"CPU image {megabytes(cpu_bytes)}, CUDA image {megabytes(cuda_bytes)}: "
            f"the CUDA image is {cuda_bytes / cpu_bytes:.1f} times the size of the CPU one"
        )
    if cpu_bytes:
        return f"CPU image {megabytes(cpu_bytes)}; no CUDA image to compare it with"
    if cuda_bytes:
        return f"CUDA image {megabytes(cuda_bytes)}; the CPU image did not build, so there is nothing to compare"
    return "neither image was built, so there are no sizes to compare"


def no_gpu_message(runtimes: list[str], dockerfile: str, cpu_bytes: int | None) -> str:
    """The message of a GPU check skipped for want of the NVIDIA runtime; it starts 'skipped: no GPU runtime'."""
    return (
        f"skipped: no GPU runtime: the engine's runtimes are {', '.join(runtimes) or 'none'}, and none is "
        f"'{GPU_RUNTIME}' (the NVIDIA Container Toolkit adds it on a machine with an NVIDIA GPU). {dockerfile} was "
        f"linted but not built or run. {size_comparison(cpu_bytes, None)}."
    )


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


# --- CpuOnlyTorch -----------------------------------------------------------------------------------
PROBE_MARK = "TORCH-PROBE "
TORCH_PROBE_JOB = "torch probe"
# Run inside the image with its own Python: which torch, which CUDA it was built for, and every installed
# distribution (pip's metadata), as one JSON line.
TORCH_PROBE = (
    "import json, importlib.metadata as md\n"
    "report = {}\n"
    "try:\n"
    "    import torch\n"
    "    report['torch'] = str(torch.__version__)\n"
    "    report['cuda'] = torch.version.cuda\n"
    "except Exception as err:\n"
    "    report['error'] = f'{type(err).__name__}: {err}'\n"
    "report['distributions'] = sorted({f\"{d.metadata['Name']}=={d.version}\" for d in md.distributions()\n"
    "                                  if d.metadata['Name']})\n"
    f"print({PROBE_MARK!r} + json.dumps(report))\n"
)


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


@register
class CpuOnlyTorch(Check):
    name = "CpuOnlyTorch"
    category = "image"
    title = "The CPU image holds torch's CPU build, without CUDA packages"
    hint = CPU_TORCH_HINT
    default_params = {"python": "python", "forbidden_distributions": ["nvidia-*", "triton"]}

    def after_build(self, ctx) -> None:
        # Importing torch takes seconds: the probe runs while the service starts.
        ctx.in_background(TORCH_PROBE_JOB, lambda: self.probe(ctx))

    def probe(self, ctx) -> tuple[int, str] | Outcome:
        try:
            return ctx.engine.run_once(ctx.image(), [self.params["python"], "-c", TORCH_PROBE], timeout_s=120)
        except docker.errors.APIError as err:
            return Outcome.failed(
                f"could not run {self.params['python']} in the image: {err.explanation or err}",
                hint=f"The image needs a `{self.params['python']}` on its PATH (the venv's bin folder, say).",
            )

    def run(self, ctx) -> Outcome:
        ctx.image()
        probed = ctx.in_background(TORCH_PROBE_JOB, lambda: self.probe(ctx)).result()
        if isinstance(probed, Outcome):
            return probed
        code, output = probed
        report = probe_report(output)
        if report is None:
            return Outcome.failed(f"the torch probe printed no report (exit {code})", evidence=output[-1500:])
        problems = cpu_only_problems(report, list(self.params["forbidden_distributions"]))
        if problems:
            return Outcome.failed(problems[0], evidence="\n".join(problems))
        return Outcome.passed(
            f"torch {report['torch']}, a CPU build (torch.version.cuda is None), and no "
            f"{' / '.join(self.params['forbidden_distributions'])} package"
        )


# --- HealthReportsDevice ----------------------------------------------------------------------------
@register
class HealthReportsDevice(Check):
    name = "HealthReportsDevice"
    category = "http"
    title = "/health reports the device, CUDA availability and the GPU's name"
    hint = (
        "Pick the device from what the container has and report it in /health, e.g.\n"
        '  DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")\n'
        '  {"device": DEVICE.type, "cuda_available": torch.cuda.is_available(),\n'
        '   "gpu_name": torch.cuda.get_device_name(DEVICE) if DEVICE.type == "cuda" else None}'
    )
    default_params = dict(HEALTH_FIELDS)

    def run(self, ctx) -> Outcome:
        path = ctx.spec.http.get("health", {}).get("path", ctx.spec.ready_path)
        reply = requests.get(ctx.service().base_url + path, timeout=TIMEOUT_S)
        body = json_or_none(reply)
        if reply.status_code != 200 or body is None:
            return Outcome.failed(f"GET {path} gave {describe(reply)}")
        problems = device_problems(body, expect_gpu=False, fields=self.params)
        if problems:
            return Outcome.failed(
                f"GET {path} does not report the device right for a container with no GPU",
                evidence="\n".join(problems) + f"\n{describe(reply)}",
            )
        shown = {self.params[key]: lookup(body, self.params[key])[1] for key in HEALTH_FIELDS}
        return Outcome.passed(f"GET {path} reports {json.dumps(shown)} in a container with no GPU")


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


# --- GpuVariantLint ---------------------------------------------------------------------------------
@register
class GpuVariantLint(Check):
    name = "GpuVariantLint"
    category = "dockerfile"
    title = "The GPU Dockerfile and Compose file are right (linted, not run)"
    hint = (
        "Dockerfile.gpu: start FROM an NVIDIA CUDA runtime image (e.g. nvidia/cuda:12.8.1-runtime-ubuntu24.04) and "
        "install a CUDA build of torch (never +cpu). compose.gpu.yaml: reserve the GPU for the service:\n"
        "    deploy:\n      resources:\n        reservations:\n          devices:\n"
        "            - driver: nvidia\n              count: all\n              capabilities: [gpu]"
    )
    default_params = {
        "dockerfile": "Dockerfile.gpu",
        "compose_file": "compose.gpu.yaml",
        "failure_threshold": "warning",
        "ignore": [],
        "base_repositories": ["nvidia/cuda", "nvcr.io/nvidia/cuda"],
        "base_tag_words": ["runtime"],
        "driver": "nvidia",
        "capabilities": ["gpu"],
    }

    def __init__(self, spec):
        super().__init__(spec)
        if self.params["failure_threshold"] not in LEVELS:
            raise SpecError(f"check {self.name}: failure_threshold must be one of {LEVELS}")

    def run(self, ctx) -> Outcome:
        dockerfile, compose_file = self.params["dockerfile"], self.params["compose_file"]
        problems, evidence, hints, good = [], [], [], []
        path = ctx.submission / dockerfile
        if not path.is_file():
            problems.append(f"{dockerfile} is missing")
        else:
            self.lint(ctx, dockerfile, problems, evidence, hints, good)
            instructions = dockerfile_instructions(path.read_text(errors="replace"))
            base = final_base_image(instructions)
            why = cuda_base_problem(base, self.params["base_repositories"], self.params["base_tag_words"])
            problems += [f"{dockerfile}: {why}"] if why else []
            good += [] if why else [f"{dockerfile} starts FROM {base}"]
            specs, indexes = torch_installs(instructions, ctx.submission)
            torch_problems = torch_build_problems(specs, indexes)
            problems += [f"{dockerfile}: {p}" for p in torch_problems]
            good += [] if torch_problems else [f"{dockerfile} installs {', '.join(specs)}"]
        if not (ctx.submission / compose_file).is_file():
            problems.append(f"{compose_file} is missing")
        else:
            try:
                config = compose_config(ctx.submission, compose_file)
            except ComposeFileInvalid as err:
                problems.append(f"{compose_file}: {err.message}")
            else:
                compose_problems, reserving = compose_gpu_problems(
                    config, self.params["driver"], list(self.params["capabilities"]), dockerfile
                )
                problems += [f"{compose_file}: {p}" for p in compose_problems]
                if reserving:
                    good.append(f"{compose_file} reserves a GPU for {', '.join(reserving)}")
        if problems:
            if len(problems) > len(evidence):  # a problem hadolint did not find: the check's own hint too
                hints.append(self.learner_hint)
            return Outcome.failed(
                problems[0] + (f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""),
                evidence="\n".join(problems + evidence),
                hint="\n".join(hints),
            )
        return Outcome.passed("; ".join(good))

    def lint(self, ctx, dockerfile: str, problems: list, evidence: list, hints: list, good: list) -> None:
        """hadolint on the GPU Dockerfile, exactly as DockerfileLint lints the lab's own Dockerfile."""
        # DockerfileLint reads only the submission, the scratch folder and the spec's Dockerfile name: give it
        # a view of the context in which the GPU Dockerfile is the lab's Dockerfile.
        view = SimpleNamespace(
            submission=ctx.submission, scratch=ctx.scratch, spec=dataclasses.replace(ctx.spec, dockerfile=dockerfile)
        )
        params = {key: self.params[key] for key in ("failure_threshold", "ignore")}
        linted = DockerfileLint(CheckSpec(DockerfileLint.name, params=params)).run(view)
        if linted.status == "passed":
            good.append(f"hadolint: {linted.message}")
            return
        problems.append(f"{dockerfile}: {linted.message}")
        evidence.append(f"hadolint on {dockerfile}:\n{linted.evidence}")
        if linted.hint:
            hints.append(linted.hint)


# --- GpuImageRuns -----------------------------------------------------------------------------------
GPU_BUILD = "GPU image build"


@register
class GpuImageRuns(Check):
    name = "GpuImageRuns"
    category = "runtime"
    title = "The GPU image runs on a GPU (where the engine has the NVIDIA runtime)"
    hint = (
        "On a machine with an NVIDIA GPU, its driver and the NVIDIA Container Toolkit, build the GPU image "
        "(docker build -f Dockerfile.gpu -t lab-gpu .) and run it with the GPU (docker run --gpus all ...): "
        '/health must say "device": "cuda" and name the GPU. Read the log above for what went wrong. Without '
        "such a machine there is nothing to do: the grader runs this check where the engine can."
    )
    default_params = {"dockerfile": "Dockerfile.gpu", "memory_mb": 8192, "ready_s": 180, **HEALTH_FIELDS}

    def after_build(self, ctx) -> None:
        # Only an engine that can run it builds the CUDA image (gigabytes), beside the CPU image's checks.
        if gpu_runtime(ctx.engine.info())[0]:
            ctx.in_background(GPU_BUILD, lambda: self.build_gpu(ctx))

    def build_gpu(self, ctx):
        """Build the GPU Dockerfile on a copy of the submission; an Outcome when there is none."""
        name = self.params["dockerfile"]
        copy = ctx.copy_of_submission("gpu")
        if not (copy / name).is_file():
            return Outcome.failed(f"{name} is missing, so there is no GPU image to run")
        (copy / ctx.spec.dockerfile).write_text((copy / name).read_text())
        return ctx.build_from(copy, "gpu", title=None)

    def run(self, ctx) -> Outcome:
        has_runtime, runtimes = gpu_runtime(ctx.engine.info())
        built_cpu = ctx.build()
        cpu_bytes = ctx.image_size() if built_cpu.ok else None
        if not has_runtime:
            return Outcome.not_applicable(no_gpu_message(runtimes, self.params["dockerfile"], cpu_bytes))
        with ctx.progress.step(f"Building {self.params['dockerfile']} (the CUDA image)"):
            built = ctx.in_background(GPU_BUILD, lambda: self.build_gpu(ctx)).result()
        if isinstance(built, Outcome):
            return built
        ctx.timings["gpu_build_s"] = round(built.seconds, 2)
        if not built.ok:
            return Outcome.failed(
                f"{self.params['dockerfile']} did not build: {built.error}", evidence=built.log_tail()
            )
        sizes = size_comparison(cpu_bytes, ctx.image_size(built.image_id))
        try:
            problems, lines = self.run_on_gpu(ctx, built.image_id)
        except docker.errors.APIError as err:
            return Outcome.failed(
                f"the engine could not start the GPU image with a GPU: {err.explanation or err} ({sizes})"
            )
        if problems:
            return Outcome.failed(f"{problems[0]} ({sizes})", evidence="\n".join(problems + lines))
        return Outcome.passed(f"on the GPU: {'; '.join(lines[:1])}. {sizes}", evidence="\n".join(lines))

    def run_on_gpu(self, ctx, image: str) -> tuple[list[str], list[str]]:
        """Start `image` with every GPU, ask its health endpoint and the lab's prediction cases."""
        limits = dataclasses.replace(ctx.spec.limits, memory_mb=int(self.params["memory_mb"]))
        network = ctx.engine.create_network(limits)
        container = None
        gpus = {"device_requests": [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]}
        try:
            container = ctx.engine.start_service(
                image, ctx.spec.port, limits, network.name, None, name="gpu", extra=gpus
            )
            port = ctx.engine.host_port(container, ctx.spec.port)
            if not port:
                return ["the GPU container stopped before its port was published"], [ctx.engine.logs_tail(container)]
            base = f"http://127.0.0.1:{port}"
            waited = wait_until_answers(
                base + ctx.spec.ready_path, lambda: ctx.engine.state(container), float(self.params["ready_s"])
            )
            if not waited.ok:
                return [f"the GPU container never answered {ctx.spec.ready_path} ({waited.reason})"], [
                    ctx.engine.logs_tail(container)
                ]
            path = ctx.spec.http.get("health", {}).get("path", ctx.spec.ready_path)
            reply = requests.get(base + path, timeout=TIMEOUT_S)
            health = json_or_none(reply)
            fields = {key: self.params[key] for key in HEALTH_FIELDS}
            problems = device_problems(health, expect_gpu=True, fields=fields)
            lines = [f"GET {path} -> {describe(reply)}"]
            predict = ctx.spec.http.get("predict") or {}
            for case in predict.get("cases", []):
                answer = call(base, case, predict["path"])
                body = json_or_none(answer) or {}
                wrong = {k: body.get(k) for k, v in case["expect"].items() if body.get(k) != v}
                if answer.status_code != 200 or wrong:
                    problems.append(f"on the GPU, {case['name']}: expected {case['expect']}, got {describe(answer)}")
                else:
                    lines.append(f"ok   {case['name']} on the GPU: {case['expect']}")
            return problems, lines
        finally:
            if container is not None:
                container.remove(force=True)
            network.remove()
