"""A small U-Net for `segbench run --model examples/unet.py:build`.

Written as a user would write their own model: a function whose keyword arguments are the
knobs, returning an uncompiled Keras 3 model (segbench picks binary cross-entropy for the
sigmoid output). Pass other values with --model-arg, e.g. --model-arg base_filters=8.
"""

import keras
from keras import layers


def conv_block(x, filters: int):
    """Two 3×3 convolutions, each followed by batch normalisation and ReLU."""
    for _ in range(2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
    return x


def build(base_filters: int = 16, depth: int = 3, image_size: int = 128, channels: int = 1):
    """A U-Net with `depth` down- and up-sampling steps; filters double at each step down.

    The image size must be divisible by 2**depth.
    """
    if image_size % 2**depth:
        raise ValueError(f"image_size {image_size} is not divisible by 2**depth = {2**depth}")
    inputs = keras.Input((image_size, image_size, channels))
    x, skips = inputs, []
    for level in range(depth):
        x = conv_block(x, base_filters * 2**level)
        skips.append(x)
        x = layers.MaxPooling2D(2)(x)
    x = conv_block(x, base_filters * 2**depth)
    for level in reversed(range(depth)):
        x = layers.Conv2DTranspose(base_filters * 2**level, 2, strides=2, padding="same")(x)
        x = layers.Concatenate()([x, skips[level]])
        x = conv_block(x, base_filters * 2**level)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="unet")
