"""A workshop pack, made and loaded on this machine: afterwards every lab builds and grades with pip taking
every package from the pack's wheelhouse (pip.conf in the base images names it as the only index).

This test changes the machine's base images while it runs (that is what loading a pack does) and puts
the originals back at the end, also when it fails.
"""

from __future__ import annotations

import pytest
from seeded import assert_nothing_left

from grader import workshop
from grader.engine import Engine
from grader.session import grade
from grader.spec import official_specs

SPECS = official_specs()


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, engine_probe):
    connected, why = engine_probe
    if connected is None:
        pytest.fail(f"CI needs a Docker engine and none answers: {why}")
    engine = Engine(connected.client)
    folder = tmp_path_factory.mktemp("workshop-pack")
    workshop.pack(folder, engine)
    try:
        workshop.load(folder, engine)
        yield folder
    finally:
        workshop.unload(folder, engine)
        engine.remove_session()


def test_the_pack_holds_every_image_and_package(loaded):
    manifest = workshop._manifest(loaded)
    assert set(manifest["images"]) == {ref for spec in SPECS.values() for ref in spec.base_images}
    assert any(name.startswith("torch-") for name in manifest["wheelhouse"])
    assert manifest["projects"] >= 30


def test_a_plain_build_installs_from_the_wheelhouse_only(loaded, engine, tmp_path):
    address = f"{engine.bridge_gateway()}:{workshop.WHEELHOUSE_PORT}"
    (tmp_path / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        # The session id keeps an earlier run's cached step out; -v makes pip name every index it asks.
        f"RUN echo {engine.session} && pip download -v --no-deps --dest /tmp flask==3.1.3\n"
    )
    built = engine.build(tmp_path, "Dockerfile", engine.name("offline-probe"), timeout_s=120)
    log = "\n".join(built.log)
    assert built.ok, log
    assert "Saved /tmp/flask-3.1.3-py3-none-any.whl" in log, log
    assert f"Looking in indexes: http://{address}/simple/" in log, log
    assert "pypi.org" not in log and "files.pythonhosted.org" not in log, log
    engine.remove_session()
    assert_nothing_left(engine)


@pytest.mark.parametrize("lab_id", sorted(SPECS))
def test_every_lab_builds_and_grades_offline(loaded, engine, lab_id):
    spec = SPECS[lab_id]
    result = grade(spec.path, spec, engine=engine)
    failed = [(t.id, t.status, t.message) for t in result.tests if t.status not in ("passed", "skipped")]
    assert failed == [] and result.exit_code == 0, failed
    assert result.score == result.max_score > 0
