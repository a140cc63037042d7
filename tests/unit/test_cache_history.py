"""Finding the dependency-install layer in recorded `docker history` output (the engine API's form)."""

from __future__ import annotations

import copy

from grader.checks.cache import install_layer

PIP = "/bin/sh -c pip install --no-cache-dir -r requirements.txt"

# GET /images/{id}/history for the lab 01 solution built by the classic builder: newest first;
# the base image's layers come from an import and have no local id ('<missing>').
HISTORY = [
    {
        "Comment": "",
        "Created": 1732170000,
        "CreatedBy": '/bin/sh -c #(nop)  CMD ["python" "app.py"]',
        "Id": "sha256:9f1c0e0d4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e",
        "Size": 0,
        "Tags": ["grader-01:3f2a1b0c9d8e-image"],
    },
    {
        "Comment": "",
        "Created": 1732169999,
        "CreatedBy": '/bin/sh -c #(nop)  HEALTHCHECK &{["CMD" "python" "-c" "import os, urllib.request; ..."] '
        '"10s" "3s" "20s" "0s" \'\\x03\'}',
        "Id": "sha256:8e0b9d9c3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d",
        "Size": 0,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169998,
        "CreatedBy": "/bin/sh -c #(nop)  EXPOSE 5000",
        "Id": "sha256:7d9a8c8b2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c",
        "Size": 0,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169997,
        "CreatedBy": "/bin/sh -c #(nop)  USER 10001:10001",
        "Id": "sha256:6c8f7b7a1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b",
        "Size": 0,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169996,
        "CreatedBy": "/bin/sh -c python train.py",
        "Id": "sha256:5b7e6a6f0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a",
        "Size": 6012,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169990,
        "CreatedBy": "/bin/sh -c #(nop) COPY dir:4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b "
        "in . ",
        "Id": "sha256:4a6d5f5e9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f",
        "Size": 6640,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169980,
        "CreatedBy": PIP,
        "Id": "sha256:3f5c4e4d8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e",
        "Size": 301457812,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169900,
        "CreatedBy": "/bin/sh -c #(nop) COPY file:0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b "
        "in . ",
        "Id": "sha256:2e4b3d3c7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d",
        "Size": 485,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169899,
        "CreatedBy": "/bin/sh -c #(nop) WORKDIR /app",
        "Id": "sha256:1d3a2c2b6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c",
        "Size": 0,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169898,
        "CreatedBy": "/bin/sh -c groupadd --gid 10001 app  && useradd --uid 10001 --gid app --no-create-home "
        "--shell /usr/sbin/nologin app",
        "Id": "sha256:0c2f1b1a5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a2f3e4d5c6b7a8f9e0d1c2b",
        "Size": 9421,
        "Tags": None,
    },
    {
        "Comment": "",
        "Created": 1732169897,
        "CreatedBy": "/bin/sh -c #(nop)  ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 PIP_ROOT_USER_ACTION=ignore "
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
        "Id": "sha256:fb1e0a0f4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c0b1a",
        "Size": 0,
        "Tags": None,
    },
    {
        "Comment": "Imported from -",
        "Created": 1732160000,
        "CreatedBy": "",
        "Id": "<missing>",
        "Size": 198765432,
        "Tags": ["python:3.11-slim"],
    },
]


def test_finds_the_pip_install_layer():
    assert install_layer(HISTORY, "pip install") == HISTORY[6]["Id"]


def test_finds_the_newest_of_several_install_layers():
    history = copy.deepcopy(HISTORY)
    extra = {
        "Comment": "",
        "Created": 1732169995,
        "CreatedBy": "/bin/sh -c pip install --no-cache-dir gunicorn==23.0.0",
        "Id": "sha256:aaaa000000000000000000000000000000000000000000000000000000000001",
        "Size": 9000000,
        "Tags": None,
    }
    history.insert(3, extra)
    assert install_layer(history, "pip install") == extra["Id"]


def test_none_when_no_layer_runs_the_install_step():
    without = [entry for entry in HISTORY if "pip install" not in entry["CreatedBy"]]
    assert len(without) == len(HISTORY) - 1
    assert install_layer(without, "pip install") is None
    assert install_layer([], "pip install") is None


def test_base_layers_with_empty_or_null_created_by_are_skipped():
    history = [{"Id": "<missing>", "CreatedBy": None, "Size": 1}, {"Id": "<missing>", "CreatedBy": "", "Size": 2}]
    assert install_layer(history, "pip install") is None


def test_marker_comes_from_the_lab_spec():
    assert install_layer(HISTORY, "python train.py") == HISTORY[4]["Id"]
    assert install_layer(HISTORY, "conda install") is None


def test_buildkit_style_run_lines_match_too():
    history = [
        {
            "Id": "sha256:bb",
            "CreatedBy": "RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt # buildkit",
            "Size": 1,
        }
    ]
    assert install_layer(history, "pip install") == "sha256:bb"


def test_builder_log_tells_whether_the_install_step_used_the_cache():
    from grader.checks.cache import step_used_cache

    log = [
        "Step 5/9 : COPY app/requirements.txt .",
        " ---> Using cache",
        "Step 6/9 : RUN pip install --no-cache-dir -r requirements.txt",
        " ---> Using cache",
        "Step 7/9 : COPY app/ .",
        " ---> 1f2e3d4c5b6a",
    ]
    assert step_used_cache(log, "pip install") is True
    rerun = log[:3] + [" ---> Running in 0a1b2c3d4e5f", "Collecting flask==3.1.3"]
    assert step_used_cache(rerun, "pip install") is False
    assert step_used_cache(log, "poetry install") is False
