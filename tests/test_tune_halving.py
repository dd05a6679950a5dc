"""segbench tune's successive halving on the fake trainer: every planned setting is considered
with a few short steps, those that cannot reach the best are pruned, the default and every
winner are measured in full, a deviating setting never wins, the budget holds, and each
backend's worker imports its framework once and checks each set of kernels once."""

import json
import os
from collections import Counter

import pytest
from cli_helpers import cached_data, fake, segbench

from segbench.measure.tune_session import GRACE_S, short_steps
from segbench.results.result import load_result
from segbench.results.tune_record import DEVIATES, NOT_RUN, PRUNED, RAN, SKIPPED

STEPS = 6  # a full trial's timed steps (--steps); a short one's: short_steps(6) == 2

# The fused kernel is fastest but its numerics deviate; jax is faster than the default; the
# compiled step and bfloat16 are slower, so a few steps show they cannot reach the best.
SCRIPT = fake(
    step_ms=[100.0, 101.0, 99.0, 100.5],
    settings=[  # a later entry that matches overrides an earlier one
        {"match": {"batchnorm": "fused"}, "step_ms": [40.0], "numerics_losses": [5.0] * 4},
        {"match": {"xla": True}, "step_ms": [150.0, 152.0, 149.0]},
        {"match": {"backend": "jax"}, "step_ms": [90.0, 91.0, 89.0]},
        {
            "match": {"precision": "mixed_bfloat16"},
            "step_ms": [300.0, 305.0],
            "numerics_losses": None,
        },
    ],
)

# A stand-in that records, in the file $TUNE_LOG, each framework import and each numerics
# check of the fake trainer with the process that did it (loaded in every process of the run).
RECORDER = """
import importlib.abc, importlib.util, json, os, sys

class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "segbench.measure.fake_trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            cls = module.FakeTrainer
            imported, checked = cls.import_safely, cls.numerics_losses

            def log(**entry):
                with open(os.environ["TUNE_LOG"], "a") as f:
                    f.write(json.dumps({"pid": os.getpid(), **entry}) + "\\n")

            def import_safely(self, name, display):
                log(event="import", backend=name)
                return imported(self, name, display)

            def numerics_losses(self, config, device):
                log(event="numerics", kernels=[config.backend, config.precision, config.xla,
                    config.batchnorm, config.data_format])
                return checked(self, config, device)

            cls.import_safely, cls.numerics_losses = import_safely, numerics_losses

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Hook())
"""


@pytest.fixture
def recorded(tmp_path, triangles_dir):
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(RECORDER)
    cached_data(tmp_path, triangles_dir)
    log = tmp_path / "tune.log"
    env = {
        **SCRIPT,
        "TUNE_LOG": str(log),
        "PYTHONPATH": os.pathsep.join([str(stand_in), os.environ.get("PYTHONPATH", "")]),
    }
    return env, log


def _tune(tmp_path, env, *more):
    done = segbench(
        "tune", "--preset", "smoke", "--steps", str(STEPS), "--warmup", "1", *more,
        cwd=tmp_path, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (written,) = (tmp_path / "results").glob("segbench-tune-smoke-*.json")
    return done, load_result(written)


def test_every_setting_is_considered_the_slow_pruned_and_only_a_full_trial_wins(tmp_path, recorded):
    env, log = recorded
    done, result = _tune(tmp_path, env, "--budget", "5")
    info = result.tune
    considered = [t for t in info.trials if t.status not in (SKIPPED,)]
    # Every setting that can run here was measured: none left out by the budget.
    assert considered and all(t.status in (RAN, PRUNED, DEVIATES) for t in considered)
    assert info.stopped_by is None and info.elapsed_s <= info.budget_s
    # The default: in full, first.
    default = info.trials[info.default]
    assert (default.backend, default.compile, default.batchnorm) == ("tensorflow", False, "keras")
    assert default.status == RAN and len(default.samples_ms_per_image) == STEPS
    # The slow ones were pruned after their short steps, with their short median and why.
    pruned = [t for t in info.trials if t.status == PRUNED]
    assert {(t.backend, t.precision, t.compile) for t in pruned} >= {
        ("tensorflow", "float32", True),
        ("tensorflow", "mixed_bfloat16", True),
    }
    for t in pruned:
        assert 1 <= len(t.samples_ms_per_image) <= short_steps(STEPS)
        assert t.ci95_ms_per_image is None and "slower than the best's 95 % CI" in t.reason
    # 1.5× the slow end of the default's CI: 75 ms/image goes on, 150 stops after one step.
    by_kind = {(t.backend, t.precision, t.compile): t for t in pruned}
    compiled = by_kind["tensorflow", "float32", True]
    assert compiled.samples_ms_per_image == [75.0, 76.0]
    bfloat16 = by_kind["tensorflow", "mixed_bfloat16", True]
    assert bfloat16.samples_ms_per_image == [150.0]
    assert bfloat16.reason.startswith("its first step stopped it, 150 ms/image")
    # The deviating kernel is the fastest measured, and never wins.
    fused = next(t for t in info.trials if t.batchnorm == "fused" and t.backend == "tensorflow"
                 and not t.compile and t.status != SKIPPED)  # fmt: skip
    assert fused.status == DEVIATES
    assert fused.images_per_s == max(t.images_per_s or 0 for t in info.trials)
    winner = info.trials[info.fastest]
    assert winner.status == RAN and len(winner.samples_ms_per_image) == STEPS
    assert winner.backend == "jax" and winner.numerics == "match"
    # Its speedup over the default: the bootstrap CI of the two full trials' ratio.
    low, high = info.speedup_ci95
    assert low <= info.speedup <= high and low > 1
    assert result.summary.steps == STEPS  # the file is the winner's own full run
    # Progress: each short trial once (`trial k/N`), then the survivors `in full`.
    started = [line.split(",")[0] for line in done.stderr.splitlines()]
    assert sum(line.startswith("in full ") for line in started) >= 1
    # One worker per backend: each framework imported once, by one process; each set of
    # kernels checked once, however many trials ran it (the larger batch, the full trials).
    events = [json.loads(line) for line in log.read_text().splitlines()]
    runs = Counter(e["backend"] for e in events if e["event"] == "import")  # one per trial
    processes = {(e["backend"], e["pid"]) for e in events if e["event"] == "import"}
    assert sorted(b for b, _ in processes) == ["jax", "tensorflow"]
    assert runs["tensorflow"] > 1 and runs["jax"] > 1
    checks = [tuple(e["kernels"]) for e in events if e["event"] == "numerics"]
    assert len(checks) == len(set(checks))
    ran = sum(t.status in (RAN, PRUNED, DEVIATES) for t in info.trials)
    in_full = sum(line.startswith("in full ") for line in started)
    assert len(checks) < ran + in_full  # some trials reused a check


def test_a_budget_too_short_for_every_trial_keeps_to_it_and_says_what_did_not_run(
    tmp_path, recorded
):
    env, _ = recorded
    slow = {**env, "SEGBENCH_FAKE_TRAINER": json.dumps({
        **json.loads(env["SEGBENCH_FAKE_TRAINER"]), "sleep_s": 2.0,
    })}  # fmt: skip
    # Half a minute: the default in full (8 steps of 2 s), then short trials while they fit
    # (about 8 s each), with a full trial's time kept back once one can still win.
    done, result = _tune(tmp_path, slow, "--budget", "0.5", "--backend", "tensorflow")
    info = result.tune
    assert info.stopped_by == "budget"
    assert info.elapsed_s <= info.budget_s + GRACE_S
    assert info.trials[0].status == RAN and len(info.trials[0].samples_ms_per_image) == STEPS
    left = [t for t in info.trials if t.status == NOT_RUN]
    assert left and {t.reason for t in left} == {"the budget was spent"}
    assert "stopped by budget" in done.stdout


# A stand-in for a worker whose heap an earlier trial still holds: in a process that already
# ran a trial, the compile step fails as an XLA allocation did on this VM (out of memory).
FULL_HEAP = """
import importlib.abc, importlib.util, sys

class _Hook(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "segbench.measure.fake_trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            cls = module.FakeTrainer
            begin = cls.begin
            runs = []

            def begun(self, config):
                runs.append(config)
                if len(runs) > 1:
                    raise RuntimeError("ResourceExhaustedError: Out of memory while trying to "
                                       "allocate 11463189088 bytes")
                return begin(self, config)

            cls.begin = begun

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Hook())
"""


def test_a_trial_that_fails_in_a_reused_worker_is_run_again_in_a_fresh_one(tmp_path, triangles_dir):
    stand_in = tmp_path / "stand-in"
    stand_in.mkdir()
    (stand_in / "sitecustomize.py").write_text(FULL_HEAP)
    cached_data(tmp_path, triangles_dir)
    env = {
        **SCRIPT,
        "PYTHONPATH": os.pathsep.join([str(stand_in), os.environ.get("PYTHONPATH", "")]),
    }
    _, result = _tune(
        tmp_path, env, "--backend", "tensorflow", "--precision", "float32", "--trials", "3"
    )
    ran = [t for t in result.tune.trials if t.status not in (SKIPPED, NOT_RUN)]
    # Each trial failed in the worker that had run one before, and ran in a fresh one.
    assert len(ran) == 3 and all(t.status in (RAN, PRUNED, DEVIATES) for t in ran), [
        (t.status, t.reason) for t in ran
    ]


def test_ctrl_c_during_a_full_trial_keeps_its_short_steps_and_writes_the_session(
    tmp_path, triangles_dir
):
    import signal
    import time

    from cli_helpers import start

    cached_data(tmp_path, triangles_dir)
    fused = {"match": {"batchnorm": "fused"}, "step_ms": [60.0, 61.0]}
    script = fake(step_ms=[100.0, 101.0, 99.0], sleep_s=0.5, settings=[fused])
    process = start(
        "tune", "--preset", "smoke", "--steps", str(STEPS), "--backend", "tensorflow",
        "--precision", "float32", "--trials", "2", cwd=tmp_path, env=script,
    )  # fmt: skip
    try:
        for line in process.stderr:
            if line.startswith("in full 1/1:"):
                break
        time.sleep(2.0)  # its compile and warm-up done, a timed step or two in
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, rest
    (written,) = (tmp_path / "results").glob("segbench-tune-smoke-*.json")
    info = load_result(written).tune
    assert info.stopped_by == "SIGINT"
    default, fused = info.trials[0], info.trials[1]
    assert default.status == RAN and len(default.samples_ms_per_image) == STEPS
    assert (fused.status, fused.reason) == (PRUNED, "not run in full: stopped")
    assert fused.samples_ms_per_image == [30.0, 30.5]  # its short steps, kept
    assert info.trials[info.fastest] is default or info.fastest == 0


def test_timing_stops_only_when_every_timed_step_so_far_is_too_slow():
    from segbench.measure.run import reuse

    try:
        reuse.stop_timing_above(75.0)  # ms/image
        assert not reuse.far_too_slow(80.0, 2)  # 40 ms/image
        assert not reuse.far_too_slow(600.0, 2)  # 300: slow, but a step before was fast
        reuse.stop_timing_above(75.0)  # the next run starts afresh
        assert reuse.far_too_slow(300.0, 2)  # its first step: 150 ms/image
        reuse.stop_timing_above(None)
        assert not reuse.far_too_slow(10_000.0, 2)  # a plain run times every step
    finally:
        reuse.stop_timing_above(None)
