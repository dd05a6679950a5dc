"""The errors segbench reports in one line; the command line (segbench/cli/app.py) maps each
class to its exit code."""

from __future__ import annotations


class SegbenchError(Exception):
    """A failure the user can fix; the message is the one line shown, naming what to do."""


class BadInput(SegbenchError):
    """An option, data file or result file that cannot be used (exit 2)."""


class Unavailable(SegbenchError):
    """The environment or device cannot do what was asked (exit 1)."""


class Regression(SegbenchError):
    """`compare --fail-if-slower`: a result is significantly slower than allowed (exit 3)."""


class Interrupted(SegbenchError):
    """Ctrl-C stopped the command (exit 130); the message says what was kept. `said_above`:
    a child on the same terminal already printed the error line, so this one is a note."""

    def __init__(self, message: str = "", *, said_above: bool = False) -> None:
        super().__init__(message)
        self.said_above = said_above


class Terminated(Interrupted):
    """SIGTERM stopped the command (exit 143), handled as Ctrl-C is."""


class SigInt(KeyboardInterrupt):
    """Raised by segbench's SIGINT handler: a Ctrl-C that really arrived, told apart from a
    KeyboardInterrupt that user code (a --model file) raises itself."""


class SigTerm(KeyboardInterrupt):
    """Raised by segbench's SIGTERM handler (docker stop, Slurm, Kubernetes, CI time-outs), so
    that everything Ctrl-C cleans up or keeps is cleaned up or kept for SIGTERM too."""


class HungUp(Interrupted):
    """SIGHUP stopped the command (exit 129): the terminal or SSH session closed."""


class SigHup(KeyboardInterrupt):
    """Raised by segbench's SIGHUP handler, so a closed terminal keeps what Ctrl-C keeps."""


def signal_name(stop: BaseException) -> str:
    """ "SIGHUP", "SIGTERM" or "SIGINT": which signal a KeyboardInterrupt stands for."""
    if isinstance(stop, SigHup):
        return "SIGHUP"
    return "SIGTERM" if isinstance(stop, SigTerm) else "SIGINT"


def from_signal(stop: BaseException) -> bool:
    """Whether a KeyboardInterrupt was raised by one of segbench's signal handlers (so a signal
    arrived), not by code that raised it itself."""
    return isinstance(stop, (SigInt, SigTerm, SigHup))


def raise_sigint(signum: int, frame: object) -> None:
    """segbench's Ctrl-C handler: raises SigInt, as Python's own handler raises
    KeyboardInterrupt, so that a Ctrl-C that arrived can be told from user code's raise."""
    raise SigInt()


def raised_by_user_code(stop: BaseException) -> bool:
    """Whether a KeyboardInterrupt came from code that raised it itself, not from a signal;
    only known while raise_sigint handles Ctrl-C (else every one counts as a signal)."""
    import signal

    return not from_signal(stop) and signal.getsignal(signal.SIGINT) is raise_sigint


def forget_handled_interrupt() -> None:
    """Tell CPython that a KeyboardInterrupt was handled. CPython 3.11 notes one that passes
    through an import's code even when it is caught later, and then ends the process with
    SIGINT (exit -2) instead of segbench's exit code; segbench reports the signal itself."""
    try:
        import ctypes

        ctypes.c_int.in_dll(ctypes.pythonapi, "_Py_UnhandledKeyboardInterrupt").value = 0
    except (ImportError, AttributeError, ValueError, OSError):  # not CPython, or no such flag
        pass


def stopped(name: str | None) -> type[Interrupted]:
    """The error (and so the exit code) of a run stopped by the signal `name`."""
    return {"SIGTERM": Terminated, "SIGHUP": HungUp}.get(name or "", Interrupted)
