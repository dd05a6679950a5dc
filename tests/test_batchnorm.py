"""--batchnorm fused: the fused layer computes what Keras's BatchNormalization computes.

`equivalence()` holds the two layers against each other on the running Keras backend; the
torch test runs it in a child process with KERAS_BACKEND=torch (`python
tests/test_batchnorm.py` prints its figures as JSON).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import needs_nchw

from segbench.benchmark import batchnorm
from segbench.benchmark.batchnorm import FusedBatchNormalization, batch_normalization_layer

MOMENTUM = 0.95  # CV-net's
TOLERANCE = 1e-4  # float32 arithmetic in a different order; values are of order 1
on_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the in-process tests run on tensorflow"
)


def _numpy(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x), dtype=np.float64)


def _gradients(f, sources: list) -> list[np.ndarray]:
    """d f() / d sources on the running backend (Keras has no backend-neutral gradient)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(sources)
            out = f()
        return [_numpy(g) for g in tape.gradient(out, sources)]
    import torch

    return [_numpy(g) for g in torch.autograd.grad(f(), sources)]


def _layer_pair(channels: int, rng: np.random.Generator, axis: int = -1):
    """Keras's layer and the fused one on `axis`, built with the same random weights."""
    pair = (
        keras.layers.BatchNormalization(axis=axis, momentum=MOMENTUM),
        FusedBatchNormalization(axis=axis, momentum=MOMENTUM),
    )
    weights = [
        rng.uniform(0.5, 1.5, channels),  # gamma
        rng.normal(0.0, 0.5, channels),  # beta
        rng.normal(0.0, 0.5, channels),  # moving mean
        rng.uniform(0.5, 2.0, channels),  # moving variance
    ]
    for layer in pair:
        layer.build((None, channels, None, None) if axis == 1 else (None, None, None, channels))
        layer.set_weights([w.astype(np.float32) for w in weights])
    return pair


def _tiny_model(layer_class, data_format: str = "channels_last") -> keras.Model:
    first = data_format == "channels_first"
    inputs = keras.Input((2, 6, 6) if first else (6, 6, 2))
    conv = dict(data_format=data_format)
    x = keras.layers.Conv2D(3, 3, padding="same", use_bias=False, **conv)(inputs)
    x = layer_class(axis=1 if first else -1, momentum=MOMENTUM, name="bn")(x)
    x = keras.layers.LeakyReLU(0.2)(x)
    return keras.Model(inputs, keras.layers.Conv2D(1, 1, **conv)(x))


def equivalence(seed: int = 0, data_format: str = "channels_last") -> dict[str, float]:
    """Largest absolute differences between Keras's layer and the fused one on this backend,
    for images in `data_format`, and how many calls reached the fused kernel (so a silent
    fallback cannot pass)."""
    first = data_format == "channels_first"
    nchw = (lambda a: np.ascontiguousarray(np.moveaxis(a, -1, 1))) if first else (lambda a: a)
    rng = np.random.default_rng(seed)
    calls = {"kernel": 0}
    kernel = batchnorm._KERNELS[keras.backend.backend()]

    def counted(*args, **kwargs):
        calls["kernel"] += 1
        return kernel(*args, **kwargs)

    batchnorm._KERNELS[keras.backend.backend()] = counted
    try:
        diffs: dict[str, float] = {}
        x_np = nchw(rng.normal(0.5, 2.0, (2, 5, 5, 3)).astype(np.float32))
        # The output weighted at random: the gradient of a plain sum is 0 in training mode.
        w = keras.ops.convert_to_tensor(rng.normal(size=x_np.shape).astype(np.float32))
        for training in (True, False):
            mode = "training" if training else "inference"
            results = []
            for layer in _layer_pair(3, np.random.default_rng(seed), 1 if first else -1):
                x = keras.ops.convert_to_tensor(x_np)
                if keras.backend.backend() == "torch":
                    x.requires_grad_(True)
                grads = _gradients(
                    lambda layer=layer, x=x, training=training: keras.ops.sum(
                        layer(x, training=training) * w
                    ),
                    [x, layer.gamma.value, layer.beta.value],
                )
                y = _numpy(layer(x, training=training))  # moving statistics updated twice
                moving = np.concatenate([_numpy(layer.moving_mean), _numpy(layer.moving_variance)])
                results.append((y, *grads, moving))
            for name, a, b in zip(
                ("output", "d_input", "d_gamma", "d_beta", "moving"), *results, strict=True
            ):
                diffs[f"{mode}_{name}"] = float(np.max(np.abs(a - b)))

        # A tiny model trained 3 SGD steps with each layer, from the same weights.
        keras.utils.set_random_seed(seed)
        models = [
            _tiny_model(batch_normalization_layer(kind), data_format) for kind in ("keras", "fused")
        ]
        models[1].set_weights(models[0].get_weights())
        diffs["kernel_calls_layer"] = calls["kernel"]  # before the models' symbolic builds
        batch = nchw(rng.normal(0.5, 2.0, (4, 6, 6, 2)).astype(np.float32))
        target = nchw(rng.uniform(size=(4, 6, 6, 1)).astype(np.float32))
        losses = []
        for model in models:
            model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
            calls["kernel"] = 0
            losses.append([float(model.train_on_batch(batch, target)) for _ in range(3)])
        bn = [model.get_layer("bn") for model in models]
        diffs["steps_loss"] = float(np.max(np.abs(np.subtract(*losses))))
        for name in ("moving_mean", "moving_variance", "gamma", "beta"):
            a, b = (_numpy(getattr(layer, name)) for layer in bn)
            diffs[f"steps_{name}"] = float(np.max(np.abs(a - b)))
        diffs["steps_moved"] = float(np.max(np.abs(_numpy(bn[0].moving_mean))))
    finally:
        batchnorm._KERNELS[keras.backend.backend()] = kernel
    diffs["kernel_calls_steps"] = calls["kernel"]  # the fused model's steps (or its trace)
    return diffs


def _assert_equivalent(diffs: dict[str, float]) -> None:
    assert diffs.pop("kernel_calls_layer") == 4  # forward and gradient, in both modes
    assert diffs.pop("kernel_calls_steps") >= 1
    assert diffs.pop("steps_moved") > 0.01  # the moving mean left its initial 0
    assert diffs == pytest.approx(dict.fromkeys(diffs, 0.0), abs=TOLERANCE)


@on_tensorflow
@pytest.mark.parametrize(
    "data_format", ["channels_last", pytest.param("channels_first", marks=needs_nchw)]
)
def test_fused_layer_equals_keras_layer_on_tensorflow(data_format):
    _assert_equivalent(equivalence(data_format=data_format))


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed in this environment (the project's venv has none); run "
    "KERAS_BACKEND=torch python tests/test_batchnorm.py where it is",
)
def test_fused_layer_equals_keras_layer_on_torch():
    # A child process: the Keras backend is chosen once, at import.
    child = subprocess.run(
        [sys.executable, __file__],
        env={**os.environ, "KERAS_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    for figures in json.loads(child.stdout.splitlines()[-1]):
        _assert_equivalent(figures)


@on_tensorflow
def test_fused_layer_runs_fused_batch_norm_v3_on_tensorflow():
    import tensorflow as tf

    layer = FusedBatchNormalization(momentum=MOMENTUM)
    layer.build((None, 4, 4, 3))
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        tf.TensorSpec((2, 4, 4, 3), tf.float32)
    )
    ops = {op.type for op in graph.graph.get_operations()}
    assert "FusedBatchNormV3" in ops and "Mean" not in ops


@on_tensorflow
def test_mixed_bfloat16_computes_in_float32_like_keras():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras_layer, fused = _layer_pair(3, np.random.default_rng(1))
        x = keras.ops.convert_to_tensor(np.random.default_rng(2).normal(size=(2, 4, 4, 3)))
        outputs = [
            layer(keras.ops.cast(x, "bfloat16"), training=True) for layer in (keras_layer, fused)
        ]
        model = _tiny_model(FusedBatchNormalization)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=False)
        loss = model.train_on_batch(np.ones((2, 6, 6, 2)), np.zeros((2, 6, 6, 1)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert [keras.backend.standardize_dtype(y.dtype) for y in outputs] == ["bfloat16"] * 2
    assert fused.moving_mean.dtype == fused.gamma.dtype == "float32"
    # Both compute in float32 and round once to bfloat16 (8 bits: 2^-8 relative).
    np.testing.assert_allclose(_numpy(outputs[1]), _numpy(outputs[0]), rtol=2**-7, atol=2**-7)
    np.testing.assert_allclose(
        _numpy(fused.moving_variance), _numpy(keras_layer.moving_variance), atol=1e-6
    )
    assert np.isfinite(loss)


@on_tensorflow
@pytest.mark.parametrize(
    ("shape", "options"),
    [((4, 3), {}), ((2, 4, 3, 4), {"axis": 2}), ((2, 4, 4, 3), {"synchronized": True})],
    ids=["2-D input", "an inner axis", "synchronized"],
)
def test_what_the_kernel_cannot_take_runs_keras_own_call(monkeypatch, shape, options):
    def refuse(*args, **kwargs):
        raise AssertionError("the fused kernel was called")

    monkeypatch.setitem(batchnorm._KERNELS, "tensorflow", refuse)
    x = np.random.default_rng(3).normal(size=shape).astype(np.float32)
    layers = [
        cls(momentum=MOMENTUM, **options)
        for cls in (keras.layers.BatchNormalization, FusedBatchNormalization)
    ]
    outputs = [_numpy(layer(x, training=True)) for layer in layers]
    np.testing.assert_array_equal(outputs[1], outputs[0])


def test_unknown_kind_is_refused():
    assert batch_normalization_layer("keras") is keras.layers.BatchNormalization
    assert batch_normalization_layer("fused") is FusedBatchNormalization
    with pytest.raises(ValueError, match="keras, fused"):
        batch_normalization_layer("nope")


def test_config_round_trips_to_the_fused_layer():
    layer = FusedBatchNormalization(momentum=MOMENTUM, epsilon=1e-3, name="bn")
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is FusedBatchNormalization
    assert again.get_config() == layer.get_config()
    assert (
        layer.get_config()
        == keras.layers.BatchNormalization(momentum=MOMENTUM, name="bn").get_config()
    )


def test_cvnet_has_the_same_layers_and_parameters_with_either_kind():
    from segbench.benchmark.cvnet import build_cvnet

    models = {kind: build_cvnet(1 / 16, batchnorm=kind) for kind in ("keras", "fused")}
    assert models["fused"].count_params() == models["keras"].count_params() == 87_311
    assert [layer.name for layer in models["fused"].layers] == [
        layer.name for layer in models["keras"].layers
    ]
    norms = [
        layer
        for layer in models["fused"].layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 26 and all(type(layer) is FusedBatchNormalization for layer in norms)
    assert {layer.momentum for layer in norms} == {MOMENTUM}


@on_tensorflow  # synchronized=True is for tensorflow alone
def test_cvnet_fused_and_synchronized_uses_keras_synchronized_layer():
    from segbench.benchmark.cvnet import build_cvnet

    model = build_cvnet(1 / 16, synchronized_bn=True, batchnorm="fused")
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(
        type(layer) is keras.layers.BatchNormalization and layer.synchronized for layer in norms
    )


def test_cvnet_refuses_an_unknown_kind_and_fused_on_keras_2():
    from segbench.benchmark.cvnet import build_cvnet

    with pytest.raises(ValueError, match="keras, fused"):
        build_cvnet(1 / 16, batchnorm="nope")
    fake_keras_2 = type(sys)("tf_keras")  # any module other than Keras 3's
    with pytest.raises(ValueError, match="Keras 3"):
        build_cvnet(1 / 16, keras_module=fake_keras_2, batchnorm="fused")


if __name__ == "__main__":  # the torch test's child process: KERAS_BACKEND=torch
    print(json.dumps([equivalence(data_format=f) for f in ("channels_last", "channels_first")]))
