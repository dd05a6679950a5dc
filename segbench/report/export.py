"""The comparison exported for other programs and documents: a Markdown table, CSV with one
number per cell, and strict JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import asdict, fields, replace
from typing import Any

from segbench.report.comparison import (
    COLUMNS,
    ENVIRONMENT_TITLE,
    compare_cells,
    fact_cell,
    footnote,
    shown_columns,
)
from segbench.report.printable import markdown_cell, printable
from segbench.results.compare import Comparison, Row


def compare_markdown(comparison: Comparison) -> str:
    """The comparison as a Markdown table, every column; every cell escaped (`|`, HTML,
    line breaks)."""
    keep = shown_columns(comparison)
    headers = [COLUMNS[i].header for i in keep]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += [_markdown_row([cells[i] for i in keep]) for cells in compare_cells(comparison)]
    rows = enumerate(comparison.rows, start=1)
    lines += [""] + [markdown_cell(f"- {footnote(i, row)}") for i, row in rows]
    found = comparison.environment_differences
    if found:
        numbers = [f"#{i + 1}" for i in range(len(found[0].values))]
        lines += ["", f"**{ENVIRONMENT_TITLE}**", ""]
        lines += ["| fact | " + " | ".join(numbers) + " |", "|" + "---|" * (1 + len(numbers))]
        lines += [_markdown_row([d.fact, *(fact_cell(d.fact, v) for v in d.values)]) for d in found]
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
    ("p_method", lambda r: r.p_method),  # exact or asymptotic (Mann–Whitney U)
    ("verdict", lambda r: r.verdict),  # stats: FASTER, SLOWER, NO_DIFFERENCE, TOO_FEW_STEPS
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


# A text cell starting with one of these is a formula to a spreadsheet (OWASP, CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_value(value: Any) -> Any:
    """A CSV cell: a number as Python writes it back exactly (repr), text without control
    characters and never a formula (a leading ' as OWASP's CSV-injection guidance says),
    nothing for a missing value."""
    if isinstance(value, str):
        text = printable(value)
        # Spreadsheets skip leading blanks before a formula (" =1+2"): so does the test.
        return "'" + text if text.lstrip(" \n\x0b\x0c").startswith(FORMULA_STARTS) else text
    return "" if value is None else value


def _exported(name: str) -> bool:
    """Whether a Row field is part of compare's JSON (a few are for judging only)."""
    return next(f for f in fields(Row) if f.name == name).metadata.get("export", True)


def compare_json(comparison: Comparison) -> str:
    rows = [
        {
            **{k: v for k, v in asdict(row).items() if _exported(k)},
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
