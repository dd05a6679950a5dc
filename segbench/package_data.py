"""The data segbench ships inside its package, checked before it is used.

numerics_reference.json (the numerics check's losses), result.schema.json (result files' JSON
Schema) and the TensorFlow × tensorflow-metal table (metal_pairs.py). A file that is missing,
truncated or edited stops the command with one line that names it and says to reinstall: a run
never times against a corrupted reference. "Edited" is told by the SHA-256 recorded below.
Whoever remakes a file (`just numerics-reference`, `just schema`, or edits the metal table)
records its new digest here; tests/test_package_data.py fails until then, naming it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

from segbench.errors import Unavailable

# Keyed by the path inside the package.
SHA256 = {
    "measure/numerics_reference.json": (
        "41f8d2f72c2ab03dc0d32f2349fbd50429e80557b8949ee1a3848a6a449585e1"
    ),
    # `just schema` remakes it from the result dataclasses (tests/test_statistics.py: not stale).
    "results/result.schema.json": (
        "565d35397335f5328a372d668ba5d133f6750c8dcaf594ab7af7b2c0b8b19142"
    ),
    # Of the table's content (table_digest), not of the file: comments may change.
    "doctor/metal_pairs.py": "e36f472e414699fab47b622ad553b645e460469d888c8805cb0e0aacd975ff91",
}


class PackageDataError(Unavailable):
    """A file of segbench's own package is missing, truncated or edited (exit 1)."""


def package_file(name: str) -> Path:
    """Where the package file `name` (a path inside the package, e.g.
    "results/result.schema.json") is, or should be."""
    return Path(str(resources.files("segbench").joinpath(name)))


def damaged(name: str, why: str) -> PackageDataError:
    """The one line for a damaged package file: which, why, and to reinstall."""
    path = package_file(name)
    checkout = (package_file("").parent / ".git").exists()
    restore = f"; in a git checkout: git checkout -- segbench/{name}" if checkout else ""
    return PackageDataError(
        f"segbench's package file {path} is damaged ({why}): reinstall segbench "
        f"(uv sync --reinstall-package segbench, or pip install --force-reinstall segbench"
        f"{restore})"
    )


def read_json(name: str) -> Any:
    """The package's JSON file `name`; PackageDataError when it is missing, unreadable, not
    JSON, or its SHA-256 is not the one recorded in SHA256."""
    try:
        raw = package_file(name).read_bytes()
    except FileNotFoundError:
        raise damaged(name, "missing") from None
    except OSError as e:
        raise damaged(name, f"cannot be read: {e.strerror or e}") from None
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else ""
        raise damaged(name, f"not valid JSON: truncated or corrupt{where}") from None
    if name in SHA256 and hashlib.sha256(raw).hexdigest() != SHA256[name]:
        raise damaged(name, "edited: its SHA-256 is not the one this segbench recorded")
    return document


def table_digest(module: ModuleType) -> str:
    """The SHA-256 of the metal table's content: the locked pair and every row."""
    return hashlib.sha256(repr((module.LOCKED, module.PAIRS)).encode()).hexdigest()


def metal_table() -> ModuleType:
    """segbench.doctor.metal_pairs, checked; PackageDataError when it is missing, does not import or
    its table is not the one recorded in SHA256."""
    try:
        metal_pairs = importlib.import_module("segbench.doctor.metal_pairs")
    except Exception as e:  # noqa: BLE001 - a damaged module can fail in any way
        missing = isinstance(e, ModuleNotFoundError) and e.name == "segbench.doctor.metal_pairs"
        why = "missing" if missing else f"it does not load: {e!r}"
        raise damaged("doctor/metal_pairs.py", why[:160]) from None
    try:
        digest = table_digest(metal_pairs)
    except AttributeError:  # LOCKED or PAIRS gone
        digest = None
    if digest != SHA256["doctor/metal_pairs.py"]:
        raise damaged(
            "doctor/metal_pairs.py", "edited: its table is not the one this segbench recorded"
        )
    return metal_pairs


def verify() -> None:
    """Check every package file (a run, before anything is imported or timed; doctor)."""
    from segbench.results.result import shipped_schema

    read_json("measure/numerics_reference.json")
    shipped_schema()
    metal_table()
