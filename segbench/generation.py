"""The Keras generation a run uses: Keras 3 (the default) or Keras 2, the article's.

The published figures come from a Keras 2 program (tf.keras in TensorFlow 2.6). `--keras 2`
builds the same model, loss and optimizer through tf-keras, TensorFlow's Keras 2 package
(pinned to the TensorFlow release), so a run can be compared with them like for like.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

from segbench.errors import Unavailable

GENERATIONS = (2, 3)


@dataclass(frozen=True)
class Generation:
    """A Keras generation: the package (layers, Model, optimizers, …) and the ops the loss uses."""

    number: int
    keras: ModuleType  # keras (3) or tf_keras (2)
    ops: Any  # keras.ops, or the TensorFlow functions of the same names under Keras 2


def load(number: int) -> Generation:
    """Keras generation `number` (RunConfig.validate has checked it and the backend)."""
    if number == 3:
        import keras

        return Generation(3, keras, keras.ops)
    try:
        import tf_keras
    except ImportError:
        raise Unavailable(
            "--keras 2 needs tf-keras: uv sync --locked (or pip install 'tf-keras~=2.19.0')"
        ) from None
    return Generation(2, tf_keras, _tensorflow_ops())


def _tensorflow_ops() -> SimpleNamespace:
    """The keras.ops functions losses.py uses, as TensorFlow's own: Keras 2 has no keras.ops."""
    import tensorflow as tf

    return SimpleNamespace(
        cast=tf.cast,
        clip=tf.clip_by_value,
        sum=tf.reduce_sum,
        max=tf.reduce_max,
        not_equal=tf.not_equal,
        where=tf.where,
        ones_like=tf.ones_like,
        zeros_like=tf.zeros_like,
        square=tf.square,
    )
