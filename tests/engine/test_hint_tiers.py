"""Tiered hints on the engine: the same learner failing the same check again sees the next tier, counted in
their own record (grader/learner_record.py), as `python -m grader check` does it."""

from __future__ import annotations

import dataclasses

from seeded import assert_nothing_left, results_by_check

from grader import learner_record
from grader.session import grade
from grader.spec import REPO_ROOT, CheckSpec, official_specs

SPEC = official_specs()["01"]
STARTER = REPO_ROOT / "labs" / SPEC.path.name  # it has no .dockerignore: BuildContextExcludes fails


def test_each_repeated_failure_shows_the_next_tier(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(learner_record.ENV, str(tmp_path / "progress.sqlite"))
    tiers = ("a nudge", "the concept", "the exact fix")
    spec = dataclasses.replace(SPEC, checks=(CheckSpec("BuildContextExcludes", points=2, hints=tiers),))
    shown = []
    for _ in range(4):
        failures, note = learner_record.failures_so_far(spec.id)
        assert note == ""
        result = grade(STARTER, spec, engine=engine, failures_before=failures)
        assert learner_record.record_check(result, 60) == ""
        shown.append(results_by_check(result)["BuildContextExcludes"].hint)
    assert shown == [
        f"(hint {n} of 3) {text}" for n, text in ((1, tiers[0]), (2, tiers[1]), (3, tiers[2]), (3, tiers[2]))
    ]
    assert_nothing_left(engine)
