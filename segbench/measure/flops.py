"""Training FLOPs of any Keras 3 model, read off its architecture.

The convention is CV-net's (cvnet.py): FLOPs = 2 × multiply-adds of the convolutions, dense
layers and attention matrix products; biases, normalisation, activations, pooling and the
other element-wise layers count zero; training = 3 × forward (forward, backward for the
inputs, backward for the weights). Layers with weights that this module does not know are
listed in `unknown`, never guessed, so a count with unknown layers is a lower bound.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

# Layers whose cost is negligible next to the convolutions (element-wise, memory movement,
# normalisation, pooling): counted as zero and listed by kind.
ZERO_COST_KINDS = frozenset(
    {
        "InputLayer",
        "Activation",
        "ReLU",
        "LeakyReLU",
        "PReLU",
        "ELU",
        "Softmax",
        "BatchNormalization",
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
        "SpectralNormalization",
        "Dropout",
        "SpatialDropout1D",
        "SpatialDropout2D",
        "SpatialDropout3D",
        "GaussianDropout",
        "GaussianNoise",
        "AlphaDropout",
        "ActivityRegularization",
        "MaxPooling1D",
        "MaxPooling2D",
        "MaxPooling3D",
        "AveragePooling1D",
        "AveragePooling2D",
        "AveragePooling3D",
        "GlobalMaxPooling1D",
        "GlobalMaxPooling2D",
        "GlobalMaxPooling3D",
        "GlobalAveragePooling1D",
        "GlobalAveragePooling2D",
        "GlobalAveragePooling3D",
        "Add",
        "Subtract",
        "Multiply",
        "Average",
        "Maximum",
        "Minimum",
        "Concatenate",
        "Reshape",
        "Flatten",
        "Permute",
        "RepeatVector",
        "Identity",
        "Masking",
        "Embedding",
        "ZeroPadding1D",
        "ZeroPadding2D",
        "ZeroPadding3D",
        "Cropping1D",
        "Cropping2D",
        "Cropping3D",
        "UpSampling1D",
        "UpSampling2D",
        "UpSampling3D",
        "Rescaling",
        "Resizing",
        "CenterCrop",
        "Normalization",
    }
)


@dataclass(frozen=True)
class KindTotal:
    """The counted layers of one kind (class name): how many, and their forward FLOPs."""

    layers: int
    forward_flops: float


@dataclass(frozen=True)
class FlopCount:
    """FLOPs of one sample. `by_kind`: counted layers by class name; `by_layer`: forward
    FLOPs by layer name (a layer called twice counts twice); `zero_cost`: layers counted as
    zero, by class name; `assumed_zero`: weightless layers of a class not known here, counted
    as zero ("name (Class)"); `unknown`: layers with weights of a class not known here, not
    counted ("name (Class)")."""

    forward_per_sample: float
    by_kind: dict[str, KindTotal] = field(default_factory=dict)
    by_layer: dict[str, float] = field(default_factory=dict)
    zero_cost: dict[str, int] = field(default_factory=dict)
    assumed_zero: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def training_per_sample(self) -> float:
        """Forward, plus backward for the inputs and for the weights: 3 × forward."""
        return 3.0 * self.forward_per_sample

    @property
    def forward_macs_per_sample(self) -> float:
        return self.forward_per_sample / 2.0

    @property
    def complete(self) -> bool:
        """True when every layer with weights was counted (no unknown layers)."""
        return not self.unknown


def count_flops(model: keras.Model) -> FlopCount:
    """Forward and training FLOPs of one sample of a built Keras 3 model; nested models
    (Functional or Sequential, e.g. a keras.applications backbone) are counted through."""
    macs: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    named: Counter[str] = Counter()
    zero: Counter[str] = Counter()
    assumed: list[str] = []
    unknown: list[str] = []
    _walk(model, macs, layers, named, zero, assumed, unknown)
    return FlopCount(
        forward_per_sample=2.0 * sum(macs.values()),
        by_kind={k: KindTotal(layers[k], 2.0 * macs[k]) for k in sorted(layers)},
        by_layer={name: 2.0 * count for name, count in named.items()},
        zero_cost=dict(sorted(zero.items())),
        assumed_zero=tuple(assumed),
        unknown=tuple(unknown),
    )


def _graph_nodes(model: Any) -> list | None:
    """The call nodes of a Functional model's graph (a Sequential's inner Functional),
    inputs first; None for a model without a graph (a subclassed model)."""
    graph = getattr(model, "_functional", None) or model
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        return None
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]]


def _walk(model, macs, layers, named, zero, assumed, unknown) -> None:
    """Add up the layers of each call node; a nested model counts once per call."""
    nodes = _graph_nodes(model)
    if nodes is None:
        unknown.append(_label(model))
        return
    for node in nodes:
        layer = node.operation
        kind = type(layer).__name__
        if _graph_nodes(layer) is not None and hasattr(layer, "layers"):
            _walk(layer, macs, layers, named, zero, assumed, unknown)  # a nested model
            continue
        if kind in ZERO_COST_KINDS:
            zero[kind] += 1
            continue
        try:
            count = _layer_macs(layer, node)
        except _DynamicShape:
            unknown.append(f"{_label(layer)}: a dimension other than the batch is None")
            continue
        if count is not None:
            macs[kind] += count
            layers[kind] += 1
            named[layer.name] += count
        elif layer.weights:
            unknown.append(_label(layer))
        else:
            assumed.append(_label(layer))


def _label(layer) -> str:
    return f"{layer.name} ({type(layer).__name__})"


class _DynamicShape(ValueError):
    """A shape with None in a dimension other than the batch: its cost is not fixed."""


def _dims(shape) -> tuple[int, ...]:
    """The non-batch dimensions of a static shape."""
    dims = tuple(shape[1:])
    if any(d is None for d in dims):
        raise _DynamicShape(tuple(shape))
    return dims


def _layer_macs(layer, node) -> int | None:
    """Forward multiply-adds of one call of `layer` (one sample), None for an unknown kind."""
    from keras import layers as kl

    inputs = node.input_tensors
    outputs = node.outputs
    if not inputs or not outputs:
        return None
    x, y = _dims(inputs[0].shape), _dims(outputs[0].shape)
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"

    def split(dims: tuple[int, ...]) -> tuple[tuple[int, ...], int]:  # (spatial, channels)
        return (dims[:-1], dims[-1]) if channels_last else (dims[1:], dims[0])

    if isinstance(layer, kl.MultiHeadAttention):
        return _attention_macs(layer, node)
    if isinstance(layer, kl.Attention):  # dot-product (and additive) attention, no heads
        query, value = _dims(inputs[0].shape), _dims(inputs[1].shape)
        return math.prod(query[:-1]) * math.prod(value[:-1]) * (query[-1] + value[-1])
    if isinstance(layer, kl.EinsumDense):
        # The first dimension is the batch even when the model fixes it.
        x_shape = (None, *inputs[0].shape[1:])
        return _einsum_macs(layer.equation, x_shape, layer.kernel.shape)
    if isinstance(layer, kl.Dense):
        return math.prod(x[:-1]) * x[-1] * layer.units
    if isinstance(layer, kl.Dot):
        axes = layer.axes if isinstance(layer.axes, (list, tuple)) else (layer.axes,) * 2
        axis = axes[0] if axes[0] >= 0 else len(inputs[0].shape) + axes[0]
        return math.prod(y) * inputs[0].shape[axis]
    kernel = math.prod(getattr(layer, "kernel_size", ()) or (1,))
    (x_space, c_in), (y_space, c_out) = split(x), split(y)
    # Separable and depthwise before Conv: in Keras 3 neither subclasses the other, but the
    # order keeps the most specific first should that change.
    if isinstance(layer, (kl.SeparableConv1D, kl.SeparableConv2D)):
        mid = c_in * layer.depth_multiplier  # depthwise pass, then 1×1 pointwise
        return math.prod(y_space) * (kernel * mid + mid * c_out)
    if isinstance(layer, (kl.DepthwiseConv1D, kl.DepthwiseConv2D)):
        return math.prod(y_space) * kernel * c_in * layer.depth_multiplier
    if isinstance(layer, (kl.Conv1DTranspose, kl.Conv2DTranspose, kl.Conv3DTranspose)):
        # Each input position scatters a kernel × c_out patch (cvnet.py's convention).
        return math.prod(x_space) * kernel * c_in * c_out
    if isinstance(layer, (kl.Conv1D, kl.Conv2D, kl.Conv3D)):
        return math.prod(y_space) * kernel * (c_in // getattr(layer, "groups", 1)) * c_out
    return None


def _attention_macs(layer, node) -> int:
    """Projections of query, key, value and output, plus the two attention products
    (scores = Q·Kᵀ, output = scores·V), for each head."""
    args, kwargs = node.arguments.args, node.arguments.kwargs
    query = args[0] if args else kwargs["query"]
    value = args[1] if len(args) > 1 else kwargs["value"]
    key = args[2] if len(args) > 2 else kwargs.get("key")
    key = value if key is None else key
    q_positions = math.prod(_dims(query.shape)[:-1])
    k_positions = math.prod(_dims(key.shape)[:-1])
    # Built, the layer holds its attention axes (by default every axis between batch and
    # features), counted on the projected rank: the input's rank + 1 (the heads).
    axes = layer._attention_axes
    rank = len(key.shape) + 1
    attended = k_positions if axes is None else math.prod(key.shape[a % rank] for a in axes)
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim
    projections = (
        q_positions * math.prod(layer._query_dense.kernel.shape)
        + k_positions * math.prod(layer._key_dense.kernel.shape)
        + k_positions * math.prod(layer._value_dense.kernel.shape)
        + q_positions * math.prod(layer._output_dense.kernel.shape)
    )
    products = heads * q_positions * attended * (key_dim + value_dim)
    return projections + products


def _einsum_macs(equation: str, input_shape, kernel_shape) -> int:
    """Multiply-adds of `input ⊗ kernel` for one sample: the product of the sizes of every
    index in the equation, the batch index left out."""
    left, _ = equation.split("->")
    x_spec, k_spec = left.split(",")
    sizes: dict[str, int] = {}
    for spec, shape in ((x_spec, input_shape), (k_spec, kernel_shape)):
        shape = list(shape)
        if "..." in spec:
            before, after = spec.split("...")
            middle = shape[len(before) : len(shape) - len(after)]
            sizes["..."] = math.prod(d for d in middle if d is not None)
            shape = shape[: len(before)] + shape[len(shape) - len(after) :]
            spec = before + after
        for letter, dim in zip(spec, shape, strict=True):
            if dim is not None:  # the batch dimension
                sizes[letter] = dim
    return math.prod(sizes.values())
