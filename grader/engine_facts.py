"""What this engine is (version, API, image store), what builds with it (BuildKit through buildx), and what an
older engine cannot build, with the fix.

One place for these facts, so that `python -m grader doctor` and chapter 0's setup check say the same thing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field

from grader import buildkit
from grader.engine import Engine, connect
from grader.spec import REPO_ROOT

VERSIONS_FILE = REPO_ROOT / "docker" / "engine-versions.env"
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"  # `docker info` DriverStatus driver-type: the containerd store
# Engine 29 refuses clients that speak an API older than this (Docker 25's); the docker SDK negotiates on its own.
ENGINE_29_MIN_CLIENT_API = "1.44"


def engine_versions() -> dict[str, str]:
    """The pinned versions `make engine` provisions (docker/engine-versions.env: KEY=VALUE lines)."""
    if not VERSIONS_FILE.is_file():  # the grader installed without its repository
        return {}
    pairs = (line.split("=", 1) for line in VERSIONS_FILE.read_text().splitlines() if re.match(r"^\w+=", line))
    return {key: value.strip() for key, value in pairs}


UPGRADE = (
    f"upgrade the engine: as root on Debian/Ubuntu 'ENGINE=current make engine' (Debian's Docker "
    f"{engine_versions().get('CURRENT_DOCKER', '28')}, after stopping the old dockerd), elsewhere Docker Engine 23 "
    "or later"
)
# What a Dockerfile may use depends on the engine, not on buildx: with buildx's `docker` driver the engine's own
# BuildKit parses the Dockerfile with its built-in frontend (offline, a `# syntax=` frontend image cannot be pulled).
# Engine 20.10 embeds BuildKit 0.8 (Dockerfile frontend 1.2), Engine 23.0 BuildKit 0.10 (frontend 1.4); older
# frontends stop with "dockerfile parse error". COPY --chmod (octal) came with 20.10's (moby/buildkit#1492); symbolic
# modes (u+x) only with frontend 1.14. (feature, the oldest engine that has it, fix)
ENGINE_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("BuildKit as the builder of plain `docker build` (older engines use the classic builder)", "23.0", UPGRADE),
    ("RUN --mount=type=cache and type=secret", "20.10", UPGRADE),
    ("COPY --chmod with an octal mode (--chmod=755)", "20.10", UPGRADE),
    ("RUN --network=none", "23.0", UPGRADE),
    ("heredocs (RUN <<EOF ... EOF)", "23.0", UPGRADE),
    ("COPY --link", "23.0", UPGRADE),
)


# How the features above show in a Dockerfile: a build that fails on an engine too old for one names it.
FEATURE_PATTERNS: dict[str, str] = {
    "RUN --mount=type=cache and type=secret": r"^\s*RUN\b[^\n]*--mount=",
    "COPY --chmod with an octal mode (--chmod=755)": r"^\s*(?:COPY|ADD)\b[^\n]*--chmod=",
    "RUN --network=none": r"^\s*RUN\b[^\n]*--network=",
    "heredocs (RUN <<EOF ... EOF)": r"^\s*(?:RUN|COPY)\b[^\n]*(?<![\"'\w])<<-?[ \t]*[\"']?[A-Za-z_]",
    "COPY --link": r"^\s*(?:COPY|ADD)\b[^\n]*--link\b",
}


@dataclass(frozen=True)
class Limitation:
    feature: str  # what cannot be done
    needs: str  # what it takes: "Engine 23.0", "a client speaking API 1.44"
    fix: str


@dataclass
class EngineReport:
    server_version: str  # "28.5.2+dfsg4"
    api_version: str  # the engine's own API version
    client_version: str | None  # the docker CLI's (None: no CLI on PATH)
    client_api_version: str | None  # the API version the CLI negotiated with this engine
    image_store: str  # "containerd" or "classic"
    storage_driver: str  # "overlayfs" (containerd snapshotter), "overlay2" (classic)...
    buildx_version: str | None  # None: no buildx plugin, so no BuildKit
    limitations: list[Limitation] = field(default_factory=list)

    def lines(self) -> list[str]:
        client = (
            f"docker CLI {self.client_version} (API {self.client_api_version} with this engine)"
            if self.client_version
            else "no docker CLI on PATH"
        )
        store = "the containerd image store" if self.image_store == "containerd" else "the classic image store"
        builder = f"BuildKit through docker buildx {self.buildx_version}" if self.buildx_version else "no buildx plugin"
        lines = [
            f"engine:  Docker Engine {self.server_version} (API {self.api_version})",
            f"client:  {client}",
            f"images:  {store} ({self.storage_driver})",
            f"builder: {builder}",
        ]
        lines += [f"cannot:  {lim.feature} (needs {lim.needs}); fix: {lim.fix}" for lim in self.limitations]
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


def version_tuple(version: str) -> tuple[int, ...]:
    """(28, 5, 2) from "28.5.2+dfsg4" or "v28.5.2": the leading dotted numbers."""
    match = re.match(r"v?(\d+(?:\.\d+)*)", version or "")
    return tuple(int(n) for n in match.group(1).split(".")) if match else ()


def image_store(info: dict) -> str:
    """'containerd' when `docker info` names the containerd snapshotter as the storage driver's type, else 'classic'."""
    status = dict(pair for pair in info.get("DriverStatus") or [] if len(pair) == 2)
    return "containerd" if status.get("driver-type") == CONTAINERD_SNAPSHOTTER else "classic"


def limitations(server_version: str, client_max_api: str | None) -> list[Limitation]:
    """What this engine (and this CLI) cannot do, from ENGINE_FEATURES and Engine 29's client minimum."""
    engine = version_tuple(server_version)
    found = [
        Limitation(feature, f"Engine {minimum} or later", fix)
        for feature, minimum, fix in ENGINE_FEATURES
        if engine < version_tuple(minimum)
    ]
    if client_max_api and version_tuple(client_max_api) < version_tuple(ENGINE_29_MIN_CLIENT_API):
        current = engine_versions().get("CURRENT_DOCKER", "28")
        found.append(
            Limitation(
                f"this docker CLI (API {client_max_api}) cannot talk to Engine 29 or later",
                f"a client speaking API {ENGINE_29_MIN_CLIENT_API} (Docker 25) or later",
                f"use a docker CLI of Docker 25 or later: 'make engine' unpacks Debian's docker-cli {current} into "
                ".cache/engine/current/bin",
            )
        )
    return found


def parse_report(version: dict, info: dict, client: dict | None, buildx_version: str | None) -> EngineReport:
    """The report from what the engine answered (`docker version`/`docker info` as the SDK returns them), the
    CLI's `docker version --format '{{json .Client}}'` and `docker buildx version`. No engine needed: tested on
    recorded answers."""
    client = client or {}
    server_version = version.get("Version") or info.get("ServerVersion") or "?"
    return EngineReport(
        server_version=server_version,
        api_version=version.get("ApiVersion") or "?",
        client_version=client.get("Version"),
        client_api_version=client.get("ApiVersion"),
        image_store=image_store(info),
        storage_driver=info.get("Driver") or "?",
        buildx_version=buildx_version,
        limitations=limitations(server_version, client.get("DefaultAPIVersion") or client.get("ApiVersion")),
    )


def cli_client() -> dict | None:
    """The docker CLI's own part of `docker version`: its version, its API version and the one it negotiated."""
    if not shutil.which("docker"):
        return None
    try:
        proc = subprocess.run(
            ["docker", "version", "--format", "{{json .Client}}"], capture_output=True, text=True, timeout=30
        )
        return json.loads(proc.stdout)  # printed even when the engine does not answer
    except (subprocess.TimeoutExpired, json.JSONDecodeError):
        return None


def engine_report(engine: Engine | None = None) -> EngineReport:
    """The report for `engine`, or for the engine the environment names (raises EngineUnavailable without one)."""
    engine = engine or connect()
    return parse_report(engine.version(), engine.info(), cli_client(), buildkit.buildx_version())


def too_old_for(dockerfile_text: str, server_version: str) -> list[str]:
    """The features `dockerfile_text` uses that an engine of `server_version` cannot build, each with what it needs."""
    engine = version_tuple(server_version)
    return [
        f"{feature} needs Docker Engine {minimum} or later"
        for feature, minimum, _ in ENGINE_FEATURES
        if feature in FEATURE_PATTERNS
        and engine < version_tuple(minimum)
        and re.search(FEATURE_PATTERNS[feature], dockerfile_text, re.MULTILINE | re.IGNORECASE)
    ]
