"""The numerics check: numpy-drawn initial weights, the shipped CPU reference, the same losses
on the jax backend, and a deliberately broken computation caught at the right step."""

import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from segbench.benchmark import cvnet
from segbench.benchmark.config import PRESETS
from segbench.benchmark.cvnet import PUBLISHED_PARAMETERS, build_cvnet
from segbench.benchmark.weights import KERNEL_INITIALIZERS, fans, seed_weights
from segbench.measure.numerics import (
    DEVIATES,
    MATCH,
    TOLERANCE,
    advice,
    judge,
    probe_losses,
    shipped_reference,
)
from segbench.measure.run import compilation


def kernels(model):
    return {w.path: np.asarray(w.numpy()) for w in model.weights if "kernel" in w.path}


def test_initial_weights_come_from_the_seed_with_keras_limits():
    a, b, other = (build_cvnet(1 / 16, dropout=False) for _ in range(3))
    seed_weights(a, 42)
    seed_weights(b, 42)
    seed_weights(other, 7)
    assert a.count_params() == 87_311
    ka, kb, ko = kernels(a), kernels(b), kernels(other)
    assert all(np.array_equal(ka[name], kb[name]) for name in ka)
    assert not any(np.array_equal(ka[name], ko[name]) for name in ka)
    # Every kernel within its initializer's limit; the largest one fills its range.
    limits = {}
    for layer in a.layers:
        for w in layer.weights:
            name = w.path.split("/")[-1]
            if name in KERNEL_INITIALIZERS:
                rule = type(getattr(layer, KERNEL_INITIALIZERS[name])).__name__
                fan_in, fan_out = fans(tuple(w.shape))
                limits[w.path] = math.sqrt(
                    6 / (fan_in if rule == "HeUniform" else fan_in + fan_out)
                )
    assert set(limits) == set(ka) and len(ka) > 30
    assert all(np.abs(ka[p]).max() <= limit for p, limit in limits.items())
    largest = max(ka, key=lambda p: ka[p].size)
    assert np.abs(ka[largest]).max() > 0.99 * limits[largest]
    gamma = [w for w in a.weights if w.path.endswith("gamma")]
    assert all(np.all(np.asarray(w.numpy()) == 1) for w in gamma)


def test_the_published_model_keeps_its_parameter_count():
    model = build_cvnet(1.0)
    seed_weights(model, 42)
    assert model.count_params() == PUBLISHED_PARAMETERS


def test_the_shipped_reference_says_how_it_was_made():
    # Recomputed and matched to this file in test_cli's smoke run (TensorFlow, CPU, float32).
    reference = shipped_reference()
    made = reference["provenance"]
    assert (made["device"], made["precision"], made["steps"], made["seed"]) == (
        "CPU",
        "float32",
        3,
        42,
    )
    assert made["width"] == 1 / 16 and made["tensorflow"] == "2.19.1"
    losses = reference["losses"]
    assert len(losses) == 4 and losses == sorted(losses, reverse=True)  # it trains


@pytest.mark.slow
def test_a_changed_activation_deviates_at_the_first_loss(monkeypatch):
    monkeypatch.setattr(cvnet, "_LEAK", 0.3)  # LeakyReLU slope 0.3 instead of 0.2
    with keras.device("cpu"):
        checked = judge(probe_losses(PRESETS["smoke"]), "float32", shipped_reference())
    assert checked.status == DEVIATES and checked.at_step == 0
    assert checked.max_rel_diff > 5 * TOLERANCE["float32"]


@pytest.mark.slow
def test_a_changed_optimizer_deviates_from_the_first_step_on(monkeypatch):
    monkeypatch.setattr(compilation, "MOMENTUM", 0.5)  # the forward pass is right, training is not
    with keras.device("cpu"):
        checked = judge(probe_losses(PRESETS["smoke"]), "float32", shipped_reference())
    assert checked.status == DEVIATES and checked.at_step == 1


def test_judgement_of_nan_and_of_each_precision():
    reference = {"losses": [1.0, 0.9, 0.8, 0.7], "provenance": shipped_reference()["provenance"]}
    nan = judge([1.0, 0.9, float("nan"), 0.7], "float32", reference)
    assert (nan.status, nan.at_step, nan.max_rel_diff) == (DEVIATES, 2, None)
    close = judge([1.0, 0.9, 0.8, 0.7 * (1 + 2.5e-3)], "mixed_bfloat16", reference)
    assert (close.status, close.at_step) == (MATCH, 3)
    assert close.max_rel_diff == pytest.approx(2.5e-3)
    assert judge([1.0, 0.9, 0.8, 0.7 * (1 + 2.5e-3)], "float32", reference).status == DEVIATES


# One jax child for every jax test here: the framework imported once, three models compiled.
JAX_PROBE = """
import json
from dataclasses import replace
from segbench.measure import backend
backend.select_backend("jax")
import keras
from segbench.benchmark import cvnet
from segbench.benchmark.config import PRESETS
from segbench.measure.numerics import probe_losses
bfloat16 = replace(PRESETS["smoke"], precision="mixed_bfloat16", backend="jax")
with keras.device("cpu"):
    float32 = probe_losses(PRESETS["smoke"])
    shipped = probe_losses(bfloat16)
    cvnet._LEAK = 0.3  # a stand-in corrupt kernel: LeakyReLU slope 0.3 instead of 0.2
    corrupt = probe_losses(bfloat16)
found = {"float32": float32, "shipped": shipped, "corrupt": corrupt}
print(json.dumps({**found, "backend": keras.backend.backend()}))
"""


@pytest.fixture(scope="module")
def jax_losses():
    pytest.importorskip("jax", reason="the jax extra is not installed (uv sync --extra jax)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_PROBE],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


# One test for the one jax child (about 140 s here): with several, the suite's two workers
# each ran the child.
@pytest.mark.slow
def test_jax_on_the_cpu_matches_drifts_within_bfloat16s_limit_and_a_corrupt_kernel_deviates(
    jax_losses,
):
    # float32 on jax matches the TensorFlow reference.
    assert jax_losses["backend"] == "jax"
    checked = judge(jax_losses["float32"], "float32", shipped_reference())
    assert checked.status == MATCH, checked
    # mixed_bfloat16 on jax matches within its measured drift (beyond the common tolerance).
    checked = judge(jax_losses["shipped"], "mixed_bfloat16", shipped_reference(), "jax")
    assert checked.status == MATCH, checked
    assert checked.max_rel_diff > TOLERANCE["mixed_bfloat16"]  # the drift the table allows for
    # A corrupt kernel on jax mixed_bfloat16 still deviates at the first loss.
    checked = judge(jax_losses["corrupt"], "mixed_bfloat16", shipped_reference(), "jax")
    assert (checked.status, checked.at_step) == (DEVIATES, 0)
    assert checked.tolerance == TOLERANCE["mixed_bfloat16"]


def test_only_jax_bfloat16_gets_the_looser_limit_after_the_first_update():
    reference = {"losses": [1.0, 0.9, 0.8, 0.7], "provenance": shipped_reference()["provenance"]}
    drifted = [1.0, 0.9 * 1.013, 0.8 * 1.036, 0.7 * 1.068]  # as measured on jax bfloat16
    assert judge(drifted, "mixed_bfloat16", reference, "jax").status == MATCH
    assert judge(drifted, "mixed_bfloat16", reference, "tensorflow").status == DEVIATES
    assert judge(drifted, "float32", reference, "jax").status == DEVIATES


def test_advice_for_a_cpu_run_never_says_device_cpu():
    on_cpu = advice("cpu", "jax", "mixed_bfloat16")
    assert "--device cpu" not in on_cpu
    assert "--backend tensorflow (not jax)" in on_cpu
    assert "--precision float32 (not mixed_bfloat16)" in on_cpu
    assert "--device cpu" not in advice("cpu", "tensorflow", "float32")
    assert "--device cpu" in advice("gpu", "tensorflow", "float32")


def test_compare_warns_a_deviating_cpu_run_without_device_cpu():
    from pathlib import Path

    from segbench.results.caveats import numerics_caveats
    from segbench.results.result import Result

    results = Path(__file__).parents[1] / "docs" / "results"
    data = json.loads(sorted(results.glob("segbench-quick-cpu-*.json"))[0].read_text())
    data["config"].update(backend="jax", precision="mixed_bfloat16")
    data["numerics"] = {"status": "deviates", "max_rel_diff": 0.2, "at_step": 3, "tolerance": 0.14}
    (note,) = numerics_caveats(Result.from_dict(data))
    assert "tolerance 0.14" in note and "--device cpu" not in note
