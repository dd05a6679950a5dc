"""The benchmarks/ scripts that report figures quoted in the docs run and print what they say."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parents[1] / "benchmarks"


@pytest.mark.slow
def test_framework_memory_counts_tensorflows_tensors_apart_from_the_rest():
    done = subprocess.run(
        [
            sys.executable,
            SCRIPTS / "framework_memory.py",
            "--width",
            "0.0625",
            "--batch-sizes",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines() if re.match(r"^ +\d+ ", line)]
    assert [row[0] for row in rows] == ["2"], done.stdout
    _, before, tensors, outside, peak = (float(v) for v in rows[0])
    # Python + TensorFlow + the model before the first step; then, at width 1/16 and batch 2,
    # at least the batch and its activations (a 512x512x8 float32 map is 8 MiB an image).
    assert 0.2 < before < 3 and 0.02 < tensors < 1
    assert abs(peak - (before + tensors + outside)) <= 0.02  # the columns add up (rounding)
