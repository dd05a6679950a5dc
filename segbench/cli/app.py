"""The typer app of the command line and its one error path: every error leaves through
`_Commands.invoke`, which maps it to its exit code with EXIT_CODES."""

from __future__ import annotations

import math
import os
import signal
import threading
from typing import Annotated, Any

import typer
from rich.text import Text
from typer.core import TyperGroup

import segbench
from segbench import __version__
from segbench.cli.console import messages, stdout, usable_streams
from segbench.errors import (
    BadInput,
    HungUp,
    Interrupted,
    Regression,
    SegbenchError,
    SigHup,
    SigTerm,
    Terminated,
    Unavailable,
    forget_handled_interrupt,
    raise_sigint,
)
from segbench.report.printable import printable

try:  # typer 0.2x carries its own copy of click
    from typer._click.exceptions import BadParameter, MissingParameter, UsageError
except ImportError:  # pragma: no cover - older typer, click itself
    from click.exceptions import BadParameter, MissingParameter, UsageError

# Exit codes, one row per kind of failure (README: "Errors and exit codes"). Usage errors
# (an invalid option value) exit 2 through click before a command runs.
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (BadInput, 2),  # an option, data file or result file that cannot be used
    (Unavailable, 1),  # environment check, device, output folder, missing optional extra
    (Regression, 3),  # compare --fail-if-slower: significantly slower than allowed
    (Terminated, 143),  # SIGTERM (docker stop, Slurm, CI time-outs), with what was kept named
    (HungUp, 129),  # SIGHUP (the terminal or SSH session closed), with what was kept named
    (Interrupted, 130),  # Ctrl-C, with what was kept named
    (SigTerm, 143),  # SIGTERM anywhere else
    (SigHup, 129),  # SIGHUP anywhere else
    (KeyboardInterrupt, 130),  # Ctrl-C anywhere else
)


def exit_code(error: BaseException) -> int:
    """The exit code of an error, from EXIT_CODES (1 for a SegbenchError not listed)."""
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), 1)


class _Commands(TyperGroup):
    """Runs a command; turns a SegbenchError, a usage error or Ctrl-C into one line on stderr
    and its exit code."""

    def make_context(self, *args: Any, **kwargs: Any) -> typer.Context:
        try:
            return super().make_context(*args, **kwargs)
        except UsageError as e:  # an option of segbench itself (`segbench --bogus`)
            raise _usage_error(e) from None
        except KeyboardInterrupt as e:  # while the options are read: said as everywhere else
            raise typer.Exit(_interrupted(e)) from None

    def invoke(self, ctx: typer.Context) -> Any:
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _sigterm) if main_thread else None
        interrupt = (
            signal.signal(signal.SIGINT, raise_sigint)
            if main_thread and signal.getsignal(signal.SIGINT) in _DEFAULT_CTRL_C
            else None  # an ignored or someone else's Ctrl-C handler is kept
        )
        hangup = (
            signal.signal(signal.SIGHUP, _sighup)
            if main_thread
            and hasattr(signal, "SIGHUP")
            and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN  # nohup: keep ignoring
            else None
        )
        try:
            _recover_killed_runs()
            return super().invoke(ctx)
        except UsageError as e:
            raise _usage_error(e) from None
        except (SegbenchError, KeyboardInterrupt) as e:
            raise typer.Exit(_interrupted(e)) from None
        finally:
            if _ENDING_PROCESS:  # the command has ended: a late signal must not change its exit
                _ignore_stop_signals()
            else:  # called in process (tests): the caller's handlers again
                if previous is not None:
                    signal.signal(signal.SIGTERM, previous)
                if interrupt is not None:
                    signal.signal(signal.SIGINT, interrupt)
                if hangup is not None:
                    signal.signal(signal.SIGHUP, hangup)


def _interrupted(e: BaseException) -> int:
    """Print the one line of a SegbenchError or a signal's KeyboardInterrupt; its exit code."""
    if isinstance(e, (KeyboardInterrupt, Interrupted)):
        forget_handled_interrupt()
    message = str(e) if isinstance(e, SegbenchError) else "interrupted"
    label = ("note:", "yellow") if getattr(e, "said_above", False) else ("error:", "red")
    line = Text.assemble(label, " ", printable(message))  # no markup
    messages().print(line, highlight=False, soft_wrap=True)
    return exit_code(e)


# Ctrl-C handlers segbench's own replaces: Python's, and the one segbench/__init__.py sets
# while the program starts.
_DEFAULT_CTRL_C = (signal.default_int_handler, segbench._stopped_while_starting)

# Set by entry(): this process ends when the command does (not a test calling it in process).
_ENDING_PROCESS = False


def _ignore_stop_signals() -> None:
    """SIGINT, SIGTERM and SIGHUP ignored from here on (a second Ctrl-C while the process
    exits would otherwise kill it, and its exit code would no longer be the command's)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.SIG_IGN)


def _recover_killed_runs() -> None:
    """Every command first turns the journal of a run the OS killed (kill -9, the OOM killer)
    into its interrupted result, with one line saying where (measure/run/journal.py)."""
    from segbench.measure.run.journal import journal_folder, recover

    if not journal_folder().is_dir():  # nothing was ever journalled here: no import
        return

    def say(line: str) -> None:
        messages().print(printable(line), highlight=False, soft_wrap=True, markup=False)

    recover(say)


def _usage_error(error: UsageError) -> BaseException:
    """Prints a usage error as one line, `error: --option: what is wrong; see … --help`, and
    returns the exit that ends with its code (2). The help that click shows when no command
    is given is passed on as it is."""
    if type(error).__name__ == "NoArgsIsHelpError":
        return error
    param = getattr(error, "param", None)
    if isinstance(error, BadParameter) and not isinstance(error, MissingParameter) and param:
        names = param.opts if param.param_type_name == "option" else [param.name.upper()]
        what = error.message.removeprefix("Value error, ")
        if _non_finite(error) is not None:  # nan fails `≥ 0` and `≤ 100` alike: say what it is
            what = f"{_non_finite(error)} is not a finite number"
        message = f"{'/'.join(names)}: {what}"
    else:
        message = error.format_message()
    message = message[:1].lower() + message[1:].rstrip(".")
    if error.ctx is not None:
        message += f"; see {error.ctx.command_path} --help"
    line = Text.assemble(("error:", "red"), " ", printable(message))
    messages().print(line, highlight=False, soft_wrap=True)
    return typer.Exit(error.exit_code)


def _non_finite(error: BadParameter) -> str | None:
    """The value given, when a number option was given nan or ±inf (typer's validation error
    carries it), else None."""
    try:
        given = error.__cause__.errors()[0]["input"]  # pydantic's ValidationError
        number = float(given)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        return None
    return None if math.isfinite(number) else str(given)


def _sigterm(signum: int, frame: object) -> None:
    """SIGTERM is handled as Ctrl-C is: the partial result is kept, temporary files removed."""
    raise SigTerm()


def _sighup(signum: int, frame: object) -> None:
    """SIGHUP (a closed terminal or SSH session) is handled as Ctrl-C is."""
    raise SigHup()


app = typer.Typer(
    cls=_Commands,
    help="Reproducible training-speed benchmark of the CV-net segmentation model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain help: option names whole, wrapped at 80 columns
)


def _version(value: bool) -> None:
    if value:
        stdout.print(f"segbench {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Reproducible training-speed benchmark of the CV-net segmentation model."""


def entry() -> None:
    """Console-script entry point."""
    global _ENDING_PROCESS
    _ENDING_PROCESS = True
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    usable_streams()
    signal.signal(signal.SIGTERM, _sigterm)  # from here on, not only inside a command
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        signal.signal(signal.SIGHUP, _sighup)
    if signal.getsignal(signal.SIGINT) in _DEFAULT_CTRL_C:
        signal.signal(signal.SIGINT, raise_sigint)
    try:
        app(prog_name="segbench")  # `python -m segbench` too: usage and errors name `segbench`
    except KeyboardInterrupt as e:  # Ctrl-C while the command line is built, before any command
        raise SystemExit(_interrupted(e)) from None
    finally:
        _ignore_stop_signals()
