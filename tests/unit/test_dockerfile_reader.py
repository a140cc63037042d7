"""grader/dockerfile.py: a Dockerfile's instructions, its final base image, and the cut before a rebuild."""

from __future__ import annotations

import pytest

from grader.dockerfile import dockerfile_instructions, final_base_image, substitute, up_to_final_run_with
from grader.spec import REPO_ROOT


def test_instructions_join_continuations_and_drop_comments():
    text = '# a comment\nFROM a AS b\n\nRUN one \\\n  # inside\n  && two\nCMD ["x"]\n'
    found = dockerfile_instructions(text)
    assert [(i.keyword, i.args, i.line) for i in found] == [
        ("FROM", "a AS b", 2),
        ("RUN", "one && two", 4),
        ("CMD", '["x"]', 7),
    ]


def test_the_final_base_follows_stage_names_and_arg_defaults():
    text = (
        "ARG CUDA=12.8.1\nARG OS=ubuntu24.04\n"
        "FROM --platform=linux/amd64 nvidia/cuda:${CUDA}-runtime-${OS} AS runtime\n"
        "FROM python:3.11 AS builder\nRUN make\n"
        "FROM runtime\nCOPY --from=builder /opt/venv /opt/venv\n"
    )
    assert final_base_image(dockerfile_instructions(text)) == "nvidia/cuda:12.8.1-runtime-ubuntu24.04"
    assert final_base_image(dockerfile_instructions("RUN x\n")) is None


def test_arg_references_are_substituted():
    assert substitute("a:${V}-$W-${X:-dflt}", {"V": "1", "W": "2"}) == "a:1-2-dflt"


def test_instructions_know_where_they_end():
    text = "FROM a\nRUN one \\\n  && two\n\nCMD x"
    assert [(i.keyword, i.line, i.end) for i in dockerfile_instructions(text)] == [
        ("FROM", 1, 1),
        ("RUN", 2, 3),
        ("CMD", 5, 5),
    ]


def test_the_cut_ends_after_the_final_stages_last_install():
    text = (
        "FROM python:3.11 AS builder\nRUN pip install --prefix=/install x\n"
        "FROM python:3.11-slim\nRUN pip install --upgrade pip\nCOPY req.txt .\n"
        'RUN pip install \\\n    -r req.txt\n# the code\nCOPY app/ .\nRUN python train.py\nCMD ["python"]\n'
    )
    cut = up_to_final_run_with(text, "pip install")
    assert cut.splitlines()[-2:] == ["RUN pip install \\", "    -r req.txt"]
    assert "COPY app/" not in cut


def test_the_reference_solution_is_cut_before_its_code():
    text = (REPO_ROOT / "solutions" / "01-first-model-container" / "Dockerfile").read_text()
    cut = up_to_final_run_with(text, "pip install")
    assert cut.rstrip().endswith("RUN pip install --no-cache-dir -r requirements.txt")
    assert text.startswith(cut.rstrip())


@pytest.mark.parametrize(
    "text",
    [
        "FROM a\nCOPY . .\nCMD x\n",  # no install at all
        "FROM a AS b\nRUN pip install x\nFROM c\nCOPY --from=b / /\n",  # the install is not in the final stage
        "# escape=`\nFROM a\nRUN pip install `\n  x\n",  # another escape character
        "FROM a\nRUN <<EOF\npip install x\nEOF\n",  # a heredoc
        "RUN pip install x\n",  # no FROM
    ],
)
def test_files_it_cannot_cut_are_built_whole(text):
    assert up_to_final_run_with(text, "pip install") is None
