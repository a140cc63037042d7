"""workbook.swarm's swarm bookkeeping with a fake `sh`, and its parsing of what the CLI and /proc/net print:
no engine needed."""

from __future__ import annotations

import json

import pytest

from workbook import swarm
from workbook.shell import Result
from workbook.swarm import ContainerRow, parse_proc_net, parse_ps, parse_replicas

# --- parsing the CLI -------------------------------------------------------------------------------------


def test_parse_ps_reads_state_and_health():
    rows = parse_ps(
        "abc\trunning\tUp 5 seconds (healthy)\n"
        "def\trunning\tUp 2 seconds (health: starting)\n"
        "123\texited\tExited (137) 3 seconds ago\n"
        "456\trunning\tUp 1 minute (unhealthy)\n"
        "garbage line\n"
    )
    assert [(r.id, r.state, r.health) for r in rows] == [
        ("abc", "running", "healthy"),
        ("def", "running", "starting"),
        ("123", "exited", ""),
        ("456", "running", "unhealthy"),
    ]


def test_parse_replicas():
    out = "ch09_api 3/3\nch09_cache 0/1\nch09_proxy 1/1 (max 1 per node)\n"
    assert parse_replicas(out) == {"ch09_api": (3, 3), "ch09_cache": (0, 1), "ch09_proxy": (1, 1)}


PROC_NET_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0949 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:1F0A 0100007F:0949 01 00000000:00000000 00:00000000 00000000     0        0 3 1
"""
PROC_NET_UDP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 00000000000000000000000000000000:12B5 00000000000000000000000000000000:0000 07 00000000:00000000
   1: 00000000000000000000000001000000:1F0A 00000000000000000000000000000000:0000 07 00000000:00000000
"""


def test_parse_proc_net_keeps_listening_tcp_and_all_udp():
    assert parse_proc_net(PROC_NET_TCP, "tcp") == [("tcp", "127.0.0.1", 2377), ("tcp", "0.0.0.0", 2024)]
    udp6 = parse_proc_net(PROC_NET_UDP6, "udp6")
    assert udp6[0] == ("udp6", "::", 4789)
    assert udp6[1][1] == "0000:0000:0000:0000:0000:0000:0000:0001" and swarm.is_loopback(udp6[1][1])
    assert not swarm.is_loopback("0.0.0.0") and swarm.is_loopback("127.0.0.1")


# --- swarm bookkeeping, with a fake sh ---------------------------------------------------------------------


class FakeDocker:
    """Answers the few commands the helpers run, and records them."""

    def __init__(self, state="inactive", labels="{}", manager="true"):
        self.state, self.labels, self.manager, self.commands = state, labels, manager, []

    def __call__(self, command, **kwargs):
        self.commands.append(command)
        if "LocalNodeState" in command:
            out = self.state
        elif "ControlAvailable" in command:
            out = self.manager
        elif "NodeID" in command:
            out = "node1"
        elif "node inspect" in command:
            out = self.labels
        elif command.startswith("docker swarm init"):
            self.state = "active"
            out = "Swarm initialized: current node (node1) is now a manager.\n\nTo add a worker..."
        elif command.startswith("docker swarm leave"):
            self.state = "inactive"
            out = "Node left the swarm."
        else:
            out = ""
        return Result(command, 0, out, 0.0)


@pytest.fixture()
def fake(monkeypatch):
    def make(**kwargs):
        docker = FakeDocker(**kwargs)
        monkeypatch.setattr(swarm, "sh", docker)
        return docker

    return make


def test_ensure_swarm_inits_on_loopback_and_marks_the_node(fake):
    docker = fake()
    assert swarm.ensure_swarm() is True
    init = next(c for c in docker.commands if c.startswith("docker swarm init"))
    assert "--advertise-addr 127.0.0.1" in init and "--listen-addr 127.0.0.1:2377" in init
    assert any(f"--label-add {swarm.NODE_LABEL}=initialised node1" in c for c in docker.commands)


def test_a_swarm_someone_else_made_is_used_and_never_left(fake):
    docker = fake(state="active", labels='{"zone": "a"}')
    assert swarm.ensure_swarm() is False
    swarm.leave_swarm(False)
    swarm.leave_swarm(None)  # asks the node: not ours either
    assert not any("swarm init" in c or "swarm leave" in c for c in docker.commands)


def test_a_swarm_from_an_interrupted_run_is_recognised_and_left(fake):
    docker = fake(state="active", labels=json.dumps({swarm.NODE_LABEL: "initialised"}))
    assert swarm.ensure_swarm() is True
    swarm.leave_swarm(None)
    assert "docker swarm leave --force" in docker.commands
    assert docker.state == "inactive"


def test_a_worker_node_cannot_deploy(fake):
    fake(state="active", manager="false")
    with pytest.raises(swarm.NotAManager):
        swarm.ensure_swarm()


def test_watch_replacement_sees_each_step(monkeypatch):
    frames = iter(
        [
            [ContainerRow("old", "running", "Up (unhealthy)"), ContainerRow("b", "running", "Up (healthy)")],
            [ContainerRow("old", "exited", "Exited (137)"), ContainerRow("b", "running", "Up (healthy)")],
            [
                ContainerRow("old", "exited", "Exited (137)"),
                ContainerRow("b", "running", "Up (healthy)"),
                ContainerRow("new", "running", "Up (health: starting)"),
            ],
            [
                ContainerRow("old", "exited", "Exited (137)"),
                ContainerRow("b", "running", "Up (healthy)"),
                ContainerRow("new", "running", "Up (healthy)"),
            ],
        ]
    )
    first = [ContainerRow("old", "running", "Up (healthy)"), ContainerRow("b", "running", "Up (healthy)")]
    calls = iter([first])
    monkeypatch.setattr(swarm, "service_containers", lambda service: next(calls, None) or next(frames))
    events = swarm.watch_replacement("svc", "old", replicas=2, poll=0)
    assert list(events) == ["unhealthy", "stopped", "replacement started", "all healthy again"]


def test_remove_stack_removes_task_containers_its_service_left_behind(monkeypatch):
    """A run killed mid-deploy leaves containers in "Created" with no service: nothing else reaps them."""
    containers = {"c1", "c2"}
    commands = []

    def docker(command, **kwargs):
        commands.append(command)
        out = ""
        if command.startswith("docker ps -aq") and "xargs" not in command:
            out = "\n".join(sorted(containers))
        elif "xargs -r docker rm -f" in command:
            containers.clear()
        return Result(command, 0, out, 0.0)

    monkeypatch.setattr(swarm, "sh", docker)
    monkeypatch.setattr(swarm, "swarm_state", lambda: "active")
    assert swarm.remove_stack("ch09", timeout=5, poll=0.01) < 5
    assert not containers
    assert any("docker service ls -q --filter label=com.docker.stack.namespace=ch09" in c for c in commands)
