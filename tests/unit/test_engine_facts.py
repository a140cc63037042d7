"""The engine report (grader/engine_facts.py) and doctor's findings from it, on recorded engine answers (no engine)."""

from __future__ import annotations

from grader.doctor import engine_findings
from grader.engine_facts import ENGINE_29_MIN_CLIENT_API, image_store, parse_report, version_tuple

# Recorded from `make engine`'s current engine (Debian's docker.io 28.5.2, containerd image store): the SDK's
# version() and info() (trimmed), and `docker version --format '{{json .Client}}'` of Debian's docker-cli 28.5.2.
CURRENT_VERSION = {
    "Platform": {"Name": ""},
    "Version": "28.5.2+dfsg4",
    "ApiVersion": "1.51",
    "MinAPIVersion": "1.24",
    "Os": "linux",
    "Arch": "amd64",
}
CURRENT_INFO = {
    "ServerVersion": "28.5.2+dfsg4",
    "Driver": "overlayfs",
    "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
    "CgroupVersion": "1",
}
CURRENT_CLIENT = {"Version": "28.5.2+dfsg4", "ApiVersion": "1.51", "DefaultAPIVersion": "1.51", "Context": "default"}
# Debian 12's docker.io 20.10.24 (ENGINE=legacy make engine): the classic image store on overlay2, and its client.
LEGACY_VERSION = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "MinAPIVersion": "1.12", "Os": "linux"}
LEGACY_INFO = {
    "ServerVersion": "20.10.24+dfsg1",
    "Driver": "overlay2",
    "DriverStatus": [
        ["Backing Filesystem", "extfs"],
        ["Supports d_type", "true"],
        ["Native Overlay Diff", "true"],
        ["userxattr", "false"],
    ],
    "CgroupVersion": "1",
}
LEGACY_CLIENT = {"Version": "20.10.24+dfsg1", "ApiVersion": "1.41", "DefaultAPIVersion": "1.41", "Context": "default"}


def test_versions_compare_as_numbers_whatever_the_packaging_suffix():
    assert version_tuple("28.5.2+dfsg4") == (28, 5, 2)
    assert version_tuple("v0.29.1") == (0, 29, 1)
    assert version_tuple("20.10.24+dfsg1") < version_tuple("23.0") <= version_tuple("23.0.0")
    assert version_tuple("") == ()


def test_the_containerd_store_is_told_by_its_snapshotter_not_by_the_driver_name():
    assert image_store(CURRENT_INFO) == "containerd"
    assert image_store(LEGACY_INFO) == "classic"
    assert image_store({"Driver": "overlay2"}) == "classic"


def test_a_current_engine_reports_its_versions_store_and_builder_and_no_limitation():
    report = parse_report(CURRENT_VERSION, CURRENT_INFO, CURRENT_CLIENT, "0.29.1+ds1")
    assert (report.server_version, report.api_version) == ("28.5.2+dfsg4", "1.51")
    assert (report.client_version, report.client_api_version) == ("28.5.2+dfsg4", "1.51")
    assert (report.image_store, report.storage_driver) == ("containerd", "overlayfs")
    assert report.buildx_version == "0.29.1+ds1"
    assert report.limitations == []
    text = str(report)
    assert "Docker Engine 28.5.2+dfsg4 (API 1.51)" in text and "containerd image store" in text
    assert "BuildKit through docker buildx 0.29.1+ds1" in text and "cannot" not in text


def test_engine_20_10_cannot_parse_heredocs_link_or_network_but_has_mounts_and_chmod():
    report = parse_report(LEGACY_VERSION, LEGACY_INFO, LEGACY_CLIENT, "0.29.1+ds1")
    assert report.image_store == "classic"
    features = " | ".join(lim.feature for lim in report.limitations)
    for missing in ("heredocs", "COPY --link", "RUN --network=none", "plain `docker build`"):
        assert missing in features
    assert "--mount" not in features and "--chmod" not in features
    engine_limits = [lim for lim in report.limitations if lim.needs.startswith("Engine")]
    assert all(lim.needs == "Engine 23.0 or later" and "make engine" in lim.fix for lim in engine_limits)


def test_a_client_below_api_1_44_is_told_that_engine_29_refuses_it():
    report = parse_report(LEGACY_VERSION, LEGACY_INFO, LEGACY_CLIENT, None)
    (client,) = [lim for lim in report.limitations if "Engine 29" in lim.feature]
    assert "API 1.41" in client.feature and ENGINE_29_MIN_CLIENT_API in client.needs and "docker-cli" in client.fix
    # A current engine behind an old client: the engine can do everything, the client still has to go.
    report = parse_report(CURRENT_VERSION, CURRENT_INFO, LEGACY_CLIENT, "0.29.1")
    assert [lim.feature for lim in report.limitations] == [client.feature]


def test_no_cli_at_all_reports_no_client_and_no_builder():
    report = parse_report(CURRENT_VERSION, CURRENT_INFO, None, None)
    assert report.client_version is None and report.buildx_version is None
    assert "no docker CLI on PATH" in str(report) and "no buildx plugin" in str(report)


def test_doctor_calls_missing_buildx_a_required_failure_with_make_engine_as_the_fix():
    report = parse_report(CURRENT_VERSION, CURRENT_INFO, CURRENT_CLIENT, None)
    findings = {f.name: f for f in engine_findings(report, "2")}
    buildkit = findings["BuildKit"]
    assert not buildkit.ok and buildkit.required
    assert buildkit.fix == "run 'make engine' (it links Debian's docker-buildx plugin)"
    assert findings["Engine"].ok and "cgroup v2" in findings["Engine"].detail


def test_doctor_reports_store_builder_and_each_limitation_of_an_old_engine_as_a_note():
    findings = engine_findings(parse_report(LEGACY_VERSION, LEGACY_INFO, LEGACY_CLIENT, "0.29.1+ds1"), "1")
    by_name = {f.name: f for f in findings}
    assert "Docker Engine 20.10.24+dfsg1 (API 1.41" in by_name["Engine"].detail
    assert "classic image store (overlay2" in by_name["Image store"].detail
    assert by_name["BuildKit"].ok and "0.29.1+ds1" in by_name["BuildKit"].detail
    limits = [f for f in findings if f.name == "Limitation"]
    assert len(limits) == 5  # four features of Engine 23 and the client Engine 29 refuses
    assert all(not f.ok and not f.required and f.fix for f in limits)
    assert any("heredocs" in f.detail and "needs Engine 23.0" in f.detail for f in limits)


def test_a_build_that_fails_on_an_old_engine_names_the_feature_and_the_version_it_needs():
    from grader.engine_facts import ENGINE_FEATURES, FEATURE_PATTERNS, too_old_for

    dockerfile = (
        "FROM python:3.11-slim\n"
        "COPY --link --chmod=0644 app/requirements.txt .\n"
        "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt\n"
        "RUN <<EOF\npython train.py\nEOF\n"
    )
    assert too_old_for(dockerfile, "20.10.24+dfsg1") == [
        "heredocs (RUN <<EOF ... EOF) needs Docker Engine 23.0 or later",
        "COPY --link needs Docker Engine 23.0 or later",
    ]
    assert too_old_for(dockerfile, "28.5.2+dfsg4") == []
    assert too_old_for("FROM python:3.11-slim\nRUN echo '<<not a heredoc'\n", "20.10.24") == []
    assert set(FEATURE_PATTERNS) <= {feature for feature, _, _ in ENGINE_FEATURES}
