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
import json

import docker.errors
import docker.types
import requests

from grader import hadolint
from grader.buildkit import BuildResult
from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.dockerfile import dockerfile_instructions, final_base_image
from grader.engine import compose_config
from grader.errors import ComposeFileInvalid, SpecError
from grader.gpu_runtime import GPU_RUNTIME, gpu_runtime
from grader.gpu_variant import (
    HEALTH_FIELDS,
    TORCH_PROBE,
    compose_gpu_problems,
    cpu_only_problems,
    cuda_base_problem,
    device_problems,
    lookup,
    probe_report,
    torch_build_problems,
    torch_installs,
)
from grader.http_probe import TIMEOUT_S, call, describe, json_or_none
from grader.readiness import wait_until_answers

CPU_TORCH_HINT = (
    "Install torch's CPU build, pinned with its local label so that no other build can match: "
    "pip install --no-cache-dir torch==VERSION+cpu --extra-index-url https://download.pytorch.org/whl/cpu "
    "(in this lab: --find-links /tmp/wheels after COPY wheels/ /tmp/wheels/). On Linux a plain "
    "`pip install torch` from PyPI is the CUDA build, with gigabytes of nvidia-* packages a CPU server never uses."
)


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


# --- CpuOnlyTorch -----------------------------------------------------------------------------------
TORCH_PROBE_JOB = "torch probe"


@register
class CpuOnlyTorch(Check):
    name = "CpuOnlyTorch"
    category = "image"
    title = "The CPU image holds torch's CPU build, without CUDA packages"
    hint = CPU_TORCH_HINT
    default_params = {"python": "python", "forbidden_distributions": ["nvidia-*", "triton"]}

    def after_build(self, ctx: CheckContext) -> None:
        # Importing torch takes seconds: the probe runs while the service starts.
        ctx.in_background(TORCH_PROBE_JOB, lambda: self.probe(ctx))

    def probe(self, ctx: CheckContext) -> tuple[int, str] | Outcome:
        try:
            return ctx.engine.run_once(ctx.image(), [self.params["python"], "-c", TORCH_PROBE], timeout_s=120)
        except docker.errors.APIError as err:
            return Outcome.failed(
                f"could not run {self.params['python']} in the image: {err.explanation or err}",
                hint=f"The image needs a `{self.params['python']}` on its PATH (the venv's bin folder, say).",
            )

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run(self, ctx: CheckContext) -> Outcome:
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
    required_params = {
        "dockerfile": "the GPU variant's Dockerfile, e.g. Dockerfile.gpu",
        "compose_file": "the Compose file that runs it with a GPU, e.g. compose.gpu.yaml",
    }
    default_params = {
        "failure_threshold": "warning",
        "ignore": [],
        "base_repositories": ["nvidia/cuda", "nvcr.io/nvidia/cuda"],
        "base_tag_words": ["runtime"],
        "driver": "nvidia",
        "capabilities": ["gpu"],
    }

    def __init__(self, spec):
        super().__init__(spec)
        if self.params["failure_threshold"] not in hadolint.LEVELS:
            raise SpecError(f"check {self.name}: failure_threshold must be one of {hadolint.LEVELS}")

    def run(self, ctx: CheckContext) -> Outcome:
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

    def lint(self, ctx: CheckContext, dockerfile: str, problems: list, evidence: list, hints: list, good: list) -> None:
        """hadolint on the GPU Dockerfile, exactly as DockerfileLint lints the lab's own Dockerfile."""
        report = hadolint.lint(
            ctx.submission / dockerfile,
            ctx.scratch,
            self.params["failure_threshold"],
            self.params["ignore"],
            shown_as=dockerfile,
        )
        if report.ok:
            good.append(f"hadolint: {report.message()}")
            return
        problems.append(f"{dockerfile}: {report.message()}")
        evidence.append(f"hadolint on {dockerfile}:\n{report.evidence()}")
        fixes = report.fixes()
        if fixes:
            hints.append(fixes)


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
    default_params = {"memory_mb": 8192, "ready_s": 180, **HEALTH_FIELDS}
    required_params = {"dockerfile": "the GPU variant's Dockerfile, e.g. Dockerfile.gpu"}

    def after_build(self, ctx: CheckContext) -> None:
        # Only an engine that can run it builds the CUDA image (gigabytes), beside the CPU image's checks.
        if gpu_runtime(ctx.engine.info())[0]:
            ctx.in_background(GPU_BUILD, lambda: self.build_gpu(ctx))

    def build_gpu(self, ctx: CheckContext) -> BuildResult | Outcome:
        """Build the GPU Dockerfile on a copy of the submission; an Outcome when there is none."""
        name = self.params["dockerfile"]
        copy = ctx.copy_of_submission("gpu")
        if not (copy / name).is_file():
            return Outcome.failed(f"{name} is missing, so there is no GPU image to run")
        (copy / ctx.spec.dockerfile).write_text((copy / name).read_text())
        return ctx.side_build(copy, "gpu")

    def run(self, ctx: CheckContext) -> Outcome:
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

    def run_on_gpu(self, ctx: CheckContext, image: str) -> tuple[list[str], list[str]]:
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
