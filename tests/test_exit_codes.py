"""The exit-code table: every error leaves through one place, with its documented code."""

import os
import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import ctrl_c_default
from typer.testing import CliRunner

from segbench.benchmark.triangles import DataError
from segbench.cli import EXIT_CODES, app, exit_code
from segbench.errors import BadInput, Interrupted, Unavailable
from segbench.measure.backend import DeviceError
from segbench.measure.run.checks import ChecksFailed
from segbench.results.compare import CompareError
from segbench.results.result import ResultFileError


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (BadInput("--width"), 2),
        (DataError("x.png: file not found"), 2),
        (ResultFileError("r.json: not valid JSON"), 2),
        (CompareError("results differ"), 2),
        (Unavailable("--out: not writable"), 1),
        (DeviceError("no GPU"), 1),
        (ChecksFailed("1 environment check(s) failed"), 1),
        (Interrupted("interrupted"), 130),
        (KeyboardInterrupt(), 130),
    ],
)
def test_every_error_kind_has_its_exit_code(error, code):
    assert exit_code(error) == code


def test_the_table_lists_each_kind_once():
    kinds = [kind for kind, _ in EXIT_CODES]
    assert len(kinds) == len(set(kinds))


def test_an_error_raised_in_a_command_is_one_line_and_its_code(tmp_path):
    done = CliRunner().invoke(app, ["compare", str(tmp_path / "missing.json")])
    assert done.exit_code == 2
    assert done.output.strip().splitlines() == [f"error: {tmp_path}/missing.json: no such file"]


@pytest.mark.slow
def test_ctrl_c_during_doctor_exits_130(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "segbench", "doctor"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "SEGBENCH_CACHE": str(tmp_path / "c")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_default,
    )
    try:
        time.sleep(2.0)  # doctor imports TensorFlow and gathers facts for several seconds
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1] == "error: interrupted"
