"""No child process outlives a segbench command, whatever signal stops it and whenever: the
command runs under a supervisor that is a child subreaper (PR_SET_CHILD_SUBREAPER), so every
process it left behind, in any process group or session, becomes the supervisor's and is
listed after the command ends."""

import json
import subprocess
import sys
import time

import pytest
from cli_helpers import cached_data, fake

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's"
)

SUPERVISOR = """
import ctypes, json, signal, subprocess, sys, time
import psutil
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
delay, want, name, args = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
command = subprocess.Popen(
    [sys.executable, "-m", "segbench", *args],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
)
time.sleep(delay)
deadline = time.monotonic() + 20  # then until its children run (a loaded machine is slower)
while True:
    had = len(psutil.Process(command.pid).children(recursive=True))
    if had >= want or time.monotonic() > deadline or command.poll() is not None:
        break
    time.sleep(0.05)
command.send_signal(getattr(signal, name))
try:
    _, err = command.communicate(timeout=150)
except subprocess.TimeoutExpired:
    command.kill()
    _, err = command.communicate()
deadline = time.monotonic() + 5
while True:
    left = [p for p in psutil.Process().children(recursive=True)
            if p.status() != psutil.STATUS_ZOMBIE]
    if not left or time.monotonic() > deadline:
        break
    time.sleep(0.1)
found = [" ".join(p.cmdline())[:160] for p in left]
for p in left:
    p.kill()
print(json.dumps({"code": command.returncode, "had": had, "left": found, "err": err[-600:]}))
"""

TUNE = ["tune", "--preset", "smoke", "--out", "res"]
LAUNCH = ["launch", "--workers", "2", "--", "run", "--preset", "smoke", "--steps", "400"]


@pytest.mark.parametrize(
    ("delay", "name", "args", "code", "children"),
    [
        (1.0, "SIGINT", TUNE, 130, 1),  # the first trial starting
        (4.0, "SIGTERM", TUNE, 143, 1),  # a later trial running
        (1.5, "SIGHUP", LAUNCH, 129, 2),  # the workers meeting
        (5.0, "SIGTERM", LAUNCH, 143, 2),  # the workers' steps
        (0.3, "SIGINT", ["doctor"], 130, 1),  # the real framework's import probe, a child
    ],
    ids=[
        "tune-starting-SIGINT",
        "tune-trial-SIGTERM",
        "launch-meeting-SIGHUP",
        "launch-SIGTERM",
        "doctor-probe-SIGINT",
    ],
)
def test_no_child_outlives_a_stopped_command(
    tmp_path, triangles_dir, delay, name, args, code, children
):
    cached_data(tmp_path, triangles_dir)
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", SUPERVISOR, str(delay), str(children), name, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            **__import__("os").environ,
            # doctor: the real framework's import probe, not the suite's remembered one
            **(
                {"SEGBENCH_PROBE_CACHE": str(tmp_path / "probe")}
                if args == ["doctor"]
                else fake(sleep_s=0.05)
            ),
            "SEGBENCH_CACHE": str(tmp_path / "cache"),
        },
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["had"] >= children, found  # the signal came while its children ran
    assert found["code"] == code, found
    assert found["left"] == [], found
    assert time.monotonic() - began < 60, found  # stopped, not killed after launch's grace
