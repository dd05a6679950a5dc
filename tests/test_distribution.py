"""Data-parallel runs: replicas that really split the batch (two logical CPU devices, two
local worker processes), the launcher's handling of a dying worker, TF_CONFIG and batches."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import fake, segbench, start

from segbench import doctor
from segbench.benchmark.config import PRESETS
from segbench.doctor.cluster import check_distribution
from segbench.errors import BadInput, SigHup, SigTerm, Unavailable
from segbench.measure.parallel import peers
from segbench.measure.parallel.distribution import batches, scaling_efficiency
from segbench.measure.parallel.launch import tf_config, worker_args
from segbench.measure.parallel.peers import Survey
from segbench.measure.parallel.stop_vote import StopVote, ballot
from segbench.measure.parallel.tf_config import parse_tf_config

# The first training step's loss: on one device over the whole batch, on one device over each
# half, and on two replicas (each one half) with per-replica and with synchronized
# BatchNormalization. No dropout, so every model computes the same function.
FIRST_STEP = """
import json, sys
from dataclasses import replace
from segbench.measure import backend
from segbench.measure.parallel import distribution
from segbench.measure.parallel import strategies
from segbench.benchmark import triangles
from segbench.benchmark.config import PRESETS

name, data = sys.argv[1], sys.argv[2]
config = PRESETS["smoke"].with_overrides(backend=name, strategy="mirrored", cpu_replicas=2)
distribution.configure_before_import(config)
backend.select_backend(name)
import keras
from segbench.measure.run.compilation import compile_model

replication = strategies.start(config)
train, _ = triangles.load_dataset(data, 512)
x, y = train.batch(slice(0, 4))
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_jax_data_parallel_on_two_cpu_devices_matches_one_device(small_dataset):
    pytest.importorskip("jax", reason="the jax extra is not installed (uv sync --extra jax)")
    found = _first_step("jax", small_dataset)
    assert found["replicas"] == 2
    # One array spans both devices: BatchNormalization sees the whole batch.
    assert found["per_replica"] == pytest.approx(found["full"], rel=1e-5)


RUN = ["--preset", "smoke", "--no-check-numerics", "--no-peak", "--no-telemetry"]


@pytest.mark.slow
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


# The launcher's process handling and the stop vote, on the fake trainer: the workers meet
# through the real rendezvous and all-reduce their ballots through files (fake_workers.py);
# test_launch_runs_two_local_workers_into_one_result runs the real pair.
SLOW_STEPS = fake(sleep_s=0.05, step_ms=[50.0])


def test_a_worker_that_dies_mid_run_stops_the_job_and_leaves_no_result(tmp_path, small_dataset):
    launcher = start(
        "launch",
        "--workers",
        "2",
        "--",
        "run",
        *RUN,
        "--steps",
        "2000",
        "--data",
        str(small_dataset),
        cwd=tmp_path,
        env={**SLOW_STEPS, "TMPDIR": str(tmp_path)},  # the killed worker's all-reduce folder
    )
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
    assert "the chief was stopped (it keeps a partial result if its timed steps had begun)" in rest
    # Killed at the chief's compile step the job has nothing to keep; on a loaded machine the
    # kill can land after timed steps began, and then the chief keeps them, marked.
    for path in (tmp_path / "results").glob("*.json"):
        kept = json.loads(path.read_text())
        assert kept["status"] == "interrupted" and kept["summary"]["steps"] >= 1


def _until_timing(process: subprocess.Popen) -> list[str]:
    """Read `process`'s stderr until the chief's timed steps begin; the lines read."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "timed: " in line:
            return lines
    raise AssertionError("".join(lines))


def _only_result(folder) -> dict:
    files = list(folder.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text())


def test_sigterm_to_launch_stops_every_worker_and_the_chief_keeps_what_was_measured(
    tmp_path, small_dataset
):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    launcher = start(
        "launch",
        "--workers",
        "2",
        "--",
        "run",
        *RUN,
        "--steps",
        "500",
        "--data",
        str(small_dataset),
        cwd=tmp_path,
        env={"TMPDIR": str(temporary), **SLOW_STEPS},
    )
    try:
        _until_timing(launcher)
        time.sleep(1)  # a few timed steps
        launcher.send_signal(signal.SIGTERM)
        _, rest = launcher.communicate(timeout=200)
    finally:
        launcher.kill()
    assert launcher.returncode == 143, rest
    assert rest.strip().splitlines()[-1] == (
        "note: interrupted: SIGTERM passed to the 2 workers; they stopped"
    )
    # The chief's line says what it kept; it is the only error line.
    (said,) = [line for line in rest.splitlines() if line.startswith("error:")]
    assert said.startswith("error: interrupted: the partial result is in results/"), rest
    result = _only_result(tmp_path / "results")
    assert (result["status"], result["interrupted_by"]) == ("interrupted", "SIGTERM")
    assert 0 < sum(s["phase"] == "timed" for s in result["steps"]) < 500
    # The workers' logs and their all-reduce folder, removed: they stopped cleanly.
    assert sorted(temporary.iterdir()) == []


@pytest.mark.parametrize("after_s", [0.2, 1.0, 2.5])
def test_a_signal_early_in_launch_gives_one_error_line_that_names_what_happened(
    tmp_path, small_dataset, after_s
):
    """Whenever Ctrl-C lands (before the workers start, while they import, at their first
    step), the user reads one `error:` line, and none that points at a line never printed."""
    launcher = start(
        "launch", "--workers", "2", "--", "run", *RUN, "--steps", "50",
        "--data", str(small_dataset),
        cwd=tmp_path,
        env={"TMPDIR": str(tmp_path), **SLOW_STEPS},
    )  # fmt: skip
    try:
        time.sleep(after_s)
        launcher.send_signal(signal.SIGINT)
        _, stderr = launcher.communicate(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode == 130, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: interrupted"), stderr
    assert "line above" not in stderr
    assert "Traceback" not in stderr


def test_sigterm_to_one_worker_stops_the_job_after_the_same_step(tmp_path, small_dataset):
    """Without the launcher: the signalled worker (not the chief) votes to stop in the next
    step's all-reduce; every worker stops after that step, and the chief saves the job."""
    addresses = [f"127.0.0.1:{p}" for p in _free_ports(2)]
    run = ("run", *RUN, "--steps", "500", "--strategy", "multiworker")
    run = (*run, "--data", str(small_dataset))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    told = {**SLOW_STEPS, "TMPDIR": str(temporary)}
    workers = [
        start(*run, cwd=tmp_path, env={"TF_CONFIG": tf_config(addresses, i), **told})
        for i in range(2)
    ]
    try:
        _until_timing(workers[0])
        time.sleep(1)
        workers[1].send_signal(signal.SIGTERM)
        rests = [w.communicate(timeout=200)[1] for w in workers]
    finally:
        for w in workers:
            w.kill()
    assert [w.returncode for w in workers] == [143, 143], rests
    assert rests[1].strip().splitlines()[-1] == (
        "error: interrupted: this worker stopped; the chief (task 0) writes the job's partial "
        "result"
    )
    assert (
        rests[0]
        .strip()
        .splitlines()[-1]
        .startswith("error: interrupted: the partial result is in results/")
    )
    result = _only_result(tmp_path / "results")
    assert (result["status"], result["interrupted_by"]) == ("interrupted", "SIGTERM")
    assert 0 < sum(s["phase"] == "timed" for s in result["steps"]) < 500
    assert sorted(temporary.iterdir()) == []  # both left the all-reduce: its folder removed


def test_a_failed_worker_names_the_logs_it_keeps(tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = segbench(
        "launch", "--", "run", *RUN, "--width", "100", cwd=tmp_path, env={"TMPDIR": str(temporary)}
    )
    assert done.returncode == 1, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    # Whichever ended first: the chief (the line names the others' logs) or worker 1 (its log).
    named = re.search(r"(?:its log|the other workers' logs): (\S+/worker-1\.log)$", line)
    assert named, line
    log = Path(named.group(1))
    assert log.parent.parent == temporary and log.is_file()
    # Worker 1 may be stopped before it reached the check when the chief failed first: the
    # reason is then the chief's own, printed above the last line.
    failed_first = log.read_text() if "its log" in line else done.stderr
    assert "--width must be" in failed_first


def test_the_stop_vote_stops_every_worker_for_the_signal_voted():
    vote = StopVote()
    vote.decide(ballot(None))  # nobody voted: the job goes on
    with pytest.raises(SigTerm):
        vote.decide(ballot("SIGTERM") / 2)  # one of two workers received SIGTERM
    assert vote.decided == "SIGTERM"
    mine = StopVote()
    mine.noted = "SIGHUP"
    with pytest.raises(SigHup):  # a worker's own signal decides its exit code
        mine.decide(ballot("SIGINT") + ballot("SIGHUP"))


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
        (
            '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
            'task["index"] must be a whole number (0 to 0), found "0"; write it without quotes',
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1.0}}',
            'must be a whole number (0 to 1), found 1.0; e.g. "index": 0',
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": null}}',
            'must be a whole number (0 to 1), found null; e.g. "index": 0',
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
        taken = peers.survey("multiworker", tf_config([f"127.0.0.1:{port}"], 0), False)
        assert taken.problem == f"port {port} is in use"
        peer = tf_config(["127.0.0.1:1", f"127.0.0.1:{port}"], 0)
        listening = peers.survey("multiworker", peer, peers=True)
        assert listening.problem is None and listening.unreachable == ()
    silent = peers.survey("multiworker", tf_config(["127.0.0.1:1", "127.0.0.1:9"], 0), True)
    assert silent.unreachable == ("127.0.0.1:9",)
    foreign = peers.survey("multiworker", tf_config(["192.0.2.1:5000"], 0), False)
    assert foreign.problem == "192.0.2.1 is not an address of this machine"
    with pytest.raises(Unavailable, match=r"127\.0\.0\.1:9 not reachable after 0 s"):
        peers.wait_for_peers(parse_tf_config(tf_config(["127.0.0.1:1", "127.0.0.1:9"], 0)), 0)


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
    # No GPU at all: never "lower --gpus to 0", which --gpus refuses.
    none = check_distribution(Survey("mirrored", "mirrored"), [], 2)
    assert none.status == "FAIL" and "--gpus to 0" not in none.fix
    assert none.fix.startswith("no GPU is visible: drop --gpus and use --cpu-replicas N")
    assert check_distribution(Survey("mirrored", "m"), ["a", "b"], None).found == (
        "mirrored over 2 GPU(s)"
    )


def test_launch_adds_the_strategy_and_refuses_another():
    assert worker_args(["run", "--preset", "smoke"], None)[-2:] == ["--strategy", "multiworker"]
    given = ["run", "--strategy=multiworker"]
    assert worker_args(given, "multiworker") == given
    with pytest.raises(BadInput, match="not --strategy mirrored"):
        worker_args(["run", "--strategy", "mirrored"], "mirrored")
    with pytest.raises(BadInput, match="give the run after --"):
        worker_args(["compare", "a.json"], None)


@pytest.mark.parametrize(
    ("run", "line"),
    [
        # run reads the last of a repeated option, and --option=value: so does launch.
        (
            ["--strategy", "multiworker", "--strategy", "none"],
            "error: segbench launch runs --strategy multiworker, not --strategy none",
        ),
        (["--strategy=mirrored"], "error: segbench launch runs --strategy multiworker, not"),
        (["--cpu-replicas", "2"], "error: --cpu-replicas 2: a multi-worker job runs one replica"),
        (["--steps", "x"], "error: segbench launch -- run: Invalid value for '--steps'"),
    ],
)
def test_launch_reads_the_run_as_run_does_and_refuses_before_creating_anything(tmp_path, run, line):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    done = segbench("launch", "--", "run", *run, cwd=tmp_path, env={"TMPDIR": str(temporary)})
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(line)
    assert len(done.stderr.strip().splitlines()) == 1
    assert not list(temporary.iterdir())  # no log folder left behind
    assert not (tmp_path / "results").exists()


def test_launch_refuses_more_workers_than_the_open_file_limit_or_one_host_allows(tmp_path):
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    soft = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)  # as `ulimit -n 1024`
    command = [sys.executable, "-m", "segbench", "launch", "--workers", "1100", "--", "run"]
    env = {**os.environ, "TMPDIR": str(temporary)}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )
    assert done.returncode == 2, done.stderr
    shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    assert done.stderr.strip() == (
        f"error: --workers 1100: needs about 2264 open files, and the limit is {soft} (ulimit -n; "
        f"hard limit {shown}): lower --workers or raise the limit (ulimit -n 2264)"
    )
    many = segbench("launch", "--workers", "33", "--", "run", cwd=tmp_path, env=env)
    assert many.returncode == 2
    assert many.stderr.startswith("error: --workers 33: at most 32 local workers")
    assert not list(temporary.iterdir())


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


TWO_WORKERS = tf_config(["127.0.0.1:2222", "127.0.0.1:2223"], 0)


@pytest.mark.parametrize(
    ("args", "env", "line"),
    [
        (
            ["--strategy", "mirrored", "--cpu-replicas", "1000"],
            {},
            "error: --cpu-replicas must be 1 to 32: each logical CPU device holds a copy",
        ),
        (
            ["--strategy", "multiworker", "--cpu-replicas", "2"],
            {"TF_CONFIG": TWO_WORKERS},
            "error: --cpu-replicas is for --strategy mirrored: a multi-worker job runs one",
        ),
        (
            ["--strategy", "mirrored", "--cpu-replicas", "2", "--xla"],
            {},
            "error: --compile (--xla) with --strategy mirrored: TensorFlow cannot "
            "XLA-compile a step replicated by tf.distribute (it fails at the first step",
        ),
        (
            ["--strategy", "multiworker", "--xla"],
            {"TF_CONFIG": TWO_WORKERS},
            "error: --compile (--xla) with --strategy multiworker: TensorFlow cannot "
            "XLA-compile a step",
        ),
        (
            ["--strategy", "multiworker"],
            {"TF_CONFIG": TWO_WORKERS.replace("2223", "²")},
            "error: TF_CONFIG: '127.0.0.1:²' is not host:port (an ASCII host name or address, "
            "and a port of 1 to 65535 in ASCII digits)",
        ),
        (
            ["--strategy", "multiworker"],
            {"TF_CONFIG": TWO_WORKERS.replace("2223", "١٢٣")},  # int() reads it as 123
            "error: TF_CONFIG: '127.0.0.1:١٢٣' is not host:port",
        ),
        (
            ["--out", "new/" + "x" * 300],
            {},
            "error: --out: the folder name 'xxxxxxxxxxxxxxxxxxxxxxxx'… is 300 bytes, and this "
            "file system allows 255 (NAME_MAX); choose a shorter --out",
        ),
    ],
)
def test_run_refuses_what_cannot_work_in_one_line_before_creating_anything(
    tmp_path, args, env, line
):
    done = segbench("run", *RUN, *args, cwd=tmp_path, env=env)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().startswith(line)
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_doctor_names_a_bad_tf_config_address_and_counts_every_replicas_memory(tmp_path):
    done = segbench(
        "doctor",
        "--json",
        "--preset",
        "smoke",
        "--strategy",
        "multiworker",
        "--cpu-replicas",
        "1000",
        cwd=tmp_path,
        env={"TF_CONFIG": TWO_WORKERS.replace("2223", "²")},
    )
    assert done.returncode == 1, done.stderr
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    assert checks["distribution"]["status"] == "FAIL"
    assert "TF_CONFIG: '127.0.0.1:²' is not host:port" in checks["distribution"]["found"]
    memory = checks["memory"]
    assert memory["expected"].endswith("for width 0.0625, batch 2 per replica × 1000")
    assert memory["status"] == "FAIL"  # about 190 GB: 1,000 copies of the model and batch


def test_memory_need_counts_every_cpu_replica():
    one = doctor.memory_need(1 / 16, 2, 0, on_gpu=False)
    eight = doctor.memory_need(1 / 16, 2, 0, on_gpu=False, replicas=8)
    # Measured (smoke, TensorFlow on the CPU): 1.55 GB with one replica; seven more added
    # 1.18 GB (2.24 → 3.42 GB, measured with the data held as float32).
    assert one == pytest.approx(1.55e9 * 1.15, rel=0.01)  # the estimate with its margin
    assert 1.18e9 < eight - one < 1.18e9 * 1.15
    assert doctor.memory_need(1, 16, 0, on_gpu=True, replicas=8) == doctor.memory_need(
        1, 16, 0, on_gpu=True
    )  # each GPU holds one replica


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_a_worker_that_never_joins_stops_the_job_in_time_and_a_signal_stops_the_wait(
    tmp_path, small_dataset
):
    """Two workers in TF_CONFIG, the second never started (TensorFlow's strategy set-up would
    wait for it in C++, holding the GIL): the run stops when the wait is over, naming it, and
    SIGTERM stops the wait."""
    from cli_helpers import ctrl_c_default

    chief, missing = _free_ports(2)
    config = tf_config([f"127.0.0.1:{chief}", f"127.0.0.1:{missing}"], 0)
    run = ("run", "--preset", "smoke", "--strategy", "multiworker", "--out", "out")
    run = (*run, "--data", str(small_dataset))
    begun = time.monotonic()
    told = {"TF_CONFIG": config, **fake()}  # the rendezvous is the real one (fake_workers.py)
    done = segbench(*run, cwd=tmp_path, env={**told, "SEGBENCH_PEER_TIMEOUT": "2"})
    assert done.returncode == 1, done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"error: worker(s) 127.0.0.1:{missing} not reachable after 2 s: start segbench run"
        )
    )
    assert time.monotonic() - begun < 150
    assert not (tmp_path / "out").exists()

    waiting = subprocess.Popen(
        [sys.executable, "-m", "segbench", *run],
        cwd=tmp_path,
        env={**os.environ, **told, "SEGBENCH_CACHE": str(tmp_path / "cache")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        for line in waiting.stderr:
            if line.startswith("waiting for the other workers"):
                break
        time.sleep(1.5)  # waiting for the missing worker by now
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
            peers.wait_for_peers(cluster, 1, b"segbench-worker x")
        assert time.monotonic() - began < 10
        peers.wait_for_peers(cluster, 0)  # without a token, listening is enough
