"""The Compose policy and the grader's rewrite of a stack, on normalised configurations (no engine)."""

from __future__ import annotations

import copy

import pytest

from grader.compose_file import for_grading, violations
from grader.spec import Limits

SUBMISSION = "/work/lab06"
# What `docker compose config --format json` gives for a stack like lab 06's (trimmed).
CONFIG = {
    "name": "p",
    "services": {
        "proxy": {
            "image": "nginx:1.27",
            "ports": [
                {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"}
            ],
            "volumes": [
                {
                    "type": "bind",
                    "source": f"{SUBMISSION}/proxy/default.conf",
                    "target": "/etc/nginx/conf.d/default.conf",
                }
            ],
            "networks": {"frontend": None},
        },
        "api": {
            "build": {"context": f"{SUBMISSION}/api", "dockerfile": "Dockerfile"},
            "environment": {"CACHE_TTL_S": "300"},
            "networks": {"frontend": None, "backend": None},
            "healthcheck": {"interval": "5s", "start_period": "30s"},
            "restart": "unless-stopped",
            "deploy": {"resources": {"limits": {"cpus": "4"}}},
        },
        "cache": {
            "image": "redis:7",
            "volumes": [{"type": "volume", "source": "cache-data", "target": "/data"}],
            "networks": {"backend": None},
            "healthcheck": {"test": ["CMD", "redis-cli", "ping"], "interval": "2s"},
        },
    },
    "networks": {"frontend": {"name": "p_frontend"}, "backend": {"name": "p_backend", "internal": True}},
    "volumes": {"cache-data": {"name": "p_cache-data"}},
}


def with_service(**changes):
    config = copy.deepcopy(CONFIG)
    config["services"]["api"].update(changes)
    return config


def test_the_lab_stack_is_allowed():
    assert violations(CONFIG, SUBMISSION) == []


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"privileged": True}, "privileged mode"),
        ({"network_mode": "host"}, "host's network namespace"),
        ({"pid": "host"}, "host's pid namespace"),
        ({"ipc": "host"}, "host's ipc namespace"),
        ({"cap_add": ["SYS_ADMIN"]}, "adds capabilities (cap_add: SYS_ADMIN)"),
        ({"devices": [{"source": "/dev/kmsg", "target": "/dev/kmsg"}]}, "maps host devices"),
        ({"security_opt": ["seccomp:unconfined"]}, "security profile"),
        (
            {"volumes": [{"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}]},
            "mounts the Docker socket",
        ),
        ({"volumes": [{"type": "bind", "source": "/etc", "target": "/host-etc"}]}, "outside the submission (/etc)"),
        (
            {"volumes": [{"type": "bind", "source": f"{SUBMISSION}/../secrets", "target": "/s"}]},
            "outside the submission",
        ),
        (
            {"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"], "driver": "nvidia"}]}}}},
            "only the GPU lab may",
        ),
        ({"build": {"context": ".", "network": "host"}}, "builds on the host's network"),
    ],
)
def test_what_could_reach_the_host_is_refused(changes, words):
    found = violations(with_service(**changes), SUBMISSION)
    assert len(found) == 1 and "service 'api'" in found[0] and words in found[0], found


def test_a_gpu_reservation_is_allowed_where_the_lab_allows_it():
    gpu = {"deploy": {"resources": {"reservations": {"devices": [{"capabilities": ["gpu"]}]}}}}
    assert violations(with_service(**gpu), SUBMISSION, allow_gpu=True) == []


def test_a_volume_named_like_the_socket_in_a_bind_inside_the_submission_is_still_refused():
    sock = {"volumes": [{"type": "bind", "source": f"{SUBMISSION}/docker.sock", "target": "/x"}]}
    assert any("Docker socket" in v for v in violations(with_service(**sock), SUBMISSION))


LABELS = {"org.mlcontainers.grader": "s1"}
LIMITS = Limits(cpus=1.0, memory_mb=512, pids=128)


def test_every_object_carries_the_session_label():
    config = for_grading(CONFIG, LABELS, LIMITS).config
    assert all(s["labels"] == LABELS for s in config["services"].values())
    assert config["services"]["api"]["build"]["labels"] == LABELS  # so the built image is removed too
    assert all(n["labels"] == LABELS for n in config["networks"].values())
    assert config["volumes"]["cache-data"]["labels"] == LABELS


def test_limits_and_no_new_privileges_replace_the_learners_own():
    api = for_grading(CONFIG, LABELS, LIMITS).config["services"]["api"]
    assert (api["cpus"], api["mem_limit"], api["pids_limit"]) == (1.0, "512m", 128)
    assert "limits" not in api["deploy"]["resources"]  # Compose refuses both cpus and deploy limits
    assert "no-new-privileges:true" in api["security_opt"]
    assert "restart" not in api  # a crash must show as a crash


def test_ports_move_to_loopback_and_a_free_port_and_what_was_asked_is_kept():
    grading = for_grading(with_service(ports=[{"target": 8000, "published": "8000", "host_ip": ""}]), LABELS, LIMITS)
    for service in grading.config["services"].values():
        for port in service.get("ports", []):
            assert (port["host_ip"], port["published"]) == ("127.0.0.1", "")
    asked = {(p.service, p.target, p.host_ip, p.published) for p in grading.published}
    assert asked == {("proxy", 80, "127.0.0.1", "8080"), ("api", 8000, "", "8000")}


def test_healthchecks_are_polled_every_second_and_keep_their_test():
    services = for_grading(CONFIG, LABELS, LIMITS).config["services"]
    assert services["cache"]["healthcheck"] == {"test": ["CMD", "redis-cli", "ping"], "interval": "1s"}
    assert services["api"]["healthcheck"]["interval"] == "1s"  # no test: the image's own HEALTHCHECK
    disabled = for_grading(with_service(healthcheck={"disable": True}), LABELS, LIMITS).config
    assert disabled["services"]["api"]["healthcheck"] == {"disable": True}


def test_networks_lose_nat_but_internal_ones_stay_as_they_are():
    networks = for_grading(CONFIG, LABELS, LIMITS).config["networks"]
    assert networks["frontend"]["driver_opts"] == {"com.docker.network.bridge.enable_ip_masquerade": "false"}
    assert "driver_opts" not in networks["backend"]


def test_the_learners_config_is_not_changed_and_built_services_are_listed():
    before = copy.deepcopy(CONFIG)
    grading = for_grading(CONFIG, LABELS, LIMITS)
    assert CONFIG == before
    assert grading.built == ["api"]
