"""End-to-end runs of the real command line, in a subprocess as a user would start it."""

import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import fastjsonschema
import pytest
from cli_helpers import ctrl_c_default, error_lines, fake, segbench
from typer.testing import CliRunner

from segbench.benchmark import triangles
from segbench.cli import app
from segbench.results.result import shipped_schema

RESULTS = Path(__file__).parents[1] / "docs" / "results"

SMOKE = ["run", "--preset", "smoke", "--device", "cpu", "--deterministic"]


@pytest.mark.slow
def test_smoke_run_writes_a_complete_result_file(small_dataset, tmp_path):
    done = segbench(
        *SMOKE,
        "--data",
        str(small_dataset),
        "--out",
        "res",
        "--json",
        cwd=tmp_path,
        env={"SEGBENCH_PROGRESS_EVERY": "0"},  # a progress line after every step
    )
    assert done.returncode == 0, done.stderr
    # Piped: each phase of the steps as it starts, progress lines while steps run.
    lines = done.stderr.splitlines()
    timed = [line for line in lines if line.startswith("repeat 1/1 · timed")]
    assert timed[0] == "repeat 1/1 · timed: 4 step(s)"
    assert [line.split(" · ")[1] for line in timed[1:]] == [f"timed {n}/4" for n in range(1, 5)]
    assert all(" ms · " in line and " left in this phase" in line for line in timed[1:])
    printed = json.loads(done.stdout)
    files = list((tmp_path / "res").iterdir())
    assert len(files) == 1 and files[0].name.startswith("segbench-smoke-cpu-")
    stored = json.loads(files[0].read_text())
    assert stored == printed
    assert stored["schema_version"] == 5 and stored["status"] == "complete"
    fastjsonschema.validate(shipped_schema(), stored)  # the file other tools will read
    assert stored["config"]["width"] == 1 / 16 and stored["config"]["batch_size"] == 2
    assert stored["model"]["parameters"] == 87_311
    assert [s["phase"] for s in stored["steps"]] == ["compile", "warmup"] + ["timed"] * 4
    summary = stored["summary"]
    assert summary["steps"] == 4 and len(summary["compile_ms"]) == 1
    assert summary["p10_ms"] <= summary["median_ms"] <= summary["p90_ms"]
    low, high = summary["median_ci95_ms"]
    assert summary["min_ms"] <= low <= summary["median_ms"] <= high <= summary["max_ms"]
    assert summary["outliers"]["count"] >= 0 and "drift" not in summary  # 4 steps: no trend test
    assert summary["images_per_s"] == pytest.approx(2000 / summary["median_ms"])
    assert len(stored["loss_trajectory"]) == 6
    env = stored["environment"]
    assert env["keras_backend"] == "tensorflow" and env["packages"]["tensorflow"] == "2.19.1"
    assert env["ram_bytes"] > 0 and env["cpu"]["logical_cores"] >= 1
    assert stored["device"]["kind"] == "cpu"
    assert stored["forced"] is False
    assert {c["id"] for c in stored["doctor"]} >= {"python", "tensorflow", "packages", "compute"}
    # A smoke run: no speedups against the published model, and its expected caveats in one.
    assert "This run against the published references" not in done.stderr
    assert "A smoke run (width 0.0625, batch 2, 4 timed steps) checks that" in done.stderr
    assert "Only 4 timed steps" not in done.stderr
    assert "95 % CI" in done.stderr and "outliers" in done.stderr
    starts = [s["at_s"] for s in stored["steps"]]
    assert starts == sorted(starts) and starts[0] >= 0
    for before, after in itertools.pairwise(stored["steps"]):
        assert after["at_s"] >= before["at_s"] + before["ms"] / 1000 - 1e-6  # one after another
    telemetry = stored["telemetry"]
    if telemetry["source"] is None:  # a VM (this machine, CI): unavailable, with the reason
        assert telemetry["available"] is False and telemetry["samples"] == 0
        assert telemetry["reason"].startswith("energy: ") and "note: telemetry: " in done.stderr
    peak = stored["peak"]
    assert peak["achieved_tflops"] == pytest.approx(summary["tflops"])
    assert peak["measured_tflops"] > peak["achieved_tflops"] > 0
    assert peak["achieved_pct_of_measured"] == pytest.approx(
        100 * peak["achieved_tflops"] / peak["measured_tflops"]
    )
    assert peak["method"].startswith("matmul 2048×2048 float32")
    assert "% of measured ceiling" in done.stderr
    numerics = stored["numerics"]  # the CPU in float32: the reference's own conditions
    assert numerics["status"] == "match" and numerics["at_step"] in range(4)
    assert numerics["tolerance"] == 1e-3
    # The reference's own conditions: recomputed here, it is the stored file's (measured: 0).
    assert numerics["max_rel_diff"] <= 1e-5
    assert "numerics check" in done.stderr
    assert stored["memory"]["host_peak_bytes"] > 100 * 2**20  # TensorFlow alone takes more
    assert stored["memory"]["device_reason"].startswith("the CPU's memory is the host's")
    # The trace picture of this file, beside it by default.
    drawn = segbench("plot", str(files[0]), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr
    picture = files[0].with_name(files[0].stem + "-trace.png")
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert str(picture) in drawn.stdout


def test_run_refuses_to_start_on_a_failed_check_unless_forced(small_dataset, tmp_path):
    root = Path(__file__).resolve().parents[1]
    export = (root / "envs" / "linux-x86_64-cpu" / "requirements.txt").read_text()
    stale = tmp_path / "stale-export.txt"
    stale.write_text(export.replace("keras==3.12.4", "keras==3.5.0"))
    env = {"SEGBENCH_LOCK_EXPORT": str(stale), **fake()}
    args = [*SMOKE, "--data", str(small_dataset), "--out", "res", "--no-check-numerics"]
    refused = segbench(*args, cwd=tmp_path, env=env)
    assert refused.returncode == 1
    assert "environment check(s) failed (keras, packages)" in refused.stderr
    assert "--force" in refused.stderr
    assert not (tmp_path / "res").exists()  # the folder the refused run made is gone
    # The forced run also sees a stand-in nvidia-smi: doctor's facts feed the fingerprint, so
    # a run asks it once, not once per reader (with --device cpu its nvidia check is skipped:
    # the run does not use the GPU).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.log"
    script = bin_dir / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {calls}\necho "NVIDIA Test GPU, 580.159.04, 9.0, 81559, 81079"\n'
    )
    script.chmod(0o755)
    env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    forced = segbench(*args, "--force", "--json", cwd=tmp_path, env=env)
    assert forced.returncode == 0, forced.stderr
    result = json.loads(forced.stdout)
    assert result["forced"] is True
    keras_check = next(c for c in result["doctor"] if c["id"] == "keras")
    assert (keras_check["status"], keras_check["expected"]) == ("FAIL", "3.5.0")
    assert "Run with --force despite failed checks (keras, packages)" in forced.stderr
    nvidia = next(c for c in result["doctor"] if c["id"] == "nvidia")
    assert nvidia["status"] == "SKIP" and "--device cpu" in nvidia["found"]
    assert result["environment"]["gpu_stack"]["nvidia_driver"] == "580.159.04"
    assert len(calls.read_text().splitlines()) == 1


def test_invalid_option_value_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(app, ["run", "--precision", "float64"])
    assert result.exit_code == 2
    assert "float64" in result.output
    assert CliRunner().invoke(app, ["run", "--steps", "0"]).exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--width", "nan"],
        ["run", "--cooldown", "-inf"],
        ["tune", "--budget", "inf"],
        ["reproduce", "r.json", "--tolerance", "NaN"],
    ],
)
def test_a_number_option_given_nan_or_inf_says_so(args):
    """nan fails every bound, so the bound's message ('less than or equal to 100') was shown."""
    done = CliRunner().invoke(app, args, prog_name="segbench")
    assert done.exit_code == 2
    given, option = args[-1], args[-2]
    assert done.output.strip().splitlines()[-1] == (
        f"error: {option}: {given} is not a finite number; see segbench {args[0]} --help"
    )


def test_gpu_request_without_gpu_fails_in_one_line_and_writes_nothing(tmp_path):
    from segbench.measure import backend

    # The real backend's words (TensorFlow is imported in this process already) ...
    with pytest.raises(backend.DeviceError) as refused:
        backend.choose_device("gpu")
    assert "sees no GPU" in str(refused.value) and "uv sync --extra cuda" in str(refused.value)
    # ... reach the command line as its one line, with nothing written (the fake trainer's
    # device error takes the same path: tests/test_fake_trainer.py).
    done = segbench(
        "run", "--preset", "smoke", "--device", "gpu", "--out", "res", cwd=tmp_path, env=fake()
    )
    assert done.returncode == 1
    lines = error_lines(done.stderr)
    assert len(lines) == 1 and "has no GPU" in lines[0]
    assert not (tmp_path / "res").exists()


def test_bad_data_folder_names_the_file(tmp_path):
    (tmp_path / "train.csv").write_text("x,y\nmissing.png,missing-mask.png\n")
    done = segbench(
        "run",
        "--preset",
        "smoke",
        "--data",
        str(tmp_path),
        "--out",
        "res",
        cwd=tmp_path,
        env=fake(),
    )
    assert done.returncode == 2
    assert error_lines(done.stderr) == [f"error: --data: {tmp_path}/missing.png: file not found"]
    assert not (tmp_path / "res").exists()


def test_ctrl_c_twice_during_timing_writes_partial_result_and_exits_130(small_dataset, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **fake(sleep_s=0.02)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "segbench",
            *SMOKE,
            "--steps",
            "100000",
            "--data",
            str(small_dataset),
            "--out",
            "res",
            "--no-check-numerics",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        deadline = time.monotonic() + 240
        for line in proc.stderr:  # one line per phase when stderr is not a terminal
            if "· timed" in line or time.monotonic() > deadline:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)  # a second Ctrl-C while the first is saving must not undo it
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)  # drains the pipes, so the child never blocks writing
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    files = list((tmp_path / "res").glob("*.json"))
    assert len(files) == 1
    stored = json.loads(files[0].read_text())
    assert stored["status"] == "interrupted"
    assert 0 < stored["summary"]["steps"] < 100000


def test_data_command_writes_the_data_set_and_refuses_a_full_folder(tmp_path):
    out = tmp_path / "d"
    first = CliRunner().invoke(app, ["data", "--out", str(out)])
    assert first.exit_code == 0 and "600" in first.output
    assert (out / "train.csv").is_file() and len(list((out / "images").iterdir())) == 600
    second = CliRunner().invoke(app, ["data", "--out", str(out)])
    assert second.exit_code == 2 and "not empty" in second.output
    # A file or a broken link where the folder (or one above it) should be: one line naming
    # it, exit 2; for the cache, the variable that sets it.
    blocker, dangling = out / "train.csv", tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for target, what in [
        (blocker, "a file, not a folder"),
        (blocker / "sub", "a file, not a folder"),
        (dangling, "a broken symbolic link"),
        (dangling / "sub", "a broken symbolic link"),
    ]:
        refused = CliRunner().invoke(app, ["data", "--out", str(target)])
        in_the_way = blocker if "file" in what else dangling
        assert refused.exit_code == 2
        assert refused.output.strip() == (
            f"error: --out {target}: {in_the_way} is {what}; choose a new or empty folder"
        )
    cache = CliRunner().invoke(app, ["data"], env={"SEGBENCH_CACHE": str(blocker)})
    assert (cache.exit_code, cache.output.strip()) == (
        2,
        f"error: the cache {blocker}/triangles-v1: {blocker} is a file, not a folder; "
        "set SEGBENCH_CACHE to a folder",
    )


def test_help_lists_the_commands():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "run" in result.output and "data" in result.output


def test_out_folder_comes_from_segbench_out_and_is_checked_first(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = segbench(
        "run",
        "--preset",
        "smoke",
        cwd=tmp_path,
        env={"SEGBENCH_OUT": str(blocker / "results")},
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"error: --out {blocker}/results: not writable (Not a directory); pass a writable folder "
        '(in a container, mount one: -v "$PWD/results:/results")'
    ]


@pytest.mark.slow
def test_smoke_run_with_keras_2_records_the_generation(small_dataset, tmp_path):
    out = tmp_path / ("a-long-folder-name-" * 8)
    args = [*SMOKE, "--keras", "2", "--data", str(small_dataset), "--out", str(out), "--json"]
    done = segbench(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # Piped, the result's path is printed whole on a line of its own (here on stderr: --json).
    lines = done.stderr.splitlines()
    written = next(p for p in out.glob("*.json"))
    assert lines[lines.index("result written to:") + 1] == str(written)
    result = json.loads(done.stdout)
    assert result["config"]["keras"] == 2
    assert result["model"]["parameters"] == 87_311  # the same model as under Keras 3
    assert result["environment"]["packages"]["tf-keras"].startswith("2.19.")
    assert [s["phase"] for s in result["steps"]] == ["compile", "warmup"] + ["timed"] * 4
    assert all(math.isfinite(s["loss"]) for s in result["steps"])
    assert "tensorflow (Keras 2)" in done.stderr
    # Keras 2 trains the check's model to the same losses as the Keras 3 reference.
    assert result["numerics"]["status"] == "match", result["numerics"]


def test_keras_2_on_another_backend_is_refused_in_one_line(tmp_path):
    done = CliRunner().invoke(app, ["run", "--keras", "2", "--backend", "torch"])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [
        "error: --keras 2 runs on the tensorflow backend only (got --backend torch)"
    ]


def test_show_prints_a_result_files_tables_again():
    path = sorted(RESULTS.glob("segbench-quick-cpu-*.json"))[-1]
    stored = json.loads(path.read_text())
    done = CliRunner().invoke(app, ["show", str(path)])
    assert done.exit_code == 0, done.output
    assert f"{stored['summary']['median_ms']:.1f} ms" in done.output
    assert "This run against the published references" in done.output
    missing = CliRunner().invoke(app, ["show", str(path.with_name("none.json"))])
    assert missing.exit_code == 2
    assert missing.output.strip() == f"error: {path.with_name('none.json')}: no such file"


def test_show_of_a_tune_file_lists_its_trials_and_verdict():
    path = RESULTS / "tune" / "segbench-tune-quick-cpu-20261208T050321Z.json"
    done = CliRunner().invoke(app, ["show", str(path)], env={"COLUMNS": "250"})
    assert done.exit_code == 0, done.output
    assert "segbench tune — quick preset, 17.7 of 20 min, stopped by budget" in done.output
    assert done.output.count("pruned: its first step stopped it") == 3
    assert "1.14× the default setting (95 % CI 1.12–1.17)" in done.output
    assert "run it: segbench run --preset quick --backend tensorflow" in done.output


def test_data_without_options_accepts_the_cache_it_filled_before(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path))
    cached = triangles.default_data_dir()
    cached.mkdir(parents=True)
    (cached / triangles.TRAIN_CSV).write_text("x,y\n")
    done = CliRunner().invoke(app, ["data"])
    assert done.exit_code == 0, done.output
    assert done.output.strip() == f"the triangles data set is already in {cached}"


def test_help_imports_no_numerical_library():
    """`segbench --help` answers at once: the command line loads no numpy, framework or scipy
    (the figure is in the README: about 0.2 s on a 2-vCPU VM)."""
    code = (
        "import sys, segbench.cli as c; "
        "sys.argv = ['segbench', 'run', '--help']; "
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try: c.entry()\n"
        "    except SystemExit: pass\n"
        "print(sorted(m for m in ('numpy', 'scipy', 'tensorflow', 'keras', 'jax') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "[]", done.stderr
