"""Lab 02's seeded defects: each is caught by the checks meant for it, and by no other, with a hint, message
or evidence naming the fix."""

import re

from seeded import Defect

DEFECTS = (
    Defect(
        "copy-all-before-install",
        "COPY . . before the dependency install",
        edits=[("Dockerfile", "COPY app/requirements.txt app/\n", "COPY . .\n")],
        caught_by={"LayerCacheReused": ["requirements.txt alone"]},
        every_other_check_passes=True,
    ),
    Defect(
        "no-dockerignore",
        "no .dockerignore",
        edits=[(".dockerignore", None, None)],
        caught_by={"BuildContextExcludes": [".dockerignore"], "BuildContextSizeBudget": ["data/ 20 MiB"]},
        every_other_check_passes=True,
    ),
    Defect(
        "dockerignore-lets-data-in",
        "a .dockerignore that leaves data in",
        edits=[(".dockerignore", re.compile(r"^data\n", re.M), "")],
        caught_by={"BuildContextExcludes": ["data"], "BuildContextSizeBudget": ["data/ 20 MiB"]},
        every_other_check_passes=True,
    ),
    Defect(
        "add-instead-of-copy",
        "ADD . . instead of COPY",
        edits=[("Dockerfile", "COPY app/ app/\n", "ADD . .\n")],
        caught_by={"DockerfileLint": ["Use COPY instead of ADD"]},
        every_other_check_passes=True,
    ),
    Defect(
        "install-in-training-run",
        "the install in the same RUN as training, which needs the code",
        edits=[
            ("Dockerfile", "RUN pip install --no-cache-dir -r app/requirements.txt\n", ""),
            (
                "Dockerfile",
                "RUN python app/train.py\n",
                "RUN pip install --no-cache-dir -r app/requirements.txt \\\n && python app/train.py\n",
            ),
        ],
        caught_by={"LayerCacheReused": ["RUN of its own"]},
        every_other_check_passes=True,
    ),
    Defect(
        "data-copied-explicitly",
        "data copied explicitly into the image",
        edits=[
            ("Dockerfile", "COPY app/ app/\n", "COPY app/ app/\nCOPY data/ data/\n"),
            # The build would fail with data in .dockerignore; taking it out is how a learner "fixes" that.
            (".dockerignore", re.compile(r"^data\n", re.M), ""),
        ],
        caught_by={
            "ForbiddenPathsAbsentFromImage": ["/app/data (1 file"],
            "BuildContextExcludes": ["data"],
            "BuildContextSizeBudget": ["data/ 20 MiB"],
        },
        every_other_check_passes=True,
    ),
    Defect(
        "data-copied-renamed",
        "a data file copied into the image under another name",
        edits=[
            ("Dockerfile", "COPY app/ app/\n", "COPY app/ app/\nCOPY data/wine_sample.csv app/reference.csv\n"),
            (".dockerignore", re.compile(r"^data\n", re.M), "data\n!data/wine_sample.csv\n"),
        ],
        caught_by={
            "ForbiddenPathsAbsentFromImage": ["/app/app/reference.csv (same content as data/wine_sample.csv)"],
            "BuildContextExcludes": ["!data/wine_sample.csv"],
        },
        every_other_check_passes=True,
    ),
    Defect(
        "slow-step-after-code-copy",
        "a slow step after the code copy (over the rebuild budget)",
        edits=[
            (
                "Dockerfile",
                "RUN python app/train.py\n",
                'RUN python app/train.py \\\n && python -c "import time; time.sleep(22)"\n',
            )
        ],
        caught_by={"LayerCacheReused": ["budget 20s"]},
        every_other_check_passes=True,
    ),
)
