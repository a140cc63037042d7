"""What a grade keeps of its builds: the step images a later submission can reuse, and none of its own code.

A class of forty must not fill the instructor's disk: each grade's image is removed with the step images
only its own code produced, while the dependency install that the next submission reuses stays cached.
These tests look for new images among all those on the engine, so they assume no other build runs on it
meanwhile (CI runs the engine tests one after another).
"""

from __future__ import annotations

import shutil
import uuid

import pytest
from seeded import assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import REPO_ROOT, official_specs

SPEC = official_specs()["01"]
SOLUTION_INSTALL = "pip install --no-cache-dir -r requirements.txt"


def submission(source: str, tmp_path, name: str):
    """A copy of lab 01's solution or starter with a code change of its own (content never built before)."""
    copy = tmp_path / name
    shutil.copytree(REPO_ROOT / source / SPEC.path.name, copy)
    with (copy / SPEC.code_change).open("a") as f:
        f.write(f"\n# {name} {uuid.uuid4().hex}\n")
    return copy


def all_images(engine) -> set[str]:
    return {img.id for img in engine.client.images.list(all=True)}


def cached_steps(engine) -> list[str]:
    """What created each untagged step image (the build cache the classic builder reads)."""
    steps = [img for img in engine.client.images.list(all=True) if not img.tags]
    return [engine.client.api.history(img.id)[0]["CreatedBy"] for img in steps]


@pytest.mark.parametrize("source", ["solutions", "labs"])
def test_a_grade_leaves_no_image_of_its_own(engine, tmp_path, source):
    grade(submission(source, tmp_path, "first"), SPEC, engine=engine)  # caches what a later grade can reuse
    before = all_images(engine)
    second = grade(submission(source, tmp_path, "second"), SPEC, engine=engine)
    assert second.status == "graded"
    assert not all_images(engine) - before, "the second grade left step images of its own code behind"
    assert_nothing_left(engine)
    cache = results_by_check(second)["LayerCacheReused"]
    if source == "solutions":
        assert cache.status == "passed"
        assert any(SOLUTION_INSTALL in step for step in cached_steps(engine)), "the reusable install was removed"
    else:
        # The starter copies its code before the install: the rebuild stops as soon as the install runs again.
        assert cache.status == "failed" and "stopped the rebuild" in cache.message
        assert second.timings["rebuild_s"] < second.timings["build_s"] / 2


def test_a_failed_build_leaves_no_image_of_its_own(engine, tmp_path):
    grade(submission("solutions", tmp_path, "warm"), SPEC, engine=engine)
    before = all_images(engine)
    broken = submission("solutions", tmp_path, "broken")
    (broken / "app" / "train.py").write_text("raise SystemExit('training failed')\n")  # fails after COPY app/
    result = grade(broken, SPEC, engine=engine)
    assert results_by_check(result)["ImageBuilds"].status == "failed"
    assert not all_images(engine) - before, "the failed build left the step images before its failing step"
    assert_nothing_left(engine)
