"""The class report: one self-contained HTML page about a lab, made from the gradebook.

It shows the score distribution, the pass rate of each check, the most common failure with its hint,
the slowest builds and the largest images, and who could not be graded and why. Everything is inline
(CSS, an SVG chart), nothing is fetched, and every text that came from a learner (ids, messages, log
lines) is escaped by the template engine.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape

from grader import __version__
from grader.gradebook import Attempt, Gradebook
from grader.spec import LabSpec

BINS = 10  # score distribution in steps of 10 % of the maximum
TOP = 5  # rows in the slowest-builds and largest-images tables

_env = Environment(
    loader=PackageLoader("grader", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class CheckRate:
    id: str
    name: str
    visibility: str
    points: float
    passed: int
    failed: int
    other: int  # skipped or error

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.other

    @property
    def rate(self) -> float:
        return 100.0 * self.passed / self.total if self.total else 0.0


def collect(gradebook: Gradebook, lab: str, spec: LabSpec | None = None) -> dict:
    """Everything the page shows, as plain values (the template only lays them out)."""
    summaries = gradebook.summaries(lab)
    counting: list[Attempt] = [s.counting for s in summaries if s.counting is not None]
    rows = gradebook.check_rows([a.id for a in counting])
    order = {c.check: i for i, c in enumerate(spec.checks)} if spec else {}

    rates: dict[str, CheckRate] = {}
    failures: dict[str, list[dict]] = {}
    for row in rows:
        rate = rates.setdefault(
            row["check_id"], CheckRate(row["check_id"], row["name"], row["visibility"], row["max_score"], 0, 0, 0)
        )
        if row["status"] == "passed":
            rate.passed += 1
        elif row["status"] == "failed":
            rate.failed += 1
            failures.setdefault(row["check_id"], []).append(row)
        else:
            rate.other += 1
    checks = sorted(rates.values(), key=lambda r: (order.get(r.id, len(order)), r.name))

    common = None
    if failures:
        check_id = max(failures, key=lambda c: (len(failures[c]), -order.get(c, 0)))
        failed = failures[check_id]
        hint = Counter(r["hint"] for r in failed if r["hint"]).most_common(1)
        message = Counter(r["message"] for r in failed if r["message"]).most_common(1)
        common = {
            "name": rates[check_id].name,
            "id": check_id,
            "count": len(failed),
            "of": rates[check_id].total,
            "hint": hint[0][0] if hint else "",
            "message": message[0][0] if message else "",
        }

    percents = [100.0 * a.score / a.max_score if a.max_score else 0.0 for a in counting]
    counts = [0] * BINS
    for p in percents:
        counts[min(int(p // (100 / BINS)), BINS - 1)] += 1
    bins = [
        {"label": f"{i * 100 // BINS}–{(i + 1) * 100 // BINS - (0 if i == BINS - 1 else 1)} %", "count": n}
        for i, n in enumerate(counts)
    ]

    def top(key) -> list[Attempt]:
        return sorted((a for a in counting if key(a) is not None), key=key, reverse=True)[:TOP]

    return {
        "lab": lab,
        "title": spec.title if spec else "",
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "learners": summaries,
        "n_learners": len(summaries),
        "n_graded": len(counting),
        "n_full": sum(1 for a in counting if a.max_score and a.score == a.max_score),
        "n_timeout": sum(1 for a in counting if a.status == "timeout"),
        "ungraded": [s for s in summaries if s.counting is None and s.latest is not None],
        "missing": [s.learner for s in summaries if s.latest is None],
        "mean": statistics.fmean(percents) if percents else None,
        "median": statistics.median(percents) if percents else None,
        "bins": bins,
        "chart": _chart(bins),
        "checks": checks,
        "common": common,
        "slowest": top(lambda a: a.build_s),
        "largest": top(lambda a: a.image_mb),
    }


def _chart(bins: list[dict], width: int = 640, height: int = 240) -> dict:
    """Bar geometry of the distribution chart (inline SVG: its labels are text a browser can read out)."""
    left, bottom, top_pad = 40, 40, 24
    slot = (width - left - 10) / len(bins)
    tallest = max((b["count"] for b in bins), default=0) or 1
    area = height - bottom - top_pad
    bars = []
    for i, b in enumerate(bins):
        h = area * b["count"] / tallest
        bars.append(
            {
                "x": round(left + i * slot + 4, 1),
                "y": round(height - bottom - h, 1),
                "w": round(slot - 8, 1),
                "h": round(h, 1),
                "cx": round(left + i * slot + slot / 2, 1),
                **b,
            }
        )
    return {"width": width, "height": height, "base": height - bottom, "left": left, "bars": bars}


def render(gradebook: Gradebook, lab: str, spec: LabSpec | None = None) -> str:
    return _env.get_template("class_report.html.j2").render(**collect(gradebook, lab, spec))


def write(gradebook: Gradebook, lab: str, path: Path, spec: LabSpec | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(gradebook, lab, spec), encoding="utf-8")
    return path
