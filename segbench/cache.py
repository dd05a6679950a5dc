"""segbench's cache folder: the generated data set, numerics references, journals of running
runs and results no --out could take. Imports nothing heavy: every command may ask for it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """segbench's cache: $SEGBENCH_CACHE, else $XDG_CACHE_HOME/segbench (~/.cache/segbench)."""
    root = (
        os.environ.get("SEGBENCH_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "segbench"
    )
    return Path(root)
