"""Lab 06 graded for real: a failed build leaves no container behind, and a Compose file that could reach the
host is refused before anything starts. (The seeded defects are in tests/engine/defects/lab06.py;
tests/engine/test_labs.py grades the solution and starter.)"""

from __future__ import annotations

import dataclasses

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["06"]
SOLUTION = SPEC.path


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one stack and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


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
