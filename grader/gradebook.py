"""The gradebook: every graded attempt of every learner, in a database that needs no server.

SQLAlchemy Core over a database URL: SQLite by default (one file), PostgreSQL (`postgresql+psycopg://...`)
when graders on several hosts share one gradebook. Every attempt is kept with its per-check results and
the full result object. A submission that could not be graded (`invalid`, or an `error` of the grader or
the engine) is kept too, with its reason, but flagged as not counted: it is not an attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from grader.errors import GradebookError
from grader.result import COUNTED, GradeResult, effective_status

DEFAULT_URL = "sqlite:///grades/gradebook.sqlite"  # outside reports/, which `make clean` removes

metadata = sa.MetaData()

learner_table = sa.Table(
    "learners",
    metadata,
    sa.Column("id", sa.String(200), primary_key=True),
    sa.Column("first_name", sa.String(200), nullable=False, default=""),
    sa.Column("last_name", sa.String(200), nullable=False, default=""),
    sa.Column("email", sa.String(320), nullable=False, default=""),
)

attempt_table = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("lab", sa.String(64), nullable=False),
    sa.Column("learner", sa.String(200), nullable=False),
    sa.Column("submission", sa.String(500), nullable=False),  # its name in the class folder ("ada.zip")
    sa.Column("source", sa.String(16), nullable=False),  # folder | zip | tar | git
    # A sha256 in hex, or "file:" and the sha256 of an archive that could not be unpacked.
    sa.Column("content_sha256", sa.String(80), nullable=False),
    sa.Column("grading_key", sa.String(64), nullable=False),  # the spec and grader version that graded it
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("counted", sa.Boolean, nullable=False),
    sa.Column("score", sa.Float, nullable=True),  # None when not counted
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("message", sa.Text, nullable=False, default=""),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("duration_s", sa.Float, nullable=False, default=0.0),
    sa.Column("build_s", sa.Float, nullable=True),
    sa.Column("image_mb", sa.Float, nullable=True),
    sa.Column("timeout_s", sa.Float, nullable=False),
    sa.Column("reused_from", sa.Integer, sa.ForeignKey("attempts.id"), nullable=True),
    sa.Column("result_json", sa.Text, nullable=False),
    # Which grading worker stored it ("w1@host", see grader/batch/workers.py); None when graded locally.
    sa.Column("graded_by", sa.String(200), nullable=True),
    sa.Index("ix_attempts_content", "lab", "content_sha256", "grading_key"),
    sa.Index("ix_attempts_learner", "lab", "learner"),
)

check_table = sa.Table(
    "check_results",
    metadata,
    sa.Column("attempt_id", sa.Integer, sa.ForeignKey("attempts.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("check_id", sa.String(100), primary_key=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("category", sa.String(50), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("max_score", sa.Float, nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("hint", sa.Text, nullable=False),
    sa.Column("duration_ms", sa.Integer, nullable=False),
)

# A learner's knowledge checks, from the workbook's chapters (the learner's own progress record keeps them).
quiz_table = sa.Table(
    "quiz_results",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("learner", sa.String(200), nullable=False),
    sa.Column("chapter", sa.String(16), nullable=False),
    sa.Column("right", sa.Integer, nullable=False),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
)

# The chapters a learner ran through to their knowledge check (the workbook records each run).
chapter_run_table = sa.Table(
    "chapter_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("learner", sa.String(200), nullable=False),
    sa.Column("chapter", sa.String(16), nullable=False),
    sa.Column("ran_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Attempt:
    """One row of the attempts table (without the stored result object: see Gradebook.result)."""

    id: int
    lab: str
    learner: str
    submission: str
    source: str
    content_sha256: str
    grading_key: str
    status: str
    counted: bool
    score: float | None
    max_score: float
    message: str
    submitted_at: datetime
    duration_s: float
    build_s: float | None
    image_mb: float | None
    timeout_s: float
    reused_from: int | None
    graded_by: str | None = None


# Columns added after the first gradebooks were made: a gradebook without one gets it when opened.
ADDED_COLUMNS = ("graded_by",)
# Columns made longer since (SQLite does not hold text to a length; PostgreSQL does).
WIDENED_COLUMNS = ("content_sha256",)


@dataclass(frozen=True)
class LearnerSummary:
    """Where one learner stands in one lab: the attempt that counts (the latest counted one), and the rest."""

    lab: str
    learner: str
    attempts: int  # counted attempts only
    latest: Attempt | None  # the latest attempt of any kind (an invalid one included)
    counting: Attempt | None  # the latest counted attempt: the grade

    @property
    def status(self) -> str:
        """graded | timeout (from the attempt that counts), else invalid | error (why none counts), else missing."""
        if self.counting is not None:
            return self.counting.status
        return self.latest.status if self.latest is not None else "missing"


class Gradebook:
    """Attempts and learners in a database named by a SQLAlchemy URL; tables are created when missing."""

    def __init__(self, url: str = DEFAULT_URL, *, create: bool = True):
        """`create=False`: a SQLite gradebook must already exist (commands that only read one, so a mistyped
        path is an error, never a new empty gradebook)."""
        self.url = url
        try:
            parsed = make_url(url)
        except sa.exc.ArgumentError as err:
            raise GradebookError(
                f"not a database URL: {url!r} ({err})",
                hint="use sqlite:///path/to/gradebook.sqlite or postgresql+psycopg://user@host/db",
            ) from None
        options: dict = {}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                file = Path(parsed.database).expanduser()
                if not create and not file.is_file():
                    raise GradebookError(
                        f"no gradebook at {file}", hint="check the --gradebook path; `batch` creates a gradebook"
                    )
                file.parent.mkdir(parents=True, exist_ok=True)
            # Graders in several threads write as their submissions finish: wait for the lock, never fail.
            options["connect_args"] = {"timeout": 60}
        try:
            self.engine = sa.create_engine(parsed, **options)
        except (ImportError, sa.exc.NoSuchModuleError) as err:
            raise GradebookError(
                f"cannot open the gradebook {parsed.render_as_string(hide_password=True)}: {err}",
                hint="install the database driver the URL names (for PostgreSQL: pip install psycopg)",
            ) from None
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            _create_tables(self.engine)
        except sa.exc.DatabaseError as err:  # no server, no access, or a file that is not a database
            raise GradebookError(
                f"cannot open the gradebook {parsed.render_as_string(hide_password=True)}: {err.orig}",
                hint="--gradebook names a database: a gradebook file made by `batch`, or a PostgreSQL URL",
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ----------------------------------------------------------------------------------
    def record(
        self,
        result: GradeResult,
        *,
        submission: str,
        source: str,
        grading_key: str,
        timeout_s: float,
        reused_from: int | None = None,
        graded_by: str | None = None,
    ) -> int:
        """Store one graded (or ungradable) submission with its checks; returns the attempt id.

        `graded_by` names the grading worker that stored it (None: graded by this process).
        """
        status, message = effective_status(result)
        counted = status in COUNTED
        row = {
            "lab": result.submission["lab"],
            "learner": result.submission["learner"],
            "submission": submission,
            "source": source,
            "content_sha256": result.submission.get("sha256", ""),
            "grading_key": grading_key,
            "status": status,
            "counted": counted,
            "score": result.score if counted else None,
            "max_score": result.max_score,
            "message": message,
            "submitted_at": _parse_time(result.submission.get("submitted_at")),
            "duration_s": result.timings.get("total_s", 0.0),
            "build_s": result.timings.get("build_s"),
            "image_mb": result.image.get("size_mb"),
            "timeout_s": timeout_s,
            "reused_from": reused_from,
            "result_json": json.dumps(result.to_dict(), default=str),
            "graded_by": graded_by,
        }
        with self.engine.begin() as conn:
            attempt_id = conn.execute(attempt_table.insert().values(**row)).inserted_primary_key[0]
            if result.tests:
                conn.execute(
                    check_table.insert(),
                    [
                        {
                            "attempt_id": attempt_id,
                            "check_id": t.id,
                            "name": t.name,
                            "category": t.category,
                            "status": t.status,
                            "score": t.score,
                            "max_score": t.max_score,
                            "visibility": t.visibility,
                            "message": t.message,
                            "hint": t.hint,
                            "duration_ms": t.duration_ms,
                        }
                        for t in result.tests
                    ],
                )
        return attempt_id

    def add_learners(self, people: list[dict]) -> None:
        """Insert or update learners (id, first_name, last_name, email), from a roster."""
        with self.engine.begin() as conn:
            known = {r.id for r in conn.execute(sa.select(learner_table.c.id))}
            for person in people:
                values = {k: person.get(k, "") or "" for k in ("first_name", "last_name", "email")}
                if person["id"] in known:
                    conn.execute(learner_table.update().where(learner_table.c.id == person["id"]).values(**values))
                else:
                    conn.execute(learner_table.insert().values(id=person["id"], **values))
                    known.add(person["id"])

    # --- reading ----------------------------------------------------------------------------------
    def reusable(self, lab: str, content_sha256: str, grading_key: str, timeout_s: float) -> list[Attempt]:
        """Counted attempts of this very content, graded by this spec and grader, whose result still holds.

        A graded result always holds; a timeout holds only for a time limit no longer than the one it ran under.
        """
        query = (
            sa.select(*_attempt_columns())
            .where(
                attempt_table.c.lab == lab,
                attempt_table.c.content_sha256 == content_sha256,
                attempt_table.c.grading_key == grading_key,
                attempt_table.c.counted.is_(True),
                sa.or_(attempt_table.c.status == "graded", attempt_table.c.timeout_s >= timeout_s),
            )
            .order_by(attempt_table.c.id)
        )
        with self.engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query)]

    def latest(self, lab: str, learner: str) -> Attempt | None:
        """The learner's latest attempt of any kind at `lab`."""
        query = (
            sa.select(*_attempt_columns())
            .where(attempt_table.c.lab == lab, attempt_table.c.learner == learner)
            .order_by(attempt_table.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _attempt(row) if row is not None else None

    def attempts(self, lab: str | None = None, learner: str | None = None) -> list[Attempt]:
        """Every attempt, oldest first, optionally of one lab and one learner."""
        query = sa.select(*_attempt_columns()).order_by(attempt_table.c.id)
        if lab is not None:
            query = query.where(attempt_table.c.lab == lab)
        if learner is not None:
            query = query.where(attempt_table.c.learner == learner)
        with self.engine.connect() as conn:
            return [_attempt(row) for row in conn.execute(query)]

    def result(self, attempt_id: int) -> GradeResult:
        """The full result object stored with an attempt."""
        with self.engine.connect() as conn:
            text = conn.execute(
                sa.select(attempt_table.c.result_json).where(attempt_table.c.id == attempt_id)
            ).scalar_one()
        return GradeResult.from_dict(json.loads(text))

    def check_rows(self, attempt_ids: list[int]) -> list[dict]:
        """Per-check results of the given attempts."""
        if not attempt_ids:
            return []
        query = (
            sa.select(check_table).where(check_table.c.attempt_id.in_(attempt_ids)).order_by(check_table.c.attempt_id)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def failures_per_check(self, lab: str, learner: str) -> dict[str, int]:
        """How many of the learner's attempts of `lab` failed each check (what picks the tier of its hint)."""
        query = (
            sa.select(check_table.c.check_id, sa.func.count())
            .join(attempt_table, attempt_table.c.id == check_table.c.attempt_id)
            .where(attempt_table.c.lab == lab, attempt_table.c.learner == learner, check_table.c.status == "failed")
            .group_by(check_table.c.check_id)
        )
        with self.engine.connect() as conn:
            return {check_id: count for check_id, count in conn.execute(query)}

    def record_quiz(self, learner: str, chapter: str, right: int, total: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                quiz_table.insert().values(
                    learner=learner, chapter=chapter, right=right, total=total, taken_at=datetime.now(UTC)
                )
            )

    def quiz_results(self, learner: str) -> dict[str, tuple[int, int]]:
        """The learner's best (right, total) per chapter."""
        best: dict[str, tuple[int, int]] = {}
        query = sa.select(quiz_table).where(quiz_table.c.learner == learner).order_by(quiz_table.c.id)
        with self.engine.connect() as conn:
            for row in conn.execute(query):
                if row.chapter not in best or row.right > best[row.chapter][0]:
                    best[row.chapter] = (row.right, row.total)
        return best

    def record_chapter_run(self, learner: str, chapter: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(chapter_run_table.insert().values(learner=learner, chapter=chapter, ran_at=datetime.now(UTC)))

    def chapter_runs(self, learner: str) -> dict[str, int]:
        """How many times the learner ran each chapter through to its knowledge check."""
        query = (
            sa.select(chapter_run_table.c.chapter, sa.func.count())
            .where(chapter_run_table.c.learner == learner)
            .group_by(chapter_run_table.c.chapter)
        )
        with self.engine.connect() as conn:
            return {chapter: count for chapter, count in conn.execute(query)}

    def learners(self) -> dict[str, dict]:
        """The roster: learner id -> {first_name, last_name, email}."""
        with self.engine.connect() as conn:
            return {r.id: dict(r._mapping) for r in conn.execute(sa.select(learner_table).order_by(learner_table.c.id))}

    def labs(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(attempt_table.c.lab).distinct().order_by(attempt_table.c.lab)).scalars())

    def summaries(self, lab: str) -> list[LearnerSummary]:
        """One summary per learner of `lab`, sorted by learner: everyone with an attempt, and the roster."""
        by_learner: dict[str, list[Attempt]] = {}
        for attempt in self.attempts(lab):
            by_learner.setdefault(attempt.learner, []).append(attempt)
        for learner in self.learners():
            by_learner.setdefault(learner, [])
        out = []
        for learner, rows in sorted(by_learner.items()):
            counted = [a for a in rows if a.counted]
            out.append(
                LearnerSummary(
                    lab=lab,
                    learner=learner,
                    attempts=len(counted),
                    latest=rows[-1] if rows else None,
                    counting=counted[-1] if counted else None,
                )
            )
        return out


def _create_tables(engine: sa.Engine) -> None:
    """Create what is missing: tables, and the columns added since an older gradebook was made.

    Graders on several hosts may open a new PostgreSQL gradebook at the same moment: when another one
    created a table or column first, looking again finds it there.
    """
    for attempt in range(3):
        try:
            metadata.create_all(engine)
            have = {c["name"]: c for c in sa.inspect(engine).get_columns(attempt_table.name)}
            for name in ADDED_COLUMNS:
                if name not in have:
                    column = attempt_table.c[name]  # nullable: old rows read as None
                    with engine.begin() as conn:
                        conn.execute(
                            sa.text(
                                f"ALTER TABLE {attempt_table.name} ADD COLUMN {name} "
                                f"{column.type.compile(engine.dialect)}"
                            )
                        )
            for name in WIDENED_COLUMNS if engine.dialect.name == "postgresql" else ():
                column = attempt_table.c[name]
                if (getattr(have[name]["type"], "length", None) or column.type.length) < column.type.length:
                    with engine.begin() as conn:
                        conn.execute(
                            sa.text(
                                f"ALTER TABLE {attempt_table.name} ALTER COLUMN {name} "
                                f"TYPE {column.type.compile(engine.dialect)}"
                            )
                        )
            return
        except sa.exc.DBAPIError as err:
            raced = isinstance(err, sa.exc.IntegrityError | sa.exc.ProgrammingError) or "duplicate column" in str(err)
            if not raced or attempt == 2:
                raise


def _attempt(row) -> Attempt:
    values = dict(row._mapping)
    values["submitted_at"] = as_utc(values["submitted_at"])
    return Attempt(**values)


def _attempt_columns():
    return [attempt_table.c[name] for name in Attempt.__dataclass_fields__]


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def as_utc(when: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were stored in UTC."""
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL: readers (an export, the report) never block the graders writing their results.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
