"""Command line: a thin layer over the grader's Python API.

    python -m grader check DIR [--lab ID] [--json FILE] [--junit FILE] [--gradescope FILE] [--instructor]
    python -m grader batch SUBMISSIONS --lab ID [--jobs N | --workers BROKER_URL] [--roster CSV] [--gradebook URL]
                       [--out DIR]
    python -m grader worker --broker URL --gradebook URL [--concurrency N] [--name NAME]
    python -m grader export --lab ID --format csv|gradescope|prairielearn|junit [--gradebook URL] [--out DIR]
    python -m grader report --lab ID [--gradebook URL] [--out FILE]
    python -m grader solutions
    python -m grader starters [--check]
    python -m grader doctor
    python -m grader images
    python -m grader clean [--cache]
    python -m grader workshop pack|load|unload [FOLDER]
    python -m grader ci-template --lab ID --course-repo OWNER/NAME [--ref REF]

An output FILE of `-` means standard output (the report then goes to standard error). Errors go to standard
error, with a hint; no command prints a traceback (GRADER_DEBUG=1 shows one for a grader fault).
`check` shows what the learner may see: checks the lab marks hidden are left out (--instructor shows them);
its Gradescope file lists every check, hidden ones as Gradescope's `hidden`.
"""

from __future__ import annotations

import argparse
import os
import signal
import traceback
from pathlib import Path

import docker.errors
from rich.console import Console
from rich.table import Table

from grader import __version__, base_images, build_cache, class_report, exporters, learner_record, starters, workshop
from grader.batch import lab_spec, out_dir, run_batch
from grader.batch.outputs import FORMATS, csv_rows, write_exports
from grader.ci_template import render as render_ci_template
from grader.doctor import diagnose
from grader.engine import connect
from grader.errors import EngineUnavailable, GraderError
from grader.gradebook import DEFAULT_URL, Gradebook
from grader.progress import Progress
from grader.report import print_report
from grader.session import grade
from grader.spec import official_specs, resolve_spec

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)  # what went wrong, and the hint: never into a redirected file

# Exit codes, the same for every command (batch: "passed" means every submission was graded).
EXIT_CODES = {
    0: "every check passed",
    1: "some checks failed, or grading stopped at its time limit",
    2: "bad usage or input: a wrong option, a missing or invalid file, a submission that cannot be graded",
    3: "a grader or engine fault: not the learner's doing; nothing was charged",
    130: "interrupted (Ctrl-C or SIGTERM): everything the grader started was removed",
}
USAGE, FAULT = 2, 3


def usage_error(message: str, hint: str = "") -> GraderError:
    return GraderError(message, hint=hint)


def output_path(value: str | None, what: str) -> str | None:
    """An output FILE option, checked before any work is done: `-` (standard output), or a file that can be
    made: not a folder, and under no existing file."""
    if value is None or value == exporters.STDOUT:
        return value
    path = Path(value)
    if path.is_dir():
        raise usage_error(f"{what} {value} is a folder", hint=f"give {what} a file name, or - for standard output")
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise usage_error(f"{what} {value}: {parent} is a file, so nothing can be written under it")
            break
    return value


def output_folder(value: str, what: str) -> Path:
    """An output DIR option: a folder that exists or can be made (not a file, not under one)."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise usage_error(f"{what} {value} is a file, not a folder", hint=f"give {what} a folder")
    output_path(str(path / "x"), what)
    return path


def cmd_check(args: argparse.Namespace) -> int:
    outputs = {fmt: output_path(getattr(args, fmt), f"--{fmt}") for fmt in ("json", "junit", "gradescope")}
    to_stdout = [f"--{fmt}" for fmt, path in outputs.items() if path == exporters.STDOUT]
    if len(to_stdout) > 1:
        raise usage_error(f"{' and '.join(to_stdout)} both write to standard output", hint="give all but one a file")
    try:
        spec = resolve_spec(Path(args.dir), args.lab)
    except GraderError as err:
        raise GraderError(f"Cannot grade {args.dir}: {err.message}", hint=err.hint) from None
    # With a file on standard output, the report goes to standard error so that the file stays clean.
    shown_on = errors if to_stdout else console
    # The learner's own record picks each tiered hint's tier; an instructor sees the complete hints.
    failures, note = (None, "") if args.instructor else learner_record.failures_so_far(spec.id)
    result = grade(
        Path(args.dir),
        spec,
        learner=args.learner or "",
        progress=Progress(quiet=args.quiet, console=shown_on),
        timeout_s=args.timeout,
        failures_before=failures,
    )
    if not args.instructor and result.status != "invalid":
        note = learner_record.record_check(result, args.timeout) or note
    if note:
        errors.print(note)
    shown = result if args.instructor else result.learner_view()
    for fmt, path in outputs.items():
        if path is not None:
            # Gradescope hides hidden checks itself: it gets them all, so the total is the lab's total.
            exporters.write(result if fmt == "gradescope" else shown, fmt, path)
    print_report(shown, shown_on)
    return shown.exit_code


def cmd_progress(args: argparse.Namespace) -> int:
    """What this learner has done along the learning path, from their own record, and the next step."""
    learner = learner_record.learner_name()
    book = learner_record.open_record(create=False)
    try:
        steps = learner_record.steps(book, learner)
    finally:
        if book is not None:
            book.close()
    table = Table(title=f"Progress of {learner}", show_lines=False)
    for column in ("", "step", "title", "what your record says"):
        table.add_column(column)
    for step in steps:
        name = f"chapter {step.id}" if step.kind == "chapter" else f"lab {step.id}"
        table.add_row("[green]done[/]" if step.done else "", name, step.title, step.status)
    console.print(table)
    upcoming = next((step for step in steps if not step.done), None)
    if upcoming is None:
        console.print("Every chapter's knowledge check and every lab at full marks: well done.")
    elif upcoming.kind == "chapter":
        console.print(f"Next: chapter {upcoming.id}, {upcoming.title} (make lab, then open notebooks/{upcoming.id}-*).")
    else:
        console.print(f"Next: lab {upcoming.id}, {upcoming.title} (make check LAB={upcoming.id}).")
    where = learner_record.record_path()
    console.print(f"[dim]record: {where if where else 'off (GRADER_PROGRESS=off)'}[/]")
    return 0


BATCH_DEFAULTS = run_batch.__kwdefaults__


def _at_least_one(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def cmd_batch(args: argparse.Namespace) -> int:
    """Grade a class: every submission in a folder, into the gradebook; then exports, feedback, report."""
    summary = run_batch(
        submissions=Path(args.submissions),
        lab=args.lab,
        jobs=args.jobs,
        roster=Path(args.roster) if args.roster else None,
        gradebook=args.gradebook,
        out=Path(args.out) if args.out else None,
        timeout_s=args.timeout,
        quiet=args.quiet,
        workers=args.workers,
    )
    if summary.interrupted:
        done = (
            "what no worker had started was withdrawn, and grades already running are stored when they end"
            if args.workers
            else "everything the grader started was removed"
        )
        console.print(
            f"[yellow]Interrupted; {done}. {len(summary.graded)} result(s) are kept in the gradebook: run the same "
            "command again to grade the rest.[/]",
            soft_wrap=True,
        )
        return summary.exit_code
    counts = {s: summary.count(s) for s in ("graded", "timeout", "invalid", "error")}
    reused = sum(1 for g in summary.graded if g.reused)
    console.print(
        f"Lab {summary.lab}: {len(summary.graded)} submissions in {summary.seconds:.0f}s: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + (f" ({reused} answered from the gradebook)" if reused else ""),
        soft_wrap=True,  # one line in a log, however long
    )
    for problem in summary.problems:
        errors.print(f"[red]not stored:[/] {problem}", soft_wrap=True)
    if summary.out:
        console.print(f"Grades, feedback, exports and the class report: {summary.out}/", soft_wrap=True)
    return summary.exit_code


def cmd_worker(args: argparse.Namespace) -> int:
    """Grade the submissions a batch sends (batch --workers) on this host's engine, until stopped."""
    from grader.batch import workers  # Celery is loaded only here and for batch --workers

    missing = [
        f"--{n} (or {env})"
        for n, env in (("broker", workers.BROKER_ENV), ("gradebook", workers.GRADEBOOK_ENV))
        if not getattr(args, n)
    ]
    if missing:
        raise usage_error(f"A worker needs {' and '.join(missing)}.")
    return workers.start_worker(
        broker=args.broker, gradebook=args.gradebook, concurrency=args.concurrency, name=args.name
    )


def _graded_lab(book: Gradebook, lab: str) -> str:
    """The lab id, once the gradebook is known to hold attempts for it."""
    spec = lab_spec(lab)
    if not book.attempts(spec.id):
        held = book.labs()
        raise usage_error(
            f"the gradebook {book.url} has no grades for lab {spec.id}",
            hint=f"it holds lab(s) {', '.join(held)}: check --lab" if held else "grade the class with `batch` first",
        )
    return spec.id


def cmd_export(args: argparse.Namespace) -> int:
    spec = lab_spec(args.lab)
    if args.out == exporters.STDOUT and args.format != "csv":
        raise usage_error(f"--out - writes one file; {args.format} is a file per learner", hint="give --out a folder")
    out = args.out if args.out == exporters.STDOUT else output_folder(args.out or str(out_dir(spec.id)), "--out")
    book = Gradebook(args.gradebook, create=False)
    try:
        lab = _graded_lab(book, spec.id)
        total = sum(c.points for c in spec.checks)
        if out == exporters.STDOUT:
            exporters.write_text(out, exporters.to_csv(csv_rows(book, lab, max_score=total)))
            return 0
        files = write_exports(book, lab, out, (args.format,), max_score=total)
    finally:
        book.close()
    console.print(f"Wrote {len(files)} file(s) under {out}/" + (f": {files[0]}" if len(files) == 1 else ""))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    spec = lab_spec(args.lab)
    out = output_path(args.out or str(out_dir(spec.id) / "class-report.html"), "--out")
    book = Gradebook(args.gradebook, create=False)
    try:
        lab = _graded_lab(book, spec.id)
        if out == exporters.STDOUT:
            exporters.write_text(out, class_report.render(book, lab, spec))
            return 0
        path = class_report.write(book, lab, Path(out), spec)
    finally:
        book.close()
    console.print(f"Class report: {path}")
    return 0


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
        freed, kept = build_cache.clear(engine)
        console.print(
            f"Removed the build cache grading made ({freed / 1e6:.0f} MB) and {kept} image(s) of labs' dependencies"
            " kept for the next grade; other builds' cache is kept."
        )
    return 0


def cmd_workshop(args: argparse.Namespace) -> int:
    engine = connect()
    folder = Path(args.folder)
    say = lambda text: console.print(f"\\[workshop] {text}")  # noqa: E731
    if args.action == "pack":
        manifest = workshop.pack(folder, engine, say=say)
        console.print(
            f"Packed {len(manifest['images'])} images and {manifest['projects']} Python projects into {folder}/. "
            f"On each learner's machine: make workshop-load WORKSHOP={folder}"
        )
    elif args.action == "load":
        workshop.load(folder, engine, say=say)
        console.print(
            "Loaded. Every lab now builds from the wheelhouse, with no network: `make check LAB=NN`, or by hand "
            "a plain `docker build .`. Undo with: make workshop-unload"
        )
    else:
        workshop.unload(folder, engine, say=say)
    return 0


def cmd_ci_template(args: argparse.Namespace) -> int:
    lab = lab_spec(args.lab).id  # only a lab this course ships: its id is then safe to write into YAML
    exporters.write_text(exporters.STDOUT, render_ci_template(lab, args.course_repo, args.ref))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade model-container labs on a real Docker engine.",
        epilog="exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()),
    )
    parser.add_argument("--version", action="version", version=f"grader {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="grade one lab folder or submission")
    check.add_argument("dir", help="the folder with the Dockerfile (a lab folder or a learner's submission)")
    check.add_argument("--lab", help="lab id (e.g. 01) when DIR has no lab.yaml")
    check.add_argument("--learner", help="learner id recorded in the result (default: the folder name)")
    check.add_argument("--json", metavar="FILE", help="write the result object as JSON (- for stdout)")
    check.add_argument("--junit", metavar="FILE", help="write a JUnit XML report (- for stdout)")
    check.add_argument(
        "--gradescope", metavar="FILE", help="write Gradescope results.json, hidden checks included (- for stdout)"
    )
    check.add_argument(
        "--timeout", type=float, default=1800, help="stop grading after this many seconds (default 1800)"
    )
    check.add_argument(
        "--instructor", action="store_true", help="also show (and export) the checks the lab hides from learners"
    )
    check.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    check.set_defaults(func=cmd_check)

    sub.add_parser("progress", help="what you have done along the learning path, and the next step").set_defaults(
        func=cmd_progress
    )

    batch = sub.add_parser("batch", help="grade a class: every submission in a folder, into the gradebook")
    batch.add_argument("submissions", help="folder with one folder, zip/tar archive or git repository per learner")
    batch.add_argument("--lab", required=True, help="lab id (e.g. 01)")
    batch.add_argument(
        "--jobs",
        type=_at_least_one,
        default=BATCH_DEFAULTS["jobs"],
        help="submissions graded at a time (default %(default)s)",
    )
    batch.add_argument("--roster", metavar="CSV", help="learners: id[,first_name,last_name,email,submission]")
    batch.add_argument(
        "--gradebook", metavar="URL", default=DEFAULT_URL, help="database URL of the gradebook (default %(default)s)"
    )
    batch.add_argument("--out", metavar="DIR", help="where grades, feedback and exports go (default reports/LAB/)")
    batch.add_argument(
        "--timeout",
        type=float,
        default=BATCH_DEFAULTS["timeout_s"],
        help="stop grading one submission after this many seconds (default %(default)g)",
    )
    batch.add_argument(
        "--workers",
        metavar="BROKER_URL",
        help="hand the class to grading workers on other Docker hosts through this Redis broker "
        "(redis://HOST:6379/0); --gradebook must then be a database they share (PostgreSQL)",
    )
    batch.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    batch.set_defaults(func=cmd_batch)

    worker = sub.add_parser("worker", help="grade what batch --workers sends, on this host's engine, until stopped")
    worker.add_argument(
        "--broker",
        metavar="URL",
        default=os.environ.get("GRADER_BROKER_URL"),
        help="the Redis broker the batch sends to, redis://HOST:6379/0 (default: $GRADER_BROKER_URL)",
    )
    worker.add_argument(
        "--gradebook",
        metavar="URL",
        default=os.environ.get("GRADER_GRADEBOOK_URL"),
        help="the shared gradebook, postgresql+psycopg://USER@HOST/DB (default: $GRADER_GRADEBOOK_URL)",
    )
    worker.add_argument(
        "--concurrency",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="submissions graded at a time (default %(default)s)",
    )
    worker.add_argument("--name", default="grader", help="this worker's name, NAME@host (default %(default)s)")
    worker.set_defaults(func=cmd_worker)

    export = sub.add_parser("export", help="write grades from the gradebook in a platform's format")
    export.add_argument("--lab", required=True, help="lab id (e.g. 01)")
    export.add_argument("--format", required=True, choices=FORMATS)
    export.add_argument("--gradebook", metavar="URL", default=DEFAULT_URL, help="default %(default)s")
    export.add_argument("--out", metavar="DIR", help="default reports/LAB/; - writes the CSV to stdout")
    export.set_defaults(func=cmd_export)

    report = sub.add_parser("report", help="write the class report (one HTML page) from the gradebook")
    report.add_argument("--lab", required=True, help="lab id (e.g. 01)")
    report.add_argument("--gradebook", metavar="URL", default=DEFAULT_URL, help="default %(default)s")
    report.add_argument("--out", metavar="FILE", help="default reports/LAB/class-report.html; - for stdout")
    report.set_defaults(func=cmd_report)

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
    clean.add_argument(
        "--cache",
        action="store_true",
        help="also remove the BuildKit build cache that grading made and the images of labs' dependencies it kept",
    )
    clean.set_defaults(func=cmd_clean)

    shop = sub.add_parser("workshop", help="pack everything the labs need for a room with no network, or load it")
    shop.add_argument("action", choices=["pack", "load", "unload"])
    shop.add_argument("folder", nargs="?", default="workshop", help="the pack's folder (default %(default)s)")
    shop.set_defaults(func=cmd_workshop)

    ci = sub.add_parser("ci-template", help="print a GitHub Actions workflow that grades a learner's repository")
    ci.add_argument("--lab", required=True, help="lab id (e.g. 01)")
    ci.add_argument("--course-repo", required=True, metavar="OWNER/NAME", help="this course's GitHub repository")
    ci.add_argument("--ref", default="main", help="the course's tag or commit to grade with (default %(default)s)")
    ci.set_defaults(func=cmd_ci_template)
    return parser


def _terminate(signum, frame):
    raise KeyboardInterrupt  # a SIGTERM cleans up exactly like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)  # a wrong option: argparse says so on stderr and exits 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.func(args)
    except EngineUnavailable as err:
        _say_error(err.message, err.hint)
        return FAULT
    except GraderError as err:
        _say_error(err.message, err.hint)
        return USAGE
    except KeyboardInterrupt:
        errors.print("[yellow]Interrupted; everything the grader started was removed.[/]")
        return 130
    except OSError as err:  # a file or folder named on the command line that cannot be read or written
        _say_error(f"{err.strerror or err}: {err.filename or ''}".rstrip(": "), "check the paths given")
        return USAGE
    except docker.errors.DockerException as err:
        _say_error(f"the Docker engine failed: {err}", "`python -m grader doctor` says what is wrong")
        return FAULT
    except Exception as err:  # a bug of ours: say so plainly, never charge the learner
        if os.environ.get("GRADER_DEBUG"):
            traceback.print_exc()
        _say_error(
            f"grader fault: {type(err).__name__}: {err}",
            "this is a bug in the grader, not in your work; run again with GRADER_DEBUG=1 and report what it prints",
        )
        return FAULT


def _say_error(message: str, hint: str = "") -> None:
    errors.print(f"[red]{message}[/]" + (f"\n[cyan]Hint:[/] {hint}" if hint else ""), soft_wrap=True)
