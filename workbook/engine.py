"""What the notebooks need to know about the engine: how to build with BuildKit here, and cleaning up.

Experiments run the real `docker` CLI through `sh()`, so the learner sees every command. Everything a
notebook creates carries the label below, and `cleanup()` removes it all at the end of a chapter.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from workbook.shell import sh

LABEL = "org.mlcontainers.workbook"
# Valued with this kernel's process id: two notebooks running at once never clean up each other's objects.
LABEL_VALUE = str(os.getpid())
LABEL_FLAG = f"--label {LABEL}={LABEL_VALUE}"


def buildkit_build() -> str | None:
    """The command that builds with BuildKit on this machine (cache and secret mounts), or None.

    `docker buildx build --load` where the buildx plugin exists; else a 20.10-era client, which has
    BuildKit built in behind DOCKER_BUILDKIT=1 (Debian's docker.io ships one at /usr/bin/docker).
    """
    if subprocess.run(["docker", "buildx", "version"], capture_output=True).returncode == 0:
        return "docker buildx build --load"
    debian = shutil.which("docker", path="/usr/bin")
    if debian:
        version = subprocess.run([debian, "version", "--format", "{{.Client.Version}}"], capture_output=True, text=True)
        if version.stdout.startswith("20."):
            return f"DOCKER_BUILDKIT=1 {debian} build"
    return None


def classic_build() -> str:
    """The command for the engine's classic builder (its `Using cache` lines are easy to read)."""
    debian = shutil.which("docker", path="/usr/bin")
    return f"DOCKER_BUILDKIT=0 {debian or 'docker'} build"


def cleanup() -> None:
    """Remove every container, image, network and volume a notebook created (by label)."""
    flt = f"--filter label={LABEL}={LABEL_VALUE}"
    sh(f"docker ps -aq {flt} | xargs -r docker rm -f", show=False, expect=None)
    # --no-prune keeps the untagged parent layers: they are the build cache that makes a re-run fast.
    # `docker images` lists the newest first, so children go before the images they are built FROM; keep that
    # order (sort would not) and drop repeats (an image with two tags is listed twice).
    sh(f"docker images -q {flt} | awk '!seen[$0]++' | xargs -r docker rmi -f --no-prune", show=False, expect=None)
    sh(f"docker network ls -q {flt} | xargs -r docker network rm", show=False, expect=None)
    sh(f"docker volume ls -q {flt} | xargs -r docker volume rm -f", show=False, expect=None)
    print("cleaned up: nothing the notebook created is left on the engine")
