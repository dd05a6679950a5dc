"""The Display protocol: how the run pipeline shows its progress (status lines, the progress bar,
the failed checks); the command line implements it."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Protocol

from segbench.benchmark.config import RunConfig
from segbench.doctor.types import Check
from segbench.measure.run.runner import Event


class Display(Protocol):
    """How the pipeline shows progress; the command line implements it."""

    def status(self, text: str) -> AbstractContextManager[object]:
        """A spinner with `text` while a block runs."""

    def note(self, text: str) -> None:
        """One line of news."""

    def progress(
        self, config: RunConfig, train_images: int, validation_images: int
    ) -> AbstractContextManager[Callable[[Event], None]]:
        """A live progress display; yields the function that receives runner events."""

    def failed_checks(self, checks: list[Check]) -> None:
        """Show the environment checks that failed, before the run is refused."""
