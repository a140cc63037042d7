"""grader/programs/torch_probe.py: run as the grader runs it (`python -c TORCH_PROBE`) with this venv's Python,
which has torch's CPU build, and with a fresh venv's Python, which has no torch; and in-process, with a stand-in
for a CUDA build of torch. Its report is read with grader.gpu_variant.probe_report, as CpuOnlyTorch reads it."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

from grader.gpu_variant import PROBE_MARK, TORCH_PROBE, cpu_only_problems, probe_report
from grader.programs import torch_probe


def run_probe(python: str | Path) -> dict:
    # -I: neither this folder nor PYTHONPATH on sys.path, as in an image; the program must stand alone.
    done = subprocess.run([str(python), "-I", "-c", TORCH_PROBE], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    report = probe_report(done.stdout)
    assert report is not None, done.stdout + done.stderr
    return report


def names(report: dict) -> set[str]:
    return {d.split("==")[0].lower() for d in report["distributions"]}


def test_torch_probe_is_the_text_of_the_program_file():
    assert TORCH_PROBE == Path(torch_probe.__file__).read_text(encoding="utf-8")
    assert PROBE_MARK == "TORCH-PROBE "  # what CpuOnlyTorch and chapter 8 look for in the output


def test_the_probe_reports_the_cpu_torch_of_this_venv():
    torch = pytest.importorskip("torch")
    report = run_probe(sys.executable)
    assert report["torch"] == torch.__version__
    assert report["cuda"] is None and "error" not in report
    assert "torch" in names(report)
    assert all("==" in d for d in report["distributions"]) and report["distributions"] == sorted(
        report["distributions"]
    )


def test_the_probe_reports_a_python_without_torch(tmp_path):
    # A fresh venv without pip has only the standard library: torch really is missing there.
    made = subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if made.returncode != 0:
        pytest.skip(f"could not make a venv here: {made.stderr.strip()[-300:]}")
    report = run_probe(tmp_path / "venv" / "bin" / "python")
    assert report["error"].startswith("ModuleNotFoundError") and "torch" in report["error"]
    assert "torch" not in report and "cuda" not in report
    assert isinstance(report["distributions"], list) and "torch" not in names(report)
    assert cpu_only_problems(report, ["nvidia-*"])[0].startswith("torch does not import in the image")


def test_main_prints_one_report_line(monkeypatch, capsys):
    # A stand-in for a CUDA build: the report carries its CUDA version, which makes the CPU check fail.
    fake = types.SimpleNamespace(__version__="2.13.0", version=types.SimpleNamespace(cuda="12.8"))
    monkeypatch.setitem(sys.modules, "torch", fake)
    torch_probe.main()
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith(PROBE_MARK)
    report = probe_report(out)
    assert (report["torch"], report["cuda"]) == ("2.13.0", "12.8")
    assert "torch.version.cuda is '12.8'" in cpu_only_problems(report, [])[0]


def test_a_torch_that_fails_to_import_is_reported_not_raised(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ModuleNotFoundError
    report = torch_probe.report()
    assert report["error"].startswith("ModuleNotFoundError") and "torch" not in report
