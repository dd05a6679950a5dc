"""What `segbench run` and `segbench doctor` show, as rich tables: a run's statistics,
hardware and distribution figures, its profile by layer kind, and the doctor's checks.

Takes finished data (a Result, a Comparison, caveats, checks) and only renders it; the
judgement lives in results/ and doctor/.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from rich.console import Group
from rich.text import Text

from segbench.doctor.types import Check
from segbench.report.comparison import RUN, comparison_table
from segbench.report.printable import printable
from segbench.report.uncut import Field, UncutTable
from segbench.report.units import format_bytes, format_duration
from segbench.results.caveats import outlier_bounds
from segbench.results.compare import Comparison, device_label
from segbench.results.result import Result
from segbench.results.stats import Summary


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
    """ ", compiled: xla, batchnorm fused, channels_first" for the settings that change speed,
    when not the default (empty for files made before they were recorded)."""
    model = result.model
    words = []
    if model.compiled not in (None, "off"):
        words.append(f"compiled: {model.compiled}")
    if model.batchnorm not in (None, "keras"):
        words.append(f"batchnorm {model.batchnorm}")
    if result.config.layout != "channels_last":
        words.append(result.config.layout)
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


_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


DOCTOR_FIELDS = tuple(Field(h) for h in ("check", "status", "found", "expected", "fix"))


def doctor_table(checks: list[Check], title: str = "segbench doctor") -> UncutTable:
    """One row per check: status, what was found, what was expected, the fix."""
    table = UncutTable(title, DOCTOR_FIELDS)
    for c in checks:
        status = Text(c.status, style=_STATUS_STYLE[c.status])
        table.add_row(c.id, status, c.found, c.expected, c.fix)
    return table


def profile_table(result: Result) -> Group | Text:
    """Where the step time goes, by layer kind (--profile), with each kind's achieved TFLOP/s
    and % of the measured ceiling, or why it is not known."""
    from segbench.measure.profile.record import TABLE_HEADER, op_time_totals, profile_table_rows

    found = result.profile
    if not found.kinds:
        return Text(printable(f"note: profile: {found.reason}"), style="dim")
    title = f"Step time by layer kind ({found.steps} profiled steps)"
    fields = [Field(TABLE_HEADER[0]), *(Field(h, number=True) for h in TABLE_HEADER[1:])]
    table = UncutTable(title, fields)
    for row in profile_table_rows(found):
        table.add_row(*row)
    notes = [found.source]
    if op_time_totals(found) is not None:
        notes.append("TFLOP/s: a kind's training FLOPs ÷ its op time (—: its layers count none)")
    if found.unattributed_share is not None:
        notes.append(
            f"no op ran in {100 * found.unattributed_share:.1f} % of the profiled steps' "
            "wall time (the framework's own time)"
        )
    lines = [Text(printable(f"note: profile: {n}"), style="dim") for n in notes]
    return Group(table, *lines)


def run_report(result: Result, comparison: Comparison | None, caveats: list[str]) -> Group:
    """Everything `segbench run` shows at the end: summary, the run against the published
    figures (`comparison`, None when no step was timed), and the caveats."""
    parts: list[Any] = [summary_table(result)]
    if result.profile is not None:
        parts.append(profile_table(result))
    if comparison is not None:
        title = "This run against the published references"
        parts.append(comparison_table(comparison, RUN, title))
    parts.extend(Text(printable(f"note: {n}"), style="dim") for n in hardware_notes(result))
    if result.distribution is not None and result.distribution.note:
        parts.append(Text(printable(f"note: {result.distribution.note}"), style="yellow"))
    parts.extend(Text(printable(f"warning: {note}"), style="yellow") for note in caveats)
    return Group(*parts)
