"""Checks that read the submission's build files without building them: the Dockerfile (hadolint) and the
requirements it installs."""

from __future__ import annotations

import re

from grader import hadolint
from grader.checks.base import Check, Outcome, register
from grader.checks.needs import CheckContext
from grader.errors import SpecError

# A requirement pinned to one exact version: name[extras]==1.2.3 (or ===), no wildcard.
PINNED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[^\]]*\])?\s*===?\s*[^\s*,;]+(\s*;.*)?$")


@register
class DockerfileLint(Check):
    name = "DockerfileLint"
    category = "dockerfile"
    title = "Dockerfile passes hadolint"
    hint = "Fix each finding above; each rule's page (https://github.com/hadolint/hadolint/wiki/RULE) says why."
    default_params = {"failure_threshold": "warning", "ignore": []}

    def __init__(self, spec):
        super().__init__(spec)
        if self.params["failure_threshold"] not in hadolint.LEVELS:
            raise SpecError(f"check {self.name}: failure_threshold must be one of {hadolint.LEVELS}")

    def run(self, ctx: CheckContext) -> Outcome:
        report = hadolint.lint(
            ctx.submission / ctx.spec.dockerfile,
            ctx.scratch,
            self.params["failure_threshold"],
            self.params["ignore"],
            shown_as=ctx.spec.dockerfile,
        )
        if report.ok:
            return Outcome.passed(report.message())
        return Outcome.failed(report.message(), report.evidence(), hint=report.fixes())


# --- RequirementsPinned ----------------------------------------------------------------------------


def unpinned_requirements(text: str) -> list[str]:
    """The requirement lines of a requirements.txt that are not pinned to one exact version with ==."""
    found = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or line.startswith("-"):  # comments, -r, --hash options...
            continue
        if not PINNED.match(line):
            found.append(line)
    return found


@register
class RequirementsPinned(Check):
    name = "RequirementsPinned"
    category = "image"
    title = "Every requirement is pinned with =="
    hint = (
        "Pin every package to the exact version you tested, e.g. flask==3.1.3 (pip freeze in a working "
        "environment prints them). Without a pin, next month's rebuild installs whatever is newest."
    )
    default_params = {"files": ["requirements.txt"]}

    def run(self, ctx: CheckContext) -> Outcome:
        lines, missing = [], []
        for rel in self.params["files"]:
            path = ctx.submission / rel
            if not path.is_file():
                missing.append(rel)
                continue
            lines += [f"{rel}: {line}" for line in unpinned_requirements(path.read_text(errors="replace"))]
        if missing:
            return Outcome.failed(f"no {', '.join(missing)} in the submission", hint="Keep the requirements file.")
        if lines:
            return Outcome.failed(f"{len(lines)} requirement(s) not pinned with ==", evidence="\n".join(lines))
        return Outcome.passed(f"every requirement in {', '.join(self.params['files'])} is pinned")
