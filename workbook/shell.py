"""Run a shell command the way a learner would type it, show it and its output, and fail loudly.

A `!docker build ...` line in a notebook ignores the exit status, so a broken build would pass
unnoticed. `sh()` raises CommandFailed instead, so the cell fails, in JupyterLab and under nbval.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

from grader.spec import REPO_ROOT

TAIL_LINES = 40


class CommandFailed(RuntimeError):
    """Raised when a command exits with a status other than the one expected."""


@dataclass
class Result:
    command: str
    code: int
    out: str
    seconds: float

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def sh(
    command: str,
    *,
    expect: int | None = 0,
    show: bool = True,
    tail: int = TAIL_LINES,
    timeout: float = 900,
    env: dict | None = None,
    cwd=None,
) -> Result:
    """Run `command` in bash from the repository root; print it and the last `tail` lines of its output.

    Args:
        expect: the exit status the experiment expects (0 by default; 137 for an OOM kill, say).
            None accepts any status. Any other status raises CommandFailed with the output.
        show: print the command and its output (False for a quiet helper call).
        env: variables added to the environment (NO_COLOR=1, say).
    """
    if show:
        print(f"$ {command}", flush=True)
    started = time.perf_counter()
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    result = Result(command, proc.returncode, (proc.stdout + proc.stderr).rstrip(), time.perf_counter() - started)
    if show and result.out:
        lines = result.lines
        if len(lines) > tail:
            print(f"... ({len(lines) - tail} lines above not shown)")
        print("\n".join(lines[-tail:]), flush=True)
    if expect is not None and result.code != expect:
        raise CommandFailed(
            f"`{command}` exited with {result.code}, expected {expect}.\n" + "\n".join(result.lines[-tail:])
        )
    return result
