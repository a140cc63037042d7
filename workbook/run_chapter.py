"""Run one chapter headless with papermill and keep what it made: `make chapter CH=03 [QUICK=1]`.

How an instructor checks a workshop machine the day before, or a learner reruns a chapter unattended: the
executed notebook (every output, plots included) goes to reports/chapters/NN-name.ipynb, and each plot
also to reports/chapters/NN-name/figure-KK.png, to look at without opening Jupyter. `--quick` sets
WORKBOOK_QUICK=1, which the chapter's `parameters` cell reads (fewer repetitions, still real
measurements); `-p NAME=VALUE` overrides any other value of that cell (papermill injects it after).

Exit codes: 0 the chapter ran to its end, 1 a cell failed (the executed notebook shows where), 2 bad input.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from pathlib import Path

import nbformat
import papermill
import yaml
from papermill.exceptions import PapermillExecutionError

from grader.spec import REPO_ROOT

NOTEBOOKS = REPO_ROOT / "notebooks"
REPORTS = REPO_ROOT / "reports" / "chapters"


def find_chapter(chapter: str, notebooks: Path = NOTEBOOKS) -> Path:
    """notebooks/NN-*.ipynb for `chapter` ("3", "03" or "03-layer-caching"); ValueError names the choices."""
    number = chapter.split("-")[0]
    if number.isdigit():
        found = sorted(notebooks.glob(f"{int(number):02d}-*.ipynb"))
        if len(found) == 1:
            return found[0]
    choices = ", ".join(path.stem for path in sorted(notebooks.glob("[0-9][0-9]-*.ipynb")))
    raise ValueError(f"no chapter {chapter!r}; the chapters are: {choices}")


def save_figures(executed: Path, folder: Path) -> list[Path]:
    """Every PNG the executed notebook displays, as folder/figure-KK.png, in the order they appear."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("figure-*.png"):
        old.unlink()  # a rerun never leaves an earlier run's plots beside its own
    saved = []
    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png:
                path = folder / f"figure-{len(saved) + 1:02d}.png"
                path.write_bytes(base64.b64decode(png))
                saved.append(path)
    return saved


def parameter(text: str) -> tuple[str, object]:
    """NAME=VALUE, the value read as YAML (2 is a number, [1, 8] a list, true a bool, anything else text)."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE (for example -p REPEATS=2)")
    try:
        return name, yaml.safe_load(value)
    except yaml.YAMLError:
        return name, value


def run(chapter: Path, quick: bool, out_dir: Path = REPORTS, parameters: dict | None = None):
    """Execute `chapter` into out_dir; returns (exit code, executed notebook, figures, seconds)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    executed = out_dir / chapter.name
    started = time.monotonic()
    code = 0
    saved_quick = os.environ.get("WORKBOOK_QUICK")
    os.environ["WORKBOOK_QUICK"] = "1" if quick else "0"  # the kernel inherits it; its parameters cell reads it
    try:
        papermill.execute_notebook(
            str(chapter),
            str(executed),
            parameters=parameters or {},
            cwd=str(chapter.parent),  # as JupyterLab runs it: from the notebooks folder
            progress_bar=False,
        )
    except PapermillExecutionError as err:
        print(f"cell {err.exec_count} failed: {err.ename}: {err.evalue}", file=sys.stderr)
        code = 1
    finally:
        if saved_quick is None:
            os.environ.pop("WORKBOOK_QUICK", None)
        else:
            os.environ["WORKBOOK_QUICK"] = saved_quick
    return code, executed, save_figures(executed, out_dir / chapter.stem), time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapter", help='the chapter\'s number ("03") or file name ("03-layer-caching")')
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (what CI runs), still real")
    parser.add_argument(
        "-p",
        "--parameter",
        type=parameter,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a value of the chapter's parameters cell (repeatable)",
    )
    parser.add_argument("--out", type=Path, default=REPORTS, help=f"where to write (default {REPORTS})")
    args = parser.parse_args(argv)
    try:
        chapter = find_chapter(args.chapter)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"Running {chapter.name} headless{' (quick)' if args.quick else ''}; this takes minutes...", flush=True)
    code, executed, figures, seconds = run(chapter, args.quick, args.out, dict(args.parameter))
    verdict = "ran to its end" if code == 0 else "stopped at a failed cell"
    print(f"{chapter.stem} {verdict} in {seconds:.0f} s")
    print(f"executed notebook: {executed}")
    print(f"plots: {len(figures)} in {args.out / chapter.stem}/" if figures else "plots: none")
    return code


if __name__ == "__main__":
    sys.exit(main())
