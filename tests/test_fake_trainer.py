"""Everything above the framework, on the fake trainer (segbench/measure/fake_trainer.py): the
real command line in a subprocess, with step times and losses it is told, in about a second."""

import json
import os
import subprocess
import sys

import pytest
from cli_helpers import cached_data, error_lines, fake, segbench
from typer.testing import CliRunner

from segbench.cli import app
from segbench.results.result import load_result


@pytest.fixture
def cwd(tmp_path, triangles_dir):
    """A working folder whose cache holds the generated data set, as after a first run."""
    cached_data(tmp_path, triangles_dir)
    return tmp_path


@pytest.fixture
def smoke(small_dataset):
    """The smoke preset on 8 + 4 images: loaded in milliseconds (the fake trains nothing)."""
    return ["run", "--preset", "smoke", "--out", "res", "--data", str(small_dataset)]


def test_a_run_records_exactly_the_step_times_and_losses_it_was_told(cwd, smoke):
    told = [100.0, 104.0, 98.0, 102.0]
    done = segbench(
        *smoke, "--json", cwd=cwd, env=fake(step_ms=told, compile_ms=750, losses=[2.0, 1.5])
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    timed = [s for s in result["steps"] if s["phase"] == "timed"]
    assert [s["ms"] for s in timed] == told
    assert [s["ms"] for s in result["steps"] if s["phase"] == "compile"] == [750.0]
    # smoke: 1 compile, 1 warm-up, 4 timed steps; losses cycled over all six
    assert [s["loss"] for s in result["steps"]] == [2.0, 1.5] * 3
    assert result["summary"]["median_ms"] == 101.0
    assert result["summary"]["images_per_s"] == pytest.approx(2 / 0.101)
    assert result["numerics"]["status"] == "match"
    assert result["status"] == "complete"
    # What reproduces it: the command line as run, the source's commit and where it is.
    from segbench.results.environment import git_commit, source_url
    from segbench.results.privacy import public_text

    assert result["command"] == [public_text(a) for a in [*smoke, "--json"]]

    assert (result["git_commit"], result.get("source_url")) == (git_commit(), source_url())
    (written,) = (cwd / "res").glob("segbench-smoke-cpu-*.json")
    assert load_result(written).summary.median_ms == 101.0


def test_a_fake_run_imports_no_framework(cwd):
    code = (
        "import runpy, sys\n"
        "sys.argv = ['segbench', 'run', '--preset', 'smoke', '--out', 'res']\n"
        "try:\n    runpy.run_module('segbench', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'torch', 'tf_keras')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        env={**os.environ, "SEGBENCH_CACHE": str(cwd / "cache"), **fake()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("at", "name", "code"),
    [
        ("import", "SIGINT", 130),
        ("numerics", "SIGTERM", 143),
        ("compile", "SIGHUP", 129),
        ("compile", "SIGINT", 130),
        ("warmup", "SIGTERM", 143),  # steps ran, none timed: still nothing to keep
    ],
)
def test_a_signal_before_the_first_timed_step_writes_nothing(cwd, smoke, at, name, code):
    done = segbench(*smoke, cwd=cwd, env=fake(signal={"at": at, "name": name}))
    assert done.returncode == code, done.stderr
    assert error_lines(done.stderr)[-1] == (
        "error: interrupted before timing started; no result written"
    )
    assert not (cwd / "res").exists()


@pytest.mark.parametrize(("name", "code"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_signal_during_timing_keeps_the_steps_before_it(cwd, smoke, name, code):
    done = segbench(*smoke, cwd=cwd, env=fake(signal={"at": "timed", "step": 3, "name": name}))
    assert done.returncode == code, done.stderr
    (path,) = (cwd / "res").glob("*.json")
    assert error_lines(done.stderr)[-1] == (
        f"error: interrupted: the partial result is in res/{path.name}"
    )
    result = load_result(path)
    assert (result.status, result.interrupted_by) == ("interrupted", name)
    assert result.summary.steps == 2  # the third was stopped inside the step
    assert result.peak is None or result.peak.measured_tflops is None


def test_a_signal_during_the_ceiling_probe_keeps_the_whole_measurement(cwd, smoke):
    done = segbench(*smoke, cwd=cwd, env=fake(signal={"at": "peak", "name": "SIGTERM"}))
    assert done.returncode == 143, done.stderr
    (path,) = (cwd / "res").glob("*.json")
    result = load_result(path)
    assert (result.status, result.interrupted_by, result.summary.steps) == (
        "interrupted",
        "SIGTERM",
        4,
    )
    assert result.peak.measured_tflops is None
    assert "measured ceiling: interrupted" in result.peak.reason


def test_out_of_memory_at_the_first_step_names_the_cause_and_writes_nothing(cwd, smoke):
    failure = {"at": "compile", "error": "ResourceExhaustedError", "message": "OOM when allocating"}
    done = segbench(*smoke, cwd=cwd, env=fake(fail=failure))
    assert done.returncode == 1
    last = error_lines(done.stderr)[-1]
    assert last.startswith(
        "error: the framework failed at the first step (building and compiling the model) "
        "(ResourceExhaustedError: OOM when allocating) — likely cause: the device ran out of memory"
    )
    assert last.endswith("nothing was timed, so no result was written")
    assert not (cwd / "res").exists()


def test_a_framework_error_mid_run_keeps_the_steps_before_it(cwd, smoke):
    failure = {"at": "timed", "step": 3, "error": "InternalError", "message": "device lost"}
    done = segbench(*smoke, "--no-peak", cwd=cwd, env=fake(fail=failure))
    assert done.returncode == 1
    last = error_lines(done.stderr)[-1]
    assert last.startswith("error: the framework failed after 2 timed step(s) (InternalError: ")
    (path,) = (cwd / "res").glob("*.json")
    assert last.endswith(f"the partial result is in res/{path.name}")
    assert load_result(path).interrupted_by == "error"


def test_a_deviating_device_is_recorded_and_shown(cwd, smoke):
    done = segbench(*smoke, "--json", cwd=cwd, env=fake(numerics_losses=[9.0, 9.0, 9.0, 9.0]))
    assert done.returncode == 0, done.stderr
    numerics = json.loads(done.stdout)["numerics"]
    assert (numerics["status"], numerics["at_step"]) == ("deviates", 0)


def test_a_gpu_the_fake_is_told_of_is_the_runs_device(cwd, smoke):
    done = segbench(*smoke, "--json", cwd=cwd, env=fake(device="gpu", device_name="FakeGPU 9"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["environment"]["devices"] == ["FakeGPU 9 (fake trainer)"]
    gpu = segbench(*smoke, "--device", "gpu", cwd=cwd, env=fake())
    assert gpu.returncode == 1 and "has no GPU" in error_lines(gpu.stderr)[-1]


def test_show_and_compare_read_two_fake_runs(cwd, smoke):
    for ms in (100.0, 80.0):
        done = segbench(*smoke, "--steps", "12", cwd=cwd, env=fake(step_ms=[ms, ms + 1, ms - 1]))
        assert done.returncode == 0, done.stderr
    slow, quick = sorted(
        (cwd / "res").glob("*.json"), key=lambda p: -load_result(p).summary.median_ms
    )
    shown = CliRunner().invoke(app, ["show", str(slow)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "100.0 ms" in shown.output
    compared = CliRunner().invoke(
        app, ["compare", str(slow), str(quick), "--format", "json"], env={"COLUMNS": "200"}
    )
    assert compared.exit_code == 0, compared.output
    rows = json.loads(compared.output)["rows"]
    assert rows[0]["baseline"] and rows[0]["speedup"][0] == 1.0
    assert rows[1]["speedup"][0] == pytest.approx(1.25, rel=0.02)
    assert [r["steps"] for r in rows[:2]] == [12, 12]


def test_a_bad_script_is_one_line_naming_the_variable(cwd, smoke):
    done = segbench(*smoke, cwd=cwd, env={"SEGBENCH_FAKE_TRAINER": '{"step_mss": [1]}'})
    assert done.returncode == 2
    assert error_lines(done.stderr) == [
        "error: SEGBENCH_FAKE_TRAINER: unknown key(s) step_mss; see "
        "segbench/measure/fake_trainer.py"
    ]


def test_tune_never_chooses_a_deviating_setting_even_when_fastest(cwd):
    script = fake(
        step_ms=[100.0, 101.0, 99.0],
        settings=[
            # the fused kernel is fastest, but its numerics deviate
            {"match": {"batchnorm": "fused"}, "step_ms": [40.0], "numerics_losses": [5.0] * 4},
            {"match": {"xla": True}, "step_ms": [80.0, 81.0, 79.0]},
        ],
    )
    done = segbench(
        "tune",
        "--preset",
        "smoke",
        "--steps",
        "6",
        "--backend",
        "tensorflow",
        "--precision",
        "float32",
        "--trials",
        "3",  # the default, the fused kernel, the compiled step
        cwd=cwd,
        env=script,
    )
    assert done.returncode == 0, done.stderr
    (written,) = (cwd / "results").glob("segbench-tune-smoke-*.json")
    info = load_result(written).tune
    by_setting = {(t.batchnorm, t.compile, t.data_format): t for t in info.trials}
    assert by_setting[("fused", False, "channels_last")].numerics == "deviates"
    winner = info.trials[info.fastest]
    assert (winner.batchnorm, winner.compile) == ("keras", True)
    assert "run it: segbench run" in done.stdout
    # --trials 3: the three ran (the default first), the rest are listed as not run.
    assert [t.status for t in info.trials[:3]] == ["ran", "deviates", "ran"]
    assert info.trials[0].batchnorm == "keras" and not info.trials[0].compile
    assert "ran" not in [t.status for t in info.trials[3:]]
    not_run = [t for t in info.trials if t.status == "not run"]
    assert not_run and {t.reason for t in not_run} == {"--trials 3: that many trials ran"}


def test_doctor_judges_the_facts_the_fake_is_told(cwd):
    done = segbench(
        "doctor", "--json", cwd=cwd, env=fake(facts={"ram_available": 1024}), timeout=120
    )
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["memory"]["status"] == "FAIL"
    assert done.returncode == 1
    # No framework was imported: the import row says why, not that none is installed.
    assert checks["import"]["found"] == (
        "the fake trainer imports no framework (SEGBENCH_FAKE_TRAINER)"
    )


def test_channels_first_where_the_cpu_kernels_take_only_nhwc_is_one_line(cwd, smoke):
    done = segbench(
        *smoke, "--data-format", "channels_first", cwd=cwd, env=fake(facts={"onednn": False})
    )
    assert done.returncode == 1
    assert error_lines(done.stderr)[-1] == (
        "error: --data-format channels_first: TensorFlow's CPU convolutions take only NHWC here "
        "(oneDNN is off on this CPU); set TF_ENABLE_ONEDNN_OPTS=1, or use channels_last"
    )
    assert not (cwd / "res").exists()
    on = segbench(
        *smoke, "--data-format", "channels_first", cwd=cwd, env=fake(facts={"onednn": True})
    )
    assert on.returncode == 0, on.stderr


@pytest.mark.parametrize(
    ("script", "said"),
    [
        ('{"step_ms": [-5]}', "step_ms must be step times in ms"),
        ('{"step_ms": "100"}', "step_ms must be step times in ms"),
        ('{"step_ms": [1e300]}', "step_ms must be step times in ms"),
        ('{"losses": ["a"]}', "must be numbers"),
        ('{"numerics_losses": [1, 2]}', "numerics_losses must hold 4 losses"),
        ('{"signal": {"at": "timed", "name": "SIGFOO"}}', "SIGINT, SIGTERM or SIGHUP"),
        ('{"signal": {"at": "later"}}', "'at', one of import"),
        ('{"settings": [{"match": {}, "bogus": 1}]}', "unknown key(s) in settings: bogus"),
        ('{"settings": [{"match": {"compile": true}}]}', "settings match on compile, not a"),
        ('{"matmul_tflops": 0}', "matmul_tflops must be above 0"),
        ('{"parameters": -5}', "parameters must be a whole number"),
    ],
)
def test_a_script_no_real_run_could_produce_is_refused_before_anything_runs(
    cwd, smoke, script, said
):
    done = segbench(*smoke, cwd=cwd, env={"SEGBENCH_FAKE_TRAINER": script})
    assert done.returncode == 2
    (line,) = error_lines(done.stderr)
    assert line.startswith("error: SEGBENCH_FAKE_TRAINER: ") and said in line
    assert not (cwd / "res").exists()


def test_a_ceiling_probe_that_fails_keeps_the_whole_measurement(cwd, smoke):
    failure = {"at": "peak", "error": "ResourceExhaustedError", "message": "OOM in the matmul"}
    done = segbench(*smoke, "--json", cwd=cwd, env=fake(fail=failure))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["summary"]["steps"]) == ("complete", 4)
    assert result["peak"].get("measured_tflops") is None
    assert (
        "measured ceiling: failed (ResourceExhaustedError: OOM in the matmul)"
        in (result["peak"]["reason"])
    )


def test_a_fake_result_says_so_wherever_it_is_compared(cwd, smoke):
    done = segbench(*smoke, "--json", cwd=cwd, env=fake())
    assert done.returncode == 0, done.stderr
    (path,) = (cwd / "res").glob("*.json")
    compared = CliRunner().invoke(app, ["compare", str(path), "--format", "json"])
    assert "fake trainer" in json.loads(compared.output)["rows"][0]["caveats"]


def test_an_epoch_run_counts_every_step_after_the_first_as_timed(cwd, smoke):
    """Epochs have no warm-up: a failure told for the 2nd timed step comes after the compile
    step and one timed step, whatever --warmup says."""
    failure = {"at": "timed", "step": 2, "error": "InternalError", "message": "device lost"}
    done = segbench(
        *smoke, "--epochs", "1", "--batch-size", "2", "--json", cwd=cwd, env=fake(fail=failure)
    )
    assert done.returncode == 1, done.stderr
    (path,) = (cwd / "res").glob("*.json")
    steps = json.loads(path.read_text())["steps"]
    assert [s["training"] for s in steps] == [True, True]


def test_the_source_url_keeps_no_user_or_token(monkeypatch, tmp_path):
    from segbench.results import environment

    (tmp_path / ".git").mkdir()  # a checkout, whose remote is asked
    monkeypatch.setattr(environment, "PROJECT_ROOT", tmp_path)
    monkeypatch.setattr(
        environment,
        "command_output",
        lambda args, **kw: "https://ada:ghp_secret@github.com/example/segbench.git\n",
    )
    assert environment.source_url() == "https://github.com/example/segbench.git"
    monkeypatch.setattr(environment, "command_output", lambda args, **kw: None)
    monkeypatch.setenv("SEGBENCH_SOURCE_URL", "https://github.com/example/segbench")
    assert environment.source_url() == "https://github.com/example/segbench"
