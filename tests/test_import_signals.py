"""A signal while the run imports its framework (jax here) ends the run with its exit code.

Raised inside that import, a KeyboardInterrupt was dropped by jax's gc callback (the run went
on) or crashed jaxlib's initialisation (SIGSEGV); backend.signals_deferred acts on it once the
import is done.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import ctrl_c_default

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="reads /proc/PID/maps (Linux)"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One cache for every case: the child-process import probe is paid once."""
    pytest.importorskip("jax", reason="the jax extra is not installed (uv sync --extra jax)")
    return tmp_path_factory.mktemp("cache")


def _importing_jax(pid: int) -> bool:
    """jaxlib is loaded into the run's own process: its import, after the child's probe."""
    try:
        return "jaxlib" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.parametrize(
    ("name", "after_s", "code"),
    [("SIGINT", 0.0, 130), ("SIGTERM", 0.5, 143), ("SIGHUP", 1.0, 129)],
)
@pytest.mark.slow
def test_a_signal_during_the_framework_import_ends_the_run(tmp_path, cache, name, after_s, code):
    env = {**os.environ, "SEGBENCH_CACHE": str(cache), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "segbench", "run", "--preset", "smoke", "--backend", "jax"],
        cwd=tmp_path,
        env={**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        deadline = time.monotonic() + 180
        while not _importing_jax(proc.pid) and proc.poll() is None:
            assert time.monotonic() < deadline, "the run never started importing jax"
            time.sleep(0.02)
        time.sleep(after_s)
        proc.send_signal(getattr(signal, name))
        sent = time.monotonic()
        _, stderr = proc.communicate(timeout=120)  # the rest of the import, then the stop
        ended_s = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr[-2000:]
    lines = stderr.strip().splitlines()
    assert lines[-1] == "error: interrupted before timing started; no result written"
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert ended_s < 60  # stopped once imported: no data set made, nothing timed
    assert not (tmp_path / "results").exists()
    assert not (cache / "triangles-v1").exists()


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_while_segbench_itself_starts_is_one_line_and_its_exit_code(tmp_path, name):
    """At every moment of start-up (Python's imports, the command line being built, the options
    read, the command, the exit): one `error:` line and the signal's code, never a traceback
    through segbench's code, and never CPython's own SIGINT exit (-2) after segbench reported
    the Ctrl-C; a signal that lands after the command ended leaves its exit 0. During the
    interpreter's own start-up, before any segbench code runs, Python's defaults apply."""
    code = {"SIGINT": 130, "SIGTERM": 143}[name]
    seen = set()
    for after_s in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.6):
        child = subprocess.Popen(
            [sys.executable, "-m", "segbench", "doctor", "--help"],
            env={**os.environ, "SEGBENCH_CACHE": str(tmp_path)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=ctrl_c_default,
        )
        time.sleep(after_s)
        child.send_signal(getattr(signal, name))
        _, stderr = child.communicate(timeout=60)
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]
        frames = [line for line in stderr.splitlines() if line.strip().startswith("File ")]
        # Only the interpreter's own start-up (site, runpy, the first lines of
        # segbench/__init__.py before its handlers are set) may end in Python's traceback.
        ours = [f for f in frames if "/segbench/" in f or "site-packages" in f]
        assert not [f for f in ours if "segbench/__init__.py" not in f], stderr
        if frames:
            continue
        if child.returncode == code:
            assert len(errors) == 1 and errors[0].startswith("error: interrupted"), stderr
        else:
            assert child.returncode in (0, -getattr(signal, name)), (after_s, child.returncode)
            assert errors == [], stderr
        seen.add(child.returncode)
    assert code in seen  # at least one landed while segbench handled it
