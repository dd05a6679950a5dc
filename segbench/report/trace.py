"""The trace of one run: the timed steps over the run with their median and its 95 % CI, the
compile and warm-up steps beside them, and power, clock and temperature from the telemetry,
which shows throttling at a glance."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from segbench.measure.run.runner import COMPILE, TIMED, TRAIN, VALIDATION, WARMUP, StepRecord
from segbench.report.plot import duration, number, plain, plain_ticks, save_png
from segbench.results.result import Result, recompute
from segbench.results.stats import Summary, timed_steps

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from segbench.measure.telemetry.summary import Trace

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
    x, x_label = _step_starts(steps)
    # The main panel: the steps the statistics are made of, and nothing else.
    timed = timed_steps(result.config, steps)
    ids = {id(s) for s in timed}
    shown = [(xi, s) for xi, s in zip(x, steps, strict=True) if id(s) in ids]
    excluded = [s for s in steps if s.phase in EXCLUDED]
    others = [s for s in steps if s.phase not in EXCLUDED and id(s) not in ids]
    x_label += _not_drawn(others)
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

    summary = recompute(result).result.summary  # from the steps, as compare and show do
    which = "training" if result.config.epochs > 0 else "timed"
    _draw_timed(main, shown, summary, f"{len(timed):,} {which} steps")
    _mark_repeats_and_epochs(main, steps, x)
    _fit_main_panel(main, shown, steps)
    _draw_power_and_legend(main, trace)
    if excluded:
        side = fig.add_subplot(grid[0, 0])
        _draw_excluded(side, excluded, summary.median_ms)
    if lower:
        bottom = fig.add_subplot(grid[1, -1], sharex=main)
        _draw_clock_and_temperature(bottom, trace)
        bottom.set_xlabel(x_label)
        main.tick_params(labelbottom=False)
    else:
        main.set_xlabel(x_label)
    fig.suptitle(_trace_title(result, title), fontsize=9.5)
    return fig


def _step_starts(steps: list[StepRecord]) -> tuple[list[float], str]:
    """Each step's start (s) on the x axis, and the axis's label."""
    if all(s.at_s is not None for s in steps):
        return [s.at_s for s in steps], "seconds since the run started"
    # Files made before schema version 3: steps laid end to end.
    x, clock = [], 0.0
    for s in steps:
        x.append(clock)
        clock += s.ms / 1000
    return x, "seconds of step time (this file has no step start times)"


def _not_drawn(others: list[StepRecord]) -> str:
    """A line for the x axis's label naming the steps not in the statistics, which are not
    drawn (validation steps and partial batches of the epochs); empty when there are none."""
    if not others:
        return ""
    validation = [s.ms for s in others if s.phase == VALIDATION]
    partial = len(others) - len(validation)
    notes = [f"{len(validation)} validation steps"] if validation else []
    notes += [f"{partial} partial batches"] if partial else []
    return "\nnot drawn (not in the statistics): " + ", ".join(notes)


def _draw_timed(
    main: Axes, shown: list[tuple[float, StepRecord]], summary: Summary, counted: str
) -> None:
    """The timed (or training) steps by phase, their median (`counted` names the steps it is
    the median of) and its 95 % CI."""
    for phase, colour in PHASE_COLOURS.items():
        points = [(xi, s.ms) for xi, s in shown if s.phase == phase]  # timed, or train
        if points:
            starts, durations = zip(*points, strict=True)
            _draw_steps(main, starts, durations, colour, f"{phase} step")
    if summary.median_ms is not None:
        main.axhline(
            summary.median_ms,
            color="black",
            linewidth=1.1,
            zorder=4,  # above the steps: it must show through 200,000 of them
            label=f"median of {counted}: {number(summary.median_ms)} ms",
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


def _mark_repeats_and_epochs(main: Axes, steps: list[StepRecord], x: list[float]) -> None:
    """A dashed line where each repeat after the first starts, a dotted one for each epoch."""
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


def _fit_main_panel(
    main: Axes, shown: list[tuple[float, StepRecord]], steps: list[StepRecord]
) -> None:
    """The main panel's limits around the timed steps, plain-number ticks and its y label."""
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


def _draw_power_and_legend(main: Axes, trace: Trace | None) -> None:
    """The telemetry's power on a second y axis of the main panel, where it has it, and the
    legend of everything in the panel above it."""
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


def _draw_clock_and_temperature(bottom: Axes, trace: Trace) -> None:
    """The lower panel: the telemetry's clock and, on a second y axis, its temperature."""
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


def _trace_title(result: Result, title: str | None) -> str:
    """The figure's title: `title`, or what ran where and the telemetry's source."""
    if title:
        return plain(title)
    source = result.telemetry.source if result.telemetry else None
    telemetry_note = f"telemetry: {source}" if source else "no telemetry"
    return plain(
        f"{result.config.preset} on {result.device.description} — "
        f"{result.environment.keras_backend}, {result.config.precision}, "
        f"batch {result.config.batch_size}, width {result.config.width:g} ({telemetry_note})"
    )


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
    return save_png(trace_figure(result, title), path)
