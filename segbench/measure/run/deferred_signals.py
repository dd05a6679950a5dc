"""Ctrl-C, SIGTERM and SIGHUP after timing: noted, not raised, until the result is saved."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from contextlib import contextmanager


class DeferredSignals:
    """After timing, Ctrl-C, SIGTERM and SIGHUP are noted, not raised, until the result is
    saved (a second Ctrl-C must not undo the saving the first started); `raising()` lets them
    stop the peak probe. The first one noted marks the result interrupted."""

    SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")

    def __init__(self) -> None:
        self.name: str | None = None
        self.previous: dict[int, object] = {}

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None and signal.getsignal(number) is not signal.SIG_IGN:
                    self.previous[number] = signal.signal(number, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        self.previous = {}

    def _note(self, signum: int, frame: object) -> None:
        self.name = self.name or signal.Signals(signum).name
        with contextlib.suppress(OSError):
            os.write(2, b"segbench: saving what was measured first; it stops right after\n")

    @contextmanager
    def raising(self):
        """The signals raise again inside the block (the peak probe can be stopped)."""
        noting = dict(self.previous)
        for number, handler in noting.items():
            signal.signal(number, handler)
        try:
            yield
        finally:
            for number in noting:
                signal.signal(number, self._note)
