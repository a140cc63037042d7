"""Generate each lab's starter (labs/) from its reference solution (solutions/), so the two cannot drift.

In any text file of a solution, a marked region

    # >>> TODO(topic): a hint for the learner (any text: it becomes a comment of the starter)
    #   (more hint lines, indented by three spaces after the hash, are kept too)
    ...the solution's lines...
    # === starter
    # ...what the starter has instead, written commented; the generator strips the "# "...
    # <<<

becomes the TODO line (and its hint lines) followed by the starter's lines; without a `# === starter`
part the solution's lines simply disappear. A file whose first line is `# solution-only` is left out
of the starter. Everything else is copied as it is.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import tempfile
from pathlib import Path

from grader.errors import GraderError
from grader.spec import REPO_ROOT, SPEC_FILE, load_spec

START = re.compile(r"^(?P<indent>\s*)# >>> (?P<note>.*)$")
HINT = re.compile(r"^\s*#   ")
SPLIT, END, SOLUTION_ONLY = "# === starter", "# <<<", "# solution-only"
SKIP_PARTS = {"__pycache__", ".pytest_cache"}


def starter_text(text: str, where: str = "") -> str:
    """The starter's version of one solution file's text."""
    out: list[str] = []
    state = "copy"  # copy -> hint -> solution [-> starter] -> copy
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        bare = line.strip()
        if state == "hint" and HINT.match(line):
            out.append(line)
            continue
        if state == "hint":
            state = "solution"
        if START.match(line):
            if state != "copy":
                raise GraderError(f"{where}:{number}: a region starts inside another region")
            found = START.match(line)
            out.append(f"{found['indent']}# {found['note']}\n")
            state = "hint"
        elif bare == SPLIT:
            if state != "solution":
                raise GraderError(f"{where}:{number}: '{SPLIT}' outside a region")
            state = "starter"
        elif bare == END:
            if state not in ("solution", "starter"):
                raise GraderError(f"{where}:{number}: '{END}' without a region")
            state = "copy"
        elif state == "starter":
            indent = line[: len(line) - len(line.lstrip())]
            body = line.lstrip()
            out.append(indent + (body[2:] if body.startswith("# ") else body[1:] if body.startswith("#") else body))
        elif state == "copy":
            out.append(line)
    if state != "copy":
        raise GraderError(f"{where}: a region is not closed with '{END}'")
    return "".join(out)


def solution_text(text: str) -> str:
    """A solution file as the solution reads: the TODO notes and the starter's alternatives left out.

    The lab's files mark what the starter does differently (`# >>> TODO`, `# === starter`, `# <<<`; see
    grader/starters.py); this is the other half of that: only the reference solution's own lines.
    """
    out: list[str] = []
    state = "copy"
    for line in text.splitlines(keepends=True):
        bare = line.strip()
        if state == "hint" and HINT.match(line):
            continue
        if state == "hint":
            state = "solution"
        if START.match(line):
            state = "hint"
        elif bare == SPLIT:
            state = "starter"
        elif bare == END:
            state = "copy"
        elif state != "starter":
            out.append(line)
    return "".join(out)


def generate(solution: Path, starter: Path) -> None:
    """Write the starter of one lab, replacing whatever was there."""
    provided = _provided(solution)
    _clear(starter, keep=provided)
    for path in sorted(solution.rglob("*")):
        rel = path.relative_to(solution)
        if path.is_dir() or SKIP_PARTS & set(rel.parts) or path.suffix == ".pyc":
            continue
        if any(rel.is_relative_to(p) for p in provided):
            continue  # the lab provides these itself (make wheels); they are not the learner's to edit
        target = starter / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            shutil.copy2(path, target)  # binary files are copied as they are
            continue
        if text.startswith(SOLUTION_ONLY):
            continue
        target.write_text(starter_text(text, str(rel)))
        shutil.copymode(path, target)


def _provided(solution: Path) -> list[Path]:
    """The paths the lab's spec says the lab provides itself (see LabSpec.provided)."""
    spec_file = solution / SPEC_FILE
    return [Path(p) for p in load_spec(spec_file).provided] if spec_file.is_file() else []


def _clear(starter: Path, keep: list[Path]) -> None:
    """Remove the old starter, but keep the provided files a make target put there (a wheel is slow to fetch)."""
    if not starter.exists():
        return
    for path in sorted(starter.iterdir()):
        rel = path.relative_to(starter)
        if rel in keep:
            continue
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def lab_pairs(root: Path = REPO_ROOT) -> list[tuple[Path, Path]]:
    return [(sol, root / "labs" / sol.name) for sol in sorted((root / "solutions").iterdir()) if sol.is_dir()]


def generate_all(root: Path = REPO_ROOT) -> list[str]:
    for solution, starter in lab_pairs(root):
        generate(solution, starter)
    return [starter.name for _, starter in lab_pairs(root)]


def out_of_date(root: Path = REPO_ROOT) -> list[str]:
    """Files of labs/ that differ from what the solutions generate (empty when labs/ is up to date)."""
    stale = []
    with tempfile.TemporaryDirectory() as tmp:
        for solution, starter in lab_pairs(root):
            fresh = Path(tmp) / solution.name
            generate(solution, fresh)
            ignore = [p.name for p in _provided(solution)]
            stale += _differences(fresh, starter, prefix=f"labs/{solution.name}", ignore=ignore)
    return stale


def _differences(a: Path, b: Path, prefix: str, ignore: list[str] = ()) -> list[str]:
    if not b.is_dir():
        return [f"{prefix} (missing)"]
    cmp = filecmp.dircmp(a, b, ignore=[*SKIP_PARTS, *ignore])
    found = [f"{prefix}/{n}" for n in cmp.left_only + cmp.right_only + cmp.diff_files + cmp.funny_files]
    for sub in cmp.common_dirs:
        found += _differences(a / sub, b / sub, f"{prefix}/{sub}")
    return found
