"""The run's progress on stderr: spinners and a live progress bar at a terminal, plain
timestamped lines in logs and pipes."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from segbench.cli.console import note, stderr
from segbench.report.printable import printable

_STARTED = time.monotonic()

# Logs and pipes: a progress line at least this often (seconds; SEGBENCH_PROGRESS_EVERY).
PROGRESS_EVERY_S = 30.0


def _phase_line(text: str) -> None:
    """A phase as a plain line for logs and pipes: `[  12.3 s] importing tensorflow`."""
    elapsed = time.monotonic() - _STARTED
    stderr.print(f"[{elapsed:6.1f} s] {printable(text)}", markup=False, highlight=False)


class ConsoleDisplay:
    """The pipeline's Display on stderr: spinners, notes and a live progress bar at a terminal;
    in logs and pipes, plain lines: the plan and each phase as it starts (with the seconds
    since the start), progress at least every 30 s."""

    def __init__(self, plan: str = "") -> None:
        self.plan = plan  # printed in pipes with the first phase: not for runs refused before

    def status(self, text: str) -> AbstractContextManager[object]:
        if stderr.is_terminal:
            return stderr.status(text)
        if self.plan:
            _phase_line(self.plan)
            self.plan = ""
        _phase_line(text)
        return nullcontext()

    def note(self, text: str) -> None:
        note(text)

    @contextmanager
    def progress(
        self, config: Any, train_images: int, validation_images: int
    ) -> Iterator[Callable[[Any], None]]:
        from segbench.measure.run.progress import Tracker

        tracker = Tracker(config, train_images, validation_images)
        if not stderr.is_terminal:
            with _ProgressLines(tracker) as lines:
                yield lines
            return
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[last]}"),
            TextColumn("{task.fields[left]}"),
            console=stderr,
            transient=True,
        )
        with bar:
            yield _ProgressView(bar, tracker)

    def failed_checks(self, checks: list) -> None:
        from segbench.report.tables import doctor_table

        stderr.print(doctor_table(checks, title="failed environment checks"))


class _ProgressView:
    """Runner events as a live progress bar: phase, n/N, elapsed, the last step, time left."""

    def __init__(self, progress: Progress, tracker: Any) -> None:
        self.progress = progress
        self.tracker = tracker
        self.task: Any = None

    def __call__(self, event: Any) -> None:
        self.tracker.see(event)
        if event.kind == "phase":
            if self.task is not None:
                self.progress.remove_task(self.task)
            self.task = self.progress.add_task(
                self.tracker.label(), total=event.total, last="", left=""
            )
            return
        last = {}
        if event.step is not None:
            s = event.step
            last = {"last": f"{s.ms:,.1f} ms  loss {s.loss:.4f}  IoU {s.iou:.3f}"}
        self.progress.update(self.task, completed=event.completed, left=self.tracker.left(), **last)


class _ProgressLines:
    """Runner events as plain lines for logs and pipes: one as each phase starts, one after a
    step or cool-down second when PROGRESS_EVERY_S (or SEGBENCH_PROGRESS_EVERY) seconds have
    passed since the last line, and after a phase's last step; while one long step runs, one
    at least every PROGRESS_EVERY_S."""

    def __init__(self, tracker: Any) -> None:
        self.tracker = tracker
        self.every = float(os.environ.get("SEGBENCH_PROGRESS_EVERY") or PROGRESS_EVERY_S)
        self.last_line = time.monotonic()
        self.since = time.monotonic()  # when the current step started
        self.done = threading.Event()
        self.beat = threading.Thread(target=self._heartbeat, daemon=True)

    def __enter__(self) -> _ProgressLines:
        self.beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.beat.join(timeout=2)

    def _print(self, text: str) -> None:
        stderr.print(text, markup=False, highlight=False, soft_wrap=True)
        self.last_line = time.monotonic()

    def __call__(self, event: Any) -> None:
        self.tracker.see(event)
        self.since = time.monotonic()
        if event.kind == "phase":
            unit = "s" if event.phase == "cool-down" else " step(s)"
            self._print(f"{self.tracker.label()}: {event.total}{unit}")
        elif event.completed == event.total or time.monotonic() - self.last_line >= self.every:
            self._print(self.tracker.line())

    def _heartbeat(self) -> None:
        while not self.done.wait(1.0):
            if time.monotonic() - self.last_line >= PROGRESS_EVERY_S:
                running = time.monotonic() - self.since
                self._print(f"{self.tracker.line()} · this step running for {running:.0f} s")
