"""Pictures: the bar chart of a comparison (images/s per row, error bars from each median's
95 % CI or the published range, the speedup on each bar), and the trace of one run (step
times over the run with power, clock and temperature), which shows throttling at a glance.

matplotlib is the optional extra `plot` (uv sync --extra plot).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from segbench.atomic import atomic_path
from segbench.compare import Comparison, Row
from segbench.errors import BadInput
from segbench.printable import printable
from segbench.result import Result

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
        "\n".join(textwrap.wrap(_plain(row.label), 16))
        + (
            "\n" + _plain(f"{row.backend} · {row.precision}")
            if row.kind == "measured"
            else f"\n({row.kind})"
        )
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
    return _save(fig, path)


PHASE_COLOURS = {
    "compile": "#d62728",
    "warmup": "#ff7f0e",
    "timed": "#2a6fbb",
    "train": "#2a6fbb",
    "validation": "#2ca02c",
}


def _present(values: list[float | None]) -> bool:
    return any(v is not None for v in values)


def plot_trace(result: Result, path: Path, title: str | None = None) -> Path:
    """Write the run's trace as a PNG, atomically: each step's time where it happened (compile,
    warm-up and timed steps marked; repeats and epochs separated), with power, clock and
    temperature from the telemetry where it has them. ImportError when matplotlib is missing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

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
    trace = result.telemetry.trace if result.telemetry is not None else None
    lower = trace is not None and (_present(trace.clock_mhz) or _present(trace.temperature_c))
    fig, axes = plt.subplots(
        2 if lower else 1,
        1,
        figsize=(10, 6.5 if lower else 4.5),
        dpi=120,
        sharex=True,
        squeeze=False,
        height_ratios=[2, 1] if lower else [1],
    )
    top = axes[0][0]
    for phase, colour in PHASE_COLOURS.items():
        points = [(xi, s.ms) for xi, s in zip(x, steps, strict=True) if s.phase == phase]
        if points:
            starts, durations = (np.array(v, dtype=float) for v in zip(*points, strict=True))
            # Each step as a line from its start to its end, at the height of its duration:
            # one path with gaps (NaN) between steps, which draws 200,000 steps in a second
            # where a collection of 200,000 segments takes minutes.
            gap = np.full_like(starts, np.nan)
            xs = np.column_stack([starts, starts + durations / 1000, gap]).ravel()
            ys = np.column_stack([durations, durations, gap]).ravel()
            top.plot(xs, ys, color=colour, linewidth=2, zorder=3)
            top.plot(starts, durations, "o", markersize=3, color=colour, label=phase, zorder=3)
    for s, xi in zip(steps, x, strict=True):
        if s.index == 0 and (s.repeat > 0 or (s.epoch or 0) > 0):
            label = f"repeat {s.repeat + 1}" if s.epoch in (None, 0) else f"epoch {s.epoch + 1}"
            top.axvline(xi, color="grey", linestyle="--", linewidth=0.8)
            top.annotate(label, (xi, 1), xycoords=("data", "axes fraction"), fontsize=7,
                         rotation=90, va="top", ha="right", color="grey")  # fmt: skip
    ms = [s.ms for s in steps]
    if ms and max(ms) > 20 * min(ms):
        top.set_yscale("log")  # the compile step is often 10–100 × a timed step
    top.set_ylabel("step time (ms)")
    top.grid(alpha=0.3)
    handles, labels = top.get_legend_handles_labels()
    if trace is not None and _present(trace.power_w):
        power = top.twinx()
        line = power.plot(trace.t_s, [float("nan") if v is None else v for v in trace.power_w],
                          color="black", linewidth=0.8, alpha=0.6, label="power (W)")  # fmt: skip
        power.set_ylabel("power (W)")
        handles += line
        labels += ["power (W)"]
    top.legend(handles, labels, fontsize=8, loc="upper right")
    if lower:
        bottom = axes[1][0]
        if _present(trace.clock_mhz):
            bottom.plot(trace.t_s, [float("nan") if v is None else v for v in trace.clock_mhz],
                        color="#9467bd", linewidth=0.9)  # fmt: skip
            bottom.set_ylabel("clock (MHz)", color="#9467bd")
        if _present(trace.temperature_c):
            heat = bottom.twinx()
            heat.plot(trace.t_s, [float("nan") if v is None else v for v in trace.temperature_c],
                      color="#8c564b", linewidth=0.9)  # fmt: skip
            heat.set_ylabel("temperature (°C)", color="#8c564b")
        bottom.grid(alpha=0.3)
        bottom.set_xlabel(x_label)
    else:
        top.set_xlabel(x_label)
    source = result.telemetry.source if result.telemetry else None
    telemetry_note = f"telemetry: {source}" if source else "no telemetry"
    top.set_title(
        title
        or _plain(
            f"{result.config.preset} on {result.device.description} — "
            f"{result.environment.keras_backend}, {result.config.precision}, "
            f"batch {result.config.batch_size}, width {result.config.width:g} ({telemetry_note})"
        ),
        fontsize=9,
    )
    return _save(fig, path)


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


def _save(fig, path: Path) -> Path:
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
