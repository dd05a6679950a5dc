"""One result in the HTML report: what `segbench show` prints (the statistics, notes and
caveats with their advice), its step-time trace, the environment it ran in, its provenance and
the command that reproduces it. Every text from the file is escaped with html.escape."""

from __future__ import annotations

import shlex
from html import escape
from pathlib import Path

from rich.console import Group
from rich.text import Text

from segbench.report.printable import printable
from segbench.report.svg import trace_svg
from segbench.report.tables import run_report
from segbench.report.uncut import UncutTable
from segbench.results.caveats import run_caveats
from segbench.results.comparability import environment_facts
from segbench.results.compare import device_label
from segbench.results.plausibility import Finding
from segbench.results.result import Result
from segbench.results.stats import timed_steps


def text(value: object) -> str:
    """A value from a file as inert HTML text: no control characters, <>&"' escaped."""
    return escape(printable(str(value)), quote=True)


def uncut_html(table: UncutTable) -> str:
    """An UncutTable (the terminal's table) as an HTML table with its caption and headers
    (cells without their optional end tags: a page of a thousand results stays small)."""
    head = "".join(f'<th scope="col">{text(f.header)}' for f in table.fields)
    rows = "".join(
        "<tr>"
        + "".join(
            f'<th scope="row">{text(c.plain)}' if i == 0 else f"<td>{text(c.plain)}"
            for i, c in enumerate(cells)
        )
        for cells, _ in table.rows
    )
    return (
        f'<div class="scroll"><table><caption>{text(table.title.plain)}</caption>'
        f"<thead><tr>{head}</thead><tbody>{rows}</tbody></table></div>"
    )


def shown_html(result: Result) -> str:
    """What `segbench show` prints of a result, as HTML: its tables, then each note and
    caveat with its advice (the comparison with the published figures is the set's table)."""
    parts = []
    for part in run_report(result, None, run_caveats(result)).renderables:
        if isinstance(part, UncutTable):
            parts.append(uncut_html(part))
        elif isinstance(part, Text):
            kind = "warning" if part.plain.startswith("warning:") else "note"
            parts.append(f'<p class="{kind}">{text(part.plain)}</p>')
        elif isinstance(part, Group):  # nothing run_report makes today; said, never dropped
            parts.append(f"<p>{text(part)}</p>")
    return "".join(parts)


def _facts(facts: dict[str, object], caption: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{text(k)}<td>{text("—" if v is None else v)}'
        for k, v in facts.items()
    )
    return f'<table class="facts"><caption>{text(caption)}</caption><tbody>{rows}</tbody></table>'


def provenance(result: Result) -> dict[str, object]:
    """Where the result comes from: the segbench that made it, its commit, lock, data and date."""
    return {
        "segbench": result.segbench_version,
        "git commit": result.git_commit or "not recorded",
        "source": result.source_url or "not recorded",
        "uv.lock sha256": result.environment.uv_lock_sha256 or "not recorded",
        "data sha256": result.data.sha256 or "not recorded",
        "started": result.started_at,
        "finished": result.finished_at,
        "command": " ".join(result.command) if result.command else "not recorded",
        "schema version": result.schema_version,
    }


def findings_html(findings: list[Finding]) -> str:
    items = "".join(
        f"<li><strong>{text(f.check)}</strong>: {text(f.reason)}</li>" for f in findings
    )
    return f'<ul class="findings">{items}</ul>'


def result_html(
    path: Path,
    result: Result | None,
    anchor: str,
    findings: list[Finding] | None = None,
    shared: frozenset[str] = frozenset(),
) -> str:
    """A result's section, folded: its file and device as the summary line; the checks it
    failed first where it failed any. `shared`: environment facts the page shows once for
    the result's whole set, left out here."""
    device = device_label(result) if result is not None else "does not load"
    summary = f"{path} — {device}"
    body = [findings_html(findings)] if findings else []
    if result is not None:
        ms = [s.ms for s in timed_steps(result.config, result.steps)]
        body += [
            shown_html(result),
            f"<figure>{trace_svg(ms, result.summary, str(path))}"
            f"<figcaption>Step times of {text(path)}</figcaption></figure>",
            _facts(provenance(result), "provenance"),
            _facts(
                {k: v for k, v in environment_facts(result).items() if k not in shared},
                "environment (the set's shared facts are above)" if shared else "environment",
            ),
            "<p>Reproduce it on your machine: <code>"
            f"segbench reproduce {text(shlex.quote(str(path)))}</code></p>",
        ]
    return (
        f'<details id="{anchor}" class="result"><summary>{text(summary)}</summary>'
        f"{''.join(body)}</details>"
    )
