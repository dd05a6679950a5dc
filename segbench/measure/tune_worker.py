"""Tune's workers: one process per Keras backend that runs the session's trials of that backend
one after another, so the framework is imported once, the data staged once and the numerics
check run once per set of kernels (measure/run/reuse.py).

A trial is `segbench run` itself, run in the worker's process with the trial's arguments: the
same checks, timed loop and result file as the command a person types. The protocol is one JSON
line each way: tune writes {"args": [...], "stderr": PATH, "stop_above_ms_per_image": MS|null};
the worker runs the command, with its standard error in PATH (and its timed steps ended after
the first slower than MS: measure/run/reuse.py), and answers {"code": EXIT_CODE} on the
descriptor that was its standard output (the command's own standard output goes to
/dev/null). A trial stopped by a signal (tune passes on Ctrl-C, or stops a trial past its
time) saves what it measured, and the worker then ends; tune starts another for the next trial
of that backend. This module is tune's side; the worker's own is segbench/cli/tune_worker.py
(it runs the command line).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

STOPPED = (129, 130, 143)  # the run was stopped by SIGHUP, SIGINT, SIGTERM: the worker ends


class WorkerGone(Exception):
    """The worker ended without answering (killed, or out of memory)."""


class Worker:
    """Tune's side: a worker process for one backend (started on first use)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.process: subprocess.Popen | None = None
        self.served = 0  # trials sent to the process now running

    def start(self) -> None:
        self.served = 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "segbench.cli.tune_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # each trial's goes to its own file
            text=True,
            errors="replace",
            start_new_session=True,  # a Ctrl-C reaches it only through tune
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def send(
        self, arguments: list[str], stderr: Path, stop_above_ms_per_image: float | None = None
    ) -> None:
        """Start a trial: `segbench run ARGUMENTS` in the worker (its timed steps end after
        the first slower than `stop_above_ms_per_image`, where given)."""
        if not self.alive:
            self.start()
        assert self.process is not None and self.process.stdin is not None
        self.served += 1
        try:
            request = {"args": arguments, "stderr": str(stderr)}
            request["stop_above_ms_per_image"] = stop_above_ms_per_image
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:
            raise WorkerGone from None

    def answer(self, timeout_s: float | None) -> int | None:
        """The trial's exit code; None when `timeout_s` passed first (the trial still runs)."""
        assert self.process is not None and self.process.stdout is not None
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            ready, _, _ = select.select([self.process.stdout], [], [], left)
            if not ready:
                return None
            line = self.process.stdout.readline()
            if not line:  # the worker ended without an answer
                self.process.wait()
                raise WorkerGone
            with contextlib.suppress(ValueError, KeyError, TypeError):
                return int(json.loads(line)["code"])

    def interrupt(self) -> None:
        """Stop the running trial as Ctrl-C would: it saves what it measured."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)

    def close(self) -> None:
        """End the worker and whatever it started (its process group), then reap it."""
        if self.process is None:
            return
        with contextlib.suppress(OSError):
            if self.process.stdin is not None:
                self.process.stdin.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        with contextlib.suppress(OSError):
            if self.process.stdout is not None:
                self.process.stdout.close()
        self.process = None
