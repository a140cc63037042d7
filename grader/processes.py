"""The command lines a running container runs, read from its /proc (or, without a shell, from its image)."""

from __future__ import annotations

import docker.errors

# Prints each process's command line, its arguments separated by NUL bytes, one process a line.
LIST_PROCESSES = 'for f in /proc/[0-9]*/cmdline; do cat "$f" 2>/dev/null; echo; done'


def command_lines(text: str) -> list[list[str]]:
    """The argument lists in LIST_PROCESSES output (NUL-separated arguments, one process a line)."""
    found = []
    for line in text.splitlines():
        args = [a for a in line.split("\0") if a]
        probe = args == ["sh", "-c", LIST_PROCESSES] or (len(args) == 2 and args[0] == "cat")
        if args and not probe:
            found.append(args)
    return found


def running_commands(engine, container, image_config: dict) -> tuple[list[list[str]], str]:
    """The command lines of `container`'s processes, and where they were read from.

    Without a shell in the image the processes cannot be listed; then the command the image declares
    (ENTRYPOINT + CMD, from `image_config`, the image's `docker inspect`) stands in for them.
    """
    try:
        code, text = engine.exec(container, ["sh", "-c", LIST_PROCESSES])
    except docker.errors.APIError:  # no shell in the image
        code, text = 1, ""
    commands = command_lines(text) if code == 0 else []
    if commands:
        return commands, "the running container's processes"
    config = image_config["Config"]
    return [(config.get("Entrypoint") or []) + (config.get("Cmd") or [])], "the image's ENTRYPOINT and CMD"
