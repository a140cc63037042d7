"""Hostile submissions: lab 01's solution with one hostile change each, and a runner that grades one and
measures what it cost (wall time against its limit, the largest container log, the disk left behind).

Used by tests/engine/test_hostile.py (which asserts on each outcome) and benchmarks/bench_hostile.py
(which prints the figures for all of them).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from seeded import apply_defect

from grader.result import GradeResult
from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["01"]
SOLUTION = SPEC.path
AFTER_WORKDIR = "WORKDIR /app\n"  # where a hostile build step goes in lab 01's Dockerfile

# Forks sleeping children until the kernel refuses; the build fails either way, saying how many it got.
FORK_STORM = (
    "RUN printf '%s\\n' 'import os, sys, time' 'n = 0' 'try:' '    while n < 2000:'"
    " '        if os.fork() == 0: time.sleep(20); os._exit(0)' '        n += 1'"
    " 'except OSError as err: sys.exit(f\"fork refused after {n}: {err}\")'"
    " 'sys.exit(f\"forked {n}: no process limit\")' > /tmp/storm.py && python /tmp/storm.py\n"
)


def step(run: str):
    return [("Dockerfile", AFTER_WORKDIR, AFTER_WORKDIR + run)]


@dataclass
class Case:
    """One hostile change: edits to the solution, extra files, the grader's environment, the limit it must meet."""

    edits: list = field(default_factory=list)
    limit_s: float = 300
    env: dict[str, str] = field(default_factory=dict)
    build_timeout_s: float | None = None
    prepare: object = None  # a function(copy: Path) that adds files


def non_utf8_name(copy: Path) -> None:
    with open(os.fsencode(copy / "app") + b"/bad-\xff-utf8.txt", "wb") as handle:
        handle.write(b"legal on Linux, common in archives from other systems\n")


def six_thousand_files(copy: Path) -> None:
    (copy / "app/many").mkdir()
    for number in range(6000):
        (copy / "app/many" / f"f{number:05d}.txt").write_text(str(number))


def gigabyte_of_junk(copy: Path) -> None:
    with open(copy / "junk.bin", "wb") as junk:
        junk.truncate(1024**3)  # sparse: a gigabyte to send to the engine, nothing on this disk


def own_lab_yaml(copy: Path) -> None:
    (copy / "lab.yaml").write_text('id: "01"\nslug: first-model-container\ntitle: mine\nchecks: []\n')


CASES: dict[str, Case] = {
    "a file name that is not UTF-8": Case(prepare=non_utf8_name),
    "a service that floods its log": Case(
        [("Dockerfile", 'CMD ["python", "app.py"]', 'CMD ["sh", "-c", "yes flood & exec python app.py"]')]
    ),
    "a build that forks without end": Case(step(FORK_STORM), limit_s=120, env={"GRADER_BUILD_PIDS": "200"}),
    "a build that eats all memory": Case(
        step("RUN python -c \"blob = b'x' * (2 * 1024**3); print(len(blob))\"\n"),
        limit_s=120,
        env={"GRADER_BUILD_MEMORY_MB": "512"},
    ),
    "a build that fills the disk": Case(
        step("RUN dd if=/dev/zero of=/filler bs=1M count=20000 status=none\n"),
        limit_s=90,
        env={"GRADER_BUILD_DISK_MB": "400"},
    ),
    "a build that never ends": Case(step("RUN sleep infinity\n"), limit_s=60, build_timeout_s=20),
    # A gigabyte of noise: the lab's whole budget (700 MB) over again, without writing more than it takes.
    "a layer over the size budget": Case(step("RUN head -c 1024M /dev/urandom > /blob\n")),
    "a gigabyte of junk in the build context": Case(prepare=gigabyte_of_junk),
    "a service that binds only ::1": Case(
        [("app/app.py", 'os.environ.get("HOST", "0.0.0.0")', 'os.environ.get("HOST", "::1")')]
    ),
    "a service whose /predict hangs": Case(
        [("app/app.py", "def predict():\n", "def predict():\n    __import__('time').sleep(3600)\n")], limit_s=180
    ),
    "a container that ignores SIGTERM": Case(
        [("Dockerfile", 'CMD ["python", "app.py"]', 'CMD ["sh", "-c", "trap \'\' TERM; python app.py & wait"]')]
    ),
    "a submission of 6,000 files": Case(prepare=six_thousand_files, limit_s=600),
    "its own lab.yaml with checks: []": Case(prepare=own_lab_yaml),
}


@dataclass
class Outcome:
    result: GradeResult
    seconds: float
    peak_log_bytes: int
    disk_after_mb: float  # growth of the engine's disk use, less its build cache, from before the grade


def disk_in_use_mb(engine) -> float:
    """MB in use on the engine's data root, less its build cache (which the grader keeps on purpose)."""
    cache = sum(r.get("Size", 0) for r in engine.build_cache_records())
    return (shutil.disk_usage(engine.info()["DockerRootDir"]).used - cache) / 1e6


class LogWatch:
    """The largest container log on the engine (json-file logs and their rotations) while it runs."""

    def __init__(self, engine):
        self.folder = Path(engine.info()["DockerRootDir"]) / "containers"
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._done.is_set():
            for container in self.folder.glob("*"):
                try:
                    self.peak = max(self.peak, sum(p.stat().st_size for p in container.glob("*-json.log*")))
                except OSError:
                    pass
            time.sleep(0.1)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()


def run_case(name: str, engine, tmp_path: Path) -> Outcome:
    case = CASES[name]
    copy = apply_defect(SOLUTION, tmp_path, case.edits)
    if case.prepare:
        case.prepare(copy)
    spec = SPEC if case.build_timeout_s is None else dataclasses.replace(SPEC, build_timeout_s=case.build_timeout_s)
    saved = {key: os.environ.get(key) for key in case.env}
    os.environ.update(case.env)
    # An image of the lab's dependencies that a grade keeps for the next (GradingContext.settle_kept_image) is
    # the grader's on purpose, like its build cache: it is not counted, and removed around the measure.
    engine.remove_kept_images()
    before = disk_in_use_mb(engine)
    started = time.monotonic()
    try:
        with LogWatch(engine) as logs:
            result = grade(copy, spec, engine=engine)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.monotonic() - started
    engine.remove_kept_images()
    return Outcome(result, seconds, logs.peak, settled_growth_mb(engine, before))


def settled_growth_mb(engine, before: float, slack_mb: float = 100, wait_s: float = 20) -> float:
    """Disk growth since `before` once the engine has finished removing: a stopped build's files and a removed
    container's layer go a second or two after the API call returns. The least growth seen in `wait_s`."""
    deadline = time.monotonic() + wait_s
    least = disk_in_use_mb(engine) - before
    while least > slack_mb and time.monotonic() < deadline:
        time.sleep(1)
        least = min(least, disk_in_use_mb(engine) - before)
    return least
