"""Bar chart of a comparison: images/s per row, error bars from each median's 95 % CI (the
published range for a reference), the speedup on each bar.

matplotlib is the optional extra `plot` (uv sync --extra plot).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from segbench.atomic import atomic_path
from segbench.compare import Comparison, Row

MEASURED, PUBLISHED = "#2a6fbb", "#b8b8b8"


def error_interval(row: Row) -> tuple[float, float]:
    """(fast, slow) ms per image that a row's error bar spans."""
    if row.kind == "measured" and row.ms_per_image_ci95 is not None:
        return row.ms_per_image_ci95
    if row.kind == "measured":  # one timed step: no interval
        return (row.ms_per_image, row.ms_per_image)
    return row.ms_per_image_range


def plot_comparison(comparison: Comparison, path: Path, title: str = "segbench compare") -> Path:
    """Write the chart as a PNG, atomically. ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    rows = comparison.rows
    values = [row.images_per_s for row in rows]
    # images/s at the slow and fast ends of each row's interval: the median's 95 % CI for a
    # measured row, the published range for a reference.
    ends = [error_interval(row) for row in rows]
    lower = [max(0.0, v - 1000.0 / slow) for v, (_, slow) in zip(values, ends, strict=True)]
    upper = [max(0.0, 1000.0 / fast - v) for v, (fast, _) in zip(values, ends, strict=True)]
    labels = [
        "\n".join(textwrap.wrap(row.label, 16))
        + (f"\n{row.backend} · {row.precision}" if row.kind == "measured" else f"\n({row.kind})")
        for row in rows
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.7 * len(rows)), 5.2), dpi=120)
    bars = ax.bar(
        range(len(rows)),
        values,
        yerr=[lower, upper],
        capsize=4,
        color=[MEASURED if row.kind == "measured" else PUBLISHED for row in rows],
        hatch=None,
        edgecolor="black",
        linewidth=0.6,
    )
    for bar, row in zip(bars, rows, strict=True):
        if row.kind == "estimate":
            bar.set_hatch("//")
        elif row.kind == "published":
            bar.set_hatch("..")
    top = max(v + u for v, u in zip(values, upper, strict=True))
    for i, (bar, row) in enumerate(zip(bars, rows, strict=True)):
        low, typical, high = row.speedup
        if i == comparison.baseline:
            text = "baseline"
        elif row.kind != "measured" and row.ms_per_image_range[0] != row.ms_per_image_range[1]:
            text = f"{low:.1f}–{high:.1f}×"
        else:
            text = f"{typical:.2f}×"
        ax.text(
            bar.get_x() + bar.get_width() / 2,
            bar.get_height() + upper[i] + 0.02 * top,
            text,
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_xticks(range(len(rows)), labels, fontsize=8)
    ax.set_ylabel("images/s (higher is faster)")
    ax.set_ylim(0, top * 1.15)
    ax.set_title(
        f"{title}: training throughput; error bars: 95 % CI (measured), range (published)",
        fontsize=10,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(path)
