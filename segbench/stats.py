"""Statistics of a measurement: the summary block of a result. Computes; never prints."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

import numpy as np

from segbench.runner import COMPILE, TIMED, TRAIN, WARMUP, Measurement, StepRecord
from segbench.schema import NON_NEGATIVE, OPTIONAL, OPTIONAL_POSITIVE

IMAGES_PER_EXTRAPOLATION = 100_000


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Per-step statistics of the timed steps and the throughput derived from their median."""

    steps: int = field(metadata=NON_NEGATIVE)  # timed steps the statistics are made of
    median_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    mean_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    stdev_ms: float | None = field(default=None, metadata={"non_negative": True, **OPTIONAL})
    p10_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    p90_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    min_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    max_ms: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    ms_per_image: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)  # median ÷ batch
    images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    seconds_per_100k_images: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    tflops: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)  # achieved, from median
    compile_ms: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    warmup_ms: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    # The epoch protocol only: wall time of each training and validation pass.
    epoch_train_s: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    epoch_validation_s: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    epoch_ms_per_image_median: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # Several repeats only: the median step of each.
    repeat_median_ms: list[float] | None = field(default=None, metadata=OPTIONAL_POSITIVE)

    def validate(self) -> None:
        """ValueError when a statistic is missing although steps were timed."""
        if not self.steps:
            return
        for name in TIMED_FIELDS:
            if getattr(self, name) is None:
                raise ValueError(f"{name} is missing with {self.steps} timed steps")

    @property
    def spread(self) -> float:
        """(p90 − p10) / median: how much the step times spread, as a share of the median."""
        if not self.steps:
            return 0.0
        return (self.p90_ms - self.p10_ms) / self.median_ms


TIMED_FIELDS = (
    "median_ms",
    "mean_ms",
    "stdev_ms",
    "p10_ms",
    "p90_ms",
    "min_ms",
    "max_ms",
    "ms_per_image",
    "images_per_s",
    "seconds_per_100k_images",
    "tflops",
)


def summarize_ms(ms: list[float], batch_size: int, training_flops_per_image: float) -> Summary:
    """Statistics of per-step wall times (ms) and the throughput figures derived from the median."""
    if not ms:
        return Summary(steps=0)
    arr = np.asarray(ms, dtype=float)
    median = float(np.median(arr))
    ms_per_image = median / batch_size
    return Summary(
        steps=len(ms),
        median_ms=median,
        mean_ms=float(arr.mean()),
        stdev_ms=statistics.stdev(ms) if len(ms) > 1 else 0.0,
        p10_ms=float(np.percentile(arr, 10)),
        p90_ms=float(np.percentile(arr, 90)),
        min_ms=float(arr.min()),
        max_ms=float(arr.max()),
        ms_per_image=ms_per_image,
        images_per_s=1000.0 / ms_per_image,
        seconds_per_100k_images=ms_per_image * IMAGES_PER_EXTRAPOLATION / 1000.0,
        tflops=training_flops_per_image * batch_size / (median / 1000.0) / 1e12,
    )


def timed_steps(measurement: Measurement) -> list[StepRecord]:
    """The steps the statistics are made of: timed steps, or full training batches in epochs."""
    batch = measurement.config.batch_size
    wanted = TRAIN if measurement.config.epochs > 0 else TIMED
    return [s for s in measurement.steps if s.phase == wanted and s.images == batch]


def summarize(measurement: Measurement) -> Summary:
    """The summary block of a result file."""
    config = measurement.config
    timed = timed_steps(measurement)
    summary = summarize_ms(
        [s.ms for s in timed], config.batch_size, measurement.training_flops_per_image
    )
    extra: dict = {
        "compile_ms": [s.ms for s in measurement.steps if s.phase == COMPILE],
        "warmup_ms": [s.ms for s in measurement.steps if s.phase == WARMUP],
    }
    if measurement.epochs:
        per_image = [e.train_s * 1000 / e.train_images for e in measurement.epochs]
        extra["epoch_train_s"] = [e.train_s for e in measurement.epochs]
        extra["epoch_validation_s"] = [e.validation_s for e in measurement.epochs]
        extra["epoch_ms_per_image_median"] = float(np.median(per_image))
    repeats = sorted({s.repeat for s in timed})
    if len(repeats) > 1:
        extra["repeat_median_ms"] = [
            float(np.median([s.ms for s in timed if s.repeat == r])) for r in repeats
        ]
    return replace(summary, **extra)
