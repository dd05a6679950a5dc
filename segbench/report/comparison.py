"""The comparison as a rich table: its columns, each row's cells (speedup, verdict, caveats)
and the table of environment differences between the result files.

Takes a finished Comparison and only renders it; the judgement lives in results/compare.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.console import Group, RenderableType

from segbench.report.printable import printable
from segbench.report.uncut import Field, UncutTable
from segbench.report.units import format_duration
from segbench.results.comparability import EnvironmentDifference
from segbench.results.compare import Comparison, Row
from segbench.results.stats import TOO_FEW_STEPS, steps_to_decide


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


def footnote(number: int, row: Row) -> str:
    """A row's line under the table: a result's number and file (two runs on one machine share
    a device label), or a published row's label; then its conditions."""
    if row.kind == "measured" and row.source:
        return f"#{number} {row.source}: {row.conditions}"
    return f"{row.label}: {row.conditions}"


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
    if row.verdict == TOO_FEW_STEPS:
        n, m = row.steps or 0, comparison.rows[comparison.baseline].steps or 0
        p = "" if row.p_value is None else f"p = {row.p_value:.2g}; "
        verdict = f"{row.verdict} ({p}{n} vs {m} steps; {steps_to_decide(n, m)} each can decide)"
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
        table.add_row(d.fact, *(fact_cell(d.fact, v) for v in d.values))
    return table


def fact_cell(fact: str, value: str | None) -> str:
    """A fact's value for display: "—" when not recorded, digests cut to 12 characters."""
    if value is None:
        return "—"
    if fact in ("git commit", "uv.lock sha256"):
        digest, dirty, _ = value.partition("-dirty")
        return digest[:12] + dirty
    return value
