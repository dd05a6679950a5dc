"""What the run measures is what it says: global Keras settings, the random path, the device
judged, and doctor's warnings in front of the person running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segbench import doctor
from segbench.doctor.software import check_settings
from segbench.measure import numerics, settings


def test_a_refused_variable_fails_the_settings_check_naming_it(tmp_path):
    found = settings.survey({"HOME": str(tmp_path), "TF_ENABLE_AUTO_MIXED_PRECISION": "1"})
    check = check_settings(found)
    assert check.status == "FAIL"
    assert check.found == "TF_ENABLE_AUTO_MIXED_PRECISION set: rewrites float32 graphs to float16"
    assert check.fix.startswith("unset TF_ENABLE_AUTO_MIXED_PRECISION")
    auto_jit = settings.survey({"HOME": str(tmp_path), "TF_XLA_FLAGS": "--tf_xla_auto_jit=2"})
    assert "TF_XLA_FLAGS" in auto_jit.refused
    off = settings.survey({"HOME": str(tmp_path), "TF_XLA_FLAGS": "--tf_xla_auto_jit=0"})
    assert off.refused == {} and off.recorded == {"TF_XLA_FLAGS": "--tf_xla_auto_jit=0"}
    kept = check_settings(settings.survey({"HOME": str(tmp_path), "TF_ENABLE_ONEDNN_OPTS": "0"}))
    assert (kept.status, kept.found) == ("WARN", "kept as set: TF_ENABLE_ONEDNN_OPTS=0")
    clean = check_settings(settings.survey({"HOME": str(tmp_path)}))
    assert clean.status == "PASS"


@pytest.mark.slow
def test_the_variable_keras_sets_itself_on_another_backend_is_not_the_users(tmp_path):
    # Keras on jax/torch/numpy sets TF_FORCE_GPU_ALLOW_GROWTH=true at import: no warning, not
    # recorded as the user's setting; on TensorFlow a user's value is kept and recorded.
    code = (
        "import keras; from segbench.measure import settings; "
        "print(sorted(settings.survey().recorded))"
    )
    env = {k: v for k, v in os.environ.items() if k not in settings.RECORDED}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "HOME": str(tmp_path), "KERAS_BACKEND": "numpy"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "[]"), done.stderr
    on_tf = {"HOME": str(tmp_path), "KERAS_BACKEND": "tensorflow"}
    kept = settings.survey({**on_tf, "TF_FORCE_GPU_ALLOW_GROWTH": "true"})
    assert kept.recorded == {"TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def test_an_unreadable_keras_json_is_a_warning(tmp_path):
    (tmp_path / ".keras").mkdir()
    (tmp_path / ".keras" / "keras.json").write_text("{not json")
    check = check_settings(settings.survey({"HOME": str(tmp_path)}))
    assert check.status == "WARN" and "keras.json unreadable (~/.keras/keras.json" in check.found


def test_a_biased_or_constant_generator_is_named():
    rng = np.random.default_rng(0)
    shape = numerics.DROPOUT_SHAPE

    def draw(rate, keep):
        return np.where(rng.random(shape) < keep, 1 / (1 - rate), 0.0).astype(np.float32)

    fine = [(r, [draw(r, 1 - r), draw(r, 1 - r)]) for r in numerics.DROPOUT_RATES]
    assert numerics.judge_dropout(fine)[0]
    biased = [(r, [draw(r, 0.9), draw(r, 0.9)]) for r in numerics.DROPOUT_RATES]
    ok, what = numerics.judge_dropout(biased)
    assert not ok and "dropout at rate 0.25 keeps 90." in what and "biased" in what
    zeros = [(r, [np.zeros(shape, np.float32)] * 2) for r in numerics.DROPOUT_RATES]
    assert "keeps 0.0 %" in numerics.judge_dropout(zeros)[1]
    matched = numerics.Numerics(status=numerics.MATCH, max_rel_diff=0.0, at_step=0)
    assert numerics.with_random(matched, False, "x").status == numerics.DEVIATES


def _fake_nvidia_smi(folder: Path) -> None:
    """nvidia-smi of a machine with an RTX 3060 whose TensorFlow is a CPU-only build."""
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\necho 'NVIDIA GeForce RTX 3060, 575.64.03, 8.6, 12288, 11800'\n")
    script.chmod(0o755)


@pytest.mark.slow
def test_device_cpu_on_a_gpu_host_with_cpu_only_tensorflow_is_judged_for_the_cpu(
    tmp_path, monkeypatch
):
    _fake_nvidia_smi(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    for device, status in (("cpu", "SKIP"), ("auto", "FAIL")):
        context = doctor.Context(preset="smoke", width=1 / 16, batch_size=2, device=device)
        checks = {c.id: c for c in doctor.run_checks(doctor.gather(context), context)}
        assert checks["nvidia"].status == status, checks["nvidia"]
    assert "TensorFlow sees no GPU" in checks["nvidia"].found  # auto still expects the GPU
    assert (
        doctor.failed(
            doctor.run_checks(
                doctor.gather(doctor.Context(device="cpu")), doctor.Context(device="cpu")
            )
        )
        == []
    )


def test_warning_lines_name_each_warn_with_its_fix():
    from segbench.doctor.types import warning_lines

    checks = [
        doctor.Check("load", "WARN", "1-minute load 4.70 on 2 CPUs", "below 1.0", "stop them"),
        doctor.Check("disk", "PASS", "80 GB free"),
    ]
    assert warning_lines(checks) == ["warning: load: 1-minute load 4.70 on 2 CPUs; stop them"]


def test_a_broken_generator_is_the_warning_not_the_losses():
    from dataclasses import replace
    from pathlib import Path

    from segbench.results.caveats import numerics_caveats
    from segbench.results.result import load_result

    result = load_result(Path("docs/results/segbench-quick-cpu-20261126T162833Z.json"))
    broken = numerics.with_random(
        numerics.Numerics(status=numerics.MATCH, max_rel_diff=0.0, at_step=0, tolerance=1e-3),
        False,
        "two dropout draws at rate 0.5 are identical",
    )
    (note,) = numerics_caveats(replace(result, numerics=broken))
    assert note.startswith(
        "The numerics check found the device's random generator broken (two dropout draws"
    )


def test_a_keras_json_keras_rejects_fails_naming_the_file_and_key(tmp_path):
    (tmp_path / ".keras").mkdir()
    (tmp_path / ".keras" / "keras.json").write_text('{"epsilon": "1e-7", "floatx": "float32"}')
    found = settings.survey({"HOME": str(tmp_path)})
    check = check_settings(found)
    assert check.status == "FAIL"
    assert check.found == "~/.keras/keras.json: epsilon: '1e-7' is not a number"
    assert check.fix == "Keras will not import with it; correct or remove ~/.keras/keras.json"
    # The import that then fails points at the file, not at a reinstall.
    from segbench.doctor.probe import Probe

    failed = Probe(ok=False, failed_module="tensorflow", error="AssertionError")
    imported = doctor.check_import(failed, {"tensorflow": "2.19.1"}, None, found)
    assert imported.fix == "Keras will not import with it; correct or remove ~/.keras/keras.json"
    listed = tmp_path / ".keras" / "keras.json"
    listed.write_text('["floatx"]')
    assert check_settings(settings.survey({"HOME": str(tmp_path)})).found == (
        "~/.keras/keras.json: (file): holds a JSON list, not an object"
    )


def test_values_the_frameworks_read_as_off_are_not_refused(tmp_path):
    for value in ("0", "false", "False", " 0", "off", ""):
        found = settings.survey({"HOME": str(tmp_path), "TF_ENABLE_AUTO_MIXED_PRECISION": value})
        assert found.refused == {}, value
    bare = settings.survey({"HOME": str(tmp_path), "TF_XLA_FLAGS": "--tf_xla_cpu_global_jit"})
    assert "TF_XLA_FLAGS" in bare.refused


def test_a_patterned_dropout_mask_is_named():
    shape = numerics.DROPOUT_SHAPE
    every_other = (np.arange(np.prod(shape)).reshape(shape) % 2).astype(np.float32) * 2
    draws = [(0.5, [every_other, 2 - every_other])]
    ok, what = numerics.judge_dropout(draws)
    assert not ok
    assert "two dropout draws at rate 0.5 agree at 0 % of positions" in what
    assert "a dropout mask at rate 0.5 has a pattern: neighbouring values agree at 0 %" in what


def test_a_command_printing_bytes_that_are_not_utf8_is_read(tmp_path):
    from segbench.results.environment import command_output

    script = tmp_path / "nvidia-smi"
    script.write_bytes(b"#!/bin/sh\nprintf '\\377\\376 GPU, 550.1'\n")
    script.chmod(0o755)
    assert command_output([str(script)]) == "\ufffd\ufffd GPU, 550.1"
