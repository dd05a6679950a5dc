"""The Keras generation a run uses: Keras 3 (the default) or Keras 2, the article's.

The published figures come from a Keras 2 program (tf.keras in TensorFlow 2.6). `--keras 2`
builds the same model, loss and optimizer through tf-keras, TensorFlow's Keras 2 package
(pinned to the TensorFlow release), so a run can be compared with them like for like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType, SimpleNamespace
from typing import Any

from segbench.errors import Unavailable
from segbench.measure import settings

GENERATIONS = (2, 3)


StepFunction = Callable[[Any, Any], dict]


@dataclass(frozen=True)
class Generation:
    """A Keras generation: the package (layers, Model, optimizers, …) and the ops the loss uses."""

    number: int
    keras: ModuleType  # keras (3) or tf_keras (2)
    ops: Any  # keras.ops, or the TensorFlow functions of the same names under Keras 2

    def step_functions(self, model: Any, jit_compile: bool) -> tuple[StepFunction, StepFunction]:
        """(train, test): one training or evaluation step on a batch (x, y), returning the logs.

        Keras 3: `train_on_batch` / `test_on_batch`, which run the compiled step on the batch
        as given. tf-keras's `train_on_batch` instead wraps every batch in a tf.data iterator
        and, when that iterator is destroyed, waits for its threads: seconds of idle time per
        step on a CPU, which a benchmark must not time. So under Keras 2 the model's own
        `train_step` / `test_step` run in a tf.function, as `fit` runs them, without tf.data.
        """
        if self.number == 3:
            return (
                lambda x, y: model.train_on_batch(x, y, return_dict=True),
                lambda x, y: model.test_on_batch(x, y, return_dict=True),
            )
        import tensorflow as tf

        train = tf.function(model.train_step, jit_compile=jit_compile)
        test = tf.function(model.test_step, jit_compile=jit_compile)
        return (lambda x, y: train((x, y))), (lambda x, y: test((x, y)))


def load(number: int) -> Generation:
    """Keras generation `number` (RunConfig.validate has checked it and the backend)."""
    if number == 3:
        import keras

        settings.pin_keras(keras)  # whatever keras.json says: float32, channels-last
        return Generation(3, keras, keras.ops)
    try:
        import tf_keras
    except ImportError:
        raise Unavailable(
            "--keras 2 needs tf-keras: uv sync --locked (or pip install 'tf-keras~=2.19.0')"
        ) from None
    settings.pin_keras(tf_keras)
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
