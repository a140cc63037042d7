"""The image of a lab's dependencies that a grade keeps for the next grade of that lab.

Why keep one: with the containerd image store, the layers of an image are unpacked into snapshots that go
with the image. Once a grade removes its images, the next grade of the lab unpacks the base and dependency
layers again (about 1.5 s of lab 01's 3 s code-only rebuild), though BuildKit has them cached. An image
that holds them spares that. LayerCacheReused builds exactly such an image anyway: the Dockerfile up to its
install step. The grade keeps it only where it helps and costs little (GradingContext.settle_kept_image):
the submission's image built, starts with these layers and is within the lab's size budget.

Each grade tags the image it built `grader-<lab>:kept-<session>` and labels it `KEPT_LABEL=<lab>`. Keeping
it removes the lab's other kept images and tags, so at most one image stays per lab; not keeping it removes
its tag (the image goes with its last tag). `grader clean --cache` removes them all.
"""

from __future__ import annotations

from grader.engine import Engine
from grader.user_cache import locked


def tag(lab: str, session: str) -> str:
    return f"grader-{lab}:kept-{session}"


def lock():
    """Kept images to this thread alone, also against other processes (grading workers share one engine).

    A grade that keeps its image removes the lab's others: never one that a grade beside it has built and
    not yet looked up, so the build and its look-up hold this lock too (GradingContext.side_build)."""
    return locked("kept-images")


def settle(engine: Engine, lab: str, ref: str, keep: bool) -> None:
    """Keep `ref` as the lab's one kept image, or remove it."""
    with lock():
        if keep:
            engine.remove_kept_images(lab, keep=ref)
        else:
            engine.untag(ref)


def remove_all(engine: Engine) -> int:
    """Remove every lab's kept image (`grader clean --cache`); returns how many."""
    with lock():
        return engine.remove_kept_images()
