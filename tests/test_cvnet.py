import keras
import numpy as np
import pytest

from segbench.benchmark.cvnet import (
    PUBLISHED_PARAMETERS,
    build_cvnet,
    channels,
    forward_flops_per_image,
    training_flops_per_image,
)


def test_published_width_has_exact_parameter_count():
    model = build_cvnet(1.0)
    assert model.count_params() == PUBLISHED_PARAMETERS == 20_886_706
    assert model.input_shape == (None, 512, 512, 1)
    assert model.output_shape == (None, 512, 512, 1)
    assert model.layers[0].name == "input"
    assert model.layers[-1].name == "output"


def test_published_model_costs_129_gflop_per_training_image():
    model = build_cvnet(1.0)
    assert forward_flops_per_image(model) / 1e9 == pytest.approx(43.1, abs=0.05)
    assert training_flops_per_image(model) / 1e9 == pytest.approx(129.4, abs=0.1)


def test_narrow_width_scales_channels_and_cost_not_image():
    narrow = build_cvnet(0.5)
    assert narrow.input_shape == (None, 512, 512, 1)
    assert narrow.count_params() == 5_245_226
    # Convolution cost is quadratic in width, so half width costs about a quarter.
    ratio = forward_flops_per_image(narrow) / forward_flops_per_image(build_cvnet(1.0))
    assert 0.24 < ratio < 0.26
    assert channels(8, 1 / 16) == 1 and channels(2048, 1 / 16) == 128


def test_non_positive_width_is_rejected():
    with pytest.raises(ValueError, match="width"):
        build_cvnet(0)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_output_is_float32_probability_map_under_every_policy(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = build_cvnet(1 / 16)
        x = np.random.default_rng(0).random((2, 512, 512, 1), dtype=np.float32)
        y = keras.ops.convert_to_numpy(model(x, training=False))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert y.shape == (2, 512, 512, 1)
    assert y.dtype == np.float32
    assert np.isfinite(y).all()
    assert y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.parametrize("width", [1.0, 0.5, 0.3, 1 / 16])
def test_architecture_flop_count_equals_the_built_models(width):
    from segbench.benchmark.cvnet import architecture_forward_flops

    assert architecture_forward_flops(width) == forward_flops_per_image(build_cvnet(width))


def test_published_gflop_comes_from_the_architecture():
    from segbench.benchmark.cvnet import published_training_gflop_per_image

    assert published_training_gflop_per_image() == pytest.approx(129.3979104, abs=1e-7)


def test_keras_2_builds_the_published_model_with_the_same_parameters():
    from segbench.measure.generation import load

    tf_keras = load(2).keras
    model = build_cvnet(1.0, keras_module=tf_keras)
    assert type(model).__module__.startswith("tf_keras")
    assert model.count_params() == PUBLISHED_PARAMETERS
    assert [layer.name for layer in model.layers][:2] == ["input", "stem_conv"]


def test_head_convolutions_use_he_uniform_as_the_authors_program():
    model = build_cvnet(1 / 16)
    for name in ("head_conv", "head_convt"):
        assert model.get_layer(name).kernel_initializer.__class__.__name__ == "HeUniform"
    assert model.get_layer("stem_conv").kernel_initializer.__class__.__name__ == "GlorotUniform"
