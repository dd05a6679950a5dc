"""A framework that fails mid-run ends it in one line with the likely cause, the partial
result kept; doctor FAILs a CUDA library older than TensorFlow was built with."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import pytest
from cli_helpers import segbench

from segbench import doctor
from segbench.doctor import diagnose
from segbench.results.result import diverged_at, load_result

# One environment with three faults users report, for one run: TensorFlow's dropout ignores
# its seed (every draw the same mask, as tf.random on some Metal set-ups), and the training
# step fails like a cuDNN that cannot initialise from the third timed step of a batch of 3
# (the numerics probe's batches are 2 and pass); a keras.json asks for float16, channels-first.
STAND_IN = """
import keras
import tensorflow as tf
import pytest

_dropout = tf.nn.experimental.stateless_dropout


def _same_mask_every_call(x, rate, seed, rng_alg=None, noise_shape=None, name=None):
    return _dropout(x, rate=rate, seed=[1, 2], noise_shape=noise_shape, name=name)


tf.nn.experimental.stateless_dropout = _same_mask_every_call

_train_on_batch = keras.Model.train_on_batch
_calls = {"n": 0}


def _fails_later(self, x, y=None, **kwargs):
    if int(x.shape[0]) == 3:
        _calls["n"] += 1
        if _calls["n"] > 4:  # compile, warm-up, two timed steps
            raise tf.errors.UnknownError(
                None, None, "Failed to get convolution algorithm. This is probably because "
                "cuDNN failed to initialize, so try looking to see if a warning log message "
                "was printed above. [Op:Conv2D]"
            )
    return _train_on_batch(self, x, y, **kwargs)


keras.Model.train_on_batch = _fails_later
"""


@pytest.mark.slow
def test_a_framework_error_mid_run_is_one_line_and_keeps_the_partial_result(tmp_path):
    """Also: keras.json is pinned and recorded, a constant generator deviates, and doctor's
    warnings are shown before timing and under the tables."""
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(STAND_IN)
    keras_home = tmp_path / "keras-home"
    keras_home.mkdir()
    (keras_home / "keras.json").write_text(
        json.dumps({"floatx": "float16", "image_data_format": "channels_first", "epsilon": 1e-7})
    )
    env = {"PYTHONPATH": str(stand_in), "KERAS_HOME": str(keras_home)}
    done = segbench(
        "run",
        "--preset",
        "smoke",
        "--batch-size",
        "3",
        "--warmup",
        "1",
        "--steps",
        "5",
        "--no-telemetry",
        "--out",
        "out",
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the framework failed after 2 timed step(s) (UnknownError: ")
    assert "likely cause: cuDNN failed (no nvidia-cudnn-cu12 wheel" in last
    assert "uv sync --extra cuda --locked" in last
    (path,) = (tmp_path / "out").glob("segbench-*.json")
    assert last.endswith(f"the partial result is in {Path('out') / path.name}")
    result = load_result(path)
    assert (result.status, result.interrupted_by) == ("interrupted", "error")
    assert result.summary.steps == 2
    assert result.failure in last
    assert result.peak is None or result.peak.measured_tflops is None

    recorded = result.environment.settings
    assert recorded["keras.floatx"] == f"float32 (pinned; {keras_home}/keras.json asks float16)"
    assert recorded["keras.image_data_format"].startswith("channels_last (pinned;")
    assert recorded["KERAS_HOME"] == str(keras_home)
    assert (result.numerics.status, result.numerics.random_ok) == ("deviates", False)
    assert "two dropout draws at rate 0.5 are identical" in result.numerics.random
    # The WARN before timing (stderr, ahead of the timed phase) and again under the tables.
    warned = f"warning: settings: {keras_home}/keras.json sets floatx=float16"
    assert warned in done.stderr and warned in done.stdout
    assert done.stderr.index(warned) < done.stderr.index("· timed")


def test_an_older_cudnn_than_the_build_is_a_fail():
    wanted = diagnose.built_with("tensorflow")  # from the installed TensorFlow's metadata
    assert any(r.startswith("nvidia-cudnn-cu12 ") for r in metadata.requires("tensorflow"))
    installed = {"tensorflow": "2.19.1", "nvidia-cudnn-cu12": "9.1.0.70"}
    check = doctor.check_cuda_libraries(installed, wanted, "tensorflow")
    assert check.status == "FAIL"
    assert check.found == (
        "older than TensorFlow was built with: "
        f"nvidia-cudnn-cu12 9.1.0.70 (built with {wanted['nvidia-cudnn-cu12']})"
    )
    same = {**installed, "nvidia-cudnn-cu12": wanted["nvidia-cudnn-cu12"]}
    assert doctor.check_cuda_libraries(same, wanted, "tensorflow").status == "PASS"
    assert doctor.check_cuda_libraries({}, wanted, "tensorflow").status == "SKIP"


def test_causes_name_the_library_and_the_versions_seen():
    seen = {"nvidia-cublas-cu12": "12.3.4.1"}
    cause, fix = diagnose.explain(
        "InternalError: CUBLAS_STATUS_NOT_INITIALIZED", seen, {"cuda_version": "12.5.1"}
    )
    assert cause.startswith("cuBLAS failed (nvidia-cublas-cu12 12.3.4.1, TensorFlow built with 12.")
    assert "cuda_version 12.5.1" in cause and "uv sync --extra cuda" in fix
    assert diagnose.explain("ResourceExhaustedError: OOM when allocating", {}, {})[0] == (
        "the device ran out of memory"
    )


def test_a_nan_loss_in_the_timed_steps_is_recorded():
    result = load_result(Path("docs/results/segbench-quick-cpu-20261126T162833Z.json"))
    assert diverged_at(result.config, result.steps) is None
    timed = [i for i, s in enumerate(result.steps) if s.phase == "timed"]
    steps = list(result.steps)
    steps[timed[3]] = replace(steps[timed[3]], loss=math.nan)
    assert diverged_at(result.config, steps) == (
        f"the loss became NaN at timed step 4 of {len(timed)}"
    )
    steps[timed[1]] = replace(steps[timed[1]], loss=math.inf)
    assert diverged_at(result.config, steps).startswith("the loss became infinite at timed step 2")
