"""Own models (--model SPEC): loading, errors, synthetic data, digest, FLOP counts."""

from __future__ import annotations

import hashlib
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from segbench.benchmark import cvnet, reference_models
from segbench.benchmark.model_spec import ModelError, load_model_function
from segbench.benchmark.own_model import (
    build_own_model,
    parse_model_args,
    synthetic_data,
    synthetic_split,
)
from segbench.cli import exit_code
from segbench.errors import BadInput
from segbench.measure.flops import count_flops

REPO = Path(__file__).resolve().parent.parent

MODELS = """
import keras
from keras import layers


def tiny(size=8, filters=2, activation="sigmoid", classes=1):
    inputs = keras.Input((size, size, 1))
    x = layers.Conv2D(filters, 3, padding="same")(inputs)
    outputs = layers.Conv2D(classes, 1, activation=activation)(x)
    return keras.Model(inputs, outputs)


def compiled():
    model = tiny()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", metrics=["mae"])
    return model


def with_loss():
    return tiny(), "mse"


def as_dict():
    return {"model": tiny(), "optimizer": keras.optimizers.Adam()}


def softmax_behind_reshape():
    inputs = keras.Input((4, 4, 1))
    x = layers.Flatten()(inputs)
    x = layers.Dense(6, activation="softmax")(x)
    return keras.Model(inputs, layers.Reshape((2, 3))(x))


def raises():
    raise ValueError("boom\\nsecond line")


def dynamic():
    inputs = keras.Input((None, None, 3))
    return keras.Model(inputs, layers.Conv2D(1, 1)(inputs))


def two_inputs():
    a, b = keras.Input((4,)), keras.Input((4,))
    return keras.Model([a, b], layers.Add()([a, b]))


def two_outputs():
    a = keras.Input((4,))
    return keras.Model(a, [layers.Dense(1)(a), layers.Dense(2)(a)])


def no_input():
    return keras.Sequential([layers.Dense(3)])


def a_layer():
    return layers.Dense(3)


def a_number():
    return 42


def three_values():
    return tiny(), "mse", "sgd"


def bad_dict():
    return {"model": tiny(), "lr": 0.1}
"""


@pytest.fixture
def models_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """models.py in a temporary current folder; its spec prefix, relative to that folder."""
    (tmp_path / "models.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    return "models.py"


@pytest.fixture(scope="module")
def cvnet_width_1() -> keras.Model:
    return cvnet.build_cvnet(1.0)


def test_file_spec_builds_the_model_with_its_arguments(models_file):
    own = build_own_model(f"{models_file}:tiny", {"size": 16, "filters": 4})
    assert own.function == "tiny"
    assert own.args == {"size": 16, "filters": 4}
    assert own.input_shape == (16, 16, 1) and own.output_shape == (16, 16, 1)
    assert own.parameters == (9 * 4 + 4) + (4 + 1)
    assert own.activation == "sigmoid"
    assert (own.loss_name, own.loss_origin) == ("binary_crossentropy", "default")
    assert not own.optimizer_given
    source = Path(models_file).resolve()
    assert own.source == source
    assert own.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert own.record()["args"] == {"filters": 4, "size": 16}


def test_module_spec_is_found_in_the_current_folder(tmp_path, monkeypatch):
    name = f"own_models_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(MODELS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, name, raising=False)
    try:
        assert load_model_function(f"{name}:tiny").__name__ == "tiny"
        own = build_own_model(f"{name}:tiny")
    finally:
        sys.modules.pop(name, None)
    assert own.source == (tmp_path / f"{name}.py").resolve()
    assert own.output_shape == (8, 8, 1)


def test_module_without_a_file_has_no_source_digest(monkeypatch):
    module = types.ModuleType("fileless_models")
    exec(compile(MODELS, "<models>", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "fileless_models", module)
    own = build_own_model("fileless_models:tiny")
    assert own.source is None and own.source_sha256 is None
    assert len(own.digest) == 64


def test_model_args_are_parsed_as_literals():
    args = parse_model_args(
        ["a=8", "b=0.5", "c=true", "d=None", "e=(64, 64)", "f=relu", "g='x y'", "h=", "i=a=b"]
    )
    assert args == {
        "a": 8,
        "b": 0.5,
        "c": True,
        "d": None,
        "e": (64, 64),
        "f": "relu",
        "g": "x y",
        "h": "",
        "i": "a=b",
    }
    assert parse_model_args([]) == {}


@pytest.mark.parametrize("item", ["novalue", "=3", "1x=3", "class=3", "a b=1"])
def test_malformed_model_arg_is_a_usage_error(item):
    with pytest.raises(BadInput, match="--model-arg") as caught:
        parse_model_args([item])
    assert exit_code(caught.value) == 2


def test_model_arg_given_twice_is_refused():
    with pytest.raises(BadInput, match="given twice"):
        parse_model_args(["a=1", "a=2"])


@pytest.mark.parametrize(
    ("spec", "args", "says"),
    [
        ("models.py:raises", {}, r"raises\(\) raised ValueError: boom; fix the function"),
        ("models.py:missing", {}, "has no function 'missing'"),
        ("models.py:tiny", {"width": 2}, "unexpected keyword argument 'width'.*it takes: size"),
        ("no_such_models_pkg.sub:build", {}, "no module named 'no_such_models_pkg'"),
        ("nowhere/models.py:build", {}, "file not found"),
        ("models.py", {}, "expected package.module:function or path/to/file.py:function"),
        ("models.py:dynamic", {}, r"input shape \(None, None, None, 3\) is not static"),
        ("models.py:two_inputs", {}, "takes 2 inputs"),
        ("models.py:two_outputs", {}, "has 2 outputs"),
        ("models.py:no_input", {}, "no input shape: build it on keras.Input"),
        ("models.py:a_layer", {}, "returned a layer"),
        ("models.py:a_number", {}, "returned a value of type int; expected a keras.Model"),
        ("models.py:three_values", {}, "returned 3 values"),
        ("models.py:bad_dict", {}, "dict with keys"),
    ],
)
def test_a_bad_model_is_one_line_naming_the_spec_exit_2(models_file, spec, args, says):
    with pytest.raises(ModelError, match=says) as caught:
        build_own_model(spec, args)
    message = str(caught.value)
    assert message.startswith(f"--model {spec}: ")
    assert "\n" not in message
    assert isinstance(caught.value, BadInput) and exit_code(caught.value) == 2


def test_a_file_that_fails_to_import_is_named(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("def build(:\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=r"importing .*broken\.py raised SyntaxError"):
        build_own_model("broken.py:build")


def test_compiled_model_keeps_its_loss_optimizer_and_metrics(models_file):
    own = build_own_model(f"{models_file}:compiled")
    assert (own.loss, own.loss_origin) == ("mse", "compiled")
    assert isinstance(own.optimizer, keras.optimizers.SGD) and own.optimizer_given
    assert own.metrics == ["mae"]
    record = own.record()
    assert (record["loss"], record["optimizer"], record["metrics"]) == ("mse", "SGD", ["mae"])


def test_tuple_and_dict_returns_give_loss_and_optimizer(models_file):
    tupled = build_own_model(f"{models_file}:with_loss")
    assert (tupled.loss, tupled.loss_origin, tupled.optimizer) == ("mse", "function", None)
    given = build_own_model(f"{models_file}:as_dict")
    assert given.loss_origin == "default"
    assert isinstance(given.optimizer, keras.optimizers.Adam)


def test_default_loss_follows_the_output_activation(models_file):
    softmax = build_own_model(f"{models_file}:softmax_behind_reshape")
    assert (softmax.activation, softmax.loss_name) == ("softmax", "categorical_crossentropy")
    linear = build_own_model(f"{models_file}:tiny", {"activation": None})
    assert (linear.activation, linear.loss_name) == ("linear", "mean_squared_error")
    relu = build_own_model(f"{models_file}:tiny", {"activation": "relu"})
    assert relu.activation == "linear"


def test_synthetic_masks_are_binary_and_fixed_by_the_seed(models_file):
    own = build_own_model(f"{models_file}:tiny")
    x, y = synthetic_data(own, 5, seed=3)
    assert x.shape == (5, 8, 8, 1) and y.shape == (5, 8, 8, 1)
    assert x.dtype == y.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert set(np.unique(y)) == {0.0, 1.0}
    again = synthetic_data(own, 5, seed=3)
    assert np.array_equal(x, again[0]) and np.array_equal(y, again[1])
    assert not np.array_equal(x, synthetic_data(own, 5, seed=4)[0])
    split = synthetic_split(own, 5, seed=3)
    assert split.images.dtype == np.uint8 and len(split) == 5 and len(split.sha256) == 64


def test_synthetic_softmax_targets_are_one_hot(models_file):
    own = build_own_model(f"{models_file}:tiny", {"activation": "softmax", "classes": 4})
    _, y = synthetic_data(own, 6, seed=0)
    assert y.shape == (6, 8, 8, 4)
    assert np.array_equal(y.sum(axis=-1), np.ones((6, 8, 8), np.float32))
    assert set(np.unique(y)) == {0.0, 1.0}


def test_synthetic_linear_targets_are_values_in_0_1(models_file):
    own = build_own_model(f"{models_file}:tiny", {"activation": None})
    _, y = synthetic_data(own, 4, seed=0)
    assert y.min() >= 0.0 and y.max() <= 1.0 and len(np.unique(y)) > 2


def test_digest_is_stable_and_changes_with_args_and_source(models_file):
    spec = f"{models_file}:tiny"
    first = build_own_model(spec, {"filters": 2})
    # Built again in the same process, Keras names the layers conv2d_2… instead of conv2d…
    assert build_own_model(spec, {"filters": 2}).digest == first.digest
    assert build_own_model(spec, {"filters": 3}).digest != first.digest
    Path(models_file).write_text(MODELS + "\n# an edit\n")
    edited = build_own_model(spec, {"filters": 2})
    assert edited.source_sha256 != first.source_sha256
    assert edited.digest != first.digest


def test_generic_flops_reproduce_cvnets_published_figure(cvnet_width_1):
    count = count_flops(cvnet_width_1)
    assert count.forward_per_sample == cvnet.forward_flops_per_image(cvnet_width_1)
    assert count.forward_per_sample == cvnet.architecture_forward_flops(1.0)
    assert count.forward_per_sample / 1e9 == pytest.approx(43.1, abs=0.05)
    assert count.training_per_sample / 1e9 == pytest.approx(
        cvnet.published_training_gflop_per_image()
    )
    assert set(count.by_kind) == {"Conv2D", "Conv2DTranspose", "SeparableConv2D"}
    assert count.zero_cost["BatchNormalization"] == 26
    assert count.complete and not count.assumed_zero


def test_generic_flops_match_cvnet_at_a_small_width():
    model = cvnet.build_cvnet(1 / 8)
    assert count_flops(model).forward_per_sample == cvnet.architecture_forward_flops(1 / 8)


def resnet50_v1_macs() -> int:
    """ResNet-50 v1 (stride in each stage's first 1×1 convolution) at 224², by hand."""
    macs = 112 * 112 * 7 * 7 * 3 * 64  # stem, stride 2; then 3×3 max pooling to 56²
    size, c_in = 56, 64
    for blocks, f, stride in ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)):
        for block in range(blocks):
            out = size // (stride if block == 0 else 1)
            macs += out * out * (c_in * f + 9 * f * f + f * 4 * f)
            if block == 0:
                macs += out * out * c_in * 4 * f  # projection shortcut
            size, c_in = out, 4 * f
    return macs + 2048 * 1000  # the classifier


def test_resnet50_by_name_costs_3_86_gmac_forward():
    own = build_own_model("resnet50")
    assert own.parameters == reference_models.RESNET50_PARAMETERS
    assert (own.activation, own.loss_name, own.loss_origin) == (
        "softmax",
        "categorical_crossentropy",
        "function",
    )
    count = count_flops(own.model)
    assert count.forward_macs_per_sample == resnet50_v1_macs() == 3_857_973_248
    # The often-quoted 4.1 GMAC is ResNet-50 v1.5 (stride in the 3×3), which Keras's is not.
    assert count.forward_macs_per_sample / 1e9 == pytest.approx(3.8, rel=0.02)
    assert count.complete


class Scale(keras.layers.Layer):
    """A custom layer with a weight: its cost is not known."""

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],))

    def call(self, x):
        return x * self.w


class Double(keras.layers.Layer):
    """A custom layer without weights: assumed negligible."""

    def call(self, x):
        return x * 2


def test_unknown_layers_are_listed_not_guessed_and_nested_models_counted():
    inner = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(5, 3, padding="same")])
    inputs = keras.Input((4, 4, 3))
    x = Scale(name="scale")(inner(inputs))
    x = Double(name="double")(x)
    x = keras.layers.Reshape((16, 5))(x)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)
    count = count_flops(keras.Model(inputs, x))
    conv = 16 * 9 * 3 * 5
    attention = 4 * 16 * 5 * 2 * 3 + 2 * 16 * 16 * (3 + 3)  # 4 projections, 2 products
    assert count.by_kind["Conv2D"].forward_flops == 2 * conv
    assert count.by_kind["MultiHeadAttention"].forward_flops == 2 * attention
    assert count.forward_per_sample == 2 * (conv + attention)
    assert count.unknown == ("scale (Scale)",)
    assert count.assumed_zero == ("double (Double)",)
    assert not count.complete
    assert count.zero_cost == {"InputLayer": 2, "Reshape": 1}


def test_example_unet_builds_at_a_tiny_size(monkeypatch):
    monkeypatch.chdir(REPO)
    own = build_own_model(
        "examples/unet.py:build", parse_model_args(["base_filters=2", "depth=2", "image_size=16"])
    )
    assert own.input_shape == own.output_shape == (16, 16, 1)
    assert own.activation == "sigmoid" and own.loss_origin == "default"
    count = count_flops(own.model)
    assert count.complete and count.forward_per_sample > 0


def test_published_resnet50_figures_carry_source_and_conditions():
    published = reference_models.PUBLISHED["resnet50"]
    assert published
    for figure in published:
        assert figure.source.startswith("https://github.com/")
        assert figure.other_method
        assert figure.images_per_second > 0
        assert figure.framework and figure.precision and figure.clock and figure.model


@pytest.mark.parametrize("activation", ["sigmoid", "softmax", None])
def test_synthetic_data_trains_a_step_with_the_default_loss(models_file, activation):
    own = build_own_model(f"{models_file}:tiny", {"activation": activation, "classes": 3})
    own.model.compile(optimizer="sgd", loss=own.loss)
    x, y = synthetic_data(own, 4, seed=1)
    history = own.model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_attention_over_an_image_counts_every_pixel_pair():
    inputs = keras.Input((4, 6, 8))
    heads = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    count = count_flops(keras.Model(inputs, heads))
    pixels = 4 * 6
    attention = 4 * pixels * 8 * 2 * 4 + 2 * pixels * pixels * (4 + 4)
    assert count.forward_per_sample == 2 * attention


def test_dot_product_attention_counts_both_products():
    query, value = keras.Input((5, 8)), keras.Input((7, 3))
    outputs = keras.layers.Attention()([query, value, keras.layers.Dense(8)(value)])
    count = count_flops(keras.Model([query, value], outputs))
    assert count.by_kind["Attention"].forward_flops == 2 * 5 * 7 * (8 + 3)
