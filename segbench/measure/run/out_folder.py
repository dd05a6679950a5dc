"""The --out folder of a run or tune: its name within the file system's limits, writable, with
room for what will be written, and removed again when a refused run created it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from segbench.benchmark.config import RunConfig
from segbench.errors import BadInput, Unavailable

RESULT_NAME_BYTES = 64  # the longest name a result (or its temporary file) gets in --out


def check_out_name(out: Path) -> None:
    """BadInput, before anything is created, when `out` is longer than its file system
    allows: a folder name over NAME_MAX bytes, or with a result's name a path over PATH_MAX."""
    path = Path(os.path.abspath(out))
    existing = next((p for p in (path, *path.parents) if _is_dir(p)), Path(path.anchor))
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    for part in path.parts[1:]:
        size = len(os.fsencode(part))
        if size > name_max:
            raise BadInput(
                f"--out: the folder name {part[:24]!r}… is {size} bytes, and this file system "
                f"allows {name_max} (NAME_MAX); choose a shorter --out"
            )
    size = len(os.fsencode(str(path))) + 1 + RESULT_NAME_BYTES
    if size > path_max:
        raise BadInput(
            f"--out: with a result's name the path is {size} bytes, and this system allows "
            f"{path_max} (PATH_MAX); choose a shorter --out"
        )


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long, say
        return False


def _path_limit(folder: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(folder, name)
    except (AttributeError, OSError, ValueError):  # no pathconf (Windows), or no such limit
        return default


def _missing(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        try:
            if path.exists():
                break
        except OSError:
            break
        missing.append(path)
    return missing


def check_writable(folder: Path) -> None:
    """Fail now, not after an hour of benchmarking, if results cannot be written to `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".segbench-write-test-"):
            pass
    except OSError as e:
        raise Unavailable(
            f"--out {folder}: not writable ({e.strerror or e}); pass a writable folder "
            '(in a container, mount one: -v "$PWD/results:/results")'
        ) from None


def _remove_if_empty(out: Path, created: list[Path]) -> None:
    """Remove the folders of `created` (deepest first) that are still empty."""
    for folder in created:
        try:
            folder.rmdir()  # only an empty folder
        except OSError:
            return


def check_free_space(folder: Path, needed: int) -> None:
    """Unavailable now, not after an hour of benchmarking, when `folder`'s file system has less
    free space than `needed` bytes (what the command will write there, estimated)."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # check_writable has said what is wrong with the folder
    if free < needed:
        raise Unavailable(
            f"--out {folder}: {free / 2**20:.1f} MiB free, and this command writes about "
            f"{needed / 2**20:.1f} MiB there; free some space or choose another --out"
        )


def result_bytes(config: RunConfig) -> int:
    """A generous estimate of a result file's size: its fixed part and each step's record
    (about 300 bytes; 2 KiB allowed for telemetry and the epochs' records)."""
    steps = (1 + config.warmup + config.steps) * config.repeats
    if config.epochs > 0:
        steps = config.epochs * config.repeats * 2_000  # an upper bound of batches per epoch
    return 1_048_576 + 2_048 * steps
