"""The report's charts as small static SVG, written here rather than by matplotlib: a page of a
thousand results stays a few MB and builds in seconds (matplotlib's SVG of one comparison is
about 100 kB and 0.3 s). Every text is escaped with html.escape; each chart has a title and a
description for screen readers, and scales to the page's width."""

from __future__ import annotations

import math
from html import escape

from segbench.report.comparison_chart import (
    LOG_SPAN,
    error_interval,
    keras_generation,
    throughput_label,
)
from segbench.report.plot import duration, number
from segbench.report.printable import printable
from segbench.results.compare import Comparison, Row
from segbench.results.stats import Summary

WIDTH = 560  # viewBox units (the longest value label fits); the chart scales to its container
BAR_AREA = 300  # the bars' length at the fastest end; the values are written to the right
ROW = 34
TOP = 8
AXIS = 34
LABEL_CHARS = 70
FILL = {"measured": "#2a6fbb", "published": "#b8b8b8", "estimate": "#dddddd"}
TRACE_POINTS = 80  # a trace is drawn from at most this many points (medians of equal buckets)


def _text(value: str) -> str:
    return escape(printable(value), quote=True)


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: int, height: int, label: str, description: str, body: list[str]) -> str:
    """An <svg> that scales with the page, named for assistive technology."""
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{_text(label)}</title>'
        f"<desc>{_text(description)}</desc>{''.join(body)}</svg>"
    )


def _scale(low: float, high: float, log: bool):
    """images/s → x in 0…BAR_AREA."""
    if log:
        a, b = math.log10(low), math.log10(high)
        return lambda v: BAR_AREA * (math.log10(max(v, low)) - a) / (b - a)
    return lambda v: BAR_AREA * v / high


def _ticks(low: float, high: float, log: bool) -> list[float]:
    """1, 2, 5 × 10ⁿ on a log axis; about five round steps on a linear one."""
    if log:
        found = [
            m * 10**e
            for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
            for m in (1, 2, 5)
        ]
        return [t for t in found if low <= t <= high]
    step = 10 ** math.floor(math.log10(high / 5))
    step *= next(m for m in (1, 2, 5, 10) if high / (step * m) <= 6)
    return [i * step for i in range(int(high / step) + 1)]


def row_name(row: Row, position: int) -> str:
    """#n device · backend · precision · Keras n (· published / estimate)."""
    generation = keras_generation(row)
    setup = [row.backend, row.precision] + ([f"Keras {generation}"] if generation else [])
    setup += [] if row.kind == "measured" else [row.kind]
    return f"#{position} {row.label} · {' · '.join(setup)}"


def bars_svg(comparison: Comparison, title: str, numbers: list[int] | None = None) -> str:
    """images/s per row with its 95 % CI (or published range) as error bars, the value and
    speedup written beside each bar, a log axis when the rows span more than LOG_SPAN×.
    `numbers`: each row's number in the table (default 1, 2, …)."""
    rows = comparison.rows
    numbers = numbers or list(range(1, len(rows) + 1))
    ends = [error_interval(row) for row in rows]
    slow = [1000.0 / s for _, s in ends]
    fast = [1000.0 / f for f, _ in ends]
    log = max(fast) > LOG_SPAN * min(slow)
    low = 10 ** math.floor(math.log10(min(slow))) if log else 0.0
    high = max(fast) * (1.05 if log else 1.1)
    x = _scale(low or 1.0, high, log)
    height = TOP + ROW * len(rows) + AXIS
    body = []
    for tick in _ticks(low or 1.0, high, log):
        tx = x(tick)
        body.append(
            f'<line x1="{tx:.1f}" x2="{tx:.1f}" y1="{TOP}" y2="{height - AXIS + 4}" '
            f'class="grid"/><text x="{tx:.1f}" y="{height - AXIS + 16}" class="tick">'
            f"{_text(number(tick))}</text>"
        )
    described = []
    for i, row in enumerate(rows):
        y = TOP + ROW * i
        name = row_name(row, numbers[i])
        value = throughput_label(row, i == comparison.baseline)
        described.append(f"{name}: {value}")
        end = x(row.images_per_s)
        body.append(
            f'<g class="{row.kind}"><text x="0" y="{y + 11}" class="label">'
            f"{_text(_short(name))}</text>"
            f'<rect x="0" y="{y + 15}" width="{max(end, 1):.1f}" height="12" '
            f'fill="{FILL[row.kind]}"/>'
            f'<line x1="{x(slow[i]):.1f}" x2="{x(fast[i]):.1f}" y1="{y + 21}" y2="{y + 21}" '
            f'class="ci"/><text x="{BAR_AREA + 8}" y="{y + 26}" class="value">'
            f"{_text(value)}</text></g>"
        )
    axis = "images/s, higher is faster" + ("; log scale" if log else "")
    body.append(f'<text x="0" y="{height - 4}" class="axis">{_text(axis)}</text>')
    bars = "95 % CI of the median (measured), published range (references)"
    body = ['<g transform="translate(12 0)">', *body, "</g>"]  # room for the first tick's label
    return _svg(
        WIDTH + 12,
        height,
        f"{title}: images/s per result; error bars: {bars}",
        "; ".join(described),
        body,
    )


def _buckets(values: list[float], points: int) -> list[float]:
    """At most `points` values: the median of each run of equal length."""
    if len(values) <= points:
        return values
    size = len(values) / points
    found = []
    for b in range(points):
        chunk = sorted(values[int(b * size) : max(int((b + 1) * size), int(b * size) + 1)])
        found.append(chunk[len(chunk) // 2])
    return found


def trace_svg(ms: list[float], summary: Summary, label: str) -> str:
    """The timed steps' times in order (medians of TRACE_POINTS buckets when there are more),
    the median as a line and its 95 % CI as a band: drift and throttling show as a slope."""
    width, height, left, pad = WIDTH, 110, 56, 10
    shown = _buckets(ms, TRACE_POINTS)
    ci = summary.median_ci95_ms or (summary.median_ms, summary.median_ms)
    low = min(*shown, ci[0])
    high = max(*shown, ci[1])
    span = (high - low) or max(high, 1.0) * 0.01

    def y(v: float) -> float:
        return pad + (height - 2 * pad - 14) * (high - v) / span

    step = (width - left) / max(len(shown) - 1, 1)
    points = " ".join(f"{left + i * step:.0f},{y(v):.0f}" for i, v in enumerate(shown))
    bucketed = f" (medians of {len(shown)} equal runs of steps)" if len(shown) < len(ms) else ""
    body = [
        f'<rect x="{left}" y="{y(ci[1]):.1f}" width="{width - left}" '
        f'height="{max(y(ci[0]) - y(ci[1]), 0.5):.1f}" class="band"/>',
        f'<line x1="{left}" x2="{width}" y1="{y(summary.median_ms):.1f}" '
        f'y2="{y(summary.median_ms):.1f}" class="median"/>',
        f'<polyline points="{points}" class="steps"/>',
        f'<text x="{left - 4}" y="{pad + 4}" class="tick end">{_text(duration(high))}</text>',
        f'<text x="{left - 4}" y="{height - 24}" class="tick end">{_text(duration(low))}</text>',
        f'<text x="{left}" y="{height - 4}" class="axis">'
        f"{_text(f'{len(ms):,} timed steps in order{bucketed}; line: median, band: 95 % CI')}"
        "</text>",
    ]
    description = (
        f"{len(ms)} timed steps from {duration(min(ms))} to {duration(max(ms))}, median "
        f"{duration(summary.median_ms)}"
    )
    return _svg(width, height, f"step-time trace of {label}", description, body)
