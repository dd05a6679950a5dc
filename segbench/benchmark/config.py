"""Benchmark configuration: the presets and the values a run is made with."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from segbench.measure.backend import BACKENDS
from segbench.measure.generation import GENERATIONS
from segbench.measure.parallel.distribution import STRATEGIES
from segbench.results.schema import OPTIONAL

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
# keras: Keras 3's BatchNormalization; fused: the framework's fused kernel (batchnorm.py).
BATCHNORMS = ("keras", "fused")
# Where the channel axis of images and activations is: last (NHWC, Keras's default) or first
# (NCHW, the layout torch's and cuDNN's convolutions take without a transpose).
DATA_FORMATS = ("channels_last", "channels_first")
MAX_SEED = 2**32 - 1  # the range every backend's random generators accept
MIN_WIDTH = 0.001  # narrower has channels of width 0
MAX_WIDTH = 4.0  # 16 × the published model's parameters; wider is no longer this benchmark
MAX_COOLDOWN = 24 * 3600.0
DEVICES = ("auto", "cpu", "gpu")
# --cpu-replicas: each logical CPU device holds a whole copy of the model and its optimizer,
# and all share the same cores; 2 shows the mechanism, more than this shows nothing more.
MAX_CPU_REPLICAS = 32

# benchmark §3: SGD, Nesterov momentum 0.95; learning rate 0.25 × (1 − e/E)^0.9 for epoch e of E.
BASE_LEARNING_RATE = 0.25
MOMENTUM = 0.95


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides what a benchmark run measures."""

    preset: str
    width: float
    batch_size: int
    warmup: int  # steps after the first (compile) step, excluded from the statistics
    steps: int  # timed steps; ignored when epochs > 0
    epochs: int  # > 0: the published protocol (epochs over the training set, with validation)
    repeats: int
    cooldown: float  # seconds between repeats
    precision: str = "float32"
    xla: bool = False
    device: str = "auto"
    backend: str = field(default="tensorflow", metadata={"enum": BACKENDS})
    seed: int = 42
    deterministic: bool = False
    image_size: int = 512
    # 2: tf-keras, the article's generation; 3: Keras 3. Absent (None) in files made before
    # --keras existed, which all used Keras 3.
    keras: int | None = field(default=None, metadata=OPTIONAL)
    # Data parallelism (distribution.py); all absent for one device, as in files made before.
    strategy: str | None = field(default=None, metadata=OPTIONAL)  # mirrored | multiworker
    gpus: int | None = field(default=None, metadata=OPTIONAL)  # --gpus N: the first N GPUs
    cpu_replicas: int | None = field(default=None, metadata=OPTIONAL)  # logical CPU devices
    global_batch: int | None = field(default=None, metadata=OPTIONAL)  # strong scaling
    sync_batchnorm: bool | None = field(default=None, metadata=OPTIONAL)
    scaling: bool | None = field(default=None, metadata=OPTIONAL)  # measure one replica first
    # --batchnorm; absent (None) in files made before it, which all used Keras's layer.
    batchnorm: str | None = field(default=None, metadata={**OPTIONAL, "enum": BATCHNORMS})
    # --data-format; absent (None) in files made before it, which all ran channels_last.
    data_format: str | None = field(default=None, metadata={**OPTIONAL, "enum": DATA_FORMATS})
    # --model SPEC and its --model-arg key=value items, as given; absent for CV-net.
    model: str | None = field(default=None, metadata=OPTIONAL)
    model_args: list[str] | None = field(default=None, metadata=OPTIONAL)

    @property
    def keras_generation(self) -> int:
        """The Keras generation the run uses (2 or 3)."""
        return self.keras or 3

    @property
    def layout(self) -> str:
        """The data format the run uses: channels_last (the default) or channels_first."""
        return self.data_format or "channels_last"

    @property
    def distributed(self) -> bool:
        """Whether the run is data-parallel (--strategy mirrored or multiworker)."""
        return self.strategy not in (None, "none")

    def with_overrides(self, **values: Any) -> RunConfig:
        """A copy with every value that is not None replaced."""
        return replace(self, **{k: v for k, v in values.items() if v is not None})

    def validate(self) -> None:
        """Raise ValueError naming the option whose value cannot work."""
        checks = [*self._size_checks(), *self._model_checks(), *self._framework_checks()]
        checks += self._distribution_checks()
        _raise_first(checks)

    def _size_checks(self) -> list[tuple[bool, str]]:
        """The model width, the seed, and the counts and times of the steps."""
        return [
            (math.isfinite(self.width), f"--width: {self.width} is not a finite number"),
            (
                MIN_WIDTH <= self.width <= MAX_WIDTH,
                f"--width must be {MIN_WIDTH:g} to {MAX_WIDTH:g} (1 is the published model)",
            ),
            (0 <= self.seed <= MAX_SEED, f"--seed must be between 0 and {MAX_SEED}"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.warmup >= 0, "--warmup must be 0 or more"),
            (self.epochs >= 0, "--epochs must be 0 or more"),
            (self.epochs > 0 or self.steps >= 1, "--steps must be at least 1 (or use --epochs)"),
            (self.repeats >= 1, "--repeats must be at least 1"),
            (math.isfinite(self.cooldown), f"--cooldown: {self.cooldown} is not a finite number"),
            (
                0 <= self.cooldown <= MAX_COOLDOWN,
                f"--cooldown must be 0 to {MAX_COOLDOWN:.0f} seconds",
            ),
        ]

    def _model_checks(self) -> list[tuple[bool, str]]:
        """The model that is trained: its precision, batch norm, and a user's --model."""
        return [
            (self.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
            (
                self.batchnorm in (None, *BATCHNORMS),
                f"--batchnorm must be one of {', '.join(BATCHNORMS)}",
            ),
            (
                self.model is None or self.keras_generation == 3,
                "--model is for Keras 3 models: drop --keras 2",
            ),
            (
                self.model is None or not self.distributed,
                "--model runs on one device: drop --strategy (data parallelism is for CV-net)",
            ),
            (
                self.model is not None or not self.model_args,
                "--model-arg needs --model",
            ),
            (
                self.data_format in (None, *DATA_FORMATS),
                f"--data-format must be one of {', '.join(DATA_FORMATS)}",
            ),
            (
                not (self.model is not None and self.layout != "channels_last"),
                "--data-format is for CV-net: a --model keeps its own layout",
            ),
            (
                not (self.model is not None and self.batchnorm == "fused"),
                "--batchnorm fused is for CV-net: a --model keeps its own layers",
            ),
            (
                not (self.batchnorm == "fused" and self.keras_generation == 2),
                "--batchnorm fused is for Keras 3: Keras 2's BatchNormalization is fused already",
            ),
        ]

    def _framework_checks(self) -> list[tuple[bool, str]]:
        """The device, the Keras generation and the backend it runs on."""
        return [
            (self.device in DEVICES, f"--device must be one of {', '.join(DEVICES)}"),
            (self.keras_generation in GENERATIONS, "--keras must be 2 or 3"),
            (
                self.keras_generation == 3 or self.backend == "tensorflow",
                f"--keras 2 runs on the tensorflow backend only (got --backend {self.backend})",
            ),
        ]

    def _distribution_checks(self) -> list[tuple[bool, str]]:
        """The data-parallel options; ValueError at once for an unknown --strategy."""
        if self.strategy not in (None, *STRATEGIES):
            raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}")
        alone = "only with --strategy mirrored or multiworker"
        return [
            (not self.gpus or self.gpus >= 1, "--gpus must be at least 1"),
            (not self.cpu_replicas or self.cpu_replicas >= 1, "--cpu-replicas must be at least 1"),
            (not self.global_batch or self.global_batch >= 1, "--global-batch must be at least 1"),
            (
                self.distributed
                or not (
                    self.gpus
                    or self.cpu_replicas
                    or self.global_batch
                    or self.scaling
                    or self.sync_batchnorm
                ),
                "--gpus, --cpu-replicas, --global-batch, --scaling and --sync-batchnorm work "
                + alone,
            ),
            (
                not self.distributed or self.backend != "torch",
                f"--strategy {self.strategy}: the torch backend has no tf.distribute or Keras "
                "distribution support; use --backend tensorflow or jax",
            ),
            (
                not self.distributed or self.keras_generation == 3,
                "--strategy runs with Keras 3 (--keras 3)",
            ),
            (
                not self.distributed or self.epochs == 0,
                "--strategy times steps; the epoch protocol (--epochs, the article preset) runs "
                "on one device: use --preset quick or --epochs 0",
            ),
            (
                not (self.gpus and self.cpu_replicas),
                "--gpus and --cpu-replicas exclude each other: replicas are GPUs or CPU parts",
            ),
            (
                not (self.cpu_replicas and self.device == "gpu"),
                "--cpu-replicas splits the CPU: it cannot run with --device gpu",
            ),
            (
                not (self.gpus and self.device == "cpu"),
                "--gpus needs --device gpu or auto",
            ),
            (
                not (self.sync_batchnorm and self.backend == "jax"),
                "--sync-batchnorm is for the tensorflow backend; on jax BatchNormalization "
                "already sees the global batch",
            ),
        ]

    def validate_new_run(self) -> None:
        """validate(), and the limits of a run made now (a result file made before them still
        loads): ValueError naming the option."""
        self.validate()
        checks = [
            (
                not self.cpu_replicas or self.cpu_replicas <= MAX_CPU_REPLICAS,
                f"--cpu-replicas must be 1 to {MAX_CPU_REPLICAS}: each logical CPU device holds a "
                "copy of the model and all share the same cores (2 tests the mechanism)",
            ),
            (
                not (self.cpu_replicas and self.strategy == "multiworker"),
                "--cpu-replicas is for --strategy mirrored: a multi-worker job runs one replica "
                "per worker on the CPU (for more replicas, start more workers)",
            ),
            (
                not (self.xla and self.distributed and self.backend == "tensorflow"),
                f"--compile (--xla) with --strategy {self.strategy}: TensorFlow cannot "
                "XLA-compile a step replicated by tf.distribute (it fails at the first step, "
                "keras-team/keras#19005);"
                " drop --compile, or use --strategy mirrored on --backend jax (always compiled)",
            ),
        ]
        _raise_first(checks)


def _raise_first(checks: list[tuple[bool, str]]) -> None:
    """Raise ValueError with the message of the first check that is not ok."""
    for ok, message in checks:
        if not ok:
            raise ValueError(message)


PRESETS: dict[str, RunConfig] = {
    # Narrow model, small batch, a few steps: seconds on a laptop CPU. The tests use it.
    "smoke": RunConfig(
        preset="smoke",
        width=1 / 16,
        batch_size=2,
        warmup=1,
        steps=4,
        epochs=0,
        repeats=1,
        cooldown=0,
    ),
    # The published model and batch; short warm-up, enough timed steps for a stable median.
    "quick": RunConfig(
        preset="quick",
        width=1.0,
        batch_size=16,
        warmup=2,
        steps=20,
        epochs=0,
        repeats=1,
        cooldown=0,
    ),
    # The published protocol (benchmark §4): 2 epochs with validation, 5 repeats, 5 min cool-down.
    "article": RunConfig(
        preset="article",
        width=1.0,
        batch_size=16,
        warmup=0,
        steps=0,
        epochs=2,
        repeats=5,
        cooldown=300,
    ),
}


# The model and batch the published figures were measured with (benchmark §1, §3).
PUBLISHED_SETUP = "width 1, batch 16"


def is_published_setup(config: RunConfig) -> bool:
    """Whether a run measured the published model at the published batch size."""
    return config.model is None and config.width == 1 and config.batch_size == 16


def learning_rate(epoch: int, epochs: int) -> float:
    """Learning rate of epoch `epoch` (0-based) of `epochs` (benchmark §3); base rate if none."""
    if epochs <= 0:
        return BASE_LEARNING_RATE
    return BASE_LEARNING_RATE * (1 - epoch / epochs) ** 0.9
