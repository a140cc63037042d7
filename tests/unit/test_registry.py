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


class NeedsALabFact(Check):
    """A check with a lab fact it cannot know itself (not registered: a fixture of the tests below)."""

    name = "NeedsALabFact"
    category = "http"
    title = "Answers the lab's request"
    hint = ""
    default_params = {"timeout_s": 10}
    required_params = {"body": "the JSON body of the lab's request", "header": "the answer's header to read"}


def test_a_missing_required_param_names_the_check_the_key_and_what_it_is():
    with pytest.raises(SpecError) as err:
        NeedsALabFact(CheckSpec("NeedsALabFact", params={"header": "X-Cache"}))
    assert str(err.value).splitlines()[0] == (
        "check NeedsALabFact: lab.yaml must give the param(s) 'body' (the JSON body of the lab's request)"
    )
    assert "params:" in err.value.hint


def test_required_params_are_known_params_and_defaults_still_apply():
    check = NeedsALabFact(CheckSpec("NeedsALabFact", params={"body": {}, "header": "X-Cache"}))
    assert check.params == {"timeout_s": 10, "body": {}, "header": "X-Cache"}
    with pytest.raises(SpecError, match="unknown param"):
        NeedsALabFact(CheckSpec("NeedsALabFact", params={"body": {}, "header": "X", "headr": "X"}))


SHIPPED_SPECS = sorted(REPO_ROOT.glob("labs/*/lab.yaml")) + sorted(REPO_ROOT.glob("solutions/*/lab.yaml"))


@pytest.mark.parametrize("path", SHIPPED_SPECS, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}")
def test_every_shipped_lab_gives_every_check_its_required_params(path):
    for selected in load_spec(path).checks:
        registry.get(selected.check)(selected)  # a SpecError names the check and the missing param


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
