"""Atomic output: a file or folder appears complete under its name, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    """The process's current umask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path, folder: bool = False) -> Iterator[Path]:
    """A temporary path beside `target` to write into; renamed onto `target` when the block ends.

    If the block raises, the temporary file or folder is removed and `target` is untouched.
    The temporary path gets the modes a plain new file or folder would get (mkstemp and mkdtemp
    make them private, but results and data sets are for sharing). A folder replaces only an
    absent or empty `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        mode = 0o777
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        tmp, mode = Path(name), 0o666
    try:
        tmp.chmod(mode & ~umask())
        yield tmp
        if folder and target.exists():
            target.rmdir()  # an empty folder: os.replace cannot rename onto it otherwise
        os.replace(tmp, target)
    except BaseException:
        if folder:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` to `path` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return Path(path)


def write_text_new(folder: Path, stem: str, suffix: str, text: str) -> Path:
    """Write `text` atomically as a new file `stem + suffix` in `folder`, never replacing one.

    When the name is taken (another run that started in the same second, say), `stem-2`,
    `stem-3`, … are tried. The complete temporary file is hard-linked to the name, which fails
    rather than replaces when the name exists, whatever runs at once. Where the file system
    has no hard links, the name is reserved with an exclusive create and then replaced.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".tmp", dir=folder)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        tmp.chmod(0o666 & ~umask())
        for n in range(1, 10_000):
            target = folder / (f"{stem}{suffix}" if n == 1 else f"{stem}-{n}{suffix}")
            try:
                _claim(tmp, target)
            except FileExistsError:
                continue
            return target
        raise FileExistsError(f"{folder}: no free name for {stem}{suffix}")
    finally:
        tmp.unlink(missing_ok=True)


def _claim(tmp: Path, target: Path) -> None:
    """Give the complete file `tmp` the name `target`; FileExistsError when it is taken."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError:  # no hard links here: reserve the name, then replace the reservation
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.replace(tmp, target)
