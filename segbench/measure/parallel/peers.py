"""The other workers of a multi-worker run: this task's address and port checked (the survey
doctor judges), the peers waited for, and the rendezvous before TensorFlow's server starts."""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import socket
import threading
import time
from dataclasses import dataclass

from segbench.errors import BadInput, Unavailable, signal_name, stopped
from segbench.measure.parallel.distribution import MULTIWORKER
from segbench.measure.parallel.tf_config import Cluster, host_port, parse_tf_config

PEER_TIMEOUT_S = 120.0  # how long a worker waits for every other worker to listen
RENDEZVOUS_LINGER_S = 1.5  # a worker answers this long after it saw every other (they poll 0.5 s)


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
    host, port = host_port(cluster.address)
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
    host, port = host_port(address)
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
    host, port = host_port(address)
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


def rendezvous(cluster: Cluster, timeout: float) -> None:
    """Listen on this task's port with a plain socket, answering with the cluster's token, until
    every other worker answers on theirs (bounded by `timeout`, naming the missing ones; Ctrl-C
    and SIGTERM stop it), then free the port for TensorFlow's server."""
    _, port = host_port(cluster.address)
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
