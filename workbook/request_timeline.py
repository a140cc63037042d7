"""Chapter 9's plot of a load run over time: who answered each second, what failed, and how long each
request took, with the moments something was done to the service (a kill, a deploy) marked on it."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt  # Jupyter picks its inline backend; scripts and tests get Agg (no display)


def timeline(
    samples: list[dict],
    title: str,
    events: dict[str, float] | None = None,
    t0: float | None = None,
    bin_s: float = 1.0,
    colour_by: str = "version",
):
    """Two panels over time: answers per `bin_s` stacked by version (or replica) with failures in red,
    and every request's latency. `events` ({label: epoch seconds}) are drawn as vertical lines."""
    t0 = t0 if t0 is not None else min(s["t"] for s in samples)
    keys = sorted({str(s.get(colour_by)) for s in samples if s["status"] == 200})
    end = max(s["t"] for s in samples) - t0
    nbins = max(1, math.ceil((end + 1e-9) / bin_s))
    counts = {k: [0] * nbins for k in [*keys, "failed"]}
    for s in samples:
        i = min(nbins - 1, max(0, int((s["t"] - t0) / bin_s)))
        counts[str(s.get(colour_by)) if s["status"] == 200 else "failed"][i] += 1
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True, height_ratios=[3, 2])
    xs = [i * bin_s for i in range(nbins)]
    base = [0] * nbins
    palette = [c for c in plt.get_cmap("tab10").colors if c != plt.get_cmap("tab10").colors[3]]  # red: failures
    for n, k in enumerate([*keys, "failed"]):
        if k == "failed" and not any(counts[k]):
            continue
        label = f"{colour_by} {k}" if k != "failed" else "failed"
        colour = "tab:red" if k == "failed" else palette[n % len(palette)]
        top.bar(xs, counts[k], width=bin_s, bottom=base, align="edge", label=label, color=colour)
        base = [b + c for b, c in zip(base, counts[k], strict=True)]
    top.set_ylabel(f"requests per {bin_s:g} s")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    top.set_title(title)
    ok = [s for s in samples if s["status"] == 200]
    bad = [s for s in samples if s["status"] != 200]
    bottom.scatter([s["t"] - t0 for s in ok], [s["ms"] for s in ok], s=6, alpha=0.5, label="answered")
    if bad:
        bottom.scatter([s["t"] - t0 for s in bad], [s["ms"] for s in bad], s=18, color="tab:red", label="failed")
    bottom.set_yscale("log")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds")
    for label, at in (events or {}).items():
        for ax in (top, bottom):
            ax.axvline(at - t0, color="black", linestyle="--", linewidth=0.8)
        top.text(at - t0, top.get_ylim()[1], " " + label, rotation=90, va="top", fontsize=8)
    fig.tight_layout()
    return fig
