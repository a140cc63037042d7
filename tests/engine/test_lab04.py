"""Lab 04 graded for real: every seeded defect in a copy of the reference solution is caught by the
check meant for it, with a hint naming the fix. (tests/engine/test_labs.py grades the solution and the
starter of every lab.)"""

from __future__ import annotations

import dataclasses
import re

import pytest
from seeded import apply_defect, assert_nothing_left, results_by_check

from grader.session import grade
from grader.spec import official_specs

SPEC = official_specs()["04"]
SOLUTION = SPEC.path
GUNICORN = 'CMD ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "2", "--access-logfile", "-", "app:app"]'

# Each defect: edits applied to a copy of the solution (file, old text or regex, new text), the check
# that must catch it, and words its message, evidence or hint must contain. Only that check is graded.
DEFECTS = {
    "a secret in ENV": (
        [("Dockerfile", re.compile(r"^USER 10001:10001$", re.M), "ENV API_KEY=sk-live-4f9aQ2\nUSER 10001:10001")],
        "NoSecretsInImage",
        ["ENV API_KEY", "sk-live-", "docker run -e"],
    ),
    "a secret written in a RUN layer, deleted in a later one": (
        [
            (
                "Dockerfile",
                "RUN python train.py\n",
                "RUN python train.py\nRUN echo sk-live-Zx81 > .token\nRUN rm .token\n",
            )
        ],
        "NoSecretsInImage",
        ["history step", "later layer"],
    ),
    "an unpinned requirement": (
        [("app/requirements.txt", "numpy==2.4.6", "numpy>=2")],
        "RequirementsPinned",
        ["numpy>=2", "=="],
    ),
    "a named USER": (
        [("Dockerfile", re.compile(r"^USER 10001:10001$", re.M), "USER app")],
        "ExplicitNumericUser",
        ["USER app", "10001"],
    ),
    "HEALTHCHECK calls curl, absent from the image": (
        [
            (
                "Dockerfile",
                re.compile(r"^  CMD \[\"python\", \"-c\".*\n", re.M),
                "  CMD curl -f http://127.0.0.1:5000/health || exit 1\n",
            )
        ],
        "HealthcheckHealthy",
        ["curl", "Python"],
    ),
    "shell-form CMD: /bin/sh is PID 1 and ignores SIGTERM": (
        [("Dockerfile", GUNICORN, "CMD gunicorn --bind 0.0.0.0:5000 --workers 2 --access-logfile - app:app")],
        "StopsOnSigterm",
        ["exit code 137", "exec form"],
    ),
    "Flask's development server": (
        [("Dockerfile", GUNICORN, 'CMD ["python", "app.py"]')],
        "ProductionServer",
        ["python app.py", "gunicorn"],
    ),
    "logs to a file only": (
        [
            ("Dockerfile", GUNICORN, GUNICORN.replace('"--access-logfile", "-", ', "")),
            (
                "app/app.py",
                re.compile(r"^logging.basicConfig\(stream=sys.stdout,", re.M),
                'logging.basicConfig(filename="/tmp/iris.log",',
            ),
        ],
        "LogsToStdout",
        ["no request line", "--access-logfile -"],
    ),
    "writes outside /tmp at start": (
        [
            (
                "app/app.py",
                'log = logging.getLogger("iris")',
                'os.makedirs("/var/tmp/iris", exist_ok=True)\nlog = logging.getLogger("iris")',
            )
        ],
        "ReadOnlyRootFilesystem",
        ["Read-only file system", "/tmp"],
    ),
}


def only(check_id: str):
    """The lab's spec with only one of its checks, so each defect costs one build and one check."""
    return dataclasses.replace(SPEC, checks=tuple(c for c in SPEC.checks if c.check == check_id), learning_targets=())


@pytest.mark.parametrize("defect", DEFECTS)
def test_seeded_defect_is_caught(defect, engine, tmp_path):
    edits, check_id, words = DEFECTS[defect]
    result = grade(apply_defect(SOLUTION, tmp_path, edits), only(check_id), engine=engine)
    caught = results_by_check(result)[check_id]
    assert caught.status == "failed", (caught.status, caught.message)
    said = caught.hint + caught.message + caught.evidence
    assert all(word in said for word in words), (words, said)
    assert result.exit_code == 1
    assert_nothing_left(engine)


def test_a_private_key_copied_into_the_image_is_found(engine, tmp_path):
    copy = apply_defect(SOLUTION, tmp_path, [])
    (copy / "app" / "deploy_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n")
    result = grade(copy, only("NoSecretsInImage"), engine=engine)
    caught = results_by_check(result)["NoSecretsInImage"]
    assert caught.status == "failed", (caught.status, caught.message)
    assert "file /app/deploy_key" in caught.evidence
    assert "PRIVATE" not in caught.evidence  # matches are shown redacted
    assert_nothing_left(engine)
