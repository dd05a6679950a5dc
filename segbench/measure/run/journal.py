"""A journal of a run's steps on disk, so that a run the OS kills outright (the OOM killer,
`kill -9`, a preempted cloud instance) does not lose what it measured.

No handler runs on SIGKILL, so while the steps run each one's record is appended to a file in
segbench's cache (journal/), written out every FLUSH_S seconds between two steps, never inside
a timed one. A run that ends in any other way (done, refused, Ctrl-C, a framework error)
removes its journal. The next segbench command finds a journal whose process is gone and
turns it into an interrupted result (`interrupted_by: "killed"`) in the run's --out folder
(else the unsaved-results folder), saying so in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from segbench.atomic import write_text_atomic
from segbench.cache import cache_root

FLUSH_S = 5.0  # at most this much of a killed run is lost
KILLED = "killed"
VERSION = 1


def journal_folder() -> Path:
    """Where the journals of running runs are: the cache's journal/ folder."""
    return cache_root() / "journal"


def _started(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), or None when there is none."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


@dataclass
class Before:
    """What a run knows before its timed steps: the result's blocks other than the steps."""

    out: Path
    started_at: datetime
    config: Any
    device: Any
    environment: Any
    data: Any
    git_commit: str | None
    source_url: str | None
    command: list[str] | None
    doctor: list[Any]
    forced: bool
    numerics: Any
    own: Any
    reproduces: Any = None  # segbench reproduce: the file rerun (result.Reproduces)


class Journal:
    """The journal of one run: a header line (Before, as JSON), the model's description once it
    is compiled, then one line per step."""

    def __init__(self, before: Before) -> None:
        from segbench.results.schema import to_json

        self.path: Path | None = None
        self.pending: list[str] = []
        self.flushed = time.monotonic()
        self.described = False
        header = {
            "journal": VERSION,
            "pid": os.getpid(),
            "process_started": _started(os.getpid()),
            "out": str(Path(before.out).absolute()),
            "started_at": before.started_at.isoformat(timespec="seconds"),
            **{
                name: to_json(getattr(before, name))
                for name in (
                    "config",
                    "device",
                    "environment",
                    "data",
                    "git_commit",
                    "source_url",
                    "command",
                    "doctor",
                    "forced",
                    "numerics",
                    "own",
                    "reproduces",
                )
            },
        }
        folder = journal_folder()
        # The folders made for it, removed again when empty: a run leaves no trace.
        self.created = [d for d in (folder, *folder.parents) if not d.exists()]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            stamp = before.started_at.strftime("%Y%m%dT%H%M%SZ")
            path = folder / f"run-{stamp}-{os.getpid()}.jsonl"
            # Whole or absent: a command that reads it meanwhile never sees half a header.
            self.path = write_text_atomic(path, json.dumps(header, allow_nan=True) + "\n")
        except OSError:
            self.path = None  # no journal (a full or read-only cache): the run goes on

    def step(self, measurement: Any, record: Any) -> None:
        """Note a step just recorded; every FLUSH_S seconds, write the notes out."""
        from segbench.results.schema import to_json

        if self.path is None:
            return
        if not self.described:
            model = {
                "parameters": measurement.parameters,
                "training_flops_per_image": measurement.training_flops_per_image,
                "compiled": measurement.compiled,
                "compile_note": measurement.compile_note,
                "batchnorm": measurement.batchnorm,
            }
            self.pending.append(json.dumps({"model": model}))
            self.described = True
        self.pending.append(json.dumps({"step": to_json(record)}, allow_nan=True))
        if time.monotonic() - self.flushed >= FLUSH_S:
            self.flush()

    def flush(self) -> None:
        if self.path is None or not self.pending:
            return
        try:
            with self.path.open("a") as f:
                f.write("".join(line + "\n" for line in self.pending))
        except OSError:
            pass  # the journal is a safety net: a full disk does not stop the run
        self.pending = []
        self.flushed = time.monotonic()

    def discard(self) -> None:
        """The run ended in a way segbench saw: its journal is not needed."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None
        for folder in self.created:  # innermost first; one another run uses stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        self.created = []


def recover(say: Any) -> list[Path]:
    """Turn the journal of every run whose process is gone into an interrupted result, saying
    where in one line each (`say`); the results written. A journal that cannot be read is
    removed with a line saying so."""
    folder = journal_folder()
    try:
        journals = sorted(folder.glob("run-*.jsonl"))
    except OSError:
        return []
    written = []
    for path in journals:
        claimed = path.with_suffix(f".recovering-{os.getpid()}")
        try:
            if _still_running(path):
                continue
            path.rename(claimed)  # another command recovering it at the same time: skipped
        except OSError:
            continue
        try:
            saved = _recovered(claimed, say)
        except Exception as e:  # noqa: BLE001 - a damaged journal never stops the command
            say(f"note: the journal {path.name} of a killed run cannot be read ({e}); removed")
            saved = None
        if saved is not None:
            written.append(saved)
        with contextlib.suppress(OSError):
            claimed.unlink()
    return written


def _still_running(path: Path) -> bool:
    """Whether the run that keeps the journal at `path` is still running (its process, by pid
    and start time: a pid used again by another process is no run). An unreadable header
    belongs to no run."""
    try:
        header = json.loads(path.read_text().split("\n", 1)[0])
        started = _started(int(header["pid"]))
        return started is not None and abs(started - float(header["process_started"])) < 1
    except (ValueError, KeyError, TypeError):
        return False


def _recovered(path: Path, say: Any) -> Path | None:
    """The interrupted result of the journal at `path`, saved; None when nothing was timed."""
    from segbench.benchmark.config import RunConfig
    from segbench.doctor.types import Check
    from segbench.measure import backend
    from segbench.measure.numerics import Numerics
    from segbench.measure.run.pipeline import save
    from segbench.measure.run.runner import Measurement, StepRecord
    from segbench.results.environment import Environment
    from segbench.results.result import DataInfo, OwnModelInfo, Reproduces, build_result
    from segbench.results.schema import from_json

    first, *others = path.read_text().splitlines()
    header, rest = json.loads(first), []
    for line in others:  # a line the kill cut short (or a full disk) is skipped, not the rest
        try:
            rest.append(json.loads(line))
        except ValueError:
            continue
    if not any(entry.get("step", {}).get("phase") == "timed" for entry in rest):
        return None  # killed before its first timed step: nothing to keep (running.md)
    source = f"journal {path.name}"
    config = from_json(RunConfig, header["config"], source)
    measurement = Measurement(
        config=config,
        device=from_json(backend.Device, header["device"], source),
        status="interrupted",
        interrupted_by=KILLED,
    )
    for entry in rest:
        if "model" in entry:
            for name, value in entry["model"].items():
                setattr(measurement, name, value)
        elif "step" in entry:
            measurement.steps.append(from_json(StepRecord, entry["step"], source))
    own = header.get("own")
    result = build_result(
        measurement,
        from_json(Environment, header["environment"], source),
        datetime.fromisoformat(header["started_at"]),
        data=from_json(DataInfo, header["data"], source),
        git_commit=header.get("git_commit"),
        source_url=header.get("source_url"),
        command=header.get("command"),
        doctor=[from_json(Check, c, source) for c in header.get("doctor") or []],
        forced=bool(header.get("forced")),
        numerics=None
        if header.get("numerics") is None
        else from_json(Numerics, header["numerics"], source),
        own=None if own is None else from_json(OwnModelInfo, own, source),
        reproduces=None
        if header.get("reproduces") is None
        else from_json(Reproduces, header["reproduces"], source),
    )
    outcome = save(result, Path(header["out"]))
    timed = result.summary.steps
    if outcome.path is None:
        say(
            f"note: a run started on {header['started_at']} was killed after {timed} timed "
            f"step(s), but no folder could take its result ({outcome.write_error})"
        )
        return None
    say(
        f"note: a run started on {header['started_at']} (pid {header['pid']}) was killed (the "
        f"OOM killer or kill -9) after {timed} timed step(s): its interrupted result is "
        f"{outcome.path}"
    )
    return outcome.path
