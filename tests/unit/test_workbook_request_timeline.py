"""workbook.request_timeline: the plot of a load run over time, drawn from made-up samples."""

from __future__ import annotations

from workbook.request_timeline import timeline


def test_timeline_draws_versions_failures_and_events():
    samples = [
        {
            "t": 100 + i / 10,
            "status": 200 if i % 7 else 0,
            "version": "1" if i < 20 else "2",
            "served_by": "a",
            "ms": 5 + i,
        }
        for i in range(40)
    ]
    fig = timeline(samples, "update", events={"deploy": 101.0}, bin_s=0.5)
    top, bottom = fig.axes
    assert {t.get_text() for t in top.get_legend().get_texts()} == {"version 1", "version 2", "failed"}
    assert any("deploy" in t.get_text() for t in top.texts)
