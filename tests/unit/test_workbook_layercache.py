"""Chapter 3's helpers: reading cache hits, step times and context sizes from the builders' own output."""

from __future__ import annotations

import pytest

from workbook.layercache import (
    Build,
    buildkit_steps,
    classic_steps,
    context_bytes,
    fresh_dir,
    parse_size,
    strip_ansi,
    write_files,
)

# Recorded from the classic builder (Docker Engine 20.10): a rebuild after a code-only change.
CLASSIC = """Sending build context to Docker daemon  4.608kB\r\r
Step 1/6 : FROM python:3.11-slim
 ---> 486f1f157147
Step 2/6 : WORKDIR /app
 ---> Using cache
 ---> b255fb3a2abc
Step 3/6 : COPY requirements.txt .
 ---> Using cache
 ---> 498fd705c732
Step 4/6 : RUN pip install --no-cache-dir -r requirements.txt
 ---> Using cache
 ---> 5d8ddbef9d5a
Step 5/6 : COPY . .
 ---> bbba85eea6b4
Step 6/6 : LABEL org.mlcontainers.workbook=1
 ---> Running in c3b7c606af07
Removing intermediate container c3b7c606af07
 ---> 0bcd67fa6457
Successfully built 0bcd67fa6457
"""

# A step that ran and printed pip's "Using cached ..." must not count as a cache hit of the step.
CLASSIC_MISS = """Sending build context to Docker daemon  52.43MB\r\r
Step 1/3 : FROM python:3.11-slim
 ---> 486f1f157147
Step 2/3 : RUN pip install flask
 ---> Running in e26c943eba60
\x1b[91mUsing cached flask-3.1.3-py3-none-any.whl (103 kB)
\x1b[0m ---> Using cache is not this line
Removing intermediate container e26c943eba60
 ---> af76ca83afb9
Step 3/3 : COPY . .
 ---> 498fd705c732
"""

# Recorded from BuildKit in dockerd 20.10 with --progress=plain (vertices finish out of order).
BUILDKIT = """#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 189B done
#1 DONE 0.0s

#2 [internal] load .dockerignore
#2 transferring context: 2B 0.0s done
#2 DONE 0.1s

#4 [stage-0 1/5] FROM docker.io/library/python:3.11-slim
#4 DONE 0.0s

#6 [internal] load build context
#6 transferring context: 20.97MB 0.5s
#6 transferring context: 52.43MB 0.9s done
#6 DONE 1.0s

#7 [stage-0 3/5] COPY requirements.txt .
#7 CACHED

#5 [stage-0 2/5] WORKDIR /app
#5 CACHED

#8 [stage-0 4/5] RUN --mount=type=cache,target=/root/.cache/pip pip install -r requirements.txt
#8 sha256:9300ab3db5d26b125604bb3923d4d700c239138a01255cbca28764f6d34f0489
#8 0.480 Collecting flask==3.1.3
#8 DONE 3.5s

#9 [stage-0 5/5] COPY . .
#9 DONE 0.3s

#10 exporting to image
#10 DONE 0.2s
"""


def test_classic_steps_reads_which_steps_used_the_cache():
    steps = classic_steps(CLASSIC)
    assert [s.number for s in steps] == [1, 2, 3, 4, 5, 6]
    assert [s.cached for s in steps] == [False, True, True, True, False, False]
    assert steps[3].instruction == "RUN pip install --no-cache-dir -r requirements.txt"
    assert all(s.seconds is None for s in steps)


def test_classic_steps_is_not_fooled_by_output_that_mentions_a_cache():
    steps = classic_steps(CLASSIC_MISS)
    assert [s.cached for s in steps] == [False, False, False]


def test_buildkit_steps_reads_cache_hits_and_times_in_dockerfile_order():
    steps = buildkit_steps(BUILDKIT)
    assert [s.number for s in steps] == [1, 2, 3, 4, 5]
    assert [s.cached for s in steps] == [False, True, True, False, False]
    assert steps[3].instruction.startswith("RUN --mount=type=cache")
    assert steps[3].seconds == 3.5 and steps[4].seconds == 0.3


def test_context_bytes_from_either_builder():
    assert context_bytes(CLASSIC) == 4608
    assert context_bytes(CLASSIC_MISS) == 52_430_000
    # BuildKit: the build context's vertex, not the .dockerignore's ("2B"); the final, largest figure.
    assert context_bytes(BUILDKIT) == 52_430_000
    assert context_bytes("Step 1/1 : FROM x") is None


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
    b = Build("workbook/ch03-x", 1.0, CLASSIC, classic_steps(CLASSIC))
    assert b.step("pip install").number == 4 and b.step("pip install").cached
    assert b.context_bytes == 4608
    assert "CACHED" in b.table() and "ran" in b.table()
    with pytest.raises(LookupError, match="no step of the workbook/ch03-x build contains 'uv pip'"):
        b.step("uv pip")


def test_write_files_and_fresh_dir(tmp_path):
    folder = fresh_dir(tmp_path / "ctx")
    write_files(folder, {"app.py": "print(1)\n", "data/blob.bin": b"\x00\x01"})
    assert (folder / "app.py").read_text() == "print(1)\n" and (folder / "data/blob.bin").read_bytes() == b"\x00\x01"
    assert list(fresh_dir(folder).iterdir()) == []
