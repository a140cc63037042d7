"""Programs the grader runs inside a learner's image, one file each, passed whole as `python -c TEXT`."""

from importlib.resources import files


def program_text(name: str) -> str:
    """The source of grader/programs/NAME.py: what the grader passes to the image's Python with `-c`."""
    return files(__name__).joinpath(f"{name}.py").read_text(encoding="utf-8")
