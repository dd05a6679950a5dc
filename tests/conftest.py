"""Shared fixtures: the TensorFlow backend, and one generated data set for the whole session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from segbench import backend

backend.select_backend(os.environ.get("KERAS_BACKEND", "tensorflow"))


@pytest.fixture(scope="session")
def triangles_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full triangles data set, generated once."""
    from segbench import triangles

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
