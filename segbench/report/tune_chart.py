"""The chart of a tuning search: each trial's images/s with its 95 % CI against its energy per
image (or its step time), the fastest and the most energy-efficient trial marked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.report.plot import number, plain, plain_ticks, save_png

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D


@dataclass(frozen=True)
class TuneTrialPoint:
    """One trial of a tuning search, as plot_tune draws it."""

    label: str  # e.g. "batch 32 · mixed_bfloat16 · XLA"
    images_per_s: float
    ci_low: float  # 95 % CI of images/s
    ci_high: float
    ms_per_step: float
    joules_per_image: float | None  # None without energy telemetry
    fastest: bool
    most_efficient: bool
    numerics_ok: bool
    pruned: bool = False  # measured with a few short steps only (no CI): it could not win


FASTEST, EFFICIENT, TRIAL, DEVIATES = "#d4a000", "#2ca02c", "#2a6fbb", "#9a9a9a"
PRUNED = "#7f7f7f"


def tune_figure(trials: list[TuneTrialPoint], title: str) -> Figure:
    """The trials as a matplotlib figure: images/s (with its 95 % CI) against J/image when
    every trial has energy, else against ms/step; the fastest and the most energy-efficient
    marked, trials whose numerics deviate hollow and grey, pruned trials grey crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not trials:
        raise ValueError("plot_tune: no trials to draw")
    energy = all(t.joules_per_image is not None for t in trials)
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for t in trials:
        _draw_trial(ax, t, t.joules_per_image if energy else t.ms_per_step)
    ax.legend(handles=_legend(trials), fontsize=8, loc="best")
    ax.set_xlabel(
        "energy per image (J/image, lower is better)"
        if energy
        else "time per step (ms, lower is better; not every trial has energy readings)"
    )
    ax.set_ylabel("training throughput, images/s (higher is faster)")
    ax.xaxis.set_major_formatter(plain_ticks())
    ax.yaxis.set_major_formatter(plain_ticks())
    ax.margins(x=0.25, y=0.2)  # room for each point's label
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title(plain(title) + "\nerror bars: 95 % CI of images/s", fontsize=10)
    return fig


def _draw_trial(ax: Axes, t: TuneTrialPoint, x: float) -> None:
    """One trial at (`x`, its images/s) with its 95 % CI, marked by what it is, and labelled."""
    if not t.numerics_ok:
        colour, marker, size = DEVIATES, "o", 8
    elif t.pruned:
        colour, marker, size = PRUNED, "X", 8
    elif t.fastest:
        colour, marker, size = FASTEST, "*", 18
    elif t.most_efficient:
        colour, marker, size = EFFICIENT, "D", 10
    else:
        colour, marker, size = TRIAL, "o", 8
    ax.errorbar(
        x,
        t.images_per_s,
        yerr=[[max(0.0, t.images_per_s - t.ci_low)], [max(0.0, t.ci_high - t.images_per_s)]],
        fmt=marker,
        markersize=size,
        color=colour,
        ecolor=colour,
        markerfacecolor="none" if not t.numerics_ok else colour,
        markeredgecolor=colour if not t.numerics_ok else "black",
        markeredgewidth=1.2 if not t.numerics_ok else 0.6,
        capsize=3,
        zorder=3,
    )
    notes = [plain(t.label), f"{number(t.images_per_s)} images/s"]
    notes += ["fastest"] * t.fastest + ["most energy-efficient"] * t.most_efficient
    notes += [] if t.numerics_ok else ["numerics deviate"]
    notes += ["pruned (short steps)"] * (t.pruned and t.numerics_ok)
    ax.annotate(
        "\n".join(notes),
        (x, t.images_per_s),
        xytext=(8, 6),
        textcoords="offset points",
        fontsize=7.5,
        va="bottom",
        color="#555555" if not t.numerics_ok or t.pruned else "black",
        fontweight="bold" if t.fastest or t.most_efficient else "normal",
    )


def _legend(trials: list[TuneTrialPoint]) -> list[Line2D]:
    """The legend's markers: fastest and trial, most energy-efficient and numerics deviate
    where a trial is so."""
    from matplotlib.lines import Line2D

    legend = [
        Line2D(
            [],
            [],
            marker="*",
            linestyle="",
            markersize=13,
            color=FASTEST,
            markeredgecolor="black",
            label="fastest",
        ),
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=7,
            color=TRIAL,
            markeredgecolor="black",
            label="trial",
        ),
    ]
    if any(t.most_efficient for t in trials):
        legend.insert(
            1,
            Line2D(
                [],
                [],
                marker="D",
                linestyle="",
                markersize=8,
                color=EFFICIENT,
                markeredgecolor="black",
                label="most energy-efficient",
            ),
        )
    if any(t.pruned and t.numerics_ok for t in trials):
        legend.append(
            Line2D(
                [],
                [],
                marker="X",
                linestyle="",
                markersize=7,
                color=PRUNED,
                label="pruned after a few short steps",
            )
        )
    if not all(t.numerics_ok for t in trials):
        legend.append(
            Line2D(
                [],
                [],
                marker="o",
                linestyle="",
                markersize=7,
                color=DEVIATES,
                markerfacecolor="none",
                label="numerics deviate",
            )
        )
    return legend


def plot_tune(trials: list[TuneTrialPoint], path: Path, title: str) -> Path:
    """Write the tuning trials as a PNG, atomically (tune_figure). ImportError when matplotlib
    is missing; ValueError when there are no trials."""
    return save_png(tune_figure(trials, title), path)
