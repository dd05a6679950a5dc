"""segbench tune: the plan, the skips, the ranking, and a real session on the smoke preset."""

import json
import os
from pathlib import Path

import pytest
from cli_helpers import segbench

from segbench.benchmark.config import PRESETS
from segbench.measure.tune import Setting, conclude, device_skip, plan, rank, trial_of
from segbench.results.result import Result, load_result
from segbench.results.tune_record import DEVIATES, NOT_RUN, RAN, SKIPPED

ROOT = Path(__file__).resolve().parents[1]
CPU_RESULT = ROOT / "docs/results/segbench-quick-cpu-20261126T112703Z.json"


def measured(setting: Setting, samples: list[float], status: str = RAN, numerics="match"):
    """A trial with per-image step times `samples` (ms), as measured_trial records one."""
    median = sorted(samples)[len(samples) // 2]
    return trial_of(
        setting,
        status,
        "segbench run …",
        ms_per_image=median,
        images_per_s=1000 / median,
        numerics=numerics,
        samples_ms_per_image=samples,
    )


def test_the_plan_runs_the_default_first_and_says_why_a_backend_is_skipped():
    planned = plan(PRESETS["quick"], {"tensorflow": True, "jax": True, "torch": False})
    first, reason = planned[0]
    assert first == Setting("tensorflow", "float32", False, "keras", 16) and reason is None
    torch = [r for s, r in planned if s.backend == "torch"]
    assert torch and all(r == "torch is not installed (pip install torch)" for r in torch)
    assert all(r is None for s, r in planned if s.backend in ("tensorflow", "jax"))
    # Restricted to one backend and precision: the default still runs first.
    only = plan(PRESETS["quick"], {"tensorflow": True}, ["jax"], ["mixed_bfloat16"])
    assert [s.label for s, _ in only] == [
        "tensorflow · float32 · not compiled · keras BN · batch 16",
        "jax · mixed_bfloat16 · compiled · keras BN · batch 16",
    ]
    assert only[1][1] == "jax is not installed (uv sync --extra jax)"


def test_device_skips_follow_the_device_the_default_ran_on():
    data = json.loads(CPU_RESULT.read_text())
    cpu = Result.from_dict(data)
    fp16 = Setting("tensorflow", "mixed_float16", True, "fused", 16)
    assert (
        device_skip(fp16, cpu) == "float16 without tensor cores: the CPU has no fast float16 path"
    )
    assert device_skip(Setting(compile=True), cpu) is None
    nchw = Setting(batchnorm="fused", data_format="channels_first")
    assert device_skip(nchw, cpu).startswith("channels_first on TensorFlow's CPU kernels")
    assert (
        device_skip(Setting("torch", batchnorm="fused", data_format="channels_first"), cpu) is None
    )
    data["device"] = {"kind": "gpu", "keras_name": "gpu", "description": "Apple M1 GPU"}
    data["environment"]["os"]["system"] = "Darwin"
    metal = Result.from_dict(data)
    assert device_skip(Setting(compile=True), metal) == (
        "XLA does not run on the Metal GPU (tensorflow-metal)"
    )
    assert device_skip(Setting(compile=False), metal) is None
    assert device_skip(nchw, metal) is None  # on a GPU the layout is worth a trial


def test_a_setting_whose_numerics_deviate_never_wins_however_fast():
    default = measured(Setting(), [100.0, 101.0, 99.0, 100.5, 100.2])
    broken = measured(
        Setting(batchnorm="fused"), [10.0, 10.1, 9.9, 10.2, 10.0], DEVIATES, "deviates"
    )
    compiled = measured(Setting(compile=True), [80.0, 81.0, 79.0, 80.5, 80.2])
    skipped = trial_of(Setting(precision="mixed_float16"), SKIPPED, "…", "no tensor cores")
    trials = [default, broken, compiled, skipped]
    assert rank(trials) == [2, 0]
    info = conclude("quick", 600.0, 300.0, None, trials, ["--steps", "10", "--device", "cpu"])
    assert info.fastest == 2 and info.default == 0
    assert info.speedup == pytest.approx(100.2 / 80.2)
    low, high = info.speedup_ci95
    assert low <= info.speedup <= high and low > 1
    assert info.command == (
        "segbench run --preset quick --backend tensorflow --precision float32 --compile "
        "--batchnorm keras --batch-size 16 --device cpu"
    )


# A stand-in for a broken kernel: TensorFlow's fused batch norm, scaled by 1.5 in every child
# process of the session (loaded when segbench.benchmark.batchnorm is first imported).
BROKEN_KERNEL = """
import importlib.abc, importlib.util, sys

class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "segbench.benchmark.batchnorm":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            kernel = module._KERNELS["tensorflow"]

            def broken(x, *args, **kwargs):
                y, mean, variance = kernel(x, *args, **kwargs)
                return y * 1.5, mean, variance

            module._KERNELS["tensorflow"] = broken

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Hook())
"""


@pytest.mark.slow
def test_tune_ranks_writes_a_chart_and_a_result_and_never_chooses_a_broken_kernel(tmp_path):
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(BROKEN_KERNEL)
    done = segbench(
        "tune",
        "--preset",
        "smoke",
        "--trials",
        "2",  # the default and the broken kernel; the fake trainer covers the rest of tune
        "--steps",
        "3",
        "--warmup",
        "0",
        "--backend",
        "tensorflow",
        "--precision",
        "float32",
        cwd=tmp_path,
        env={
            "PYTHONPATH": os.pathsep.join([str(stand_in), os.environ.get("PYTHONPATH", "")]),
            "SEGBENCH_CACHE": str(tmp_path / "cache"),
        },
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    assert "segbench tune — smoke preset" in done.stdout and "run it: segbench run" in done.stdout
    (written,) = (tmp_path / "results").glob("segbench-tune-smoke-*.json")
    result = load_result(written)  # the typed reader and the shipped schema
    info = result.tune
    statuses = {
        (t.batchnorm, t.compile, t.batch_size, t.data_format): t.status for t in info.trials
    }
    assert statuses[("keras", False, 2, "channels_last")] == RAN  # the default
    # The broken kernel ran, and was caught.
    assert statuses[("fused", False, 2, "channels_last")] == DEVIATES
    assert statuses[("fused", False, 2, "channels_first")] == SKIPPED  # NHWC on TF's CPU
    assert statuses[("keras", True, 2, "channels_last")] == NOT_RUN  # --trials 2
    fused = next(
        t for t in info.trials if t.batchnorm == "fused" and not t.compile and t.status != SKIPPED
    )
    assert fused.numerics == "deviates" and fused.images_per_s > 0
    winner = info.trials[info.fastest]
    assert winner.status == RAN and winner.batchnorm == "keras"
    # The file is the winner's own result, with its settings.
    assert (result.config.batchnorm or "keras", result.config.xla) == ("keras", winner.compile)
    assert written.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("plot", "said"),
    [
        ("chart.txt", "--plot chart.txt: a chart is a PNG; choose a .png name"),
        ("nowhere/chart.png", "--plot nowhere/chart.png: no folder nowhere; create it"),
    ],
)
def test_tune_refuses_a_chart_it_cannot_write_before_any_trial(tmp_path, plot, said):
    done = segbench("tune", "--preset", "smoke", "--plot", plot, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().startswith(f"error: {said}")
    assert "trial" not in done.stderr and not (tmp_path / "results").exists()


def test_ctrl_c_before_a_trial_finished_exits_130_and_leaves_nothing(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    from cli_helpers import ctrl_c_default, fake

    process = subprocess.Popen(
        [sys.executable, "-m", "segbench", "tune", "--preset", "smoke", "--budget", "5"],
        cwd=tmp_path,
        env={
            **os.environ,
            "SEGBENCH_CACHE": str(tmp_path / "cache"),
            "PYTHONUNBUFFERED": "1",
            **fake(sleep_s=0.5),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        for line in process.stderr:
            if line.startswith("trial 1/"):
                break
        time.sleep(3)  # the first trial's child is starting
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, rest
    assert rest.strip().splitlines()[-1] == (
        "error: interrupted before a trial finished: nothing written"
    )
    assert not (tmp_path / "results").exists()


def _processes_with(marker: str) -> list[int]:
    """The processes whose environment holds `marker` (a command's children inherit it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux's /proc")
@pytest.mark.parametrize(
    ("sent", "delay", "code"),
    [("SIGINT", 0.0, 130), ("SIGINT", 1.5, 130), ("SIGTERM", 0.5, 143), ("SIGHUP", 1.0, 129)],
)
def test_two_signals_while_a_trial_starts_leave_no_child_and_no_traceback(
    triangles_dir, tmp_path, sent, delay, code
):
    import signal
    import subprocess
    import sys
    import time
    import uuid

    from cli_helpers import cached_data, ctrl_c_default, fake

    marker = uuid.uuid4().hex
    process = subprocess.Popen(
        [sys.executable, "-m", "segbench", "tune", "--preset", "smoke", "--budget", "5"],
        cwd=tmp_path,
        env={
            **os.environ,
            "SEGBENCH_CACHE": str(cached_data(tmp_path, triangles_dir)),
            "PYTHONUNBUFFERED": "1",
            "SEGBENCH_TEST_MARKER": marker,
            **fake(sleep_s=0.5),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        for line in process.stderr:
            if line.startswith("trial 1/"):
                break
        time.sleep(delay)
        process.send_signal(getattr(signal, sent))
        time.sleep(1.0)  # the second, while the first is handled
        process.send_signal(getattr(signal, sent))
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == code, rest
    assert "Traceback" not in rest
    assert rest.strip().splitlines()[-1].startswith("error: interrupted")
    time.sleep(0.5)  # a child that outlived tune would still be here
    left = _processes_with(marker)
    assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in left]


@pytest.mark.parametrize("trials", [1, 2])
def test_trials_are_numbered_out_of_those_that_will_run(triangles_dir, tmp_path, trials):
    """`--trials N`: the progress says `trial 1/N` … `trial N/N`, never a count of the
    whole plan (with --trials 1: `trial 1/18`), and no trial N+1 starts."""
    from cli_helpers import cached_data, fake

    done = segbench(
        "tune", "--preset", "smoke", "--trials", str(trials), "--steps", "3", "--warmup", "0",
        cwd=tmp_path,
        env={"SEGBENCH_CACHE": str(cached_data(tmp_path, triangles_dir)), **fake()},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    started = [line.split(":")[0] for line in done.stderr.splitlines() if line.startswith("trial ")]
    assert started == [f"trial {n}/{trials}" for n in range(1, trials + 1)], done.stderr
