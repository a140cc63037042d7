"""The result object of one graded submission (see DESIGN.md), from which every export is made."""

from __future__ import annotations

import copy
import hashlib
import os
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

from grader.spec import LabSpec

SCHEMA_VERSION = 1
COUNTED = ("graded", "timeout")  # a timeout is a failed attempt; invalid and error are no attempt at all


@dataclass
class TestResult:
    id: str
    name: str
    category: str
    status: str  # passed | failed | skipped | error
    score: float
    max_score: float
    visibility: str
    message: str
    hint: str = ""
    evidence: str = ""
    duration_ms: int = 0

    @classmethod
    def not_run(cls, check, status: str, message: str) -> TestResult:
        return cls(
            check.spec.check, check.title, check.category, status, 0, check.spec.points, check.spec.visibility, message
        )


@dataclass
class GradeResult:
    submission: dict
    grader: dict
    limits: dict
    status: str = "pending"  # graded | invalid | error | timeout
    message: str = ""
    score: float = 0
    max_score: float = 0
    timings: dict = field(default_factory=dict)
    image: dict = field(default_factory=dict)
    tests: list[TestResult] = field(default_factory=list)
    # In a learner's view: how many checks marked hidden in the lab's spec were left out (see learner_view).
    hidden_checks: int = 0
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def start(cls, spec: LabSpec, submission: Path, learner: str, version: str) -> GradeResult:
        return cls(
            submission={
                "id": submission.name,
                "learner": learner or submission.name,
                "lab": spec.id,
                "path": str(submission),
                "sha256": "",
                "submitted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
            grader={"version": version},
            limits={
                "cpus": spec.limits.cpus,
                "memory_mb": spec.limits.memory_mb,
                "pids": spec.limits.pids,
                "network": spec.limits.network,
                "timeout_s": spec.build_timeout_s,
            },
            max_score=sum(c.points for c in spec.checks),
        )

    def finish(self, status: str, message: str, started: float) -> GradeResult:
        self.status = status
        self.message = message
        self.score = sum(t.score for t in self.tests)
        if self.tests:  # a check this machine cannot run (no GPU) has no points to give: it leaves the total
            self.max_score = sum(t.max_score for t in self.tests)
        total = time.monotonic() - started
        self.timings["total_s"] = round(total, 2)
        build_ready = self.timings.get("build_s", 0) + self.timings.get("ready_s", 0)
        self.timings.setdefault("tests_s", round(max(total - build_ready, 0), 2))
        return self

    @property
    def all_passed(self) -> bool:
        return self.status == "graded" and all(
            t.status == "passed" or (t.status == "skipped" and t.max_score == 0) for t in self.tests
        )

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0 all checks passed, 1 some failed (or grading timed out), 2 the submission
        could not be graded (invalid), 3 a grader or engine fault (not the learner's doing)."""
        status, _ = effective_status(self)
        if status == "error":
            return 3
        if status == "invalid":
            return 2
        return 0 if self.all_passed else 1

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GradeResult:
        """The inverse of to_dict (a stored result read back); keys it does not know are ignored."""
        known = {f.name for f in fields(cls)} - {"tests"}
        test_fields = {f.name for f in fields(TestResult)}
        result = cls(**{k: v for k, v in data.items() if k in known})
        result.tests = [TestResult(**{k: v for k, v in t.items() if k in test_fields}) for t in data.get("tests", [])]
        return result

    def learner_view(self) -> GradeResult:
        """What the learner may see: the checks marked hidden are left out, and so are their points.

        The score becomes a fraction of the visible maximum, so "all passed" means all the checks shown
        passed; `hidden_checks` says how many more the instructor grades. The full result is unchanged.
        """
        hidden = [t for t in self.tests if t.visibility == "hidden"]
        if not hidden:
            return self
        view = copy.deepcopy(self)
        view.tests = [t for t in view.tests if t.visibility != "hidden"]
        view.score = sum(t.score for t in view.tests)
        view.max_score = self.max_score - sum(t.max_score for t in hidden)
        view.hidden_checks = self.hidden_checks + len(hidden)
        return view


def effective_status(result: GradeResult) -> tuple[str, str]:
    """The status an attempt counts with, and its message: what the gradebook stores and every export shows.

    A check that hit a grader or engine fault makes the whole attempt an `error`, never a failed attempt:
    the learner is not charged for our fault.
    """
    errors = [t for t in result.tests if t.status == "error"]
    if result.status in COUNTED and errors:
        return "error", f"check {errors[0].id} hit a grader or engine error: {errors[0].message}"
    return result.status, result.message


def submission_digest(folder: Path) -> str:
    """A content hash of a submission folder: same files, same digest, wherever it lies."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and ".git" not in p.parts):
        # The name's bytes as the file system holds them: a name need not be UTF-8 (archives from other systems).
        digest.update(os.fsencode(path.relative_to(folder)) + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
