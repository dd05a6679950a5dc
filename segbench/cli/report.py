"""`segbench report`: result files and folders as one self-contained HTML page, grouped into
sets of comparable results, each file checked and the ones that fail shown apart."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segbench.cli.console import note, stderr, write_or_save_elsewhere
from segbench.cli.options import file_path
from segbench.errors import BadInput


def writable_page(path: Path, inputs: list[Path]) -> None:
    """BadInput naming --output unless `path` may receive the page: an .html name, not one
    of the inputs, and an existing file only when it is a report segbench wrote."""
    from segbench.report.html import GENERATOR

    shown = f"--output {path}"
    if path.suffix.lower() not in (".html", ".htm"):
        raise BadInput(f"{shown}: the report is an HTML page; choose a .html name")
    if path.is_dir():
        raise BadInput(f"{shown}: is a folder; name the .html file to write")
    if any(path.resolve() == Path(i).resolve() for i in inputs):
        raise BadInput(f"{shown}: is one of the inputs; choose another name")
    try:
        head = path.read_bytes()[:2048] if path.is_file() else None
    except OSError:
        return  # unreadable: writing says why, in one line
    if head is not None and f'name="generator" content="{GENERATOR}'.encode() not in head:
        raise BadInput(
            f"{shown}: exists and is not a report segbench wrote; choose another name or remove it"
        )


def report_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(metavar="FILE|FOLDER", hidden=True),  # the docstring says what they are
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", parser=file_path, metavar="HTML", help="The page to write."),
    ] = Path("report.html"),
    title: Annotated[str, typer.Option(metavar="TEXT", help="The page's title.")] = (
        "segbench report"
    ),
) -> None:
    """Write one HTML page of result files (FILE: segbench run --out …; a FOLDER: the *.json
    files in it) from any machines: comparable results in sortable
    tables with speedups, their 95 % CIs and verdicts, charts, each result's details and the
    command that reproduces it. Files that fail a plausibility check are shown apart with the
    reason. The page works offline: it loads nothing."""
    from segbench.atomic import write_text_atomic
    from segbench.report.html import report_html
    from segbench.report.sets import build_report

    writable_page(output, inputs)  # before anything is read
    report = build_report(inputs)
    page = report_html(report, title)
    ranked = sum(len(s.results) for s in report.sets)
    note(
        f"{ranked} results in {len(report.sets)} sets, {len(report.apart)} shown apart "
        "(failed a check)"
    )
    write_or_save_elsewhere(
        stderr,
        "--output",
        output,
        "report",
        lambda path: write_text_atomic(path, page),
        said="report written to",
    )
