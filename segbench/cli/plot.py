"""`segbench plot`: a run's trace as a PNG, and the check that matplotlib is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segbench.cli.console import stdout, write_or_save_elsewhere
from segbench.cli.options import file_path
from segbench.errors import Unavailable


def plot_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A result file (segbench run --out …).")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            parser=file_path,
            metavar="<path>",
            help="PNG to write. Default: beside FILE, -trace.png.",
        ),
    ] = None,
) -> None:
    """Draw a run's trace: the timed steps over the run with their median and its 95 % CI, the
    excluded compile and warm-up steps beside them, and power, clock and temperature where the
    telemetry has them — throttling shows at a glance."""
    from segbench.results.result import load_result

    need_matplotlib("segbench plot")
    target = output if output is not None else file.with_name(f"{file.stem}-trace.png")
    from segbench.report.plot import writable_target

    writable_target(target, "--output", [file])
    result = load_result(file)  # read before anything is written
    from segbench.report.trace import plot_trace

    write_or_save_elsewhere(
        stdout,
        "--output",
        target,
        "picture",
        lambda path: plot_trace(result, path),
        said="trace written to",
    )


def need_matplotlib(what: str) -> None:
    """Unavailable, saying how to install it, when matplotlib is not installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise Unavailable(
            f"{what} needs matplotlib, a dependency of segbench that is missing here: "
            "uv sync (or pip install matplotlib)"
        ) from None
