"""macOS telemetry from `powermetrics -f plist`: CPU, GPU and ANE power, the GPU's clock and the
thermal pressure. powermetrics needs root: segbench runs it directly as root, through
`sudo -n` where that needs no password, and otherwise names the command that enables it.

powermetrics streams one XML property list per sample, separated by NUL bytes; powers are in
milliwatts averaged over the sample's `elapsed_ns`.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence

from segbench.measure.telemetry.sampler import Reading

COMMAND = (
    "powermetrics",
    "--format",
    "plist",
    "--sample-rate",
    "100",  # ms, the sampler's default interval
    "--samplers",
    "cpu_power,gpu_power,thermal",
)
ENABLE = (
    "run segbench with sudo, or let powermetrics run without a password: echo "
    '"$USER ALL=(root) NOPASSWD: /usr/bin/powermetrics" | sudo tee /etc/sudoers.d/powermetrics'
)


class PowermetricsUnavailable(Exception):
    """powermetrics cannot be used; the message says why and what to do."""


def documents(stream: bytes) -> Iterator[dict]:
    """The samples in a stretch of powermetrics output (NUL-separated plists)."""
    for part in stream.split(b"\0"):
        if part.strip():
            yield plistlib.loads(part.strip())


def reading(sample: dict, energy_j: float) -> tuple[Reading, float]:
    """The reading of one sample and the energy counter after it (J, cumulative)."""
    processor = sample.get("processor", {})
    parts = [processor.get(k) for k in ("cpu_power", "gpu_power", "ane_power")]
    total_mw = processor.get("combined_power")
    if total_mw is None and any(p is not None for p in parts):
        total_mw = sum(p or 0.0 for p in parts)
    seconds = sample.get("elapsed_ns", 0) / 1e9
    if total_mw is not None:
        energy_j += total_mw / 1000 * seconds
    gpu = sample.get("gpu", {})
    frequency = gpu.get("freq_hz")
    # The GPU's "freq_hz" is in MHz on Apple silicon despite its name; a CPU cluster's is in Hz.
    clock = None if frequency is None else frequency / 1e6 if frequency > 1e5 else frequency
    idle = gpu.get("idle_ratio")
    pressure = sample.get("thermal_pressure")
    return (
        Reading(
            energy_j=energy_j if total_mw is not None else None,
            power_w=total_mw / 1000 if total_mw is not None else None,
            clock_mhz=float(clock) if clock is not None else None,
            utilization_pct=100 * (1 - idle) if idle is not None else None,
            throttle=(f"thermal pressure {pressure}",) if pressure not in (None, "Nominal") else (),
        ),
        energy_j,
    )


class Powermetrics:
    """A running `powermetrics` whose samples a reader thread parses as they arrive."""

    name = "powermetrics"

    def __init__(self, command: Sequence[str]) -> None:
        self.missing: list[str] = ["temperature: powermetrics reports thermal pressure only"]
        self.process = subprocess.Popen(
            list(command), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self.latest: Reading | None = None
        self.energy_j = 0.0
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._parse, name="segbench-powermetrics")
        self.thread.daemon = True
        self.thread.start()

    def _parse(self) -> None:
        buffer = b""
        assert self.process.stdout is not None
        for chunk in iter(lambda: self.process.stdout.read1(65536), b""):
            buffer += chunk
            *complete, buffer = buffer.split(b"\0")
            for part in complete:
                for sample in documents(part):
                    new, self.energy_j = reading(sample, self.energy_j)
                    with self.lock:
                        self.latest = new
        for sample in documents(buffer):  # the last sample has no NUL after it
            new, self.energy_j = reading(sample, self.energy_j)
            with self.lock:
                self.latest = new

    def read(self) -> Reading | None:
        with self.lock:
            new, self.latest = self.latest, None
        return new

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.thread.join(timeout=5)


def powermetrics_command(
    which=shutil.which, is_root: bool | None = None, run=subprocess.run
) -> tuple[str, ...]:
    """How to start powermetrics here; PowermetricsUnavailable with the fix when it cannot."""
    path = which("powermetrics")
    if path is None:
        raise PowermetricsUnavailable("powermetrics not found (it comes with macOS)")
    command = (path, *COMMAND[1:])
    if is_root if is_root is not None else os.geteuid() == 0:
        return command
    allowed = run(["sudo", "-n", "-l", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if allowed.returncode == 0:
        return ("sudo", "-n", *command)
    raise PowermetricsUnavailable(f"powermetrics needs root: {ENABLE}")
