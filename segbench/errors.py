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
    """Ctrl-C stopped the command (exit 130); the message says what was kept."""


class Terminated(Interrupted):
    """SIGTERM stopped the command (exit 143), handled as Ctrl-C is."""


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


def stopped(name: str | None) -> type[Interrupted]:
    """The error (and so the exit code) of a run stopped by the signal `name`."""
    return {"SIGTERM": Terminated, "SIGHUP": HungUp}.get(name or "", Interrupted)
