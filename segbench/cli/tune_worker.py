"""A tune worker's own side (the protocol: segbench/measure/tune_worker.py): `segbench run`
with each trial's arguments, in this one process, until tune closes its standard input."""

from __future__ import annotations

import json
import os
import signal
import sys

from segbench.errors import signal_name
from segbench.measure.tune_worker import STOPPED


def _run_one(arguments: list[str], stderr: str) -> int:
    """`segbench run ARGUMENTS` in this process, its standard error in the file `stderr`."""
    from segbench.cli.app import app

    sys.argv = ["segbench", *arguments]  # the command the result file records
    saved = os.dup(2)
    with open(stderr, "w") as log:
        os.dup2(log.fileno(), 2)
        try:
            app(args=arguments, prog_name="segbench")
        except SystemExit as done:
            code = done.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        except KeyboardInterrupt as stop:  # before the command took over its signals
            return {"SIGTERM": 143, "SIGHUP": 129}.get(signal_name(stop) or "", 130)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
    return 0


def release_memory() -> None:
    """What the last trial held, given back before the next starts: Keras's graphs and
    compiled functions, unreachable objects, and the C heap's free pages (glibc's malloc_trim)
    that a fresh process would not hold. Without this, an XLA compile after two full-size
    trials asked for 11 GB more than the machine had left."""
    import gc

    keras = sys.modules.get("keras")
    if keras is not None:
        keras.backend.clear_session()
    gc.collect()
    if sys.platform.startswith("linux"):
        import contextlib
        import ctypes

        with contextlib.suppress(OSError, AttributeError):  # not glibc (musl): pages stay
            ctypes.CDLL("libc.so.6").malloc_trim(0)


def main() -> None:
    """The worker: trials from standard input until it closes, or a trial is stopped."""
    from segbench.measure.run import reuse

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # Only tune signals a worker (it leads its own session): its Ctrl-C must stop the trial even
    # where tune itself was started with Ctrl-C ignored (nohup, a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    quiet = os.open(os.devnull, os.O_WRONLY)
    os.dup2(quiet, 1)  # tables and progress a person would read: nobody reads them here
    reuse.keep_between_runs()
    try:
        for line in sys.stdin:
            request = json.loads(line)
            reuse.stop_timing_above(request.get("stop_above_ms_per_image"))
            code = _run_one(request["args"], request["stderr"])
            reuse.stop_timing_above(None)
            release_memory()
            answers.write(json.dumps({"code": code}) + "\n")
            if code in STOPPED:
                break
    except KeyboardInterrupt:  # between two trials: nothing runs, nothing to save
        pass


if __name__ == "__main__":
    main()
