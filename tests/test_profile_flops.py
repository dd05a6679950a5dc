"""Which kernel holds the step back: each layer kind's counted FLOPs over its profiled op time
(achieved TFLOP/s) and that as a % of the run's measured matmul ceiling
(segbench/measure/profile/record.py). The run and `show` use the fake trainer's profile."""

from __future__ import annotations

import keras
import pytest
from cli_helpers import cached_data, fake, segbench

from segbench.benchmark.config import PRESETS
from segbench.benchmark.cvnet import (
    architecture_forward_flops,
    architecture_forward_flops_by_class,
    build_cvnet,
)
from segbench.measure.profile.layer_kinds import flops_by_kind, forward_flops_by_kind
from segbench.measure.profile.record import (
    ACTIVATION,
    ALL_KINDS,
    BATCH_NORM,
    CONVOLUTION,
    OTHER,
    TRANSPOSED,
    KindShare,
    Profile,
    kind_shares,
    op_time_totals,
    profile_table_rows,
    unattributed_share,
    with_ceiling,
    with_flops,
)
from segbench.results.result import load_result
from segbench.results.schema import from_json

SMOKE = PRESETS["smoke"]  # width 1/16, 512×512, batch 2


def _profile() -> Profile:
    """One step: 6 ms of convolutions, 3 of transposed ones and 1 of batch norm, one after
    another (a GPU's stream) in 12.5 ms of wall time; 1 G and 0.25 G forward FLOPs a sample."""
    kinds = kind_shares({CONVOLUTION: 6.0, TRANSPOSED: 3.0, BATCH_NORM: 1.0}, steps=1)
    intervals = [(0.0, 6e-3), (6e-3, 9e-3), (9e-3, 10e-3)]
    profile = Profile(
        steps=1,
        source="test",
        kinds=kinds,
        unattributed_share=unattributed_share(intervals, 12.5e-3),
    )
    return with_flops(profile, {CONVOLUTION: 1e9, TRANSPOSED: 0.25e9}, batch_size=2)


def test_kinds_tflops_weighted_by_time_share_give_the_steps_tflops_within_unattributed_time():
    profile = with_ceiling(_profile(), 2.0)
    by_kind = {k.kind: k for k in profile.kinds}
    # Training: 3 × forward × batch 2 → 6 and 1.5 GFLOP in 6 and 3 ms.
    assert by_kind[CONVOLUTION].gflop_per_step == pytest.approx(6.0)
    assert by_kind[CONVOLUTION].achieved_tflops == pytest.approx(1.0)
    assert by_kind[TRANSPOSED].achieved_tflops == pytest.approx(0.5)
    assert by_kind[CONVOLUTION].achieved_pct_of_measured == pytest.approx(50.0)
    assert by_kind[TRANSPOSED].achieved_pct_of_measured == pytest.approx(25.0)
    assert by_kind[BATCH_NORM].achieved_tflops is None  # time only
    assert profile.unattributed_share == pytest.approx(0.2)
    # The kinds' FLOPs are the step's: 3 × (1 + 0.25) G × 2 = 7.5 GFLOP.
    step_gflop = sum(k.gflop_per_step for k in profile.kinds if k.gflop_per_step)
    assert step_gflop == pytest.approx(7.5)
    total = op_time_totals(profile)
    assert total.gflop_per_step == pytest.approx(7.5)
    # 0.6 × 1 + 0.3 × 0.5 = 7.5 GFLOP / 10 ms of op time; and 37.5 % of the ceiling.
    assert total.achieved_tflops == pytest.approx(0.75) == step_gflop / total.ms_per_step
    assert total.achieved_pct_of_measured == pytest.approx(37.5)
    # Shares of op time, the rest of the wall time unattributed: 7.5 GFLOP / 12.5 ms.
    assert total.achieved_tflops * (1 - profile.unattributed_share) == pytest.approx(0.6)


def test_table_gives_each_kinds_tflops_and_share_of_the_ceiling_and_a_dash_without_flops():
    assert profile_table_rows(with_ceiling(_profile(), 2.0)) == [
        (CONVOLUTION, "6.0", "60.0", "1", "50.0"),
        (TRANSPOSED, "3.0", "30.0", "0.5", "25.0"),
        (BATCH_NORM, "1.0", "10.0", "—", "—"),
        (ALL_KINDS, "10.0", "100.0", "0.75", "37.5"),
    ]
    # No measured ceiling (--no-peak): TFLOP/s only.
    assert profile_table_rows(with_ceiling(_profile(), None))[-1] == (
        ALL_KINDS,
        "10.0",
        "100.0",
        "0.75",
        "—",
    )


def test_a_kind_written_before_its_flops_were_kept_still_loads():
    data = {
        "steps": 3,
        "source": "test",
        "kinds": [{"kind": OTHER, "ms_per_step": 1.0, "share": 1}],
    }
    loaded = from_json(Profile, data, "result.json")
    assert loaded.kinds == [KindShare(kind=OTHER, ms_per_step=1.0, share=1.0)]
    assert profile_table_rows(loaded) == [(OTHER, "1.0", "100.0", "—", "—")]


def test_cvnet_flops_by_kind_are_the_runs_count_split_between_the_two_convolution_kinds():
    by_class = architecture_forward_flops_by_class(SMOKE.width, SMOKE.image_size)
    by_kind = flops_by_kind(by_class)
    assert set(by_kind) == {CONVOLUTION, TRANSPOSED}
    assert sum(by_kind.values()) == architecture_forward_flops(SMOKE.width, SMOKE.image_size)
    assert by_kind[TRANSPOSED] == 168_616_080  # 78 % of the forward FLOPs at width 1/16
    # The built model, counted layer by layer, gives the same split.
    assert forward_flops_by_kind(build_cvnet(SMOKE.width, SMOKE.image_size)) == by_kind


def test_a_users_layer_classes_take_the_kind_their_ops_are_profiled_as():
    class MyConv(keras.layers.Conv2D):
        pass

    inputs = keras.Input((8, 8, 2))
    x = MyConv(4, 3, padding="same", name="mine")(inputs)  # 8·8·9·2·4 = 4608 multiply-adds
    x = keras.layers.ReLU(name="relu")(x)
    outputs = keras.layers.Dense(3, name="head")(keras.layers.Flatten()(x))  # 256·3 = 768
    flops = forward_flops_by_kind(keras.Model(inputs, outputs))
    assert flops == {CONVOLUTION: 2 * 4608, OTHER: 2 * 768}


PROFILE_MS = {CONVOLUTION: 5.0, TRANSPOSED: 50.0, BATCH_NORM: 15.0, ACTIVATION: 10.0}


def test_a_run_keeps_each_kinds_tflops_against_its_ceiling_and_show_prints_them(
    tmp_path, triangles_dir
):
    cached_data(tmp_path, triangles_dir)
    script = fake(step_ms=[100.0], matmul_tflops=0.1, profile_ms=PROFILE_MS)
    ran = segbench(
        "run", "--preset", "smoke", "--profile", "--out", "out", cwd=tmp_path, env=script
    )
    assert ran.returncode == 0, ran.stderr
    result = load_result(next((tmp_path / "out").glob("*.json")))
    kinds = {k.kind: k for k in result.profile.kinds}
    step_gflop = result.model.training_gflop_per_image * result.config.batch_size  # 1.302
    assert sum(k.gflop_per_step or 0 for k in kinds.values()) == pytest.approx(step_gflop)
    # 3 × 168,616,080 × 2 FLOP in 50 ms; 3 × 48,444,526 × 2 in 5 ms.
    assert kinds[TRANSPOSED].achieved_tflops == pytest.approx(0.020234, rel=1e-4)
    assert kinds[CONVOLUTION].achieved_tflops == pytest.approx(0.058133, rel=1e-4)
    assert kinds[TRANSPOSED].achieved_pct_of_measured == pytest.approx(20.234, rel=1e-4)
    assert kinds[BATCH_NORM].achieved_tflops is None
    # 80 ms of ops in a 100 ms step: the kinds' op-time TFLOP/s × 0.8 is the run's own.
    assert result.profile.unattributed_share == pytest.approx(0.2)
    total = op_time_totals(result.profile)
    assert total.achieved_tflops * 0.8 == pytest.approx(result.summary.tflops)
    assert result.summary.tflops == pytest.approx(step_gflop / 100)
    assert result.peak.achieved_pct_of_measured == pytest.approx(13.02, rel=1e-3)

    shown = segbench("show", str(next((tmp_path / "out").glob("*.json"))), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    rows = [line.replace("│", " ").split() for line in shown.stdout.splitlines()]
    assert ["transposed", "convolution", "50.0", "62.5", "0.0202", "20.2"] in rows
    assert ["convolution", "5.0", "6.2", "0.0581", "58.1"] in rows
    assert ["batch", "norm", "15.0", "18.8", "—", "—"] in rows
    assert ["all", "kinds", "80.0", "100.0", "0.0163", "16.3"] in rows


def test_tune_shows_the_default_and_the_winner_each_kind_against_its_ceiling(
    tmp_path, triangles_dir
):
    cached_data(tmp_path, triangles_dir)
    fused = {"step_ms": [80.0], "profile_ms": {**PROFILE_MS, BATCH_NORM: 5.0, ACTIVATION: 0.0}}
    script = fake(
        step_ms=[100.0],
        matmul_tflops=0.1,
        profile_ms=PROFILE_MS,
        settings=[{"match": {"batchnorm": "fused"}, **fused}],
    )
    args = ("--preset", "smoke", "--backend", "tensorflow", "--precision", "float32")
    tuned = segbench("tune", *args, "--trials", "2", "--out", "out", cwd=tmp_path, env=script)
    assert tuned.returncode == 0, tuned.stderr
    rows = [line.replace("│", " ").split() for line in tuned.stdout.splitlines()]
    # The default (keras BN, 80 ms of ops) and the winner (fused BN, 60 ms): same kernels.
    assert ["all", "kinds", "80.0", "100.0", "0.0163", "16.3"] in rows
    assert ["all", "kinds", "60.0", "100.0", "0.0217", "21.7"] in rows
    assert rows.count(["transposed", "convolution", "50.0", "83.3", "0.0202", "20.2"]) == 1
    saved = load_result(next((tmp_path / "out").glob("*.json")))
    default = {k.kind: k for k in saved.tune.default_profile.kinds}
    assert default[CONVOLUTION].achieved_pct_of_measured == pytest.approx(58.133, rel=1e-4)


def test_fake_profile_of_an_unknown_kind_is_refused(tmp_path):
    script = fake(profile_ms={"matmul": 5.0})
    ran = segbench("run", "--preset", "smoke", "--profile", cwd=tmp_path, env=script)
    assert ran.returncode == 2
    assert "profile_ms must give layer kinds" in ran.stderr
