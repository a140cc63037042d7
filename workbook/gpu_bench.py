"""Chapter 8: lab 07's model benchmarked against batch size, on the CPU and (where there is one) a GPU,
as a plain process and inside the lab's container, and put against what the hardware can do.

This file is also the benchmark program itself, so that the process and the container run the same code:

    python workbook/gpu_bench.py --model-dir solutions/07-pytorch-service/app --where process --device cpu
    docker run ... -v $PWD/workbook/gpu_bench.py:/bench/gpu_bench.py:ro --entrypoint python IMAGE \\
        /bench/gpu_bench.py --model-dir /app --where container --device cpu

It prints a human summary on stderr and one JSON record on stdout (a line that starts with RECORD_MARK).
At the top it imports only the standard library: torch is imported inside the functions that need it, and
the notebook-side helpers (plots, the engine) import theirs where they are used, so the file runs unchanged
with the image's own Python and torch.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence

SCHEMA = "workbook.gpu_bench/1"
RESULTS_SCHEMA = "workbook.gpu_bench.results/1"
RECORD_MARK = "BENCH-RECORD "
IMAGE_SHAPE = (1, 16, 16)  # lab 07's pictures: one grey channel, 16 x 16 pixels
MEASURED, NOT_MEASURED = "measured", "not measured"

# Vendor datasheet peaks for dense FP32 arithmetic on the CUDA cores (no tensor cores, no sparsity), in
# TFLOP/s. First match wins, so the more specific names come first ("A100" must not match "A10").
GPU_FP32_PEAK_TFLOPS: list[tuple[str, float, str]] = [
    (r"\bH200\b", 67.0, "H200 SXM"),
    (r"\bH100\b.*\bPCIe\b", 51.0, "H100 PCIe"),
    (r"\bH100\b.*\bNVL\b", 60.0, "H100 NVL"),
    (r"\bH100\b", 67.0, "H100 SXM"),
    (r"\bA100\b", 19.5, "A100"),
    (r"\bL40S\b", 91.6, "L40S"),
    (r"\bL40\b", 90.5, "L40"),
    (r"\bL4\b", 30.3, "L4"),
    (r"\bA10\b", 31.2, "A10"),
    (r"\bT4\b", 8.1, "T4"),
    (r"\bV100\b.*\bPCIE\b", 14.0, "V100 PCIe"),
    (r"\bV100\b", 15.7, "V100 SXM2"),
    (r"\bRTX 4090\b", 82.6, "GeForce RTX 4090"),
    (r"\bRTX 3090\b", 35.6, "GeForce RTX 3090"),
]


# --- statistics -------------------------------------------------------------------------------------
def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100) of `samples`, interpolated linearly between the two nearest ranks.

    The same definition as numpy's default: the rank is q/100 * (n - 1), counted from 0. With n samples the
    p99 is the largest sample for n <= 2 and lies between the two largest for n <= 100: a p99 means
    something only with a few hundred samples.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be between 0 and 100, not {q}")
    ordered = sorted(samples)
    rank = q / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(seconds: Sequence[float], batch_size: int, first_s: float | None = None) -> dict:
    """One result row: latency percentiles of the timed calls (ms) and throughput (images per second).

    throughput_ips is batch size / median latency: the rate of a typical call, which other programs on a
    shared machine disturb least. sustained_ips is every timed image over the total time: what a server
    handing the model one batch after the other got, stalls included. `first_s` is the very first (untimed,
    warm-up) call.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    ms = [s * 1000 for s in seconds]
    return {
        "batch_size": batch_size,
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "first_ms": None if first_s is None else first_s * 1000,
        "throughput_ips": batch_size / (percentile(ms, 50) / 1000),
        "sustained_ips": batch_size * len(ms) / (sum(ms) / 1000),
        "samples_ms": [round(v, 4) for v in ms],
    }


def fit_overhead(rows: Sequence[dict]) -> dict:
    """Least-squares line through (batch size, median latency): a fixed cost per call plus a cost per image.

    latency(batch) = overhead_ms + per_image_ms * batch. The overhead (Python, the dispatcher, one kernel
    launch per layer on a GPU) is paid once per call whatever the batch, which is why batching raises
    throughput until the per-image part dominates: the most throughput can reach is 1000 / per_image_ms.
    """
    if len(rows) < 2:
        raise ValueError("fitting a line needs at least two batch sizes")
    xs = [float(r["batch_size"]) for r in rows]
    ys = [float(r["p50_ms"]) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("fitting a line needs at least two different batch sizes")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    return {"overhead_ms": my - slope * mx, "per_image_ms": slope}


# --- the record: one run (where, device), measured or not, and its JSON schema ----------------------
RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (str,),
    "where": (str,),  # "process" or "container"
    "device": (str,),  # "cpu" or "cuda"
    "status": (str,),  # "measured" or "not measured"
    "reason": (str, type(None)),  # why not measured; None when measured
    "device_name": (str, type(None)),
    "torch": (str, type(None)),
    "cuda": (str, type(None)),  # torch.version.cuda: None in a CPU build of torch
    "threads": (int, type(None)),
    "cpu_quota": (float, int, type(None)),  # the container's --cpus, read from its cgroup; None: no limit
    "iterations": (int,),
    "warmup": (int,),
    "flops_per_image": (int, type(None)),
    "matmul_flops": (float, type(None)),  # the practical peak: a large matrix product, FLOP/s
    "notes": (list,),
    "results": (list,),
}
RESULT_FIELDS: dict[str, tuple[type, ...]] = {
    "batch_size": (int,),
    "n": (int,),
    "p50_ms": (float, int),
    "p99_ms": (float, int),
    "mean_ms": (float, int),
    "min_ms": (float, int),
    "max_ms": (float, int),
    "first_ms": (float, int, type(None)),
    "throughput_ips": (float, int),
    "sustained_ips": (float, int),
    "samples_ms": (list,),
}


def new_record(where: str, device: str, *, iterations: int, warmup: int, **fields) -> dict:
    """A record with every field present (None or empty where unknown), `fields` filled in."""
    record = {name: None for name in RECORD_FIELDS}
    record.update(
        schema=SCHEMA,
        where=where,
        device=device,
        status=MEASURED,
        iterations=iterations,
        warmup=warmup,
        notes=[],
        results=[],
    )
    unknown = set(fields) - set(RECORD_FIELDS)
    if unknown:
        raise ValueError(f"not fields of a record: {sorted(unknown)}")
    record.update(fields)
    return record


def not_measured(where: str, device: str, reason: str, *, iterations: int = 0, warmup: int = 0, **fields) -> dict:
    """The record of a run that did not happen, saying why (it starts 'no GPU here: ...' for want of a GPU)."""
    return new_record(where, device, iterations=iterations, warmup=warmup, status=NOT_MEASURED, reason=reason, **fields)


def record_problems(record: dict) -> list[str]:
    """What is wrong with a record, against the schema above; empty when it is valid."""
    if not isinstance(record, dict):
        return ["a record is a JSON object"]
    problems = [f"missing field {name!r}" for name in RECORD_FIELDS if name not in record]
    problems += [f"unknown field {name!r}" for name in record if name not in RECORD_FIELDS]
    for name, types in RECORD_FIELDS.items():
        if name in record and not isinstance(record[name], types):
            wanted = " or ".join(t.__name__ for t in types)
            problems.append(f"{name} is {type(record[name]).__name__}, expected {wanted}")
    if problems:
        return problems
    if record["schema"] != SCHEMA:
        problems.append(f"schema is {record['schema']!r}, expected {SCHEMA!r}")
    if record["where"] not in ("process", "container"):
        problems.append(f"where is {record['where']!r}, expected 'process' or 'container'")
    if record["device"] not in ("cpu", "cuda"):
        problems.append(f"device is {record['device']!r}, expected 'cpu' or 'cuda'")
    if record["status"] == NOT_MEASURED:
        if not record["reason"]:
            problems.append("a record that was not measured must say why (reason)")
        if record["results"]:
            problems.append("a record that was not measured has no results")
        return problems
    if record["status"] != MEASURED:
        return problems + [f"status is {record['status']!r}, expected {MEASURED!r} or {NOT_MEASURED!r}"]
    if not record["results"]:
        problems.append("a measured record has at least one result")
    sizes = []
    for i, row in enumerate(record["results"]):
        for name, types in RESULT_FIELDS.items():
            if name not in row:
                problems.append(f"results[{i}] has no {name!r}")
            elif not isinstance(row[name], types) or isinstance(row[name], bool):
                problems.append(f"results[{i}].{name} is {type(row[name]).__name__}")
        if all(name in row for name in ("p50_ms", "p99_ms", "n", "samples_ms", "batch_size")):
            if row["p50_ms"] > row["p99_ms"]:
                problems.append(f"results[{i}]: p50 {row['p50_ms']} is above p99 {row['p99_ms']}")
            if row["n"] != len(row["samples_ms"]):
                problems.append(f"results[{i}]: n is {row['n']} but there are {len(row['samples_ms'])} samples")
            sizes.append(row["batch_size"])
    if sizes != sorted(set(sizes)):
        problems.append(f"batch sizes must be distinct and increasing: {sizes}")
    return problems


def label(record: dict) -> str:
    return f"{record['where']} / {record['device']}"


def best(record: dict) -> dict | None:
    """The result row with the highest throughput, or None for a record that was not measured."""
    rows = record.get("results") or []
    return max(rows, key=lambda r: r["throughput_ips"]) if rows else None


def row_for(record: dict, batch_size: int) -> dict | None:
    return next((r for r in record.get("results") or [] if r["batch_size"] == batch_size), None)


def parse_record(output: str) -> dict:
    """The JSON record a benchmark run printed (the last line that starts with RECORD_MARK)."""
    for line in reversed(output.splitlines()):
        if line.startswith(RECORD_MARK):
            return json.loads(line[len(RECORD_MARK) :])
    raise ValueError("the benchmark printed no record: read its output above")


# --- FLOPs: what one picture costs, and what the hardware can do ------------------------------------
def count_flops(model, example) -> int:
    """FLOPs of one forward pass of `model` on `example`, counted by torch's FlopCounterMode.

    It counts the matrix work (convolutions, matrix products: 2 FLOPs per multiply-add) and leaves out
    the element-wise operations (batch norm, ReLU, the residual additions), which cost far less.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(example)
    return int(counter.get_total_flops())


def flops_by_layer(model, example) -> dict[str, int]:
    """FLOPs of each convolution and linear layer, computed by hand from the shapes (a check of count_flops).

    A convolution producing C_out x H x W values, each from C_in / groups x k_h x k_w inputs, does that many
    multiply-adds per value: 2 * C_out * H * W * (C_in / groups) * k_h * k_w FLOPs. A linear layer: 2 * in * out.
    """
    import torch
    from torch import nn

    counts: dict[str, int] = {}
    hooks = []

    def hook(name):
        def record(module, inputs, output):
            batch = output.shape[0]
            if isinstance(module, nn.Conv2d):
                c_out, h, w = output.shape[1:]
                kh, kw = module.kernel_size
                per = 2 * c_out * h * w * (module.in_channels // module.groups) * kh * kw
            else:
                per = 2 * module.in_features * module.out_features
            counts[name] = counts.get(name, 0) + per * batch

        return record

    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            hooks.append(module.register_forward_hook(hook(name)))
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    return counts


def cpuinfo_facts(text: str) -> dict:
    """Vendor, family, model name, clock (GHz) and flags of the first processor in /proc/cpuinfo."""
    first = text.split("\n\n")[0]
    fields = {}
    for line in first.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    mhz = fields.get("cpu MHz")
    return {
        "vendor": fields.get("vendor_id", ""),
        "family": int(fields["cpu family"]) if fields.get("cpu family", "").isdigit() else None,
        "model_name": fields.get("model name", ""),
        "ghz": float(mhz) / 1000 if mhz else None,
        "flags": set(fields.get("flags", "").split()),
    }


def fp32_flops_per_cycle(flags: set[str], vendor: str = "", family: int | None = None) -> tuple[int, list[str]]:
    """FP32 FLOPs one core can finish per clock cycle, estimated from its vector extensions, and the assumptions.

    lanes (FP32 values in the widest vector register) x 2 (a fused multiply-add is two FLOPs) x the number of
    FMA units (2 on the server cores of the last decade; some parts have one).
    """
    notes = []
    if "avx512f" in flags:
        lanes, width = 16, "AVX-512 (512-bit registers, 16 FP32 values)"
    elif "avx" in flags or "avx2" in flags:
        lanes, width = 8, "AVX (256-bit registers, 8 FP32 values)"
    elif "sse" in flags or "sse2" in flags:
        lanes, width = 4, "SSE (128-bit registers, 4 FP32 values)"
    else:
        lanes, width = 1, "no vector extensions listed"
    notes.append(width)
    if lanes == 16 and vendor == "AuthenticAMD" and family == 25:
        lanes = 8
        notes.append(
            "AMD family 25 (Zen 3/Zen 4) runs 512-bit operations as two 256-bit halves: "
            "8 FP32 values per cycle per unit"
        )
    fma = 2 if ("fma" in flags or "avx512f" in flags) else 1
    notes.append("FMA: a multiply-add per lane per cycle (2 FLOPs)" if fma == 2 else "no FMA: 1 FLOP per lane")
    units = 2
    notes.append("assumed 2 FMA units per core (true of most server cores; some parts have 1)")
    return lanes * fma * units, notes


def theoretical_cpu_peak(cpuinfo: str, cores: int) -> dict:
    """peak FLOP/s = cores x clock x FLOPs per cycle, from /proc/cpuinfo, with the assumptions it makes."""
    facts = cpuinfo_facts(cpuinfo)
    per_cycle, notes = fp32_flops_per_cycle(facts["flags"], facts["vendor"], facts["family"])
    if not facts["ghz"]:
        return {
            "flops": None,
            "cores": cores,
            "ghz": None,
            "flops_per_cycle": per_cycle,
            "notes": notes,
            "model_name": facts["model_name"],
        }
    notes.append(
        f"clock {facts['ghz']:.2f} GHz as /proc/cpuinfo reports it (under a hypervisor: the nominal clock; "
        "turbo can be higher)"
    )
    return {
        "flops": cores * facts["ghz"] * 1e9 * per_cycle,
        "cores": cores,
        "ghz": facts["ghz"],
        "flops_per_cycle": per_cycle,
        "notes": notes,
        "model_name": facts["model_name"],
    }


def vendor_gpu_peak(name: str | None) -> tuple[float, str] | None:
    """(FP32 peak in FLOP/s, the datasheet's product name) for a GPU name torch reports, or None if unknown."""
    for pattern, tflops, product in GPU_FP32_PEAK_TFLOPS:
        if name and re.search(pattern, name, re.IGNORECASE):
            return tflops * 1e12, product
    return None


def achieved(record: dict, flops_per_image: int) -> list[tuple[int, float]]:
    """(batch size, FLOP/s the model really did) for each result: FLOPs per image x images per second."""
    return [(r["batch_size"], flops_per_image * r["throughput_ips"]) for r in record.get("results") or []]


def speedup(cpu: dict, gpu: dict) -> dict:
    """GPU against CPU: best throughput over best throughput, and batch-1 latency over batch-1 latency.

    When either run was not measured, the answer says so instead of giving a number.
    """
    missing = [r for r in (cpu, gpu) if r["status"] != MEASURED]
    if missing:
        return {"measured": False, "reason": "; ".join(f"{label(r)} not measured: {r['reason']}" for r in missing)}
    best_cpu, best_gpu = best(cpu), best(gpu)
    one_cpu, one_gpu = row_for(cpu, 1), row_for(gpu, 1)
    return {
        "measured": True,
        "throughput_x": best_gpu["throughput_ips"] / best_cpu["throughput_ips"],
        "best_batch_cpu": best_cpu["batch_size"],
        "best_batch_gpu": best_gpu["batch_size"],
        "batch1_latency_x": (one_cpu["p50_ms"] / one_gpu["p50_ms"]) if one_cpu and one_gpu else None,
    }


# --- where a GPU could come from ---------------------------------------------------------------------
def why_no_cuda(torch) -> str | None:
    """Why this torch cannot use a GPU here (a sentence starting 'no GPU here: '), or None when it can."""
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return (
            f"no GPU here: torch {torch.__version__} is a CPU build (torch.version.cuda is None), "
            "so it cannot use a GPU even where there is one"
        )
    return (
        f"no GPU here: torch {torch.__version__} is built for CUDA {torch.version.cuda}, but "
        "torch.cuda.is_available() is False: no GPU was given to this process (no device, no --gpus), "
        f"or the driver is older than CUDA {torch.version.cuda} needs"
    )


def engine_gpu(info: dict) -> tuple[bool, str]:
    """(whether the engine can hand a GPU to a container, why not), from `docker info` as JSON."""
    from grader.gpu_runtime import GPU_RUNTIME, gpu_runtime

    has_runtime, runtimes = gpu_runtime(info)
    if has_runtime:
        return True, f"the engine lists the '{GPU_RUNTIME}' runtime (NVIDIA Container Toolkit)"
    return False, (
        f"no GPU here: the engine's runtimes are {', '.join(runtimes) or 'none'}, none of them "
        f"'{GPU_RUNTIME}': no NVIDIA Container Toolkit, so `docker run --gpus` cannot hand a GPU over"
    )


CUDA_IN_TAG = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?-")


def cuda_of_image(ref: str) -> str | None:
    """The CUDA version in an nvidia/cuda image tag ('nvidia/cuda:12.8.1-runtime-ubuntu24.04' -> '12.8.1')."""
    name, _, tag = ref.rsplit("/", 1)[-1].partition(":")
    if name.lower() != "cuda":
        return None
    match = CUDA_IN_TAG.match(tag)
    return ".".join(g for g in match.groups() if g is not None) if match else None


def driver_cuda(nvidia_smi: str) -> str | None:
    """The newest CUDA the driver supports, from `nvidia-smi`'s header ('CUDA Version: 12.4'), or None."""
    match = re.search(r"CUDA Version:\s*(\d+\.\d+)", nvidia_smi)
    return match.group(1) if match else None


def cuda_fits(driver_max: str, needed: str) -> bool:
    """Whether a driver that supports CUDA up to `driver_max` runs code built for CUDA `needed`.

    The rule: the driver must be at least as new as the CUDA version (major.minor) the code was built
    for. (Within one major version, CUDA's minor-version compatibility relaxes this for many programs, but
    the nvidia/cuda images ask the container toolkit to enforce the full rule when the container starts.)
    """

    def major_minor(v: str) -> tuple[int, int]:
        parts = [int(p) for p in v.split(".")[:2]]
        return parts[0], parts[1] if len(parts) > 1 else 0

    return major_minor(driver_max) >= major_minor(needed)


# --- the benchmark itself (runs in the process and in the container) -------------------------------
def cpu_quota() -> float | None:
    """The CPUs this process may use by its cgroup's quota (docker run --cpus), or None when unlimited."""
    try:  # cgroup v2
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1: -1 means no limit
        quota = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
        period = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def cpu_name() -> str | None:
    try:
        return cpuinfo_facts(open("/proc/cpuinfo").read())["model_name"] or None
    except OSError:
        return None


def load_shapenet(model_dir: str):
    """Lab 07's network class, ShapeNet, from MODEL_DIR/model.py (loaded by path: no `import model` clash)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("lab07_model", os.path.join(model_dir, "model.py"))
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"no model.py in {model_dir}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.ShapeNet


def _sync(torch, device) -> None:
    # CUDA calls return before the GPU has finished: without waiting, a timer measures only the launch.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops(torch, device, n: int, repeats: int = 5, warmup: int = 2) -> float:
    """FLOP/s of the best of `repeats` n x n FP32 matrix products: the practical peak of the device."""
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(n, n, generator=gen).to(device)
    b = torch.rand(n, n, generator=gen).to(device)
    for _ in range(warmup):
        a @ b
    fastest = math.inf
    for _ in range(repeats):
        _sync(torch, device)
        started = time.perf_counter()
        a @ b
        _sync(torch, device)
        fastest = min(fastest, time.perf_counter() - started)
    return 2 * n**3 / fastest


def time_batches(torch, model, device, batch_sizes: Sequence[int], iterations: int, warmup: int) -> list[dict]:
    """Latency of `iterations` calls per batch size, after `warmup` untimed ones, as the lab's /predict runs them.

    Each call starts from pictures in host memory and ends with probabilities in host memory (to the device,
    the model, softmax, back), under torch.inference_mode(). On a GPU each timing starts and ends with
    torch.cuda.synchronize(): the clock stops when the GPU's work is done, not when it was queued.
    """
    gen = torch.Generator().manual_seed(0)
    rows = []
    with torch.inference_mode():
        for batch_size in batch_sizes:
            pictures = torch.rand(batch_size, *IMAGE_SHAPE, generator=gen)
            seconds = []
            for _ in range(warmup + iterations):
                _sync(torch, device)
                started = time.perf_counter()
                model(pictures.to(device)).softmax(dim=1).cpu()
                _sync(torch, device)
                seconds.append(time.perf_counter() - started)
            rows.append(latency_stats(seconds[warmup:], batch_size, first_s=seconds[0]))
    return rows


def benchmark(
    model_dir: str,
    *,
    where: str,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1, 8, 32),
    iterations: int = 30,
    warmup: int = 5,
    threads: int = 1,
    peak_n: int | None = None,
) -> dict:
    """Run the whole benchmark here and return its record (a 'not measured' one when the device is missing)."""
    import torch

    # Before any parallel work: torch fixes its thread pools on first use (the inter-op one for good).
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already fixed in this process (a second run in one Python): it stays as it was
        pass
    ShapeNet = load_shapenet(model_dir)

    context = dict(
        torch=str(torch.__version__),
        cuda=torch.version.cuda,
        threads=torch.get_num_threads(),
        cpu_quota=cpu_quota(),
        iterations=iterations,
        warmup=warmup,
    )
    if device == "cuda":
        reason = why_no_cuda(torch)
        if reason:
            return not_measured(where, device, reason, **context)
    dev = torch.device(device)
    torch.manual_seed(0)
    # A freshly initialised network, the same in the process and the container: the weights' values do not
    # change how much arithmetic a forward pass does, so no trained model file is needed.
    model = ShapeNet().eval()
    flops = count_flops(model, torch.rand(1, *IMAGE_SHAPE))
    model = model.to(dev)
    notes = [f"threads={torch.get_num_threads()} (torch.set_num_threads), interop threads=1"]
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        try:  # TF32 (tensor cores, 10-bit mantissa) changes what an "FP32" convolution or product costs
            notes.append(
                f"TF32: matmul {torch.backends.cuda.matmul.allow_tf32}, cuDNN convolutions "
                f"{torch.backends.cudnn.allow_tf32}"
            )
        except (AttributeError, RuntimeError):
            pass
    else:
        name = cpu_name()
    # The best of two sizes: which size a device's matrix library handles best varies from machine to machine.
    sizes = [peak_n] if peak_n else ([4096, 8192] if dev.type == "cuda" else [512, 1024])
    peak = max(matmul_flops(torch, dev, n, repeats=10) for n in sizes)
    results = time_batches(torch, model, dev, batch_sizes, iterations, warmup)
    return new_record(
        where,
        device,
        device_name=name,
        flops_per_image=flops,
        matmul_flops=peak,
        notes=notes,
        results=results,
        **context,
    )


def describe(record: dict) -> list[str]:
    """A few lines a person reads: what ran, and p50, p99 and throughput per batch size."""
    if record["status"] != MEASURED:
        return [f"{label(record)}: not measured: {record['reason']}"]
    quota = f", cgroup CPU quota {record['cpu_quota']:g}" if record["cpu_quota"] else ", no CPU quota"
    lines = [
        f"{label(record)}: {record['device_name']}, torch {record['torch']}, "
        f"{record['threads']} thread(s){quota}; {record['iterations']} timed calls per batch size "
        f"after {record['warmup']} warm-up calls; "
        f"matmul {record['matmul_flops'] / 1e9:.1f} GFLOP/s"
    ]
    for r in record["results"]:
        lines.append(
            f"  batch {r['batch_size']:>4}: p50 {r['p50_ms']:8.3f} ms  p99 {r['p99_ms']:8.3f} ms  "
            f"{r['throughput_ips']:8.0f} images/s (sustained {r['sustained_ips']:6.0f})  "
            f"first call {r['first_ms']:.1f} ms"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark lab 07's model: latency and throughput by batch size.")
    parser.add_argument("--model-dir", required=True, help="the folder holding lab 07's model.py")
    parser.add_argument("--where", choices=["process", "container"], required=True)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated, increasing")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--peak-n", type=int, default=None, help="matrix size of the peak measurement")
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    # Run as a script, this file's folder is first on sys.path: keep the workbook's modules out of torch's way.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    record = benchmark(
        args.model_dir,
        where=args.where,
        device=args.device,
        batch_sizes=[int(b) for b in args.batch_sizes.split(",")],
        iterations=args.iterations,
        warmup=args.warmup,
        threads=args.threads,
        peak_n=args.peak_n,
    )
    print("\n".join(describe(record)), file=sys.stderr, flush=True)
    print(RECORD_MARK + json.dumps(record), flush=True)
    return 0


# --- notebook side: commands, runs, plots -----------------------------------------------------------
def bench_args(
    model_dir: str, where: str, device: str, batch_sizes: Sequence[int], iterations: int, warmup: int, threads: int
) -> str:
    return (
        f"--model-dir {model_dir} --where {where} --device {device} "
        f"--batch-sizes {','.join(str(b) for b in batch_sizes)} --iterations {iterations} "
        f"--warmup {warmup} --threads {threads}"
    )


def container_command(
    image: str, script: str, args: str, *, cpus: float, label_flag: str = "", gpus: bool = False, memory: str = "2g"
) -> str:
    """`docker run` of the benchmark inside `image`: the script mounted read-only, the same CPU budget."""
    words = [
        "docker run --rm",
        label_flag,
        "--gpus all" if gpus else "",
        f"--cpus {cpus:g} --memory {memory}",
        f"--network none -v {script}:/bench/gpu_bench.py:ro --entrypoint python {image}",
        f"/bench/gpu_bench.py {args}",
    ]
    return " ".join(w for w in words if w)


def run_bench(command: str, timeout: float = 900) -> dict:
    """Run a benchmark command (shown), print its summary, return its record (checked against the schema)."""
    from workbook.shell import sh

    print(f"$ {command}", flush=True)
    result = sh(command, show=False, timeout=timeout)
    print("\n".join(line for line in result.lines if not line.startswith(RECORD_MARK)), flush=True)
    record = parse_record(result.out)
    problems = record_problems(record)
    if problems:
        raise ValueError("the benchmark's record does not fit the schema: " + "; ".join(problems))
    return record


COLOURS = {
    "process / cpu": "tab:blue",
    "container / cpu": "tab:orange",
    "process / cuda": "tab:green",
    "container / cuda": "tab:red",
}


def _missing_note(fig, records) -> float:
    """Write under the plot which runs were not measured, and why; return the height (figure fraction) it takes."""
    import textwrap

    lines = []
    for r in records:
        if r["status"] != MEASURED:
            lines += textwrap.wrap(f"{label(r)}: not measured: {r['reason']}", 150, subsequent_indent="    ")
    if lines:
        fig.text(0.01, 0.01, "\n".join(lines), fontsize=7, va="bottom", color="dimgray")
    return 0.02 + 0.03 * len(lines)


def _log_axes(ax, batch_sizes: Sequence[int], ylabel: str) -> None:
    """Log-log axes labelled with plain numbers: the batch sizes measured, and 1-2-5 steps on y."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(sorted(batch_sizes), [str(b) for b in sorted(batch_sizes)])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 10 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)


def plot_latency_throughput(records: Sequence[dict], title: str):
    """Latency (p50 solid, p99 dashed) and throughput against batch size, log axes, one colour per run."""
    import matplotlib.pyplot as plt

    fig, (lat, thr) = plt.subplots(1, 2, figsize=(11, 4.8))
    sizes: set[int] = set()
    for record in records:
        if record["status"] != MEASURED:
            continue
        colour = COLOURS.get(label(record))
        xs = [r["batch_size"] for r in record["results"]]
        sizes.update(xs)
        lat.plot(xs, [r["p50_ms"] for r in record["results"]], "o-", color=colour, label=f"{label(record)} p50")
        lat.plot(
            xs, [r["p99_ms"] for r in record["results"]], "--", color=colour, alpha=0.7, label=f"{label(record)} p99"
        )
        thr.plot(
            xs,
            [r["throughput_ips"] for r in record["results"]],
            "o-",
            color=colour,
            label=f"{label(record)} (batch / p50)",
        )
        thr.plot(
            xs,
            [r["sustained_ips"] for r in record["results"]],
            ":",
            color=colour,
            alpha=0.7,
            label=f"{label(record)} sustained",
        )
    for ax, ylabel in ((lat, "latency per call (ms)"), (thr, "throughput (images/s)")):
        _log_axes(ax, sorted(sizes), ylabel)
        ax.legend(fontsize=8)
    lat.set_title("Latency per call: p50 (solid), p99 (dashed)")
    thr.set_title("Throughput: typical call (solid), sustained (dotted)")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, _missing_note(fig, records), 1, 1))
    return fig


def plot_against_peak(records: Sequence[dict], flops_per_image: int, peaks: dict[str, float], title: str):
    """Achieved FLOP/s of each run against batch size, with the hardware's peaks as horizontal lines."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8))
    sizes: set[int] = set()
    for record in records:
        if record["status"] != MEASURED:
            continue
        points = achieved(record, flops_per_image)
        sizes.update(b for b, _ in points)
        ax.plot(
            [b for b, _ in points],
            [f / 1e9 for _, f in points],
            "o-",
            color=COLOURS.get(label(record)),
            label=f"{label(record)}: this model",
        )
    for i, (name, flops) in enumerate(peaks.items()):
        ax.axhline(
            flops / 1e9,
            color="black",
            linestyle=[":", "--", "-.", (0, (1, 4))][i % 4],
            linewidth=1,
            label=f"{name}: {flops / 1e9:,.0f} GFLOP/s",
        )
    _log_axes(ax, sorted(sizes), "GFLOP/s")
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout(rect=(0, _missing_note(fig, records), 1, 1))
    return fig


if __name__ == "__main__":
    sys.exit(main())
