"""The run pipeline: checks → data → timed run → result → file. Returns data; never prints.

What the user sees while it works (status lines, the progress bar, the failed checks) goes
through a `Display` that the command line supplies.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from segbench import doctor, package_data
from segbench.benchmark import triangles
from segbench.benchmark.config import RunConfig
from segbench.doctor import diagnose
from segbench.doctor.types import Check, Facts
from segbench.errors import (
    BadInput,
    SegbenchError,
    Unavailable,
    signal_name,
    stopped,
)
from segbench.measure import backend, distribution, numerics, peak, telemetry
from segbench.measure.runner import Event, Measurement, run_benchmark
from segbench.measure.telemetry import DEFAULT_INTERVAL_S
from segbench.results import environment
from segbench.results.result import (
    DataInfo,
    Memory,
    OwnModelInfo,
    Result,
    build_result,
    write_result,
)
from segbench.results.stats import summarize, timed_steps

# --profile: steps run under the framework's profiler after the timed steps (not timed).
PROFILED_STEPS = 3
# A user's model (--model) trains on synthetic samples: an epoch is this many batches.
OWN_STEPS_PER_EPOCH = 8


class Display(Protocol):
    """How the pipeline shows progress; the command line implements it."""

    def status(self, text: str) -> AbstractContextManager[object]:
        """A spinner with `text` while a block runs."""

    def note(self, text: str) -> None:
        """One line of news."""

    def progress(
        self, config: RunConfig, train_images: int, validation_images: int
    ) -> AbstractContextManager[Callable[[Event], None]]:
        """A live progress display; yields the function that receives runner events."""

    def failed_checks(self, checks: list[Check]) -> None:
        """Show the environment checks that failed, before the run is refused."""


@dataclass(frozen=True)
class Instruments:
    """What is measured beside the step times (`--no-telemetry`, `--no-peak` turn them off)."""

    telemetry: bool = True
    peak: bool = True
    numerics: bool = True  # the numerics check before timing (--no-check-numerics skips it)
    profile: bool = False  # a few more steps under the framework's profiler (--profile)
    interval_s: float = DEFAULT_INTERVAL_S


@dataclass(frozen=True)
class RunOutcome:
    """The result, where its file was written, and why not to `--out` when it was not."""

    result: Result
    path: Path | None
    write_error: str | None = None
    worker: bool = False  # a multi-worker task other than the chief: it writes no file


class ChecksFailed(Unavailable):
    """An environment check FAILed and --force was not given."""


class FrameworkFailed(Unavailable):
    """The framework failed (a CUDA library, the device): the one line says the likely cause."""


RESULT_NAME_BYTES = 64  # the longest name a result (or its temporary file) gets in --out


def check_out_name(out: Path) -> None:
    """BadInput, before anything is created, when `out` is longer than its file system
    allows: a folder name over NAME_MAX bytes, or with a result's name a path over PATH_MAX."""
    path = Path(os.path.abspath(out))
    existing = next((p for p in (path, *path.parents) if _is_dir(p)), Path(path.anchor))
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    for part in path.parts[1:]:
        size = len(os.fsencode(part))
        if size > name_max:
            raise BadInput(
                f"--out: the folder name {part[:24]!r}… is {size} bytes, and this file system "
                f"allows {name_max} (NAME_MAX); choose a shorter --out"
            )
    size = len(os.fsencode(str(path))) + 1 + RESULT_NAME_BYTES
    if size > path_max:
        raise BadInput(
            f"--out: with a result's name the path is {size} bytes, and this system allows "
            f"{path_max} (PATH_MAX); choose a shorter --out"
        )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, say
        return False


def _path_limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no such limit
        return default


def _missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        try:
            if path.exists():
                break
        except OSError:
            break
        missing.append(path)
    return missing


def check_writable(folder: Path) -> None:
    """Fail now, not after an hour of benchmarking, if results cannot be written to `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".segbench-write-test-"):
            pass
    except OSError as e:
        raise Unavailable(
            f"--out {folder}: not writable ({e.strerror or e}); pass a writable folder "
            '(in a container, mount one: -v "$PWD/results:/results")'
        ) from None


def validated(config: RunConfig) -> RunConfig:
    """`config`, or BadInput naming the option whose value cannot work."""
    try:
        config.validate_new_run()
    except ValueError as e:
        raise BadInput(str(e)) from None
    return config


def run(
    config: RunConfig,
    data_dir: Path | None,
    out: Path,
    force: bool,
    display: Display,
    instruments: Instruments = Instruments(),
) -> RunOutcome:
    """Check the environment, load the data, run the benchmark, write the result file.

    A failed run removes the `out` folder it created; a measurement whose file cannot be
    written to `out` is saved elsewhere (RunOutcome.write_error says why and where).
    """
    validated(config)
    if config.strategy == distribution.MULTIWORKER:
        distribution.parse_tf_config(os.environ.get("TF_CONFIG"))  # BadInput before anything
    package_data.verify()  # a damaged numerics reference, schema or table: refused before timing
    check_out_name(out)
    created = _missing(out)  # removed again if the run fails before it writes there
    try:
        check_writable(out)
        return _run(config, data_dir, out, force, display, instruments)
    except (SegbenchError, KeyboardInterrupt):
        _remove_if_empty(out, created)
        raise
    except Exception as e:
        _remove_if_empty(out, created)
        if os.environ.get("SEGBENCH_DEBUG"):
            raise
        # The framework failed before anything was timed (device set-up, the first import of
        # a CUDA library): one line with the likely cause, not its traceback.
        cause, fix = diagnose.explain(e, environment.installed_versions(), {})
        raise FrameworkFailed(
            f"{diagnose.first_line(e)} — likely cause: {cause}; fix: {fix}; nothing was timed "
            "(SEGBENCH_DEBUG=1 shows the traceback)"
        ) from None
    except BaseException:
        _remove_if_empty(out, created)
        raise


def _remove_if_empty(out: Path, created: list[Path]) -> None:
    """Remove the folders of `created` (deepest first) that are still empty."""
    for folder in created:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            return


def _run(
    config: RunConfig,
    data_dir: Path | None,
    out: Path,
    force: bool,
    display: Display,
    instruments: Instruments,
) -> RunOutcome:
    distribution.configure_before_import(config)
    backend.select_backend(config.backend, import_now=False)  # before anything imports keras
    try:
        _import_safely(config.backend, display)
    except KeyboardInterrupt as stop:
        kind = stopped(signal_name(stop))
        raise kind("interrupted before timing started; no result written") from None
    replication, survey, config = _start_replicas(config, display)
    chosen = backend.choose_device(config.device)
    # A user's model is built first: one that cannot be benchmarked is refused at once.
    built = _own_model_data(config, data_dir, display) if config.model is not None else None
    context = doctor.Context(
        preset=config.preset,
        width=config.width,
        batch_size=config.batch_size // (replication.replicas if replication else 1),
        epochs=config.epochs,
        device=config.device,  # as asked: "auto" still expects the GPU a driver announces
        precision=config.precision,
        xla=config.xla,
        folders=(str(data_dir or triangles.default_data_dir()), str(out)),
        strategy=config.strategy or distribution.NONE,
        gpus=config.gpus,
        replicas=len(replication.devices) if replication else 1,
        model=config.model,
    )
    with display.status("checking the environment"):
        facts = doctor.gather(context, survey)
    checks = doctor.run_checks(facts, context)
    failures = doctor.failed(checks)
    if failures and not force:
        display.failed_checks(failures)
        names = ", ".join(c.id for c in failures)
        raise ChecksFailed(
            f"{len(failures)} environment check(s) failed ({names}); "
            "fix them (segbench doctor shows all checks) or pass --force"
        )

    own = None
    try:
        if built is None:
            folder, train, validation = _load_data(data_dir, config.image_size, display)
        else:
            own, folder, train, validation = built
    except KeyboardInterrupt as stop:
        kind = stopped(signal_name(stop))
        raise kind("interrupted before timing started; no result written") from None
    if config.epochs > 0 and len(train) < config.batch_size:
        raise BadInput(
            f"--batch-size {config.batch_size}: larger than the {len(train)} training images, "
            "so an epoch has no full batch to time; lower --batch-size"
        )

    try:
        checked = _check_numerics(config, chosen, instruments, display, own)
    except KeyboardInterrupt as stop:
        kind = stopped(signal_name(stop))
        raise kind("interrupted before timing started; no result written") from None
    if instruments.telemetry:
        source, missing = telemetry.open_source(chosen.kind)
    else:
        source, missing = None, ["telemetry turned off (--no-telemetry)"]
    for line in warning_lines(checks):  # before timing: the person can still act on them
        display.note(line)
    sampler = telemetry.Sampler(source, instruments.interval_s)
    backend.reset_peak_memory()
    started_at = datetime.now(timezone.utc)
    one_replica = None
    deferred = _Deferred()
    validation_images = len(validation) if validation is not None else 0
    with display.progress(config, len(train), validation_images) as notify, sampler:
        try:
            if config.scaling and replication is not None:
                one_replica = _one_replica(
                    config, chosen, train, notify, display, replication.replicas
                )
            measurement = run_benchmark(
                config,
                chosen,
                train,
                validation,
                notify,
                replication,
                PROFILED_STEPS if instruments.profile else 0,
            )
            deferred.__enter__()  # from here on a signal cannot undo the saving
        except Exception as e:
            if not _out_of_memory(e):
                raise
            raise Unavailable(
                f"out of memory at width {config.width:g}, batch {config.batch_size} "
                f"on the {chosen.kind.upper()}: lower --batch-size or --width"
            ) from None
    try:
        failure = None
        if measurement.error is not None:  # kept as for Ctrl-C, with the line that says why
            cause, fix = diagnose.explain(
                measurement.error, facts.installed, environment.gpu_stack(facts.nvidia)
            )
            phase = _phase_of(measurement)
            failure = (
                f"the framework failed {phase} ({diagnose.first_line(measurement.error)}) — "
                f"likely cause: {cause}; fix: {fix}"
            )
        device_peak, device_reason = backend.device_peak_memory(chosen.kind)
        memory = Memory(
            host_peak_bytes=backend.host_peak_memory(),
            device_peak_bytes=device_peak,
            device_reason=device_reason,
        )
        timed = timed_steps(config, measurement.steps)
        measured_telemetry = telemetry.summarize(
            source.name if source is not None else None,
            sampler.readings,
            measurement.windows(timed),
            sum(s.images for s in timed),
            [*missing, *([sampler.error] if sampler.error else [])],
            instruments.interval_s,
            measurement.origin,
            *_power_state(facts),
        )

        result = build_result(
            measurement,
            environment.fingerprint([chosen.description], facts.nvidia),
            started_at,
            data=DataInfo(
                folder=str(folder),
                train_images=len(train),
                validation_images=len(validation),
                generated=data_dir is None,
                sha256=triangles.dataset_sha256(train, validation),
            ),
            git_commit=environment.git_commit(),
            doctor=checks,
            forced=bool(failures),
            telemetry=measured_telemetry,
            memory=memory,
            numerics=checked,
            failure=failure,
            own=own,
            profile=measurement.profile,
        )
        if replication is not None:
            record = replication.record(
                config.batch_size // replication.replicas,
                config.batch_size,
                "strong" if config.global_batch else "weak",
            )
            record = distribution.with_throughput(record, result.summary.images_per_s, one_replica)
            result = replace(result, distribution=record)
            if not replication.is_chief:  # the chief writes the job's one result file
                if deferred.name and result.status == "complete":
                    result = replace(result, status="interrupted", interrupted_by=deferred.name)
                return RunOutcome(result, None, worker=True)
        if result.summary.steps:
            with deferred.raising():
                found, stopped_by = _peak(result, measurement, instruments, display)
            result = replace(result, peak=found)
            deferred.name = deferred.name or stopped_by
        if deferred.name and result.status == "complete":
            # Stopped after timing (during the peak probe or the saving): what was timed is whole,
            # but the command was stopped, and its exit code says so.
            result = replace(result, status="interrupted", interrupted_by=deferred.name)
        return save(result, out)
    finally:
        deferred.__exit__(None, None, None)


class _Deferred:
    """After timing, Ctrl-C, SIGTERM and SIGHUP are noted, not raised, until the result is
    saved (a second Ctrl-C must not undo the saving the first started); `raising()` lets them
    stop the peak probe. The first one noted marks the result interrupted."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.name: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> _Deferred:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                    self.previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def _note(self, signum: int, frame: object) -> None:
        self.name = self.name or signal.Signals(signum).name
        with contextlib.suppress(OSError):
            os.write(2, b"segbench: saving what was measured first; it stops right after\n")

    @contextmanager
    def raising(self):
        """The signals raise again inside the block (the peak probe can be stopped)."""
        noting = dict(self.previous)
        for number, handler in noting.items():
            signal.signal(number, handler)
        try:
            yield
        finally:
            for number in noting:
                signal.signal(number, self._note)


def warning_lines(checks: list[Check]) -> list[str]:
    """One line per WARN of the environment checks: what was found and what to do."""
    return [
        f"warning: {c.id}: {c.found}" + (f"; {c.fix}" if c.fix else "")
        for c in checks
        if c.status == doctor.WARN
    ]


def _import_safely(name: str, display: Display) -> None:
    """Import the backend here only once a child process has imported it without dying: a
    plugin built for another TensorFlow would otherwise end the run in a traceback or a crash.
    Refuses with doctor's own line (its import check) whatever --force says."""
    from segbench.doctor.gather import installed_distributions
    from segbench.doctor.probe import modules_for, probe

    if not all(_installed(m) for m in modules_for(name)):
        return  # a missing framework: the framework checks say so
    with display.status(f"importing {', '.join(modules_for(name))} (in a child process first)"):
        probed = probe(name)
    if not probed.ok:
        from segbench.measure import settings

        check = doctor.check_import(probed, installed_distributions()[0], None, settings.survey())
        raise ChecksFailed(f"{check.found}; fix: {check.fix}")
    with display.status(f"importing {', '.join(modules_for(name))}"):
        backend.import_quietly()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _phase_of(measurement: Measurement) -> str:
    """Where a run stopped: "after 3 timed steps", "at the first step (compile)", ..."""
    timed = timed_steps(measurement.config, measurement.steps)
    if timed:
        return f"after {len(timed)} timed step(s)"
    if measurement.steps:
        return f"in the {measurement.steps[-1].phase} steps, before timing"
    return "at the first step (building and compiling the model)"


def _start_replicas(
    config: RunConfig, display: Display
) -> tuple[distribution.Replication | None, distribution.Survey | None, RunConfig]:
    """Start the replicas of a data-parallel run (before anything else runs on the backend):
    TF_CONFIG and this task's port checked first, then, multi-worker, every other worker
    waited for. Returns the config with its batch_size the global batch (images per step,
    as every summary reads it)."""
    if not config.distributed:
        return None, None, config
    survey = distribution.survey(config.strategy, os.environ.get("TF_CONFIG"), peers=False)
    if survey.problem:
        raise Unavailable(f"TF_CONFIG ({survey.found}): {survey.problem}; {survey.fix}")
    timeout = distribution.peer_timeout()
    if config.strategy == distribution.MULTIWORKER:
        peers = ", ".join(distribution.parse_tf_config(os.environ.get("TF_CONFIG")).peers)
        display.note(f"waiting for the other workers ({peers}), at most {timeout:.0f} s")
    replication = distribution.start_after_rendezvous(config, timeout)
    _, global_batch = distribution.batches(
        config.batch_size, config.global_batch, replication.replicas
    )
    device = "cpu" if config.cpu_replicas else config.device
    return replication, survey, validated(replace(config, batch_size=global_batch, device=device))


def _one_replica(
    config: RunConfig,
    device: backend.Device,
    train: triangles.Split,
    notify: Callable[[Event], None],
    display: Display,
    replicas: int,
) -> float:
    """--scaling: images/s of one replica alone, timed first with the same steps (weak
    scaling: the per-replica batch; strong: the whole global batch on one device)."""
    batch = config.global_batch or config.batch_size // replicas
    alone = replace(
        config,
        strategy=None,
        gpus=None,
        cpu_replicas=None,
        global_batch=None,
        sync_batchnorm=None,
        scaling=None,
        batch_size=batch,
        repeats=1,
        cooldown=0,
    )
    display.note(f"scaling: timing one replica first (batch {batch} on {device.description})")
    measured = run_benchmark(alone, device, train, None, notify)
    if measured.status == "interrupted":
        kind = stopped(measured.interrupted_by)
        raise kind("interrupted while timing one replica (--scaling); no result written")
    return summarize(measured).images_per_s


def _check_numerics(
    config: RunConfig,
    device: backend.Device,
    instruments: Instruments,
    display: Display,
    own: OwnModelInfo | None = None,
) -> numerics.Numerics:
    """The numerics check on the run's device, backend and precision, before timing; a user's
    model is held against its own CPU float32 reference (computed once, then cached)."""
    import keras

    if not instruments.numerics:
        return numerics.Numerics(status=numerics.SKIPPED, reason="--no-check-numerics")
    reference = None
    if own is not None:
        try:
            with display.status(f"computing the CPU float32 reference of --model {own.spec}"):
                reference, _ = numerics.own_reference(config, own.digest)
        except Unavailable as e:
            return numerics.Numerics(status=numerics.SKIPPED, reason=str(e))
    try:
        with (
            display.status("checking the device's numerics against the CPU reference"),
            keras.device(device.keras_name),
        ):
            losses = numerics.probe_losses(config)
            draws = numerics.dropout_draws(config.precision)
    except Exception as e:  # noqa: BLE001 - the run itself reports what is broken
        reason = f"the check could not run ({type(e).__name__}: {str(e)[:200]})"
        return numerics.Numerics(status=numerics.SKIPPED, reason=reason)
    reference = reference or numerics.shipped_reference()
    found = numerics.judge(losses, config.precision, reference, config.backend)
    return numerics.with_random(found, *numerics.judge_dropout(draws))


def _power_state(facts: Facts) -> tuple[str | None, bool | None, str | None]:
    """Mains or battery (with its charge), Low Power Mode and the macOS energy mode
    ("automatic" | "low power" | "high power"), as the doctor read them."""
    if facts.battery is None:
        return "mains (no battery)", facts.low_power_mode, facts.energy_mode
    if facts.battery.get("power_plugged"):
        return "mains (battery charging or full)", facts.low_power_mode, facts.energy_mode
    percent = facts.battery.get("percent", "?")
    return f"battery ({percent} %)", facts.low_power_mode, facts.energy_mode


def _peak(
    result: Result, measurement: Measurement, instruments: Instruments, display: Display
) -> tuple[peak.Peak, str | None]:
    """The run's compute against the matmul probe's (run now, after the timed steps, unless
    --no-peak or the run was interrupted) and the vendor's ceiling; and the signal that
    stopped the probe, if one did."""
    import keras

    reasons = []
    measured = None
    stopped_by = None
    if not instruments.peak:
        reasons.append("measured ceiling: skipped (--no-peak)")
    elif result.status == "interrupted":
        reasons.append("measured ceiling: skipped (the run was interrupted)")
    else:
        device = measurement.device
        try:
            with (
                display.status("measuring the device's matmul ceiling"),
                keras.device(device.keras_name),
            ):
                measured = peak.measure_matmul(device.kind, result.config.precision)
        except KeyboardInterrupt as stop:
            reasons.append("measured ceiling: interrupted")
            stopped_by = signal_name(stop)
    row, why_not = peak.vendor_peak(
        measurement.device.kind, measurement.device.description, result.environment.cpu.model
    )
    if why_not:
        reasons.append(why_not)
    return (
        peak.peak(result.summary.tflops, result.config.precision, measured, row, reasons),
        stopped_by,
    )


def _load_data(
    data_dir: Path | None, size: int, display: Display
) -> tuple[Path, triangles.Split, triangles.Split]:
    """The data folder and its splits: `--data` as given, or the cached triangles, generated
    once and regenerated when they no longer match the recipe's digest."""
    if data_dir is not None:
        try:
            with display.status(f"loading {data_dir} into memory"):
                return Path(data_dir), *triangles.load_dataset(data_dir, size)
        except triangles.DataError as e:
            raise BadInput(f"--data: {e}") from None
        except OSError as e:
            raise BadInput(f"--data {data_dir}: cannot read ({e.strerror or e})") from None
    folder = triangles.default_data_dir()
    try:
        for _ in range(2):
            if not (folder / triangles.TRAIN_CSV).is_file():
                display.note(f"generating the triangles data set into {folder} (once)")
                shutil.rmtree(folder, ignore_errors=True)
                try:
                    triangles.generate(folder)
                except OSError:
                    # Another process (a worker beside this one) put its copy there first.
                    if not (folder / triangles.TRAIN_CSV).is_file():
                        raise
            try:
                with display.status(f"loading {folder} into memory"):
                    train, validation = triangles.load_dataset(folder, size)
                if triangles.dataset_sha256(train, validation) == triangles.TRIANGLES_SHA256:
                    return folder, train, validation
                problem = "its files differ from the recipe's"
            except triangles.DataError as e:
                problem = str(e)
            display.note(f"the cached data set in {folder} is damaged ({problem}): regenerating it")
            shutil.rmtree(folder)
    except OSError as e:
        raise Unavailable(
            f"data cache {folder}: cannot write ({_why(folder, e)}); "
            "set SEGBENCH_CACHE to a writable folder"
        ) from None
    raise Unavailable(f"{folder}: the regenerated triangles differ from the recipe; please report")


def _own_model_data(
    config: RunConfig, data_dir: Path | None, display: Display
) -> tuple[OwnModelInfo, Path, triangles.Split, triangles.Split]:
    """A user's model (--model): built once to learn its shapes (ModelError, exit 2, for one
    that cannot be benchmarked), and its data: the --data folder's grayscale images and masks
    when the model takes and makes S×S×1 tensors, else fixed-seed synthetic samples of its
    shapes (a training split of OWN_STEPS_PER_EPOCH batches, a validation split of one)."""
    from segbench.benchmark import own_model
    from segbench.measure.flops import count_flops

    with display.status(f"building --model {config.model}"):
        own = own_model.own_model_of(config)
        counted = count_flops(own.model)
    if counted.forward_per_sample <= 0:
        raise BadInput(
            f"--model {config.model}: no layer whose FLOPs segbench counts (convolutions, "
            f"Dense, attention); not counted: {', '.join(counted.unknown) or 'none'}"
        )
    if data_dir is not None:
        size = own.input_shape[0]
        if not (own.input_shape == own.output_shape == (size, size, 1)):
            raise BadInput(
                f"--data with --model {config.model}: a data folder holds grayscale square "
                f"images with masks of the same size; the model takes {own.input_shape} and "
                f"makes {own.output_shape}: drop --data (synthetic samples of its shapes)"
            )
        folder, train, validation = _load_data(data_dir, size, display)
    else:
        folder = Path("synthetic")
        count = OWN_STEPS_PER_EPOCH * config.batch_size
        train = own_model.synthetic_split(own, count, config.seed)
        validation = own_model.synthetic_split(own, config.batch_size, config.seed + 1)
    info = OwnModelInfo(
        spec=config.model,
        function=own.function,
        source_sha256=own.source_sha256,
        args=list(config.model_args or []),
        digest=own.digest,
        input_shape=list(own.input_shape),
        output_shape=list(own.output_shape),
        activation=own.activation,
        loss=own.loss_name,
        loss_origin=own.loss_origin,
        optimizer=None if own.optimizer is None else type(own.optimizer).__name__,
        flops_not_counted=list(counted.unknown),
    )
    return info, folder, train, validation


def _why(folder: Path, error: OSError) -> str:
    """Why `folder` cannot be written: a file where a folder should be, or the OS's reason."""
    for parent in (folder, *folder.parents):
        if parent.exists():
            return (
                error.strerror or str(error)
                if parent.is_dir()
                else f"{parent} is a file, not a folder"
            )
    return error.strerror or str(error)


def _out_of_memory(error: Exception) -> bool:
    """TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError, JAX's RESOURCE_EXHAUSTED."""
    name = type(error).__name__
    return (
        name in ("ResourceExhaustedError", "OutOfMemoryError")
        or "RESOURCE_EXHAUSTED" in str(error)[:200]
    )


def save(result: Result, out: Path) -> RunOutcome:
    """Write the result into `out`; when that fails (disk full, the folder gone read-only), into
    the cache, then the temporary folder, and say why. Never loses the measurement: if no
    folder takes it, the outcome has no path and the caller prints the JSON."""
    try:
        return RunOutcome(result, write_result(result, out))
    except OSError as e:
        problem = f"--out {out}: cannot write the result ({e.strerror or e})"
    for fallback in (
        triangles.cache_root() / "unsaved-results",
        Path(tempfile.gettempdir()) / "segbench-unsaved-results",
    ):
        try:
            return RunOutcome(result, write_result(result, fallback), problem)
        except OSError:
            continue
    return RunOutcome(result, None, problem)
