"""segbench tune: which settings make this machine train the model fastest.

The plan, the skips, one trial's figures and the verdicts. Each trial is a `segbench run` of
the preset with one combination of the settings that change speed: the installed backends ×
precision × compiled step × batch-normalization kernel × layout × batch size (bounded by
doctor's memory estimate). Impossible combinations are skipped with the reason (XLA on the
Metal GPU, float16 without tensor cores, a backend not installed). Every trial keeps its
median with its 95 % CI and its numerics verdict; a trial whose numerics deviate from the CPU
reference can never win. How the trials are run within the budget (successive halving, one
worker process per backend): tune_session.py. Computes; never prints.
"""

from __future__ import annotations

import importlib.util
import shlex
from dataclasses import dataclass

import numpy as np

from segbench.benchmark.config import RunConfig
from segbench.measure import gpu_caps
from segbench.results.result import Result
from segbench.results.stats import difference, median_ci
from segbench.results.tune_record import (
    DEVIATES,
    FAILED,
    RAN,
    TuneInfo,
    TuneTrial,
)

BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
NCHW = "channels_first"  # --data-format: the layout torch's and cuDNN's convolutions take
INSTALL = {"jax": "uv sync --extra jax", "torch": "pip install torch"}
# The trial's step counts when the user gives none: enough steps for a median with a CI.
TRIAL_STEPS = {"smoke": 4, "quick": 10, "article": 10}
TRIAL_WARMUP = 1


@dataclass(frozen=True)
class Setting:
    """One combination of the settings tune searches."""

    backend: str = "tensorflow"
    precision: str = "float32"
    compile: bool = False
    batchnorm: str = "keras"
    batch_size: int = 16
    data_format: str = "channels_last"

    def flags(self) -> list[str]:
        """The `segbench run` options that select this setting."""
        return [
            "--backend",
            self.backend,
            "--precision",
            self.precision,
            "--compile" if self.compile else "--no-compile",
            "--batchnorm",
            self.batchnorm,
            "--batch-size",
            str(self.batch_size),
            *(["--data-format", self.data_format] if self.data_format != "channels_last" else []),
        ]

    @property
    def label(self) -> str:
        """e.g. "tensorflow · float32 · compiled · fused BN · batch 16" (and
        " · channels_first" where so)."""
        compiled = "compiled" if self.compile or self.backend == "jax" else "not compiled"
        return (
            f"{self.backend} · {self.precision} · {compiled} · {self.batchnorm} BN · "
            f"batch {self.batch_size}"
            + (f" · {self.data_format}" if self.data_format != "channels_last" else "")
        )


def setting_of(trial: TuneTrial) -> Setting:
    """The setting a trial ran."""
    return Setting(
        trial.backend,
        trial.precision,
        trial.compile,
        trial.batchnorm,
        trial.batch_size,
        trial.data_format or "channels_last",
    )


def installed_backends() -> dict[str, bool]:
    """Which Keras backends can be imported here (without importing them)."""
    return {b: importlib.util.find_spec(m) is not None for b, m in BACKEND_MODULES.items()}


def plan(
    preset: RunConfig,
    installed: dict[str, bool],
    backends: list[str] | None = None,
    precisions: list[str] | None = None,
) -> list[tuple[Setting, str | None]]:
    """Every setting tune considers, in the order it runs them (the default first), each with
    the reason it is skipped (None: to run); `backends`/`precisions` restrict the search (the
    default always runs: it is what the speedup is measured against). Device-dependent skips
    are decided once the default has run (device_skip)."""
    batch = preset.batch_size
    order = [
        Setting("tensorflow", "float32", False, "keras", batch),  # what `segbench run` runs
        Setting("tensorflow", "float32", False, "fused", batch),
        Setting("tensorflow", "float32", True, "keras", batch),
        Setting("tensorflow", "float32", True, "fused", batch),
        Setting("tensorflow", "float32", False, "fused", batch, NCHW),
        Setting("jax", "float32", True, "keras", batch),
        Setting("jax", "float32", True, "keras", batch, NCHW),
        Setting("torch", "float32", False, "keras", batch),
        Setting("torch", "float32", False, "fused", batch),
        Setting("torch", "float32", False, "fused", batch, NCHW),
        Setting("torch", "float32", True, "fused", batch),
        Setting("tensorflow", "mixed_bfloat16", True, "fused", batch),
        Setting("tensorflow", "mixed_float16", True, "fused", batch),
        Setting("jax", "mixed_bfloat16", True, "keras", batch),
        Setting("torch", "mixed_bfloat16", False, "fused", batch),
        Setting("torch", "mixed_bfloat16", False, "fused", batch, NCHW),
        Setting("torch", "mixed_float16", False, "fused", batch),
    ]
    keep = [
        s
        for s in order[1:]
        if (not backends or s.backend in backends) and (not precisions or s.precision in precisions)
    ]
    planned = []
    for setting in [order[0], *keep]:
        reason = None
        if not installed.get(setting.backend):
            reason = f"{setting.backend} is not installed ({INSTALL.get(setting.backend, '')})"
        planned.append((setting, reason))
    return planned


def device_skip(setting: Setting, default: Result | None) -> str | None:
    """Why `setting` cannot work on the device the default ran on (None: try it)."""
    if default is None:
        return None
    on_gpu = default.device.kind == "gpu"
    if setting.precision == "mixed_float16":
        if not on_gpu:
            return "float16 without tensor cores: the CPU has no fast float16 path"
        stack = default.environment.gpu_stack
        caps = gpu_caps.capabilities(default.device.description, stack.get("compute_cap", ""))
        if gpu_caps.fast_path(caps, "mixed_float16") is False:
            return f"float16 without tensor cores on {default.device.description}"
    if setting.data_format == NCHW and setting.backend == "tensorflow" and not on_gpu:
        return (
            "channels_first on TensorFlow's CPU kernels, which take NHWC: a transpose around "
            "every convolution, slower by design"
        )
    metal = on_gpu and default.environment.os.system == "Darwin"
    if metal and setting.backend == "tensorflow" and setting.compile:
        return "XLA does not run on the Metal GPU (tensorflow-metal)"
    return None


def memory_skip(setting: Setting, preset: RunConfig, available: int, on_gpu: bool) -> str | None:
    """Why a larger batch is skipped: doctor's memory estimate exceeds what is available."""
    from segbench.doctor.hardware import memory_need

    need = memory_need(preset.width, setting.batch_size, preset.epochs, on_gpu)
    if need > available:
        return (
            f"batch {setting.batch_size} needs about {need / 2**30:.1f} GiB, "
            f"{available / 2**30:.1f} GiB available"
        )
    return None


def trial_command(preset: str, setting: Setting, extra: list[str]) -> list[str]:
    """The `segbench run` arguments of a trial (extra: --steps, --warmup, --device, …)."""
    return ["run", "--preset", preset, *setting.flags(), *extra]


def run_command_line(arguments: list[str]) -> str:
    """The command a person types: `segbench run …`."""
    return shlex.join(["segbench", *arguments])


def trial_of(
    setting: Setting, status: str, command: str, reason: str | None = None, **figures
) -> TuneTrial:
    return TuneTrial(
        backend=setting.backend,
        precision=setting.precision,
        compile=setting.compile,
        batchnorm=setting.batchnorm,
        batch_size=setting.batch_size,
        data_format=setting.data_format,
        status=status,
        reason=reason,
        command=command,
        **figures,
    )


def measured_trial(setting: Setting, command: str, result: Result, wall_s: float) -> TuneTrial:
    """A trial from its result file: per-image median, its 95 % CI, energy and numerics."""
    from segbench.results.compare import ms_per_image_samples

    samples = ms_per_image_samples(result)
    if not samples or result.status != "complete":
        why = result.failure or f"{result.status}, {len(samples)} timed steps"
        return trial_of(setting, FAILED, command, why, wall_s=wall_s)
    ci = median_ci(samples)
    median = float(np.median(samples))
    numerics = result.numerics.status if result.numerics else None
    energy = result.telemetry.j_per_image if result.telemetry else None
    deviates = numerics == "deviates" or result.diverged is not None
    return trial_of(
        setting,
        DEVIATES if deviates else RAN,
        command,
        ("numerics deviate from the CPU reference" if numerics == "deviates" else None)
        or (f"the loss diverged ({result.diverged})" if result.diverged else None),
        compiled=result.model.compiled,
        wall_s=wall_s,
        ms_per_image=median,
        ci95_ms_per_image=list(ci) if ci else None,
        images_per_s=1000.0 / median,
        j_per_image=energy if energy and energy > 0 else None,
        numerics=numerics,
        samples_ms_per_image=samples,
    )


def rank(trials: list[TuneTrial]) -> list[int]:
    """Indices of the eligible trials, fastest (most images/s) first; a trial whose numerics
    deviate is never among them, however fast."""
    eligible = [i for i, t in enumerate(trials) if t.eligible]
    return sorted(eligible, key=lambda i: -trials[i].images_per_s)


def conclude(
    preset: str,
    budget_s: float,
    elapsed_s: float,
    stopped_by: str | None,
    trials,
    extra,
    default_profile=None,
) -> TuneInfo:
    """The session's verdicts: fastest, most energy-efficient, the speedup over the default
    (whose profile is kept beside the winner's own, in its result)."""
    ranked = rank(trials)
    fastest = ranked[0] if ranked else None
    with_energy = [i for i in ranked if trials[i].j_per_image]
    efficient = min(with_energy, key=lambda i: trials[i].j_per_image) if with_energy else None
    speedup = ci = None
    default = trials[0] if trials else None  # none: stopped before the first trial ended
    if fastest is not None and default and default.samples_ms_per_image and fastest != 0:
        found = difference(default.samples_ms_per_image, trials[fastest].samples_ms_per_image)
        speedup, ci = found.speedup, list(found.ci95) if found.ci95 else None
    elif fastest == 0:
        speedup, ci = 1.0, [1.0, 1.0]
    command = None
    if fastest is not None:
        command = run_command_line(
            trial_command(preset, setting_of(trials[fastest]), _kept_options(extra))
        )
    return TuneInfo(
        default_profile=default_profile,
        preset=preset,
        budget_s=budget_s,
        elapsed_s=elapsed_s,
        stopped_by=stopped_by,
        trials=trials,
        default=0,
        fastest=fastest,
        most_efficient=efficient,
        speedup=speedup,
        speedup_ci95=ci,
        command=command,
    )


def _kept_options(extra: list[str]) -> list[str]:
    """The trial options a real run keeps: the device; not tune's short step counts."""
    kept, skip = [], False
    for item in extra:
        if skip:
            skip = False
        elif item in ("--steps", "--warmup"):
            skip = True  # and its value
        else:
            kept.append(item)
    return kept


def trial_steps(preset: str, steps: int | None, warmup: int | None) -> tuple[int, int]:
    """A full trial's timed and warm-up steps: the user's, else tune's defaults."""
    return steps or TRIAL_STEPS.get(preset, 10), TRIAL_WARMUP if warmup is None else warmup
