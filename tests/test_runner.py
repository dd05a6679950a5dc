import json
import math
import os
import signal
import time

import pytest

from segbench.benchmark.config import PRESETS, learning_rate
from segbench.benchmark.triangles import load_dataset
from segbench.cli import _sigterm
from segbench.measure import backend
from segbench.measure.fake_trainer import FakeTrainer
from segbench.measure.run.runner import (
    COMPILE,
    TIMED,
    TRAIN,
    VALIDATION,
    WARMUP,
    batch_rows,
    run_benchmark,
)
from segbench.measure.trainer import FAKE_ENV

SMOKE = PRESETS["smoke"].with_overrides(deterministic=True, steps=3)


@pytest.fixture(scope="module")
def splits(small_dataset):
    return load_dataset(small_dataset)


@pytest.fixture(scope="module")
def cpu():
    return backend.choose_device("cpu")


@pytest.fixture
def fake_trainer(monkeypatch):
    """The loop on the fake trainer (its phases, signals and records; no model trained)."""
    FakeTrainer._instances.clear()
    monkeypatch.setenv(FAKE_ENV, json.dumps({"step_ms": [10.0, 12.0]}))
    yield
    FakeTrainer._instances.clear()


@pytest.mark.slow
def test_same_seed_gives_identical_losses(splits, cpu):
    # (Another seed draws other initial weights: test_numerics checks that without a run.)
    first = run_benchmark(SMOKE, cpu, *splits)
    second = run_benchmark(SMOKE, cpu, *splits)
    losses = [s.loss for s in first.steps]
    assert len(losses) == 1 + SMOKE.warmup + SMOKE.steps
    assert all(math.isfinite(v) for v in losses)
    assert losses == [s.loss for s in second.steps]
    assert [s.iou for s in first.steps] == [s.iou for s in second.steps]
    assert all(s.ms > 0 and s.images == 2 for s in first.steps)
    assert first.parameters == 87_311
    assert first.training_flops_per_image == pytest.approx(3 * 0.217060606e9, rel=1e-6)


def test_steps_protocol_reports_compile_and_warmup_apart(splits, cpu, fake_trainer):
    m = run_benchmark(SMOKE.with_overrides(warmup=2, steps=2), cpu, *splits)
    assert [s.phase for s in m.steps] == [COMPILE, WARMUP, WARMUP, TIMED, TIMED]
    assert [s.index for s in m.steps] == [0, 1, 2, 3, 4]
    assert [s.ms for s in m.steps] == [900.0, 10.0, 12.0, 10.0, 12.0]
    assert all(s.images == 2 for s in m.steps)
    # Each step starts where the last ended, on the run's clock.
    assert [s.at_s for s in m.steps] == pytest.approx([0.0, 0.9, 0.91, 0.922, 0.932])
    assert m.status == "complete"


def test_epoch_protocol_follows_schedule_and_validates(splits, cpu, fake_trainer):
    config = SMOKE.with_overrides(batch_size=3, epochs=2)  # 8 train images: batches of 3, 3, 2
    m = run_benchmark(config, cpu, *splits)
    train = [s for s in m.steps if s.training]
    val = [s for s in m.steps if not s.training]
    assert [s.images for s in train] == [3, 3, 2] * 2
    assert [s.phase for s in train] == [COMPILE, TRAIN, COMPILE, TRAIN, TRAIN, TRAIN]
    assert [s.phase for s in val] == [COMPILE, COMPILE, VALIDATION, VALIDATION]  # batches 3, 1
    assert [e.epoch for e in m.epochs] == [0, 1]
    assert [e.learning_rate for e in m.epochs] == pytest.approx([0.25, 0.25 * 0.5**0.9])
    assert all(e.train_images == 8 and e.validation_images == 4 for e in m.epochs)
    # The epoch time is wall time around its steps, each of which was timed.
    assert m.epochs[0].train_s >= sum(s.ms for s in train[:3]) / 1000
    assert learning_rate(1, 2) == pytest.approx(0.1339717, rel=1e-6)


def test_ctrl_c_during_timing_returns_partial_measurement(splits, cpu, fake_trainer):
    def interrupt_after_two_timed_steps(event):
        if event.step is not None and event.step.phase == TIMED and event.completed == 2:
            raise KeyboardInterrupt

    m = run_benchmark(
        SMOKE.with_overrides(steps=50), cpu, *splits, notify=interrupt_after_two_timed_steps
    )
    assert m.status == "interrupted"
    assert [s.phase for s in m.steps].count(TIMED) == 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_whose_interrupt_a_library_catches_still_stops_the_run(
    splits, cpu, signum, fake_trainer
):
    """As jax's garbage-collection callback does: the KeyboardInterrupt raised inside it is
    caught and the run would go on; the runner raises the signal again after the next step."""

    def swallowing_callback(event):
        if event.step is not None and event.step.phase == TIMED and event.completed == 2:
            try:
                os.kill(os.getpid(), signum)
                time.sleep(1)  # the handler runs here and its exception is dropped
            except KeyboardInterrupt:
                pass

    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        m = run_benchmark(SMOKE.with_overrides(steps=50), cpu, *splits, notify=swallowing_callback)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert m.status == "interrupted"
    assert m.interrupted_by == signal.Signals(signum).name
    assert [s.phase for s in m.steps].count(TIMED) == 3  # the step after the dropped one
    assert signal.getsignal(signal.SIGTERM) is previous


def test_batches_wrap_around_the_training_set():
    assert batch_rows(6, 4, 8).tolist() == [6, 7, 0, 1]
    assert batch_rows(0, 3, 8).tolist() == [0, 1, 2]
