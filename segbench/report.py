"""Rendering: results, comparisons and checks as rich tables, Markdown, CSV and JSON.

Takes finished data (a Result, a Comparison, caveats, checks) and only renders it; the
judgement lives in compare.py and doctor/.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from segbench.compare import Comparison, EnvironmentDifference, Row, device_label
from segbench.doctor.types import Check
from segbench.result import Result
from segbench.stats import Summary


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
                f"beyond {s.outliers.low_ms:.1f} … {s.outliers.high_ms:.1f} ms (median ± 5 MAD-σ)",
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


def summary_table(result: Result) -> Table:
    """The run's statistics: step time with its spread, throughput and extrapolations."""
    s = result.summary
    config = result.config
    title = (
        f"segbench {config.preset} — {device_label(result)} — "
        f"{result.environment.keras_backend} (Keras {config.keras_generation}), "
        f"{config.precision}, batch {_batch_label(result)}, width {config.width:g}"
    )
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("spread", justify="right")
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
        f"{result.model.training_gflop_per_image:.1f} GFLOP/image",
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
    for label, value, note in distribution_rows(result):
        table.add_row(label, value, note)
    for label, value, note in hardware_rows(result):
        table.add_row(label, value, note)
    if result.loss_trajectory:
        table.add_row(
            "loss (first → last)",
            f"{result.loss_trajectory[0]:.4f} → {result.loss_trajectory[-1]:.4f}",
            f"IoU {result.iou_trajectory[-1]:.3f}",
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
    """A column of the comparison: its header, alignment, and whether the compact table shows it."""

    header: str
    justify: str = "right"
    compact: bool = True  # the table that ends `segbench run` (one result, summary above)
    energy: bool = False  # shown only when a row has telemetry energy
    caveats: bool = False  # shown only when a row has caveats


COLUMNS = (
    Column("#", compact=False),
    Column("device", justify="left"),
    Column("source", justify="left"),
    Column("backend · precision", compact=False),
    Column("ms/step (p10–p90)", compact=False),
    Column("ms/image"),
    Column("images/s"),
    Column("100k images (h:mm)"),
    Column("TFLOP/s"),
    Column("J/image", energy=True),
    Column("images/kJ", energy=True),
    Column("speedup (95 % CI or range)"),
    Column("verdict", justify="left", compact=False),
    Column("caveats", justify="left", compact=False, caveats=True),
)


def shown_columns(comparison: Comparison, compact: bool = False) -> list[int]:
    """Indices of the COLUMNS a comparison shows: energy columns only when a row has energy,
    the caveats column only when a row has caveats."""
    energy = any(row.j_per_image is not None for row in comparison.rows)
    caveats = any(row.caveats for row in comparison.rows)
    return [
        i
        for i, column in enumerate(COLUMNS)
        if (column.compact or not compact)
        and (energy or not column.energy)
        and (caveats or not column.caveats)
    ]


_ROW_STYLE = {"measured": "", "published": "dim", "estimate": "dim italic"}


def compare_cells(comparison: Comparison) -> list[list[str]]:
    """The comparison as rows of text cells, in COLUMNS order."""
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
        low, typical, high = row.speedup
        if i - 1 == comparison.baseline:
            speedup = "1.00× (baseline)"
        elif row.kind != "measured" and fast != slow:
            speedup = f"{low:.2f}–{high:.2f}×"
        elif f"{low:.2f}" == f"{high:.2f}":
            speedup = f"{typical:.2f}×"
        else:
            speedup = f"{typical:.2f}× ({low:.2f}–{high:.2f})"
        cells.append(
            [
                *_row_cells(i, row, step, per_image),
                speedup,
                _verdict(i, row, comparison),
                ", ".join(row.caveats) or "—",
            ]
        )
    return cells


def _verdict(number: int, row: Row, comparison: Comparison) -> str:
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
    if row.undermined_by:
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


def compare_table(
    comparison: Comparison, title: str = "segbench compare", compact: bool = False
) -> RenderableType:
    """The comparison as a rich table, published rows dimmed, the estimate in italics; below
    it (not in the compact table) the environment differences."""
    table = Table(title=f"{title} (speedup > 1: faster than the baseline)", title_justify="left")
    keep = shown_columns(comparison, compact)
    for i in keep:
        table.add_column(COLUMNS[i].header, justify=COLUMNS[i].justify)
    for row, cells in zip(comparison.rows, compare_cells(comparison), strict=True):
        table.add_row(*(cells[i] for i in keep), style=_ROW_STYLE[row.kind])
    if compact or not comparison.environment_differences:
        return table
    return Group(table, environment_table(comparison.environment_differences))


ENVIRONMENT_TITLE = "environment differences"


def environment_table(found: list[EnvironmentDifference]) -> Table:
    """The facts that differ between the result files, one column per file (#: its row)."""
    table = Table(title=ENVIRONMENT_TITLE, title_justify="left")
    table.add_column("fact")
    for i in range(len(found[0].values)):
        table.add_column(f"#{i + 1}")
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
    keep = shown_columns(comparison)
    headers = [COLUMNS[i].header for i in keep]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [
        "| " + " | ".join(cells[i] for i in keep) + " |" for cells in compare_cells(comparison)
    ]
    lines += [""] + [f"- {row.label}: {row.conditions}" for row in comparison.rows]
    found = comparison.environment_differences
    if found:
        numbers = [f"#{i + 1}" for i in range(len(found[0].values))]
        lines += ["", f"**{ENVIRONMENT_TITLE}**", ""]
        lines += ["| fact | " + " | ".join(numbers) + " |", "|" + "---|" * (1 + len(numbers))]
        lines += [
            f"| {d.fact} | " + " | ".join(_fact_cell(d.fact, v) for v in d.values) + " |"
            for d in found
        ]
    lines += [f"\n> warning: {w}" for w in comparison.warnings]
    return "\n".join(lines) + "\n"


def compare_csv(comparison: Comparison) -> str:
    """The rows as CSV; `caveats` always the last column (labels joined by "; ")."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    keep = [i for i in shown_columns(comparison) if not COLUMNS[i].caveats]
    writer.writerow([*(COLUMNS[i].header for i in keep), "conditions", "caveats"])
    for row, cells in zip(comparison.rows, compare_cells(comparison), strict=True):
        writer.writerow([*(cells[i] for i in keep), row.conditions, "; ".join(row.caveats)])
    return buffer.getvalue()


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
    return json.dumps(document, indent=2) + "\n"


_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def doctor_table(checks: list[Check], title: str = "segbench doctor") -> Table:
    """One row per check: status, what was found, what was expected, the fix."""
    table = Table(title=title, title_justify="left")
    for header in ("check", "status", "found", "expected", "fix"):
        table.add_column(header)
    for c in checks:
        table.add_row(
            c.id, Text(c.status, style=_STATUS_STYLE[c.status]), c.found, c.expected, c.fix
        )
    return table


def run_report(result: Result, comparison: Comparison | None, caveats: list[str]) -> Group:
    """Everything `segbench run` shows at the end: summary, the run against the published
    figures (`comparison`, None when no step was timed), and the caveats."""
    parts: list[Any] = [summary_table(result)]
    if comparison is not None:
        parts.append(
            compare_table(
                comparison, title="This run against the published references", compact=True
            )
        )
    parts.extend(Text(f"note: {note}", style="dim") for note in hardware_notes(result))
    if result.distribution is not None and result.distribution.note:
        parts.append(Text(f"note: {result.distribution.note}", style="yellow"))
    parts.extend(Text(f"warning: {note}", style="yellow") for note in caveats)
    return Group(*parts)
