"""The seam between a run and the deep-learning framework: everything the pipeline and the
timed loop ask of Keras and its backend, in one place.

`active()` is the Keras trainer, or, when SEGBENCH_FAKE_TRAINER names a script, the fake one
(fake_trainer.py), which "trains" with the step times and losses it is given and imports no
framework: everything above the framework (the pipeline, the command line, signals, result
files, tune, launch) is tested with it in milliseconds (docs/development.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from segbench.measure import backend

FAKE_ENV = "SEGBENCH_FAKE_TRAINER"


class KerasTrainer:
    """The real framework: Keras 3 (or tf-keras) on the backend chosen by --backend."""

    fake = False

    def select_backend(self, name: str) -> None:
        backend.select_backend(name, import_now=False)

    def import_safely(self, name: str, display: Any) -> None:
        from segbench.measure.run.checks import import_safely

        import_safely(name, display)

    def choose_device(self, requested: str) -> backend.Device:
        return backend.choose_device(requested)

    def numerics_losses(self, config: Any, device: backend.Device) -> tuple[list[float], list]:
        """The numerics probe's losses and the dropout draws on `device` (numerics.py)."""
        import keras

        from segbench.measure import numerics

        with keras.device(device.keras_name):
            return numerics.probe_losses(config), numerics.dropout_draws(config.precision)

    def telemetry_source(self, kind: str) -> tuple[Any, list[str]]:
        from segbench.measure import telemetry

        return telemetry.open_source(kind)

    def reset_peak_memory(self) -> None:
        backend.reset_peak_memory()

    def device_peak_memory(self, kind: str) -> tuple[int | None, str | None]:
        return backend.device_peak_memory(kind)

    def measure_matmul(self, device: backend.Device, precision: str) -> tuple[float, str]:
        import keras

        from segbench.measure import peak

        with keras.device(device.keras_name):
            return peak.measure_matmul(device.kind, precision)

    def backend_facts(self, nvidia: dict[str, str] | None) -> tuple[str, dict[str, str]]:
        """Keras's backend name and the GPU stack it was built with (environment.gpu_stack)."""
        import keras

        from segbench.results import environment

        return keras.backend.backend(), environment.gpu_stack(nvidia)

    def start_replicas(self, config: Any, timeout: float) -> Any:
        """The replicas of a data-parallel run, started (strategies.start_after_rendezvous)."""
        from segbench.measure.parallel import strategies

        return strategies.start_after_rendezvous(config, timeout)

    # The timed loop (runner.py).
    def begin(self, config: Any) -> None:
        """The run's precision policy and seeds, before its first model."""
        from segbench.measure import generation

        keras_generation = generation.load(config.keras_generation)
        keras_generation.keras.mixed_precision.set_global_policy(config.precision)
        backend.configure_determinism(config.seed, config.deterministic)

    def placement(self, device: backend.Device) -> AbstractContextManager:
        import keras

        return keras.device(device.keras_name)

    def reset(self, config: Any) -> None:
        """A fresh framework state before each repeat: no graph or variable of the last one."""
        from segbench.measure import generation

        generation.load(config.keras_generation).keras.backend.clear_session()
        backend.configure_determinism(config.seed, config.deterministic)

    def to_device(self, array: Any) -> Any:
        return backend.to_device(array)

    def synchronize(self) -> None:
        backend.synchronize()

    def clock_ns(self) -> int:
        return time.perf_counter_ns()

    def compile(self, config: Any, lr: float) -> tuple[Any, Callable, Callable]:
        """A freshly compiled model and its (train, test) step functions."""
        from segbench.measure import generation
        from segbench.measure.run.compilation import compile_model

        model = compile_model(config, lr)
        train, test = generation.load(config.keras_generation).step_functions(model, config.xla)
        return model, train, test

    def describe(self, config: Any, model: Any) -> dict[str, Any]:
        """Parameters, what compiled the step, the batch norm kernel and training FLOPs/image."""
        from segbench.benchmark.cvnet import architecture_forward_flops
        from segbench.measure.run.compilation import effective_batchnorm, effective_compile

        compiled, note = effective_compile(config, model)
        if config.model is None:
            forward = architecture_forward_flops(config.width, config.image_size)
        else:
            from segbench.measure.flops import count_flops

            forward = count_flops(model).forward_per_sample
        return {
            "parameters": model.count_params(),
            "compiled": compiled,
            "compile_note": note,
            "batchnorm": effective_batchnorm(config),
            # Training: forward, plus backward for inputs and weights (3 × forward).
            "training_flops_per_image": 3.0 * forward,
        }

    def profile(self, config: Any, model: Any, train_step: Callable, batch: Any, steps: int) -> Any:
        """The profile of `steps` more steps, each kind with its FLOPs and TFLOP/s."""
        from segbench.benchmark.cvnet import architecture_forward_flops_by_class
        from segbench.measure.profile import layer_kinds
        from segbench.measure.profile.profiler import profile_steps
        from segbench.measure.profile.record import with_flops

        found = profile_steps(model, train_step, batch, steps)
        if not found.kinds:
            return found
        if config.model is None:  # the count the run's training FLOPs come from
            by_class = architecture_forward_flops_by_class(config.width, config.image_size)
            forward = layer_kinds.flops_by_kind(by_class)
        else:
            forward = layer_kinds.forward_flops_by_kind(model)
        return with_flops(found, forward, config.batch_size)


def active() -> Any:
    """The trainer of this process: the fake one when SEGBENCH_FAKE_TRAINER is set."""
    script = os.environ.get(FAKE_ENV)
    if script:
        from segbench.measure.fake_trainer import FakeTrainer

        return FakeTrainer.from_env(script)
    return KerasTrainer()
