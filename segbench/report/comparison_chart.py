"""The chart of a comparison: images/s per row with its value and speedup, error bars from
each median's 95 % CI or the published range, on a log axis when the rows span too much."""

from __future__ import annotations

import math
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.benchmark.references import PUBLISHED_KERAS
from segbench.report.plot import number, plain, plain_ticks, save_png
from segbench.results.compare import Comparison, Row

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MEASURED, PUBLISHED = "#2a6fbb", "#b8b8b8"
# Above this ratio of the fastest to the slowest row, a linear axis shrinks the slow rows to
# slivers: the comparison is drawn on a log axis, where each ratio is the same distance.
LOG_SPAN = 30.0
KIND_LEGEND = {
    "measured": "measured (a result file)",
    "published": "published reference (article, Keras 2)",
    "estimate": "author's estimate, not a measurement",
}
HATCH = {"measured": None, "published": "..", "estimate": "//"}


def error_interval(row: Row) -> tuple[float, float]:
    """(fast, slow) ms per image that a row's error bar spans."""
    if row.kind == "measured" and row.ms_per_image_ci95 is not None:
        return row.ms_per_image_ci95
    if row.kind == "measured":  # one timed step: no interval
        return (row.ms_per_image, row.ms_per_image)
    return row.ms_per_image_range


def keras_generation(row: Row) -> int | None:
    """The Keras generation (2 or 3) a row was measured with: the published one for a reference,
    else read from the row's conditions ("…, Keras 3.12.4" or "tf-keras 2.19.0 (Keras 2)")."""
    if row.kind != "measured":
        return PUBLISHED_KERAS
    found = re.search(r"\bKeras (\d+)", row.conditions)
    return int(found.group(1)) if found else None


def row_label(row: Row, position: int) -> str:
    """A bar's label: its number in the table and the device, then backend · precision ·
    Keras generation (· published or estimate)."""
    generation = keras_generation(row)
    setup = [row.backend, row.precision] + ([f"Keras {generation}"] if generation else [])
    setup += [] if row.kind == "measured" else [row.kind]
    device = textwrap.wrap(f"#{position} {plain(row.label)}", 32)
    return "\n".join([*device, plain(" · ".join(setup))])


def throughput_label(row: Row, is_baseline: bool) -> str:
    """images/s and the speedup over the baseline (a range for a published range)."""
    low, typical, high = row.speedup
    if is_baseline:
        speedup = "baseline"
    elif row.kind != "measured" and row.ms_per_image_range[0] != row.ms_per_image_range[1]:
        speedup = f"{number(low)}–{number(high)}× baseline"
    else:
        speedup = f"{number(typical)}× baseline"
    return f"{number(row.images_per_s)} images/s · {speedup}"


def value_label(row: Row, is_baseline: bool) -> str:
    """A bar's value: throughput_label, with the row's caveats on a second line."""
    text = throughput_label(row, is_baseline)
    if row.caveats:  # the first few: the table lists every one, with what it means
        shown = [row.caveats[0]]
        for caveat in row.caveats[1:]:
            if len(", ".join([*shown, caveat])) > 40:
                break
            shown.append(caveat)
        more = len(row.caveats) - len(shown)
        text += "\n" + plain("caveats: " + ", ".join(shown) + (f" +{more} more" if more else ""))
    return text


def comparison_figure(comparison: Comparison, title: str = "segbench compare") -> Figure:
    """The comparison as a matplotlib figure: one horizontal bar per row, labelled with its
    value; a log axis when the rows span more than LOG_SPAN×, so that every bar shows."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    rows = comparison.rows
    # images/s at the slow and fast ends of each row's interval: the median's 95 % CI for a
    # measured row, the published range for a reference.
    ends = [error_interval(row) for row in rows]
    slowest = [1000.0 / slow for _, slow in ends]
    fastest = [1000.0 / fast for fast, _ in ends]
    log = max(fastest) > LOG_SPAN * min(slowest)
    fig, ax = plt.subplots(figsize=(11, 1.9 + 0.72 * len(rows)), dpi=120)
    if log:
        ax.set_xscale("log")
    left, right = _x_limits(slowest, fastest, log)
    _draw_bars(ax, comparison, slowest, fastest, (left, right), log)
    _draw_axes(ax, rows, fastest, (left, right), log)
    _draw_legend_and_title(ax, rows, title)
    return fig


def _x_limits(slowest: list[float], fastest: list[float], log: bool) -> tuple[float, float]:
    """(left, right) of the images/s axis: room for every bar to start before its value, and
    on the right for the value labels."""
    if log:
        # A decade below the slowest end: room for every bar to start before its value.
        left = 10 ** math.floor(math.log10(min(slowest)) - 0.3)
        # Room on the right for the value labels (about a third of the width).
        right = 10 ** (math.log10(max(fastest)) + 0.5 * math.log10(max(fastest) / left))
        return left, right
    return 0.0, max(fastest) * 1.7


def _draw_bars(
    ax: Axes,
    comparison: Comparison,
    slowest: list[float],
    fastest: list[float],
    limits: tuple[float, float],
    log: bool,
) -> None:
    """One bar per row from the axis's left end to its images/s, its error bar, its hatch,
    and its value label past the error bar's end."""
    rows = comparison.rows
    left, right = limits
    values = [row.images_per_s for row in rows]
    bars = ax.barh(
        range(len(rows)),
        [v - left for v in values],
        left=left,
        xerr=[
            [v - s for v, s in zip(values, slowest, strict=True)],
            [f - v for v, f in zip(values, fastest, strict=True)],
        ],
        capsize=4,
        color=[MEASURED if row.kind == "measured" else PUBLISHED for row in rows],
        edgecolor="black",
        linewidth=0.6,
        height=0.62,
    )
    for i, (bar, row) in enumerate(zip(bars, rows, strict=True)):
        bar.set_hatch(HATCH[row.kind])
        # Past the error bar's end, on the same scale as the axis.
        x = fastest[i] * 1.12 if log else fastest[i] + 0.015 * right
        ax.text(
            x,
            i,
            value_label(row, i == comparison.baseline),
            va="center",
            ha="left",
            fontsize=9,
            fontweight="bold" if i == comparison.baseline else "normal",
        )


def _draw_axes(
    ax: Axes, rows: list[Row], fastest: list[float], limits: tuple[float, float], log: bool
) -> None:
    """The rows' labels top to bottom, and the images/s axis: its limits, plain-number ticks
    that stop short of the value labels, and its label."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    left, right = limits
    ax.set_yticks(
        range(len(rows)), [row_label(row, i + 1) for i, row in enumerate(rows)], fontsize=8.5
    )
    ax.invert_yaxis()  # the first row at the top, as in the table
    ax.set_xlim(left, right)
    # Log ticks are 1, 2 and 5 × a power of ten: each written as itself (0.2, 1, 200).
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: number(v)) if log else plain_ticks())
    if log:
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_minor_locator(NullLocator())
    # No ticks in the room kept for the value labels: the scale ends a step past the fastest.
    ticks = [t for t in ax.get_xticks() if left <= t <= max(fastest) * (2.5 if log else 1.15)]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xlabel(
        "training throughput, images/s (higher is faster)"
        + ("; log scale: equal distances are equal ratios" if log else "")
    )


def _draw_legend_and_title(ax: Axes, rows: list[Row], title: str) -> None:
    """The legend of the row kinds shown, between the title and the bars, and the title that
    says what the error bars are."""
    from matplotlib.patches import Patch

    kinds = list(dict.fromkeys(row.kind for row in rows))
    ax.legend(
        handles=[
            Patch(
                facecolor=MEASURED if kind == "measured" else PUBLISHED,
                edgecolor="black",
                hatch=HATCH[kind],
                label=KIND_LEGEND[kind],
            )
            for kind in kinds
        ],
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),  # between the title and the bars, whatever their number
        ncol=len(kinds),
        fontsize=8.5,
        frameon=False,
    )
    bars_mean = ["95 % CI of the median (measured)"] * ("measured" in kinds)
    bars_mean += ["published range (references)"] * any(k != "measured" for k in kinds)
    ax.set_title(
        f"{plain(title)}: training throughput per row\nerror bars: " + ", ".join(bars_mean),
        fontsize=10,
        pad=22,
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)


def plot_comparison(comparison: Comparison, path: Path, title: str = "segbench compare") -> Path:
    """Write the chart as a PNG, atomically. ImportError when matplotlib is missing."""
    return save_png(comparison_figure(comparison, title), path)
