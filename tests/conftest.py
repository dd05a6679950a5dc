"""Shared fixtures: the TensorFlow backend, and one generated data set for the whole session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from segbench.measure import backend

backend.select_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))
# doctor and run import the frameworks in a child process first and remember a clean import
# per environment: one remembered probe for the suite instead of one per test folder (the
# probe's own tests point SEGBENCH_PROBE_CACHE elsewhere).
os.environ.setdefault(
    "SEGBENCH_PROBE_CACHE", str(Path(tempfile.gettempdir()) / f"segbench-tests-probe-{os.getuid()}")
)


def nchw_on_this_cpu() -> bool:
    """Whether this process's backend runs NCHW convolutions on the CPU: TensorFlow only
    through oneDNN, which it turns on by itself only on CPUs with AVX-512."""
    if backend.backend_name() != "tensorflow":
        return True
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


needs_nchw = pytest.mark.skipif(
    not nchw_on_this_cpu(),
    reason="TensorFlow's CPU Conv2D takes NCHW only with oneDNN, off on this CPU (no AVX-512); "
    "the run refuses channels_first here (test_fake_trainer.py), and TF_ENABLE_ONEDNN_OPTS=1 "
    "runs it (test_a_smoke_run_records_the_layout_and_its_numerics_match)",
)


@pytest.fixture(scope="session")
def triangles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full triangles data set, generated once."""
    from segbench.benchmark import triangles

    return triangles.generate(tmp_path_factory.mktemp("data") / "triangles")


@pytest.fixture(scope="session")
def small_dataset(triangles_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user-style data set: 8 training and 4 validation pairs of the triangles, own CSVs."""
    root = tmp_path_factory.mktemp("small")
    for name, numbers in (("train.csv", range(1, 9)), ("validation.csv", range(501, 505))):
        lines = ["x,y"] + [
            f"{triangles_dir}/images/{n:04d}.png,{triangles_dir}/masks/{n:04d}.png" for n in numbers
        ]
        (root / name).write_text("\n".join(lines) + "\n")
    return root
