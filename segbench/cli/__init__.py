"""The segbench command line: options, progress display and printing — the only layer that prints.

Every error leaves through `_Commands.invoke`, which maps it to its exit code with EXIT_CODES.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text
from typer.core import TyperGroup

from segbench import __version__
from segbench.benchmark.config import PRESETS
from segbench.cli.options import (
    AsJsonOption,
    Backend,
    BackendOption,
    BatchnormOption,
    BatchSizeOption,
    CheckNumericsOption,
    CompileOption,
    CooldownOption,
    CpuReplicasOption,
    DataDirOption,
    DeterministicOption,
    DeviceChoice,
    DeviceOption,
    EpochsOption,
    Expect,
    ForceOption,
    Format,
    GlobalBatchOption,
    GpusOption,
    KerasOption,
    ModelArgOption,
    ModelOption,
    OutOption,
    PeakOption,
    Precision,
    PrecisionOption,
    Preset,
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
)
from segbench.errors import (
    BadInput,
    HungUp,
    Interrupted,
    Regression,
    SegbenchError,
    SigHup,
    SigTerm,
    Terminated,
    Unavailable,
    stopped,
)
from segbench.measure.launch import MAX_WORKERS
from segbench.report.printable import ASCII_FALLBACK, printable

try:  # typer 0.2x carries its own copy of click
    from typer._click.exceptions import BadParameter, MissingParameter, UsageError
except ImportError:  # pragma: no cover - older typer, click itself
    from click.exceptions import BadParameter, MissingParameter, UsageError

# Exit codes, one row per kind of failure (README: "Errors and exit codes"). Usage errors
# (an invalid option value) exit 2 through click before a command runs.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (BadInput, 2),  # an option, data file or result file that cannot be used
    (Unavailable, 1),  # environment check, device, output folder, missing optional extra
    (Regression, 3),  # compare --fail-if-slower: significantly slower than allowed
    (Terminated, 143),  # SIGTERM (docker stop, Slurm, CI time-outs), with what was kept named
    (HungUp, 129),  # SIGHUP (the terminal or SSH session closed), with what was kept named
    (Interrupted, 130),  # Ctrl-C, with what was kept named
    (SigTerm, 143),  # SIGTERM anywhere else
    (SigHup, 129),  # SIGHUP anywhere else
    (KeyboardInterrupt, 130),  # Ctrl-C anywhere else
)


class _Console(Console):
    """A rich console that cuts no line in logs, pipes and CI output: there (not a terminal)
    it has no width limit; on a terminal, the terminal's width (or COLUMNS)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        return size if self.is_terminal else ConsoleDimensions(UNLIMITED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


UNLIMITED = 10_000  # columns: wider than any table or line segbench prints
stdout = _Console()
stderr = _Console(stderr=True)
_stderr_closed = False  # started with `2>&-`: the error line goes to stdout instead


def _messages() -> Console:
    """Where a command's last word goes: stderr, or stdout when stderr was closed."""
    return stdout if _stderr_closed else stderr


def exit_code(error: BaseException) -> int:
    """The exit code of an error, from EXIT_CODES (1 for a SegbenchError not listed)."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


class _Commands(TyperGroup):
    """Runs a command; turns a SegbenchError, a usage error or Ctrl-C into one line on stderr
    and its exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> typer.Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:  # an option of segbench itself (`segbench --bogus`)
            raise _usage_error(e) from None

    def invoke(self, ctx: typer.Context) -> Any:
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _sigterm) if main_thread else None
        hangup = (
            signal.signal(signal.SIGHUP, _sighup)
            if main_thread
            and hasattr(signal, "SIGHUP")
            and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN  # nohup: keep ignoring
            else None
        )
        try:
            return super().invoke(ctx)
        except UsageError as e:
            raise _usage_error(e) from None
        except (SegbenchError, KeyboardInterrupt) as e:
            message = str(e) if isinstance(e, SegbenchError) else "interrupted"
            line = Text.assemble(("error:", "red"), " ", printable(message))  # no markup
            _messages().print(line, highlight=False, soft_wrap=True)
            raise typer.Exit(exit_code(e)) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if hangup is not None:
                signal.signal(signal.SIGHUP, hangup)


def _usage_error(error: UsageError) -> BaseException:
    """Prints a usage error as one line, `error: --option: what is wrong; see … --help`, and
    returns the exit that ends with its code (2). The help that click shows when no command
    is given is passed on as it is."""
    if type(error).__name__ == "NoArgsIsHelpError":
        return error
    param = getattr(error, "param", None)
    if isinstance(error, BadParameter) and not isinstance(error, MissingParameter) and param:
        names = param.opts if param.param_type_name == "option" else [param.name.upper()]
        message = f"{'/'.join(names)}: {error.message.removeprefix('Value error, ')}"
    else:
        message = error.format_message()
    message = message[:1].lower() + message[1:].rstrip(".")
    if error.ctx is not None:
        message += f"; see {error.ctx.command_path} --help"
    line = Text.assemble(("error:", "red"), " ", printable(message))
    _messages().print(line, highlight=False, soft_wrap=True)
    return typer.Exit(error.exit_code)


def _sigterm(signum: int, frame: object) -> None:
    """SIGTERM is handled as Ctrl-C is: the partial result is kept, temporary files removed."""
    raise SigTerm()


def _sighup(signum: int, frame: object) -> None:
    """SIGHUP (a closed terminal or SSH session) is handled as Ctrl-C is."""
    raise SigHup()


app = typer.Typer(
    cls=_Commands,
    help="Reproducible training-speed benchmark of the CV-net segmentation model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: option names whole, wrapped at 80 columns
)


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
    from segbench.benchmark import triangles

    target = out if out is not None else triangles.default_data_dir()
    if out is None and (target / triangles.TRAIN_CSV).is_file():
        # The cache holds it already (a run checks its digest before using it).
        stdout.print(f"the triangles data set is already in {target}", highlight=False)
        return
    try:
        triangles.generate(target)
    except FileExistsError as e:
        raise BadInput(f"--out: {e}") from None
    except OSError as e:
        raise Unavailable(f"--out {target}: cannot write ({e.strerror or e})") from None
    stdout.print(f"wrote {triangles.COUNT} image/mask pairs to {target}")


@app.command("doctor")
def doctor_command(
    expect: Annotated[
        Expect | None,
        typer.Option(help="gpu: a missing GPU is a FAIL; cpu: a visible GPU is a FAIL."),
    ] = None,
    preset: Annotated[Preset, typer.Option(help="Preset whose memory need is checked.")] = "quick",
    device: Annotated[DeviceChoice, typer.Option(help="Device the run will use.")] = "auto",
    precision: Annotated[Precision, typer.Option(help="Precision the run will use.")] = "float32",
    xla: Annotated[
        bool,
        typer.Option(
            "--compile/--no-compile", "--xla/--no-xla", help="Whether the run will compile steps."
        ),
    ] = False,
    backend: Annotated[
        Backend, typer.Option(envvar="KERAS_BACKEND", help="Keras backend.")
    ] = "tensorflow",
    out: Annotated[
        Path, typer.Option(envvar="SEGBENCH_OUT", help="Results folder whose free disk is checked.")
    ] = Path("results"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    strategy: StrategyOption = "none",
    gpus: GpusOption = None,
    cpu_replicas: CpuReplicasOption = None,
) -> None:
    """Check the environment and say exactly what to fix (exit 1 when a check FAILs).
    With --strategy multiworker, also TF_CONFIG, this task's port and the other workers."""
    from segbench.measure import backend as backends

    backends.select_backend(_value(backend), import_now=False)  # doctor probes it first
    from dataclasses import asdict

    from segbench import doctor, package_data
    from segbench.benchmark import triangles
    from segbench.report.tables import doctor_table

    package_data.verify()  # a damaged install: one line saying to reinstall, not a table

    workload = PRESETS[_value(preset)]
    context = doctor.Context(
        preset=workload.preset,
        width=workload.width,
        batch_size=workload.batch_size,
        epochs=workload.epochs,
        device=_value(device),
        precision=_value(precision),
        xla=xla,
        expect=_value(expect) if expect else None,
        folders=(str(triangles.default_data_dir()), str(out)),
        strategy=_value(strategy),
        gpus=gpus,
        replicas=cpu_replicas or 1,  # each a copy of the model in host memory
    )
    with stderr.status("checking the environment"):
        checks = doctor.run_checks(doctor.gather(context), context)
    if as_json:
        sys.stdout.write(json.dumps({"checks": [asdict(c) for c in checks]}, indent=2) + "\n")
    else:
        stdout.print(doctor_table(checks))
    failures = doctor.failed(checks)
    if failures:
        stderr.print(
            f"[red]{len(failures)} check(s) failed:[/red] {', '.join(c.id for c in failures)}",
            highlight=False,
        )
        raise typer.Exit(exit_code(Unavailable()))


def _value(choice: Any) -> str:
    """The string of an Enum choice (typer passes Enum members; defaults are plain strings)."""
    return choice.value if isinstance(choice, Enum) else choice


class _ConsoleDisplay:
    """The pipeline's Display on stderr: spinners, notes and a live progress bar at a terminal;
    in logs and pipes, plain lines: the plan and each phase as it starts (with the seconds
    since the start), progress at least every 30 s."""

    def __init__(self, plan: str = "") -> None:
        self.plan = plan  # printed in pipes with the first phase: not for runs refused before

    def status(self, text: str) -> AbstractContextManager[object]:
        if stderr.is_terminal:
            return stderr.status(text)
        if self.plan:
            _phase_line(self.plan)
            self.plan = ""
        _phase_line(text)
        return nullcontext()

    def note(self, text: str) -> None:
        stderr.print(printable(text), markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def progress(
        self, config: Any, train_images: int, validation_images: int
    ) -> Iterator[Callable[[Any], None]]:
        from segbench.measure.progress import Tracker

        tracker = Tracker(config, train_images, validation_images)
        if not stderr.is_terminal:
            with _ProgressLines(tracker) as lines:
                yield lines
            return
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"),
            TextColumn("{task.fields[left]}"),
            console=stderr,
            transient=True,
        )
        with bar:
            yield _ProgressView(bar, tracker)

    def failed_checks(self, checks: list) -> None:
        from segbench.report.tables import doctor_table

        stderr.print(doctor_table(checks, title="failed environment checks"))


class _ProgressView:
    """Runner events as a live progress bar: phase, n/N, elapsed, the last step, time left."""

    def __init__(self, progress: Progress, tracker: Any) -> None:
        self.progress = progress
        self.tracker = tracker
        self.task: Any = None

    def __call__(self, event: Any) -> None:
        self.tracker.see(event)
        if event.kind == "phase":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(
                self.tracker.label(), total=event.total, last="", left=""
            )
            return
        last = {}
        if event.step is not None:
            s = event.step
            last = {"last": f"{s.ms:,.1f} ms  loss {s.loss:.4f}  IoU {s.iou:.3f}"}
        self.progress.update(self.task, completed=event.completed, left=self.tracker.left(), **last)


# Logs and pipes: a progress line at least this often (seconds; SEGBENCH_PROGRESS_EVERY).
PROGRESS_EVERY_S = 30.0


class _ProgressLines:
    """Runner events as plain lines for logs and pipes: one as each phase starts, one after a
    step or cool-down second when PROGRESS_EVERY_S (or SEGBENCH_PROGRESS_EVERY) seconds have
    passed since the last line, and after a phase's last step; while one long step runs, one
    at least every PROGRESS_EVERY_S."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.every = float(os.environ.get("SEGBENCH_PROGRESS_EVERY") or PROGRESS_EVERY_S)
        self.last_line = time.monotonic()
        self.since = time.monotonic()  # when the current step started
        self.done = threading.Event()
        self.beat = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> _ProgressLines:
        self.beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.beat.join(timeout=2)

    def _print(self, text: str) -> None:
        stderr.print(text, markup=False, highlight=False, soft_wrap=True)
        self.last_line = time.monotonic()

    def __call__(self, event: Any) -> None:
        self.tracker.see(event)
        self.since = time.monotonic()
        if event.kind == "phase":
            unit = "s" if event.phase == "cool-down" else " step(s)"
            self._print(f"{self.tracker.label()}: {event.total}{unit}")
        elif event.completed == event.total or time.monotonic() - self.last_line >= self.every:
            self._print(self.tracker.line())

    def _heartbeat(self) -> None:
        while not self.done.wait(1.0):
            if time.monotonic() - self.last_line >= PROGRESS_EVERY_S:
                running = time.monotonic() - self.since
                self._print(f"{self.tracker.line()} · this step running for {running:.0f} s")


@app.command()
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
    from segbench.measure import pipeline

    if model is not None and width is not None:
        raise BadInput("--width is CV-net's: a --model sets its own size (use --model-arg)")
    config = PRESETS[_value(preset)].with_overrides(
        batch_size=batch_size,
        steps=steps,
        warmup=warmup,
        epochs=epochs,
        width=width,
        precision=_value(precision) if precision else None,
        xla=compile_step,
        batchnorm=_value(batchnorm) if batchnorm else None,
        model=model,
        model_args=list(model_arg) if model_arg else None,
        device=_value(device) if device else None,
        backend=_value(backend),
        keras=int(_value(keras)),
        seed=seed,
        deterministic=deterministic,
        repeats=repeats,
        cooldown=cooldown,
        strategy=None if _value(strategy) == "none" else _value(strategy),
        gpus=gpus,
        cpu_replicas=cpu_replicas,
        global_batch=global_batch,
        sync_batchnorm=sync_batchnorm or None,
        scaling=scaling or None,
    )
    instruments = pipeline.Instruments(
        telemetry=telemetry, peak=peak, numerics=check_numerics, profile=profile
    )
    from segbench.measure.progress import plan_line

    # The first line within a second: what will run (a run refused later says why in its last
    # line, "error: …"). In pipes with the first phase, after the checks of what was asked.
    plan = plan_line(pipeline.validated(config))
    if stderr.is_terminal:
        stderr.print(plan, markup=False, highlight=False)
    display = _ConsoleDisplay("" if stderr.is_terminal else plan)
    outcome = pipeline.run(config, data_dir, out, force, display, instruments)

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
        _print_path(report_console, "result written to", outcome.path)
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
    from segbench.measure.pipeline import warning_lines
    from segbench.report.tables import run_report
    from segbench.results.compare import against_references, run_caveats

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


@app.command("show")
def show_command(
    result_file: Annotated[Path, typer.Argument(metavar="RESULT", help="A result file.")],
) -> None:
    """Print a result file's tables again, as its run printed them (the statistics recomputed
    from its steps, as compare does; a stored summary that disagrees is named)."""
    from segbench.results.result import load_result, recompute

    found = recompute(load_result(result_file))
    _show_result(found.result, stdout)
    if found.disagreeing:
        stderr.print(
            f"warning: {printable(str(result_file))}: the summary in the file disagrees with its "
            f"steps ({', '.join(found.disagreeing)}): shown here as recomputed from the steps",
            style="yellow",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def _print_path(console: Console, label: str, path: Path) -> None:
    """`label PATH` on a terminal; in logs and pipes the path on a line of its own, unwrapped."""
    shown = printable(str(path))
    if console.is_terminal:
        console.print(f"{label} {shown}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"{label}:", highlight=False)
        console.print(shown, markup=False, highlight=False, soft_wrap=True)


@app.command("launch", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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
    from segbench.measure.launch import is_run, launch

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
            given[name] = _value(value)
    return given


@app.command("compare")
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
        typer.Option(metavar="PNG", help="Also write a PNG bar chart (needs the plot extra)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Compare even when width, image or batch size differ.")
    ] = False,
    fail_if_slower: Annotated[
        float | None,
        typer.Option(
            metavar="PCT",
            help="Exit 3 when a result is significantly slower than the baseline by more "
            "than PCT %, or has too few steps for the test to decide (a regression gate for "
            "CI pipelines).",
        ),
    ] = None,
) -> None:
    """Put result files (FILE: segbench run --out …) from different machines side by side,
    with speedups, their 95 % confidence intervals and whether each difference is
    significant."""
    from segbench.report.tables import compare_csv, compare_json, compare_markdown, compare_table
    from segbench.results.compare import compare, regressions
    from segbench.results.result import load_result

    if plot is not None:
        from segbench.report.plot import writable_target

        writable_target(plot, "--plot", files)  # before anything is read or written
        _need_matplotlib("--plot")
    if fail_if_slower is not None and not (math.isfinite(fail_if_slower) and fail_if_slower >= 0):
        raise BadInput(f"--fail-if-slower must be a percentage of 0 or more, got {fail_if_slower}")
    results = [load_result(path) for path in files]  # all read before anything is printed
    comparison = compare(
        results,
        baseline=baseline,
        references=references,
        force=force,
        sources=[str(path) for path in files],
    )
    gate = None if fail_if_slower is None else regressions(comparison, fail_if_slower)
    output = _value(output)
    if output == "table":
        stdout.print(compare_table(comparison, wide))
        for row in comparison.rows:
            stdout.print(
                printable(f"  {row.label}: {row.conditions}"),
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
    if plot is not None:
        from segbench.report.plot import plot_comparison

        try:
            written = plot_comparison(comparison, plot)
        except OSError as e:
            raise Unavailable(
                f"--plot {plot}: cannot write the chart ({e.strerror or e}); "
                "choose a PNG file in a writable folder"
            ) from None
        _print_path(stderr, "plot written to", written)
    if gate:
        raise Regression("; ".join(gate))
    if gate is not None:
        base = printable(str(comparison.rows[comparison.baseline].source))
        _messages().print(
            f"ok: no result is significantly slower than {base} by more than {fail_if_slower:g} %",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


@app.command("tune")
def tune_command(
    preset: PresetOption = "quick",
    budget: Annotated[
        float,
        typer.Option(
            min=0.5, max=24 * 60, help="Minutes to spend; no trial starts that would overrun it."
        ),
    ] = 20.0,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Timed steps of each trial (default: 4 smoke, else 10)."),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(min=0, help="Warm-up steps of each trial (default: 1).")
    ] = None,
    device: DeviceOption = None,
    backends: Annotated[
        list[Backend] | None,
        typer.Option(
            "--backend",
            metavar="[tensorflow|jax|torch]",
            help="Search only this backend (repeatable; default: all).",
        ),
    ] = None,
    precisions: Annotated[
        list[Precision] | None,
        typer.Option(
            "--precision",
            metavar="[float32|mixed_float16|mixed_bfloat16]",
            help="Search only this precision (repeatable; default: all).",
        ),
    ] = None,
    out: OutOption = Path("results"),
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="PNG of images/s against J/image (or ms/step); default: beside the result file.",
        ),
    ] = None,
) -> None:
    """Search the settings that change speed (backend, precision, compiled step, batch-norm
    kernel, batch size) with short runs, rank them, and print the fastest's command line.
    The fastest trial's result, with every trial in its `tune` block, is written to --out."""
    from segbench.measure import pipeline
    from segbench.report.plot import writable_target

    pipeline.check_out_name(out)
    if plot is not None:
        if plot.suffix.lower() != ".png":
            raise BadInput(f"--plot {plot}: a chart is a PNG; choose a .png name")
        writable_target(plot, "--plot")
        if not plot.parent.is_dir():
            raise BadInput(f"--plot {plot}: no folder {plot.parent}; create it or choose another")
    created = pipeline._missing(out)
    try:
        pipeline.check_writable(out)
        _tune(preset, budget, steps, warmup, device, backends, precisions, out, plot)
    except BaseException:
        pipeline._remove_if_empty(out, created)  # nothing written: no folder left behind
        raise


def _tune(preset, budget, steps, warmup, device, backends, precisions, out, plot) -> None:
    """segbench tune, once its options are checked."""
    import tempfile
    from dataclasses import replace

    import psutil

    from segbench.atomic import write_text_new
    from segbench.measure import tune
    from segbench.report.tune import tune_points, tune_table, verdict_lines
    from segbench.results.result import result_stem, to_json_text

    name = _value(preset)
    extra = tune.trial_steps(name, steps, warmup)
    if device is not None:
        extra += ["--device", _value(device)]

    def notify(event, index, total, setting, trial):
        if event == "start":
            left = f"{max(session.left_s(), 0) / 60:.1f} min of the budget left"
            _note(f"trial {index + 1}/{total}: {setting.label} ({left})")
        elif trial.images_per_s is not None:
            _note(f"  {trial.images_per_s:.3g} images/s, numerics {trial.numerics}")
        else:
            _note(f"  {trial.status}: {trial.reason}")

    with tempfile.TemporaryDirectory(prefix="segbench-tune-") as work:
        session = tune.Session(name, budget * 60, extra, Path(work), notify)
        planned = tune.plan(
            PRESETS[name],
            tune.installed_backends(),
            [_value(b) for b in backends or []],
            [_value(p) for p in precisions or []],
        )
        info = session.run(planned, psutil.virtual_memory().available)
        stdout.print(tune_table(info))
        for line in verdict_lines(info):
            stdout.print(line, markup=False, highlight=False, soft_wrap=True)
        _tune_profiles(info, session)
        if info.fastest is None:
            if info.stopped_by not in (None, "budget"):
                raise stopped(info.stopped_by)(
                    "interrupted before a trial finished: nothing written"
                )
            raise Unavailable("segbench tune: no trial ran to the end; nothing written")
        winner, _ = session.results[info.fastest]
        document = replace(winner, tune=info)
        stem = "segbench-tune-" + result_stem(document).removeprefix("segbench-")
        written = write_text_new(out, stem, ".json", to_json_text(document))
    _print_path(stdout, "result written to", written)
    _tune_chart(info, plot or written.with_suffix(".png"), tune_points(info))
    if info.stopped_by not in (None, "budget"):
        raise stopped(info.stopped_by)(f"interrupted: what was tried is in {written}")


_STARTED = time.monotonic()


def _phase_line(text: str) -> None:
    """A phase as a plain line for logs and pipes: `[  12.3 s] importing tensorflow`."""
    elapsed = time.monotonic() - _STARTED
    stderr.print(f"[{elapsed:6.1f} s] {printable(text)}", markup=False, highlight=False)


def _tune_profiles(info, session) -> None:
    """Where the step time goes for the default setting and the winner (--profile)."""
    from segbench.measure.tune import setting_of
    from segbench.report.tables import profile_table

    shown = [info.default] if info.fastest in (None, info.default) else [info.default, info.fastest]
    for index in shown:
        result = session.results.get(index, (None, None))[0]
        if result is None or result.profile is None:
            continue
        label = setting_of(session.trials[index]).label
        stdout.print(f"#{index + 1} {label}:", markup=False, highlight=False)
        stdout.print(profile_table(result))


def _note(line: str) -> None:
    stderr.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def _tune_chart(info, target: Path, points) -> None:
    """Draw tune's chart where matplotlib is installed; say how to get it where not."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _note("no chart: matplotlib is not installed (uv sync --extra plot)")
        return
    from segbench.report.plot import plot_tune

    try:
        written = plot_tune(points, target, f"segbench tune — {info.preset} preset")
    except OSError as e:
        raise Unavailable(f"--plot {target}: cannot write the chart ({e.strerror or e})") from None
    _print_path(stdout, "chart written to", written)


@app.command("plot")
def plot_command(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="A result file (segbench run --out …).")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="PNG to write. Default: beside FILE, -trace.png."),
    ] = None,
) -> None:
    """Draw a run's trace: the timed steps over the run with their median and its 95 % CI, the
    excluded compile and warm-up steps beside them, and power, clock and temperature where the
    telemetry has them — throttling shows at a glance."""
    from segbench.results.result import load_result

    _need_matplotlib("segbench plot")
    target = output if output is not None else file.with_name(f"{file.stem}-trace.png")
    from segbench.report.plot import writable_target

    writable_target(target, "--output", [file])
    result = load_result(file)  # read before anything is written
    from segbench.report.plot import plot_trace

    try:
        written = plot_trace(result, target)
    except OSError as e:
        raise Unavailable(
            f"--output {target}: cannot write the picture ({e.strerror or e}); "
            "choose a PNG file in a writable folder"
        ) from None
    _print_path(stdout, "trace written to", written)


def _need_matplotlib(what: str) -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise Unavailable(
            f"{what} needs matplotlib: uv sync --extra plot (or pip install matplotlib)"
        ) from None


def _usable_streams() -> None:
    """Make output unable to fail: a closed descriptor 0, 1 or 2 (`2>&-`) is opened on
    /dev/null (else the next file opened takes its number and receives what is written to
    it: the frameworks' log lines in a result file), and a symbol the console cannot encode
    (PYTHONIOENCODING=ascii, latin-1, cp1252) is written in ASCII instead of raising."""
    global _stderr_closed
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            _stderr_closed = _stderr_closed or fd == 2
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:  # Python's own for a descriptor closed at start
            setattr(sys, name, open(fd, "w", errors=ASCII_FALLBACK, closefd=False))  # noqa: SIM115
        elif hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ASCII_FALLBACK)


def entry() -> None:
    """Console-script entry point."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    _usable_streams()
    app(prog_name="segbench")  # `python -m segbench` too: usage and errors name `segbench`
