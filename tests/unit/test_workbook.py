"""The notebooks' helper package: commands fail loudly, timings summarise, quizzes explain, plots draw."""

from __future__ import annotations

import pytest

from workbook import CommandFailed, Question, Quiz, measure, plots, sh, summary


def test_sh_shows_the_command_and_its_output(capsys):
    result = sh("echo hello && echo oops >&2")
    shown = capsys.readouterr().out
    assert "$ echo hello" in shown and "hello" in shown and "oops" in shown
    assert result.code == 0 and result.lines == ["hello", "oops"]


def test_sh_raises_on_an_unexpected_exit_status():
    with pytest.raises(CommandFailed, match="exited with 3, expected 0"):
        sh("echo partial; exit 3", show=False)


def test_sh_accepts_the_status_an_experiment_expects():
    assert sh("exit 137", expect=137, show=False).code == 137
    assert sh("exit 5", expect=None, show=False).code == 5
    with pytest.raises(CommandFailed):
        sh("true", expect=137, show=False)


def test_sh_fails_a_pipeline_whose_first_command_fails():
    """`docker build ... | tail` must not hide a failed build behind tail's exit status."""
    with pytest.raises(CommandFailed):
        sh("false | cat", show=False)


def test_sh_shows_only_the_tail_of_long_output(capsys):
    sh("seq 1 100", tail=5)
    shown = capsys.readouterr().out
    assert "95 lines above not shown" in shown and "100" in shown and "\n50\n" not in shown


def test_measure_repeats_after_warmup():
    calls = []
    samples = measure(lambda: calls.append(1), repeats=4, warmup=2)
    assert len(samples) == 4 and len(calls) == 6 and all(s >= 0 for s in samples)


def test_summary_statistics():
    stats = summary([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stats == {"n": 5, "median": 3.0, "p90": 5.0, "min": 1.0, "max": 5.0}


def make_quiz() -> Quiz:
    return Quiz(
        [
            Question(
                "Where does a container's kernel come from?",
                {"a": "the image", "b": "the host"},
                "b",
                why="Containers share the host's kernel.",
                wrong={"a": "Images hold user-space files only."},
            ),
            Question(
                "Exit code of an OOM kill?",
                {"a": "137", "b": "1"},
                "a",
                why="128 + SIGKILL (9).",
                wrong={"b": "1 is an ordinary error exit."},
            ),
        ]
    )


def test_quiz_marks_answers_and_explains_wrong_ones(capsys):
    right = make_quiz().check({1: "a", 2: "A"})
    shown = capsys.readouterr().out
    assert right == 1
    assert "Images hold user-space files only." in shown and "128 + SIGKILL" in shown
    assert "1/2 right" in shown


def test_quiz_reports_unanswered_and_unknown_options(capsys):
    assert make_quiz().check({2: "z"}) == 0
    shown = capsys.readouterr().out
    assert "Q1: not answered yet" in shown and "'z' is not one of the options" in shown


def test_a_question_must_explain_every_wrong_option():
    with pytest.raises(ValueError, match="explain why"):
        Question("?", {"a": "x", "b": "y", "c": "z"}, "a", why=".", wrong={"b": "no"})
    with pytest.raises(ValueError, match="not one of the options"):
        Question("?", {"a": "x"}, "q", why=".")


def test_plots_draw_every_series():
    fig = plots.distributions({"process": [0.01, 0.02], "container": [0.5, 0.7, 0.6]}, "start", log=True)
    assert len(fig.axes[0].collections) == 2  # one scatter of samples per label
    fig = plots.bars({"slim": 130.0, "full": 1000.0}, "size", unit="MB")
    assert [round(p.get_width()) for p in fig.axes[0].patches] == [130, 1000]
    fig = plots.grouped_bars({"bad": {"cold": 20.0, "rebuild": 19.0}, "good": {"cold": 21.0, "rebuild": 2.0}}, "t")
    assert len(fig.axes[0].patches) == 4
