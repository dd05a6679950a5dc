"""How the workers of a multi-worker job stop together on Ctrl-C, SIGTERM or SIGHUP: each
worker's vote is all-reduced with every step's logs, and all stop after the same step."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from segbench.errors import SigHup, SigTerm

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")
BALLOT = "segbench_stop"  # the log entry that carries the workers' votes


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
