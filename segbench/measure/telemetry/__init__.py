"""Telemetry: what the hardware did while the steps were timed (energy, power, clocks,
temperature, throttling). `open_source` picks the source for the run's device; the Sampler
reads it in a background thread; `summarize` turns the readings into the result's block."""

from __future__ import annotations

import sys
from pathlib import Path

from segbench.measure.telemetry.sampler import DEFAULT_INTERVAL_S, Reading, Sampler, Source
from segbench.measure.telemetry.summary import Telemetry, summarize

__all__ = [
    "DEFAULT_INTERVAL_S",
    "Reading",
    "Sampler",
    "Source",
    "Telemetry",
    "open_source",
    "summarize",
]


def open_source(device_kind: str, platform: str = sys.platform) -> tuple[Source | None, list[str]]:
    """The telemetry source for a run on `device_kind` ("cpu" or "gpu") here, or None; and
    what it cannot measure, each with the reason and the fix."""
    if platform == "darwin":
        from segbench.measure.telemetry.macos import (
            Powermetrics,
            PowermetricsUnavailable,
            powermetrics_command,
        )

        try:
            source = Powermetrics(powermetrics_command())
        except (PowermetricsUnavailable, OSError) as e:
            return None, [f"energy: {e}"]
        return source, list(source.missing)
    if platform.startswith("linux") and device_kind == "gpu":
        from segbench.measure.telemetry.nvidia import NvmlUnavailable, open_nvml

        try:
            source = open_nvml()
        except NvmlUnavailable as e:
            return None, [f"energy: {e}"]
        return source, list(source.missing)
    if platform.startswith("linux"):
        from segbench.measure.telemetry.linux import LinuxCpu

        cpu = LinuxCpu(Path("/sys"))
        return (cpu if cpu.usable else None), list(cpu.missing)
    return None, [f"energy: no telemetry source on {platform} (Linux and macOS only)"]
