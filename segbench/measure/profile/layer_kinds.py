"""Layer kinds of a Keras model's ops: which kind of layer (convolution, batch norm, …) a layer
is, and what the name scopes in the model's op names stand for.

TensorFlow's ops carry their Keras layer's name scope, forward and backward
("gradient_tape/model/enc1_conv/…"); torch's ranges are named by kind (see profile_torch).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from segbench.measure.profile.record import (
    ACTIVATION,
    BATCH_NORM,
    CONCATENATION,
    CONVOLUTION,
    LOSS,
    OPTIMIZER,
    OTHER,
    TRANSPOSED,
)

# Keras layer classes by kind; a subclass (segbench's fused BatchNormalization, a user's
# Conv2D) takes the kind of the first class of its MRO found here.
_LAYER_KINDS = {
    **dict.fromkeys(
        (
            "Conv1D",
            "Conv2D",
            "Conv3D",
            "SeparableConv1D",
            "SeparableConv2D",
            "DepthwiseConv1D",
            "DepthwiseConv2D",
        ),
        CONVOLUTION,
    ),
    **dict.fromkeys(("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"), TRANSPOSED),
    **dict.fromkeys(("BatchNormalization", "SyncBatchNormalization"), BATCH_NORM),
    **dict.fromkeys(
        (
            "Activation",
            "ReLU",
            "LeakyReLU",
            "PReLU",
            "ELU",
            "Softmax",
            "Dropout",
            "SpatialDropout1D",
            "SpatialDropout2D",
            "SpatialDropout3D",
            "GaussianDropout",
            "AlphaDropout",
        ),
        ACTIVATION,
    ),
    # Padding and cropping move data as concatenation and upsampling do.
    **dict.fromkeys(
        (
            "Concatenate",
            "Add",
            "UpSampling1D",
            "UpSampling2D",
            "UpSampling3D",
            "ZeroPadding1D",
            "ZeroPadding2D",
            "ZeroPadding3D",
            "Cropping1D",
            "Cropping2D",
            "Cropping3D",
        ),
        CONCATENATION,
    ),
}
_LOSS_SCOPES = frozenset({"compile_loss", "compile_metrics", "loss", "metrics"})
_OPTIMIZER_SCOPES = frozenset({"update", "optimizer"})
_UNIQUE_SUFFIX = re.compile(r"_\d+$")  # TensorFlow makes a repeated name scope unique: conv_1


def layer_kind(layer: Any) -> str | None:
    """The kind of a Keras layer; None for a layer made of other layers (a nested model)."""
    for cls in type(layer).__mro__:
        if cls.__name__ in _LAYER_KINDS:
            return _LAYER_KINDS[cls.__name__]
    return None if _sublayers(layer) else OTHER


def flops_by_kind(by_class: dict[str, float]) -> dict[str, float]:
    """FLOPs by Keras layer class name, added up by kind (a class not listed here: OTHER)."""
    totals: dict[str, float] = {}
    for name, flops in by_class.items():
        kind = _LAYER_KINDS.get(name, OTHER)
        totals[kind] = totals.get(kind, 0.0) + flops
    return totals


def forward_flops_by_kind(model: Any) -> dict[str, float]:
    """One sample's forward FLOPs of a Keras 3 model by layer kind: flops.py's count of each
    layer, under the kind its ops are profiled as (a layer of layers: OTHER, as its ops)."""
    from segbench.measure.flops import count_flops

    kinds = _kinds_by_name(model)
    totals: dict[str, float] = {}
    for name, flops in count_flops(model).by_layer.items():
        kind = kinds.get(name) or OTHER
        totals[kind] = totals.get(kind, 0.0) + flops
    return totals


def _kinds_by_name(model: Any) -> dict[str, str | None]:
    """Every layer of `model`, nested ones included, by name → kind."""
    return {
        layer.name: layer_kind(layer)
        for layer in model._flatten_layers(include_self=False, recursive=True)
    }


def _sublayers(layer: Any) -> list[Any]:
    return list(layer._flatten_layers(include_self=False, recursive=False))


def _names(loss: Any) -> Iterator[str]:
    """The lowercase names of a compiled loss: a name, a function, or a list or dict of them."""
    if isinstance(loss, dict):
        loss = list(loss.values())
    if isinstance(loss, (list, tuple)):
        for item in loss:
            yield from _names(item)
    elif isinstance(loss, str):
        yield loss.lower()
    elif loss is not None:
        yield str(getattr(loss, "name", None) or getattr(loss, "__name__", "")).lower()


@dataclass(frozen=True)
class Scopes:
    """What the name scopes in a model's op names stand for."""

    layers: dict[str, str | None]  # layer name → kind (None: a layer of layers)
    optimizer: frozenset[str]  # lowercase
    loss: frozenset[str]  # lowercase
    # Keras 3 on TensorFlow scopes a layer's ops "<name>_1" ("enc1_conv_1/convolution"),
    # tf-keras "<name>": which reading of "conv_1" is tried first.
    suffixed: bool = True

    @staticmethod
    def of(model: Any) -> Scopes:
        layers = _kinds_by_name(model)
        optimizer = set(_OPTIMIZER_SCOPES)
        opt = getattr(model, "optimizer", None)
        while opt is not None:  # a LossScaleOptimizer wraps the one that updates
            optimizer |= {str(getattr(opt, "name", "")).lower(), type(opt).__name__.lower()}
            opt = getattr(opt, "inner_optimizer", None)
        optimizer.discard("")
        # tf-keras scopes the loss and each metric by its own name ("iou_mse_loss/…").
        loss = set(_LOSS_SCOPES) | set(_names(getattr(model, "loss", None)))
        loss |= {str(getattr(m, "name", "")).lower() for m in getattr(model, "metrics", [])}
        loss.discard("")
        return Scopes(layers, frozenset(optimizer), frozenset(loss), is_keras_3(model))

    def kind(self, op_name: str, op_type: str) -> str:
        """The kind of an op from its full name ("scope/…/op") and type."""
        for scope in op_name.split("/")[:-1]:
            bare = _UNIQUE_SUFFIX.sub("", scope)
            for name in (bare, scope) if self.suffixed else (scope, bare):
                if name in self.layers:
                    kind = self.layers[name]
                    if kind is not None:
                        return kind
                    break  # a nested model: its layers are further down the name
                if name.lower() in self.optimizer:
                    return OPTIMIZER
                if name.lower() in self.loss:
                    return LOSS
        if op_type.startswith(("ResourceApply", "ApplyGradient")):
            return OPTIMIZER
        return OTHER


def is_keras_3(model: Any) -> bool:
    """Whether `model` is a Keras 3 model (else tf-keras's, which runs on TensorFlow only)."""
    import keras

    return isinstance(model, keras.Model)
