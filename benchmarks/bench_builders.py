"""Benchmark of the two builders on lab 02's reference solution, side by side on the same engine.

What it measures, in one run:
  1. cold build     - BuildKit (`docker buildx build`, what the grader uses) and the legacy builder (the engine
                      API's classic build, where the engine still has one) on copies whose requirements carry
                      a comment of their own, so that no cache of either builder can answer `pip install`;
  2. code rebuild   - each builder again after a code-only change (a comment appended to app/app.py);
  ratio BuildKit / legacy for each, lower is better (BuildKit should be well under 1).
The two builders alternate, so drift in the machine's load and network hits both alike. Timings are reported,
never asserted: the exit status is non-zero only when a build failed. The legacy builder is deprecated; on an
engine without it the table says so.

Usage: .venv/bin/python benchmarks/bench_builders.py [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import docker.errors
from rich.console import Console
from rich.table import Table

from grader.engine import connect

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "02-layer-caching"
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def buildkit_build(engine, folder: Path, tag: str) -> float:
    built = engine.build(folder, "Dockerfile", tag, timeout_s=900)
    if not built.ok:
        raise RuntimeError(f"BuildKit build failed: {built.error}\n{built.log_tail(10)}")
    return built.seconds


def legacy_build(engine, folder: Path, tag: str) -> float:
    started = time.perf_counter()
    engine.client.images.build(path=str(folder), tag=tag, labels=engine.labels, rm=True, forcerm=True)
    return time.perf_counter() - started


def copy_of(scratch: Path, name: str, session: str) -> Path:
    folder = scratch / name
    shutil.copytree(SOLUTION, folder)
    with (folder / "app" / "requirements.txt").open("a") as f:
        f.write(f"# bench {name} {session}\n")  # content no build on this engine has seen: a cold install
    return folder


def code_change(folder: Path) -> None:
    with (folder / "app" / "app.py").open("a") as f:
        f.write("\n# a code-only change made by the benchmark\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers to FILE")
    args = parser.parse_args()
    engine = connect()
    scratch = Path(tempfile.mkdtemp(prefix="bench-builders-"))
    builders = {"BuildKit": buildkit_build, "legacy": legacy_build}
    out: dict = {"engine": engine.version().get("Version"), "cold": {}, "rebuild": {}, "problems": []}
    try:
        folders = {name: copy_of(scratch, name, engine.session) for name in builders}
        for phase in ("cold", "rebuild"):
            for name, build in builders.items():
                console.print(f"{phase}: {name}...")
                if phase == "rebuild":
                    code_change(folders[name])
                try:
                    out[phase][name] = build(engine, folders[name], f"bench-builders:{engine.session}-{name.lower()}")
                except docker.errors.APIError as err:  # an engine without the legacy builder
                    out["problems"].append(f"{name}: {err.explanation or err}")
                except RuntimeError as err:
                    out["problems"].append(str(err))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        engine.remove_session()
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, separators=(",", ":")))
    return 1 if out["problems"] and "BuildKit" not in out["cold"] else 0


def report(out: dict) -> None:
    table = Table(title=f"Builders on lab 02's solution, Engine {out['engine']} (seconds)")
    for column in ("build", "BuildKit", "legacy builder", "ratio BuildKit / legacy"):
        table.add_column(column, justify="left" if column == "build" else "right")
    for phase, label in (("cold", "cold (dependencies installed)"), ("rebuild", "after a code-only change")):
        times = out[phase]
        bk, legacy = times.get("BuildKit"), times.get("legacy")
        ratio = f"{bk / legacy:.2f}" if bk and legacy else "n/a"
        table.add_row(label, f"{bk:.1f}" if bk else "failed", f"{legacy:.1f}" if legacy else "n/a", ratio)
    console.print(table)
    for problem in out["problems"]:
        console.print(f"[yellow]note:[/] {problem}")


if __name__ == "__main__":
    sys.exit(main())
