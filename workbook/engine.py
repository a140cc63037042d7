"""What the notebooks need to know about the engine: how to build (BuildKit), and cleaning up.

Experiments run the real `docker` CLI through `sh()`, so the learner sees every command. Everything a
notebook creates carries the label below, and `cleanup()` removes it all at the end of a chapter.
"""

from __future__ import annotations

import functools
import os
import subprocess

from workbook.shell import sh

LABEL = "org.mlcontainers.workbook"
# Valued with this kernel's process id: two notebooks running at once never clean up each other's objects.
LABEL_VALUE = str(os.getpid())
LABEL_FLAG = f"--label {LABEL}={LABEL_VALUE}"
BUILD = "docker buildx build --load"


@functools.cache
def buildkit_build() -> str:
    """The build command every chapter uses: `docker buildx build --load` (BuildKit, into the engine's store).

    On Engine 23 and later a plain `docker build` is the same builder; spelling out `buildx build --load`
    keeps the command the same on every setup (with another buildx driver, `--load` is what puts the
    image into the engine). Raises RuntimeError, with the fix, when the buildx plugin is missing.
    """
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise RuntimeError(
            "`docker buildx version` failed: this docker CLI has no buildx plugin, and the workbook builds "
            "with BuildKit only.\nHint: install the plugin (Debian/Ubuntu: apt-get install docker-buildx; "
            "Docker Desktop has it), then run `make doctor`.\n" + (probe.stderr or probe.stdout).strip()[-300:]
        )
    return BUILD


def cleanup() -> None:
    """Remove every container, image, network and volume a notebook created (by label)."""
    flt = f"--filter label={LABEL}={LABEL_VALUE}"
    sh(f"docker ps -aq {flt} | xargs -r docker rm -f", show=False, expect=None)
    # `docker images` lists the newest first, so children go before the images they are built FROM; keep that
    # order (sort would not) and drop repeats (an image with two tags is listed twice). BuildKit's build cache
    # is kept apart from the images (`docker buildx du`), so removing them leaves a re-run fast.
    sh(f"docker images -q {flt} | awk '!seen[$0]++' | xargs -r docker rmi -f", show=False, expect=None)
    sh(f"docker network ls -q {flt} | xargs -r docker network rm", show=False, expect=None)
    sh(f"docker volume ls -q {flt} | xargs -r docker volume rm -f", show=False, expect=None)
    print("cleaned up: nothing the notebook created is left on the engine")
