"""Lab 04's seeded defects, each graded by the one check meant for it: it fails, its hint naming the fix."""

import re

from seeded import Defect

GUNICORN = 'CMD ["gunicorn", "--bind", "0.0.0.0:5000", "--workers", "2", "--access-logfile", "-", "app:app"]'

DEFECTS = (
    Defect(
        "secret-in-env",
        "a secret in ENV",
        edits=[("Dockerfile", re.compile(r"^USER 10001:10001$", re.M), "ENV API_KEY=sk-live-4f9aQ2\nUSER 10001:10001")],
        caught_by={"NoSecretsInImage": ["ENV API_KEY", "sk-live-", "docker run -e"]},
        graded_alone=True,
    ),
    Defect(
        "secret-in-deleted-layer",
        "a secret written in a RUN layer, deleted in a later one",
        edits=[
            (
                "Dockerfile",
                "RUN python train.py\n",
                "RUN python train.py\nRUN echo sk-live-Zx81 > .token\nRUN rm .token\n",
            )
        ],
        caught_by={"NoSecretsInImage": ["history step", "later layer"]},
        graded_alone=True,
    ),
    Defect(
        "unpinned-requirement",
        "an unpinned requirement",
        edits=[("app/requirements.txt", "numpy==2.4.6", "numpy>=2")],
        caught_by={"RequirementsPinned": ["numpy>=2", "=="]},
        graded_alone=True,
    ),
    Defect(
        "named-user",
        "a named USER",
        edits=[("Dockerfile", re.compile(r"^USER 10001:10001$", re.M), "USER app")],
        caught_by={"ExplicitNumericUser": ["USER app", "10001"]},
        graded_alone=True,
    ),
    Defect(
        "healthcheck-calls-curl",
        "HEALTHCHECK calls curl, absent from the image",
        edits=[
            (
                "Dockerfile",
                re.compile(r"^  CMD \[\"python\", \"-c\".*\n", re.M),
                "  CMD curl -f http://127.0.0.1:5000/health || exit 1\n",
            )
        ],
        caught_by={"HealthcheckHealthy": ["curl", "Python"]},
        graded_alone=True,
    ),
    Defect(
        "shell-form-cmd",
        "shell-form CMD: /bin/sh is PID 1 and ignores SIGTERM",
        edits=[("Dockerfile", GUNICORN, "CMD gunicorn --bind 0.0.0.0:5000 --workers 2 --access-logfile - app:app")],
        caught_by={"StopsOnSigterm": ["exit code 137", "exec form"]},
        graded_alone=True,
    ),
    Defect(
        "flask-dev-server",
        "Flask's development server",
        edits=[("Dockerfile", GUNICORN, 'CMD ["python", "app.py"]')],
        caught_by={"ProductionServer": ["python app.py", "gunicorn"]},
        graded_alone=True,
    ),
    Defect(
        "logs-to-file-only",
        "logs to a file only",
        edits=[
            ("Dockerfile", GUNICORN, GUNICORN.replace('"--access-logfile", "-", ', "")),
            (
                "app/app.py",
                re.compile(r"^logging.basicConfig\(stream=sys.stdout,", re.M),
                'logging.basicConfig(filename="/tmp/iris.log",',
            ),
        ],
        caught_by={"LogsToStdout": ["no request line", "--access-logfile -"]},
        graded_alone=True,
    ),
    Defect(
        "writes-outside-tmp",
        "writes outside /tmp at start",
        edits=[
            (
                "app/app.py",
                'log = logging.getLogger("iris")',
                'os.makedirs("/var/tmp/iris", exist_ok=True)\nlog = logging.getLogger("iris")',
            )
        ],
        caught_by={"ReadOnlyRootFilesystem": ["Read-only file system", "/tmp"]},
        graded_alone=True,
    ),
)
