"""`segbench report`'s page: one self-contained HTML file (no request: its style, its sorting
script and its SVG charts are inline, and its Content-Security-Policy forbids loading anything),
readable on a phone, printable, and usable with a screen reader. Every text from a file is
escaped with html.escape; the judgement lives in results/ and report/sets.py."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace

from segbench import __version__
from segbench.report.comparison import COLUMNS, compare_cells, fact_cell
from segbench.report.comparison_chart import keras_generation
from segbench.report.html_result import findings_html, result_html, text
from segbench.report.sets import Report, ResultSet
from segbench.report.svg import bars_svg
from segbench.results.comparability import environment_facts
from segbench.results.compare import Comparison, Row

# The page's generator: a file that has it may be replaced by a new report.
GENERATOR = "segbench report"
CHART_ROWS = 30  # a set with more measured rows charts one per device (its median result)

# Sorting by a column: a click (or Enter) on its header button; numbers by their data-sort.
SORT_SCRIPT = """
function sortKey(cell) {
  var v = cell.getAttribute("data-sort");
  if (v === null) { return cell.textContent.trim(); }
  var n = parseFloat(v);
  return isNaN(n) ? -Infinity : n;
}
document.querySelectorAll("table.sortable").forEach(function (table) {
  var heads = table.querySelectorAll("thead th");
  heads.forEach(function (th, column) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var ascending = th.getAttribute("aria-sort") !== "ascending";
      heads.forEach(function (other) { other.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = sortKey(a.cells[column]), y = sortKey(b.cells[column]);
        var order = (typeof x === "number" && typeof y === "number")
          ? x - y : String(x).localeCompare(String(y));
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
});
"""

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 76rem; padding: 0 .8rem;
  color: #1b1b1b; background: #fff; overflow-wrap: anywhere; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
caption { text-align: left; font-weight: 600; padding: .3rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .4rem; vertical-align: top; text-align: left; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
thead th { background: #eef2f7; }
table.sortable tbody th { min-width: 10rem; } table.sortable td { min-width: 4rem; }
th button { all: inherit; cursor: pointer; border: 0; padding: 0; }
th button::after { content: " \\2195"; color: #777; }
th[aria-sort=ascending] button::after { content: " \\2191"; }
th[aria-sort=descending] button::after { content: " \\2193"; }
tr.published, tr.estimate { color: #555; font-style: italic; }
svg.chart { width: 100%; max-width: 48rem; height: auto; font: 11px system-ui, sans-serif; }
svg .grid { stroke: #ddd; } svg .tick { font-size: 10px; text-anchor: middle; fill: #444; }
svg .end { text-anchor: end; } svg .ci { stroke: #000; stroke-width: 1.5; }
svg .axis { font-size: 10px; fill: #444; } svg .band { fill: #2a6fbb33; }
svg .median { stroke: #2a6fbb; stroke-dasharray: 4 3; }
svg .steps { fill: none; stroke: #1b1b1b; stroke-width: 1.2; }
.apart { border-left: 4px solid #b00020; padding-left: .8rem; }
.findings li strong { color: #b00020; }
p.warning { color: #7a4b00; } p.note { color: #555; }
details.result { margin: .4rem 0; } details.result > summary { cursor: pointer; }
@media (max-width: 600px) {
  body { font-size: 14px; padding: 0 .4rem; } table { font-size: .75rem; }
  table.sortable tbody th { min-width: 6rem; } table.sortable td { min-width: 3rem; }
  table.sortable tr > :nth-child(3) { display: none; }
}
@media print {
  body { max-width: none; font-size: 10pt; } nav, th button::after { display: none; }
  .scroll { overflow: visible; } section { break-inside: avoid-page; }
  a { color: inherit; text-decoration: none; }
}
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def _cell_index(header: str) -> int:
    return next(i for i, c in enumerate(COLUMNS) if c.header == header)


HEADERS = (
    "#", "device", "file", "backend", "precision", "Keras", "ms/image", "images/s (95 % CI)",
    "speedup (95 % CI or range)", "verdict", "J/image", "% of measured ceiling", "numerics",
    "caveats",
)  # fmt: skip


def _number_cell(shown: str, value: float | None) -> str:
    sort = "" if value is None else f' data-sort="{value!r}"'
    return f'<td class="n"{sort}>{text(shown)}</td>'


def _images_per_s(row: Row) -> str:
    if row.kind == "measured" and row.ms_per_image_ci95 is not None:
        fast, slow = row.ms_per_image_ci95
        return f"{row.images_per_s:.3g} ({1000 / slow:.3g}–{1000 / fast:.3g})"
    fast, slow = row.ms_per_image_range
    if fast != slow:
        return f"{row.images_per_s:.3g} ({1000 / slow:.3g}–{1000 / fast:.3g})"
    return f"{row.images_per_s:.3g}"


def _verdict(number: int, row: Row, cells: list[str]) -> str:
    """The verdict as compare words it, the caveats that undermine it named by row only (the
    caveats column lists them)."""
    if not row.undermined_by:
        return cells[_cell_index("verdict")]
    verdict = cells[_cell_index("verdict")].split(" — undermined", 1)[0]
    return (
        verdict
        + " — undermined by the caveats of "
        + ", ".join(u.split(" ", 1)[0] for u in row.undermined_by)
    )


def _row_html(number: int, row: Row, cells: list[str], result_set: ResultSet, anchor: str) -> str:
    """One table row: a measured row links to its result's section."""
    measured = number <= len(result_set.results)
    result = result_set.results[number - 1] if measured else None
    file = f'<a href="#{anchor}">{text(result_set.files[number - 1].name)}</a>' if measured else "—"
    peak = result.peak if result is not None else None
    ceiling = None if peak is None else peak.achieved_pct_of_measured
    numerics = result.numerics.status if result is not None and result.numerics else "—"
    generation = keras_generation(row)
    typical = row.speedup[1]
    return (
        f'<tr class="{row.kind}">'
        + _number_cell(str(number), number)
        + f'<th scope="row">{text(row.label)}</th><td>{file}</td>'
        + f"<td>{text(row.backend)}</td><td>{text(row.precision)}</td>"
        + f"<td>{text(generation or '—')}</td>"
        + _number_cell(cells[_cell_index("ms/image")], row.ms_per_image)
        + _number_cell(_images_per_s(row), row.images_per_s)
        + _number_cell(cells[_cell_index("speedup (95 % CI or range)")], typical)
        + f"<td>{text(_verdict(number, row, cells))}</td>"
        + _number_cell(cells[_cell_index("J/image")], row.j_per_image)
        + _number_cell("—" if ceiling is None else f"{ceiling:.1f} %", ceiling)
        + f"<td>{text(numerics)}</td><td>{text(cells[_cell_index('caveats')])}</td></tr>"
    )


def set_table(result_set: ResultSet, anchors: list[str]) -> str:
    """The set's sortable table: one row per result, then the published references."""
    comparison = result_set.comparison
    head = "".join(
        f'<th scope="col"><button type="button">{text(h)}</button></th>' for h in HEADERS
    )
    rows = "".join(
        _row_html(i, row, cells, result_set, anchors[i - 1] if i <= len(anchors) else "")
        for i, (row, cells) in enumerate(
            zip(comparison.rows, compare_cells(comparison), strict=True), start=1
        )
    )
    base = comparison.rows[comparison.baseline]
    caption = (
        f"{result_set.title}: {len(result_set.results)} results; speedups over #"
        f"{comparison.baseline + 1} ({base.label}); a header sorts by its column"
    )
    return (
        f'<div class="scroll"><table class="sortable"><caption>{text(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"
    )


def chart_rows(comparison: Comparison) -> tuple[Comparison, list[int], str]:
    """The rows the chart draws (all, or with more than CHART_ROWS measured rows: the baseline,
    the references and each device's median result, the fastest CHART_ROWS devices), their
    numbers in the table, and what the caption says of the choice."""
    numbered = list(enumerate(comparison.rows))
    measured = [(i, r) for i, r in numbered if r.kind == "measured"]
    if len(measured) <= CHART_ROWS:
        return comparison, [i + 1 for i, _ in numbered], ""
    devices: dict[str, list[tuple[int, Row]]] = {}
    for i, row in measured:
        devices.setdefault(row.label, []).append((i, row))
    medians = []
    for members in devices.values():
        members.sort(key=lambda m: m[1].images_per_s)
        medians.append(members[(len(members) - 1) // 2])
    medians.sort(key=lambda m: -m[1].images_per_s)
    keep = {i for i, _ in medians[:CHART_ROWS]} | {comparison.baseline}
    keep |= {i for i, r in numbered if r.kind != "measured"}
    chosen = [(i, r) for i, r in numbered if i in keep]
    note = (
        f" The chart shows {len(chosen)} of {len(numbered)} rows: the baseline, the published "
        f"figures and the median result of each device ({min(len(medians), CHART_ROWS)} "
        f"fastest of {len(medians)} devices); the table lists every result."
    )
    rows = [r for _, r in chosen]
    base = next(n for n, (i, _) in enumerate(chosen) if i == comparison.baseline)
    return replace(comparison, rows=rows, baseline=base), [i + 1 for i, _ in chosen], note


def environment_html(comparison: Comparison) -> str:
    """The facts that differ between the set's results: each value with the rows that have it."""
    found = comparison.environment_differences
    if not found:
        return "<p>Environment: every recorded fact is the same in these results.</p>"
    rows = []
    for d in found:
        values: dict[str, list[int]] = {}
        for number, value in enumerate(d.values, start=1):
            values.setdefault(fact_cell(d.fact, value), []).append(number)
        shown = "<br>".join(
            f"{text(v)}: {text(', '.join(f'#{n}' for n in numbers))}"
            for v, numbers in values.items()
        )
        rows.append(f'<tr><th scope="row">{text(d.fact)}</th><td>{shown}</td></tr>')
    return (
        '<div class="scroll"><table class="facts"><caption>environment differences (value: '
        'rows)</caption><thead><tr><th scope="col">fact</th><th scope="col">values</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def shared_facts(result_set: ResultSet) -> dict[str, object]:
    """The environment facts every result of the set records alike, shown once."""
    each = [environment_facts(r) for r in result_set.results]
    return {k: v for k, v in each[0].items() if all(f.get(k, ...) == v for f in each[1:])}


def shared_html(shared: dict[str, object]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{text(k)}</th><td>{text("—" if v is None else v)}</td></tr>'
        for k, v in shared.items()
    )
    return (
        "<details><summary>environment every result of this set shares</summary>"
        f'<table class="facts"><tbody>{rows}</tbody></table></details>'
    )


def set_html(number: int, result_set: ResultSet) -> str:
    anchors = [f"set{number}-r{i}" for i in range(1, len(result_set.results) + 1)]
    comparison = result_set.comparison
    chart, numbers, note = chart_rows(comparison)
    warnings = "".join(f'<p class="warning">warning: {text(w)}</p>' for w in comparison.warnings)
    shared = shared_facts(result_set)
    results = "".join(
        result_html(path, result, anchor, shared=frozenset(shared))
        for path, result, anchor in zip(result_set.files, result_set.results, anchors, strict=True)
    )
    return (
        f'<section id="set{number}"><h2>{text(result_set.title)}</h2>'
        + set_table(result_set, anchors)
        + f"<figure>{bars_svg(chart, result_set.title, numbers)}<figcaption>images/s per row "
        f"with the 95 % CI of its median (a published row: its range).{text(note)}"
        "</figcaption></figure>"
        + warnings
        + environment_html(comparison)
        + shared_html(shared)
        + f"<h3>The results ({len(result_set.results)})</h3>{results}</section>"
    )


def apart_html(report: Report) -> str:
    """The files that failed a check, each with its reasons, never ranked."""
    if not report.apart:
        return ""
    items = "".join(
        f'<div class="apart-file"><h3>{text(one.path)}</h3>{findings_html(one.findings)}'
        + ("" if one.result is None else result_html(one.path, one.result, f"apart{i}"))
        + "</div>"
        for i, one in enumerate(report.apart, start=1)
    )
    return (
        f'<section id="apart" class="apart"><h2>Shown apart: {len(report.apart)} files that '
        "failed a check (never ranked)</h2>"
        "<p>Each file below failed a plausibility check; the reason says what to do.</p>"
        f"{items}</section>"
    )


def report_html(report: Report, title: str = "segbench report") -> str:
    """The whole page."""
    ranked = sum(len(s.results) for s in report.sets)
    nav = "".join(
        f'<li><a href="#set{i}">{text(s.title)}</a> ({len(s.results)})</li>'
        for i, s in enumerate(report.sets, start=1)
    )
    nav += f'<li><a href="#apart">shown apart</a> ({len(report.apart)})</li>' * bool(report.apart)
    csp = (
        f"default-src 'none'; style-src {_csp_hash(STYLE)}; script-src {_csp_hash(SORT_SCRIPT)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    sets = "".join(set_html(i, s) for i, s in enumerate(report.sets, start=1))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{GENERATOR} {text(__version__)}">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        f"<title>{text(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{text(title)}</h1><p>{ranked + len(report.apart)} result files: "
        f"{ranked} ranked in {len(report.sets)} sets of comparable results (model, width, "
        f"image, batch, preset), {len(report.apart)} shown apart. Made by segbench "
        f"{text(__version__)}; each figure is recomputed from the file's steps.</p></header>"
        f'<nav aria-label="sets"><ul>{nav}</ul></nav><main>{sets}{apart_html(report)}</main>'
        f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )
