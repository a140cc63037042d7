"""The check registry a lab's spec selects checks from."""

from __future__ import annotations

import pytest

from grader.checks import Check, Outcome, registry
from grader.checks.base import CheckRegistry
from grader.errors import SpecError
from grader.spec import REPO_ROOT, CheckSpec, load_spec

LAB01_SPEC = REPO_ROOT / "solutions" / "01-first-model-container" / "lab.yaml"


def test_every_check_of_lab01_is_registered_and_instantiates():
    spec = load_spec(LAB01_SPEC)
    for selected in spec.checks:
        cls = registry.get(selected.check)
        assert cls.name == selected.check
        check = cls(selected)
        assert check.title and check.category and check.learner_hint
        assert type(check).run is not Check.run, f"{selected.check} does not implement run()"


def test_registry_names_are_sorted_and_include_lab01_checks():
    names = registry.names()
    assert names == sorted(names)
    assert {c.check for c in load_spec(LAB01_SPEC).checks} <= set(names)


def test_unknown_check_names_it_and_lists_the_known_ones():
    with pytest.raises(SpecError) as err:
        registry.get("ImageSizeBudgett")
    text = str(err.value)
    assert "'ImageSizeBudgett'" in text
    assert "ImageSizeBudget," in text or text.endswith("ImageSizeBudget")
    assert "DockerfileLint" in text


def test_unknown_param_names_it_and_the_known_ones():
    cls = registry.get("DockerfileLint")
    with pytest.raises(SpecError) as err:
        cls(CheckSpec("DockerfileLint", params={"treshold": "error"}))
    assert "treshold" in str(err.value)
    assert "failure_threshold" in str(err.value)


def test_a_check_without_params_refuses_any_param():
    cls = registry.get("ImageBuilds")
    with pytest.raises(SpecError, match="ImageBuilds"):
        cls(CheckSpec("ImageBuilds", params={"anything": 1}))


def test_params_override_defaults_and_keep_the_rest():
    check = registry.get("DockerfileLint")(CheckSpec("DockerfileLint", params={"failure_threshold": "error"}))
    assert check.params == {"failure_threshold": "error", "ignore": []}


def test_spec_hint_overrides_the_default_hint():
    cls = registry.get("PortExposed")
    assert cls(CheckSpec("PortExposed")).learner_hint == cls.hint
    assert cls(CheckSpec("PortExposed", hint="Use port 8080.")).learner_hint == "Use port 8080."


def test_registering_a_duplicate_name_raises():
    class AnotherImageBuilds(Check):
        name = "ImageBuilds"
        category = "build"
        title = "Impostor"
        hint = ""

    before = registry.get("ImageBuilds")
    with pytest.raises(ValueError, match="ImageBuilds"):
        registry.register(AnotherImageBuilds)
    assert registry.get("ImageBuilds") is before


def test_a_fresh_registry_registers_and_returns_a_check():
    local = CheckRegistry()

    @local.register
    class AlwaysPasses(Check):
        name = "AlwaysPasses"
        category = "demo"
        title = "Always passes"
        hint = ""

        def run(self, ctx):
            return Outcome.passed("fine")

    assert local.names() == ["AlwaysPasses"]
    assert local.get("AlwaysPasses") is AlwaysPasses
    with pytest.raises(ValueError):
        local.register(AlwaysPasses)
