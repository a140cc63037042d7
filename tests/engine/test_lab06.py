"""Lab 06 graded for real: seeded defects in a copy of the reference stack are each caught by the check
meant for them, with a hint naming the fix, and a Compose file that could reach the host is refused before
anything starts. (tests/engine/test_labs.py grades the solution and the starter.)"""

from __future__ import annotations

import dataclasses
import re

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["06"]
SOLUTION = SPEC.path

# Each defect: edits applied to a copy of the solution (file, old text or regex, new text), the check
# that must catch it, and words its message, evidence or hint must contain. Only that check is graded.
DEFECTS = {
    "a fixed container_name on the API stops --scale": (
        [("compose.yaml", "    build: ./api\n", "    build: ./api\n    container_name: iris-api\n")],
        "RequestsSpreadAcrossReplicas",
        ["--scale api=3", "container_name"],
    ),
    "a curl healthcheck in an image without curl never gets healthy": (
        [
            (
                "compose.yaml",
                "      # The image's own check (python + urllib), polled more often so `up --wait` returns sooner.\n",
                '      test: ["CMD", "curl", "-f", "http://127.0.0.1:8000/health"]\n',
            )
        ],
        "StackBecomesHealthy",
        ["failed while starting", "unhealthy", "healthcheck"],
    ),
    "a setting baked into the image with ENV": (
        [("api/Dockerfile", "USER 10001:10001\n", "ENV CACHE_TTL_S=300\nUSER 10001:10001\n")],
        "ConfigFromEnvFile",
        ["sets CACHE_TTL_S=300 itself", "Remove ENV CACHE_TTL_S"],
    ),
    "a setting written into the Compose file overrides the env file": (
        [("compose.yaml", "    env_file: .env\n", "    env_file: .env\n    environment:\n      CACHE_TTL_S: '300'\n")],
        "ConfigFromEnvFile",
        ["service reports cache_ttl_s=300", "environment:"],
    ),
    "Redis on the frontend network too": (
        [("compose.yaml", "    networks: [backend]\n", "    networks: [backend, frontend]\n")],
        "InternalServiceIsolated",
        ["not internal", "internal: true"],
    ),
    "the cache keeps its data in the container": (
        [("compose.yaml", "    volumes:\n      - cache-data:/data\n", "")],
        "DataSurvivesRestart",
        ["after `docker compose down, then up` the cache was empty", "named volume"],
    ),
    "the API starts as soon as Redis' container starts": (
        [
            (
                "compose.yaml",
                re.compile(r"    depends_on:\n      cache:\n        condition: service_healthy\n"),
                "    depends_on: [cache]\n",
            )
        ],
        "StartsAfterDependencyHealthy",
        ["BEFORE 'cache' was healthy", "condition: service_healthy"],
    ),
}


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one stack and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, words = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), only(check_id), engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message)
    said = caught.hint + caught.message + caught.evidence
    assert all(word in said for word in words), (words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)


def test_a_failed_build_leaves_no_container_behind(engine, tmp_path):
    broken = apply_defect(SOLUTION, tmp_path, [("api/Dockerfile", "RUN python train.py\n", "RUN exit 3\n")])
    before = {c.id for c in engine.client.containers.list(all=True)}
    result = grade(broken, only("StackBecomesHealthy"), engine=engine)
    assert "failed while building the images" in results_by_check(result)["StackBecomesHealthy"].message
    assert {c.id for c in engine.client.containers.list(all=True)} <= before  # the failed step's container too
    assert_nothing_left(engine)


REFUSED = {
    "privileged mode": ("    build: ./api\n", "    build: ./api\n    privileged: true\n", "privileged mode"),
    "the Docker socket": (
        "      - cache-data:/data\n",
        "      - cache-data:/data\n      - /var/run/docker.sock:/var/run/docker.sock\n",
        "mounts the Docker socket",
    ),
    "the host's network": (
        "    build: ./api\n",
        "    build: ./api\n    network_mode: host\n",
        "host's network namespace",
    ),
    "a host path outside the submission": (
        "      - cache-data:/data\n",
        "      - cache-data:/data\n      - /etc:/host-etc:ro\n",
        "outside the submission (/etc)",
    ),
    "added capabilities": ("    build: ./api\n", "    build: ./api\n    cap_add: [NET_ADMIN]\n", "cap_add: NET_ADMIN"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_a_stack_that_could_reach_the_host_is_refused_before_anything_starts(case, engine, tmp_path):
    old, new, words = REFUSED[case]
    if "network_mode" in new:  # a service on the host's network cannot also join the stack's networks
        old, new = "    networks: [frontend, backend]\n", "    network_mode: host\n"
    result = grade(apply_defect(SOLUTION, tmp_path, [("compose.yaml", old, new)]), SPEC, engine=engine)
    assert result.status == "invalid" and result.exit_code == 2 and result.tests == []
    assert "refuses to run this Compose file (nothing was started)" in result.message and words in result.message
    assert_nothing_left(engine)
    assert engine.project_objects(engine.name("stack")) == {"containers": 0, "networks": 0, "volumes": 0}
