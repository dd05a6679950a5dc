"""`segbench launch`: the workers of one multi-worker run as local processes on 127.0.0.1.

Each worker is `segbench run ARGS… --strategy multiworker` with its own TF_CONFIG, as a
cluster manager would start it on its own machine. The chief's (task 0's) output is passed
through; the others' goes to log files. When a worker fails, the job cannot finish (every
step waits for every worker): the others are killed at once, so nothing hangs and no partial
result of an incomplete job is written (a result file appears only when a run completes).
Ctrl-C, SIGTERM and SIGHUP are passed to every worker, which stop after the same step; the
chief saves what was measured, and the launcher exits with the signal's code.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from segbench.errors import BadInput, Interrupted, Unavailable, signal_name, stopped
from segbench.measure.parallel.distribution import MULTIWORKER
from segbench.measure.parallel.peers import port_free
from segbench.measure.parallel.stop_vote import STOP_SIGNALS
from segbench.measure.processes import end_unnamed_children

HOST = "127.0.0.1"
POLL_S = 0.1
# After a signal is passed on, how long the workers have to stop before they are killed: the
# step under way and the next one (the one in which they agree to stop; a compile step of the
# published model takes a minute on a slow CPU), then the chief's saving.
GRACE_S = 120.0
# Once a worker has stopped, the others' collectives can no longer complete (TensorFlow waits
# for the missing worker inside its runtime): they have this long to end (the chief's saving).
ALONE_S = 20.0
RESEND_S = 10.0
LOG_TAIL = 15  # lines of a failed worker's log shown
LOGS_NAMED = 3  # worker logs named in a line; more: the folder
# A worker's exit: done, or stopped by SIGHUP, SIGINT or SIGTERM (handled, or by the default
# action while TensorFlow's strategy starts).
ENDED_WELL = (0, 129, 130, 143, -1, -2, -15)
# Local workers are whole framework processes (about 2 GB each for the smoke preset) sharing
# this host's cores: more than this is a job for several machines.
MAX_WORKERS = 32
# Open files: the launcher holds one socket per worker while it picks their ports, and the
# chief a connection or two per worker (gRPC, the coordination service) beside what a
# TensorFlow process opens anyway (a chief of 2 workers on CPU holds 24).
FILES_PER_WORKER = 2
FILES_BESIDE_WORKERS = 64


class WorkerFailed(Unavailable):
    """A worker exited with an error; the message names it."""


@dataclass
class Worker:
    index: int
    address: str
    process: subprocess.Popen
    log: Path | None  # None for the chief: its output is passed through


def is_run(args: list[str]) -> bool:
    """Whether ARGS (after --) are a `segbench run`."""
    return bool(args) and args[0] == "run"


def worker_args(
    args: list[str], strategy: str | None, cpu_replicas: int | None = None
) -> list[str]:
    """The `segbench run` arguments each worker gets: `--strategy multiworker` added, or
    BadInput when ARGS are not a run, ask for another strategy or split the CPU. `strategy`
    and `cpu_replicas` are what `run` reads from ARGS (the last of a repeated option; None
    when not given)."""
    if not is_run(args):
        raise BadInput("segbench launch: give the run after --, e.g. -- run --preset smoke")
    if strategy is not None and strategy != MULTIWORKER:
        raise BadInput(f"segbench launch runs --strategy {MULTIWORKER}, not --strategy {strategy}")
    if cpu_replicas is not None:
        raise BadInput(
            f"--cpu-replicas {cpu_replicas}: a multi-worker job runs one replica per worker "
            "(for more replicas, more --workers; --cpu-replicas is for --strategy mirrored)"
        )
    return list(args) if strategy else [*args, "--strategy", MULTIWORKER]


def check_workers(count: int) -> None:
    """BadInput when `count` local workers are more than one host should run, or than the
    open-file limit (ulimit -n) allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = FILES_PER_WORKER * count + FILES_BESIDE_WORKERS
    if soft != resource.RLIM_INFINITY and need > soft:
        raise BadInput(
            f"--workers {count}: needs about {need} open files, and the limit is {soft} "
            f"(ulimit -n; hard limit {'unlimited' if hard == resource.RLIM_INFINITY else hard}): "
            f"lower --workers or raise the limit (ulimit -n {need})"
        )
    if count > MAX_WORKERS:
        raise BadInput(
            f"--workers {count}: at most {MAX_WORKERS} local workers (each is a whole framework "
            "process sharing this host's cores and memory); for more, start them on several "
            'machines with TF_CONFIG (README: "More than one GPU or machine")'
        )


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


def start(run_args: list[str], addresses: list[str], logs: Path) -> list[Worker]:
    """Start a worker of `segbench run RUN_ARGS…` at each address; worker 0, the chief, shares
    our output, the others write to log files in `logs`."""
    workers: list[Worker] = []
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
                preexec_fn=_stop_with_parent,  # launch killed outright: its workers stop too
            )
        except BaseException:  # a signal: the workers started, and one forked but not named
            stop(workers)
            end_unnamed_children()
            raise
        finally:
            if output is not None:
                output.close()
        workers.append(Worker(index, address, process, log))
    return workers


def _stop_with_parent() -> None:
    """In a worker, before it runs: SIGTERM when launch dies, even by SIGKILL (Linux's
    PR_SET_PDEATHSIG), so a worker never runs on alone; the SIGTERM stops it as Ctrl-C does."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PDEATHSIG


def stop(workers: list[Worker], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to every worker still running and wait for it to end."""
    for w in workers:
        if w.process.poll() is None:
            w.process.send_signal(sig)
    for w in workers:
        w.process.wait()


def supervise(workers: list[Worker], say: Callable[[str], None], started: float) -> None:
    """Say where each worker's output goes and wait for every worker to end; on the first
    failure, kill the others and raise WorkerFailed naming the worker, its exit and its log's
    last lines (the chief's failure: the others' logs)."""
    try:
        for w in workers:
            output = "this terminal" if w.log is None else str(w.log)
            say(f"worker {w.index}: pid {w.process.pid}, {w.address}, output: {output}")
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
    except KeyboardInterrupt as signalled:  # Ctrl-C, SIGTERM or SIGHUP: every worker gets it
        interrupt(workers, signal_name(signalled), say)
    chief_done = workers[0].process.poll() == 0
    stop(workers)
    code = failed.process.returncode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
    role = "the chief (worker 0)" if failed.index == 0 else f"worker {failed.index}"
    if failed.log is not None:
        lines = failed.log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        for line in lines:
            say(f"  worker {failed.index} | {line}")
    kept = (
        "the chief had already written the result"
        if chief_done
        # Stopped like Ctrl-C: a chief whose timed steps had begun keeps them, marked.
        else "the chief was stopped (it keeps a partial result if its timed steps had begun)"
    )
    if failed.log is not None:
        where = f"; its log: {failed.log}"
    else:
        where = f"; the other workers' logs: {logs_named(workers[1:])}" if workers[1:] else ""
    raise WorkerFailed(
        f"{role} ({failed.address}, pid {failed.process.pid}) {how} after "
        f"{time.monotonic() - started:.1f} s; stopped the other workers, {kept}{where}"
    )


def logs_named(workers: list[Worker]) -> str:
    """The log files of `workers`: each, or the first few and their folder."""
    logs = [str(w.log) for w in workers if w.log is not None]
    if len(logs) <= LOGS_NAMED:
        return ", ".join(logs)
    folder = Path(logs[0]).parent
    return f"{', '.join(logs[:LOGS_NAMED])}, … ({len(logs)} in {folder})"


def interrupt(workers: list[Worker], name: str, say: Callable[[str], None]) -> NoReturn:
    """Pass the signal `name` on to every worker, wait up to GRACE_S seconds for them to stop
    (further signals meanwhile are noted, not obeyed: they must not undo the saving), kill
    any still running, and raise the signal's Interrupted naming what happened.

    The signal is sent again every RESEND_S seconds to a worker still running: one that
    lands while TensorFlow's strategy starts is taken by TensorFlow's own SIGTERM handler
    and lost; a worker that has it already ignores the repeat."""
    with _noting(say):
        passed_at = time.monotonic()
        deadline = passed_at + GRACE_S
        running = workers
        while running and time.monotonic() < deadline:
            for w in running:
                with contextlib.suppress(ProcessLookupError):
                    w.process.send_signal(signal.Signals[name])
            until = min(deadline, time.monotonic() + RESEND_S)
            for w in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    w.process.wait(max(0.0, until - time.monotonic()))
                if w.process.poll() is not None:  # one has left: the rest cannot step on
                    deadline = min(deadline, time.monotonic() + ALONE_S)
                    until = min(until, deadline)
            running = [w for w in running if w.process.poll() is None]
        killed = running
        stop(killed)
        waited = time.monotonic() - passed_at
    passed = f"interrupted: {name} passed to the {len(workers)} workers"
    if not killed:
        raise _stopped_together(name, passed, workers[0].process.returncode)
    who = ", ".join("the chief" if w.index == 0 else f"worker {w.index}" for w in killed)
    kept = (
        "nothing was saved" if killed[0].index == 0 else "the chief's line above says what it kept"
    )
    logs = f" (logs: {logs_named(killed)})" if any(w.log for w in killed) else ""
    were = "was" if len(killed) == 1 else "were"
    raise stopped(name)(
        f"{passed}; {who} did not stop within {waited:.0f} s and {were} killed{logs}; {kept}"
    )


def _stopped_together(name: str, passed: str, chief: int) -> Interrupted:
    """The signal's error once every worker stopped, by the chief's exit code: a chief that
    ran segbench's handler (exit > 0) printed its own `error:` line on this terminal, which
    says what it kept, so this one is a note; one ended by the signal itself (before its
    handlers were in place, exit < 0) printed and kept nothing."""
    if chief == 0:
        return stopped(name)(f"{passed}; they stopped after the chief had written the result")
    if chief < 0:
        return stopped(name)(
            f"{passed}; they stopped before the run started ({signal.Signals(-chief).name} "
            "ended the chief at start-up); nothing was measured"
        )
    return stopped(name)(f"{passed}; they stopped", said_above=True)


@contextlib.contextmanager
def _noting(say: Callable[[str], None]) -> Iterator[None]:
    """Inside: Ctrl-C, SIGTERM and SIGHUP say that the workers are stopping, and nothing else."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for name in STOP_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(
                number, lambda *_: say("the workers are stopping and the chief is saving; waiting")
            )
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def launch(
    args: list[str],
    count: int,
    port: int | None,
    say: Callable[[str], None],
    strategy: str | None = None,
    cpu_replicas: int | None = None,
) -> None:
    """Run `segbench run ARGS…` as `count` local workers of one multi-worker job. `strategy`
    and `cpu_replicas`: what `run` reads from ARGS (None when not given). Everything is
    checked before anything is created; the log folder is removed unless a line names a log
    in it."""
    run_args = worker_args(args, strategy, cpu_replicas)
    check_workers(count)
    addresses = [f"{HOST}:{p}" for p in ports(count, port)]
    logs = Path(tempfile.mkdtemp(prefix="segbench-launch-"))
    workers: list[Worker] = []
    try:
        started = time.monotonic()
        workers = start(run_args, addresses, logs)
        supervise(workers, say, started)
    finally:
        # The logs of workers that failed or were killed stay (the error line names them).
        if not any(w.log and w.process.poll() not in ENDED_WELL for w in workers):
            shutil.rmtree(logs, ignore_errors=True)
