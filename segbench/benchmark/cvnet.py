"""The CV-net BENCHMARK model (benchmark §1), built from keras.layers alone.

Width 1 is the published model: 20,886,706 parameters, 512×512×1 input. A narrower model
scales every channel count by `width` and keeps the image size, because the bottleneck's
valid 5×5 convolutions need 512×512 input at full depth.
"""

from __future__ import annotations

import functools
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keras is imported where a model is built: the FLOP count needs none
    import keras

IMAGE_SIZE = 512
PUBLISHED_PARAMETERS = 20_886_706
ENCODER = (8, 16, 32, 128, 512)
BOTTLENECK = (1024, 2048)
DECODER = (512, 384, 160, 56, 24)
STEM = 8
LAST_UP = 24
HEAD = (32, 16)

_BN_MOMENTUM = 0.95
_LEAK = 0.2


def channels(n: int, width: float) -> int:
    """Channel count `n` scaled by the width multiplier (at least one channel)."""
    return max(1, round(n * width))


def _unit(layers, x, filters: int, k: int, kind: str, dropout: float, name: str):
    """Unit of benchmark §1: [upsample] → convolution → BN(0.95) → LeakyReLU(0.2) → Dropout."""
    if kind == "up":
        x = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_upsample")(x)
        x = layers.Conv2DTranspose(
            filters,
            k,
            padding="same",
            use_bias=False,
            kernel_initializer="he_uniform",
            name=f"{name}_convt",
        )(x)
    elif kind == "down":
        x = layers.Conv2D(
            filters,
            k,
            strides=2,
            padding="valid",
            use_bias=False,
            kernel_initializer="he_uniform",
            name=f"{name}_conv",
        )(x)
        x = layers.ZeroPadding2D(((1, 0), (1, 0)), name=f"{name}_pad")(x)
    elif kind == "point":
        x = layers.Conv2D(
            filters,
            k,
            padding="valid",
            use_bias=False,
            kernel_initializer="he_uniform",
            name=f"{name}_conv",
        )(x)
    elif kind in ("sep", "sepv"):
        x = layers.SeparableConv2D(
            filters,
            k,
            padding="same" if kind == "sep" else "valid",
            use_bias=False,
            depthwise_initializer="he_uniform",
            pointwise_initializer="he_uniform",
            name=f"{name}_sepconv",
        )(x)
    else:
        raise ValueError(f"unknown unit kind {kind!r}")
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.LeakyReLU(_LEAK, name=f"{name}_lrelu")(x)  # positional: alpha in Keras 2
    return layers.Dropout(dropout, name=f"{name}_drop")(x)


def build_cvnet(
    width: float = 1.0,
    image_size: int = IMAGE_SIZE,
    keras_module: ModuleType | None = None,
    dropout: bool = True,
    synchronized_bn: bool = False,
    batchnorm: str = "keras",
    data_format: str = "channels_last",
) -> keras.Model:
    """The CV-net model at the given width multiplier; width 1 is the published model.

    `keras_module` is the Keras package to build with: keras (default) or tf_keras (Keras 2).
    `dropout=False` sets every dropout rate to 0 (the numerics check: no randomness).
    `synchronized_bn`: under tf.distribute, BatchNormalization averages its batch statistics
    over all replicas (--sync-batchnorm) instead of using each replica's own.
    `batchnorm`: "keras" (Keras's layer) or "fused" (Keras 3 only: the same layer on the
    backend's fused kernel, batchnorm.py); with `synchronized_bn`, Keras's synchronized layer.
    `data_format`: "channels_last" (input (batch, size, size, 1), Keras's default) or
    "channels_first" (input (batch, 1, size, size)): the same layers and weights, the channel
    axis moved; ValueError for another value.
    """
    import keras

    if keras_module is None:
        keras_module = keras
    layers = _layers(keras_module, batchnorm, synchronized_bn, data_format)
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")
    c = lambda n: channels(n, width)  # noqa: E731 - short local alias keeps the graph readable
    low, high = (0.25, 0.5) if dropout else (0.0, 0.0)  # the units' dropout rates
    shape = (
        (image_size, image_size, 1)
        if data_format == "channels_last"
        else (1, image_size, image_size)
    )
    inputs = keras_module.Input(shape, name="input")

    stem = _stem(layers, inputs, c(STEM))
    x, skips = _encoder(layers, stem, c, low, high)
    for i, n in enumerate(BOTTLENECK, start=1):
        x = _unit(layers, x, c(n), 5, "sepv", low, f"mid{i}")
    x = _decoder(layers, x, skips, stem, c, low)
    outputs = _head(layers, x, inputs, c)
    return keras_module.Model(inputs, outputs, name="cvnet")


# The layers CV-net uses that take a data format, and those that take a channel axis.
_SPATIAL = ("Conv2D", "SeparableConv2D", "Conv2DTranspose", "UpSampling2D", "ZeroPadding2D")
_CHANNEL_AXIS = ("BatchNormalization", "Concatenate")


def _layers(keras_module: ModuleType, batchnorm: str, synchronized_bn: bool, data_format: str):
    """`keras_module.layers`, its BatchNormalization replaced by the one `batchnorm` and
    `synchronized_bn` choose, and for channels_first every layer that has a layout or a channel
    axis given it; ValueError for an unknown kind, fused on Keras 2, or an unknown format."""
    import keras

    from segbench.benchmark.batchnorm import batch_normalization_layer

    batch_norm = batch_normalization_layer(batchnorm)  # a ValueError for an unknown kind
    if keras_module is not keras:  # Keras 2: its own layer, fused already
        if batchnorm != "keras":
            raise ValueError("batchnorm fused is for Keras 3: Keras 2's layer is fused already")
        batch_norm = keras_module.layers.BatchNormalization
    layers = keras_module.layers
    if synchronized_bn:  # the fused kernels cannot all-reduce: Keras's synchronized layer
        batch_norm = functools.partial(keras_module.layers.BatchNormalization, synchronized=True)
    if batch_norm is not keras_module.layers.BatchNormalization:
        layers = SimpleNamespace(**vars(layers))
        layers.BatchNormalization = batch_norm
    if data_format == "channels_last":
        return layers
    if data_format != "channels_first":
        raise ValueError(
            f"data_format must be channels_last or channels_first, got {data_format!r}"
        )
    layers = SimpleNamespace(**vars(layers))
    for name in _SPATIAL:
        setattr(layers, name, functools.partial(getattr(layers, name), data_format=data_format))
    for name in _CHANNEL_AXIS:
        setattr(layers, name, functools.partial(getattr(layers, name), axis=1))
    return layers


def _stem(layers, inputs, filters: int):
    """The stem: 3×3 convolution → BN(0.95) → sigmoid, at full resolution."""
    stem = layers.Conv2D(
        filters,
        3,
        padding="same",
        use_bias=False,
        kernel_initializer="glorot_uniform",
        name="stem_conv",
    )(inputs)
    stem = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="stem_bn")(stem)
    stem = layers.Activation("sigmoid", name="stem_sigmoid")(stem)
    return stem


def _encoder(layers, x, c, low: float, high: float):
    """The encoder blocks: a strided unit, then a 1×1 and a separable 5×5 unit side by side,
    concatenated; (output, the blocks' outputs for the skip connections)."""
    skips = []
    for i, n in enumerate(ENCODER, start=1):
        d = _unit(layers, x, c(n), 3, "down", low, f"enc{i}_down")
        x = layers.Concatenate(name=f"enc{i}_concat")(
            [
                _unit(layers, d, c(n), 1, "point", high, f"enc{i}_point"),
                _unit(layers, d, c(n), 5, "sep", high, f"enc{i}_sep"),
            ]
        )
        skips.append(x)
    return x, skips


def _decoder(layers, x, skips, stem, c, low: float):
    """The decoder blocks: an upsampling unit concatenated with its encoder block's output,
    the last with the stem's."""
    for i, (n, skip) in enumerate(zip(DECODER, reversed(skips), strict=True), start=1):
        x = layers.Concatenate(name=f"dec{i}_concat")(
            [_unit(layers, x, c(n), 3, "up", low, f"dec{i}"), skip]
        )
    x = layers.Concatenate(name="dec_last_concat")(
        [_unit(layers, x, c(LAST_UP), 3, "up", low, "dec_last"), stem]
    )
    return x


def _head(layers, x, inputs, c):
    """The head: a valid 3×3 convolution and transposed convolution, concatenated with the
    input image, then a 1×1 convolution to the sigmoid probability map."""
    x = layers.Conv2D(
        c(HEAD[0]),
        3,
        padding="valid",
        use_bias=False,
        kernel_initializer="he_uniform",
        name="head_conv",
    )(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="head_conv_bn")(x)
    x = layers.LeakyReLU(_LEAK, name="head_conv_lrelu")(x)
    x = layers.Conv2DTranspose(
        c(HEAD[1]),
        3,
        padding="valid",
        use_bias=False,
        kernel_initializer="he_uniform",
        name="head_convt",
    )(x)
    x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="head_convt_bn")(x)
    x = layers.LeakyReLU(_LEAK, name="head_convt_lrelu")(x)
    x = layers.Concatenate(name="head_concat")([x, inputs])
    x = layers.Conv2D(1, 1, kernel_initializer="glorot_uniform", name="head_out")(x)
    # Sigmoid in float32 so mixed-precision policies still produce a float32 probability map.
    return layers.Activation("sigmoid", dtype="float32", name="output")(x)


def forward_flops_per_image(model: keras.Model) -> float:
    """Forward convolution FLOPs (2 × multiply-adds) of one image, read off a built Keras 3
    model; BN and activations excluded."""
    from keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.SeparableConv2D):
            _, h, w, cout = layer.output.shape
            cin = layer.input.shape[-1]
            kh, kw = layer.kernel_size
            # Depthwise pass then 1×1 pointwise, both at the output resolution.
            total += (
                h
                * w
                * (kh * kw * cin * layer.depth_multiplier + cin * layer.depth_multiplier * cout)
            )
        elif isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            if isinstance(layer, layers.Conv2DTranspose):
                _, h, w, _ = layer.input.shape  # each input pixel scatters a k×k×cout patch
            else:
                _, h, w, _ = layer.output.shape
            total += h * w * kh * kw * cin * layer.filters
    return 2.0 * total


def training_flops_per_image(model: keras.Model) -> float:
    """Training cost of one image: forward, plus backward for inputs and weights (3 × forward)."""
    return 3.0 * forward_flops_per_image(model)


def architecture_forward_flops(width: float = 1.0, image_size: int = IMAGE_SIZE) -> float:
    """Forward convolution FLOPs of one image from the architecture alone, without Keras.

    The same count as `forward_flops_per_image` of the built model (a test holds them equal);
    `compare` uses it for the published figures, which have no model to read.
    """
    return sum(architecture_forward_flops_by_class(width, image_size).values())


def architecture_forward_flops_by_class(
    width: float = 1.0, image_size: int = IMAGE_SIZE
) -> dict[str, float]:
    """`architecture_forward_flops` by the Keras class of the layers that do them: Conv2D,
    SeparableConv2D, Conv2DTranspose."""
    c = lambda n: channels(n, width)  # noqa: E731
    macs = dict.fromkeys(("Conv2D", "SeparableConv2D", "Conv2DTranspose"), 0)

    def conv(size: int, k: int, cin: int, cout: int, layer: str = "Conv2D") -> None:
        macs[layer] += size * size * k * k * cin * cout  # per output (or input) pixel

    def separable(size: int, k: int, cin: int, cout: int) -> None:
        macs["SeparableConv2D"] += size * size * (k * k * cin + cin * cout)

    s, x = image_size, c(STEM)
    conv(s, 3, 1, x)
    skips = []
    for n in ENCODER:
        s_out = (s - 3) // 2 + 1  # valid stride-2 convolution, then padded by one
        conv(s_out, 3, x, c(n))
        s = s_out + 1
        conv(s, 1, c(n), c(n))
        separable(s, 5, c(n), c(n))
        x = 2 * c(n)
        skips.append(x)
    for n in BOTTLENECK:
        s -= 4  # valid 5×5
        separable(s, 5, x, c(n))
        x = c(n)
    for n, skip in zip((*DECODER, LAST_UP), (*reversed(skips), c(STEM)), strict=True):
        s *= 2  # upsampling, then a transposed convolution counted at its input size
        conv(s, 3, x, c(n), "Conv2DTranspose")
        x = c(n) + skip
    conv(s - 2, 3, x, c(HEAD[0]))  # valid 3×3
    conv(s - 2, 3, c(HEAD[0]), c(HEAD[1]), "Conv2DTranspose")  # transposed valid 3×3 back to s
    conv(s, 1, c(HEAD[1]) + 1, 1)
    return {layer: 2.0 * count for layer, count in macs.items()}


def published_training_gflop_per_image() -> float:
    """Training GFLOP of one image of the published model (width 1): 3 × forward."""
    return 3.0 * architecture_forward_flops(1.0) / 1e9
