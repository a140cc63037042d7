"""Benchmark of batch grading on a class made from lab 01, against a real Docker engine.

What it measures, in one run:
  1. jobs 2 vs 1   - wall time of `run_batch` on N submissions with --jobs 2, against another N with --jobs 1
                     (different content, so that neither is answered from the gradebook); ratio, goal <= 0.65;
  2. resubmission  - `grade_one` of content graded before, answered from the gradebook; goal under 1 s
                     (and, for the record, the whole class submitted again);
  3. leftovers     - engine objects the batches' grades left behind, goal none (and what is labeled on the
                     engine afterwards, other engineers' grades in flight included); and the images, step
                     images of the build cache included, that the timed batches added to the engine: none,
                     since every grade removes the step images only its own code made.
The class: copies of lab 01's reference solution and of its starter, each with a one-line code change so
that every content hash differs (one in ten is a starter: a real class has some; each re-runs `pip install`).
One solution and one starter are graded first, untimed, so that both runs start from the same warm cache.
Timings are reported, never asserted: the exit status is non-zero only when something could not be
measured (a solution graded below full marks, a submission that could not be graded). The machine may be
shared and has few cores: read the ratio with that in mind.

Usage: .venv/bin/python benchmarks/bench_batch.py [--size N] [--quick] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import traceback
import uuid
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.table import Table

from grader.batch import run_batch
from grader.batch.roster import Submission
from grader.batch.runner import grade_one
from grader.engine import Engine, connect
from grader.gradebook import Gradebook, effective_status
from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]
SOLUTION = SPEC.path
STARTER = REPO_ROOT / "labs" / SOLUTION.name
NOTHING = {"containers": 0, "networks": 0, "volumes": 0, "images": 0}
# In every change: content never built before, so that no earlier run's build cache answers this one's builds.
RUN_ID = uuid.uuid4().hex[:12]
console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def all_images(engine: Engine) -> set[str]:
    return {img.id for img in engine.client.images.list(all=True)}


def make_class(folder: Path, size: int, tag: str) -> Path:
    """`size` submissions: every tenth a starter, the rest solutions, each with its own code change."""
    folder.mkdir(parents=True)
    for i in range(size):
        starter = i % 10 == 9
        learner = folder / f"{tag}-{i:02d}{'-starter' if starter else ''}"
        shutil.copytree(STARTER if starter else SOLUTION, learner)
        with (learner / SPEC.code_change).open("a") as f:
            f.write(f"\n# learner {learner.name}'s own change (run {RUN_ID})\n")
    return folder


def make_warm_up(folder: Path) -> Path:
    """One solution and one starter, graded untimed so that both timed batches start from a warm cache."""
    for source, name in ((SOLUTION, "warm-solution"), (STARTER, "warm-starter")):
        shutil.copytree(source, folder / name)
        with (folder / name / SPEC.code_change).open("a") as f:
            f.write(f"\n# warm-up (run {RUN_ID})\n")
    return folder


def timed_batch(folder: Path, jobs: int, url: str, out: Path) -> dict:
    started = time.perf_counter()
    summary = run_batch(submissions=folder, lab=SPEC.id, jobs=jobs, gradebook=url, out=out, quiet=True)
    seconds = time.perf_counter() - started
    statuses = [effective_status(g.result)[0] for g in summary.graded]
    below_full = [
        g.submission.name
        for g in summary.graded
        if "starter" not in g.submission.name and g.result.score != g.result.max_score
    ]
    return {
        "seconds": seconds,
        "jobs": jobs,
        "submissions": len(summary.graded),
        "graded": statuses.count("graded"),
        "not_graded": [g.submission.name for g in summary.graded if effective_status(g.result)[0] != "graded"],
        "solutions_below_full_marks": below_full,
        "from_gradebook": sum(1 for g in summary.graded if g.reused),
        "mean_grade_s": sum(g.seconds for g in summary.graded) / max(len(summary.graded), 1),
        "own_leftovers": summary.leftovers,
        "sessions": [g.session for g in summary.graded if g.session],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20, help="submissions in each timed batch (default 20)")
    parser.add_argument("--quick", action="store_true", help="6 submissions instead of --size")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers to FILE")
    args = parser.parse_args()
    size = 6 if args.quick else max(2, args.size)

    engine = connect()
    scratch = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    problems: list[str] = []
    out: dict = {"size": size}
    try:
        console.print("[bold]0.[/] warming the build cache (one solution, one starter, untimed)...")
        timed_batch(make_warm_up(scratch / "warm"), 2, f"sqlite:///{scratch}/warm.sqlite", scratch / "out-warm")

        images_before = all_images(engine)  # the warm cache: what the timed grades may reuse, never add to
        one = make_class(scratch / "one", size, "one")
        two = make_class(scratch / "two", size, "two")
        console.print(f"[bold]1.[/] {size} submissions with --jobs 1...")
        out["jobs1"] = timed_batch(one, 1, f"sqlite:///{scratch}/one.sqlite", scratch / "out-one")
        console.print(f"[bold]1.[/] {size} other submissions with --jobs 2...")
        url = f"sqlite:///{scratch}/two.sqlite"
        out["jobs2"] = timed_batch(two, 2, url, scratch / "out-two")
        out["jobs_ratio"] = out["jobs2"]["seconds"] / out["jobs1"]["seconds"]
        for name in ("jobs1", "jobs2"):
            run = out[name]
            if run["not_graded"] or run["solutions_below_full_marks"]:
                problems.append(
                    f"{name}: not graded {run['not_graded']}, solutions below full marks "
                    f"{run['solutions_below_full_marks']}"
                )

        console.print("[bold]2.[/] a resubmission of graded content, then the whole class again...")
        first = sorted(two.iterdir())[0]
        book = Gradebook(url)
        started = time.perf_counter()
        answer = grade_one(
            Submission(first.name, first, "folder", first.name),
            SPEC,
            book,
            grade=grade,
            engine_factory=partial(Engine, engine.client),
        )
        out["resubmission_s"] = time.perf_counter() - started
        book.close()
        if not answer.reused:
            problems.append("the resubmission was graded again instead of answered from the gradebook")
        again = out["class_again"] = timed_batch(two, 2, url, scratch / "out-two")
        if again["from_gradebook"] != size:
            problems.append(f"only {again['from_gradebook']} of {size} resubmissions came from the gradebook")
    except Exception as err:  # whatever broke, report it as unmeasured and still clean up
        traceback.print_exc()
        problems.append(f"{type(err).__name__}: {err}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        sessions = out.get("jobs1", {}).get("sessions", []) + out.get("jobs2", {}).get("sessions", [])
        # What is still on the engine for any session the batches used (the grades remove their own).
        after = dict(NOTHING)
        for session in sessions:
            for kind, n in Engine(engine.client, session=session).leftovers().items():
                after[kind] += n
        out["leftovers_after"] = after
        out["labeled_on_engine"] = engine.leftovers(all_sessions=True)  # other engineers' grades count too
        if "jobs1" in out:
            # Less the one image of lab 01's dependencies that grades keep for the next grade on purpose.
            kept = {image["Id"] for image in engine.kept_images(SPEC.id)}
            out["images_added"] = len(all_images(engine) - images_before - kept)
    out["problems"] = problems
    report(out)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(json.dumps(out, default=str, separators=(",", ":")))
    return 1 if problems else 0


def report(out: dict) -> None:
    table = Table(title=f"Batch grading benchmark, lab 01, {out['size']} submissions per batch (seconds)")
    for col in ("measurement", "value", "compared with", "ratio", "goal"):
        table.add_column(col, justify="left" if col in ("measurement", "compared with", "goal") else "right")

    def ok(value, goal):
        return f"[green]{value:.2f}[/]" if value <= goal else f"[red]{value:.2f}[/]"

    if "jobs_ratio" in out:
        one, two = out["jobs1"], out["jobs2"]
        table.add_row(
            "batch wall time, --jobs 2",
            f"{two['seconds']:.1f}",
            f"--jobs 1: {one['seconds']:.1f}",
            ok(out["jobs_ratio"], 0.65),
            "<= 0.65",
        )
        table.add_row(
            "  mean time per grade",
            f"{two['mean_grade_s']:.1f}",
            f"--jobs 1: {one['mean_grade_s']:.1f}",
            "",
            "",
        )
    if "resubmission_s" in out:
        table.add_row(
            "resubmission of graded content",
            f"{out['resubmission_s']:.3f}",
            "",
            ok(out["resubmission_s"], 1.0),
            "< 1 s",
        )
        again = out["class_again"]
        table.add_row(
            "  the whole class again",
            f"{again['seconds']:.2f}",
            f"{again['from_gradebook']}/{out['size']} from the gradebook",
            "",
            "",
        )
    for name in ("jobs1", "jobs2"):
        if name in out:
            own = out[name]["own_leftovers"]
            table.add_row(
                f"objects left by the grades ({name})",
                str(sum(own.values())),
                ", ".join(f"{k} {v}" for k, v in own.items()),
                "",
                "none",
            )
    after = out["leftovers_after"]
    table.add_row(
        "  still there for those sessions",
        str(sum(after.values())),
        ", ".join(f"{k} {v}" for k, v in after.items()),
        "",
        "none",
    )
    if "images_added" in out:
        table.add_row(
            "images the grades added (step images too; not the kept dependencies)",
            str(out["images_added"]),
            "unlabeled build cache included: a class must not fill the disk",
            "",
            "none",
        )
    labeled = out["labeled_on_engine"]
    table.add_row(
        "labeled on the engine (all sessions)",
        str(sum(labeled.values())),
        "other engineers' grades in flight count too",
        "",
        "",
    )
    console.print(table)
    for problem in out["problems"]:
        console.print(f"[red]could not measure:[/] {problem}")


if __name__ == "__main__":
    sys.exit(main())
