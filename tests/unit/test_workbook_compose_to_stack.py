"""workbook.compose_to_stack: Lab 06's Compose file rewritten as a swarm stack file."""

from __future__ import annotations

from pathlib import Path

import yaml

from grader.spec import REPO_ROOT
from workbook.compose_to_stack import deep_merge, stack_from_compose

LAB = REPO_ROOT / "solutions/06-compose-stack"


def lab_stack(overrides=None):
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    return stack_from_compose(
        compose,
        LAB,
        images={"api": "workbook/ch09-api:${API_TAG:-1}"},
        overrides=overrides or {},
        attachable=("frontend",),
        labels={"owner": "test"},
    )


def test_stack_from_compose_drops_what_swarm_ignores_and_says_why():
    stack, notes = lab_stack()
    for service in stack["services"].values():
        assert not {"build", "depends_on", "container_name", "ports"} & set(service)
    assert stack["services"]["api"]["image"] == "workbook/ch09-api:${API_TAG:-1}"
    text = "\n".join(notes)
    assert "api: build: dropped" in text and "proxy: depends_on: dropped" in text and "proxy: ports" in text


def test_stack_from_compose_turns_file_mounts_into_configs_and_keeps_named_volumes():
    stack, _ = lab_stack()
    proxy = stack["services"]["proxy"]
    assert "volumes" not in proxy
    (config,) = proxy["configs"]
    assert config["target"] == "/etc/nginx/conf.d/default.conf"
    assert Path(stack["configs"][config["source"]]["file"]) == LAB / "proxy/default.conf"
    assert stack["services"]["cache"]["volumes"] == ["cache-data:/data"]
    assert stack["volumes"]["cache-data"]["labels"] == {"owner": "test"}
    assert stack["services"]["api"]["env_file"] == [str(LAB / ".env")]


def test_stack_from_compose_makes_overlay_networks_and_merges_overrides():
    stack, _ = lab_stack({"api": {"deploy": {"replicas": 3}, "healthcheck": {"interval": "2s"}}})
    assert stack["networks"]["frontend"] == {"driver": "overlay", "attachable": True, "labels": {"owner": "test"}}
    assert stack["networks"]["backend"]["internal"] is True and stack["networks"]["backend"]["driver"] == "overlay"
    api = stack["services"]["api"]
    assert api["deploy"]["replicas"] == 3
    assert api["healthcheck"] == {"interval": "2s", "start_period": "30s"}  # merged into the lab's
    assert api["labels"] == {"owner": "test"}


def test_deep_merge_does_not_touch_its_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    merged = deep_merge(base, {"a": {"b": 2}, "d": 3})
    assert merged == {"a": {"b": 2, "c": [1]}, "d": 3} and base == {"a": {"b": 1, "c": [1]}}
