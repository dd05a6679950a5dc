"""The commands that measure: `segbench run` runs the benchmark and prints its result,
`segbench show` prints a result file again, `segbench launch` starts local workers of one run."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from segbench.benchmark.config import PRESETS
from segbench.cli.console import print_path, stderr, stdout
from segbench.cli.display import ConsoleDisplay
from segbench.cli.options import (
    AsJsonOption,
    BackendOption,
    BatchnormOption,
    BatchSizeOption,
    CheckNumericsOption,
    CompileOption,
    CooldownOption,
    CpuReplicasOption,
    DataDirOption,
    DataFormatOption,
    DeterministicOption,
    DeviceOption,
    EpochsOption,
    ForceOption,
    GlobalBatchOption,
    GpusOption,
    KerasOption,
    ModelArgOption,
    ModelOption,
    OutOption,
    PeakOption,
    PrecisionOption,
    PresetOption,
    ProfileOption,
    RepeatsOption,
    ScalingOption,
    SeedOption,
    StepsOption,
    StrategyOption,
    SyncBatchnormOption,
    TelemetryOption,
    WarmupOption,
    WidthOption,
    choice_value,
)
from segbench.errors import BadInput, Unavailable, stopped
from segbench.measure.parallel.launch import MAX_WORKERS
from segbench.report.printable import printable


def run(
    preset: PresetOption = "quick",
    batch_size: BatchSizeOption = None,
    steps: StepsOption = None,
    warmup: WarmupOption = None,
    epochs: EpochsOption = None,
    width: WidthOption = None,
    precision: PrecisionOption = None,
    compile_step: CompileOption = None,
    batchnorm: BatchnormOption = None,
    data_format: DataFormatOption = None,
    model: ModelOption = None,
    model_arg: ModelArgOption = None,
    device: DeviceOption = None,
    backend: BackendOption = "tensorflow",
    keras: KerasOption = "3",
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    repeats: RepeatsOption = None,
    cooldown: CooldownOption = None,
    data_dir: DataDirOption = None,
    out: OutOption = Path("results"),
    as_json: AsJsonOption = False,
    force: ForceOption = False,
    telemetry: TelemetryOption = True,
    peak: PeakOption = True,
    check_numerics: CheckNumericsOption = True,
    profile: ProfileOption = False,
    strategy: StrategyOption = "none",
    gpus: GpusOption = None,
    cpu_replicas: CpuReplicasOption = None,
    global_batch: GlobalBatchOption = None,
    sync_batchnorm: SyncBatchnormOption = False,
    scaling: ScalingOption = False,
) -> None:
    """Run the training-speed benchmark and write a result file."""
    from segbench.measure.run import pipeline

    if model is not None and width is not None:
        raise BadInput("--width is CV-net's: a --model sets its own size (use --model-arg)")
    config = PRESETS[choice_value(preset)].with_overrides(
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
        epochs=epochs,
        width=width,
        precision=choice_value(precision) if precision else None,
        xla=compile_step,
        batchnorm=choice_value(batchnorm) if batchnorm else None,
        data_format=choice_value(data_format) if data_format else None,
        model=model,
        model_args=list(model_arg) if model_arg else None,
        device=choice_value(device) if device else None,
        backend=choice_value(backend),
        keras=int(choice_value(keras)),
        seed=seed,
        deterministic=deterministic,
        repeats=repeats,
        cooldown=cooldown,
        strategy=None if choice_value(strategy) == "none" else choice_value(strategy),
        gpus=gpus,
        cpu_replicas=cpu_replicas,
        global_batch=global_batch,
        sync_batchnorm=sync_batchnorm or None,
        scaling=scaling or None,
    )
    instruments = pipeline.Instruments(
        telemetry=telemetry, peak=peak, numerics=check_numerics, profile=profile
    )
    outcome = _measure(config, data_dir, out, force, instruments)
    _report(outcome, as_json)


def _measure(
    config: Any,
    data_dir: Path | None,
    out: Path,
    force: bool,
    instruments: Any,
    reproduces: Any = None,
) -> Any:
    """Announce the plan and run the pipeline with the progress display on stderr."""
    from segbench.measure.run import pipeline
    from segbench.measure.run.progress import plan_line

    # The first line within a second: what will run (a run refused later says why in its last
    # line, "error: …"). In pipes with the first phase, after the checks of what was asked.
    plan = plan_line(pipeline.validated(config))
    if stderr.is_terminal:
        stderr.print(plan, markup=False, highlight=False)
    display = ConsoleDisplay("" if stderr.is_terminal else plan)
    return pipeline.run(config, data_dir, out, force, display, instruments, reproduces)


def _report(outcome: Any, as_json: bool) -> None:
    """A run's ending: its tables, where its result was written (or its JSON on stdout), and
    the error that names what was kept when it was interrupted or could not be saved."""
    from segbench.results.result import to_json_text

    result = outcome.result
    if outcome.worker and result.status == "interrupted":
        chief = "the chief (task 0) writes the job's partial result"
        if result.interrupted_by == "error":
            raise Unavailable(f"{result.failure}; {chief}")
        raise stopped(result.interrupted_by)(f"interrupted: this worker stopped; {chief}")
    if outcome.worker:
        stderr.print(
            "this worker's part of the job is done; the chief (task 0) writes the result",
            highlight=False,
        )
        return
    report_console = stderr if as_json else stdout
    _show_result(result, report_console)
    if outcome.path is not None:
        print_path(report_console, "result written to", outcome.path)
    if as_json or outcome.path is None:
        sys.stdout.write(to_json_text(result))
    if outcome.write_error:
        kept = f"saved to {outcome.path}" if outcome.path else "printed on stdout above"
        raise Unavailable(f"{outcome.write_error}; the measurement was {kept}")
    if result.interrupted_by == "error":
        raise Unavailable(f"{result.failure}; the partial result is in {outcome.path}")
    if result.status == "interrupted":
        raise stopped(result.interrupted_by)(
            f"interrupted: the partial result is in {outcome.path}"
        )


def _show_result(result: Any, console: Console) -> None:
    """A result's tables, as at the end of its run, and the warnings of its checks."""
    from segbench.benchmark.config import is_published_setup
    from segbench.doctor.types import warning_lines
    from segbench.report.tables import run_report
    from segbench.results.caveats import run_caveats
    from segbench.results.compare import against_references

    # Speedups over the published figures only for their model and batch, and never for a
    # diverged run (its speed is no speed figure); run_caveats says why there are none.
    published = is_published_setup(result.config) or result.config.model == "resnet50"
    comparable = published and not result.diverged
    comparison = against_references(result) if result.summary.steps and comparable else None
    console.print(run_report(result, comparison, run_caveats(result)))
    for line in warning_lines(result.doctor or []):  # repeated under the tables
        console.print(
            printable(line), style="yellow", markup=False, highlight=False, soft_wrap=True
        )


def show_command(
    result_file: Annotated[Path, typer.Argument(metavar="RESULT", help="A result file.")],
) -> None:
    """Print a result file's tables again, as its run printed them (the statistics recomputed
    from its steps, as compare does; a stored summary that disagrees is named); a tune file's
    trials and verdict follow its winner's tables."""
    from segbench.results.result import load_result, recompute

    found = recompute(load_result(result_file))
    _show_result(found.result, stdout)
    if found.result.tune is not None:
        from segbench.report.tune import tune_table, verdict_lines

        stdout.print(tune_table(found.result.tune))
        for line in verdict_lines(found.result.tune):
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
    if found.disagreeing:
        stderr.print(
            f"warning: {printable(str(result_file))}: the summary in the file disagrees with its "
            f"steps ({', '.join(found.disagreeing)}): shown here as recomputed from the steps",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def launch_command(
    ctx: typer.Context,
    workers: Annotated[
        int,
        typer.Option(min=1, help=f"Worker processes to start (at most {MAX_WORKERS} on one host)."),
    ] = 2,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="First port (one per worker). Default: free ports."),
    ] = None,
) -> None:
    """Start N local workers of one multi-worker run on 127.0.0.1, each `segbench run ARGS…`
    with its own TF_CONFIG: segbench launch --workers 2 -- run --preset smoke. The chief's
    output is shown; if a worker fails, the others are stopped and it is named. Ctrl-C,
    SIGTERM and SIGHUP reach every worker; the chief keeps what was measured."""
    from segbench.measure.parallel.launch import is_run, launch

    args = list(ctx.args)
    read = _read_as_run(ctx, args[1:]) if is_run(args) else {}
    launch(
        args,
        workers,
        port,
        lambda line: stderr.print(printable(line), markup=False, highlight=False),
        strategy=read.get("strategy"),
        cpu_replicas=read.get("cpu_replicas"),
    )


def _read_as_run(ctx: typer.Context, args: list[str]) -> dict[str, Any]:
    """The options `segbench run ARGS…` would read that were given (not defaults), parsed by
    the run command itself (a repeated option: the last, `--opt=value` too); BadInput with
    its reason when run would refuse ARGS."""
    group = ctx.parent
    command = group.command.get_command(group, "run") if group is not None else None
    if command is None:
        return {}
    try:
        parsed = command.make_context("run", list(args), parent=group)
    except Exception as e:
        if not hasattr(e, "format_message"):  # not click's (typer's own copy) usage error
            raise
        raise BadInput(f"segbench launch -- run: {e.format_message()}") from None
    given = {}
    for name, value in parsed.params.items():
        source = parsed.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            given[name] = choice_value(value)
    return given
