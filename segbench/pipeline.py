"""The run pipeline: checks → data → timed run → result → file. Returns data; never prints.

What the user sees while it works (status lines, the progress bar, the failed checks) goes
through a `Display` that the command line supplies.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from segbench import backend, doctor, environment, triangles
from segbench.config import RunConfig
from segbench.doctor.types import Check
from segbench.errors import BadInput, Interrupted, Unavailable
from segbench.result import DataInfo, Result, build_result, result_filename, write_json_atomic
from segbench.runner import Event, run_benchmark


class Display(Protocol):
    """How the pipeline shows progress; the command line implements it."""

    def status(self, text: str) -> AbstractContextManager[object]:
        """A spinner with `text` while a block runs."""

    def note(self, text: str) -> None:
        """One line of news."""

    def progress(self) -> AbstractContextManager[Callable[[Event], None]]:
        """A live progress display; yields the function that receives runner events."""

    def failed_checks(self, checks: list[Check]) -> None:
        """Show the environment checks that failed, before the run is refused."""


@dataclass(frozen=True)
class RunOutcome:
    result: Result
    path: Path


class ChecksFailed(Unavailable):
    """An environment check FAILed and --force was not given."""


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


def validated(config: RunConfig) -> RunConfig:
    """`config`, or BadInput naming the option whose value cannot work."""
    try:
        config.validate()
    except ValueError as e:
        raise BadInput(str(e)) from None
    return config


def run(
    config: RunConfig, data_dir: Path | None, out: Path, force: bool, display: Display
) -> RunOutcome:
    """Check the environment, load the data, run the benchmark, write the result file."""
    validated(config)
    check_writable(out)

    backend.select_backend(config.backend)  # before anything imports keras

    chosen = backend.choose_device(config.device)
    context = doctor.Context(
        preset=config.preset,
        device=chosen.kind,
        precision=config.precision,
        xla=config.xla,
        folders=(str(data_dir or triangles.default_data_dir()), str(out)),
    )
    with display.status("checking the environment"):
        facts = doctor.gather(context)
    checks = doctor.run_checks(facts, context)
    failures = doctor.failed(checks)
    if failures and not force:
        display.failed_checks(failures)
        names = ", ".join(c.id for c in failures)
        raise ChecksFailed(
            f"{len(failures)} environment check(s) failed ({names}); "
            "fix them (segbench doctor shows all checks) or pass --force"
        )

    try:
        if data_dir is None and not (triangles.default_data_dir() / triangles.TRAIN_CSV).is_file():
            display.note(
                f"generating the triangles data set into {triangles.default_data_dir()} (once)"
            )
        folder = triangles.ensure_data(data_dir)
        with display.status(f"loading {folder} into memory"):
            train, validation = triangles.load_dataset(folder, config.image_size)
    except triangles.DataError as e:
        raise BadInput(f"--data: {e}") from None
    except KeyboardInterrupt:
        raise Interrupted("interrupted before timing started; no result written") from None

    started_at = datetime.now(timezone.utc)
    with display.progress() as notify:
        measurement = run_benchmark(config, chosen, train, validation, notify)

    result = build_result(
        measurement,
        environment.fingerprint([chosen.description], facts.nvidia),
        started_at,
        data=DataInfo(
            folder=str(folder),
            train_images=len(train),
            validation_images=len(validation),
            generated=data_dir is None,
        ),
        git_commit=environment.git_commit(),
        doctor=checks,
        forced=bool(failures),
    )
    path = write_json_atomic(out / result_filename(result), result)
    return RunOutcome(result, path)
