"""Helpers that keep the workbook's notebook cells short: shell commands, timing, plots, quizzes.

from workbook import sh, measure, summary, plots, Quiz, Question, LABEL_FLAG, BUILD, cleanup
"""

from workbook import plots
from workbook.engine import BUILD, LABEL_FLAG, buildkit_build, cleanup
from workbook.quiz import Prediction, Question, Quiz, load_quiz
from workbook.shell import CommandFailed, sh
from workbook.timing import measure, summary

__all__ = [
    "BUILD",
    "LABEL_FLAG",
    "Prediction",
    "CommandFailed",
    "Question",
    "Quiz",
    "load_quiz",
    "buildkit_build",
    "cleanup",
    "measure",
    "plots",
    "sh",
    "summary",
]
