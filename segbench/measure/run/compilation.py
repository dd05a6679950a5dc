"""The run's model, compiled: the CV-net (or a user's model) with its optimizer, loss and metrics,
and what actually compiles its training step and which BatchNormalization kernel it uses.
"""

from __future__ import annotations

import sys

from segbench.benchmark.config import MOMENTUM, RunConfig
from segbench.measure import generation


def compile_model(config: RunConfig, lr: float, dropout: bool = True):
    """The CV-net model at `config.width`, compiled with the optimizer, loss and metrics of §3,
    in the run's Keras generation, starting from the numpy-drawn weights of `config.seed`
    (or the user's model of `config.model`: compile_own_model)."""
    if config.model is not None:
        return compile_own_model(config, lr, dropout)
    from segbench.benchmark.cvnet import build_cvnet
    from segbench.benchmark.losses import loss_and_metrics
    from segbench.benchmark.weights import seed_weights

    keras_generation = generation.load(config.keras_generation)
    synchronized_bn = bool(config.sync_batchnorm) and config.distributed
    model = build_cvnet(
        config.width,
        config.image_size,
        keras_generation.keras,
        dropout,
        synchronized_bn,
        config.batchnorm or "keras",
        config.layout,
    )
    seed_weights(model, config.seed)  # the same starting point on every backend
    loss, iou, dice = loss_and_metrics(keras_generation.ops, config.layout)
    optimizer = keras_generation.keras.optimizers.SGD(
        learning_rate=lr, momentum=MOMENTUM, nesterov=True
    )
    # JAX runs compiled or op by op: its steps are always jit-compiled (XLA is how JAX runs).
    jit = config.xla or config.backend == "jax"
    model.compile(optimizer=optimizer, loss=loss, metrics=[iou, dice], jit_compile=jit)
    return model


def compile_own_model(config: RunConfig, lr: float, dropout: bool = True):
    """The user's model (--model), compiled with its own loss, optimizer and metrics where its
    function gives them, else the benchmark's SGD and the loss of its output activation,
    starting from the numpy-drawn weights of `config.seed` (weights.seed_any_weights)."""
    from segbench.benchmark.own_model import own_model_of, without_dropout
    from segbench.benchmark.weights import seed_any_weights

    keras = generation.load(3).keras
    own = own_model_of(config)
    model = own.model
    if not dropout:
        without_dropout(model)
    seed_any_weights(model, config.seed)
    optimizer = own.optimizer or keras.optimizers.SGD(
        learning_rate=lr, momentum=MOMENTUM, nesterov=True
    )
    jit = config.xla or config.backend == "jax"
    model.compile(optimizer=optimizer, loss=own.loss, metrics=own.metrics, jit_compile=jit)
    return model


_COMPILERS = {"tensorflow": "xla", "torch": "torch.compile", "jax": "jit"}


def effective_batchnorm(config: RunConfig) -> str:
    """The BatchNormalization kernel the run's model uses: "fused" only where a fused kernel
    exists (tensorflow, torch) and batch statistics are not synchronized across replicas."""
    if (config.batchnorm or "keras") == "keras" or config.model is not None:
        return "keras"
    if config.backend not in ("tensorflow", "torch"):
        return f"keras (no fused kernel on {config.backend})"
    if config.sync_batchnorm and config.distributed:
        return "keras (synchronized: the fused kernels cannot all-reduce)"
    return "fused"


def effective_compile(config: RunConfig, model) -> tuple[str, str | None]:
    """(what compiles the training step, why a --compile request was not honoured).

    The first is "xla", "torch.compile", "jit" or "off", read from the compiled model: Keras 3
    turns a jit_compile=True request off without an error under TensorFlow op determinism,
    on the Metal GPU, for layers that do not support it and on torch before 2.1
    (keras/src/trainers/trainer.py, model_supports_jit). Keras 2 steps run in segbench's own
    tf.function, which compiles exactly as asked.
    """
    on = config.xla if config.keras_generation == 2 else bool(getattr(model, "jit_compile", False))
    compiled = _COMPILERS[config.backend] if on else "off"
    if not (config.xla and compiled == "off"):
        return compiled, None
    if config.backend == "tensorflow" and config.deterministic:
        why = "Keras turns XLA off under TensorFlow op determinism (--deterministic)"
    elif config.backend == "tensorflow" and sys.platform == "darwin":
        why = "XLA does not run on the Metal GPU (tensorflow-metal)"
    else:
        why = "Keras turned jit_compile off (a layer does not support it, or torch < 2.1)"
    return compiled, f"--compile asked, not used: {why}"
