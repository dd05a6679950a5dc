"""The command line's two consoles, stdout and stderr, and the plain lines it prints on them."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console, ConsoleDimensions

from segbench.report.printable import ASCII_FALLBACK, printable


class _Console(Console):
    """A rich console that cuts no line in logs, pipes and CI output: there (not a terminal)
    it has no width limit; on a terminal, the terminal's width (or COLUMNS)."""

    @property
    def size(self) -> ConsoleDimensions:
        size = Console.size.fget(self)
        return size if self.is_terminal else ConsoleDimensions(UNLIMITED, size.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)


UNLIMITED = 10_000  # columns: wider than any table or line segbench prints
stdout = _Console()
stderr = _Console(stderr=True)
_stderr_closed = False  # started with `2>&-`: the error line goes to stdout instead


def messages() -> Console:
    """Where a command's last word goes: stderr, or stdout when stderr was closed."""
    return stdout if _stderr_closed else stderr


def note(line: str) -> None:
    """A line on stderr, as it is: no markup, no highlighting, never cut."""
    stderr.print(printable(line), markup=False, highlight=False, soft_wrap=True)


def print_path(console: Console, label: str, path: Path) -> None:
    """`label PATH` on a terminal; in logs and pipes the path on a line of its own, unwrapped."""
    shown = printable(str(path))
    if console.is_terminal:
        console.print(f"{label} {shown}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"{label}:", highlight=False)
        console.print(shown, markup=False, highlight=False, soft_wrap=True)


def saved_elsewhere(name: str, write: Callable[[Path], object]) -> Path | None:
    """After `--output` could not be written (disk full, a read-only folder): `write` the same
    output as a new file called like `name` in the first unsaved-results folder that takes it
    (the cache's, then the temporary folder's, as for a run's result); None when none does."""
    from segbench.measure.run.pipeline import unsaved_folders

    stem, suffix = Path(name).stem, Path(name).suffix
    for folder in unsaved_folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            count = 1
            while path.exists():  # never replaces a file there
                count += 1
                path = folder / f"{stem}-{count}{suffix}"
            write(path)
            return path
        except OSError:
            continue
    return None


def write_or_save_elsewhere(
    console: Console,
    option: str,
    target: Path,
    what: str,
    write: Callable[[Path], object],
    said: str,
) -> None:
    """`write` the output (a `what`) to `target` (`option` names it) and print `said` and
    where it went (the path `write` returns, else `target`); where that fails
    (disk full, a read-only folder), write it with saved_elsewhere and raise Unavailable
    saying where it went (exit 1), or that no folder took it."""
    from segbench.errors import Unavailable

    try:
        written = write(target)
    except OSError as e:
        problem = f"{option} {target}: cannot write the {what} ({e.strerror or e})"
        elsewhere = saved_elsewhere(target.name, write)
        if elsewhere is None:
            raise Unavailable(f"{problem}; choose a file in a writable folder") from None
        print_path(console, said, elsewhere)
        raise Unavailable(f"{problem}; it was saved to {elsewhere} instead") from None
    print_path(console, said, written if isinstance(written, Path) else target)


def usable_streams() -> None:
    """Make output unable to fail: a closed descriptor 0, 1 or 2 (`2>&-`) is opened on
    /dev/null (else the next file opened takes its number and receives what is written to
    it: the frameworks' log lines in a result file), and a symbol the console cannot encode
    (PYTHONIOENCODING=ascii, latin-1, cp1252) is written in ASCII instead of raising."""
    global _stderr_closed
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)  # the lowest free number: `fd` itself
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
            _stderr_closed = _stderr_closed or fd == 2
    for name, fd in (("stdout", 1), ("stderr", 2)):
        stream = getattr(sys, name)
        if stream is None:  # Python's own for a descriptor closed at start
            stream = open(fd, "w", errors=ASCII_FALLBACK, closefd=False)  # noqa: SIM115
        elif hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=ASCII_FALLBACK)
        if not isinstance(stream, _PipeSafe) and _descriptor(stream) == fd:
            stream = _PipeSafe(stream, fd)
        setattr(sys, name, stream)


def _descriptor(stream: object) -> int | None:
    try:
        return stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return None  # not a file of the OS's (a test's StringIO)


class _PipeSafe:
    """A standard stream whose reader went away (`segbench run | head`, a closed SSH pipe)
    takes further writes into /dev/null instead of raising BrokenPipeError: the run goes on
    and saves what it measured, and its result says where."""

    def __init__(self, stream: object, fd: int) -> None:
        self._stream = stream
        self._fd = fd

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)  # type: ignore[attr-defined]
        except BrokenPipeError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()  # type: ignore[attr-defined]
        except BrokenPipeError:
            self._to_null()

    def _to_null(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self._fd)
        os.close(null)
        with contextlib.suppress(OSError):  # what is buffered goes to /dev/null
            self._stream.flush()  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)
