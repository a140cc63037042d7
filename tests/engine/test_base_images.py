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
