"""--compile: what compiled the step is read from the compiled model, not from the request."""

import keras
import pytest

from segbench.benchmark.config import PRESETS
from segbench.measure.run.compilation import compile_model, effective_compile

SMOKE = PRESETS["smoke"]


@pytest.mark.parametrize(
    ("overrides", "compiled", "note"),
    [
        ({}, "off", None),
        ({"xla": True}, "xla", None),
        # Keras turns XLA off without an error under op determinism: recorded, and said why.
        ({"xla": True, "deterministic": True}, "off", "op determinism"),
        ({"xla": False, "deterministic": True}, "off", None),
    ],
)
def test_the_compile_setting_recorded_is_what_keras_did(overrides, compiled, note):
    config = SMOKE.with_overrides(**overrides)
    from tensorflow.python.framework import config as tf_config

    if config.deterministic:
        tf_config.enable_op_determinism()  # as backend.configure_determinism does
    try:
        model = compile_model(config, 0.01)
        got, why = effective_compile(config, model)
    finally:
        tf_config.disable_op_determinism()  # the rest of this process runs as before
    assert got == compiled
    assert (why is None) if note is None else (note in why and why.startswith("--compile asked"))


def test_a_layer_without_jit_support_turns_the_request_off():
    class Eager(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.supports_jit = False

        def call(self, x):
            return x

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(1)(Eager()(inputs)))
    model.compile(loss="mse", jit_compile=True)
    config = SMOKE.with_overrides(xla=True)
    assert effective_compile(config, model) == (
        "off",
        "--compile asked, not used: Keras turned jit_compile off (a layer does not support it, "
        "or torch < 2.1)",
    )


def test_keras_2_compiles_as_asked():
    config = SMOKE.with_overrides(xla=True, keras=2)
    assert effective_compile(config, model=None) == ("xla", None)
