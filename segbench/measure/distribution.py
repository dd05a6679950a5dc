"""Data-parallel runs: several devices or machines train one model in step (tf.distribute on
the tensorflow backend, keras.distribution.DataParallel on jax).

A replica is one copy of the model on one device; every step, each replica trains on its own
slice of the global batch and the gradients are averaged across replicas before the update.
`--batch-size` is per replica (weak scaling: the global batch grows with the replicas);
`--global-batch` fixes the global batch instead (strong scaling). Multi-worker runs read the
standard TF_CONFIG (cluster + task), so they run unchanged under Kubernetes, Slurm or ssh.
"""

from __future__ import annotations

import contextlib
import faulthandler
import hashlib
import json
import math
import os
import signal
import socket
import sys
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from segbench.errors import BadInput, SigHup, SigTerm, Unavailable, signal_name, stopped
from segbench.measure import backend
from segbench.results.schema import OPTIONAL, OPTIONAL_POSITIVE, POSITIVE

NONE, MIRRORED, MULTIWORKER = "none", "mirrored", "multiworker"
STRATEGIES = (NONE, MIRRORED, MULTIWORKER)
PEER_TIMEOUT_S = 120.0  # how long a worker waits for every other worker to listen
RENDEZVOUS_LINGER_S = 1.5  # a worker answers this long after it saw every other (they poll 0.5 s)
MECHANISM_ONLY = (
    "logical CPU devices share the same cores: this measures the distribution mechanism, not speed"
)


@dataclass(frozen=True, kw_only=True)
class Distribution:
    """How a run was spread over replicas, recorded in the result (absent: one device)."""

    strategy: str = field(metadata={"enum": STRATEGIES[1:]})
    replicas: int = field(metadata=POSITIVE)  # in all workers together
    workers: int = field(metadata=POSITIVE)  # processes (1 for mirrored)
    per_replica_batch: int = field(metadata=POSITIVE)
    global_batch: int = field(metadata=POSITIVE)  # images per step, all replicas together
    scaling: str = field(metadata={"enum": ("weak", "strong")})  # --batch-size or --global-batch
    communication: str  # how gradients are all-reduced
    batchnorm: str = field(metadata={"enum": ("per-replica", "synchronized")})
    devices: list[str]  # this worker's replica devices
    # Whole job and per replica, from the median step (absent when no step was timed).
    images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    images_per_s_per_replica: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    # --scaling: one replica measured first, and N-replica images/s ÷ (N × that).
    one_replica_images_per_s: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    scaling_efficiency: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    note: str | None = field(default=None, metadata=OPTIONAL)  # e.g. logical CPU devices


def with_throughput(
    distribution: Distribution, images_per_s: float | None, one_replica: float | None
) -> Distribution:
    """`distribution` with the job's images/s, per replica, and the scaling efficiency."""
    from dataclasses import replace

    if images_per_s is None:
        return replace(distribution, one_replica_images_per_s=one_replica)
    return replace(
        distribution,
        images_per_s=images_per_s,
        images_per_s_per_replica=images_per_s / distribution.replicas,
        one_replica_images_per_s=one_replica,
        scaling_efficiency=scaling_efficiency(images_per_s, distribution.replicas, one_replica),
    )


def scaling_efficiency(
    images_per_s: float, replicas: int, one_replica: float | None
) -> float | None:
    """N-replica images/s ÷ (N × one-replica images/s); 1.0 is perfect scaling."""
    if not one_replica:
        return None
    return images_per_s / (replicas * one_replica)


def batches(batch_size: int, global_batch: int | None, replicas: int) -> tuple[int, int]:
    """(per-replica batch, global batch): `--batch-size` per replica, or `--global-batch`
    split evenly; BadInput when it does not split."""
    if global_batch is None:
        return batch_size, batch_size * replicas
    if global_batch % replicas:
        raise BadInput(
            f"--global-batch {global_batch}: does not split evenly over {replicas} replicas; "
            f"use a multiple of {replicas}"
        )
    return global_batch // replicas, global_batch


# --- TF_CONFIG ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """The cluster of a multi-worker run, from TF_CONFIG: every task's address, and ours."""

    addresses: tuple[str, ...]  # chief (if named) first, then the workers, in TF_CONFIG order
    index: int  # ours, in `addresses`

    @property
    def address(self) -> str:
        return self.addresses[self.index]

    @property
    def is_chief(self) -> bool:
        """Task 0 (the "chief" task, or worker 0 when there is none) writes the result."""
        return self.index == 0

    @property
    def peers(self) -> list[str]:
        return [a for i, a in enumerate(self.addresses) if i != self.index]


def parse_tf_config(text: str | None) -> Cluster:
    """The cluster in TF_CONFIG's text; BadInput saying what is wrong with it."""
    if not text:
        raise BadInput(
            "--strategy multiworker: TF_CONFIG is not set; set it on every worker (README: "
            '"More than one GPU or machine"), or on one host: segbench launch --workers N -- run …'
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"TF_CONFIG: not JSON ({e.msg} at character {e.pos})") from None
    cluster, task = (
        (config.get("cluster"), config.get("task")) if isinstance(config, dict) else (None, None)
    )
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise BadInput('TF_CONFIG: needs {"cluster": {"worker": [...]}, "task": {...}}')
    jobs = [job for job in ("chief", "worker") if job in cluster]
    other = sorted(set(cluster) - {"chief", "worker"})
    if other:
        raise BadInput(
            f"TF_CONFIG: job {other[0]!r} is not used by MultiWorkerMirroredStrategy; "
            "use chief and worker"
        )
    addresses: list[str] = []
    for job in jobs:
        hosts = cluster[job]
        if not isinstance(hosts, list) or not hosts or not all(isinstance(h, str) for h in hosts):
            raise BadInput(f'TF_CONFIG: cluster["{job}"] must be a list of "host:port" strings')
        if job == "chief" and len(hosts) != 1:
            raise BadInput('TF_CONFIG: cluster["chief"] must name exactly one task')
        for host in hosts:
            _host_port(host)
        addresses.extend(hosts)
    if not addresses:
        raise BadInput('TF_CONFIG: cluster["worker"] is missing')
    if len(set(addresses)) != len(addresses):
        raise BadInput("TF_CONFIG: two tasks share an address; give each task its own port")
    kind, index = task.get("type"), task.get("index")
    if kind not in jobs:
        raise BadInput(
            f"TF_CONFIG: task type {kind!r} is not a job of the cluster ({', '.join(jobs)})"
        )
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise BadInput(
            f"TF_CONFIG: task index {index!r} is out of range: {kind} has "
            f"{len(cluster[kind])} task(s), numbered from 0"
        )
    offset = 1 if kind == "worker" and "chief" in cluster else 0
    return Cluster(tuple(addresses), offset + index)


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of a TF_CONFIG address; BadInput naming it unless the host is printable
    ASCII and the port 1–65535 in ASCII digits (str.isdigit also takes "²" and "١٢٣")."""
    host, _, port = address.rpartition(":")
    name = host.strip("[]")
    if not (_usable_host(name) and port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise BadInput(
            f"TF_CONFIG: {address!r} is not host:port (an ASCII host name or address, and a "
            "port of 1 to 65535 in ASCII digits)"
        )
    return name, int(port)


def _usable_host(name: str) -> bool:
    """A host name the socket functions take: printable ASCII, no spaces, labels of 1–63
    characters (else getaddrinfo raises UnicodeError, not OSError)."""
    if not (name and name.isascii() and name.isprintable()) or " " in name:
        return False
    try:
        name.encode("idna")
    except UnicodeError:
        return False
    return True


# --- what doctor checks before a distributed run ---------------------------------------


@dataclass(frozen=True)
class Survey:
    """What a distributed run's doctor check judges: a problem that stops the run (FAIL),
    the peers not listening yet (WARN), and what was found."""

    strategy: str
    found: str
    problem: str | None = None
    fix: str = ""
    unreachable: tuple[str, ...] = ()


def survey(strategy: str, tf_config: str | None, peers: bool) -> Survey:
    """Check TF_CONFIG, that this task's address is local and its port free and, with `peers`,
    which other workers already accept connections."""
    if strategy != MULTIWORKER:
        return Survey(strategy, f"{strategy}: replicas on this machine (no cluster)")
    try:
        cluster = parse_tf_config(tf_config)
    except BadInput as e:
        return Survey(
            strategy, "TF_CONFIG unusable", str(e), 'export TF_CONFIG=\'{"cluster": …, "task": …}\''
        )
    host, port = _host_port(cluster.address)
    found = f"task {cluster.index} of {len(cluster.addresses)} at {cluster.address}"
    if not _is_local(host):
        return Survey(
            strategy,
            found,
            f"{host} is not an address of this machine",
            "set task.index in TF_CONFIG to this host's entry of the cluster",
        )
    if not port_free(host, port):
        return Survey(
            strategy,
            found,
            f"port {port} is in use",
            f"stop what listens on {port} or give this task another port in TF_CONFIG",
        )
    missing = tuple(a for a in cluster.peers if not reachable(a, 1.0)) if peers else ()
    return Survey(strategy, found, unreachable=missing)


def _is_local(host: str) -> bool:
    """Whether `host` names this machine: a socket can bind to it."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    for family, _, _, _, address in infos:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            try:
                s.bind((address[0], 0))
                return True
            except OSError:
                continue
    return False


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now."""
    try:
        family = socket.getaddrinfo(host, port)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, port))
        return True
    except OSError:
        return False


def reachable(address: str, timeout: float) -> bool:
    """Whether something accepts TCP connections at host:port."""
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for_peers(cluster: Cluster, timeout: float = PEER_TIMEOUT_S, token: bytes = b"") -> None:
    """Block until every other worker listens (and, with `token`, answers with it: a segbench
    worker of the same cluster, not any program on that port); Unavailable naming the missing
    ones after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    missing = cluster.peers
    while missing:
        missing = [a for a in missing if not _answers(a, token, 1.0)]
        if not missing:
            return
        if time.monotonic() > deadline:
            raise Unavailable(
                f"worker(s) {', '.join(missing)} not reachable after {timeout:.0f} s: start "
                "segbench run --strategy multiworker on every host of TF_CONFIG's cluster "
                "(same cluster, its own task index) and open their ports (nothing listens "
                "there, or not a segbench worker of this cluster)"
            )
        time.sleep(0.5)


def _answers(address: str, token: bytes, timeout: float) -> bool:
    """`address` accepts a connection and, with a `token`, sends exactly it."""
    if not token:
        return reachable(address, timeout)
    host, port = _host_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout) as connection:
            connection.settimeout(timeout)
            received = b""
            while len(received) < len(token):
                chunk = connection.recv(len(token) - len(received))
                if not chunk:
                    break
                received += chunk
            return received == token
    except OSError:
        return False


def _answer(listener: socket.socket, token: bytes, stop: threading.Event) -> None:
    """Send `token` to whoever connects, until `stop` is set."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        with connection, contextlib.suppress(OSError):
            connection.sendall(token)


def peer_timeout() -> float:
    """How long a worker waits for the others: PEER_TIMEOUT_S, or $SEGBENCH_PEER_TIMEOUT."""
    try:
        value = float(os.environ.get("SEGBENCH_PEER_TIMEOUT", PEER_TIMEOUT_S))
    except ValueError:
        return PEER_TIMEOUT_S
    return value if math.isfinite(value) and value >= 0 else PEER_TIMEOUT_S


def start_after_rendezvous(config: Any, timeout: float) -> Replication:
    """`start(config)`; multi-worker, only once every worker of TF_CONFIG listens.

    TensorFlow's MultiWorkerMirroredStrategy waits for the other workers inside its C++ runtime
    while holding the GIL: no limit or signal handler of Python's runs there (a worker that
    never starts hangs the job). So each worker first listens on its own port with a plain
    socket and waits, here, for every other worker to listen on theirs (bounded by `timeout`,
    naming the missing ones; Ctrl-C and SIGTERM stop it); then it frees the port for
    TensorFlow's server. The strategy's own set-up then runs with SIGINT and SIGTERM at their
    default action, so that they still end the process (nothing has been measured yet)."""
    if config.strategy != MULTIWORKER or config.backend == "jax":
        return start(config)
    cluster = parse_tf_config(os.environ.get("TF_CONFIG"))
    _, port = _host_port(cluster.address)
    # Workers of one cluster answer with the same token; another program on a peer's port
    # does not, and TensorFlow would wait for it forever.
    token = b"segbench-worker " + hashlib.sha256(",".join(cluster.addresses).encode()).digest()
    stop_answering = threading.Event()
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("", port))
            listener.listen(64)
        except OSError as e:
            raise Unavailable(
                f"TF_CONFIG: port {port} of this task cannot be used ({e.strerror or e}); "
                "choose a free port in TF_CONFIG"
            ) from None
        answering = threading.Thread(
            target=_answer, args=(listener, token, stop_answering), daemon=True
        )
        answering.start()
        try:
            wait_for_peers(cluster, timeout, token)
            # Answer a little longer than a peer polls, so every peer sees this one too.
            time.sleep(RENDEZVOUS_LINGER_S)
        except KeyboardInterrupt as stop:
            kind = stopped(signal_name(stop))
            raise kind(
                "interrupted while waiting for the other workers; nothing was measured"
            ) from None
        finally:
            stop_answering.set()
            answering.join()
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


# --- replicas at run time -------------------------------------------------------------------


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
        from segbench.measure import backend

        backend.synchronize()

    def step_functions(self, model: Any, example: tuple[Any, Any]) -> tuple[Any, Any]:
        """(train, test) step functions on a staged batch, as generation.step_functions."""
        raise NotImplementedError

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


STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
_BALLOT = "segbench_stop"  # the log entry that carries the workers' votes


class StopVote:
    """How the workers of a multi-worker job stop together on Ctrl-C, SIGTERM or SIGHUP.

    A worker that stops alone leaves the others waiting for it in the next step's all-reduce
    (TensorFlow notices a missing worker after its heartbeat time-out, or never), and a Python
    handler cannot run while a collective blocks. So while the steps run a signal is noted,
    each step all-reduces every worker's ballot with its logs, and after the step in which a
    worker voted, every worker raises the same interrupt: all stop after the same step, and
    the chief keeps what was measured."""

    def __init__(self) -> None:
        self.noted: str | None = None  # the signal this worker received
        self.decided: str | None = None  # the signal the job stops for
        self.previous: dict[int, Any] = {}

    def __enter__(self) -> StopVote:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                number = getattr(signal, name, None)
                if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                    self.previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if self.noted is None and self.decided is None:
            for number, handler in self.previous.items():
                signal.signal(number, handler)
        # Else the job stops: a further signal (the launcher passes them on again) stays
        # noted, so that it cannot undo the saving before the pipeline defers it in turn.
        self.previous = {}
        # Noted after the last vote, or the framework failed meanwhile (the other workers left
        # on the same Ctrl-C): the run was stopped by the signal.
        if self.noted and not self.decided and not isinstance(error, KeyboardInterrupt):
            raise _interrupt(self.noted) from None

    def _note(self, signum: int, frame: object) -> None:
        if self.noted is None and self.decided is None:
            self.noted = signal.Signals(signum).name
            with contextlib.suppress(OSError):
                os.write(
                    2,
                    f"segbench: {self.noted}: every worker stops after the next step, then the "
                    "chief saves what was measured\n".encode(),
                )

    def decide(self, shares: Any) -> None:
        """Read the all-reduced ballots (the share of replicas voting for each signal) and
        raise the interrupt if any worker voted: this worker's own signal, else the first."""
        voted = [name for name, share in zip(STOP_SIGNALS, shares, strict=True) if share > 0]
        if voted:
            self.decided = self.noted or voted[0]
            raise _interrupt(self.decided)


def ballot(noted: str | None) -> Any:
    """A worker's vote: one entry per signal of STOP_SIGNALS, 1 for the one it noted."""
    import numpy as np

    return np.array([float(name == noted) for name in STOP_SIGNALS], dtype="float32")


def _interrupt(name: str) -> KeyboardInterrupt:
    """The KeyboardInterrupt that segbench's handler of signal `name` raises."""
    return {"SIGTERM": SigTerm, "SIGHUP": SigHup}.get(name, KeyboardInterrupt)()


def configure_before_import(config: Any) -> None:
    """What must be set before the backend starts: JAX's count of CPU devices."""
    if config.backend == "jax" and config.cpu_replicas:
        flag = f"--xla_force_host_platform_device_count={config.cpu_replicas}"
        if "jax" in sys.modules:  # too late to split the CPU in this process
            return
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {flag}".strip()


def start(config: Any) -> Replication:
    """The replicas `config` asks for, started (a multi-worker task's server listens after
    this). Call before anything else runs on the backend: TensorFlow splits the CPU and
    configures collectives only before its runtime starts."""
    if config.backend == "jax":
        return _JaxReplication(config)
    return _TensorFlowReplication(config)


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
                return logs if ballot is None else {**logs, _BALLOT: tf.identity(ballot)}

            logs = strategy.run(replica_step, args=(batch,))
            return {name: strategy.reduce("MEAN", v, axis=None) for name, v in logs.items()}

        if self.cluster is None:
            return lambda batch: {name: v.numpy() for name, v in replicated(batch).items()}
        ballots = {noted: tf.constant(ballot(noted)) for noted in (None, *STOP_SIGNALS)}

        def voting(batch: Any) -> dict:
            noted = self.vote.noted if self.vote is not None else None
            logs = {name: v.numpy() for name, v in replicated(batch, ballots[noted]).items()}
            self.shares = logs.pop(_BALLOT)
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
