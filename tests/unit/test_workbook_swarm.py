"""workbook.swarm's pure parts (CLI output parsing, the Compose-to-stack rewrite, the Kubernetes manifests
checked by the real schema validator, unit conversions), its request-loop script against a local HTTP
server on 127.0.0.1, and its swarm bookkeeping with a fake `sh`: no engine needed."""

from __future__ import annotations

import http.server
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from grader.spec import REPO_ROOT
from workbook import swarm
from workbook.shell import Result
from workbook.swarm import (
    LOAD_SCRIPT,
    ContainerRow,
    duration_s,
    k8s_cpu,
    k8s_memory,
    kubernetes_manifests,
    load_summary,
    parse_load,
    parse_proc_net,
    parse_ps,
    parse_replicas,
    read_env_file,
    stack_from_compose,
    to_yaml,
    write_manifests,
)

LAB = REPO_ROOT / "solutions/06-compose-stack"


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


# --- the request loop ------------------------------------------------------------------------------------


def test_load_summary_counts_failures_versions_and_replicas():
    samples = [
        {"t": 0.0, "status": 200, "version": "1", "served_by": "a", "ms": 5},
        {"t": 0.1, "status": 200, "version": "2", "served_by": "b", "ms": 7},
        {"t": 0.2, "status": 502, "error": "HTTP 502", "ms": 3},
        {"t": 0.3, "status": 0, "error": "TimeoutError: timed out", "ms": 10000},
        {"t": 0.4, "status": 200, "version": "2", "served_by": "b", "ms": 6},
    ]
    s = load_summary(samples)
    assert (s["requests"], s["failed"]) == (5, 2)
    assert s["by_version"] == {"1": 1, "2": 2} and s["by_replica"] == {"a": 1, "b": 2}
    assert s["max_ms"] == 10000 and s["errors"] == ["HTTP 502", "TimeoutError: timed out"]


def test_parse_load_takes_the_json_line_and_explains_when_missing():
    assert parse_load('noise\n{"url": "u", "samples": [{"t": 1}]}\n') == [{"t": 1}]
    with pytest.raises(ValueError, match="no JSON"):
        parse_load("Traceback ...\n")


class Versioned(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        status = 500 if self.path == "/broken" else 200
        self.send_response(status)
        self.send_header("X-App-Version", "7")
        self.send_header("X-Served-By", "replica-a")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def local_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Versioned)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_load_script_records_answers_and_reports_on_sigterm(tmp_path, local_server):
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    proc = subprocess.Popen(
        [sys.executable, str(script), f"{local_server}/health", "30", "0.01", "3"], stdout=subprocess.PIPE, text=True
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    samples = parse_load(out)
    assert len(samples) >= 3
    assert all(s["status"] == 200 and s["version"] == "7" and s["served_by"] == "replica-a" for s in samples)


def test_load_script_stops_by_itself_and_counts_http_errors(tmp_path, local_server):
    script = tmp_path / "load.py"
    script.write_text(LOAD_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), f"{local_server}/broken", "0.3", "0.01"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    samples = parse_load(done.stdout)
    assert samples and all(s["status"] == 500 and s["error"] == "HTTP 500" for s in samples)
    assert load_summary(samples)["failed"] == len(samples)


def test_timeline_draws_versions_failures_and_events():
    samples = [
        {
            "t": 100 + i / 10,
            "status": 200 if i % 7 else 0,
            "version": "1" if i < 20 else "2",
            "served_by": "a",
            "ms": 5 + i,
        }
        for i in range(40)
    ]
    fig = swarm.timeline(samples, "update", events={"deploy": 101.0}, bin_s=0.5)
    top, bottom = fig.axes
    assert {t.get_text() for t in top.get_legend().get_texts()} == {"version 1", "version 2", "failed"}
    assert any("deploy" in t.get_text() for t in top.texts)


# --- Compose file -> stack file --------------------------------------------------------------------------


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
    merged = swarm.deep_merge(base, {"a": {"b": 2}, "d": 3})
    assert merged == {"a": {"b": 2, "c": [1]}, "d": 3} and base == {"a": {"b": 1, "c": [1]}}


# --- Kubernetes ------------------------------------------------------------------------------------------


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
    stack, _ = lab_stack(DEPLOY)
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
    stack, _ = lab_stack({"api": {"deploy": {"replicas": 2, "update_config": {"order": "stop-first"}}}})
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
    assert to_yaml({"b": 1, "a": 2}).startswith("b: 1")


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
