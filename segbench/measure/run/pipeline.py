"""The run pipeline: checks → data → timed run → result → file. Returns data; never prints.

What the user sees while it works (status lines, the progress bar, the failed checks) goes
through a `Display` (display.py) that the command line supplies.
"""

from __future__ import annotations

import os
import tempfile
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from segbench import package_data
from segbench.atomic import write_text_new
from segbench.benchmark import triangles
from segbench.benchmark.config import RunConfig
from segbench.doctor import diagnose
from segbench.doctor.types import Check, Facts, warning_lines
from segbench.errors import (
    BadInput,
    SegbenchError,
    Unavailable,
    signal_name,
    stopped,
)
from segbench.measure import backend, numerics, telemetry, trainer
from segbench.measure.parallel import distribution, peers
from segbench.measure.parallel.peers import Survey
from segbench.measure.parallel.strategies import Replication
from segbench.measure.parallel.tf_config import parse_tf_config
from segbench.measure.run import checks as run_checks
from segbench.measure.run import data as run_data
from segbench.measure.run import record as run_result
from segbench.measure.run import reuse
from segbench.measure.run.deferred_signals import DeferredSignals
from segbench.measure.run.display import Display
from segbench.measure.run.journal import Before, Journal
from segbench.measure.run.out_folder import (
    _missing,
    _remove_if_empty,
    check_free_space,
    check_out_name,
    check_writable,
    result_bytes,
)
from segbench.measure.run.runner import Measurement
from segbench.measure.run.timed import timed_run
from segbench.measure.telemetry import DEFAULT_INTERVAL_S
from segbench.results import environment
from segbench.results.result import (
    DataInfo,
    OwnModelInfo,
    Reproduces,
    Result,
    build_result,
    result_stem,
    to_json_text,
)
from segbench.results.stats import timed_steps

SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
# --profile: steps run under the framework's profiler after the timed steps (not timed).
PROFILED_STEPS = 3


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


class FrameworkFailed(Unavailable):
    """The framework failed (a CUDA library, the device): the one line says the likely cause."""


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
    reproduces: Reproduces | None = None,
) -> RunOutcome:
    """Check the environment, load the data, run the benchmark, write the result file.

    A failed run removes the `out` folder it created; a measurement whose file cannot be
    written to `out` is saved elsewhere (RunOutcome.write_error says why and where).
    """
    validated(config)
    if config.strategy == distribution.MULTIWORKER:
        parse_tf_config(os.environ.get("TF_CONFIG"))  # BadInput before anything
    package_data.verify()  # a damaged numerics reference, schema or table: refused before timing
    check_out_name(out)
    created = _missing(out)  # removed again if the run fails before it writes there
    try:
        check_writable(out)
        check_free_space(out, result_bytes(config))
        return _run(config, data_dir, out, force, display, instruments, reproduces)
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


@dataclass(frozen=True)
class _Prepared:
    """What the stages before timing hand to the timed run: the config with its global batch,
    the replicas, the device, the checks, the data and the numerics verdict."""

    config: RunConfig
    replication: Replication | None
    device: backend.Device
    facts: Facts
    checks: list[Check]
    forced: bool  # a check failed and --force ran the benchmark anyway
    own: OwnModelInfo | None
    folder: Path
    train: triangles.Split
    validation: triangles.Split
    numerics: numerics.Numerics


def _run(
    config: RunConfig,
    data_dir: Path | None,
    out: Path,
    force: bool,
    display: Display,
    instruments: Instruments,
    reproduces: Reproduces | None,
) -> RunOutcome:
    """The stages of `run` once `out` is writable: checks and data, the timed run, the result
    and its file (a multi-worker task other than the chief writes none)."""
    ready = _prepare(config, data_dir, out, force, display, instruments)
    replication = ready.replication
    framework = trainer.active()
    if instruments.telemetry:
        source, missing = framework.telemetry_source(ready.device.kind)
    else:
        source, missing = None, ["telemetry turned off (--no-telemetry)"]
    for line in warning_lines(ready.checks):  # before timing: the person can still act on them
        display.note(line)
    sampler = telemetry.Sampler(source, instruments.interval_s)
    framework.reset_peak_memory()
    before = _before(ready, datetime.now(timezone.utc), data_dir, out, reproduces)
    # The steps on disk as they are measured, for a run the OS kills (the chief's only).
    journal = Journal(before) if replication is None or replication.is_chief else None
    try:
        return _timed_and_saved(
            ready, before, journal, out, display, sampler, source, missing, instruments
        )
    finally:
        if journal is not None:
            journal.discard()  # the run ended in a way segbench saw


def _timed_and_saved(
    ready: _Prepared,
    before: Before,
    journal: Journal | None,
    out: Path,
    display: Display,
    sampler: telemetry.Sampler,
    source: telemetry.Source | None,
    missing: list[str],
    instruments: Instruments,
) -> RunOutcome:
    """The timed run, its result (with the peak probe) and its file."""
    config, replication = ready.config, ready.replication
    deferred = DeferredSignals()
    measurement, one_replica = timed_run(
        config,
        ready.device,
        ready.train,
        ready.validation,
        replication,
        PROFILED_STEPS if instruments.profile else 0,
        display,
        sampler,
        deferred,
        journal,
    )
    try:
        if measurement.status == "interrupted" and not timed_steps(config, measurement.steps):
            _nothing_timed(measurement, ready.facts)
        result = _result(
            ready, measurement, before, source, missing, sampler, instruments.interval_s
        )
        if replication is not None:
            record = run_result.distribution_record(
                replication, config, result.summary.images_per_s, one_replica
            )
            result = replace(result, distribution=record)
            if not replication.is_chief:  # the chief writes the job's one result file
                if deferred.name and result.status == "complete":
                    result = replace(result, status="interrupted", interrupted_by=deferred.name)
                return RunOutcome(result, None, worker=True)
        if result.summary.steps:
            with deferred.raising():
                found, stopped_by = run_result.matmul_peak(
                    result, measurement, instruments.peak, display
                )
            result = run_result.with_peak(result, found)
            deferred.name = deferred.name or stopped_by
        if deferred.name and result.status == "complete":
            # Stopped after timing (during the peak probe or the saving): what was timed is whole,
            # but the command was stopped, and its exit code says so.
            result = replace(result, status="interrupted", interrupted_by=deferred.name)
        return save(result, out)
    finally:
        deferred.__exit__(None, None, None)


def _prepare(
    config: RunConfig,
    data_dir: Path | None,
    out: Path,
    force: bool,
    display: Display,
    instruments: Instruments,
) -> _Prepared:
    """Everything before timing: the backend imported safely, the replicas started, a user's
    model built, the environment checked, the data loaded and the numerics checked."""
    distribution.configure_before_import(config)
    framework = trainer.active()
    framework.select_backend(config.backend)  # before anything imports keras
    with _stopped_before_timing():
        framework.import_safely(config.backend, display)
    replication, survey, config = _start_replicas(config, display)
    chosen = framework.choose_device(config.device)
    # A user's model is built first: one that cannot be benchmarked is refused at once.
    built = run_data.own_model_data(config, data_dir, display) if config.model is not None else None
    facts, checks, failures = run_checks.check_environment(
        config, data_dir, out, force, display, replication, survey
    )
    own = None
    with _stopped_before_timing():
        if built is None:
            read = run_data.images_read(config)
            folder, train, validation = reuse.once(
                "data",
                (str(data_dir), config.image_size, read),
                lambda: run_data.load_data(data_dir, config.image_size, display, read),
            )
        else:
            own, folder, train, validation = built
    _refuse_what_the_kernels_cannot_run(config, chosen, facts)
    if config.epochs > 0 and len(train) < config.batch_size:
        raise BadInput(
            f"--batch-size {config.batch_size}: larger than the {len(train)} training images, "
            "so an epoch has no full batch to time; lower --batch-size"
        )
    with _stopped_before_timing():
        checked = reuse.once(  # the same kernels checked once in a tune worker
            "numerics",
            (
                repr(numerics.probe_config(config)),
                chosen.keras_name,
                repr(own),
                instruments.numerics,
            ),
            lambda: run_checks.check_numerics(config, chosen, display, own, instruments.numerics),
        )
    return _Prepared(
        config=config,
        replication=replication,
        device=chosen,
        facts=facts,
        checks=checks,
        forced=bool(failures),
        own=own,
        folder=folder,
        train=train,
        validation=validation,
        numerics=checked,
    )


def _nothing_timed(measurement: Measurement, facts: Facts) -> typing.NoReturn:
    """Stopped or failed before the first timed step: no measurement, so no file (running.md)."""
    if measurement.interrupted_by in SIGNALS:
        kind = stopped(measurement.interrupted_by)
        raise kind("interrupted before timing started; no result written")
    line = run_result.failure_line(measurement, facts)
    raise FrameworkFailed(f"{line}; nothing was timed, so no result was written")


def _refuse_what_the_kernels_cannot_run(
    config: RunConfig, device: backend.Device, facts: Facts
) -> None:
    """Unavailable for a layout this machine's kernels do not have: TensorFlow's CPU Conv2D
    takes NCHW only through oneDNN, which TensorFlow turns on by itself only on CPUs with
    AVX-512 (or with TF_ENABLE_ONEDNN_OPTS=1)."""
    if (
        config.layout == "channels_first"
        and config.backend == "tensorflow"
        and device.kind == "cpu"
        and facts.onednn is False
    ):
        raise Unavailable(
            "--data-format channels_first: TensorFlow's CPU convolutions take only NHWC here "
            "(oneDNN is off on this CPU); set TF_ENABLE_ONEDNN_OPTS=1, or use channels_last"
        )


@contextmanager
def _stopped_before_timing() -> Iterator[None]:
    """Ctrl-C, SIGTERM or SIGHUP inside the block: the stopped error, nothing written."""
    try:
        yield
    except KeyboardInterrupt as stop:
        kind = stopped(signal_name(stop))
        raise kind("interrupted before timing started; no result written") from None


def _before(
    ready: _Prepared,
    started_at: datetime,
    data_dir: Path | None,
    out: Path,
    reproduces: Reproduces | None,
) -> Before:
    """What the result holds besides the steps, known before timing (the journal's header)."""
    return Before(
        out=out,
        started_at=started_at,
        config=ready.config,
        device=ready.device,
        environment=environment.fingerprint(
            [ready.device.description], *trainer.active().backend_facts(ready.facts.nvidia)
        ),
        data=DataInfo(
            folder=str(ready.folder),
            train_images=ready.train.pairs,
            validation_images=ready.validation.pairs,
            generated=data_dir is None,
            sha256=triangles.dataset_sha256(ready.train, ready.validation),
        ),
        git_commit=environment.git_commit(),
        source_url=environment.source_url(),
        command=environment.command_line(),
        doctor=ready.checks,
        forced=ready.forced,
        numerics=ready.numerics,
        own=ready.own,
        reproduces=reproduces,
    )


def _result(
    ready: _Prepared,
    measurement: Measurement,
    before: Before,
    source: telemetry.Source | None,
    missing: list[str],
    sampler: telemetry.Sampler,
    interval_s: float,
) -> Result:
    """The Result of `measurement`: the timed steps with what was known `before` them (the
    environment, the data, the checks, the numerics verdict), the telemetry (`missing`: what
    its `source` cannot measure), the memory peaks and, when the framework failed, why."""
    failure = run_result.failure_line(measurement, ready.facts)
    memory = run_result.memory(ready.device.kind)
    measured_telemetry = run_result.telemetry_summary(
        measurement, source, missing, sampler, interval_s, ready.facts
    )
    return build_result(
        measurement,
        before.environment,
        before.started_at,
        data=before.data,
        git_commit=before.git_commit,
        source_url=before.source_url,
        command=before.command,
        reproduces=before.reproduces,
        doctor=before.doctor,
        forced=before.forced,
        telemetry=measured_telemetry,
        memory=memory,
        numerics=before.numerics,
        failure=failure,
        own=before.own,
        profile=measurement.profile,
    )


def _start_replicas(
    config: RunConfig, display: Display
) -> tuple[Replication | None, Survey | None, RunConfig]:
    """Start the replicas of a data-parallel run (before anything else runs on the backend):
    TF_CONFIG and this task's port checked first, then, multi-worker, every other worker
    waited for. Returns the config with its batch_size the global batch (images per step,
    as every summary reads it)."""
    if not config.distributed:
        return None, None, config
    survey = peers.survey(config.strategy, os.environ.get("TF_CONFIG"), peers=False)
    if survey.problem:
        raise Unavailable(f"TF_CONFIG ({survey.found}): {survey.problem}; {survey.fix}")
    timeout = peers.peer_timeout()
    if config.strategy == distribution.MULTIWORKER:
        others = ", ".join(parse_tf_config(os.environ.get("TF_CONFIG")).peers)
        display.note(f"waiting for the other workers ({others}), at most {timeout:.0f} s")
    replication = trainer.active().start_replicas(config, timeout)
    _, global_batch = distribution.batches(
        config.batch_size, config.global_batch, replication.replicas
    )
    device = "cpu" if config.cpu_replicas else config.device
    return replication, survey, validated(replace(config, batch_size=global_batch, device=device))


def save(result: Result, out: Path) -> RunOutcome:
    """Write the result into `out`; when that fails (disk full, the folder gone read-only), into
    the cache, then the temporary folder, and say why. Never loses the measurement: if no
    folder takes it, the outcome has no path and the caller prints the JSON."""
    path, problem = save_text(out, result_stem(result), to_json_text(result))
    return RunOutcome(result, path, problem)


def unsaved_folders() -> tuple[Path, ...]:
    """Where a measurement goes when --out cannot take it: the cache, then the temporary folder."""
    return (
        triangles.cache_root() / "unsaved-results",
        Path(tempfile.gettempdir()) / "segbench-unsaved-results",
    )


def save_text(out: Path, stem: str, text: str) -> tuple[Path | None, str | None]:
    """Write `text` as a new `stem`.json in `out`, else in the first of unsaved_folders() that
    takes it: (where, why not in `out`); (None, why) when no folder takes it."""
    try:
        return write_text_new(out, stem, ".json", text), None
    except OSError as e:
        problem = f"--out {out}: cannot write the result ({e.strerror or e})"
    for fallback in unsaved_folders():
        try:
            return write_text_new(fallback, stem, ".json", text), problem
        except OSError:
            continue
    return None, problem
