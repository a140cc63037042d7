"""The base images the labs build FROM: pulled from a registry when one answers, else made locally.

Local stand-ins are built from Debian packages by the recipes in docker/standins/ and carry the
label org.mlcontainers.standin=true, so `doctor` and the notebooks can say which images are stand-ins.
"""

from __future__ import annotations

import subprocess

from grader.engine import STANDIN_LABEL, Engine
from grader.errors import GraderError
from grader.spec import REPO_ROOT, official_specs

RECIPES = REPO_ROOT / "docker" / "standins"
# Which recipe makes a stand-in for which image: an exact reference first, else by repository name.
RECIPE_FOR = {"python:3.11": "python-full.sh", "python": "python-slim.sh", "redis": "service.sh", "nginx": "service.sh"}


def required_images() -> list[str]:
    """Every base image any lab of this repository builds FROM."""
    return sorted({ref for spec in official_specs().values() for ref in spec.base_images})


def status(engine: Engine, ref: str) -> str:
    """'missing', 'stand-in' or 'present' (a real image)."""
    labels = engine.image_labels(ref)
    if labels is None:
        return "missing"
    return "stand-in" if labels.get(STANDIN_LABEL) == "true" else "present"


def ensure(engine: Engine, ref: str, say=print) -> str:
    """Make `ref` present: keep it, pull it, or build a stand-in. Returns what was done."""
    current = status(engine, ref)
    if current != "missing":
        say(f"{ref}: already present{' (stand-in)' if current == 'stand-in' else ''}")
        return current
    say(f"{ref}: pulling from the registry...")
    pulled, why = engine.pull(ref)
    if pulled:
        say(f"{ref}: pulled")
        return "pulled"
    recipe = RECIPE_FOR.get(ref) or RECIPE_FOR.get(ref.split(":")[0].split("/")[-1])
    if recipe is None:
        raise GraderError(
            f"{ref}: the pull failed ({why}) and there is no stand-in recipe for it",
            hint="connect to a registry, or load the image with 'docker load -i FILE'",
        )
    say(f"{ref}: no registry answers ({why.splitlines()[0][:100]}); building a stand-in from Debian packages")
    proc = subprocess.run(["bash", str(RECIPES / recipe), ref])
    if proc.returncode != 0:
        raise GraderError(
            f"{ref}: building the stand-in failed (exit {proc.returncode})",
            hint=f"run 'bash docker/standins/{recipe} {ref}' to see the whole output",
        )
    return "stand-in built"
