"""Reading a learner's Dockerfile without building it: its instructions, stages and base image.

The grader judges images by building and running them; these helpers cover what a check needs to know
beforehand (which image a stage starts FROM, where the dependency install is) and never decide a grade
on the text alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Files this reader does not follow line by line: another escape character, or heredocs (BuildKit's RUN <<EOF).
ESCAPE_DIRECTIVE = re.compile(r"^\s*#\s*escape\s*=", re.IGNORECASE | re.MULTILINE)
HEREDOC = re.compile(r"<<-?[ \t]*[\"']?[A-Za-z_]")
# A parser directive naming the Dockerfile frontend image ("# syntax=docker/dockerfile:1"): only at the very top.
SYNTAX_DIRECTIVE = re.compile(r"^#[ \t]*syntax[ \t]*=[ \t]*(\S+)[ \t]*$", re.IGNORECASE)
DIRECTIVE = re.compile(r"^#[ \t]*\w+[ \t]*=")
ARG_REF = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY...
    args: str  # the rest, continuation lines joined
    line: int  # where it starts (1-based)
    end: int = 0  # where it ends (its last line, 1-based)


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile, with backslash continuations joined and comments left out."""
    found, parts, start, number = [], [], None, 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker skips comment and empty lines, also inside a continued instruction
        if start is None:
            start = number
        if line.endswith("\\"):
            parts.append(line[:-1].strip())
            continue
        parts.append(line)
        keyword, _, args = " ".join(parts).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start, number))
        parts, start = [], None
    if parts:
        keyword, _, args = " ".join(parts).partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start or 0, number))
    return found


def substitute(value: str, args: dict[str, str]) -> str:
    """`value` with $NAME, ${NAME} and ${NAME:-default} replaced from `args` (unknown names become '')."""

    def one(match: re.Match) -> str:
        name = match.group(1) or match.group(3)
        if args.get(name):
            return args[name]
        return match.group(2) or ""

    return ARG_REF.sub(one, value)


def final_base_image(instructions: list[Instruction]) -> str | None:
    """The image the last stage is built FROM, following stage names and the ARG defaults before the first FROM."""
    global_args: dict[str, str] = {}
    stages: list[tuple[str, str | None]] = []
    for ins in instructions:
        if ins.keyword == "ARG" and not stages:
            name, _, default = ins.args.partition("=")
            global_args[name.strip()] = default.strip().strip("\"'")
        elif ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            if not words:
                continue
            alias = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append((substitute(words[0], global_args), alias))
    if not stages:
        return None
    by_alias = {alias: image for image, alias in stages if alias}
    image, seen = stages[-1][0], set()
    while image.lower() in by_alias and image.lower() not in seen:
        seen.add(image.lower())
        image = by_alias[image.lower()]
    return image


def up_to_final_run_with(text: str, marker: str) -> str | None:
    """The Dockerfile cut after the final stage's last RUN that contains `marker` (the dependency install).

    Docker's cache decides a step from the steps before it and their files only, so building this shorter
    file answers "is the install step reused?" exactly as the whole file would, without the steps after it.
    None when there is no such RUN, or the file uses syntax this reader does not follow (then build it all).
    """
    instructions = dockerfile_instructions(text)
    if ESCAPE_DIRECTIVE.search(text) or any(HEREDOC.search(ins.args) for ins in instructions):
        return None
    stages = [i for i, ins in enumerate(instructions) if ins.keyword == "FROM"]
    if not stages:
        return None
    installs = [ins for ins in instructions[stages[-1] :] if ins.keyword == "RUN" and marker in ins.args]
    if not installs:
        return None
    cut = "".join(text.splitlines(keepends=True)[: installs[-1].end])
    return cut if cut.endswith("\n") else cut + "\n"


def syntax_directive(text: str) -> tuple[int, str] | None:
    """The `# syntax=IMAGE` parser directive as (line index, image), or None.

    Directives count only before the first instruction, comment or blank line, as Docker reads them.
    """
    for index, line in enumerate(text.splitlines()):
        if not DIRECTIVE.match(line):
            return None
        match = SYNTAX_DIRECTIVE.match(line)
        if match:
            return index, match[1]
    return None


def without_syntax_directive(text: str) -> str:
    """`text` with its `# syntax=` line blanked (kept as an empty line, so line numbers in errors still match)."""
    found = syntax_directive(text)
    if found is None:
        return text
    lines = text.splitlines(keepends=True)
    lines[found[0]] = "\n"
    return "".join(lines)
