"""The model's initial weights, drawn from the seed with numpy, so that a run starts from the
same weights on every Keras backend, Keras generation and device (each backend's own random
generator draws different numbers from the same seed).

Each kernel is drawn from the distribution of its layer's initializer (He or Glorot uniform,
with Keras's fan rules); constant weights (zero biases and BN shifts, unit BN scales) are kept.
Every variable has its own generator, keyed by the seed and the variable's layer and name, so
the values do not depend on the order a Keras generation lists the weights in.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

# Which initializer attribute of a layer draws which kernel.
KERNEL_INITIALIZERS = {
    "kernel": "kernel_initializer",
    "depthwise_kernel": "depthwise_initializer",
    "pointwise_kernel": "pointwise_initializer",
}


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """Keras's fan-in and fan-out of a kernel: receptive field × input / output channels."""
    receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
    return shape[-2] * receptive, shape[-1] * receptive


def draw(initializer: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A kernel from the uniform distribution of `initializer` ("HeUniform", "GlorotUniform")."""
    fan_in, fan_out = fans(shape)
    if initializer == "HeUniform":
        limit = math.sqrt(6.0 / fan_in)
    elif initializer == "GlorotUniform":
        limit = math.sqrt(6.0 / (fan_in + fan_out))
    else:
        raise ValueError(f"no numpy rule for the {initializer} initializer")
    return rng.uniform(-limit, limit, size=shape).astype(np.float32)


def _name(variable) -> str:
    """A weight's own name without its layer path or suffix: "kernel", "gamma", …"""
    return variable.name.split("/")[-1].split(":")[0]


def seed_any_weights(model, seed: int) -> None:
    """A user's model (--model): each weight that is not constant is replaced by a numpy draw
    from `seed` with the same variance as the layer's own initializer gave it (uniform,
    ±√3·σ), keyed by its position in `model.weights` (unnamed layers are numbered per
    process, positions are not), so every backend starts from the same weights."""
    for position, variable in enumerate(model.weights):
        current = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
        if not current.size or np.all(current == current.flat[0]):
            continue  # zeros and ones: the same on every backend
        limit = math.sqrt(3.0) * float(np.std(current.astype(np.float64)))
        rng = np.random.default_rng([seed, position])
        variable.assign(rng.uniform(-limit, limit, size=current.shape).astype(current.dtype))


def seed_weights(model, seed: int) -> None:
    """Replace every kernel of `model` by numpy draws from `seed`; check the rest is constant."""
    for layer in model.layers:
        values = []
        for variable in layer.weights:
            name = _name(variable)
            current = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
            if name in KERNEL_INITIALIZERS:
                initializer = type(getattr(layer, KERNEL_INITIALIZERS[name])).__name__
                key = zlib.crc32(f"{layer.name}/{name}".encode())
                rng = np.random.default_rng([seed, key])
                values.append(draw(initializer, tuple(current.shape), rng))
            elif current.size and np.all(current == current.flat[0]):
                values.append(current)  # zeros and ones: the same on every backend
            else:
                raise ValueError(f"{layer.name}/{name}: no seeded rule for a random weight")
        if values:
            layer.set_weights(values)
