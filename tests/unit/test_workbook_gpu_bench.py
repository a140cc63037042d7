"""Chapter 8's benchmark helpers: percentiles, the result record and its schema, the overhead fit, the FLOP
count of lab 07's model, the hardware peaks, the CUDA version rules and the benchmark program itself.

The torch tests skip where torch is not installed (`make torch` installs its CPU build); the rest need nothing.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from grader.spec import REPO_ROOT
from workbook import gpu_bench as gb

MODEL_DIR = str(REPO_ROOT / "solutions/07-pytorch-service/app")
# The first processor of /proc/cpuinfo on the workbook's machines (an AMD EPYC, Zen 4, under KVM), trimmed.
ZEN4_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
cpu MHz\t\t: 2596.138
flags\t\t: fpu sse sse2 fma avx avx2 avx512f avx512dq avx512bw avx512vl

processor\t: 1
vendor_id\t: AuthenticAMD
"""
INTEL_CPUINFO = ZEN4_CPUINFO.replace("AuthenticAMD", "GenuineIntel").replace("cpu family\t: 25", "cpu family\t: 6")


def rows(*pairs):
    """Result rows from (batch size, [latencies in seconds])."""
    return [gb.latency_stats(seconds, batch) for batch, seconds in pairs]


def measured_record(**fields):
    record = gb.new_record(
        "process",
        "cpu",
        iterations=3,
        warmup=1,
        device_name="cpu",
        torch="2.13.0+cpu",
        threads=1,
        flops_per_image=100,
        matmul_flops=1e9,
        results=rows((1, [0.001, 0.002, 0.003]), (8, [0.004, 0.004, 0.005])),
    )
    record.update(fields)
    return record


# --- percentiles and rows ----------------------------------------------------------------------------
@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 99, 100])
def test_percentile_matches_numpys_default_linear_interpolation(q):
    np = pytest.importorskip("numpy")
    samples = [random.Random(q).uniform(0, 10) for _ in range(37)]
    assert gb.percentile(samples, q) == pytest.approx(float(np.percentile(samples, q)))


def test_percentile_small_cases_and_errors():
    assert gb.percentile([5.0], 99) == 5.0
    assert gb.percentile([1, 2, 3, 4], 50) == 2.5
    assert gb.percentile([3, 1, 2], 100) == 3  # order of the input does not matter
    assert gb.percentile([1, 2], 99) == pytest.approx(1.99)
    with pytest.raises(ValueError):
        gb.percentile([], 50)
    with pytest.raises(ValueError):
        gb.percentile([1.0], 101)


def test_latency_stats_units_and_throughputs():
    row = gb.latency_stats([0.002, 0.004, 0.006, 0.100], batch_size=8, first_s=0.5)
    assert row["n"] == 4 and row["batch_size"] == 8
    assert row["p50_ms"] == pytest.approx(5.0)
    assert row["mean_ms"] == pytest.approx(28.0)
    assert row["min_ms"] == pytest.approx(2.0) and row["max_ms"] == pytest.approx(100.0)
    assert row["first_ms"] == pytest.approx(500.0)
    assert row["throughput_ips"] == pytest.approx(8 / 0.005)  # a typical call: batch / median
    assert row["sustained_ips"] == pytest.approx(32 / 0.112)  # every image over the total time, the stall too
    assert row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    with pytest.raises(ValueError):
        gb.latency_stats([0.1], batch_size=0)


def test_fit_overhead_recovers_a_straight_line():
    fitted = gb.fit_overhead(rows(*[(b, [(0.5 + 0.25 * b) / 1000] * 3) for b in (1, 2, 8, 32)]))
    assert fitted["overhead_ms"] == pytest.approx(0.5)
    assert fitted["per_image_ms"] == pytest.approx(0.25)
    with pytest.raises(ValueError):
        gb.fit_overhead(rows((1, [0.001])))
    with pytest.raises(ValueError):
        gb.fit_overhead(rows((4, [0.001]), (4, [0.002])))


# --- the record and its schema ----------------------------------------------------------------------
def test_a_measured_record_is_valid_and_survives_json():
    record = measured_record()
    assert gb.record_problems(record) == []
    again = json.loads(json.dumps(record))
    assert gb.record_problems(again) == []
    assert gb.parse_record("noise\n" + gb.RECORD_MARK + json.dumps(record) + "\n") == again


def test_a_not_measured_record_says_why():
    record = gb.not_measured("container", "cuda", "no GPU here: nothing to run on")
    assert gb.record_problems(record) == []
    assert record["status"] == "not measured" and record["results"] == []
    assert gb.best(record) is None
    assert gb.record_problems({**record, "reason": ""}) == ["a record that was not measured must say why (reason)"]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"schema": "other/1"}, "schema is 'other/1'"),
        ({"where": "laptop"}, "where is 'laptop'"),
        ({"device": "tpu"}, "device is 'tpu'"),
        ({"status": "maybe"}, "status is 'maybe'"),
        ({"iterations": "3"}, "iterations is str"),
        ({"extra": 1}, "unknown field 'extra'"),
        ({"results": []}, "a measured record has at least one result"),
    ],
)
def test_record_problems_names_each_mistake(change, problem):
    found = gb.record_problems(measured_record(**change))
    assert any(problem in p for p in found), found


def test_record_problems_checks_the_rows():
    record = measured_record()
    del record["results"][0]["p99_ms"]
    assert "results[0] has no 'p99_ms'" in gb.record_problems(record)
    record = measured_record()
    record["results"][0]["p50_ms"] = 99.0
    assert any("is above p99" in p for p in gb.record_problems(record))
    record = measured_record()
    record["results"].reverse()
    assert any("distinct and increasing" in p for p in gb.record_problems(record))
    missing = measured_record()
    del missing["torch"]
    assert "missing field 'torch'" in gb.record_problems(missing)
    with pytest.raises(ValueError, match="not fields"):
        gb.new_record("process", "cpu", iterations=1, warmup=0, colour="red")


def test_parse_record_without_a_record_fails_clearly():
    with pytest.raises(ValueError, match="printed no record"):
        gb.parse_record("Traceback ...\nModuleNotFoundError: No module named 'torch'")


def test_best_and_row_for():
    record = measured_record()
    assert gb.best(record)["batch_size"] == 8  # 8 / 4 ms beats 1 / 2 ms
    assert gb.row_for(record, 1)["batch_size"] == 1 and gb.row_for(record, 64) is None


def test_speedup_measured_and_not():
    cpu = measured_record()
    gpu = measured_record(device="cuda", results=rows((1, [0.001] * 3), (8, [0.0005] * 3)))
    result = gb.speedup(cpu, gpu)
    assert result["measured"] and result["best_batch_gpu"] == 8
    assert result["throughput_x"] == pytest.approx((8 / 0.0005) / (8 / 0.004))
    assert result["batch1_latency_x"] == pytest.approx(2.0)
    missing = gb.speedup(cpu, gb.not_measured("process", "cuda", "no GPU here: none"))
    assert missing == {"measured": False, "reason": "process / cuda not measured: no GPU here: none"}


def test_achieved_flops():
    record = measured_record()
    assert gb.achieved(record, 100) == [(1, pytest.approx(100 * 500)), (8, pytest.approx(100 * 2000))]


# --- hardware peaks ---------------------------------------------------------------------------------
def test_cpuinfo_facts():
    facts = gb.cpuinfo_facts(ZEN4_CPUINFO)
    assert facts["vendor"] == "AuthenticAMD" and facts["family"] == 25
    assert facts["model_name"] == "AMD EPYC"
    assert facts["ghz"] == pytest.approx(2.596138)
    assert {"avx512f", "fma"} <= facts["flags"]


@pytest.mark.parametrize(
    ("flags", "vendor", "family", "per_cycle"),
    [
        ({"avx512f", "fma"}, "AuthenticAMD", 25, 32),  # Zen 4: 512-bit work on 256-bit units
        ({"avx512f", "fma"}, "GenuineIntel", 6, 64),
        ({"avx", "avx2", "fma"}, "GenuineIntel", 6, 32),
        ({"sse", "sse2"}, "GenuineIntel", 6, 8),
        (set(), "", None, 2),
    ],
)
def test_fp32_flops_per_cycle(flags, vendor, family, per_cycle):
    got, notes = gb.fp32_flops_per_cycle(flags, vendor, family)
    assert got == per_cycle
    assert any("assumed 2 FMA units" in n for n in notes)


def test_theoretical_cpu_peak():
    peak = gb.theoretical_cpu_peak(ZEN4_CPUINFO, cores=2)
    assert peak["flops"] == pytest.approx(2 * 2.596138e9 * 32)
    assert gb.theoretical_cpu_peak(INTEL_CPUINFO, cores=1)["flops"] == pytest.approx(2.596138e9 * 64)
    no_clock = gb.theoretical_cpu_peak(ZEN4_CPUINFO.replace("cpu MHz", "bogus"), cores=1)
    assert no_clock["flops"] is None and no_clock["flops_per_cycle"] == 32


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 67.0),
        ("NVIDIA H100 PCIe", 51.0),
        ("NVIDIA H200", 67.0),
        ("NVIDIA A100-SXM4-80GB", 19.5),
        ("NVIDIA A10", 31.2),
        ("Tesla T4", 8.1),
        ("NVIDIA L4", 30.3),
        ("NVIDIA L40S", 91.6),
        ("Tesla V100-PCIE-16GB", 14.0),
        ("Tesla V100-SXM2-16GB", 15.7),
        ("NVIDIA GeForce RTX 3090", 35.6),
    ],
)
def test_vendor_gpu_peak_known_names(name, tflops):
    flops, _product = gb.vendor_gpu_peak(name)
    assert flops == pytest.approx(tflops * 1e12)


def test_vendor_gpu_peak_unknown():
    assert gb.vendor_gpu_peak("Some Future GPU") is None
    assert gb.vendor_gpu_peak(None) is None


# --- CUDA versions, drivers, engines ---------------------------------------------------------------
def test_cuda_of_image():
    assert gb.cuda_of_image("nvidia/cuda:12.8.1-runtime-ubuntu24.04") == "12.8.1"
    assert gb.cuda_of_image("nvcr.io/nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04") == "11.8.0"
    assert gb.cuda_of_image("nvidia/cuda:12.4-base") == "12.4"
    assert gb.cuda_of_image("python:3.11-slim") is None
    assert gb.cuda_of_image("localhost:5000/cuda") is None
    assert gb.cuda_of_image("nvidia/cuda") is None


def test_driver_cuda_from_nvidia_smi_header():
    header = "| NVIDIA-SMI 551.78                 Driver Version: 551.78         CUDA Version: 12.4     |"
    assert gb.driver_cuda(header) == "12.4"
    assert gb.driver_cuda("bash: nvidia-smi: command not found") is None


def test_cuda_fits_the_driver_must_be_at_least_as_new():
    assert gb.cuda_fits("12.4", "12.4")
    assert gb.cuda_fits("12.8", "11.8.0")
    assert not gb.cuda_fits("12.4", "12.8.1")
    assert not gb.cuda_fits("11.8", "12.1")


def test_engine_gpu_reads_the_runtimes():
    ok, why = gb.engine_gpu({"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}})
    assert ok and "nvidia" in why
    ok, why = gb.engine_gpu({"Runtimes": {"runc": {}, "io.containerd.runc.v2": {}}})
    assert not ok and why.startswith("no GPU here: ") and "io.containerd.runc.v2, runc" in why


def test_container_command():
    args = gb.bench_args("/app", "container", "cpu", [1, 8], 10, 2, 1)
    assert args == (
        "--model-dir /app --where container --device cpu --batch-sizes 1,8 --iterations 10 --warmup 2 --threads 1"
    )
    cpu = gb.container_command("img", "/x/gpu_bench.py", args, cpus=1, label_flag="--label a=b")
    assert cpu.startswith("docker run --rm --label a=b --cpus 1 --memory 2g --network none")
    assert "-v /x/gpu_bench.py:/bench/gpu_bench.py:ro --entrypoint python img /bench/gpu_bench.py --model-dir" in cpu
    assert "--gpus" not in cpu and "  " not in cpu
    assert "--gpus all --cpus 2" in gb.container_command("img", "/x", args, cpus=2, gpus=True)


# --- with torch --------------------------------------------------------------------------------------
def test_flop_counter_agrees_with_the_hand_count_on_a_small_network():
    torch = pytest.importorskip("torch")
    from torch import nn

    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 3),
    ).eval()
    x = torch.rand(2, 1, 8, 8)
    by_hand = 2 * (2 * 4 * 8 * 8 * 1 * 9 + 2 * 8 * 4 * 4 * 4 * 9 + 2 * 128 * 3)
    assert sum(gb.flops_by_layer(net, x).values()) == by_hand
    assert gb.count_flops(net, x) == by_hand


def test_lab07_model_flops_per_image():
    torch = pytest.importorskip("torch")
    net = gb.load_shapenet(MODEL_DIR)().eval()
    one = gb.count_flops(net, torch.rand(1, *gb.IMAGE_SHAPE))
    # stem 16x16x16 from 1x3x3; block 1: two 16->16 3x3 at 16x16; block 2: 16->32 (stride 2), 32->32 and a
    # 1x1 shortcut at 8x8; block 3: the same at 4x4 with 32->64; the linear layer 64->4. Two FLOPs a multiply-add.
    macs = (
        16 * 256 * 9
        + 2 * 16 * 256 * 16 * 9
        + 32 * 64 * 16 * 9
        + 32 * 64 * 32 * 9
        + 32 * 64 * 16
        + 64 * 16 * 32 * 9
        + 64 * 16 * 64 * 9
        + 64 * 16 * 32
        + 64 * 4
    )
    assert one == 2 * macs == 6_103_552
    assert sum(gb.flops_by_layer(net, torch.rand(1, *gb.IMAGE_SHAPE)).values()) == one
    assert gb.count_flops(net, torch.rand(8, *gb.IMAGE_SHAPE)) == 8 * one


def test_why_no_cuda_on_a_cpu_build():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    reason = gb.why_no_cuda(torch)
    assert reason.startswith("no GPU here: ")


def test_the_benchmark_program_prints_a_valid_record():
    pytest.importorskip("torch")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "workbook/gpu_bench.py"),
            "--model-dir",
            MODEL_DIR,
            "--where",
            "process",
            "--batch-sizes",
            "1,4",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--peak-n",
            "64",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    record = gb.parse_record(run.stdout)
    assert gb.record_problems(record) == []
    assert record["status"] == "measured" and record["threads"] == 1
    assert [r["batch_size"] for r in record["results"]] == [1, 4]
    assert all(r["n"] == 3 for r in record["results"])
    assert record["flops_per_image"] == 6_103_552
    assert "batch    4: p50" in run.stderr


def test_the_benchmark_program_reports_a_missing_gpu():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "workbook/gpu_bench.py"),
            "--model-dir",
            MODEL_DIR,
            "--where",
            "process",
            "--device",
            "cuda",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    record = gb.parse_record(run.stdout)
    assert run.returncode == 0 and record["status"] == "not measured"
    assert record["reason"].startswith("no GPU here: ") and gb.record_problems(record) == []
