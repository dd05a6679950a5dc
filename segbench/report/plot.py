"""Pictures: the chart of a comparison (images/s per row with its value and speedup, error bars
from each median's 95 % CI or the published range), the trace of one run (the timed steps over
the run with their median and its 95 % CI, the compile and warm-up steps beside them, power,
clock and temperature), which shows throttling at a glance, and the trials of a tuning search.

matplotlib is the optional extra `plot` (uv sync --extra plot). Each `…_figure` function builds
the figure (what the tests read); each `plot_…` writes it as a PNG, atomically.
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segbench.atomic import atomic_path
from segbench.benchmark.references import PUBLISHED_KERAS
from segbench.errors import BadInput
from segbench.measure.runner import COMPILE, TIMED, TRAIN, VALIDATION, WARMUP
from segbench.report.printable import printable
from segbench.results.compare import Comparison, Row
from segbench.results.result import Result, recompute
from segbench.results.stats import timed_steps

if TYPE_CHECKING:
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


def number(value: float) -> str:
    """A value as a plain number for a tick or a label: 0.5, 12.2, 138, 18,000 (never 10³)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def duration(ms: float) -> str:
    """A step time for a label: "35.1 s", "412 ms"."""
    return f"{ms / 1000:.1f} s" if ms >= 1000 else f"{number(ms)} ms"


def decimals(values: list[float]) -> int:
    """The fewest decimals that write each of `values` exactly: 0 for 115, 120; 1 for 127.5."""
    for places in range(7):
        if all(abs(v - round(v, places)) <= 1e-9 * max(1.0, abs(v)) for v in values):
            return places
    return 6


def plain_ticks():
    """A matplotlib tick formatter: plain numbers with thousands separators and the decimals
    the ticks' spacing needs (120, 127.5, 18,000), never an offset or a power of ten."""
    from matplotlib.ticker import Formatter

    class PlainTicks(Formatter):
        def __call__(self, x, pos=None):  # one value alone: as many decimals as it has
            return f"{x:,.{decimals([x])}f}"

        def format_ticks(self, values):
            places = decimals(list(values))
            return [f"{v:,.{places}f}" for v in values]

    return PlainTicks()


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
    device = textwrap.wrap(f"#{position} {_plain(row.label)}", 32)
    return "\n".join([*device, _plain(" · ".join(setup))])


def value_label(row: Row, is_baseline: bool) -> str:
    """A bar's value: images/s and the speedup over the baseline (a range for a published
    range), with the row's caveats on a second line."""
    low, typical, high = row.speedup
    if is_baseline:
        speedup = "baseline"
    elif row.kind != "measured" and row.ms_per_image_range[0] != row.ms_per_image_range[1]:
        speedup = f"{number(low)}–{number(high)}× baseline"
    else:
        speedup = f"{number(typical)}× baseline"
    text = f"{number(row.images_per_s)} images/s · {speedup}"
    if row.caveats:  # the first few: the table lists every one, with what it means
        shown = [row.caveats[0]]
        for caveat in row.caveats[1:]:
            if len(", ".join([*shown, caveat])) > 40:
                break
            shown.append(caveat)
        more = len(row.caveats) - len(shown)
        text += "\n" + _plain("caveats: " + ", ".join(shown) + (f" +{more} more" if more else ""))
    return text


def comparison_figure(comparison: Comparison, title: str = "segbench compare") -> Figure:
    """The comparison as a matplotlib figure: one horizontal bar per row, labelled with its
    value; a log axis when the rows span more than LOG_SPAN×, so that every bar shows."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    rows = comparison.rows
    values = [row.images_per_s for row in rows]
    # images/s at the slow and fast ends of each row's interval: the median's 95 % CI for a
    # measured row, the published range for a reference.
    ends = [error_interval(row) for row in rows]
    slowest = [1000.0 / slow for _, slow in ends]
    fastest = [1000.0 / fast for fast, _ in ends]
    log = max(fastest) > LOG_SPAN * min(slowest)
    fig, ax = plt.subplots(figsize=(11, 1.9 + 0.72 * len(rows)), dpi=120)
    if log:
        ax.set_xscale("log")
        # A decade below the slowest end: room for every bar to start before its value.
        left = 10 ** math.floor(math.log10(min(slowest)) - 0.3)
        # Room on the right for the value labels (about a third of the width).
        right = 10 ** (math.log10(max(fastest)) + 0.5 * math.log10(max(fastest) / left))
    else:
        left, right = 0.0, max(fastest) * 1.7
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
        f"{_plain(title)}: training throughput per row\nerror bars: " + ", ".join(bars_mean),
        fontsize=10,
        pad=22,
    )
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def plot_comparison(comparison: Comparison, path: Path, title: str = "segbench compare") -> Path:
    """Write the chart as a PNG, atomically. ImportError when matplotlib is missing."""
    return _save(comparison_figure(comparison, title), path)


PHASE_COLOURS = {
    COMPILE: "#d62728",
    WARMUP: "#ff7f0e",
    TIMED: "#2a6fbb",
    TRAIN: "#2a6fbb",
    VALIDATION: "#2ca02c",
}
EXCLUDED = (COMPILE, WARMUP)  # never in the statistics: drawn beside the timed steps


def _present(values: list[float | None]) -> bool:
    return any(v is not None for v in values)


def _draw_steps(ax, starts, durations, colour: str, label: str) -> None:
    """Each step as a line from its start to its end, at the height of its duration: one path
    with gaps (NaN) between steps, which draws 200,000 steps in a second where a collection of
    200,000 segments takes minutes."""
    import numpy as np

    starts, durations = np.asarray(starts, dtype=float), np.asarray(durations, dtype=float)
    gap = np.full_like(starts, np.nan)
    xs = np.column_stack([starts, starts + durations / 1000, gap]).ravel()
    ys = np.column_stack([durations, durations, gap]).ravel()
    ax.plot(xs, ys, color=colour, linewidth=2, zorder=3)
    ax.plot(starts, durations, "o", markersize=3, color=colour, label=label, zorder=3)


def trace_figure(result: Result, title: str | None = None) -> Figure:
    """The run's trace as a matplotlib figure. The main panel is the timed steps on a linear
    axis that fits them, with their median and its 95 % CI; the compile and warm-up steps
    (often 2–100× a timed step) sit in a narrow panel of their own on the left."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = result.steps
    if all(s.at_s is not None for s in steps):
        x = [s.at_s for s in steps]
        x_label = "seconds since the run started"
    else:  # files made before schema version 3: steps laid end to end
        x, clock = [], 0.0
        for s in steps:
            x.append(clock)
            clock += s.ms / 1000
        x_label = "seconds of step time (this file has no step start times)"
    # The main panel: the steps the statistics are made of, and nothing else.
    timed = timed_steps(result.config, steps)
    ids = {id(s) for s in timed}
    shown = [(xi, s) for xi, s in zip(x, steps, strict=True) if id(s) in ids]
    excluded = [s for s in steps if s.phase in EXCLUDED]
    others = [s for s in steps if s.phase not in EXCLUDED and id(s) not in ids]
    if others:  # validation steps and partial batches of the epochs: named, not drawn
        validation = [s.ms for s in others if s.phase == VALIDATION]
        partial = len(others) - len(validation)
        notes = [f"{len(validation)} validation steps"] if validation else []
        notes += [f"{partial} partial batches"] if partial else []
        x_label += "\nnot drawn (not in the statistics): " + ", ".join(notes)
    trace = result.telemetry.trace if result.telemetry is not None else None
    lower = trace is not None and (_present(trace.clock_mhz) or _present(trace.temperature_c))
    fig = plt.figure(figsize=(11, 6.5 if lower else 4.8), dpi=120)
    grid = fig.add_gridspec(
        2 if lower else 1,
        2 if excluded else 1,
        width_ratios=[1, 6] if excluded else [1],
        height_ratios=[2, 1] if lower else [1],
    )
    main = fig.add_subplot(grid[0, -1])

    for phase, colour in PHASE_COLOURS.items():
        points = [(xi, s.ms) for xi, s in shown if s.phase == phase]  # timed, or train
        if points:
            starts, durations = zip(*points, strict=True)
            _draw_steps(main, starts, durations, colour, f"{phase} step")
    summary = recompute(result).result.summary  # from the steps, as compare and show do
    which = "training" if result.config.epochs > 0 else "timed"
    if summary.median_ms is not None:
        main.axhline(
            summary.median_ms,
            color="black",
            linewidth=1.1,
            zorder=4,  # above the steps: it must show through 200,000 of them
            label=f"median of {len(timed):,} {which} steps: {number(summary.median_ms)} ms",
        )
    if summary.median_ci95_ms is not None:
        low, high = summary.median_ci95_ms
        main.axhspan(
            low,
            high,
            color="black",
            alpha=0.12,
            linewidth=0,
            zorder=1,
            label=f"its 95 % CI: {number(low)}–{number(high)} ms",
        )
    epoch_line = None
    for s, xi in zip(steps, x, strict=True):
        if s.index != 0 or not s.training:
            continue
        if s.repeat > 0 and (s.epoch or 0) == 0:
            main.axvline(xi, color="grey", linestyle="--", linewidth=0.8)
            main.annotate(
                f"repeat {s.repeat + 1}",
                (xi, 1),
                xycoords=("data", "axes fraction"),
                xytext=(-2, -3),
                textcoords="offset points",
                fontsize=7,
                rotation=90,
                va="top",
                ha="right",
                color="grey",
            )
        elif (s.epoch or 0) > 0:
            epoch_line = main.axvline(xi, color="grey", linestyle=":", linewidth=0.9)
    if epoch_line is not None:
        epoch_line.set_label("an epoch starts")
    # A linear axis that fits the timed steps, not 0: their spread is what the panel is for.
    heights = [s.ms for _, s in shown] or [s.ms for s in steps]
    bottom_ms, top_ms = min(heights), max(heights)
    # At least 10 % of the step time tall: a spread of 1 % must not fill the panel.
    pad = max(0.08 * (top_ms - bottom_ms), (0.1 * top_ms - (top_ms - bottom_ms)) / 2)
    main.set_ylim(max(0.0, bottom_ms - pad), top_ms + pad)
    if shown:
        first = min(xi for xi, _ in shown)
        last = max(xi + s.ms / 1000 for xi, s in shown)
        margin = 0.02 * (last - first) or 1.0
        main.set_xlim(first - margin, last + margin)
    main.xaxis.set_major_formatter(plain_ticks())  # 3,600,000 s, never "1e6" in a corner
    main.yaxis.set_major_formatter(plain_ticks())
    main.set_ylabel("step time (ms)")
    main.grid(alpha=0.3)
    handles, labels = main.get_legend_handles_labels()
    if trace is not None and _present(trace.power_w):
        power = main.twinx()
        line = power.plot(
            trace.t_s,
            [float("nan") if v is None else v for v in trace.power_w],
            color="black",
            linewidth=0.8,
            alpha=0.6,
            label="power (W)",
        )
        power.set_ylabel("power (W)")
        power.yaxis.set_major_formatter(plain_ticks())
        handles += line
        labels += ["power (W)"]
    main.legend(
        handles,
        labels,
        fontsize=7.5,
        loc="lower left",
        bbox_to_anchor=(0, 1.0),
        ncol=min(len(labels), 4),
        frameon=False,
        borderaxespad=0.2,
    )
    if excluded:
        side = fig.add_subplot(grid[0, 0])
        _draw_excluded(side, excluded, summary.median_ms)
    if lower:
        bottom = fig.add_subplot(grid[1, -1], sharex=main)
        if _present(trace.clock_mhz):
            bottom.plot(
                trace.t_s,
                [float("nan") if v is None else v for v in trace.clock_mhz],
                color="#9467bd",
                linewidth=0.9,
            )
            bottom.set_ylabel("clock (MHz)", color="#9467bd")
            bottom.yaxis.set_major_formatter(plain_ticks())
        if _present(trace.temperature_c):
            heat = bottom.twinx()
            heat.plot(
                trace.t_s,
                [float("nan") if v is None else v for v in trace.temperature_c],
                color="#8c564b",
                linewidth=0.9,
            )
            heat.set_ylabel("temperature (°C)", color="#8c564b")
        bottom.grid(alpha=0.3)
        bottom.set_xlabel(x_label)
        main.tick_params(labelbottom=False)
    else:
        main.set_xlabel(x_label)
    source = result.telemetry.source if result.telemetry else None
    telemetry_note = f"telemetry: {source}" if source else "no telemetry"
    fig.suptitle(
        _plain(title)
        if title
        else _plain(
            f"{result.config.preset} on {result.device.description} — "
            f"{result.environment.keras_backend}, {result.config.precision}, "
            f"batch {result.config.batch_size}, width {result.config.width:g} ({telemetry_note})"
        ),
        fontsize=9.5,
    )
    return fig


def _draw_excluded(ax, excluded, median_ms: float | None) -> None:
    """The compile and warm-up steps, one bar each in the order they ran, labelled with their
    time (all of them when there are few, else the longest), against the timed median."""
    heights = [s.ms for s in excluded]
    ax.bar(
        range(len(excluded)),
        heights,
        color=[PHASE_COLOURS[s.phase] for s in excluded],
        width=0.7,
        edgecolor="black",
        linewidth=0.4,
    )
    few = len(excluded) <= 6
    names = {COMPILE: "compile", WARMUP: "warm-up"}
    if few:
        ax.set_xticks(
            range(len(excluded)), [names[s.phase] for s in excluded], rotation=90, fontsize=7.5
        )
    else:
        counts = {names[p]: sum(s.phase == p for s in excluded) for p in (COMPILE, WARMUP)}
        ax.set_xticks([])
        ax.set_xlabel(
            ", ".join(f"{n} {name}" for name, n in counts.items() if n) + " steps,\nin run order",
            fontsize=7.5,
        )
    longest = heights.index(max(heights))
    for i in range(len(excluded)) if few else [longest]:
        # Many bars: the longest's label leans away from the nearer edge of the panel.
        lean = "center" if few else ("left" if i < len(excluded) / 2 else "right")
        ax.annotate(
            duration(heights[i]),
            (i, heights[i]),
            xytext=(0, 2),
            textcoords="offset points",
            ha=lean,
            va="bottom",
            fontsize=7,
        )
    if median_ms is not None:  # the scale of a timed step, for comparison
        ax.axhline(median_ms, color="black", linewidth=1.0, linestyle="--")
    ax.set_ylim(0, max(heights) * 1.2)
    ax.yaxis.set_major_formatter(plain_ticks())
    ax.tick_params(axis="y", labelsize=7.5)
    ax.set_ylabel("step time (ms)")
    ax.set_title(
        "excluded from the\nstatistics" + ("; dashed:\nthe timed median" if median_ms else ""),
        fontsize=8,
    )
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def plot_trace(result: Result, path: Path, title: str | None = None) -> Path:
    """Write the run's trace as a PNG, atomically: each step's time where it happened (the
    timed steps with their median and its 95 % CI; compile and warm-up steps beside them;
    repeats and epochs separated), with power, clock and temperature from the telemetry where
    it has them. ImportError when matplotlib is missing."""
    return _save(trace_figure(result, title), path)


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


FASTEST, EFFICIENT, TRIAL, DEVIATES = "#d4a000", "#2ca02c", "#2a6fbb", "#9a9a9a"


def tune_figure(trials: list[TuneTrialPoint], title: str) -> Figure:
    """The trials as a matplotlib figure: images/s (with its 95 % CI) against J/image when
    every trial has energy, else against ms/step; the fastest and the most energy-efficient
    marked, trials whose numerics deviate hollow and grey."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    if not trials:
        raise ValueError("plot_tune: no trials to draw")
    energy = all(t.joules_per_image is not None for t in trials)
    fig, ax = plt.subplots(figsize=(9, 6), dpi=120)
    for t in trials:
        x = t.joules_per_image if energy else t.ms_per_step
        if not t.numerics_ok:
            colour, marker, size = DEVIATES, "o", 8
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
        notes = [_plain(t.label), f"{number(t.images_per_s)} images/s"]
        notes += ["fastest"] * t.fastest + ["most energy-efficient"] * t.most_efficient
        notes += [] if t.numerics_ok else ["numerics deviate"]
        ax.annotate(
            "\n".join(notes),
            (x, t.images_per_s),
            xytext=(8, 6),
            textcoords="offset points",
            fontsize=7.5,
            va="bottom",
            color="#555555" if not t.numerics_ok else "black",
            fontweight="bold" if t.fastest or t.most_efficient else "normal",
        )
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
    ax.legend(handles=legend, fontsize=8, loc="best")
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
    ax.set_title(_plain(title) + "\nerror bars: 95 % CI of images/s", fontsize=10)
    return fig


def plot_tune(trials: list[TuneTrialPoint], path: Path, title: str) -> Path:
    """Write the tuning trials as a PNG, atomically (tune_figure). ImportError when matplotlib
    is missing; ValueError when there are no trials."""
    return _save(tune_figure(trials, title), path)


def _plain(text: str) -> str:
    """A string from a result file as literal chart text: no control characters, and `$`
    escaped (matplotlib reads `$…$` as math, and fails on what is not)."""
    return printable(text).replace("$", r"\$")


# Written into every PNG's Software field: a file that has it may be replaced by a new plot.
SOFTWARE = "segbench"


def writable_target(path: Path, option: str, inputs: list[Path] = ()) -> None:
    """BadInput naming `option` unless `path` may receive a PNG: never a .json name (a result
    a shell glob put there), never one of the `inputs`, and an existing file only when it is
    a PNG segbench wrote (its Software field) — anything else is the user's."""
    shown = f"{option} {path}"
    if path.suffix.lower() == ".json":
        raise BadInput(f"{shown}: a .json name is a result file, not a picture; choose a .png name")
    try:
        same = any(path.resolve() == Path(i).resolve() for i in inputs)
        exists = path.exists()
        head = path.read_bytes()[:4096] if exists and path.is_file() else b""
    except OSError:
        return  # unreadable or not there: writing says why, in one line
    if same:
        raise BadInput(f"{shown}: is one of the input files; choose another name")
    ours = head.startswith(b"\x89PNG") and b"Software\x00" + SOFTWARE.encode() in head
    if exists and path.is_file() and not ours:
        raise BadInput(
            f"{shown}: exists and is not a PNG segbench wrote; choose another name or remove it"
        )


def _save(fig: Figure, path: Path) -> Path:
    """Write `fig` as a PNG at `path`, atomically, and free it."""
    import matplotlib.pyplot as plt

    from segbench import __version__

    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", metadata={"Software": f"{SOFTWARE} {__version__}"})
    finally:
        plt.close(fig)
    return Path(path)
