"""The timed part of a run: the benchmark's steps under the progress display and the telemetry
sampler, with --scaling's one replica timed alone first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from segbench.benchmark import triangles
from segbench.benchmark.config import RunConfig
from segbench.errors import Unavailable, stopped
from segbench.measure import backend, telemetry
from segbench.measure.parallel.strategies import Replication
from segbench.measure.run.deferred_signals import DeferredSignals
from segbench.measure.run.display import Display
from segbench.measure.run.runner import Event, Measurement, run_benchmark
from segbench.results.stats import summarize


def timed_run(
    config: RunConfig,
    device: backend.Device,
    train: triangles.Split,
    validation: triangles.Split | None,
    replication: Replication | None,
    profile_steps: int,
    display: Display,
    sampler: telemetry.Sampler,
    deferred: DeferredSignals,
    journal: Any = None,
) -> tuple[Measurement, float | None]:
    """The timed steps under the progress display and the telemetry sampler (--scaling: one
    replica alone first); and that replica's images/s. `deferred` is entered as soon as the
    steps end: from there on a signal cannot undo the saving. Unavailable when the device ran
    out of memory."""
    one_replica = None
    validation_images = len(validation) if validation is not None else 0
    with display.progress(config, len(train), validation_images) as notify, sampler:
        try:
            if config.scaling and replication is not None:
                one_replica = _one_replica(
                    config, device, train, notify, display, replication.replicas
                )
            measurement = run_benchmark(
                config,
                device,
                train,
                validation,
                notify,
                replication,
                profile_steps,
                journal,
            )
            deferred.__enter__()  # from here on a signal cannot undo the saving
        except Exception as e:
            if not _out_of_memory(e):
                raise
            raise Unavailable(
                f"out of memory at width {config.width:g}, batch {config.batch_size} "
                f"on the {device.kind.upper()}: lower --batch-size or --width"
            ) from None
    return measurement, one_replica


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


def _out_of_memory(error: Exception) -> bool:
    """TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError, JAX's RESOURCE_EXHAUSTED."""
    name = type(error).__name__
    return (
        name in ("ResourceExhaustedError", "OutOfMemoryError")
        or "RESOURCE_EXHAUSTED" in str(error)[:200]
    )
