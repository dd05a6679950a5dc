"""The timed training loop. It measures and returns data; it never prints.

Timing rules: every batch is a device tensor before the clock starts; each step is timed
from the call to the end of a device synchronisation, so asynchronous dispatch cannot
hide work; the first step of each batch shape (graph tracing and compilation) and the
warm-up steps are recorded apart from the timed ones.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segbench.benchmark.config import RunConfig, learning_rate
from segbench.benchmark.triangles import Split
from segbench.errors import signal_name
from segbench.measure import backend, trainer
from segbench.measure.parallel.strategies import Replication
from segbench.measure.run import reuse
from segbench.measure.run.compilation import compile_model
from segbench.results.schema import NAN_OK, NON_NEGATIVE, OPTIONAL, POSITIVE

# Step phases. "compile" is the first step of each batch shape in a repeat.
COMPILE, WARMUP, TIMED, TRAIN, VALIDATION = "compile", "warmup", "timed", "train", "validation"
# No training step takes a day, compile steps included; a longer one in a file is no measurement
# (and step times near 1e308 would overflow every sum the statistics take).
MAX_STEP_MS = 86_400_000.0
# Nor does one take under a microsecond (a synchronised step of any model); a smaller time
# would make images/s and TFLOP/s overflow.
MIN_STEP_MS = 0.001


@dataclass(frozen=True, slots=True)  # 200,000 of them in a long run's file
class StepRecord:
    repeat: int
    phase: str
    index: int  # 0-based within the repeat (and the epoch, in epoch mode)
    epoch: int | None
    training: bool  # False for validation steps
    images: int
    ms: float = field(metadata={"minimum": MIN_STEP_MS, "maximum": MAX_STEP_MS})
    loss: float = field(metadata=NAN_OK)
    iou: float = field(metadata=NAN_OK)
    dice: float = field(metadata=NAN_OK)
    # When the step started: seconds since the run's clock started (Measurement.origin), the
    # clock the telemetry readings use too. Absent in files made before schema version 3.
    at_s: float | None = field(default=None, metadata={**NON_NEGATIVE, **OPTIONAL})


@dataclass(frozen=True)
class EpochRecord:
    repeat: int
    epoch: int
    learning_rate: float = field(metadata=POSITIVE)
    train_s: float = field(metadata=POSITIVE)
    train_images: int = field(metadata=POSITIVE)
    validation_s: float = field(metadata=NON_NEGATIVE)
    validation_images: int = field(metadata=NON_NEGATIVE)
    validation_loss: float = field(metadata=NAN_OK)
    validation_iou: float = field(metadata=NAN_OK)


@dataclass(frozen=True)
class Event:
    """Progress news for whoever displays it: a phase starts, a step ends, a cool-down ticks."""

    kind: str  # "phase" | "step" | "cooldown"
    repeat: int
    phase: str = ""
    total: int = 0
    completed: int = 0
    step: StepRecord | None = None


@dataclass
class Measurement:
    """What a run measured. `status` is "interrupted" when Ctrl-C or SIGTERM stopped it."""

    config: RunConfig
    device: backend.Device
    parameters: int = 0  # filled in from the first compiled model
    training_flops_per_image: float = 0.0
    profile: Any = None  # profile.Profile of a few extra steps (--profile)
    compiled: str | None = None  # filled in from the first compiled model (effective_compile)
    compile_note: str | None = None
    batchnorm: str | None = None
    steps: list[StepRecord] = field(default_factory=list)
    epochs: list[EpochRecord] = field(default_factory=list)
    stage_s: list[float] = field(default_factory=list)
    status: str = "complete"
    # "SIGINT" (Ctrl-C), "SIGTERM", "SIGHUP" (terminal closed) or "error" (the framework)
    interrupted_by: str | None = None
    error: BaseException | None = None  # the framework's error that ended the run
    origin: float = field(default_factory=time.perf_counter)  # the run's clock: at_s = 0

    def windows(self, steps: list[StepRecord]) -> list[tuple[float, float]]:
        """(start, end) of each step on time.perf_counter()'s clock, as telemetry reads it."""
        return [
            (self.origin + s.at_s, self.origin + s.at_s + s.ms / 1000)
            for s in steps
            if s.at_s is not None
        ]


def batch_rows(start: int, batch_size: int, count: int) -> np.ndarray:
    """Row indices of a batch starting at `start`, wrapping around a split of `count` rows."""
    return (start + np.arange(batch_size)) % count


def _stage(
    split: Split, rows_list: list[np.ndarray], data_format: str, framework: Any
) -> list[tuple[object, object]]:
    """Device tensors for each batch in `data_format`, made once before any timing."""
    staged = [
        tuple(framework.to_device(a) for a in split.batch(rows, data_format)) for rows in rows_list
    ]
    framework.synchronize()
    return staged


def _timed(
    fn: Callable[[], dict],
    synchronize: Callable[[], None] = backend.synchronize,
    clock_ns: Callable[[], int] = time.perf_counter_ns,
) -> tuple[float, float, dict]:
    """When the step started (seconds on `clock_ns`'s clock), how long it took (ms), its logs."""
    start = clock_ns()
    logs = fn()
    synchronize()
    return start / 1e9, (clock_ns() - start) / 1e6, logs


class _Run:
    """One benchmark run: state shared by the step and epoch protocols."""

    def __init__(
        self,
        config: RunConfig,
        measurement: Measurement,
        notify: Callable[[Event], None],
        replication: Replication | None,
        profile_steps: int = 0,
        journal: Any = None,
    ):
        self.profile_steps = profile_steps
        self.journal = journal  # journal.Journal: the steps on disk, for a run the OS kills
        self.config = config
        self.measurement = measurement
        self.notify = notify
        self.replication = replication
        self.arrived: list[tuple[int, Callable]] = []  # see _remembered_signals
        self.framework = trainer.active()

    def compile(self, lr: float, example: tuple[np.ndarray, np.ndarray]):
        """A freshly compiled model; the first one also describes the model in the measurement.
        Data-parallel, its variables are mirrored on every replica (`example`: one replica's
        batch, which builds the metrics and optimizer state before the first step)."""
        if self.replication is None:
            model, self.train_step, self.test_step = self.framework.compile(self.config, lr)
        else:
            model, self.train_step, self.test_step = self.replication.compile(
                lambda: compile_model(self.config, lr), example
            )
        if not self.measurement.parameters:
            described = self.framework.describe(self.config, model)
            self.measurement.parameters = described["parameters"]
            self.measurement.compiled = described["compiled"]
            self.measurement.compile_note = described["compile_note"]
            self.measurement.batchnorm = described["batchnorm"]
            self.measurement.training_flops_per_image = described["training_flops_per_image"]
        return model

    def step(
        self, model, batch, repeat: int, phase: str, index: int, epoch: int | None, train: bool
    ) -> StepRecord:
        model.reset_metrics()  # logs then hold this step's values, not a running mean
        run = self.train_step if train else self.test_step
        if self.replication is None:
            x, y = batch
            images = int(x.shape[0])
            start, ms, logs = _timed(
                lambda: run(x, y), self.framework.synchronize, self.framework.clock_ns
            )
        else:
            # A step of all replicas: it ends when the last has finished and the gradients
            # are all-reduced (the reduced logs are read back after the synchronisation).
            images = self.config.batch_size  # the global batch
            start, ms, logs = _timed(
                lambda: run(batch), self.replication.synchronize, self.replication.clock_ns
            )
        record = StepRecord(
            repeat=repeat,
            phase=phase,
            index=index,
            epoch=epoch,
            training=train,
            images=images,
            ms=ms,
            loss=float(logs["loss"]),
            iou=float(logs.get("iou", math.nan)),  # a user's model may have other metrics
            dice=float(logs.get("dice", math.nan)),
            at_s=round(start - self.measurement.origin, 6),
        )
        self.measurement.steps.append(record)
        if self.journal is not None:  # after the step's timing, never inside it
            self.journal.step(self.measurement, record)
        if self.arrived:  # a signal whose KeyboardInterrupt a library caught: raised again
            signum, handler = self.arrived.pop(0)
            handler(signum, None)
        if self.replication is not None:
            self.replication.after_step()  # multi-worker: every worker stops after one step
        return record

    def steps_protocol(self, repeat: int, train: Split) -> None:
        """First step (compile), warm-up, then timed steps, cycling over the training set."""
        config = self.config
        total = 1 + config.warmup + config.steps
        size = config.batch_size  # data-parallel: the global batch, split over the replicas
        distinct = min(total, math.ceil(len(train) / size))
        with_staging = time.perf_counter()
        rows = [batch_rows(i * size, size, len(train)) for i in range(distinct)]
        if self.replication is None:
            batches = _stage(train, rows, config.layout, self.framework)
        else:  # each global batch split into per-replica slices on their devices
            batches = [self.replication.stage(*train.batch(r, config.layout)) for r in rows]
            self.replication.synchronize()
        self.measurement.stage_s.append(time.perf_counter() - with_staging)
        first = rows[0][: size // (self.replication.replicas if self.replication else 1)]
        model = self.compile(learning_rate(0, 0), train.batch(first, config.layout))
        phases = [(COMPILE, 1), (WARMUP, config.warmup), (TIMED, config.steps)]
        index = 0
        for phase, count in phases:
            if count == 0:
                continue
            self.notify(Event("phase", repeat, phase, total=count))
            for done in range(1, count + 1):
                record = self.step(
                    model, batches[index % distinct], repeat, phase, index, None, True
                )
                self.notify(Event("step", repeat, phase, total=count, completed=done, step=record))
                index += 1
                if phase == TIMED and reuse.far_too_slow(record.ms, record.images):
                    return  # a tune trial that cannot win (reuse.py): its steps so far
        if self.profile_steps and repeat == config.repeats - 1 and self.replication is None:
            from segbench.measure.profile.record import Profile

            if self.measurement.compiled == "xla":  # one XLA program: no layer names to read
                self.measurement.profile = Profile(
                    steps=self.profile_steps,
                    source="tensorflow profiler",
                    kinds=[],
                    reason="not profiled: XLA (--compile) runs the step as one program whose "
                    "ops carry no layer names; profile without --compile",
                )
                return
            self.notify(Event("phase", repeat, "profile", total=self.profile_steps))
            self.measurement.profile = self.framework.profile(
                config, model, self.train_step, batches[0], self.profile_steps
            )

    def epochs_protocol(self, repeat: int, train: Split, validation: Split) -> None:
        """benchmark §4: epochs over the whole training set, each followed by validation."""
        config = self.config
        size = config.batch_size
        started = time.perf_counter()
        train_batches = _stage(
            train,
            [np.arange(s, min(s + size, len(train))) for s in range(0, len(train), size)],
            config.layout,
            self.framework,
        )
        val_batches = _stage(
            validation,
            [np.arange(s, min(s + size, len(validation))) for s in range(0, len(validation), size)],
            config.layout,
            self.framework,
        )
        self.measurement.stage_s.append(time.perf_counter() - started)
        example = train.batch(slice(0, size), config.layout)
        model = self.compile(learning_rate(0, config.epochs), example)
        seen: set[tuple[bool, int]] = set()  # (training?, batch size): shapes already compiled
        for epoch in range(config.epochs):
            lr = learning_rate(epoch, config.epochs)
            model.optimizer.learning_rate.assign(lr)
            train_s = self._epoch_pass(model, train_batches, repeat, epoch, True, seen)
            val_s = self._epoch_pass(model, val_batches, repeat, epoch, False, seen)
            val_steps = [
                s
                for s in self.measurement.steps
                if s.repeat == repeat and s.epoch == epoch and not s.training
            ]
            images = sum(s.images for s in val_steps)
            self.measurement.epochs.append(
                EpochRecord(
                    repeat=repeat,
                    epoch=epoch,
                    learning_rate=lr,
                    train_s=train_s,
                    train_images=len(train),
                    validation_s=val_s,
                    validation_images=len(validation),
                    validation_loss=sum(s.loss * s.images for s in val_steps) / images,
                    validation_iou=sum(s.iou * s.images for s in val_steps) / images,
                )
            )

    def _epoch_pass(
        self, model, batches, repeat: int, epoch: int, train: bool, seen: set[tuple[bool, int]]
    ) -> float:
        name = TRAIN if train else VALIDATION
        self.notify(Event("phase", repeat, f"epoch {epoch + 1} {name}", total=len(batches)))
        started = self.framework.clock_ns()  # the steps' clock: the epoch holds its steps
        for i, batch in enumerate(batches):
            key = (train, int(batch[0].shape[0]))
            phase = name if key in seen else COMPILE
            seen.add(key)
            record = self.step(model, batch, repeat, phase, i, epoch, train)
            self.notify(
                Event("step", repeat, name, total=len(batches), completed=i + 1, step=record)
            )
        return (self.framework.clock_ns() - started) / 1e9


def run_benchmark(
    config: RunConfig,
    device: backend.Device,
    train: Split,
    validation: Split | None = None,
    notify: Callable[[Event], None] = lambda event: None,
    replication: Replication | None = None,
    profile_steps: int = 0,
    journal: Any = None,
) -> Measurement:
    """Run the benchmark `config.repeats` times on `device`, or data-parallel on the replicas
    of `replication`; Ctrl-C returns what was measured. `profile_steps` > 0: after the last
    repeat's timed steps, that many more under the framework's profiler
    (segbench/measure/profile). `journal` (journal.Journal) notes every step on disk."""
    config.validate()
    if config.epochs > 0 and validation is None:
        raise ValueError("the epoch protocol needs a validation split")
    framework = trainer.active()
    framework.begin(config)
    # Data-parallel, the strategy places every replica's work on its device.
    placement = framework.placement(device) if replication is None else nullcontext()
    with placement:
        measurement = Measurement(config=config, device=device, origin=framework.clock_ns() / 1e9)
        run = _Run(config, measurement, notify, replication, profile_steps, journal)
        stopping = replication.stopping() if replication is not None else nullcontext()
        try:
            with _remembered_signals() as run.arrived, stopping:
                for repeat in range(config.repeats):
                    if repeat:
                        _cool_down(config.cooldown, repeat, notify, replication)
                    framework.reset(config)
                    if config.epochs > 0:
                        run.epochs_protocol(repeat, train, validation)
                    else:
                        run.steps_protocol(repeat, train)
        except KeyboardInterrupt as stop:
            measurement.status = "interrupted"
            measurement.interrupted_by = signal_name(stop)
        except Exception as error:  # noqa: BLE001 - the framework failed: keep what was measured
            measurement.status = "interrupted"
            measurement.interrupted_by = "error"
            measurement.error = error
    return measurement


@contextmanager
def _remembered_signals():
    """While the steps run, SIGINT, SIGTERM and SIGHUP still raise as their handlers do, and
    are also remembered with their handler: a library callback can catch the exception (jax's
    garbage-collection callback drops a KeyboardInterrupt raised inside it) and the run would
    go on. The step after it raises the signal again. Yields the list the signals go to."""
    arrived: list[tuple[int, Callable]] = []
    installed: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGINT", "SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            handler = signal.getsignal(number) if number is not None else None
            if not callable(handler):  # ignored, default or not set from Python: left alone
                continue

            def remember(signum: int, frame: object, handler: Callable = handler) -> None:
                arrived.append((signum, handler))
                handler(signum, frame)
                arrived.remove((signum, handler))  # handled without an exception: forgotten

            installed[number] = signal.signal(number, remember)
    try:
        yield arrived
    finally:
        for number, handler in installed.items():
            signal.signal(number, handler)


def _cool_down(
    seconds: float,
    repeat: int,
    notify: Callable[[Event], None],
    replication: Replication | None = None,
) -> None:
    """Sleep between repeats so every repeat starts from a similar thermal state."""
    total = math.ceil(seconds)
    notify(Event("phase", repeat, "cool-down", total=total))
    end = time.monotonic() + seconds
    for done in range(1, total + 1):
        time.sleep(max(0.0, min(1.0, end - time.monotonic())))
        if replication is not None:
            replication.pause()  # multi-worker: a signal stops every worker here together
        notify(Event("cooldown", repeat, "cool-down", total=total, completed=done))
