"""The choices and options of the command line, each derived from its one definition."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from segbench.benchmark.config import (
    BATCHNORMS,
    DATA_FORMATS,
    DEVICES,
    MAX_CPU_REPLICAS,
    PRECISIONS,
    PRESETS,
)
from segbench.measure.backend import BACKENDS
from segbench.measure.generation import GENERATIONS
from segbench.measure.parallel.distribution import STRATEGIES


def folder_path(value: str | Path) -> Path:
    """A folder option's value as a Path; an empty one (`--out ""`, which Path reads as the
    current folder) is refused: it is a missing value, not a choice of folder."""
    if not str(value).strip():
        raise typer.BadParameter('empty; name a folder ("." for this one)')
    return Path(value)


def file_path(value: str | Path) -> Path:
    """A file option's value as a Path; an empty one is refused (a missing value)."""
    if not str(value).strip():
        raise typer.BadParameter("empty; name a file")
    return Path(value)


def _choices(name: str, values: tuple[str, ...] | list[str]) -> type[Enum]:
    """A str Enum of `values` for typer, so the CLI choices come from their one definition."""
    return Enum(name, {v: v for v in values}, type=str)  # type: ignore[return-value]


def choice_value(choice: Any) -> str:
    """The string of an Enum choice (typer passes Enum members; defaults are plain strings)."""
    return choice.value if isinstance(choice, Enum) else choice


Preset = _choices("Preset", list(PRESETS))
Precision = _choices("Precision", PRECISIONS)
DeviceChoice = _choices("DeviceChoice", DEVICES)
Backend = _choices("Backend", BACKENDS)
KerasGeneration = _choices("KerasGeneration", [str(g) for g in GENERATIONS])
Expect = _choices("Expect", ("gpu", "cpu"))
Format = _choices("Format", ("table", "markdown", "csv", "json"))
Strategy = _choices("Strategy", STRATEGIES)
BatchnormKind = _choices("BatchnormKind", BATCHNORMS)
DataFormat = _choices("DataFormat", DATA_FORMATS)


# The options of `segbench run`, one alias each, so the run command reads as its pipeline.
PresetOption = Annotated[
    Preset,
    typer.Option(
        help="smoke: seconds on a CPU; quick: the published model, "
        "short; article: the published protocol."
    ),
]
BatchSizeOption = Annotated[
    int | None, typer.Option(min=1, help="Images per step (default: preset).")
]
StepsOption = Annotated[int | None, typer.Option(min=1, help="Timed steps (default: preset).")]
WarmupOption = Annotated[
    int | None,
    typer.Option(
        min=0, help="Warm-up steps after the first (compile) step, excluded (default: preset)."
    ),
]
EpochsOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        help="Epochs of the published protocol instead of timed steps; 0: steps (default: preset).",
    ),
]
WidthOption = Annotated[
    float | None,
    typer.Option(
        min=0.001, help="Channel-width multiplier; 1 is the published model (default: preset)."
    ),
]
PrecisionOption = Annotated[Precision | None, typer.Option(help="Keras dtype policy.")]
CompileOption = Annotated[
    bool | None,
    typer.Option(
        "--compile/--no-compile",
        "--xla/--no-xla",
        help="Compile the training step: XLA on tensorflow, torch.compile on torch (jax is always "
        "jit-compiled). The result records what Keras really did (default: no).",
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="SPEC",
        help="Benchmark your own Keras 3 model: package.module:function or path/file.py:function "
        "returning it (uncompiled, or with its loss and optimizer); resnet50 for the built-in "
        "ResNet-50 (default: CV-net).",
    ),
]
ModelArgOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model-arg",
        metavar="KEY=VALUE",
        help="A keyword argument of the --model function (repeatable; Python literals).",
    ),
]
BatchnormOption = Annotated[
    BatchnormKind | None,
    typer.Option(
        help="BatchNormalization: keras (Keras 3's layer, what a Keras user runs) or fused (the "
        "framework's fused kernel, same semantics; tensorflow and torch) (default: keras)."
    ),
]
DataFormatOption = Annotated[
    DataFormat | None,
    typer.Option(
        help="Where images and activations keep their channels: channels_last (NHWC, Keras's "
        "default) or channels_first (NCHW, what torch's and cuDNN's convolutions take without "
        "a transpose); CV-net only (default: channels_last)."
    ),
]
DeviceOption = Annotated[
    DeviceChoice | None, typer.Option(help="auto: the GPU when one is visible, else the CPU.")
]
BackendOption = Annotated[Backend, typer.Option(envvar="KERAS_BACKEND", help="Keras backend.")]
KerasOption = Annotated[
    KerasGeneration,
    typer.Option(
        "--keras",
        help="Keras generation: 3 (Keras 3), or 2 (tf-keras, the article's; tensorflow backend).",
    ),
]
SeedOption = Annotated[
    int | None, typer.Option(help="Seed of weights, dropout and data order (default 42).")
]
DeterministicOption = Annotated[
    bool | None,
    typer.Option(
        "--deterministic/--no-deterministic", help="Ask the backend for deterministic kernels."
    ),
]
RepeatsOption = Annotated[
    int | None, typer.Option(min=1, help="Whole-run repetitions (default: preset).")
]
CooldownOption = Annotated[
    float | None,
    typer.Option(min=0, help="Seconds of pause between repeats (default: preset)."),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        parser=folder_path,
        metavar="<path>",
        help="Data folder with train.csv and validation.csv. Default: the triangles, "
        "generated once into the cache.",
    ),
]


OutOption = Annotated[
    Path,
    typer.Option(
        envvar="SEGBENCH_OUT",
        parser=folder_path,
        metavar="<path>",
        help="Folder for the result JSON.",
    ),
]


AsJsonOption = Annotated[
    bool, typer.Option("--json", help="Print the result JSON on stdout (tables go to stderr).")
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Run even when an environment check FAILs (marked).")
]
TelemetryOption = Annotated[
    bool,
    typer.Option(
        "--telemetry/--no-telemetry",
        help="Sample energy, power, clocks, temperature and throttling (NVML, RAPL, "
        "powermetrics) about 10 times a second while steps are timed.",
    ),
]
PeakOption = Annotated[
    bool,
    typer.Option(
        "--peak/--no-peak",
        help="After the run, measure the device's matmul ceiling (a few seconds) and report "
        "the run's compute as a share of it and of the vendor's peak.",
    ),
]
ProfileOption = Annotated[
    bool,
    typer.Option(
        "--profile",
        help="After the timed steps, run 3 more under the framework's profiler and show the "
        "share of step time by layer kind (not timed; tensorflow and torch).",
    ),
]
CheckNumericsOption = Annotated[
    bool,
    typer.Option(
        "--check-numerics/--no-check-numerics",
        help="Before timing, train a narrow model a few steps on the run's device and compare "
        "its losses with the shipped CPU float32 reference (seconds).",
    ),
]

# Data parallelism (README: "More than one GPU or machine").
StrategyOption = Annotated[
    Strategy,
    typer.Option(
        help="none: one device. mirrored: every visible GPU of this machine (tf.distribute."
        "MirroredStrategy; jax: keras.distribution.DataParallel). multiworker: the machines "
        "of TF_CONFIG (MultiWorkerMirroredStrategy).",
    ),
]
GpusOption = Annotated[
    int | None, typer.Option(min=1, help="Replicas on the first N GPUs (default: every GPU).")
]
CpuReplicasOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help=f"Split the CPU into N logical devices (at most {MAX_CPU_REPLICAS}), one replica "
        "each, with --strategy mirrored: tests the mechanism on a machine without GPUs (not a "
        "speed figure).",
    ),
]
GlobalBatchOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Fix the global batch (strong scaling), split over the replicas. Default: "
        "--batch-size per replica (weak scaling).",
    ),
]
SyncBatchnormOption = Annotated[
    bool,
    typer.Option(
        "--sync-batchnorm",
        help="BatchNormalization uses the statistics of the global batch (all-reduced every "
        "layer) instead of each replica's own (tensorflow backend).",
    ),
]
ScalingOption = Annotated[
    bool,
    typer.Option(
        "--scaling",
        help="Time one replica first and report the scaling efficiency: N-replica images/s "
        "÷ (N × one-replica images/s).",
    ),
]
