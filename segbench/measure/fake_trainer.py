"""The fake trainer: a run that "trains" with the step times and losses it is told, and imports
no deep-learning framework (hyperfine's MockExecutor, for a training benchmark).

Selected by the environment, not the command line: SEGBENCH_FAKE_TRAINER holds a JSON script,
or the path of a file holding one. Every key is optional:

    {"step_ms": [100, 102.5],   # timed step times, ms, cycled (warm-up steps: the same)
     "compile_ms": 900,         # the first step of each repeat (compile)
     "losses": [1.0, 0.9],      # training losses, cycled (default: 1.0 × 0.97^step)
     "iou": 0.5, "dice": 0.6,
     "device": "cpu",           # or "gpu": the device the run is told it has
     "device_name": "FakeGPU 1",  # the GPU's name when "device" is "gpu"
     "parameters": 20886706,
     "sleep_s": 0,              # real seconds each step waits: time for a test's signal
     "signal": {"at": "timed", "step": 2, "name": "SIGTERM"},
     "fail": {"at": "timed", "step": 3, "error": "ResourceExhaustedError", "message": "OOM"},
     "numerics_losses": null,   # the numerics probe's losses (default: the shipped reference's)
     "matmul_tflops": 1.0,      # the measured ceiling --peak reports
     "profile_ms": {"convolution": 30, "transposed convolution": 50},  # --profile: op ms
                                #   per step by layer kind (absent: "no profiler")
     "facts": {},               # doctor's facts replaced (segbench/doctor/types.py: Facts)
     "settings": [{"match": {"batchnorm": "fused"}, "step_ms": [50]}]}

"settings" gives other values to the runs whose configuration (RunConfig's fields, as in a
result's "config") matches: how tune's trials are told apart.

"at" is one of import, numerics, compile, warmup, timed, peak; "step" counts from 1 within a
phase. Times are exact: the step's clock is the fake's, advanced by the step's time. The
pipeline, the timed loop, the statistics, the result file and everything that reads it run
as they do for a real run (docs/development.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from segbench.errors import BadInput
from segbench.measure import backend

PHASES = ("import", "numerics", "compile", "warmup", "timed", "peak")
NAME = "fake trainer"


@dataclass(frozen=True)
class Script:
    """What the fake trainer is told (the module's docstring gives each key)."""

    step_ms: list[float] = field(default_factory=lambda: [100.0])
    compile_ms: float = 900.0
    losses: list[float] | None = None
    iou: float = 0.5
    dice: float = 0.6
    device: str = "cpu"
    device_name: str = "FakeGPU 1"
    parameters: int = 20_886_706
    sleep_s: float = 0.0
    signal: dict[str, Any] | None = None
    fail: dict[str, Any] | None = None
    numerics_losses: list[float] | None = None
    matmul_tflops: float = 1.0
    profile_ms: dict[str, float] | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    settings: list[dict[str, Any]] = field(default_factory=list)

    def for_config(self, config: Any) -> Script:
        """This script with the values of every "settings" entry that matches `config`."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for entry in self.settings:
            match = entry.get("match", {})
            if all(getattr(config, k, None) == v for k, v in match.items()):
                values.update({k: v for k, v in entry.items() if k != "match"})
        return Script(**values)

    @classmethod
    def parse(cls, text: str) -> Script:
        """The script of SEGBENCH_FAKE_TRAINER: inline JSON or a file's path; BadInput if bad."""
        try:
            source = text if text.lstrip().startswith("{") else Path(text).read_text()
            values = json.loads(source)
            known = {f.name for f in fields(cls)}
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"unknown key(s) {', '.join(unknown)}")
            script = cls(**values)
        except (OSError, ValueError, TypeError) as e:
            raise BadInput(
                f"SEGBENCH_FAKE_TRAINER: {e}; see segbench/measure/fake_trainer.py"
            ) from None
        problem = script.problem()
        if problem:
            raise BadInput(
                f"SEGBENCH_FAKE_TRAINER: {problem}; see segbench/measure/fake_trainer.py"
            )
        return script

    def problem(self) -> str | None:
        """What makes this script one no real run could produce, or None."""
        for name, values in (("step_ms", self.step_ms), ("compile_ms", [self.compile_ms])):
            if not isinstance(values, list) or not values or not all(map(_step_time, values)):
                return f"{name} must be step times in ms, each 0.001 to 86400000"
        numbers = [self.iou, self.dice, *(self.losses or []), *(self.numerics_losses or [])]
        if not isinstance(self.losses or [], list) or not all(map(_number, numbers)):
            return "losses, iou, dice and numerics_losses must be numbers"
        if self.numerics_losses is not None and len(self.numerics_losses) != 4:
            return "numerics_losses must hold 4 losses (the probe's initial loss and 3 steps)"
        if self.device not in ("cpu", "gpu") or not isinstance(self.device_name, str):
            return "device must be cpu or gpu, device_name a text"
        if not (_number(self.sleep_s) and self.sleep_s >= 0):
            return "sleep_s must be 0 or more seconds"
        if not (_number(self.matmul_tflops) and self.matmul_tflops > 0):
            return "matmul_tflops must be above 0"
        if not (isinstance(self.parameters, int) and self.parameters >= 1):
            return "parameters must be a whole number of at least 1"
        if self.profile_ms is not None and not _op_times(self.profile_ms):
            return "profile_ms must give layer kinds (profile/record.py: KINDS) ms ≥ 0, one > 0"
        if not isinstance(self.facts, dict) or not isinstance(self.settings, list):
            return "facts must be an object and settings a list"
        for entry in self.settings:
            if not isinstance(entry, dict) or not isinstance(entry.get("match", {}), dict):
                return 'each settings entry must be an object with a "match" object'
            extra = set(entry) - {f.name for f in fields(Script)} - {"match"}
            if extra:
                return f"unknown key(s) in settings: {', '.join(sorted(extra))}"
            from segbench.benchmark.config import RunConfig

            unmatched = set(entry.get("match", {})) - {f.name for f in fields(RunConfig)}
            if unmatched:  # it would never match: say so instead of ignoring the entry
                return (
                    f"settings match on {', '.join(sorted(unmatched))}, not a field of a run's "
                    'configuration (a result\'s "config")'
                )
        for event in (self.signal, self.fail):
            if event is None:
                continue
            if not isinstance(event, dict) or event.get("at") not in PHASES:
                return f"signal and fail need 'at', one of {', '.join(PHASES)}"
            if not (isinstance(event.get("step", 1), int) and event.get("step", 1) >= 1):
                return "'step' counts from 1"
        if self.signal and self.signal.get("name", "SIGINT") not in ("SIGINT", "SIGTERM", "SIGHUP"):
            return "a signal's name is SIGINT, SIGTERM or SIGHUP"
        if self.fail and not isinstance(self.fail.get("error", "RuntimeError"), str):
            return "a failure's error is the name of an exception class"
        return None


class _FakeModel:
    """What the loop asks of a compiled model."""

    def __init__(self, parameters: int):
        self.parameters = parameters
        self.optimizer = type("Optimizer", (), {})()
        self.optimizer.learning_rate = type("Rate", (), {"assign": lambda self, v: None})()

    def reset_metrics(self) -> None:
        pass

    def count_params(self) -> int:
        return self.parameters


class FakeTrainer:
    """The trainer (trainer.KerasTrainer's methods) that runs the script instead of a model."""

    fake = True
    _instances: ClassVar[dict[str, FakeTrainer]] = {}

    def __init__(self, script: Script):
        self.told = script  # as given; each run's `script` is its values for the run's config
        self.script = script
        self.now_ns = time.perf_counter_ns()  # the fake clock: real at start, then the steps'
        self.calls = 0  # training steps since the last compile (0: the compile step)
        self.config: Any = None
        self.steps_done = 0

    @classmethod
    def from_env(cls, text: str) -> FakeTrainer:
        """One fake trainer per process and script (its clock and step count are the run's)."""
        if text not in cls._instances:
            cls._instances[text] = cls(Script.parse(text))
        return cls._instances[text]

    def _event(self, phase: str, step: int = 1) -> None:
        """The script's signal or failure where it is due: at `phase`, its `step`-th step."""
        for event, act in ((self.script.signal, self._signal), (self.script.fail, self._fail)):
            if event and event["at"] == phase and int(event.get("step", 1)) == step:
                act(event)

    @staticmethod
    def _signal(event: dict[str, Any]) -> None:
        os.kill(os.getpid(), getattr(signal, event.get("name", "SIGINT")))
        time.sleep(0.05)  # the handler runs here, as during a real step

    @staticmethod
    def _fail(event: dict[str, Any]) -> None:
        kind = type(event.get("error", "RuntimeError"), (RuntimeError,), {})
        raise kind(event.get("message", "the fake trainer failed as told"))

    # The pipeline.
    def select_backend(self, name: str) -> None:
        if name not in backend.BACKENDS:
            raise ValueError(f"unknown backend {name!r}; choose one of {backend.BACKENDS}")
        os.environ["KERAS_BACKEND"] = name  # what a child or a record reads

    def import_safely(self, name: str, display: Any) -> None:
        with display.status(f"importing {name} ({NAME})"):
            self._event("import")

    def choose_device(self, requested: str) -> backend.Device:
        has_gpu = self.script.device == "gpu"
        if requested == "gpu" and not has_gpu:
            raise backend.DeviceError(f"--device gpu: the {NAME} has no GPU (found only the CPU)")
        if requested == "cpu" or not has_gpu:
            return backend.Device("cpu", "cpu", f"CPU ({NAME})")
        return backend.Device("gpu", "gpu", f"{self.script.device_name} ({NAME})")

    def numerics_losses(self, config: Any, device: backend.Device) -> tuple[list[float], list]:
        from segbench.measure import numerics

        self.script = self.told.for_config(config)
        self._event("numerics")
        losses = self.script.numerics_losses or numerics.shipped_reference()["losses"]
        rng = np.random.default_rng(numerics.SEED)
        draws = []
        for rate in numerics.DROPOUT_RATES:
            masks = [rng.random(numerics.DROPOUT_SHAPE) >= rate for _ in range(2)]
            draws.append((rate, [m.astype(np.float32) / (1 - rate) for m in masks]))
        return list(losses), draws

    def telemetry_source(self, kind: str) -> tuple[Any, list[str]]:
        return None, [f"{NAME}: no telemetry"]

    def reset_peak_memory(self) -> None:
        pass

    def device_peak_memory(self, kind: str) -> tuple[int | None, str | None]:
        return None, f"{NAME}: no device memory"

    def measure_matmul(self, device: backend.Device, precision: str) -> tuple[float, str]:
        self._event("peak")
        return self.script.matmul_tflops, f"{NAME}: the ceiling it was told"

    def backend_facts(self, nvidia: dict[str, str] | None) -> tuple[str, dict[str, str]]:
        driver = (nvidia or {}).get("driver_version")
        stack = {"nvidia_driver": driver} if driver else {}
        return os.environ.get("KERAS_BACKEND", "tensorflow"), stack

    def doctor_facts(self, requested: str) -> dict[str, Any]:
        """The framework's part of doctor's facts, then the script's own."""
        on_gpu = self.script.device == "gpu" and requested != "cpu"
        return {
            "gpus": [self.script.device_name] if self.script.device == "gpu" else [],
            "computation": {"placed_on": "GPU:0" if on_gpu else "CPU:0", "correct": True},
            **self.script.facts,
        }

    # The timed loop.
    def start_replicas(self, config: Any, timeout: float) -> Any:
        """A worker of a multi-worker job (fake_workers.py); other strategies are refused."""
        from segbench.measure.fake_workers import FakeWorkers

        self.config = config
        self.script = self.told.for_config(config)
        return FakeWorkers(config, self, timeout)

    def begin(self, config: Any) -> None:
        if config.distributed and config.strategy != "multiworker":
            raise BadInput(f"--strategy {config.strategy}: the {NAME} runs multiworker only")
        self.config = config
        self.script = self.told.for_config(config)

    def placement(self, device: backend.Device) -> contextlib.nullcontext:
        return contextlib.nullcontext()

    def reset(self, config: Any) -> None:
        pass

    def to_device(self, array: Any) -> Any:
        return array

    def synchronize(self) -> None:
        pass

    def clock_ns(self) -> int:
        return self.now_ns

    def compile(self, config: Any, lr: float) -> tuple[Any, Callable, Callable]:
        self.config = config
        self.calls = 0
        return _FakeModel(self.script.parameters), self._train_step, self._test_step

    def describe(self, config: Any, model: Any) -> dict[str, Any]:
        from segbench.benchmark.cvnet import architecture_forward_flops

        return {
            "parameters": model.count_params(),
            "compiled": "xla" if config.xla else "off",
            "compile_note": None,
            "batchnorm": config.batchnorm or "keras",
            "training_flops_per_image": 3.0
            * architecture_forward_flops(config.width, config.image_size),
        }

    def profile(self, config: Any, model: Any, train_step: Callable, batch: Any, steps: int) -> Any:
        """The op times it was told, in steps of the script's first step time (ops one after
        another: what they leave of it is unattributed), with CV-net's FLOPs by kind."""
        from segbench.benchmark.cvnet import architecture_forward_flops_by_class
        from segbench.measure.profile.layer_kinds import flops_by_kind
        from segbench.measure.profile.record import Profile, failed, kind_shares, with_flops

        told = self.script.profile_ms
        if not told:
            return failed(steps, NAME, f"{NAME}: no profiler")
        step_ms = _cycled(self.script.step_ms, 0)
        found = Profile(
            steps=steps,
            source=f"{NAME}: the op times it was told",
            kinds=kind_shares({kind: ms * steps for kind, ms in told.items()}, steps),
            unattributed_share=max(0.0, 1.0 - sum(told.values()) / step_ms),
        )
        by_class = architecture_forward_flops_by_class(config.width, config.image_size)
        return with_flops(found, flops_by_kind(by_class), config.batch_size)

    def _phase(self) -> tuple[str, int]:
        """The phase of the current training step and its number within it (from 1)."""
        if self.calls == 0:
            return "compile", 1
        config = self.config
        # Epochs have no warm-up: every training step after the first counts as timed.
        warmup = config.warmup if config is not None and not config.epochs else 0
        if self.calls <= warmup:
            return "warmup", self.calls
        return "timed", self.calls - warmup

    def _train_step(self, x: Any, y: Any) -> dict[str, float]:
        phase, number = self._phase()
        if self.script.sleep_s:
            time.sleep(self.script.sleep_s)
        self._event(phase, number)
        script = self.script
        ms = script.compile_ms if phase == "compile" else _cycled(script.step_ms, number - 1)
        self.now_ns += round(ms * 1e6)
        losses = script.losses
        loss = _cycled(losses, self.steps_done) if losses else 0.97**self.steps_done
        self.calls += 1
        self.steps_done += 1
        return {"loss": loss, "iou": script.iou, "dice": script.dice}

    def _test_step(self, x: Any, y: Any) -> dict[str, float]:
        self.now_ns += round(_cycled(self.script.step_ms, 0) * 1e6 / 3)
        return {"loss": 0.5, "iou": self.script.iou, "dice": self.script.dice}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _op_times(values: Any) -> bool:
    """Op ms per step by known layer kind, none negative, some above 0."""
    from segbench.measure.profile.record import KINDS

    return (
        isinstance(values, dict)
        and set(values) <= set(KINDS)
        and all(_number(ms) and ms >= 0 for ms in values.values())
        and any(ms > 0 for ms in values.values())
    )


def _step_time(value: Any) -> bool:
    return _number(value) and 0.001 <= value <= 86_400_000


def _cycled(values: list[float], index: int) -> float:
    return float(values[index % len(values)])
