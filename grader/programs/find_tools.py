"""Which of the tools named on the command line are executable files on PATH or in the standard folders.

Usage: python find_tools.py TOOL... Prints `found TOOL PATH` for each tool found (the first folder that has
it; links are followed, so a dangling link does not count), then PROBE_DONE, which tells a probe that ran
to its end from one cut short. The grader passes this file's text as `python3 -c TEXT TOOL...` to an image
that has no shell (NoBuildToolsInImage in grader/checks/on_image_files.py), so it uses the standard library
only, with whatever Python the image has.
"""

import os
import sys

# Besides the image's own PATH, the folders where Debian and the official images put programs:
# a tool does not stop being there because PATH leaves its folder out.
STANDARD_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
PROBE_DONE = "probe done"


def find(tool: str, dirs: list):
    """The path of `tool` in the first of `dirs` where it is an executable file, or None."""
    for folder in filter(None, dirs):
        path = os.path.join(folder, tool)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main(tools: list) -> None:
    dirs = os.environ.get("PATH", "").split(os.pathsep) + list(STANDARD_DIRS)
    for tool in tools:
        path = find(tool, dirs)
        if path is not None:
            print("found", tool, path)
    print(PROBE_DONE)


if __name__ == "__main__":
    main(sys.argv[1:])
