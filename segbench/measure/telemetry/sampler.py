"""A background thread that reads one telemetry source about ten times a second while a run
is timed. It measures and keeps readings; it never prints and never stops the run: a source
that fails mid-run ends the sampling, and the failure becomes the telemetry's reason."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Protocol

DEFAULT_INTERVAL_S = 0.1


@dataclass(frozen=True)
class Reading:
    """One reading of a source; None where the source has no such figure."""

    t: float = 0.0  # time.perf_counter() when it was read, set by the sampler
    energy_j: float | None = None  # a cumulative counter: only differences mean anything
    power_w: float | None = None
    clock_mhz: float | None = None  # the GPU's SM clock, or the CPU's mean core clock
    memory_clock_mhz: float | None = None  # the GPU's memory clock (NVML)
    temperature_c: float | None = None
    utilization_pct: float | None = None
    memory_bytes: int | None = None  # device memory in use (NVML)
    throttle: tuple[str, ...] = ()  # reasons the device is slowing itself down right now


class Source(Protocol):
    """A telemetry source: NVML, RAPL and sysfs, or powermetrics."""

    name: str
    missing: list[str]  # figures it cannot give here, each with the reason and the fix

    def read(self) -> Reading | None:
        """The current reading, or None when nothing new has arrived since the last one."""

    def close(self) -> None:
        """Release the source (stop a subprocess, shut a library down)."""


class Sampler:
    """Reads `source` every `interval_s` seconds in a daemon thread between start and stop."""

    def __init__(self, source: Source | None, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        self.source = source
        self.interval_s = interval_s
        self.readings: list[Reading] = []
        self.error: str | None = None
        self.read_s = 0.0  # time spent inside source.read(): the sampler's own cost
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        if self.source is not None:
            self._read()
            self._thread = threading.Thread(target=self._loop, name="segbench-telemetry")
            self._thread.daemon = True
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take a last reading and end the thread (idempotent); the source is closed."""
        if self._thread is None or self.source is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        self._read()
        self.source.close()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s) and self.error is None:
            self._read()

    def _read(self) -> None:
        if self.error is not None or self.source is None:
            return
        started = time.perf_counter()
        try:
            reading = self.source.read()
        except Exception as e:  # noqa: BLE001 - a broken source must never stop the benchmark
            self.error = f"{self.source.name} failed during the run ({type(e).__name__}: {e})"
            return
        finally:
            self.read_s += time.perf_counter() - started
        if reading is not None:
            self.readings.append(replace(reading, t=time.perf_counter()))
