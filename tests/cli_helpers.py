"""Running the real command line as a user would: `python -m segbench` in a subprocess."""

import os
import signal
import subprocess
import sys


def _env(cwd, env):
    return {
        **os.environ,
        "SEGBENCH_CACHE": str(cwd / "cache"),
        "COLUMNS": "120",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }


def segbench(*args, cwd, env=None, timeout=300):
    """Run segbench to the end in folder `cwd` (its cache under `cwd`/cache)."""
    return subprocess.run(
        [sys.executable, "-m", "segbench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(cwd, env),
        cwd=cwd,
        check=False,
    )


def start(*args, cwd, env=None):
    """Start segbench in folder `cwd` and return the process (stdout and stderr piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "segbench", *args],
        cwd=cwd,
        env=_env(cwd, env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def ctrl_c_default() -> None:
    """Popen preexec_fn: Ctrl-C as at a terminal, even where pytest was started in the background.

    A shell without job control starts background commands with SIGINT ignored, and Python keeps
    an inherited SIG_IGN instead of raising KeyboardInterrupt, so a test of Ctrl-C must restore it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
