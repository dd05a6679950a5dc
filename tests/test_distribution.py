"""Data-parallel runs: replicas that really split the batch (two logical CPU devices, two
local worker processes), the launcher's handling of a dying worker, TF_CONFIG and batches."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from cli_helpers import segbench, start

from segbench import distribution
from segbench.config import PRESETS
from segbench.distribution import Survey, batches, parse_tf_config, scaling_efficiency
from segbench.doctor.cluster import check_distribution
from segbench.errors import BadInput, Unavailable
from segbench.launch import tf_config, worker_args

# The first training step's loss: on one device over the whole batch, on one device over each
# half, and on two replicas (each one half) with per-replica and with synchronized
# BatchNormalization. No dropout, so every model computes the same function.
FIRST_STEP = """
import json, sys
from dataclasses import replace
from segbench import backend, distribution, triangles
from segbench.config import PRESETS

name, data = sys.argv[1], sys.argv[2]
config = PRESETS["smoke"].with_overrides(backend=name, strategy="mirrored", cpu_replicas=2)
distribution.configure_before_import(config)
backend.select_backend(name)
import keras
from segbench.runner import compile_model

replication = distribution.start(config)
train, _ = triangles.load_dataset(data, 512)
x, y = train.x[:4], train.y[:4]
single = replace(config, strategy=None, cpu_replicas=None)

model = compile_model(single, 0.25, dropout=False)

def first_loss(x, y):
    # What the first train step reports: its loss before the update, in training mode.
    return float(keras.ops.mean(model.loss(y, model(x, training=True))))

found = {
    "replicas": replication.replicas,
    "full": first_loss(x, y),
    "halves": [first_loss(x[:2], y[:2]), first_loss(x[2:], y[2:])],
}
for sync in ([False, True] if name == "tensorflow" else [False]):
    with replication.scope():
        model = compile_model(replace(config, sync_batchnorm=sync or None), 0.25, dropout=False)
    train_step, _ = replication.step_functions(model, (x[:2], y[:2]))
    found["synchronized" if sync else "per_replica"] = float(
        train_step(replication.stage(x, y))["loss"]
    )
print(json.dumps(found))
"""


def _first_step(backend_name: str, data) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend_name, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    done = subprocess.run(
        [sys.executable, "-c", FIRST_STEP, backend_name, str(data)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_mirrored_replicas_each_train_on_their_half_of_the_global_batch(small_dataset):
    found = _first_step("tensorflow", small_dataset)
    assert found["replicas"] == 2
    mean_of_halves = sum(found["halves"]) / 2
    # Synchronized BatchNormalization: the one-device step on the whole batch (its variance
    # is all-reduced as E[x²] − E[x]², hence float32 rounding of a few 1e-5).
    assert found["synchronized"] == pytest.approx(found["full"], rel=2e-4)
    # Per-replica BatchNormalization: each replica normalises its own half, so the step is
    # the mean of the one-device steps on each half, and measurably not the whole batch's.
    assert found["per_replica"] == pytest.approx(mean_of_halves, rel=1e-5)
    assert abs(found["per_replica"] / found["full"] - 1) > 1e-3


def test_jax_data_parallel_on_two_cpu_devices_matches_one_device(small_dataset):
    pytest.importorskip("jax", reason="the jax extra is not installed (uv sync --extra jax)")
    found = _first_step("jax", small_dataset)
    assert found["replicas"] == 2
    # One array spans both devices: BatchNormalization sees the whole batch.
    assert found["per_replica"] == pytest.approx(found["full"], rel=1e-5)


RUN = ["--preset", "smoke", "--no-check-numerics", "--no-peak", "--no-telemetry"]


def test_launch_runs_two_local_workers_into_one_result(tmp_path):
    done = segbench(
        "launch", "--workers", "2", "--", "run", *RUN, "--steps", "2", "--scaling", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    files = list((tmp_path / "results").glob("*.json"))
    assert len(files) == 1  # only the chief writes
    result = json.loads(files[0].read_text())
    d = result["distribution"]
    assert (d["strategy"], d["workers"], d["replicas"]) == ("multiworker", 2, 2)
    assert (d["per_replica_batch"], d["global_batch"], d["scaling"]) == (2, 4, "weak")
    assert d["images_per_s"] == pytest.approx(2 * d["images_per_s_per_replica"])
    # --scaling: one replica timed alone first, on each worker, at the per-replica batch.
    assert d["scaling_efficiency"] == pytest.approx(
        d["images_per_s"] / (2 * d["one_replica_images_per_s"])
    )
    assert {s["images"] for s in result["steps"]} == {4}
    assert result["config"]["batch_size"] == 4 and result["config"]["strategy"] == "multiworker"
    assert "worker 1: pid" in done.stderr and "no result" not in done.stderr


def test_a_worker_that_dies_mid_run_stops_the_job_and_leaves_no_result(tmp_path):
    launcher = start("launch", "--workers", "2", "--", "run", *RUN, "--steps", "200", cwd=tmp_path)
    lines = []
    worker = None
    for line in launcher.stderr:  # the launcher's news, then the chief's progress lines
        lines.append(line)
        if line.startswith("worker 1: pid"):
            worker = int(line.split()[3].rstrip(","))
        if "compile: 1" in line:  # the chief's first step: every worker is in the job
            break
    assert worker is not None, "".join(lines)
    killed = time.monotonic()
    os.kill(worker, signal.SIGKILL)
    _, rest = launcher.communicate(timeout=60)
    assert time.monotonic() - killed < 30
    assert launcher.returncode == 1
    assert "worker 1 (127.0.0.1:" in rest and f"pid {worker}) was killed by SIGKILL" in rest
    assert "no result written" in rest
    assert not list((tmp_path / "results").glob("*.json"))


def test_tf_config_names_every_task_and_ours():
    cluster = parse_tf_config(tf_config(["127.0.0.1:2222", "127.0.0.1:2223"], 1))
    assert cluster.addresses == ("127.0.0.1:2222", "127.0.0.1:2223")
    assert (cluster.index, cluster.is_chief, cluster.peers) == (1, False, ["127.0.0.1:2222"])
    chief = parse_tf_config(
        json.dumps(
            {
                "cluster": {"chief": ["a:1"], "worker": ["b:1", "c:1"]},
                "task": {"type": "worker", "index": 0},
            }
        )
    )
    assert chief.addresses == ("a:1", "b:1", "c:1") and chief.index == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "TF_CONFIG is not set"),
        ("{cluster", "not JSON"),
        ('{"cluster": {"worker": ["a:1"]}}', "needs"),
        ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "'ps' is not used"),
        ('{"cluster": {"worker": ["a"]}, "task": {"type": "worker", "index": 0}}', "host:port"),
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
            "out of range",
        ),
        (
            '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
            "share an address",
        ),
    ],
)
def test_a_broken_tf_config_is_named(text, problem):
    with pytest.raises(BadInput, match="TF_CONFIG") as error:
        parse_tf_config(text)
    assert problem in str(error.value)


def test_batches_are_per_replica_unless_the_global_batch_is_fixed():
    assert batches(16, None, 4) == (16, 64)  # weak scaling
    assert batches(16, 64, 4) == (16, 64)  # strong scaling
    assert batches(16, 32, 4) == (8, 32)
    with pytest.raises(BadInput, match="--global-batch 30: does not split evenly over 4"):
        batches(16, 30, 4)
    assert scaling_efficiency(300.0, 4, 100.0) == pytest.approx(0.75)
    assert scaling_efficiency(300.0, 4, None) is None


def test_survey_finds_a_busy_port_a_foreign_address_and_silent_peers():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = distribution.survey("multiworker", tf_config([f"127.0.0.1:{port}"], 0), False)
        assert taken.problem == f"port {port} is in use"
        peer = tf_config(["127.0.0.1:1", f"127.0.0.1:{port}"], 0)
        listening = distribution.survey("multiworker", peer, peers=True)
        assert listening.problem is None and listening.unreachable == ()
    silent = distribution.survey("multiworker", tf_config(["127.0.0.1:1", "127.0.0.1:9"], 0), True)
    assert silent.unreachable == ("127.0.0.1:9",)
    foreign = distribution.survey("multiworker", tf_config(["192.0.2.1:5000"], 0), False)
    assert foreign.problem == "192.0.2.1 is not an address of this machine"
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1:9 not reachable after 0 s"):
        distribution.wait_for_peers(
            parse_tf_config(tf_config(["127.0.0.1:1", "127.0.0.1:9"], 0)), 0
        )


def test_doctor_judges_the_distribution_set_up():
    fail = check_distribution(
        Survey("multiworker", "task 0", "port 5 is in use", "stop it"), [], None
    )
    assert (fail.status, fail.fix) == ("FAIL", "stop it")
    warn = check_distribution(Survey("multiworker", "task 0", unreachable=("h:1",)), [], None)
    assert warn.status == "WARN" and "h:1" in warn.found and "120 s" in warn.fix
    assert check_distribution(Survey("multiworker", "task 0"), [], None).status == "PASS"
    too_many = check_distribution(Survey("mirrored", "mirrored"), ["GPU 0"], 2)
    assert too_many.status == "FAIL" and too_many.fix.startswith("lower --gpus to 1")
    assert check_distribution(Survey("mirrored", "m"), ["a", "b"], None).found == (
        "mirrored over 2 GPU(s)"
    )


def test_launch_adds_the_strategy_and_refuses_another():
    assert worker_args(["run", "--preset", "smoke"])[-2:] == ["--strategy", "multiworker"]
    assert worker_args(["run", "--strategy=multiworker"]) == ["run", "--strategy=multiworker"]
    with pytest.raises(BadInput, match="not --strategy mirrored"):
        worker_args(["run", "--strategy", "mirrored"])
    with pytest.raises(BadInput, match="give the run after --"):
        worker_args(["compare", "a.json"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cpu_replicas": 2}, "only with --strategy mirrored or multiworker"),
        ({"strategy": "mirrored", "backend": "torch"}, "the torch backend has no tf.distribute"),
        ({"strategy": "mirrored", "epochs": 2}, "the epoch protocol"),
        ({"strategy": "mirrored", "gpus": 2, "cpu_replicas": 2}, "exclude each other"),
        ({"strategy": "mirrored", "cpu_replicas": 2, "device": "gpu"}, "--device gpu"),
        ({"strategy": "multiworker", "keras": 2}, "Keras 3"),
        ({"strategy": "mirrored", "backend": "jax", "sync_batchnorm": True}, "already sees"),
    ],
)
def test_options_that_cannot_distribute_are_refused(overrides, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["quick"].with_overrides(**overrides).validate()


def test_run_refuses_bad_distribution_options_in_one_line(tmp_path):
    done = segbench("run", *RUN, "--strategy", "multiworker", cwd=tmp_path, env={"TF_CONFIG": ""})
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: --strategy multiworker: TF_CONFIG is not set")
    assert not (tmp_path / "results").exists()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_a_worker_that_never_joins_stops_the_job_in_time_and_a_signal_stops_the_wait(tmp_path):
    """Two workers in TF_CONFIG, the second never started (TensorFlow's strategy set-up would
    wait for it in C++, holding the GIL): the run stops when the wait is over, naming it, and
    SIGTERM stops the wait."""
    from cli_helpers import ctrl_c_default

    chief, missing = _free_ports(2)
    config = tf_config([f"127.0.0.1:{chief}", f"127.0.0.1:{missing}"], 0)
    run = ("run", "--preset", "smoke", "--strategy", "multiworker", "--out", "out")
    begun = time.monotonic()
    done = segbench(*run, cwd=tmp_path, env={"TF_CONFIG": config, "SEGBENCH_PEER_TIMEOUT": "4"})
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: worker(s) 127.0.0.1:{missing} not reachable after 4 s: start segbench run"
        )
    )
    assert time.monotonic() - begun < 150
    assert not (tmp_path / "out").exists()

    waiting = subprocess.Popen(
        [sys.executable, "-m", "segbench", *run],
        cwd=tmp_path,
        env={**os.environ, "TF_CONFIG": config, "SEGBENCH_CACHE": str(tmp_path / "cache")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        for line in waiting.stderr:
            if line.startswith("waiting for the other workers"):
                break
        time.sleep(3)  # waiting for the missing worker by now
        waiting.send_signal(signal.SIGTERM)
        _, rest = waiting.communicate(timeout=60)
        assert waiting.returncode == 143
        assert rest.strip().splitlines()[-1] == (
            "error: interrupted while waiting for the other workers; nothing was measured"
        )
    finally:
        waiting.kill()


def test_another_program_on_a_peers_port_is_not_taken_for_a_worker():
    """TensorFlow would wait for it forever: the rendezvous asks for the workers' token."""
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        cluster = parse_tf_config(tf_config(["127.0.0.1:1", f"127.0.0.1:{port}"], 0))
        began = time.monotonic()
        with pytest.raises(Unavailable, match=rf"127\.0\.0\.1:{port} not reachable after 1 s"):
            distribution.wait_for_peers(cluster, 1, b"segbench-worker x")
        assert time.monotonic() - began < 10
        distribution.wait_for_peers(cluster, 0)  # without a token, listening is enough
