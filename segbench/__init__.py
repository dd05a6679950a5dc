"""segbench: a reproducible training-speed benchmark for the CV-net segmentation model."""

import os as _os
import signal as _signal
import sys as _sys

__version__ = "0.1.0"


def _stopped_while_starting(signum: int, frame: object) -> None:
    """Until the command line installs its handlers (segbench/cli/app.py, entry), a signal
    ends the `segbench` program with its one line and code, not a traceback from inside
    typer's or rich's import; nothing has been done yet."""
    _os.write(2, b"error: interrupted while segbench started; nothing was done\n")
    _os._exit(128 + signum)


def _is_the_program() -> bool:
    """Whether this process is the segbench program (its console script, or `python -m
    segbench`); importing segbench as a library, or a child `python -m segbench.…`, is not."""
    argv = getattr(_sys, "orig_argv", None) or []
    after_m = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-m"]
    if after_m:
        return after_m[0] == "segbench"
    return _os.path.basename(_sys.argv[0] if _sys.argv else "") == "segbench"


# Only in the program: the caller's handlers are left alone everywhere else.
if _is_the_program():
    for _name in ("SIGINT", "SIGTERM", "SIGHUP"):
        _number = getattr(_signal, _name, None)
        if _number is not None and _signal.getsignal(_number) in (
            _signal.SIG_DFL,
            _signal.default_int_handler,
        ):
            _signal.signal(_number, _stopped_while_starting)
