"""Rendering: results, comparisons and checks as rich tables, Markdown, CSV and JSON.

Takes finished data (a Result, a Comparison, caveats, checks) and only renders it; the
judgement lives in compare.py and doctor/.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from segbench.doctor.types import Check
from segbench.report.printable import markdown_cell, printable
from segbench.report.uncut import Field, UncutTable
from segbench.results.compare import (
    Comparison,
    EnvironmentDifference,
    Row,
    device_label,
    outlier_bounds,
)
from segbench.results.result import Result
from segbench.results.stats import Summary


def format_duration(seconds: float, clock: bool = False) -> str:
    """A duration: "24 h 20 min", "5.8 min" or "12.0 s"; with `clock`, "24:20" (h:mm).

    Minutes are truncated, as in the article's "9 h 06 min".
    """
    minutes = int(seconds // 60)
    if clock:
        return f"{minutes // 60}:{minutes % 60:02d}"
    if seconds >= 3600:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _value_range(values: list[float], unit: str) -> str:
    """One value, or "median (min … max)" of several."""
    if len(values) == 1:
        return f"{values[0]:.1f} {unit}"
    return f"{statistics.median(values):.1f} {unit} ({min(values):.1f} … {max(values):.1f})"


def _statistics_rows(s: Summary) -> list[tuple[str, str, str]]:
    """Outliers, drift and repeats as (measure, value, note) rows."""
    rows = []
    if s.outliers is not None:
        rows.append(
            (
                "outliers",
                _plural(s.outliers.count, "step"),
                f"{outlier_bounds(s.outliers.low_ms, s.outliers.high_ms, 1)} (median ± 5 MAD-σ)",
            )
        )
    if s.drift is not None:
        rows.append(
            (
                "drift over the timed steps",
                s.drift.verdict,
                f"{s.drift.change_pct:+.1f} % first → last, p = {s.drift.p_value:.2g}",
            )
        )
    if s.repeats is not None:
        medians = ", ".join(f"{m:.1f}" for m in s.repeats.median_ms)
        rows.append(
            (
                "repeats (olympic mean)",
                f"{s.repeats.olympic_mean_ms:.1f} ms",
                f"CV {s.repeats.cv_pct:.1f} %; medians {medians} ms",
            )
        )
    return rows


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def _batch_label(result: Result) -> str:
    """The batch as run: "16", or "32 (2 replicas × 16)" data-parallel."""
    d = result.distribution
    if d is None:
        return str(result.config.batch_size)
    return f"{d.global_batch} ({_plural(d.replicas, 'replica')} × {d.per_replica_batch})"


def distribution_rows(result: Result) -> list[tuple[str, str, str]]:
    """A data-parallel run's replicas, throughput per replica and scaling efficiency."""
    d = result.distribution
    if d is None:
        return []
    workers = f", {_plural(d.workers, 'worker')}" if d.workers > 1 else ""
    rows = [
        (
            "replicas",
            f"{d.replicas} ({d.strategy}{workers})",
            f"{d.scaling} scaling; BatchNorm {d.batchnorm}",
        ),
        ("all-reduce", d.communication, ", ".join(d.devices)),
    ]
    if d.images_per_s_per_replica is not None:
        rows.append(("throughput per replica", f"{d.images_per_s_per_replica:.1f} images/s", ""))
    if d.scaling_efficiency is not None and d.one_replica_images_per_s is not None:
        rows.append(
            (
                "scaling efficiency",
                f"{100 * d.scaling_efficiency:.1f} %",
                f"one replica alone: {d.one_replica_images_per_s:.1f} images/s",
            )
        )
    return rows


SUMMARY_FIELDS = (Field("measure"), Field("value", number=True), Field("spread", justify="right"))


def model_label(result: Result) -> str:
    """ "width 1" for CV-net; "model build (examples/unet.py:build, base_filters=8)" for a
    user's model (--model)."""
    own = result.model.own
    if own is None:
        return f"width {result.config.width:g}"
    return f"model {own.function} ({', '.join([own.spec, *own.args])})"


def speed_settings(result: Result) -> str:
    """ ", compiled: xla, batchnorm fused" for the settings that change speed, when not the
    default (empty for files made before they were recorded)."""
    model = result.model
    words = []
    if model.compiled not in (None, "off"):
        words.append(f"compiled: {model.compiled}")
    if model.batchnorm not in (None, "keras"):
        words.append(f"batchnorm {model.batchnorm}")
    return "".join(f", {w}" for w in words)


def summary_table(result: Result) -> UncutTable:
    """The run's statistics: step time with its spread, throughput and extrapolations."""
    s = result.summary
    config = result.config
    title = (
        f"segbench {config.preset} — {device_label(result)} — "
        f"{result.environment.keras_backend} (Keras {config.keras_generation}), "
        f"{config.precision}, batch {_batch_label(result)}, {model_label(result)}"
        f"{speed_settings(result)}"
    )
    table = UncutTable(title, SUMMARY_FIELDS)
    if not s.steps:
        table.add_row("timed steps", "0", "no timed step finished")
        return table
    ci = s.median_ci95_ms
    table.add_row(
        "time per step (median)",
        f"{s.median_ms:.1f} ms",
        "95 % CI: needs 2 steps" if ci is None else f"95 % CI {ci[0]:.1f} … {ci[1]:.1f} ms",
    )
    table.add_row("p10 … p90", f"{s.p10_ms:.1f} … {s.p90_ms:.1f} ms", "")
    table.add_row("time per step (mean ± σ)", f"{s.mean_ms:.1f} ms", f"± {s.stdev_ms:.1f} ms")
    table.add_row("range", f"{s.min_ms:.1f} … {s.max_ms:.1f} ms", f"{s.steps} timed steps")
    for label, value, note in _statistics_rows(s):
        table.add_row(label, value, note)
    table.add_row("time per image", f"{s.ms_per_image:.2f} ms", "median step ÷ batch")
    table.add_row("throughput", f"{s.images_per_s:.1f} images/s", "")
    table.add_row("100,000 images", format_duration(s.seconds_per_100k_images), "extrapolated")
    table.add_row(
        "achieved compute",
        f"{s.tflops:.3g} TFLOP/s",
        f"{result.model.training_gflop_per_image:.4g} GFLOP/image",
    )
    compile_s = [ms / 1000 for ms in s.compile_ms]
    table.add_row(
        "first step of each shape (compile)",
        _value_range(compile_s, "s"),
        f"{_plural(len(compile_s), 'step')}, excluded",
    )
    if s.warmup_ms:
        table.add_row("warm-up", _plural(len(s.warmup_ms), "step"), "excluded")
    if s.epoch_train_s is not None:
        table.add_row(
            "epoch (training)",
            _value_range(s.epoch_train_s, "s"),
            f"{len(s.epoch_train_s)} epochs; {s.epoch_ms_per_image_median:.1f} ms/image",
        )
        table.add_row("validation", _value_range(s.epoch_validation_s, "s"), "per epoch")
    for cells in distribution_rows(result) + hardware_rows(result):
        table.add_row(*cells)
    if result.loss_trajectory:
        table.add_row(
            "loss (first → last)",
            f"{result.loss_trajectory[0]:.4f} → {result.loss_trajectory[-1]:.4f}",
            f"IoU {result.iou_trajectory[-1]:.3f}"
            if math.isfinite(result.iou_trajectory[-1])
            else f"loss: {result.model.own.loss}"
            if result.model.own
            else "",
        )
    return table


def format_bytes(n: float) -> str:
    """Bytes as "1.23 GiB", "512.0 MiB"."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f} B"


def hardware_rows(result: Result) -> list[tuple[str, str, str]]:
    """Energy, clocks, temperature, throttling, % of peak and memory as (measure, value, note)
    rows; telemetry that is unavailable gets one row, its reason printed under the table."""
    rows = []
    t = result.telemetry
    if t is not None and t.available:
        rows.append(
            (
                "energy (timed steps)",
                f"{t.energy_j:.1f} J",
                f"{t.mean_w:.1f} W mean, {t.peak_w:.1f} W peak ({t.source})",
            )
        )
        rows.append(
            ("energy per image", f"{t.j_per_image:.3g} J", f"{t.images_per_kj:.0f} images/kJ")
        )
    elif t is not None:
        rows.append(("energy", "not measured", "telemetry unavailable (see below)"))
    if t is not None and t.clocks_mhz is not None:
        c = t.clocks_mhz
        rows.append(("clock", f"{c.median:.0f} MHz", f"{c.min:.0f} … {c.max:.0f} MHz"))
    if t is not None and t.temperature_c_max is not None:
        rows.append(("temperature (max)", f"{t.temperature_c_max:.0f} °C", ""))
    if t is not None and t.throttle is not None and t.source is not None:
        th = t.throttle
        rows.append(
            (
                "throttling",
                "none" if not th.events else _plural(th.events, "event"),
                f"{100 * th.fraction_of_timed_steps:.0f} % of timed steps"
                + (f": {', '.join(th.reasons)}" if th.reasons else ""),
            )
        )
    p = result.peak
    if p is not None and p.measured_tflops is not None:
        rows.append(
            (
                "% of measured ceiling",
                f"{p.achieved_pct_of_measured:.1f} %",
                f"{p.measured_tflops:.3g} TFLOP/s: {p.method}",
            )
        )
    if p is not None and p.vendor_tflops is not None:
        kind = "estimate" if p.vendor_estimate else "published"
        rows.append(
            (
                "% of vendor peak",
                f"{p.achieved_pct_of_vendor:.1f} %",
                f"{p.vendor_tflops:.3g} TFLOP/s {p.vendor_basis.upper()} ({kind}): "
                f"{p.vendor_device}",
            )
        )
    n = result.numerics
    if n is not None and n.status == "skipped":
        rows.append(("numerics check", "skipped", n.reason or ""))
    elif n is not None:
        size = "NaN" if n.max_rel_diff is None else f"{n.max_rel_diff:.2g}"
        rows.append(
            (
                "numerics check",
                "match" if n.status == "match" else "DEVIATES",
                f"max rel. diff {size} at step {n.at_step} (tolerance {n.tolerance:g})",
            )
        )
    m = result.memory
    if m is not None:
        rows.append(("peak memory (host)", format_bytes(m.host_peak_bytes), "whole process"))
        if m.device_peak_bytes is not None:
            rows.append(("peak memory (device)", format_bytes(m.device_peak_bytes), ""))
    return rows


def hardware_notes(result: Result) -> list[str]:
    """What the telemetry and the peak could not measure here, each with the fix."""
    notes = []
    if result.telemetry is not None and result.telemetry.reason:
        notes.append(f"telemetry: {result.telemetry.reason}")
    if result.peak is not None and result.peak.reason:
        notes.append(f"peak: {result.peak.reason}")
    return notes


@dataclass(frozen=True)
class Column:
    """A column of the comparison: its header, whether it holds figures, when it is shown."""

    header: str
    number: bool = True  # figures: kept whole on one line
    energy: bool = False  # shown only when a row has telemetry energy
    caveats: bool = False  # shown only when a row has caveats


COLUMNS = (
    Column("#"),
    Column("device", number=False),
    Column("source", number=False),
    Column("backend · precision", number=False),
    Column("ms/step (p10–p90)"),
    Column("ms/image"),
    Column("images/s"),
    Column("100k images (h:mm)"),
    Column("TFLOP/s"),
    Column("J/image", energy=True),
    Column("images/kJ", energy=True),
    Column("speedup (95 % CI or range)"),
    Column("verdict", number=False),
    Column("caveats", number=False, caveats=True),
)
SPEEDUP = "speedup (95 % CI or range)"
# `segbench compare`'s default table: fits 80 columns; --wide shows every column.
COMPACT = ("#", "device", "ms/image", "images/s", SPEEDUP, "verdict")
# The table that ends `segbench run` (one result against the published figures).
RUN = ("device", "source", "ms/image", "images/s", "100k images (h:mm)", SPEEDUP)


def shown_columns(comparison: Comparison, names: tuple[str, ...] | None = None) -> list[int]:
    """Indices of the COLUMNS a comparison shows (those named, default all): energy columns
    only when a row has energy, the caveats column only when a row has caveats."""
    energy = any(row.j_per_image is not None for row in comparison.rows)
    caveats = any(row.caveats for row in comparison.rows)
    return [
        i
        for i, column in enumerate(COLUMNS)
        if (names is None or column.header in names)
        and (energy or not column.energy)
        and (caveats or not column.caveats)
    ]


_ROW_STYLE = {"measured": "", "published": "dim", "estimate": "dim italic"}


def significant(x: float, digits: int = 3) -> str:
    """`x` to `digits` significant digits, trailing zeros kept: 0.0123, 2.95, 12.0, 123, 1234."""
    if x == 0 or not math.isfinite(x):
        return f"{x:.{digits - 1}f}"
    x = float(f"{x:.{digits}g}")  # rounded first: 9.996 is 10.0, not 10.00
    return f"{x:.{max(0, digits - 1 - math.floor(math.log10(abs(x))))}f}"


def _speedup(number: int, row: Row, comparison: Comparison) -> str:
    """The speedup cell: "2.95× (2.29–3.41)", a published range "26.1–54.2×", or the baseline."""
    if number - 1 == comparison.baseline:
        return "1.00× (baseline)"
    low, typical, high = map(significant, row.speedup)
    fast, slow = row.ms_per_image_range
    if row.kind != "measured" and fast != slow:
        return f"{low}–{high}×"
    return f"{typical}×" if low == high else f"{typical}× ({low}–{high})"


def compare_cells(comparison: Comparison, brief: bool = False) -> list[list[str]]:
    """The comparison as rows of text cells, in COLUMNS order, without control characters;
    `brief`: a verdict names the rows whose caveats undermine it, not the caveats."""
    cells = []
    for i, row in enumerate(comparison.rows, start=1):
        if row.ms_per_step is None:
            step = "—"
        else:
            step = f"{row.ms_per_step:.1f} ({row.p10_ms:.1f}–{row.p90_ms:.1f})"
        fast, slow = row.ms_per_image_range
        per_image = (
            f"{row.ms_per_image:.2f}"
            if fast == slow or row.kind == "measured"
            else f"{fast:.1f}–{slow:.1f}"
        )
        row_cells = [
            *_row_cells(i, row, step, per_image),
            _speedup(i, row, comparison),
            _verdict(i, row, comparison, brief),
            ", ".join(row.caveats) or "—",
        ]
        cells.append([printable(cell) for cell in row_cells])
    return cells


def _verdict(number: int, row: Row, comparison: Comparison, brief: bool = False) -> str:
    """The significance verdict of a row against the baseline, in words."""
    if number - 1 == comparison.baseline:
        return "baseline"
    if row.kind != "measured":
        return f"{row.kind} figure: no samples to test"
    if row.no_verdict:
        return f"no verdict: {row.no_verdict}"
    if row.verdict is None:
        return "not tested: the baseline has no samples"
    verdict = row.verdict + ("" if row.p_value is None else f" (p = {row.p_value:.2g})")
    if row.undermined_by and brief:
        rows = ", ".join(u.split(" ", 1)[0] for u in row.undermined_by)
        verdict += f" — undermined by the caveats of {rows} (--wide lists them)"
    elif row.undermined_by:
        verdict += " — undermined: " + "; ".join(row.undermined_by)
    return verdict


def _row_cells(number: int, row: Row, step: str, per_image: str) -> list[str]:
    return [
        str(number),
        row.label,
        row.kind,
        f"{row.backend} · {row.precision}",
        step,
        per_image,
        f"{row.images_per_s:.1f}",
        format_duration(row.seconds_per_100k, clock=True),
        "—" if row.tflops is None else f"{row.tflops:.2f}",
        "—" if row.j_per_image is None else f"{row.j_per_image:.3g}",
        "—" if row.images_per_kj is None else f"{row.images_per_kj:.0f}",
    ]


def comparison_table(
    comparison: Comparison, names: tuple[str, ...] | None, title: str = "segbench compare"
) -> UncutTable:
    """The named COLUMNS (None: all) as a table, published rows dimmed, the estimate in italics."""
    keep = shown_columns(comparison, names)
    table = UncutTable(
        f"{title} (speedup > 1: faster than the baseline)",
        [Field(COLUMNS[i].header, number=COLUMNS[i].number) for i in keep],
    )
    brief = names is not None and "caveats" not in names
    for row, cells in zip(comparison.rows, compare_cells(comparison, brief), strict=True):
        table.add_row(*(cells[i] for i in keep), style=_ROW_STYLE[row.kind])
    return table


def compare_table(comparison: Comparison, wide: bool = False) -> RenderableType:
    """`segbench compare`'s table, COMPACT or (`wide`) every column, and below it the
    environment differences."""
    table = comparison_table(comparison, None if wide else COMPACT)
    if not comparison.environment_differences:
        return table
    return Group(table, environment_table(comparison.environment_differences))


ENVIRONMENT_TITLE = "environment differences"


def environment_table(found: list[EnvironmentDifference]) -> UncutTable:
    """The facts that differ between the result files, one column per file (#: its row)."""
    numbers = [Field(f"#{i + 1}") for i in range(len(found[0].values))]
    table = UncutTable(ENVIRONMENT_TITLE, [Field("fact"), *numbers])
    for d in found:
        table.add_row(d.fact, *(_fact_cell(d.fact, v) for v in d.values))
    return table


def _fact_cell(fact: str, value: str | None) -> str:
    """A fact's value for display: "—" when not recorded, digests cut to 12 characters."""
    if value is None:
        return "—"
    if fact in ("git commit", "uv.lock sha256"):
        digest, dirty, _ = value.partition("-dirty")
        return digest[:12] + dirty
    return value


def compare_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown table, every column; every cell escaped (`|`, HTML,
    line breaks)."""
    keep = shown_columns(comparison)
    headers = [COLUMNS[i].header for i in keep]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [_markdown_row([cells[i] for i in keep]) for cells in compare_cells(comparison)]
    lines += [""] + [markdown_cell(f"- {row.label}: {row.conditions}") for row in comparison.rows]
    found = comparison.environment_differences
    if found:
        numbers = [f"#{i + 1}" for i in range(len(found[0].values))]
        lines += ["", f"**{ENVIRONMENT_TITLE}**", ""]
        lines += ["| fact | " + " | ".join(numbers) + " |", "|" + "---|" * (1 + len(numbers))]
        lines += [
            _markdown_row([d.fact, *(_fact_cell(d.fact, v) for v in d.values)]) for d in found
        ]
    lines += [f"\n> warning: {markdown_cell(w)}" for w in comparison.warnings]
    return "\n".join(lines) + "\n"


def _markdown_row(cells: list[str]) -> str:
    return "| " + " | ".join(markdown_cell(cell) for cell in cells) + " |"


# `--format csv`: one value per cell, units in the header, empty where there is none.
CSV_COLUMNS: tuple[tuple[str, Callable[[Row], Any]], ...] = (
    ("device", lambda r: r.label),
    ("kind", lambda r: r.kind),  # measured, published, estimate
    ("backend", lambda r: r.backend),
    ("precision", lambda r: r.precision),
    ("ms_per_step", lambda r: r.ms_per_step),
    ("ms_per_step_p10", lambda r: r.p10_ms),
    ("ms_per_step_p90", lambda r: r.p90_ms),
    ("ms_per_image", lambda r: r.ms_per_image),
    ("ms_per_image_ci95_low", lambda r: r.ms_per_image_ci95 and r.ms_per_image_ci95[0]),
    ("ms_per_image_ci95_high", lambda r: r.ms_per_image_ci95 and r.ms_per_image_ci95[1]),
    # p10 and p90 per image of a measured row; the range of a published one
    ("ms_per_image_range_low", lambda r: r.ms_per_image_range[0]),
    ("ms_per_image_range_high", lambda r: r.ms_per_image_range[1]),
    ("images_per_s", lambda r: r.images_per_s),
    ("seconds_per_100k_images", lambda r: r.seconds_per_100k),
    ("tflop_per_s", lambda r: r.tflops),
    ("j_per_image", lambda r: r.j_per_image),
    ("images_per_kj", lambda r: r.images_per_kj),
    ("speedup", lambda r: r.speedup[1]),
    ("speedup_ci95_low", lambda r: r.speedup_ci95 and r.speedup_ci95[0]),
    ("speedup_ci95_high", lambda r: r.speedup_ci95 and r.speedup_ci95[1]),
    # without samples on both sides: the range spanned by both rows' spreads
    ("speedup_range_low", lambda r: None if _no_range(r) else r.speedup[0]),
    ("speedup_range_high", lambda r: None if _no_range(r) else r.speedup[2]),
    ("p_value", lambda r: r.p_value),
    ("verdict", lambda r: r.verdict),  # faster, slower, no significant difference
    ("no_verdict", lambda r: r.no_verdict),
    ("undermined_by", lambda r: "; ".join(r.undermined_by)),
    ("steps", lambda r: r.steps),
    ("source", lambda r: r.source),
    ("conditions", lambda r: r.conditions),
    ("caveats", lambda r: "; ".join(r.caveats)),
)


def compare_csv(comparison: Comparison) -> str:
    """The rows as data: one number per cell at full precision, units in the header, an
    empty cell where a row has no such value; `caveats` last (labels joined by "; ")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", *(name for name, _ in CSV_COLUMNS)])
    for i, row in enumerate(comparison.rows):
        if i == comparison.baseline:
            row = replace(row, verdict="baseline")
        writer.writerow([i + 1, *(_csv_value(value(row)) for _, value in CSV_COLUMNS)])
    return buffer.getvalue()


def _no_range(row: Row) -> bool:
    return row.speedup_ci95 is not None or row.verdict == "baseline"


def _csv_value(value: Any) -> Any:
    """A CSV cell: a number as Python writes it back exactly (repr), text without control
    characters, nothing for a missing value."""
    if isinstance(value, str):
        return printable(value)
    return "" if value is None else value


def compare_json(comparison: Comparison) -> str:
    rows = [
        {
            **asdict(row),
            "images_per_s": row.images_per_s,
            "seconds_per_100k_images": row.seconds_per_100k,
            "baseline": i == comparison.baseline,
        }
        for i, row in enumerate(comparison.rows)
    ]
    document = {
        "rows": rows,
        "warnings": comparison.warnings,
        "forced_fields": comparison.forced_fields,
        "environment_differences": [asdict(d) for d in comparison.environment_differences],
    }
    return json.dumps(_strict(document), indent=2, allow_nan=False) + "\n"


def _strict(value: Any) -> Any:
    """`value` with every NaN or infinity as null: JSON has no such numbers, and `NaN` or
    `Infinity` in the output breaks every strict reader (jq, JavaScript, Go)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value


_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


DOCTOR_FIELDS = tuple(Field(h) for h in ("check", "status", "found", "expected", "fix"))


def doctor_table(checks: list[Check], title: str = "segbench doctor") -> UncutTable:
    """One row per check: status, what was found, what was expected, the fix."""
    table = UncutTable(title, DOCTOR_FIELDS)
    for c in checks:
        status = Text(c.status, style=_STATUS_STYLE[c.status])
        table.add_row(c.id, status, c.found, c.expected, c.fix)
    return table


def profile_table(result: Result) -> UncutTable | Text:
    """Where the step time goes, by layer kind (--profile), or why it is not known."""
    from segbench.measure.profile import TABLE_HEADER, profile_table_rows

    found = result.profile
    if not found.kinds:
        return Text(printable(f"note: profile: {found.reason}"), style="dim")
    title = f"Step time by layer kind ({found.steps} profiled steps)"
    fields = [Field(TABLE_HEADER[0]), *(Field(h, number=True) for h in TABLE_HEADER[1:])]
    table = UncutTable(title, fields)
    for row in profile_table_rows(found):
        table.add_row(*row)
    return table


def run_report(result: Result, comparison: Comparison | None, caveats: list[str]) -> Group:
    """Everything `segbench run` shows at the end: summary, the run against the published
    figures (`comparison`, None when no step was timed), and the caveats."""
    parts: list[Any] = [summary_table(result)]
    if result.profile is not None:
        parts.append(profile_table(result))
        if result.profile.kinds:
            parts.append(Text(printable(f"note: profile: {result.profile.source}"), style="dim"))
    if comparison is not None:
        title = "This run against the published references"
        parts.append(comparison_table(comparison, RUN, title))
    parts.extend(Text(printable(f"note: {n}"), style="dim") for n in hardware_notes(result))
    if result.distribution is not None and result.distribution.note:
        parts.append(Text(printable(f"note: {result.distribution.note}"), style="yellow"))
    parts.extend(Text(printable(f"warning: {note}"), style="yellow") for note in caveats)
    return Group(*parts)
