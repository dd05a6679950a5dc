"""`segbench launch`: the workers of one multi-worker run as local processes on 127.0.0.1.

Each worker is `segbench run ARGS… --strategy multiworker` with its own TF_CONFIG, as a
cluster manager would start it on its own machine. The chief's (task 0's) output is passed
through; the others' goes to log files. When a worker fails, the job cannot finish (every
step waits for every worker): the others are killed at once, so nothing hangs and no partial
result of an incomplete job is written (a result file appears only when a run completes).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from segbench.distribution import MULTIWORKER, port_free
from segbench.errors import BadInput, SigTerm, Unavailable

HOST = "127.0.0.1"
POLL_S = 0.1
GRACE_S = 30.0  # after Ctrl-C or SIGTERM: time for the chief to save its partial result
LOG_TAIL = 15  # lines of a failed worker's log shown


class WorkerFailed(Unavailable):
    """A worker exited with an error; the message names it."""


@dataclass
class Worker:
    index: int
    address: str
    process: subprocess.Popen
    log: Path | None  # None for the chief: its output is passed through


def worker_args(args: list[str]) -> list[str]:
    """The `segbench run` arguments each worker gets: `--strategy multiworker` added, or
    BadInput when ARGS are not a run or ask for another strategy."""
    if not args or args[0] != "run":
        raise BadInput("segbench launch: give the run after --, e.g. -- run --preset smoke")
    for i, arg in enumerate(args):
        value = None
        if arg == "--strategy" and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith("--strategy="):
            value = arg.partition("=")[2]
        if value is not None and value != MULTIWORKER:
            raise BadInput(f"segbench launch runs --strategy {MULTIWORKER}, not --strategy {value}")
        if arg == "--strategy" or arg.startswith("--strategy="):
            return list(args)
    return [*args, "--strategy", MULTIWORKER]


def ports(count: int, first: int | None) -> list[int]:
    """`count` ports on 127.0.0.1: first, first+1, … (each checked free), or free ones the
    system picks."""
    if first is not None:
        wanted = list(range(first, first + count))
        if wanted[-1] > 65535:
            raise BadInput(f"--port {first}: {count} workers need ports up to {wanted[-1]}")
        busy = [p for p in wanted if not port_free(HOST, p)]
        if busy:
            raise Unavailable(f"--port {first}: port {busy[0]} is in use; choose another --port")
        return wanted
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(addresses: list[str], index: int) -> str:
    """The TF_CONFIG of worker `index` of a cluster of `addresses`."""
    return json.dumps(
        {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    )


def start(args: list[str], count: int, port: int | None, logs: Path) -> list[Worker]:
    """Start `count` workers of `segbench run ARGS…`; worker 0, the chief, shares our output."""
    run_args = worker_args(args)
    addresses = [f"{HOST}:{p}" for p in ports(count, port)]
    workers = []
    for index, address in enumerate(addresses):
        env = {**os.environ, "TF_CONFIG": tf_config(addresses, index)}
        command = [sys.executable, "-m", "segbench", *run_args]
        log = None if index == 0 else logs / f"worker-{index}.log"
        output = None if log is None else log.open("w")
        try:
            # Its own session: a Ctrl-C reaches the workers once, through the launcher.
            process = subprocess.Popen(
                command,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT if output else None,
                start_new_session=True,
            )
        except BaseException:
            stop(workers)
            raise
        finally:
            if output is not None:
                output.close()
        workers.append(Worker(index, address, process, log))
    return workers


def stop(workers: list[Worker], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to every worker still running and wait for it to end."""
    for w in workers:
        if w.process.poll() is None:
            w.process.send_signal(sig)
    for w in workers:
        w.process.wait()


def supervise(workers: list[Worker], say: Callable[[str], None], started: float) -> None:
    """Wait for every worker to end; on the first failure, kill the others and raise
    WorkerFailed naming the worker, its exit and its log's last lines."""
    try:
        while True:
            codes = [w.process.poll() for w in workers]
            failed = next(
                (w for w, code in zip(workers, codes, strict=True) if code not in (None, 0)), None
            )
            if failed is not None:
                break
            if all(code == 0 for code in codes):
                return
            time.sleep(POLL_S)
    except BaseException as e:  # Ctrl-C or SIGTERM: the workers get the same, then a grace
        interrupt(workers, signal.SIGTERM if isinstance(e, SigTerm) else signal.SIGINT)
        raise
    chief_done = workers[0].process.poll() == 0
    stop(workers)
    code = failed.process.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    role = "the chief (worker 0)" if failed.index == 0 else f"worker {failed.index}"
    if failed.log is not None:
        lines = failed.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        for line in lines:
            say(f"  worker {failed.index} | {line}")
    kept = "the chief had already written the result" if chief_done else "no result written"
    where = f"; its log: {failed.log}" if failed.log else ""
    raise WorkerFailed(
        f"{role} ({failed.address}, pid {failed.process.pid}) {how} after "
        f"{time.monotonic() - started:.1f} s; stopped the other workers, {kept}{where}"
    )


def interrupt(workers: list[Worker], sig: int) -> None:
    """Pass Ctrl-C or SIGTERM on; kill whatever has not ended after GRACE_S seconds."""
    for w in workers:
        if w.process.poll() is None:
            w.process.send_signal(sig)
    deadline = time.monotonic() + GRACE_S
    for w in workers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            w.process.wait(max(0.0, deadline - time.monotonic()))
    stop(workers)


def launch(args: list[str], count: int, port: int | None, say: Callable[[str], None]) -> None:
    """Run `segbench run ARGS…` as `count` local workers of one multi-worker job."""
    logs = Path(tempfile.mkdtemp(prefix="segbench-launch-"))
    started = time.monotonic()
    workers = start(args, count, port, logs)
    for w in workers:
        output = "this terminal" if w.log is None else str(w.log)
        say(f"worker {w.index}: pid {w.process.pid}, {w.address}, output: {output}")
    supervise(workers, say, started)
    for w in workers:
        if w.log is not None:
            w.log.unlink(missing_ok=True)
    logs.rmdir()
