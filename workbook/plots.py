"""Plots the chapters share, so each experiment's cell is one call. Each returns the matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt  # Jupyter picks its inline backend; scripts and tests get Agg (no display)


def distributions(samples: dict[str, list[float]], title: str, unit: str = "s", log: bool = False):
    """One box (with every sample drawn over it) per label: how spread out each measurement is."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    labels = list(samples)
    ax.boxplot([samples[k] for k in labels], orientation="horizontal", showfliers=False)
    for i, label in enumerate(labels, start=1):
        ax.scatter(samples[label], [i] * len(samples[label]), s=12, alpha=0.6)
    ax.set_yticks(range(1, len(labels) + 1), labels)
    ax.set_xlabel(unit)
    if log:
        ax.set_xscale("log")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def bars(values: dict[str, float], title: str, unit: str = "s", annotate: str = "{:.2f}"):
    """Horizontal bars, one per label, with the value written at the end of each bar."""
    fig, ax = plt.subplots(figsize=(7, 0.5 + 0.5 * len(values)))
    labels = list(values)
    ax.barh(labels, [values[k] for k in labels])
    for i, label in enumerate(labels):
        ax.text(values[label], i, " " + annotate.format(values[label]), va="center")
    ax.invert_yaxis()
    ax.set_xlabel(unit)
    ax.set_title(title)
    ax.margins(x=0.2)
    fig.tight_layout()
    return fig


def grouped_bars(groups: dict[str, dict[str, float]], title: str, unit: str = "s"):
    """Bars grouped by outer key (e.g. a Dockerfile), one bar per inner key (e.g. cold build, rebuild)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    outer = list(groups)
    inner = list(next(iter(groups.values())))
    width = 0.8 / len(inner)
    for j, series in enumerate(inner):
        xs = [i + j * width for i in range(len(outer))]
        heights = [groups[g][series] for g in outer]
        ax.bar(xs, heights, width, label=series)
        for x, h in zip(xs, heights, strict=True):
            ax.text(x, h, f"{h:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([i + width * (len(inner) - 1) / 2 for i in range(len(outer))], outer)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig
