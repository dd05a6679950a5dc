"""Where a training step's time goes: run more steps of a warmed-up model under the framework's
profiler and attribute each op's self time to the kind of layer that ran it.

TensorFlow's ops carry their Keras layer's name scope, forward and backward
("gradient_tape/model/enc1_conv/…"). torch's aten ops carry no layer name, so each leaf layer's
forward runs inside a record_function range for the profiled steps, and each backward op is
matched to the forward op that made it through the autograd sequence number. jax is not
attributed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from segbench.measure import backend
from segbench.measure.profile.layer_kinds import is_keras_3
from segbench.measure.profile.profile_tensorflow import tensorflow_profile
from segbench.measure.profile.profile_torch import torch_profile
from segbench.measure.profile.record import Profile, failed
from segbench.results.privacy import public_text


def profile_steps(
    model: Any, train_step: Callable[[Any, Any], Any], batch: tuple[Any, Any], steps: int = 3
) -> Profile:
    """Run `steps` more training steps of a compiled, warmed-up `model` under the framework's
    profiler and share their op time out by layer kind. Never raises for the profiler's sake:
    a failure is a Profile with the reason."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    name = backend.backend_name() if is_keras_3(model) else "tensorflow"
    try:
        if name == "tensorflow":
            return tensorflow_profile(model, train_step, batch, steps)
        if name == "torch":
            return torch_profile(model, train_step, batch, steps)
    except Exception as e:  # noqa: BLE001 - a profile is a finding; its failure must not end the run
        return failed(steps, f"{name} profiler", f"profiling on {name} failed: {_one_line(e)}")
    return failed(steps, f"{name}: none", f"no profiler attribution for the {name} backend")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or "(no message)"
    text = text if len(text) <= 300 else text[:297] + "..."
    return public_text(f"{type(error).__name__}: {text}")
