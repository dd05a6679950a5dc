"""Where the time goes: the profiler's op time shared out by layer kind
(segbench/measure/profile/record.py).

The TensorFlow tests profile CV-net at width 1/16 (512×512, the smallest input it builds),
batch 2, in this process; the torch test runs the same in a child process with
KERAS_BACKEND=torch (`python tests/test_profile.py` prints the profile as JSON).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import keras
import numpy as np
import pytest

from segbench.measure.profile import layer_kinds, profile_tensorflow, profile_torch, profiler
from segbench.measure.profile import record as profile_module
from segbench.measure.profile.layer_kinds import layer_kind
from segbench.measure.profile.profiler import profile_steps
from segbench.measure.profile.record import (
    ACTIVATION,
    BATCH_NORM,
    CONCATENATION,
    CONVOLUTION,
    KINDS,
    LOSS,
    OPTIMIZER,
    OTHER,
    TABLE_HEADER,
    TRANSPOSED,
    KindShare,
    Profile,
    profile_table_rows,
)
from segbench.results.schema import FieldError, from_json, to_json

STEPS = 3
BATCH = 2
on_tensorflow = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="the in-process tests run on tensorflow"
)


def _cvnet_batch(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.random((BATCH, 512, 512, 1), dtype=np.float32)
    return x, (rng.random((BATCH, 512, 512, 1)) > 0.5).astype(np.float32)


def _warmed_cvnet():
    """CV-net at width 1/16 compiled as a run compiles it, its step traced and warmed up."""
    from segbench.benchmark.config import PRESETS
    from segbench.measure import generation
    from segbench.measure.run.compilation import compile_model

    model = compile_model(PRESETS["smoke"], lr=0.01)
    train_step, _ = generation.load(3).step_functions(model, jit_compile=False)
    batch = _cvnet_batch(np.random.default_rng(0))
    for _ in range(2):
        train_step(*batch)
    return model, train_step, batch


def _share(profile: Profile, *kinds: str) -> float:
    return sum(k.share for k in profile.kinds if k.kind in kinds)


def _assert_cvnet_profile(profile: Profile) -> None:
    """What a CV-net profile on any backend shows: every kind of its layers, the loss and the
    optimizer, shares that add up, and nearly no op left unattributed."""
    assert profile.reason is None, profile.reason
    assert profile.steps == STEPS
    assert sum(k.share for k in profile.kinds) == pytest.approx(1.0, abs=1e-6)
    assert all(k.ms_per_step > 0 and 0 < k.share <= 1 for k in profile.kinds)
    found = {k.kind for k in profile.kinds}
    assert found >= {CONVOLUTION, TRANSPOSED, BATCH_NORM, ACTIVATION, CONCATENATION, LOSS}
    assert found >= {OPTIMIZER}
    # At width 1/16 on a CPU the element-wise work is large: Keras 3's batch norm (mean,
    # variance and normalisation as separate ops) takes about as much as the convolutions.
    assert _share(profile, CONVOLUTION, TRANSPOSED) > 0.2
    assert _share(profile, CONVOLUTION, TRANSPOSED, BATCH_NORM) > 0.5
    assert 0 < _share(profile, OPTIMIZER) < 0.05  # SGD on 87,000 parameters
    assert _share(profile, OTHER) < 0.05  # the rest is gradient sums between layers
    assert profile.unattributed_share is not None and 0 <= profile.unattributed_share < 0.9


@pytest.fixture(scope="module")
def cvnet_profile() -> tuple[Profile, float]:
    """CV-net's profile over STEPS steps as a run makes it (each kind with its FLOPs), and
    the wall time per step around the profiling."""
    from segbench.benchmark.config import PRESETS
    from segbench.measure.trainer import KerasTrainer

    model, train_step, batch = _warmed_cvnet()
    start = time.perf_counter()
    profile = KerasTrainer().profile(PRESETS["smoke"], model, train_step, batch, STEPS)
    return profile, (time.perf_counter() - start) * 1000 / STEPS


@pytest.fixture(scope="module")
def dense_model():
    """A model without convolutions, compiled and warmed up, with its step and a batch."""
    inputs = keras.Input((16,), name="features")
    hidden = keras.layers.Dense(32, activation="relu", name="hidden")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(hidden), name="tiny")
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="mse")
    rng = np.random.default_rng(1)
    batch = rng.random((8, 16), dtype=np.float32), rng.random((8, 1), dtype=np.float32)
    step = lambda x, y: model.train_on_batch(x, y, return_dict=True)  # noqa: E731
    step(*batch)
    return model, step, batch


@pytest.mark.slow
@on_tensorflow
def test_cvnet_op_time_is_shared_out_by_layer_kind_on_tensorflow(cvnet_profile):
    profile, _ = cvnet_profile
    _assert_cvnet_profile(profile)
    assert profile.source.startswith("tensorflow profiler") and profile.source.endswith("CPU")


@pytest.mark.slow
@on_tensorflow
def test_cvnet_op_time_per_step_is_near_the_step_time_on_tensorflow(cvnet_profile):
    # Ops run on two inter-op threads at once (more op time than wall time); the wall time
    # also holds the profiler's start and stop.
    profile, wall_ms = cvnet_profile
    op_ms = sum(k.ms_per_step for k in profile.kinds)
    assert 0.3 * wall_ms < op_ms < 3 * wall_ms


@pytest.mark.slow
@on_tensorflow
def test_cvnet_kinds_flops_add_up_to_the_steps_training_flops(cvnet_profile):
    from segbench.benchmark.cvnet import architecture_forward_flops

    profile, _ = cvnet_profile
    counted = {k.kind: k for k in profile.kinds if k.gflop_per_step is not None}
    assert set(counted) == {CONVOLUTION, TRANSPOSED}  # batch norm, activations: time only
    step_gflop = 3 * architecture_forward_flops(1 / 16, 512) * BATCH / 1e9  # 1.302 GFLOP
    assert sum(k.gflop_per_step for k in counted.values()) == pytest.approx(step_gflop)
    for k in counted.values():
        assert k.achieved_tflops == pytest.approx(k.gflop_per_step / k.ms_per_step)
    # Weighted by their shares of op time, the kinds' TFLOP/s are the step's over op time.
    op_ms = sum(k.ms_per_step for k in profile.kinds)
    weighted = sum(k.share * k.achieved_tflops for k in counted.values())
    assert weighted == pytest.approx(step_gflop / op_ms)


@pytest.mark.slow
@on_tensorflow
def test_profile_round_trips_through_the_result_schema(cvnet_profile):
    profile, _ = cvnet_profile
    assert from_json(Profile, json.loads(json.dumps(to_json(profile))), "profile") == profile


@on_tensorflow
def test_model_without_convolutions_has_no_convolution_kind(dense_model):
    profile = profile_steps(*dense_model, steps=2)
    kinds = {k.kind for k in profile.kinds}
    assert profile.reason is None
    assert not kinds & {CONVOLUTION, TRANSPOSED, BATCH_NORM}
    assert {OTHER, OPTIMIZER, LOSS} <= kinds  # Dense layers, the SGD update, the mse
    assert sum(k.share for k in profile.kinds) == pytest.approx(1.0, abs=1e-6)


@on_tensorflow
def test_profiler_already_running_gives_a_reason_not_an_exception(dense_model, tmp_path):
    import tensorflow as tf

    tf.profiler.experimental.start(str(tmp_path))  # someone else's profile
    try:
        profile = profile_steps(*dense_model, steps=2)
    finally:
        tf.profiler.experimental.stop()  # still running: profile_steps left it alone
    assert profile.kinds == [] and profile.unattributed_share is None
    assert profile.reason.startswith("profiling on tensorflow failed: ")
    assert "\n" not in profile.reason


@on_tensorflow
def test_failing_step_gives_a_reason_and_stops_the_profiler(dense_model, tmp_path):
    model, _, batch = dense_model

    def broken_step(x, y):
        raise RuntimeError("out of memory\non the device")

    profile = profile_steps(model, broken_step, batch, steps=2)
    assert (
        profile.reason
        == "profiling on tensorflow failed: RuntimeError: out of memory on the device"
    )
    again = profile_steps(*dense_model, steps=1)  # the failed one stopped its profiler
    assert again.reason is None


def test_jax_gets_a_reason_and_no_kinds(dense_model, monkeypatch):
    monkeypatch.setattr(profiler.backend, "backend_name", lambda: "jax")
    profile = profile_steps(*dense_model, steps=1)
    assert profile.kinds == [] and profile.reason == "no profiler attribution for the jax backend"
    assert from_json(Profile, to_json(profile), "profile") == profile


def test_layer_classes_map_to_kinds_subclasses_included():
    class MyNorm(keras.layers.BatchNormalization):
        pass

    layers = keras.layers
    assert layer_kind(layers.SeparableConv2D(2, 3)) == CONVOLUTION
    assert layer_kind(layers.DepthwiseConv2D(3)) == CONVOLUTION
    assert layer_kind(layers.Conv2DTranspose(2, 3)) == TRANSPOSED
    assert layer_kind(MyNorm()) == BATCH_NORM
    assert layer_kind(layers.LeakyReLU()) == ACTIVATION
    assert layer_kind(layers.SpatialDropout2D(0.1)) == ACTIVATION
    assert layer_kind(layers.UpSampling2D()) == CONCATENATION
    assert layer_kind(layers.Add()) == CONCATENATION
    assert layer_kind(layers.Dense(2)) == OTHER


def test_op_names_are_attributed_by_their_layer_name_scope():
    inner_in = keras.Input((8, 8, 2))
    inner = keras.Model(inner_in, keras.layers.Conv2D(2, 3, name="conv")(inner_in), name="block")
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.BatchNormalization(name="conv_1")(inner(inputs))
    model = keras.Model(inputs, keras.layers.Dense(1, name="head")(x), name="net")
    model.compile(optimizer=keras.optimizers.SGD(name="SGD"), loss="mse")
    kind = layer_kinds.Scopes.of(model).kind
    # Keras 3 on TensorFlow: every layer's scope is its name made unique, "<name>_1".
    assert kind("gradient_tape/net_1/block_1/conv_1/convolution/Conv2DBackpropFilter", "") == (
        CONVOLUTION  # inside the nested model
    )
    assert kind("net_1/conv_1_1/moments/SquaredDifference", "SquaredDifference") == BATCH_NORM
    assert kind("SGD/Mul_12", "Mul") == OPTIMIZER
    assert kind("SGD/AssignAddVariableOp", "AssignAddVariableOp") == OPTIMIZER
    assert kind("ResourceApplyKerasMomentum", "ResourceApplyKerasMomentum") == OPTIMIZER
    assert kind("gradient_tape/compile_loss/mean_squared_error/Sum", "Sum") == LOSS
    assert kind("net_1/head_1/MatMul", "MatMul") == OTHER
    assert kind("AddN_4", "AddN") == OTHER  # the sum of two gradients: no layer's


@on_tensorflow
def test_tf_keras_op_names_are_read_without_the_unique_suffix():
    tf_keras = pytest.importorskip("tf_keras")
    inputs = tf_keras.Input((8, 8, 2))
    x = tf_keras.layers.Conv2D(2, 3, name="conv")(inputs)
    x = tf_keras.layers.BatchNormalization(name="conv_1")(x)
    model = tf_keras.Model(inputs, x, name="net")
    model.compile(
        optimizer=tf_keras.optimizers.SGD(),
        loss=tf_keras.losses.mean_squared_error,
        metrics=["mae"],
    )
    kind = layer_kinds.Scopes.of(model).kind
    assert kind("net/conv/Conv2D", "Conv2D") == CONVOLUTION
    assert kind("net/conv_1/FusedBatchNormV3", "FusedBatchNormV3") == BATCH_NORM
    assert kind("SGD/SGD/update/ResourceApplyGradientDescent", "") == OPTIMIZER
    assert kind("mean_squared_error/SquaredDifference", "SquaredDifference") == LOSS


def test_table_rows_are_sorted_by_share_under_a_header_with_units():
    profile = Profile(
        steps=2,
        source="test",
        kinds=[
            KindShare(kind=CONVOLUTION, ms_per_step=12.345, share=0.25),
            KindShare(kind=BATCH_NORM, ms_per_step=37.0, share=0.75),
        ],
    )
    assert TABLE_HEADER == ("kind", "ms per step", "share %", "TFLOP/s", "% of measured ceiling")
    assert profile_table_rows(profile) == [  # no FLOPs counted: time only, no total
        (BATCH_NORM, "37.0", "75.0", "—", "—"),
        (CONVOLUTION, "12.3", "25.0", "—", "—"),
    ]


@pytest.mark.parametrize(
    ("kinds", "problem"),
    [
        ([{"kind": CONVOLUTION, "ms_per_step": 1.0, "share": 0.5}], "do not add up"),
        ([{"kind": OTHER, "ms_per_step": 1.0, "share": 1.0}] * 2, "appears twice"),
        ([{"kind": "matmul", "ms_per_step": 1.0, "share": 1.0}], "must be one of"),
        ([{"kind": OTHER, "ms_per_step": 1.0, "share": 1.5}], "at most 1"),
        ([], "says why"),
    ],
)
def test_a_profile_that_does_not_add_up_does_not_load(kinds, problem):
    data = {"steps": 3, "source": "test", "kinds": kinds}
    with pytest.raises(FieldError, match=problem):
        from_json(Profile, data, "result.json")


def _xplane_line(plane, line_id: int, events: list[tuple[str, int, int, dict]]) -> None:
    """Add a line of (name, start ps, duration ps, {stat: text}) events to an XPlane."""
    line = plane.lines.add(id=line_id, name="Stream #7" if line_id >= 100 else "tf_Compute")
    for name, start, duration, stats in events:
        metadata_id = len(plane.event_metadata) + 1
        plane.event_metadata[metadata_id].id = metadata_id
        plane.event_metadata[metadata_id].name = name
        event = line.events.add(metadata_id=metadata_id, offset_ps=start, duration_ps=duration)
        for stat_name, text in stats.items():
            stat_id = len(plane.stat_metadata) + 1
            plane.stat_metadata[stat_id].id = stat_id
            plane.stat_metadata[stat_id].name = stat_name
            event.stats.add(metadata_id=stat_id, str_value=text)


@on_tensorflow
def test_host_ops_count_their_self_time_and_gpu_kernels_their_launching_op():
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    model = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3, name="conv")], name="seq"
    )
    scopes = layer_kinds.Scopes.of(model)
    space = xplane_pb2.XSpace()
    host = space.planes.add(id=1, name="/host:CPU")
    us = 1_000_000  # picoseconds
    _xplane_line(
        host,
        1,
        [
            ("call:PartitionedCall", 0, 10 * us, {}),  # its body's op runs inside it
            ("seq_1/conv_1/convolution:Conv2D", 2 * us, 6 * us, {}),
            ("ExecutorState::Process", 0, 10 * us, {}),  # not an op
        ],
    )
    cpu = profile_tensorflow._attribute_xspace(space, scopes, steps=1, wall_s=20e-6)
    assert {k.kind: k.ms_per_step for k in cpu.kinds} == pytest.approx(
        {CONVOLUTION: 0.006, OTHER: 0.004}
    )
    assert cpu.unattributed_share == pytest.approx(0.5)  # 10 µs of ops in 20 µs
    assert cpu.source.endswith("CPU")

    gpu = space.planes.add(id=2, name="/device:GPU:0")
    _xplane_line(
        gpu,
        100,
        [
            ("implicit_convolve_sgemm", 0, 3 * us, {"tf_op": "seq_1/conv_1/convolution:Conv2D"}),
            ("redzone_checker", 5 * us, 1 * us, {}),
        ],
    )
    on_gpu = profile_tensorflow._attribute_xspace(space, scopes, steps=1, wall_s=10e-6)
    assert {k.kind: k.share for k in on_gpu.kinds} == pytest.approx(
        {CONVOLUTION: 0.75, OTHER: 0.25}
    )
    assert on_gpu.unattributed_share == pytest.approx(0.6) and on_gpu.source.endswith("GPU")


@on_tensorflow
def test_xla_compiled_step_on_the_cpu_gives_a_reason():
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    host = space.planes.add(id=1, name="/host:CPU")
    _xplane_line(host, 1, [("__inference_step_1:__inference_step_1", 0, 10, {})])
    _xplane_line(host, 2, [("convolution.64", 0, 5, {"hlo_op": "convolution.64"})])
    scopes = layer_kinds.Scopes.of(keras.Sequential([keras.Input((1,))]))
    profile = profile_tensorflow._attribute_xspace(space, scopes, steps=1, wall_s=1.0)
    assert profile.kinds == [] and "XLA" in profile.reason


def _torch_event(name, start, end, self_us, parent=None, sequence_nr=-1):
    event = SimpleNamespace(
        name=name,
        cpu_parent=parent,
        sequence_nr=sequence_nr,
        self_cpu_time_total=self_us,
        time_range=SimpleNamespace(start=start, end=end),
        device_type="DeviceType.CPU",
    )
    return event


def test_torch_backward_ops_take_the_kind_of_the_forward_op_that_made_them():
    conv_range = _torch_event("segbench convolution", 0, 10, 1)
    forward = _torch_event("aten::convolution", 1, 9, 0, conv_range, sequence_nr=5)
    leaf = _torch_event("aten::mkldnn_convolution", 2, 8, 6, forward)
    node = _torch_event(
        "autograd::engine::evaluate_function: ConvolutionBackward0", 20, 30, 1, sequence_nr=5
    )
    backward = _torch_event("aten::convolution_backward", 21, 29, 8, node)
    foreach = _torch_event("aten::_foreach_add_", 40, 42, 2)
    stray = _torch_event("aten::add", 50, 51, 1)
    events = [conv_range, forward, leaf, node, backward, foreach, stray]
    totals, intervals = profile_torch._attribute_torch_events(events, cuda=False)
    assert totals == pytest.approx({CONVOLUTION: 0.015, OPTIMIZER: 0.002, OTHER: 0.001})
    assert profile_module.busy_seconds(intervals) == pytest.approx(21e-6)  # µs → s


def test_every_kind_is_named_once():
    assert len(set(KINDS)) == len(KINDS) == 8


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None,
    reason="torch is not installed in this environment (the project's venv has none); run "
    "KERAS_BACKEND=torch python tests/test_profile.py where it is",
)
def test_cvnet_op_time_is_shared_out_by_layer_kind_on_torch():
    # A child process: the Keras backend is chosen once, at import.
    child = subprocess.run(
        [sys.executable, __file__],
        env={**os.environ, "KERAS_BACKEND": "torch"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    profile = from_json(Profile, json.loads(child.stdout.splitlines()[-1]), "child")
    _assert_cvnet_profile(profile)
    assert profile.source.startswith("torch profiler")


if __name__ == "__main__":  # the torch test's child process: KERAS_BACKEND=torch
    from segbench.benchmark.cvnet import build_cvnet
    from segbench.benchmark.losses import dice, iou, iou_mse_loss

    net = build_cvnet(1 / 16, 512)
    net.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=iou_mse_loss, metrics=[iou, dice]
    )
    step = lambda x, y: net.train_on_batch(x, y, return_dict=True)  # noqa: E731
    data = _cvnet_batch(np.random.default_rng(0))
    for _ in range(2):
        step(*data)
    print(json.dumps(to_json(profile_steps(net, step, data, steps=STEPS))))
