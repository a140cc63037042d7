"""The GitHub Actions workflow a learner's lab repository uses to be graded on every push."""

from __future__ import annotations

import re
from importlib.resources import files

from grader.errors import GraderError

TEMPLATE = "github-actions.yml"
REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
REF = re.compile(r"^[A-Za-z0-9_./-]+$")


def render(lab: str, course_repo: str, course_ref: str = "main") -> str:
    """The workflow for `lab`, grading with the course repository `course_repo` at `course_ref`."""
    if not REPO.match(course_repo):
        raise GraderError(f"{course_repo!r} is not a GitHub repository name", hint="write it as owner/name")
    if not REF.match(course_ref):
        raise GraderError(f"{course_ref!r} is not a tag, branch or commit", hint="e.g. v1.0 or a commit id")
    text = (files("grader") / "templates" / TEMPLATE).read_text()
    for key, value in (("__LAB__", lab), ("__COURSE_REPO__", course_repo), ("__COURSE_REF__", course_ref)):
        text = text.replace(key, value)
    return text
