"""The replicas of a data-parallel run, as the backend's strategy starts them: tf.distribute
(MirroredStrategy, MultiWorkerMirroredStrategy) on tensorflow, keras.distribution.DataParallel
on jax; each places batches on its replicas and runs one synchronised step."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from segbench.errors import BadInput, Unavailable
from segbench.measure import backend
from segbench.measure.parallel.distribution import (
    MECHANISM_ONLY,
    MIRRORED,
    MULTIWORKER,
    Distribution,
)
from segbench.measure.parallel.peers import rendezvous
from segbench.measure.parallel.stop_vote import BALLOT, STOP_SIGNALS, StopVote, ballot
from segbench.measure.parallel.tf_config import parse_tf_config


class Replication:
    """The replicas of a run: places batches on them and runs one synchronised step."""

    strategy: str
    replicas: int
    workers: int
    is_chief: bool
    devices: list[str]
    communication: str
    batchnorm: str
    note: str | None = None

    def scope(self) -> AbstractContextManager[object]:
        """Build the model inside this, so its variables are mirrored on every replica."""
        return nullcontext()

    def stage(self, x: Any, y: Any) -> Any:
        """A global batch (numpy), split into per-replica slices placed on their devices."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Block until every replica of this worker has finished its queued work."""
        backend.synchronize()

    def step_functions(self, model: Any, example: tuple[Any, Any]) -> tuple[Any, Any]:
        """(train, test) step functions on a staged batch, as generation.step_functions."""
        raise NotImplementedError

    def compile(self, build: Callable[[], Any], example: tuple[Any, Any]) -> tuple[Any, Any, Any]:
        """(model, train step, test step): the model `build` makes, its variables mirrored on
        every replica (`example`: one replica's batch, which builds the metrics and optimizer
        state before the first step)."""
        with self.scope():
            model = build()
        return (model, *self.step_functions(model, example))

    def clock_ns(self) -> int:
        """The clock a step is timed on, in ns."""
        return time.perf_counter_ns()

    def stopping(self) -> AbstractContextManager[object]:
        """Around the steps: how Ctrl-C, SIGTERM and SIGHUP stop them. In one process they
        raise where they land; multi-worker, every worker stops after the same step (StopVote)."""
        return nullcontext()

    def after_step(self) -> None:
        """Raise the interrupt that stops the job after the step just recorded, if one does."""

    def pause(self) -> None:
        """A point between steps (each second of the cool-down) where the job may stop."""

    def record(self, per_replica: int, global_batch: int, scaling: str) -> Distribution:
        return Distribution(
            strategy=self.strategy,
            replicas=self.replicas,
            workers=self.workers,
            per_replica_batch=per_replica,
            global_batch=global_batch,
            scaling=scaling,
            communication=self.communication,
            batchnorm=self.batchnorm,
            devices=list(self.devices),
            note=self.note,
        )


def start(config: Any) -> Replication:
    """The replicas `config` asks for, started (a multi-worker task's server listens after
    this). Call before anything else runs on the backend: TensorFlow splits the CPU and
    configures collectives only before its runtime starts."""
    if config.backend == "jax":
        return _JaxReplication(config)
    return _TensorFlowReplication(config)


def start_after_rendezvous(config: Any, timeout: float) -> Replication:
    """`start(config)`; multi-worker, only once every worker of TF_CONFIG listens.

    TensorFlow's MultiWorkerMirroredStrategy waits for the other workers inside its C++ runtime
    while holding the GIL: no limit or signal handler of Python's runs there (a worker that
    never starts hangs the job). So each worker first listens on its own port with a plain
    socket and waits (peers.rendezvous) for every other worker to listen on theirs (bounded
    by `timeout`, naming the missing ones; Ctrl-C and SIGTERM stop it); then it frees the port
    for TensorFlow's server. The strategy's own set-up then runs with SIGINT and SIGTERM at their
    default action, so that they still end the process (nothing has been measured yet)."""
    if config.strategy != MULTIWORKER or config.backend == "jax":
        return start(config)
    rendezvous(parse_tf_config(os.environ.get("TF_CONFIG")), timeout)
    if threading.current_thread() is not threading.main_thread():
        return start(config)
    # A worker that dies between the rendezvous and here would still hang TensorFlow's set-up:
    # a watchdog outside the GIL (faulthandler's thread) ends the process after `timeout`.
    previous = {s: signal.signal(s, signal.SIG_DFL) for s in (signal.SIGINT, signal.SIGTERM)}
    with open(os.devnull, "w") as quiet:
        faulthandler.dump_traceback_later(max(timeout, 1.0), exit=True, file=quiet)
        try:
            return start(config)
        finally:
            faulthandler.cancel_dump_traceback_later()
            for number, handler in previous.items():
                signal.signal(number, handler)


class _TensorFlowReplication(Replication):
    def __init__(self, config: Any) -> None:
        import tensorflow as tf

        self.strategy = config.strategy
        self.cluster = None
        self.vote: StopVote | None = None  # multi-worker, while the steps run
        self.shares: Any = None  # the last step's all-reduced ballots
        self.tally: Any = None  # the ballots' all-reduce alone (the cool-down)
        on_cpu = bool(config.cpu_replicas) or config.device == "cpu"
        gpus = [] if on_cpu else tf.config.list_physical_devices("GPU")
        if config.gpus and config.gpus > len(gpus):
            raise Unavailable(
                f"--gpus {config.gpus}: {len(gpus)} GPU(s) visible to TensorFlow; lower --gpus "
                "(segbench doctor lists them)"
            )
        if config.gpus:
            gpus = gpus[: config.gpus]
            tf.config.set_visible_devices(gpus, "GPU")
        if on_cpu:
            tf.config.set_visible_devices([], "GPU")
        if config.cpu_replicas:
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration()] * config.cpu_replicas
                )
            except RuntimeError as e:  # the runtime already started in this process
                raise Unavailable(f"--cpu-replicas: {e}") from None
            self.note = MECHANISM_ONLY
        kind = "GPU" if gpus else "CPU"
        if config.strategy == MULTIWORKER:
            self.cluster = parse_tf_config(os.environ.get("TF_CONFIG"))
            implementation = (
                tf.distribute.experimental.CommunicationImplementation.NCCL
                if gpus and sys.platform == "linux"
                else tf.distribute.experimental.CommunicationImplementation.RING
            )
            with backend.runtime_info_dropped():  # gRPC's start-up lines
                self.engine = tf.distribute.MultiWorkerMirroredStrategy(
                    communication_options=tf.distribute.experimental.CommunicationOptions(
                        implementation=implementation
                    )
                )
            self.communication = (
                "NCCL all-reduce across workers"
                if implementation.name == "NCCL"
                else "ring all-reduce over gRPC (CPU collectives)"
            )
            self.workers = len(self.cluster.addresses)
            self.is_chief = self.cluster.is_chief
        else:
            devices = [d.name for d in tf.config.list_logical_devices(kind)]
            if kind == "GPU" and sys.platform == "linux" and len(devices) > 1:
                ops = tf.distribute.NcclAllReduce()
            else:
                ops = tf.distribute.ReductionToOneDevice()
            self.engine = tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)
            self.communication = type(ops).__name__
            self.workers = 1
            self.is_chief = True
        self.replicas = self.engine.num_replicas_in_sync
        self.devices = [d.rpartition("device:")[2] for d in self.engine.extended.worker_devices]
        self.batchnorm = "synchronized" if config.sync_batchnorm else "per-replica"

    def scope(self) -> AbstractContextManager[object]:
        return self.engine.scope()

    def stage(self, x: Any, y: Any) -> Any:
        import tensorflow as tf

        per = len(x) // self.replicas

        def slice_for(context: Any) -> tuple[Any, Any, None]:
            i = context.replica_id_in_sync_group
            return (
                tf.constant(x[i * per : (i + 1) * per]),
                tf.constant(y[i * per : (i + 1) * per]),
                None,
            )

        return self.engine.experimental_distribute_values_from_function(slice_for)

    def synchronize(self) -> None:
        if self.cluster is None:
            super().synchronize()
        # Multi-worker, TensorFlow cannot sync remote devices from here; a step's logs are
        # read back (numpy) after the all-reduce instead, so the step has ended everywhere.

    def step_functions(self, model: Any, example: tuple[Any, Any]) -> tuple[Any, Any]:
        # Under a strategy, the metrics and optimizer variables must exist (mirrored) before
        # the step runs in each replica: Keras's own train_on_batch builds them this way.
        with self.engine.scope():
            model._maybe_symbolic_build(data_batch=(*example, None))
        return self._step(model.train_step, model), self._step(model.test_step, model)

    def stopping(self) -> AbstractContextManager[object]:
        if self.cluster is None:
            return nullcontext()
        self.vote = StopVote()
        return self.vote

    def after_step(self) -> None:
        if self.vote is not None and self.shares is not None:
            self.vote.decide(self.shares)

    def pause(self) -> None:
        if self.vote is None:
            return
        import tensorflow as tf

        if self.tally is None:
            strategy = self.engine

            @tf.function
            def tally(ballot: Any) -> Any:
                return strategy.reduce("MEAN", strategy.run(tf.identity, args=(ballot,)), None)

            self.tally = tally
        self.vote.decide(self.tally(tf.constant(ballot(self.vote.noted))).numpy())

    def _step(self, step: Any, model: Any) -> Any:
        """One step on every replica, each replica's logs averaged over all of them.

        Keras's own train_function cannot reduce scalar logs under MultiWorkerMirrored-
        Strategy (tensorflow/tensorflow#72388), so the step is run here the way it runs it:
        strategy.run of the model's train_step, with the same jit_compile. Multi-worker, the
        workers' stop ballots (StopVote) are all-reduced with the logs: one more reduction of
        three numbers, like each of the three logs."""
        import tensorflow as tf

        strategy = self.engine
        if model.jit_compile:
            step = tf.function(step, jit_compile=True)

        @tf.function(reduce_retracing=True)
        def replicated(batch: Any, ballot: Any = None) -> dict:
            def replica_step(batch: Any) -> dict:
                logs = step(batch)
                return logs if ballot is None else {**logs, BALLOT: tf.identity(ballot)}

            logs = strategy.run(replica_step, args=(batch,))
            return {name: strategy.reduce("MEAN", v, axis=None) for name, v in logs.items()}

        if self.cluster is None:
            return lambda batch: {name: v.numpy() for name, v in replicated(batch).items()}
        ballots = {noted: tf.constant(ballot(noted)) for noted in (None, *STOP_SIGNALS)}

        def voting(batch: Any) -> dict:
            noted = self.vote.noted if self.vote is not None else None
            logs = {name: v.numpy() for name, v in replicated(batch, ballots[noted]).items()}
            self.shares = logs.pop(BALLOT)
            return logs

        return voting


class _JaxReplication(Replication):
    def __init__(self, config: Any) -> None:
        import jax
        import keras

        if config.strategy == MULTIWORKER:
            raise BadInput(
                "--strategy multiworker runs on the tensorflow backend (tf.distribute); on jax "
                "use --strategy mirrored (keras.distribution.DataParallel over this machine)"
            )
        kind = "cpu" if config.cpu_replicas or config.device == "cpu" else None
        devices = jax.devices(kind) if kind else jax.devices()
        wanted = config.cpu_replicas or config.gpus or len(devices)
        if wanted > len(devices):
            hint = (
                "--cpu-replicas must be set before JAX starts (segbench run does; "
                "in Python set XLA_FLAGS=--xla_force_host_platform_device_count=N)"
                if config.cpu_replicas
                else "lower --gpus"
            )
            raise Unavailable(f"{wanted} replicas asked, {len(devices)} JAX device(s) here: {hint}")
        devices = devices[:wanted]
        self.engine = keras.distribution.DataParallel(devices=devices)
        self.strategy = MIRRORED
        self.replicas = len(devices)
        self.workers = 1
        self.is_chief = True
        self.devices = [f"{d.platform.upper()}:{d.id}" for d in devices]
        self.communication = (
            "XLA collectives over the device mesh (keras.distribution.DataParallel)"
        )
        # One array spans all replicas: BatchNormalization sees the global batch.
        self.batchnorm = "synchronized"
        self.note = MECHANISM_ONLY if config.cpu_replicas else None

    def scope(self) -> AbstractContextManager[object]:
        return self.engine.scope()

    def stage(self, x: Any, y: Any) -> Any:
        import keras
        import numpy as np

        # Unit sample weights leave the loss and metrics as they are; Keras cannot yet
        # distribute a batch without them (its data layout is asked of the None).
        weights = np.ones(len(x), dtype="float32")
        return tuple(
            keras.distribution.distribute_tensor(a, self.engine.get_data_layout(a.shape))
            for a in (x, y, weights)
        )

    def step_functions(self, model: Any, example: tuple[Any, Any]) -> tuple[Any, Any]:
        def train(batch: Any) -> dict:
            x, y, weights = batch
            with self.engine.scope():
                return model.train_on_batch(x, y, sample_weight=weights, return_dict=True)

        def test(batch: Any) -> dict:
            x, y, weights = batch
            with self.engine.scope():
                return model.test_on_batch(x, y, sample_weight=weights, return_dict=True)

        return train, test
