"""--data-format channels_first: the same CV-net, weights and loss with the channel axis first.

The model is held against its channels_last build (same layers, weights, outputs and loss, with
Keras's and the fused batch norm), a smoke run records the layout and its numerics match the
channels_last reference, and tune searches it.
"""

from __future__ import annotations

import json
from dataclasses import replace

import fastjsonschema
import keras
import numpy as np
import pytest
from cli_helpers import error_lines, segbench
from conftest import needs_nchw

from segbench.benchmark.config import PRESETS
from segbench.benchmark.cvnet import build_cvnet
from segbench.benchmark.losses import loss_and_metrics
from segbench.benchmark.triangles import in_layout
from segbench.benchmark.weights import seed_weights
from segbench.measure import tune
from segbench.results.result import shipped_schema

WIDTH = 1 / 16
SIZE = 512  # the smallest input CV-net builds (its valid convolutions need the room)


def _pair(batchnorm: str = "keras") -> list[keras.Model]:
    models = [
        build_cvnet(WIDTH, SIZE, dropout=False, batchnorm=batchnorm, data_format=f)
        for f in ("channels_last", "channels_first")
    ]
    for model in models:
        seed_weights(model, 7)
    return models


@needs_nchw
@pytest.mark.parametrize("batchnorm", ["keras", "fused"])
@pytest.mark.slow
def test_channels_first_is_the_same_model_with_the_channel_axis_moved(batchnorm):
    last, first = _pair(batchnorm)
    assert first.input_shape == (None, 1, SIZE, SIZE) and last.input_shape == (None, SIZE, SIZE, 1)
    assert [layer.name for layer in first.layers] == [layer.name for layer in last.layers]
    assert first.count_params() == last.count_params()
    for a, b in zip(first.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the same weights from the same seed
    x = np.random.default_rng(0).uniform(size=(2, SIZE, SIZE, 1)).astype(np.float32)
    y = (x > 0.5).astype(np.float32)
    out_last = keras.ops.convert_to_numpy(last(x, training=True))
    out_first = keras.ops.convert_to_numpy(first(in_layout(x, "channels_first"), training=True))
    assert out_first.shape == (2, 1, SIZE, SIZE)
    # float32 sums in another order through 40 layers: about 2e-5 apart at most.
    np.testing.assert_allclose(np.moveaxis(out_first, 1, -1), out_last, atol=1e-4)
    # The loss and metrics reduce over height and width in either layout.
    for f_last, f_first in zip(
        loss_and_metrics(keras.ops, "channels_last"),
        loss_and_metrics(keras.ops, "channels_first"),
        strict=True,
    ):
        a = keras.ops.convert_to_numpy(f_last(y, out_last))
        b = keras.ops.convert_to_numpy(
            f_first(in_layout(y, "channels_first"), in_layout(out_last, "channels_first"))
        )
        assert a.shape == b.shape == (2,)
        np.testing.assert_allclose(b, a, rtol=1e-6)


@pytest.mark.slow
def test_a_smoke_run_records_the_layout_and_its_numerics_match(small_dataset, tmp_path):
    done = segbench(
        *("run", "--preset", "smoke", "--device", "cpu", "--data", str(small_dataset)),
        *("--data-format", "channels_first", "--batchnorm", "fused"),
        *("--no-peak", "--no-telemetry", "--out", "res"),
        "--json",
        cwd=tmp_path,
        # TensorFlow's CPU NCHW kernels are oneDNN's, on by default only with AVX-512.
        env={"TF_ENABLE_ONEDNN_OPTS": "1"},
    )
    assert done.returncode == 0, done.stderr
    assert "channels_first" in done.stderr.splitlines()[0]  # the plan line names it
    stored = json.loads(next((tmp_path / "res").iterdir()).read_text())
    fastjsonschema.validate(shipped_schema(), stored)
    assert stored["config"]["data_format"] == "channels_first"
    # The probe trained channels_first on the fused kernel and matched the channels_last
    # reference (CPU float32, Keras's layer) within its tolerance.
    assert stored["numerics"]["status"] == "match"
    assert stored["model"]["batchnorm"] == "fused"
    assert stored["status"] == "complete" and len(stored["steps"]) >= 4


def test_a_layout_that_cannot_work_is_refused_in_one_line(tmp_path):
    done = segbench(
        "run", "--model", "examples/unet.py:build", "--data-format", "channels_first", cwd=tmp_path
    )
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "error: --data-format is for CV-net: a --model keeps its own layout"
    ]
    with pytest.raises(ValueError, match="channels_last, channels_first"):
        replace(PRESETS["smoke"], data_format="nhwc").validate()


def test_tune_searches_the_layout_where_the_backend_is_installed():
    installed = {"tensorflow": True, "jax": True, "torch": False}
    planned = tune.plan(PRESETS["quick"], installed)
    first = [(s, why) for s, why in planned if s.data_format == "channels_first"]
    assert {s.backend for s, _ in first} == {"tensorflow", "jax", "torch"}
    assert all((why is None) == installed[s.backend] for s, why in first)
    setting = next(s for s, _ in first if s.backend == "tensorflow")
    assert setting.flags()[-2:] == ["--data-format", "channels_first"]
    assert setting.label.endswith(" · channels_first")
    trial = tune.trial_of(setting, "ran", "segbench run …")
    assert tune.setting_of(trial) == setting  # what the result file keeps names the setting
    default = planned[0][0]
    assert "--data-format" not in default.flags() and default.data_format == "channels_last"
