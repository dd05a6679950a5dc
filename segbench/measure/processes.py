"""The child processes a command starts (tune's workers, launch's workers)."""

from __future__ import annotations

import contextlib
import os
import signal


def end_unnamed_children() -> None:
    """A signal handled inside subprocess.Popen (after its fork) leaves a child that the
    caller never got to name: each child of this process is killed with its group and
    reaped (only for commands whose every child is theirs to end)."""
    import psutil

    for process in psutil.Process().children():
        with contextlib.suppress(ProcessLookupError, PermissionError, psutil.Error):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
