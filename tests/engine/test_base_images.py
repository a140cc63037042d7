"""The base images the labs need are present, and a local stand-in behaves like the real image:
`python` and `pip` commands, but no curl, wget or compilers."""

from __future__ import annotations

import pytest

from grader import base_images


@pytest.mark.parametrize("ref", base_images.required_images())
def test_base_image_present(engine, ref):
    assert base_images.status(engine, ref) in ("present", "stand-in"), f"run 'make images' to get {ref}"


def test_python_standin_is_as_bare_as_the_real_image(engine):
    ref = "python:3.11-slim"
    if base_images.status(engine, ref) != "stand-in":
        pytest.skip(f"{ref} is the real image here, not a stand-in")
    code, out = engine.run_once(ref, ["sh", "-c", "python --version && pip --version && id -u"])
    assert code == 0 and out.startswith("Python 3.11"), out
    for tool in ("curl", "wget", "gcc", "cc", "make"):
        code, out = engine.run_once(ref, ["sh", "-c", f"command -v {tool}"])
        assert code != 0, f"the stand-in has {tool} ({out}), the real {ref} does not"
    labels = engine.image_labels(ref)
    assert labels["org.mlcontainers.standin.of"] == ref


def test_redis_standin_serves_other_containers(engine):
    """The official entrypoint's behaviour the labs rely on: `redis-server ARGS` accepts non-loopback clients."""
    ref = "redis:7"
    if base_images.status(engine, ref) != "stand-in":
        pytest.skip(f"{ref} is the real image here, not a stand-in")
    # The entrypoint rewrites `redis-server ARGS` (here daemonised, so the same shell can ask it).
    script = (
        "docker-entrypoint.sh redis-server --port 6391 --daemonize yes >/dev/null && sleep 0.5 && "
        "redis-cli -p 6391 config get protected-mode | tail -1 && redis-cli -p 6391 config get dir | tail -1 && id -un"
    )
    code, out = engine.run_once(ref, ["sh", "-c", script])
    assert code == 0 and out.split() == ["no", "/data", "redis"], out


def test_nginx_standin_has_the_official_layout(engine):
    ref = "nginx:1.27"
    if base_images.status(engine, ref) != "stand-in":
        pytest.skip(f"{ref} is the real image here, not a stand-in")
    script = (
        "nginx -t 2>&1 && test -f /etc/nginx/conf.d/default.conf && command -v curl && "
        "readlink /var/log/nginx/access.log"
    )
    code, out = engine.run_once(ref, ["sh", "-c", script])
    assert code == 0 and "syntax is ok" in out and out.rstrip().endswith("/dev/stdout"), out
    assert engine.inspect_image(ref)["Config"]["StopSignal"] == "SIGQUIT"
