"""`segbench compare`: result files side by side as a table, Markdown, CSV or JSON, with an
optional chart and a regression gate for CI."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from segbench.cli.console import messages, stderr, stdout, write_or_save_elsewhere
from segbench.cli.options import Format, choice_value, file_path
from segbench.cli.plot import need_matplotlib
from segbench.errors import BadInput, Regression
from segbench.report.printable import printable


def compare_command(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", hidden=True),  # the docstring says what FILE is
    ],
    baseline: Annotated[
        str | None,
        typer.Option(
            metavar="ROW",
            help="Row to compare against: its number (1 = first file) or part of its label.",
        ),
    ] = None,
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Add the published figures.")
    ] = True,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = "table",
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="Table: every column (source, backend, ms/step, 100k images, TFLOP/s, "
            "energy, caveats), not only device, ms/image, images/s, speedup and verdict.",
        ),
    ] = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            metavar="PNG",
            parser=file_path,
            help="Also write a PNG bar chart (needs the plot extra).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Compare even when width, image or batch size differ.")
    ] = False,
    fail_if_slower: Annotated[
        float | None,
        typer.Option(
            metavar="PCT",
            help="Exit 3 when a result is slower than the baseline by more than PCT % and "
            "significantly so, or by more than PCT % with too few steps for the test to decide "
            "(a regression gate for CI pipelines).",
        ),
    ] = None,
) -> None:
    """Put result files (FILE: segbench run --out …) from different machines side by side,
    with speedups, their 95 % confidence intervals and whether each difference is
    significant."""
    from segbench.results.compare import compare, regressions
    from segbench.results.result import load_result

    if plot is not None:
        from segbench.report.plot import writable_target

        writable_target(plot, "--plot", files)  # before anything is read or written
        need_matplotlib("--plot")
    _check_gate(fail_if_slower)
    results = [load_result(path) for path in files]  # all read before anything is printed
    comparison = compare(
        results,
        baseline=baseline,
        references=references,
        force=force,
        sources=[str(path) for path in files],
    )
    gate = None if fail_if_slower is None else regressions(comparison, fail_if_slower)
    _print_comparison(comparison, choice_value(output), wide)
    if plot is not None:
        _write_chart(comparison, plot)
    if gate:
        raise Regression("; ".join(gate))
    if gate is not None:
        base = printable(str(comparison.rows[comparison.baseline].source))
        messages().print(
            f"ok: no result is significantly slower than {base} by more than {fail_if_slower:g} %",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _print_comparison(comparison: Any, output: str, wide: bool) -> None:
    """The comparison on stdout in its format; a table is followed by each row's conditions
    and the warnings, CSV's warnings go to stderr."""
    from segbench.report.comparison import compare_table, footnote
    from segbench.report.export import compare_csv, compare_json, compare_markdown

    if output == "table":
        stdout.print(compare_table(comparison, wide))
        for number, row in enumerate(comparison.rows, start=1):
            stdout.print(
                printable(f"  {footnote(number, row)}"),
                markup=False,
                highlight=False,
                style="dim",
            )
        for warning in comparison.warnings:
            line = Text.assemble(("warning:", "yellow"), " ", printable(warning))
            stdout.print(line, highlight=False)
    else:
        render = {"markdown": compare_markdown, "csv": compare_csv, "json": compare_json}
        sys.stdout.write(render[output](comparison))
        for warning in comparison.warnings if output == "csv" else []:
            stderr.print(f"warning: {printable(warning)}", markup=False, highlight=False)


def _check_gate(fail_if_slower: float | None) -> None:
    """BadInput unless --fail-if-slower is absent or a finite percentage of 0 or more."""
    if fail_if_slower is not None and not math.isfinite(fail_if_slower):
        raise BadInput(f"--fail-if-slower: {fail_if_slower} is not a finite number")
    if fail_if_slower is not None and fail_if_slower < 0:
        raise BadInput(f"--fail-if-slower must be a percentage of 0 or more, got {fail_if_slower}")


def _write_chart(comparison: Any, plot: Path) -> None:
    """compare --plot: the bar chart, and where it was written."""
    from segbench.report.comparison_chart import plot_comparison

    write_or_save_elsewhere(
        stderr,
        "--plot",
        plot,
        "chart",
        lambda path: plot_comparison(comparison, path),
        said="plot written to",
    )
