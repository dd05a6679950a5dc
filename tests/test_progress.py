"""Progress lines: the phase's place in the plan, n/N, the last step and the time left."""

import pytest

from segbench.benchmark.config import PRESETS
from segbench.measure.run.progress import Tracker, duration
from segbench.measure.run.runner import COMPILE, TIMED, WARMUP, Event, StepRecord


def _step(phase, ms, repeat=0, epoch=None):
    return StepRecord(repeat, phase, 0, epoch, True, 16, ms, 1.0, 0.5, 0.6)


def _phase(tracker, repeat, name, total):
    tracker.see(Event("phase", repeat, name, total=total))


def _steps(tracker, repeat, name, ms_list, total, first=0, record_phase=None):
    for i, ms in enumerate(ms_list, start=first + 1):
        step = _step(record_phase or name, ms, repeat)
        tracker.see(Event("step", repeat, name, total=total, completed=i, step=step))


def test_duration_reads_as_a_person_would():
    assert [duration(s) for s in (0.4, 12, 65, 3599, 3600, 4020)] == [
        "0 s",
        "12 s",
        "1 min 05 s",
        "59 min 59 s",
        "1 h 00 min",
        "1 h 07 min",
    ]


def test_time_left_in_the_phase_and_the_run_from_the_steps_timed_so_far():
    config = PRESETS["quick"].with_overrides(warmup=2, steps=20, repeats=2, cooldown=60)
    t = Tracker(config, train_images=500)
    _phase(t, 0, COMPILE, 1)
    assert t.left() == "time left: after the first step"
    _steps(t, 0, COMPILE, [30_000.0], 1)
    _phase(t, 0, WARMUP, 2)
    _steps(t, 0, WARMUP, [11_000.0, 9_000.0], 2)
    _phase(t, 0, TIMED, 20)
    _steps(t, 0, TIMED, [10_000.0] * 5, 20)
    # 15 timed steps of ~10 s left here; then a 60 s cool-down and a repeat of 1 compile
    # (30 s) + 22 steps (10 s each).
    assert t.phase_left_s() == pytest.approx(150.0)
    assert t.run_left_s() == pytest.approx(150 + 60 + 30 + 220)
    assert t.line() == (
        "repeat 1/2 · timed 5/20 · last step 10,000.0 ms · "
        "2 min 30 s left in this phase, 7 min 40 s in the run"
    )


def test_the_epoch_protocol_names_the_epoch_of_all_and_counts_validation_apart():
    config = PRESETS["article"].with_overrides(repeats=1, cooldown=0)
    t = Tracker(config, train_images=500, validation_images=100)  # 32 + 7 batches of 16
    _phase(t, 0, "epoch 1 train", 32)
    _steps(t, 0, "epoch 1 train", [40_000.0], 32, record_phase=COMPILE)
    _steps(t, 0, "epoch 1 train", [20_000.0] * 9, 32, first=1)
    assert t.label() == "repeat 1/1 · epoch 1/2 train"
    assert t.phase_left_s() == pytest.approx(22 * 20.0)
    _phase(t, 0, "epoch 1 validation", 7)
    _steps(t, 0, "epoch 1 validation", [6_000.0, 6_000.0], 7, record_phase="validation")
    # 5 validation steps at 6 s; epoch 2: 32 training steps at 20 s and 7 validation at 6 s.
    assert t.run_left_s() == pytest.approx(5 * 6 + 32 * 20 + 7 * 6)
    assert t.line().startswith("repeat 1/1 · epoch 1/2 validation 2/7 · last step 6,000.0 ms")


def test_a_cool_down_counts_its_seconds_down():
    config = PRESETS["quick"].with_overrides(repeats=2, cooldown=300)
    t = Tracker(config, train_images=500)
    _phase(t, 0, COMPILE, 1)
    _steps(t, 0, COMPILE, [30_000.0], 1)
    _phase(t, 0, TIMED, 20)
    _steps(t, 0, TIMED, [10_000.0] * 20, 20)
    t.see(Event("phase", 1, "cool-down", total=300))
    t.see(Event("cooldown", 1, "cool-down", total=300, completed=100))
    assert t.phase_left_s() == 200
    # then the second repeat: compile (30 s), 2 warm-up and 20 timed steps (10 s)
    assert t.run_left_s() == pytest.approx(200 + 30 + 220)


def test_the_plan_line_says_what_will_run():
    from segbench.measure.run.progress import plan_line

    assert plan_line(PRESETS["quick"]) == (
        "segbench run: preset quick — width 1, batch 16, 2 warm-up + 20 timed steps, "
        "1 repeat(s); tensorflow, float32"
    )
    assert plan_line(PRESETS["article"]).startswith(
        "segbench run: preset article — width 1, batch 16, 2 epoch(s) with validation, "
        "5 repeat(s) with 5 min 00 s cool-downs"
    )
