"""Chapter 3's helpers: reading cache hits, step times and context sizes from BuildKit's plain progress."""

from __future__ import annotations

import pytest

import workbook.layercache as layercache
from workbook.layercache import (
    Build,
    buildkit_steps,
    context_bytes,
    fresh_dir,
    parse_size,
    strip_ansi,
    write_files,
)
from workbook.shell import CommandFailed, Result

# The base image's reference, and the end of a long error line, as BuildKit printed them.
BASE = "docker.io/library/python:3.11-slim@sha256:3b5a7c5bfc78ba3616e1b294d5275be428de1c85c214eeb33d843c22785ce4f4"
REST = "successfully: exit code: 1"

# Recorded from Engine 28.5.2 with buildx 0.29.1 (`docker buildx build --load --progress=plain`): a rebuild
# after a code-only change. The vertices (#6, #7...) finish, and are printed, out of Dockerfile order.
REBUILD = """#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 211B done
#1 DONE 0.0s

#2 [internal] load metadata for docker.io/library/python:3.11-slim
#2 DONE 0.0s

#3 [internal] load .dockerignore
#3 transferring context: 2B done
#3 DONE 0.0s

#4 [internal] load build context
#4 transferring context: 2.20kB done
#4 DONE 0.0s

#5 [stage-0 1/5] FROM $BASE
#5 resolve $BASE 0.0s done
#5 DONE 0.0s

#7 [stage-0 3/5] COPY requirements.txt .
#7 CACHED

#6 [stage-0 2/5] WORKDIR /app
#6 CACHED

#8 [stage-0 4/5] RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
#8 CACHED

#9 [stage-0 5/5] COPY . .
#9 DONE 0.0s

#10 exporting to image
#10 exporting layers 0.0s done
#10 exporting manifest sha256:c58890a0d62ee0455d1d93f0f2263b9b41c40d4642fb02867e11aa41e99874cb done
#10 naming to docker.io/workbook/rec:latest done
#10 unpacking to docker.io/workbook/rec:latest 0.0s done
#10 DONE 0.1s
""".replace("$BASE", BASE)

# The same Dockerfile after a change of requirements.txt: the install ran, and pip's own words
# ("Using cached ...", from the cache mount) must not make the step look cached.
REQUIREMENTS_CHANGED = """#6 [stage-0 2/5] WORKDIR /app
#6 CACHED

#7 [stage-0 3/5] COPY requirements.txt .
#7 DONE 0.0s

#8 [stage-0 4/5] RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
#8 0.872 Collecting numpy==2.4.6
#8 0.897   Downloading numpy-2.4.6-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl (16.9 MB)
#8 1.000 Collecting jieba==0.42.1
#8 1.000   Using cached jieba-0.42.1-py3-none-any.whl
#8 1.034 Installing collected packages: jieba, six, numpy
#8 3.766 Successfully installed jieba-0.42.1 numpy-2.4.6 six-1.17.0
#8 DONE 4.0s

#9 [stage-0 5/5] COPY . .
#9 DONE 0.1s
"""

# A multi-stage build whose last step fails: stages are named in the brackets, and the base image
# both stages start from is one vertex.
MULTI_STAGE_FAILED = """#4 [stage-0 1/7] FROM $BASE
#4 CACHED

#5 [internal] load build context
#5 transferring context: 35B done
#5 DONE 0.0s

#6 [build 2/3] RUN python -m venv /opt/venv
#6 DONE 3.6s

#7 [build 3/3] COPY a.txt /opt/venv/a.txt
#7 DONE 0.0s

#8 [stage-1 2/3] COPY --from=build /opt/venv /opt/venv
#8 DONE 0.2s

#9 [stage-1 3/3] RUN cat /opt/venv/nope.txt
#9 0.166 cat: /opt/venv/nope.txt: No such file or directory
#9 ERROR: process "/bin/sh -c cat /opt/venv/nope.txt" did not complete successfully: exit code: 1
------
 > [stage-1 3/3] RUN cat /opt/venv/nope.txt:
0.166 cat: /opt/venv/nope.txt: No such file or directory
------
ERROR: failed to build: failed to solve: process "/bin/sh -c cat /opt/venv/nope.txt" did not complete $REST
""".replace("$BASE", BASE).replace("$REST", REST)

# A big context sent in pieces (the progress line overwrites itself), and the .dockerignore's own "2B".
BIG_CONTEXT = """#2 [internal] load .dockerignore
#2 transferring context: 2B 0.0s done
#2 DONE 0.1s

#6 [internal] load build context
#6 transferring context: 20.97MB 0.5s\r#6 transferring context: 52.43MB 0.9s done
#6 DONE 1.0s

#7 [2/2] COPY . .
#7 DONE 0.3s
"""


def test_buildkit_steps_reads_cache_hits_in_dockerfile_order():
    steps = buildkit_steps(REBUILD)
    assert [s.number for s in steps] == [1, 2, 3, 4, 5]
    assert [s.cached for s in steps] == [False, True, True, True, False]
    assert [s.vertex for s in steps] == [5, 6, 7, 8, 9]
    assert steps[3].instruction == "RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt"
    assert steps[4].seconds == 0.0 and steps[3].seconds is None
    assert {s.stage for s in steps} == {"stage-0"} and {s.of for s in steps} == {5}


def test_buildkit_steps_is_not_fooled_by_output_that_mentions_a_cache():
    steps = buildkit_steps(REQUIREMENTS_CHANGED)
    install = next(s for s in steps if "pip install" in s.instruction)
    assert not install.cached and install.seconds == 4.0
    assert [s.cached for s in steps] == [True, False, False, False]


def test_buildkit_steps_orders_stages_and_reads_the_error():
    steps = buildkit_steps(MULTI_STAGE_FAILED)
    assert [(s.stage, s.number) for s in steps] == [
        ("stage-0", 1),
        ("build", 2),
        ("build", 3),
        ("stage-1", 2),
        ("stage-1", 3),
    ]
    assert steps[0].cached and steps[1].seconds == 3.6
    assert steps[-1].error.startswith('process "/bin/sh -c cat /opt/venv/nope.txt" did not complete')
    assert steps[-1].seconds is None


def test_context_bytes_is_the_build_context_not_the_dockerignore():
    assert context_bytes(REBUILD) == 2200
    assert context_bytes(BIG_CONTEXT) == 52_430_000  # the final figure, not the .dockerignore's "2B"
    assert context_bytes("#7 [2/2] COPY . .\n#7 DONE 0.3s") is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("416B", 416),
        ("4.608kB", 4608),
        ("52.43MB", 52_430_000),
        ("1.5GB", 1_500_000_000),
        ("1.5KiB", 1536),
        ("2 MiB", 2 * 1024 * 1024),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


def test_parse_size_rejects_what_is_not_a_size():
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_strip_ansi():
    assert strip_ansi("\x1b[91mWARNING\x1b[0m done") == "WARNING done"


def test_build_step_finds_the_last_matching_step_and_explains_a_miss():
    b = Build("workbook/ch03-x", 1.0, REBUILD, buildkit_steps(REBUILD))
    assert b.step("pip install").number == 4 and b.step("pip install").cached
    assert b.context_bytes == 2200
    table = b.table()
    assert "[4/5]" in table and "CACHED" in table and "ran 0.0s" in table
    with pytest.raises(LookupError, match="no step of the workbook/ch03-x build contains 'uv pip'"):
        b.step("uv pip")


def test_build_table_names_the_stages_of_a_multi_stage_build():
    table = Build("workbook/ch03-x", 1.0, MULTI_STAGE_FAILED, buildkit_steps(MULTI_STAGE_FAILED)).table()
    assert "[build 2/3]" in table and "[stage-1 3/3]" in table and "ERROR" in table
    assert "(base)" in table  # the shared FROM vertex, which BuildKit named "stage-0 1/7"


def test_output_time_reads_buildkits_clock_for_a_line_the_step_printed():
    b = Build("workbook/ch03-x", 1.0, REQUIREMENTS_CHANGED, buildkit_steps(REQUIREMENTS_CHANGED))
    install = b.step("pip install")
    assert b.output_time(install, "Installing collected packages") == 1.034
    assert b.output_time(install, "Using cached jieba") == 1.0
    assert b.output_time(install, "Building wheel") is None
    assert b.output_time(install, "DONE") is None  # a status line, not output


def test_build_table_names_a_base_image_that_another_build_shared():
    # Two builds at once from the same base: BuildKit ran the FROM once, named after the other build.
    log = REBUILD.replace("[stage-0 1/5] FROM", "[docker-cli 1/4] FROM")
    table = Build("workbook/ch03-x", 1.0, log, buildkit_steps(log)).table()
    assert table.splitlines()[0].split()[0] == "[1/5]"
    assert "[2/5]" in table and "stage-0" not in table


def test_write_files_and_fresh_dir(tmp_path):
    folder = fresh_dir(tmp_path / "ctx")
    write_files(folder, {"app.py": "print(1)\n", "data/blob.bin": b"\x00\x01"})
    assert (folder / "app.py").read_text() == "print(1)\n" and (folder / "data/blob.bin").read_bytes() == b"\x00\x01"
    assert list(fresh_dir(folder).iterdir()) == []


def test_build_retries_once_when_the_engine_loses_a_parent_layer(monkeypatch, tmp_path):
    race = '#10 ERROR: failed to prepare extraction snapshot "extract-1": parent snapshot sha256:e0 does not exist'
    answers = [Result("docker buildx build", 1, race, 1.0), Result("docker buildx build", 0, REBUILD, 0.5)]
    monkeypatch.setattr(layercache, "buildkit_build", lambda: "docker buildx build --load")
    monkeypatch.setattr(layercache, "sh", lambda command, **kwargs: answers.pop(0))
    built = layercache.build(tmp_path, "workbook/ch03-x", show=False)
    assert built.code == 0 and built.step("pip install").cached and answers == []

    answers[:] = [Result("docker buildx build", 1, "ERROR: failed to solve: boom", 1.0)]
    with pytest.raises(CommandFailed, match="exited with 1, expected 0"):
        layercache.build(tmp_path, "workbook/ch03-x", show=False)
    assert answers == []  # any other failure is not retried
