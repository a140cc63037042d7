"""Chapter 9: the stack's API and cache as Kubernetes manifests, each field taken from the swarm stack file
(workbook.compose_to_stack), and the Compose units converted to Kubernetes' own.

    manifests = kubernetes_manifests(stack, read_env_file(lab / ".env"), api_image="workbook/ch09-api:2")
    write_manifests(manifests, build / "k8s")   # one YAML file per object, checked by kubernetes_validate
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from workbook.plain_yaml import to_yaml


def duration_s(value: str | int | float) -> int:
    """A Compose duration ("2s", "1m30s", "500ms") in whole seconds, at least 1 (what probes accept)."""
    if isinstance(value, int | float):
        return max(1, math.ceil(value))
    total = 0.0
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", value):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}[unit]
    return max(1, math.ceil(total))


def k8s_cpu(value: str | float) -> str:
    """Compose `cpus: "0.5"` -> Kubernetes "500m" (thousandths of a CPU)."""
    return f"{round(float(value) * 1000)}m"


def k8s_memory(value: str) -> str:
    """Compose/Docker memory ("256M", "1g", "512m") -> Kubernetes ("256Mi", "1Gi"): Docker's units are binary."""
    found = re.fullmatch(r"(\d+)\s*([bkmg]?)b?", str(value).strip().lower())
    if not found:
        raise ValueError(f"not a Docker memory size: {value!r}")
    number, unit = found.groups()
    return number + {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi"}[unit]


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an env file (comments and blank lines skipped), as Compose reads them."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def _probe(health: dict, path: str, port: int, failures: int | None = None) -> dict:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": duration_s(health.get("interval", "10s")),
        "timeoutSeconds": duration_s(health.get("timeout", "3s")),
        "failureThreshold": failures or int(health.get("retries", 3)),
    }


def kubernetes_manifests(
    stack: dict,
    env: dict[str, str],
    *,
    api_image: str,
    api_port: int = 8000,
    health_path: str = "/health",
    cache_storage: str = "1Gi",
    max_replicas: int = 10,
) -> dict[str, dict]:
    """The stack's API and cache as Kubernetes objects, {file name: manifest}, each field taken from the stack.

    The nginx proxy has no counterpart: a Service spreads requests over the ready pods itself, and an
    Ingress (which needs an ingress controller in the cluster) is the entry from outside.
    """
    api = stack["services"]["api"]
    deploy, health = api.get("deploy", {}), api.get("healthcheck", {})
    limits = deploy.get("resources", {}).get("limits", {})
    requests = deploy.get("resources", {}).get("reservations", {})
    update = deploy.get("update_config", {})
    start_first = update.get("order") == "start-first"
    app = {"app.kubernetes.io/name": "iris", "app.kubernetes.io/component": "api"}
    cache_labels = {"app.kubernetes.io/name": "iris", "app.kubernetes.io/component": "cache"}
    interval = duration_s(health.get("interval", "10s"))
    startup = max(1, math.ceil(duration_s(health.get("start_period", "0s")) / interval))

    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "api-config"}, "data": dict(env)}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "labels": app},
        "spec": {
            "replicas": int(deploy.get("replicas", 1)),
            "selector": {"matchLabels": app},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {
                    "maxSurge": int(update.get("parallelism", 1)) if start_first else 0,
                    "maxUnavailable": 0 if start_first else int(update.get("parallelism", 1)),
                },
            },
            "minReadySeconds": duration_s(update.get("delay", "0s")),
            "revisionHistoryLimit": 5,
            "template": {
                "metadata": {"labels": app},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "runAsGroup": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "terminationGracePeriodSeconds": duration_s(api.get("stop_grace_period", "10s")) + 5,
                    "containers": [
                        {
                            "name": "api",
                            "image": api_image,
                            "imagePullPolicy": "IfNotPresent",
                            "ports": [{"name": "http", "containerPort": api_port}],
                            "envFrom": [{"configMapRef": {"name": "api-config"}}],
                            "resources": {
                                "requests": {
                                    "cpu": k8s_cpu(requests.get("cpus", "0.1")),
                                    "memory": k8s_memory(requests.get("memory", "128M")),
                                },
                                "limits": {
                                    "cpu": k8s_cpu(limits.get("cpus", "1")),
                                    "memory": k8s_memory(limits.get("memory", "512M")),
                                },
                            },
                            "startupProbe": _probe(health, health_path, api_port, failures=startup),
                            # Readiness takes a pod out of the Service (cheap, undone when it answers again);
                            # liveness restarts it (costly): give liveness more slack before it acts.
                            "readinessProbe": _probe(health, health_path, api_port),
                            "livenessProbe": _probe(
                                health, health_path, api_port, failures=2 * int(health.get("retries", 3))
                            ),
                            # The pod leaves the Service's endpoints while it gets SIGTERM, in parallel: wait a
                            # few seconds before stopping, so that no request is routed to a closing pod.
                            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    api_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "api", "labels": app},
        "spec": {"selector": app, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "api"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
            "minReplicas": int(deploy.get("replicas", 1)),
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "iris"},
        "spec": {
            "rules": [
                {
                    "host": "iris.localhost",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "api", "port": {"name": "http"}}},
                            }
                        ]
                    },
                }
            ]
        },
    }

    cache = stack["services"]["cache"]
    cache_health = cache.get("healthcheck", {})
    cache_limits = cache.get("deploy", {}).get("resources", {}).get("limits", {})
    volume_target = next((v.split(":")[1] for v in cache.get("volumes", []) if isinstance(v, str)), "/data")
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "cache", "labels": cache_labels},
        "spec": {
            "serviceName": "cache",
            "replicas": 1,
            "selector": {"matchLabels": cache_labels},
            "template": {
                "metadata": {"labels": cache_labels},
                "spec": {
                    "containers": [
                        {
                            "name": "redis",
                            "image": cache["image"],
                            "args": list(cache.get("command", [])),
                            "ports": [{"name": "redis", "containerPort": 6379}],
                            "readinessProbe": {
                                "exec": {
                                    "command": [
                                        c for c in cache_health.get("test", ["redis-cli", "ping"]) if c != "CMD"
                                    ]
                                },
                                "periodSeconds": duration_s(cache_health.get("interval", "5s")),
                                "timeoutSeconds": duration_s(cache_health.get("timeout", "2s")),
                            },
                            "resources": {
                                "requests": {"cpu": "50m", "memory": "64Mi"},
                                "limits": {
                                    "cpu": k8s_cpu(cache_limits.get("cpus", "0.5")),
                                    "memory": k8s_memory(cache_limits.get("memory", "256M")),
                                },
                            },
                            "volumeMounts": [{"name": "data", "mountPath": volume_target}],
                        }
                    ]
                },
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": cache_storage}}},
                }
            ],
        },
    }
    cache_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "cache", "labels": cache_labels},
        "spec": {
            "clusterIP": "None",
            "selector": cache_labels,
            "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}],
        },
    }
    # The Compose `backend` network is internal: only the API reaches Redis. In Kubernetes every pod can
    # reach every pod unless a NetworkPolicy (enforced by the cluster's network plugin) says otherwise.
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "cache-from-api-only"},
        "spec": {
            "podSelector": {"matchLabels": cache_labels},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": {"matchLabels": app}}], "ports": [{"protocol": "TCP", "port": 6379}]}
            ],
        },
    }
    return {
        "10-api-configmap.yaml": config_map,
        "20-api-deployment.yaml": deployment,
        "21-api-service.yaml": api_service,
        "22-api-hpa.yaml": hpa,
        "30-cache-statefulset.yaml": statefulset,
        "31-cache-service.yaml": cache_service,
        "32-cache-networkpolicy.yaml": policy,
        "40-ingress.yaml": ingress,
    }


def write_manifests(manifests: dict[str, dict], folder: Path) -> list[Path]:
    """Write each manifest as YAML into `folder` (emptied of earlier .yaml files first); return the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.yaml"):
        old.unlink()
    paths = []
    for name, manifest in manifests.items():
        path = folder / name
        path.write_text(to_yaml(manifest))
        paths.append(path)
    return paths
