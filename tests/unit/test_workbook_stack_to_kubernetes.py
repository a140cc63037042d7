"""workbook.stack_to_kubernetes: the stack's manifests checked by the real schema validator, the values they
carry over from the stack file, and the unit conversions."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest
import yaml

from grader.spec import REPO_ROOT
from workbook.compose_to_stack import stack_from_compose
from workbook.stack_to_kubernetes import (
    duration_s,
    k8s_cpu,
    k8s_memory,
    kubernetes_manifests,
    read_env_file,
    write_manifests,
)

LAB = REPO_ROOT / "solutions/06-compose-stack"


def lab_stack(overrides):
    compose = yaml.safe_load((LAB / "compose.yaml").read_text())
    stack, _ = stack_from_compose(
        compose, LAB, images={"api": "workbook/ch09-api:${API_TAG:-1}"}, overrides=overrides, attachable=("frontend",)
    )
    return stack


@pytest.mark.parametrize(("value", "seconds"), [("2s", 2), ("1m30s", 90), ("500ms", 1), ("2.5s", 3), (7, 7)])
def test_duration_s(value, seconds):
    assert duration_s(value) == seconds


def test_resource_units():
    assert k8s_cpu("0.5") == "500m" and k8s_cpu(2) == "2000m"
    assert k8s_memory("256M") == "256Mi" and k8s_memory("1g") == "1Gi" and k8s_memory("512mb") == "512Mi"
    with pytest.raises(ValueError):
        k8s_memory("lots")


def test_read_env_file_skips_comments():
    assert read_env_file(LAB / ".env") == {
        "REDIS_URL": "redis://cache:6379/0",
        "CACHE_TTL_S": "300",
        "LOG_LEVEL": "INFO",
    }


DEPLOY = {
    "api": {
        "healthcheck": {"interval": "2s", "timeout": "2s", "retries": 3, "start_period": "30s"},
        "stop_grace_period": "5s",
        "deploy": {
            "replicas": 3,
            "update_config": {"parallelism": 1, "delay": "2s", "order": "start-first"},
            "resources": {
                "limits": {"cpus": "0.5", "memory": "256M"},
                "reservations": {"cpus": "0.1", "memory": "128M"},
            },
        },
    }
}


def manifests():
    stack = lab_stack(DEPLOY)
    return kubernetes_manifests(stack, read_env_file(LAB / ".env"), api_image="workbook/ch09-api:2")


def test_every_manifest_passes_the_strict_kubernetes_schema():
    checked = {
        name: kubernetes_validate.validate(manifest, kubernetes_validate.latest_version(), strict=True)
        for name, manifest in manifests().items()
    }
    assert len(checked) == 8  # validate() raises on the first error; it returns the version it checked against


def test_the_deployment_carries_the_stack_values():
    m = manifests()
    spec = m["20-api-deployment.yaml"]["spec"]
    container = spec["template"]["spec"]["containers"][0]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert container["readinessProbe"]["periodSeconds"] == 2
    assert container["startupProbe"]["failureThreshold"] == 15
    assert container["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert spec["template"]["spec"]["securityContext"]["runAsUser"] == 10001
    assert m["10-api-configmap.yaml"]["data"]["CACHE_TTL_S"] == "300"
    assert m["30-cache-statefulset.yaml"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "redis-server",
        "--appendonly",
        "yes",
    ]


def test_a_stop_first_update_maps_to_max_unavailable():
    stack = lab_stack({"api": {"deploy": {"replicas": 2, "update_config": {"order": "stop-first"}}}})
    spec = kubernetes_manifests(stack, {}, api_image="x")["20-api-deployment.yaml"]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 0, "maxUnavailable": 1}


def test_the_validator_rejects_a_string_replicas_and_strict_mode_a_misspelled_field():
    deployment = json.loads(json.dumps(manifests()["20-api-deployment.yaml"]))
    deployment["spec"]["replicas"] = "3"
    with pytest.raises(kubernetes_validate.ValidationError, match="is not of type 'integer'"):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version())
    deployment["spec"]["replicas"] = 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    kubernetes_validate.validate(deployment, kubernetes_validate.latest_version())  # lax: passes
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


def test_write_manifests_replaces_old_files_and_writes_no_yaml_anchors(tmp_path):
    (tmp_path / "99-old.yaml").write_text("stale")
    paths = write_manifests(manifests(), tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == sorted(p.name for p in paths)
    text = (tmp_path / "20-api-deployment.yaml").read_text()
    assert "&id" not in text and "*id" not in text
    assert yaml.safe_load(text)["kind"] == "Deployment"
