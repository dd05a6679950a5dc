"""Rendering of results as rich tables. Takes result dictionaries; never trains or measures."""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import asdict
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from segbench.compare import Comparison, compare, device_label

# A spread above this share of the median makes the numbers hard to compare.
NOISY_SPREAD = 0.10


def format_duration(seconds: float) -> str:
    """Seconds as h:mm (for long extrapolations) or as seconds."""
    if seconds >= 3600:
        minutes = int(seconds // 60)  # truncated, as format_hmm and the article's 9 h 06 min
        return f"{minutes // 60} h {minutes % 60:02d} min"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s"


def _value_range(values: list[float], unit: str) -> str:
    """One value, or "median (min … max)" of several."""
    if len(values) == 1:
        return f"{values[0]:.1f} {unit}"
    return f"{statistics.median(values):.1f} {unit} ({min(values):.1f} … {max(values):.1f})"


def summary_table(result: dict[str, Any]) -> Table:
    """The run's statistics: step time with its spread, throughput and extrapolations."""
    s = result["summary"]
    config = result["config"]
    backend = result["environment"]["keras_backend"]
    title = (
        f"segbench {config['preset']} — {device_label(result)} — {backend}, "
        f"{config['precision']}, batch {config['batch_size']}, width {config['width']:g}"
    )
    table = Table(title=title, title_justify="left", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("spread", justify="right")
    if not s.get("steps"):
        table.add_row("timed steps", "0", "no timed step finished")
        return table
    table.add_row(
        "time per step (median)",
        f"{s['median_ms']:.1f} ms",
        f"p10 {s['p10_ms']:.1f} … p90 {s['p90_ms']:.1f} ms",
    )
    table.add_row("time per step (mean ± σ)", f"{s['mean_ms']:.1f} ms", f"± {s['stdev_ms']:.1f} ms")
    table.add_row("range", f"{s['min_ms']:.1f} … {s['max_ms']:.1f} ms", f"{s['steps']} timed steps")
    table.add_row("time per image", f"{s['ms_per_image']:.2f} ms", "median step ÷ batch")
    table.add_row("throughput", f"{s['images_per_s']:.1f} images/s", "")
    table.add_row("100,000 images", format_duration(s["seconds_per_100k_images"]), "extrapolated")
    table.add_row(
        "achieved compute",
        f"{s['tflops']:.3g} TFLOP/s",
        f"{result['model']['training_gflop_per_image']:.1f} GFLOP/image",
    )
    compile_s = [ms / 1000 for ms in s["compile_ms"]]
    table.add_row(
        "first step of each shape (compile)",
        _value_range(compile_s, "s"),
        f"{len(compile_s)} step{'s' if len(compile_s) != 1 else ''}, excluded",
    )
    if s["warmup_ms"]:
        n = len(s["warmup_ms"])
        table.add_row("warm-up", f"{n} step{'s' if n != 1 else ''}", "excluded")
    if "epoch_train_s" in s:
        table.add_row(
            "epoch (training)",
            _value_range(s["epoch_train_s"], "s"),
            f"{len(s['epoch_train_s'])} epochs; {s['epoch_ms_per_image_median']:.1f} ms/image",
        )
        table.add_row("validation", _value_range(s["epoch_validation_s"], "s"), "per epoch")
    losses = result["loss_trajectory"]
    if losses:
        table.add_row(
            "loss (first → last)",
            f"{losses[0]:.4f} → {losses[-1]:.4f}",
            f"IoU {result['iou_trajectory'][-1]:.3f}",
        )
    return table


COMPARE_COLUMNS = (
    "#",
    "device",
    "source",
    "backend · precision",
    "ms/step (p10–p90)",
    "ms/image",
    "images/s",
    "100k images (h:mm)",
    "TFLOP/s",
    "speedup (range)",
)


def format_hmm(seconds: float) -> str:
    """Seconds as h:mm (minutes truncated, as the article's 9 h 06 min)."""
    minutes = int(seconds // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def compare_cells(comparison: Comparison) -> list[list[str]]:
    """The comparison as rows of text cells, in COMPARE_COLUMNS order."""
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
            else (f"{fast:.1f}–{slow:.1f}")
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
        source = {"measured": "measured", "published": "published", "estimate": "estimate"}[
            row.kind
        ]
        cells.append(
            [
                str(i),
                row.label,
                source,
                f"{row.backend} · {row.precision}",
                step,
                per_image,
                f"{row.images_per_s:.1f}",
                format_hmm(row.seconds_per_100k),
                "—" if row.tflops is None else f"{row.tflops:.2f}",
                speedup,
            ]
        )
    return cells


# Left out of the compact table that ends `segbench run`: one result, and its summary above.
COMPACT_DROPS = ("#", "backend · precision", "ms/step (p10–p90)")


def compare_table(
    comparison: Comparison, title: str = "segbench compare", compact: bool = False
) -> Table:
    """The comparison as a rich table; published rows dimmed, the estimate in italics."""
    table = Table(title=f"{title} (speedup > 1: faster than the baseline)", title_justify="left")
    keep = [i for i, name in enumerate(COMPARE_COLUMNS) if not (compact and name in COMPACT_DROPS)]
    for i in keep:
        name = COMPARE_COLUMNS[i]
        table.add_column(name, justify="left" if name in ("device", "source") else "right")
    for row, cells in zip(comparison.rows, compare_cells(comparison), strict=True):
        style = {"measured": "", "published": "dim", "estimate": "dim italic"}[row.kind]
        table.add_row(*(cells[i] for i in keep), style=style)
    return table


def compare_markdown(comparison: Comparison) -> str:
    lines = ["| " + " | ".join(COMPARE_COLUMNS) + " |", "|" + "---|" * len(COMPARE_COLUMNS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in compare_cells(comparison)]
    lines += [""] + [f"- {row.label}: {row.conditions}" for row in comparison.rows]
    lines += [f"\n> warning: {w}" for w in comparison.warnings]
    return "\n".join(lines) + "\n"


def compare_csv(comparison: Comparison) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COMPARE_COLUMNS, "conditions"])
    for row, cells in zip(comparison.rows, compare_cells(comparison), strict=True):
        writer.writerow([*cells, row.conditions])
    return buffer.getvalue()


def compare_json(comparison: Comparison) -> str:
    rows = []
    for i, row in enumerate(comparison.rows):
        data = {
            **asdict(row),
            "images_per_s": row.images_per_s,
            "seconds_per_100k_images": row.seconds_per_100k,
            "baseline": i == comparison.baseline,
        }
        rows.append(data)
    return (
        json.dumps(
            {
                "rows": rows,
                "warnings": comparison.warnings,
                "forced_fields": comparison.forced_fields,
            },
            indent=2,
        )
        + "\n"
    )


def warnings(result: dict[str, Any]) -> list[str]:
    """Things that make the figures less trustworthy, each with what to do."""
    notes = []
    s = result["summary"]
    config = result["config"]
    if result.get("forced"):
        failing = [c["id"] for c in result.get("doctor", []) if c["status"] == "FAIL"]
        notes.append(
            f"Run with --force despite failed checks ({', '.join(failing)}): "
            "the figures may not be comparable."
        )
    if result["status"] == "interrupted":
        notes.append("The run was interrupted: the figures cover only the steps that finished.")
    spread = (s["p90_ms"] - s["p10_ms"]) / s["median_ms"] if s.get("steps") else 0.0
    if spread > NOISY_SPREAD:
        notes.append(
            f"Step times spread by {100 * spread:.0f} % of the "
            "median (p10–p90): close other programs, plug in the power, or raise --steps."
        )
    if s.get("steps", 0) and s["steps"] < 10:
        notes.append(f"Only {s['steps']} timed steps: raise --steps for a stable median.")
    if config["width"] != 1 or config["batch_size"] != 16:
        notes.append(
            "Width or batch size differ from the published model (width 1, batch 16): "
            "the references are not like-for-like."
        )
    return notes


_STATUS_STYLE = {"PASS": "green", "WARN": "yellow", "FAIL": "bold red", "SKIP": "dim"}


def doctor_table(checks: list[dict[str, str]], title: str = "segbench doctor") -> Table:
    """One row per check: status, what was found, what was expected, the fix."""
    table = Table(title=title, title_justify="left")
    table.add_column("check")
    table.add_column("status")
    table.add_column("found")
    table.add_column("expected")
    table.add_column("fix")
    for c in checks:
        table.add_row(
            c["id"],
            Text(c["status"], style=_STATUS_STYLE[c["status"]]),
            c["found"],
            c["expected"],
            c["fix"],
        )
    return table


def run_report(result: dict[str, Any]) -> Group:
    """Everything `segbench run` shows at the end."""
    parts: list[Any] = [summary_table(result)]
    if result["summary"].get("steps"):
        # The M1 GPU, the article's measurement, is the baseline: speedups read "× the M1".
        against = compare([result], baseline="Apple M1 GPU")
        parts.append(
            compare_table(against, title="This run against the published references", compact=True)
        )
    parts.extend(Text(f"warning: {note}", style="yellow") for note in warnings(result))
    return Group(*parts)
