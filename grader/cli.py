"""Command line: a thin layer over the grader's Python API.

    python -m grader check DIR [--lab ID] [--json FILE] [--junit FILE] [--gradescope FILE]
    python -m grader solutions
    python -m grader starters [--check]
    python -m grader doctor
    python -m grader images
    python -m grader clean [--cache]

Exit codes of `check`: 0 every check passed, 1 some failed, 2 the submission could not be graded.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from grader import __version__, base_images, exporters, starters
from grader.doctor import diagnose
from grader.engine import connect
from grader.errors import GraderError
from grader.progress import Progress
from grader.report import print_report
from grader.session import grade
from grader.spec import official_specs, resolve_spec

console = Console(highlight=False)


def cmd_check(args: argparse.Namespace) -> int:
    try:
        spec = resolve_spec(Path(args.dir), args.lab)
    except GraderError as err:
        console.print(f"[red]Cannot grade {args.dir}:[/] {err}")
        return 2
    result = grade(
        Path(args.dir), spec, learner=args.learner or "", progress=Progress(quiet=args.quiet), timeout_s=args.timeout
    )
    for fmt in ("json", "junit", "gradescope"):
        if getattr(args, fmt):
            exporters.write(result, fmt, Path(getattr(args, fmt)))
    print_report(result, console)
    return result.exit_code


def cmd_solutions(args: argparse.Namespace) -> int:
    """Grade every lab's reference solution: the demo, and the proof that each lab can be passed."""
    rows = []
    for spec in official_specs().values():
        console.rule(f"Lab {spec.id}: {spec.title}")
        result = grade(spec.path, spec, progress=Progress(quiet=args.quiet))
        print_report(result, console)
        rows.append((spec, result))
    table = Table(title="Reference solutions", title_justify="left")
    for column in ("Lab", "Title", "Status", "Score", "Build", "Total"):
        table.add_column(column)
    for spec, r in rows:
        table.add_row(
            spec.id,
            spec.title,
            r.status,
            f"{r.score:g}/{r.max_score:g}",
            f"{r.timings.get('build_s', 0):.1f}s",
            f"{r.timings.get('total_s', 0):.1f}s",
        )
    console.print(table)
    return 0 if all(r.all_passed for _, r in rows) else 1


def cmd_starters(args: argparse.Namespace) -> int:
    """Regenerate labs/ from solutions/ (or, with --check, say which files are out of date)."""
    if args.check:
        stale = starters.out_of_date()
        for name in stale:
            console.print(f"out of date: {name}")
        console.print("labs/ is up to date." if not stale else "[red]Run 'make labs' to regenerate labs/.[/]")
        return 1 if stale else 0
    for name in starters.generate_all():
        console.print(f"generated labs/{name}")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = diagnose()
    for f in findings:
        mark = "[green]ok[/]  " if f.ok else ("[red]FIX[/] " if f.required else "[yellow]note[/]")
        console.print(f"{mark} {f.name:<26} {f.detail}")
        if not f.ok and f.fix:
            console.print(f"      [cyan]fix:[/] {f.fix}")
    problems = [f for f in findings if f.required and not f.ok]
    console.print("\n[green]Ready to grade.[/]" if not problems else f"\n[red]{len(problems)} problem(s) to fix.[/]")
    return 1 if problems else 0


def cmd_images(args: argparse.Namespace) -> int:
    engine = connect()
    for ref in base_images.required_images():
        base_images.ensure(engine, ref, say=lambda text: console.print(f"\\[images] {text}"))
    return 0


def cmd_clean(args: argparse.Namespace) -> int:
    engine = connect()
    removed = engine.remove_all()
    console.print("Removed " + ", ".join(f"{n} {kind}" for kind, n in removed.items()) + " left by the grader.")
    if args.cache:
        console.print(f"Removed the build cache ({engine.prune_build_cache() / 1e6:.0f} MB).")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader", description="Grade model-container labs on a real Docker engine."
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="grade one lab folder or submission")
    check.add_argument("dir", help="the folder with the Dockerfile (a lab folder or a learner's submission)")
    check.add_argument("--lab", help="lab id (e.g. 01) when DIR has no lab.yaml")
    check.add_argument("--learner", help="learner id recorded in the result (default: the folder name)")
    check.add_argument("--json", metavar="FILE", help="write the result object as JSON")
    check.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    check.add_argument("--gradescope", metavar="FILE", help="write Gradescope results.json")
    check.add_argument(
        "--timeout", type=float, default=1800, help="stop grading after this many seconds (default 1800)"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    check.set_defaults(func=cmd_check)

    solutions = sub.add_parser("solutions", help="grade every lab's reference solution and print a score table")
    solutions.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    solutions.set_defaults(func=cmd_solutions)
    gen = sub.add_parser("starters", help="generate each lab's starter in labs/ from its solution")
    gen.add_argument("--check", action="store_true", help="only report files of labs/ that are out of date")
    gen.set_defaults(func=cmd_starters)
    sub.add_parser("doctor", help="is the engine, Compose, BuildKit, base images, GPU, disk ready?").set_defaults(
        func=cmd_doctor
    )
    sub.add_parser("images", help="pull or build every base image the labs need").set_defaults(func=cmd_images)
    clean = sub.add_parser("clean", help="remove everything the grader left on the engine")
    clean.add_argument("--cache", action="store_true", help="also remove the build cache (dangling images)")
    clean.set_defaults(func=cmd_clean)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt  # a SIGTERM cleans up exactly like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except GraderError as err:
        console.print(f"[red]{err.message}[/]" + (f"\n[cyan]Hint:[/] {err.hint}" if err.hint else ""))
        return 2
    except KeyboardInterrupt:
        console.print("[yellow]Interrupted; everything the grader started was removed.[/]")
        return 130
