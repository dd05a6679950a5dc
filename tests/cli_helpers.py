"""Running the real command line as a user would: `python -m segbench` in a subprocess."""

import os
import re
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
        preexec_fn=ctrl_c_default,  # a fake run's own Ctrl-C, however pytest was started
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
        preexec_fn=ctrl_c_default,  # signals as at a terminal, however pytest was started
    )


def ctrl_c_default() -> None:
    """Popen preexec_fn: Ctrl-C as at a terminal, even where pytest was started in the background.

    A shell without job control starts background commands with SIGINT ignored, and Python keeps
    an inherited SIG_IGN instead of raising KeyboardInterrupt, so a test of Ctrl-C must restore it.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)  # and under nohup, a closed terminal's SIGHUP


# A phase line of a run whose output is piped: "[  12.3 s] importing tensorflow".
PHASE_LINE = re.compile(r"^\[ *\d+\.\d s\] ")


def error_lines(stderr: str) -> list[str]:
    """What a piped run printed besides its phase lines: a refused run's one error line."""
    return [line for line in stderr.strip().splitlines() if not PHASE_LINE.match(line)]


def fake(**script) -> dict[str, str]:
    """The environment of a run on the fake trainer (segbench/measure/fake_trainer.py): no
    framework imported, the step times and losses of `script`."""
    import json

    return {"SEGBENCH_FAKE_TRAINER": json.dumps(script or {})}


def cached_data(cwd, triangles_dir, copy: bool = False):
    """`cwd`/cache holding the generated triangles (hard links to the session's set, or copies
    where a test changes them), as a first run leaves it; returns the cache folder."""
    import shutil
    from pathlib import Path

    from segbench.benchmark.triangles import DATASET_VERSION

    cache = Path(cwd) / "cache"
    link = shutil.copy2 if copy else os.link
    shutil.copytree(triangles_dir, cache / DATASET_VERSION, copy_function=link)
    return cache
