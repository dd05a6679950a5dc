"""The segbench command line: the only layer that prints."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segbench import __version__
from segbench.config import PRESETS

app = typer.Typer(
    help="Reproducible training-speed benchmark of the CV-net segmentation model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
stdout = Console()
stderr = Console(stderr=True)

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 1
EXIT_INTERRUPTED = 130


class Preset(str, Enum):
    smoke = "smoke"
    quick = "quick"
    article = "article"


class Precision(str, Enum):
    float32 = "float32"
    mixed_float16 = "mixed_float16"
    mixed_bfloat16 = "mixed_bfloat16"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


class Backend(str, Enum):
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


def fail(message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with `code`."""
    stderr.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"segbench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Reproducible training-speed benchmark of the CV-net segmentation model."""


@app.command()
def data(
    out: Annotated[
        Path | None,
        typer.Option(help="Folder to write the data set into (new or empty). Default: the cache."),
    ] = None,
) -> None:
    """Write the triangles data set: 600 image/mask PNG pairs plus train.csv and validation.csv."""
    from segbench import triangles

    target = out if out is not None else triangles.default_data_dir()
    try:
        triangles.generate(target)
    except FileExistsError as e:
        fail(f"--out: {e}", EXIT_BAD_INPUT)
    except OSError as e:
        fail(f"--out {target}: cannot write ({e.strerror or e})", EXIT_UNAVAILABLE)
    stdout.print(f"wrote {triangles.COUNT} image/mask pairs to {target}")


def _check_writable(folder: Path) -> None:
    """Fail now, not after an hour of benchmarking, if results cannot be written to `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".segbench-write-test-"):
            pass
    except OSError as e:
        fail(
            f"--out {folder}: not writable ({e.strerror or e}); pass a writable folder "
            '(in a container, mount one: -v "$PWD/results:/results")',
            EXIT_UNAVAILABLE,
        )


def _environment_checks(context: Any) -> list[dict[str, str]]:
    from segbench import doctor

    with stderr.status("checking the environment"):
        return doctor.checks_to_dicts(doctor.run_checks(doctor.gather(context), context))


class Expect(str, Enum):
    gpu = "gpu"
    cpu = "cpu"


@app.command("doctor")
def doctor_command(
    expect: Annotated[
        Expect | None,
        typer.Option(help="gpu: a missing GPU is a FAIL; cpu: a visible GPU is a FAIL."),
    ] = None,
    preset: Annotated[
        Preset, typer.Option(help="Preset whose memory need is checked.")
    ] = Preset.quick,
    device: Annotated[
        DeviceChoice, typer.Option(help="Device the run will use.")
    ] = DeviceChoice.auto,
    precision: Annotated[
        Precision, typer.Option(help="Precision the run will use.")
    ] = Precision.float32,
    xla: Annotated[
        bool, typer.Option("--xla/--no-xla", help="Whether the run will use XLA.")
    ] = False,
    backend: Annotated[
        Backend, typer.Option(envvar="KERAS_BACKEND", help="Keras backend.")
    ] = Backend.tensorflow,
    out: Annotated[
        Path, typer.Option(envvar="SEGBENCH_OUT", help="Results folder whose free disk is checked.")
    ] = Path("results"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
) -> None:
    """Check the environment and say exactly what to fix (exit 1 when a check FAILs)."""
    from segbench import backend as backends

    backends.select_backend(backend.value)
    from segbench import doctor, triangles
    from segbench.report import doctor_table

    context = doctor.Context(
        preset=preset.value,
        device=device.value,
        precision=precision.value,
        xla=xla,
        expect=expect.value if expect else None,
        folders=(str(triangles.default_data_dir()), str(out)),
    )
    checks = _environment_checks(context)
    if as_json:
        sys.stdout.write(json.dumps({"checks": checks}, indent=2) + "\n")
    else:
        stdout.print(doctor_table(checks))
    failures = [c for c in checks if c["status"] == doctor.FAIL]
    if failures:
        stderr.print(
            f"[red]{len(failures)} check(s) failed:[/red] {', '.join(c['id'] for c in failures)}",
            highlight=False,
        )
        raise typer.Exit(EXIT_UNAVAILABLE)


class _ProgressView:
    """Shows runner events as a live progress bar on stderr."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None

    def __call__(self, event: Any) -> None:
        if event.kind == "phase":
            if self.task is not None:
                self.progress.remove_task(self.task)
            label = f"repeat {event.repeat + 1} · {event.phase}"
            if not self.progress.console.is_terminal:
                # No live bar in logs and pipes: one line per phase instead.
                self.progress.console.print(f"{label}: {event.total}", highlight=False)
            self.task = self.progress.add_task(label, total=event.total, last="")
        elif event.step is not None:
            s = event.step
            self.progress.update(
                self.task,
                completed=event.completed,
                last=f"{s.ms:8.1f} ms  loss {s.loss:.4f}  IoU {s.iou:.3f}",
            )
        else:
            self.progress.update(self.task, completed=event.completed)


@app.command()
def run(
    preset: Annotated[
        Preset,
        typer.Option(
            help="smoke: seconds on a CPU; quick: the published model, "
            "short; article: the published protocol."
        ),
    ] = Preset.quick,
    batch_size: Annotated[int | None, typer.Option(min=1, help="Images per step [preset].")] = None,
    steps: Annotated[int | None, typer.Option(min=1, help="Timed steps [preset].")] = None,
    warmup: Annotated[
        int | None,
        typer.Option(
            min=0, help="Warm-up steps after the first (compile) step, excluded [preset]."
        ),
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Epochs of the published protocol instead of timed steps; 0: steps [preset].",
        ),
    ] = None,
    width: Annotated[
        float | None,
        typer.Option(
            min=0.001, help="Channel-width multiplier; 1 is the published model [preset]."
        ),
    ] = None,
    precision: Annotated[Precision | None, typer.Option(help="Keras dtype policy.")] = None,
    xla: Annotated[
        bool | None, typer.Option("--xla/--no-xla", help="Compile the step with XLA [no-xla].")
    ] = None,
    device: Annotated[
        DeviceChoice | None, typer.Option(help="auto: the GPU when one is visible, else the CPU.")
    ] = None,
    backend: Annotated[
        Backend, typer.Option(envvar="KERAS_BACKEND", help="Keras backend.")
    ] = Backend.tensorflow,
    seed: Annotated[
        int | None, typer.Option(help="Seed of weights, dropout and data order [42].")
    ] = None,
    deterministic: Annotated[
        bool | None,
        typer.Option(
            "--deterministic/--no-deterministic", help="Ask the backend for deterministic kernels."
        ),
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=1, help="Whole-run repetitions [preset].")
    ] = None,
    cooldown: Annotated[
        float | None, typer.Option(min=0, help="Seconds of pause between repeats [preset].")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Data folder with train.csv and validation.csv. Default: the triangles, "
            "generated once into the cache.",
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(envvar="SEGBENCH_OUT", help="Folder for the result JSON.")
    ] = Path("results"),
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result JSON on stdout (tables go to stderr).")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Run even when an environment check FAILs (marked).")
    ] = False,
) -> None:
    """Run the training-speed benchmark and write a result file."""
    config = PRESETS[preset.value].with_overrides(
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
        epochs=epochs,
        width=width,
        precision=precision.value if precision else None,
        xla=xla,
        device=device.value if device else None,
        backend=backend.value,
        seed=seed,
        deterministic=deterministic,
        repeats=repeats,
        cooldown=cooldown,
    )
    try:
        config.validate()
    except ValueError as e:
        fail(str(e), EXIT_BAD_INPUT)
    _check_writable(out)
    report_console = stderr if as_json else stdout

    from segbench import backend as backends

    backends.select_backend(config.backend)
    from segbench import doctor, environment, triangles
    from segbench.report import doctor_table, run_report
    from segbench.result import build_result, result_filename, write_json_atomic
    from segbench.runner import run_benchmark

    try:
        chosen = backends.choose_device(config.device)
    except backends.DeviceError as e:
        fail(str(e), EXIT_UNAVAILABLE)

    context = doctor.Context(
        preset=config.preset,
        device=chosen.kind,
        precision=config.precision,
        xla=config.xla,
        folders=(str(data_dir or triangles.default_data_dir()), str(out)),
    )
    checks = _environment_checks(context)
    failures = [c for c in checks if c["status"] == doctor.FAIL]
    if failures and not force:
        stderr.print(doctor_table(failures, title="failed environment checks"))
        names = ", ".join(c["id"] for c in failures)
        fail(
            f"{len(failures)} environment check(s) failed ({names}); "
            "fix them (segbench doctor shows all checks) or pass --force",
            EXIT_UNAVAILABLE,
        )

    try:
        if data_dir is None and not (triangles.default_data_dir() / triangles.TRAIN_CSV).is_file():
            stderr.print(
                f"generating the triangles data set into {triangles.default_data_dir()} (once)"
            )
        folder = triangles.ensure_data(data_dir)
        with stderr.status(f"loading {folder} into memory"):
            train, validation = triangles.load_dataset(folder, config.image_size)
    except triangles.DataError as e:
        fail(f"--data: {e}", EXIT_BAD_INPUT)
    except KeyboardInterrupt:
        fail("interrupted before timing started; no result written", EXIT_INTERRUPTED)

    started_at = datetime.now(timezone.utc)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[last]}"),
        console=stderr,
        transient=True,
    )
    with progress:
        measurement = run_benchmark(config, chosen, train, validation, _ProgressView(progress))

    result = build_result(
        measurement,
        environment.fingerprint([chosen.description]),
        started_at,
        data={
            "folder": str(folder),
            "train_images": len(train),
            "validation_images": len(validation),
            "generated": data_dir is None,
        },
        git_commit=environment.git_commit(),
        doctor=checks,
        forced=bool(failures),
    )
    path = write_json_atomic(out / result_filename(result), result)
    report_console.print(run_report(result))
    report_console.print(f"result written to {path}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    if measurement.status == "interrupted":
        raise typer.Exit(EXIT_INTERRUPTED)


class Format(str, Enum):
    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


@app.command("compare")
def compare_command(
    files: Annotated[list[Path], typer.Argument(help="Result files (segbench run --out …).")],
    baseline: Annotated[
        str | None,
        typer.Option(
            help="Row to compare against: its number (1 = first file) or part of its label."
        ),
    ] = None,
    references: Annotated[
        bool, typer.Option("--references/--no-references", help="Add the published figures.")
    ] = True,
    output: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.table,
    plot: Annotated[
        Path | None, typer.Option(help="Also write a PNG bar chart (needs the plot extra).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Compare even when width, image or batch size differ.")
    ] = False,
) -> None:
    """Put result files from different machines side by side, with speedups."""
    from segbench.compare import CompareError, compare, load_result
    from segbench.report import compare_csv, compare_json, compare_markdown, compare_table

    if plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            fail("--plot needs matplotlib: uv sync --extra plot (or pip install matplotlib)", 1)
    try:
        results = [load_result(path) for path in files]  # all read before anything is printed
        comparison = compare(results, baseline=baseline, references=references, force=force)
    except CompareError as e:
        fail(str(e), EXIT_BAD_INPUT)
    if output is Format.table:
        stdout.print(compare_table(comparison))
        for row in comparison.rows:
            stdout.print(f"  {row.label}: {row.conditions}", highlight=False, style="dim")
        for warning in comparison.warnings:
            stdout.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    else:
        render = {
            Format.markdown: compare_markdown,
            Format.csv: compare_csv,
            Format.json: compare_json,
        }
        sys.stdout.write(render[output](comparison))
        for warning in comparison.warnings if output is Format.csv else []:
            stderr.print(f"warning: {warning}", highlight=False)
    if plot is not None:
        from segbench.plot import plot_comparison

        stderr.print(f"plot written to {plot_comparison(comparison, plot)}", highlight=False)


def entry() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    app()
