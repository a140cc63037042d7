"""Who submitted what: the submissions in a class folder, and the learner id of each.

A learner id comes from the submission's name (`ada.zip`, `ada/`, `ada.git` are all learner `ada`), or
from a roster CSV. The roster follows nbgrader's columns (`id`, `first_name`, `last_name`, `email`) plus
an optional `submission` column naming the learner's file or folder when it is not their id.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from grader.batch.unpack import GIT_SUFFIXES, PACKAGING_NOISE, TAR_SUFFIXES, ZIP_SUFFIXES, kind_of
from grader.errors import RosterError

ID_COLUMNS = ("id", "learner", "student_id")  # nbgrader's roster says id, its exports student_id


@dataclass(frozen=True)
class Submission:
    """One learner's submission in the class folder."""

    name: str  # its name in the class folder: "ada.zip"
    path: Path
    kind: str  # folder | zip | tar | git
    learner: str


@dataclass
class Roster:
    """Learners by id, and which submission name belongs to whom."""

    people: dict[str, dict] = field(default_factory=dict)
    by_submission: dict[str, str] = field(default_factory=dict)  # lower-cased submission stem -> learner id

    def learner_for(self, stem: str) -> str | None:
        return self.by_submission.get(stem.lower())


def read_roster(path: Path) -> Roster:
    """Read a roster CSV; RosterError when it is missing or names no learner id column."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # spreadsheets like to start with a BOM
    except OSError as err:
        raise RosterError(f"cannot read the roster {path}: {err.strerror or err}") from None
    reader = csv.DictReader(text.splitlines())
    columns = {c.strip().lower(): c for c in reader.fieldnames or []}
    id_column = next((columns[c] for c in ID_COLUMNS if c in columns), None)
    if id_column is None:
        raise RosterError(
            f"the roster {path} has no learner id column (its columns: {', '.join(columns) or 'none'})",
            hint="give it a header row with an 'id' column, and optionally first_name, last_name, email, submission",
        )
    roster = Roster()
    for line, row in enumerate(reader, start=2):
        learner = (row.get(id_column) or "").strip()
        if not learner:
            continue
        if learner in roster.people:
            raise RosterError(f"the roster {path} names learner {learner!r} twice (line {line})")
        person = {"id": learner}
        for key in ("first_name", "last_name", "email"):
            person[key] = (row.get(columns.get(key, ""), "") or "").strip()
        roster.people[learner] = person
        roster.by_submission[learner.lower()] = learner
        submission = (row.get(columns.get("submission", ""), "") or "").strip()
        if submission:
            roster.by_submission[stem_of(submission).lower()] = learner
    return roster


def stem_of(name: str) -> str:
    """A submission's name without its archive or repository suffix: 'ada.tar.gz' -> 'ada'."""
    lower = name.lower()
    for suffix in sorted((*TAR_SUFFIXES, *ZIP_SUFFIXES, *GIT_SUFFIXES, ".git"), key=len, reverse=True):
        if lower.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def is_utf8(name: str) -> bool:
    """False for a name holding bytes that are not UTF-8 (Python keeps them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def discover(folder: Path, roster: Roster | None = None) -> tuple[list[Submission], list[str]]:
    """The submissions in `folder`, sorted by name, and notes on what was left out or looks wrong."""
    notes: list[str] = []
    found: list[Submission] = []
    for path in sorted(Path(folder).iterdir()):
        if path.name.startswith(".") or path.name in PACKAGING_NOISE:
            continue
        if not is_utf8(path.name):
            # A learner id is this name: the gradebook, the exports and an LMS all need it as text.
            shown = os.fsencode(path.name).decode("utf-8", errors="backslashreplace")
            notes.append(f"left out {shown}: its name is not valid UTF-8; rename it (the learner's id) and grade again")
            continue
        kind = kind_of(path)
        if kind is None:
            notes.append(f"left out {path.name}: not a folder, a zip or tar archive, or a git repository")
            continue
        stem = stem_of(path.name)
        learner = roster.learner_for(stem) if roster else None
        if roster and learner is None:
            notes.append(f"{path.name}: no learner of the roster has this name; graded as learner {stem!r}")
        found.append(Submission(name=path.name, path=path, kind=kind, learner=learner or stem))
    seen: dict[str, list[str]] = {}
    for s in found:
        seen.setdefault(s.learner, []).append(s.name)
    for learner, names in seen.items():
        if len(names) > 1:
            notes.append(f"learner {learner!r} has {len(names)} submissions ({', '.join(names)}): each is an attempt")
    return found, notes
