"""What the telemetry says about the timed steps: energy, power, clocks, temperature and
throttling, in the result's `telemetry` block. Computes from readings; never prints."""

from __future__ import annotations

import bisect
import itertools
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from segbench.measure.telemetry.sampler import Reading
from segbench.results.schema import NON_NEGATIVE, OPTIONAL, OPTIONAL_POSITIVE

MAX_TRACE_POINTS = 4000  # the trace kept for `segbench plot`; a longer run is thinned evenly
OPTIONAL_NON_NEGATIVE = {**NON_NEGATIVE, **OPTIONAL}
# macOS energy modes (pmset's powermode 0, 1, 2); None off macOS or where pmset lists none.
ENERGY_MODES = ("automatic", "low power", "high power")


@dataclass(frozen=True, kw_only=True)
class Span:
    """Smallest, median and largest reading over the timed steps."""

    min: float
    median: float
    max: float


@dataclass(frozen=True, kw_only=True)
class Throttle:
    """Readings during timed steps in which the device reported slowing itself down."""

    events: int = field(metadata=NON_NEGATIVE)  # times a throttled stretch began
    fraction_of_timed_steps: float = field(metadata={"non_negative": True, "maximum": 1})
    reasons: list[str]


@dataclass(frozen=True, kw_only=True)
class Trace:
    """The readings over the whole run, for `segbench plot` (at most 4000, evenly thinned)."""

    t_s: list[float]  # seconds since the run's clock started (as StepRecord.at_s)
    power_w: list[float | None]
    clock_mhz: list[float | None]
    temperature_c: list[float | None]

    def validate(self) -> None:
        """ValueError when the series do not line up or time runs backwards."""
        lengths = {len(self.t_s), len(self.power_w), len(self.clock_mhz), len(self.temperature_c)}
        if len(lengths) > 1:
            raise ValueError(
                f"the trace's series differ in length ({len(self.t_s)} times, "
                f"{len(self.power_w)} power, {len(self.clock_mhz)} clock and "
                f"{len(self.temperature_c)} temperature readings)"
            )
        backwards = next(
            (i for i, (a, b) in enumerate(itertools.pairwise(self.t_s), 1) if b < a), None
        )
        if backwards is not None:
            raise ValueError(f"t_s runs backwards at reading {backwards}")


@dataclass(frozen=True, kw_only=True)
class Telemetry:
    """What the hardware did while the steps were timed."""

    source: str | None  # "nvml", "rapl", "powermetrics"; None when no source could be opened
    available: bool  # energy was measured over the timed steps
    reason: str | None = field(default=None, metadata=OPTIONAL)  # what is missing, and the fix
    interval_s: float = field(metadata={"positive": True})
    samples: int = field(metadata=NON_NEGATIVE)
    energy_j: float | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    mean_w: float | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    peak_w: float | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    j_per_image: float | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    images_per_kj: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    clocks_mhz: Span | None = field(default=None, metadata=OPTIONAL)
    memory_clocks_mhz: Span | None = field(default=None, metadata=OPTIONAL)  # NVML
    temperature_c_max: float | None = field(default=None, metadata=OPTIONAL)
    utilization_pct_median: float | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    # Device memory in use (NVML: every process's, not only the run's), its highest reading.
    memory_used_bytes_max: int | None = field(default=None, metadata=OPTIONAL_NON_NEGATIVE)
    throttle: Throttle | None = field(default=None, metadata=OPTIONAL)
    # Mains or battery, macOS Low Power Mode and energy mode, as `segbench doctor` read them.
    power_source: str | None = field(default=None, metadata=OPTIONAL)
    low_power_mode: bool | None = field(default=None, metadata=OPTIONAL)
    energy_mode: str | None = field(default=None, metadata={**OPTIONAL, "enum": ENERGY_MODES})
    trace: Trace | None = field(default=None, metadata=OPTIONAL)


def interval_power(readings: Sequence[Reading]) -> list[tuple[float, float, float]]:
    """(start, end, mean watts) between consecutive readings: from the energy counter where
    there is one, else the mean of the two power readings."""
    spans = []
    for a, b in itertools.pairwise(readings):
        seconds = b.t - a.t
        if seconds <= 0:
            continue
        if a.energy_j is not None and b.energy_j is not None:
            watts = (b.energy_j - a.energy_j) / seconds
        elif a.power_w is not None and b.power_w is not None:
            watts = (a.power_w + b.power_w) / 2
        else:
            continue
        spans.append((a.t, b.t, watts))
    return spans


def energy_in(windows: Sequence[tuple[float, float]], spans) -> tuple[float, float]:
    """Joules spent in `windows` (start, end) and the seconds of them the spans covered."""
    joules = covered = 0.0
    spans = sorted(spans)
    ends = [b for a, b, watts in spans]
    for start, end in windows:
        for a, b, watts in spans[bisect.bisect_right(ends, start) :]:
            if a >= end:
                break
            overlap = min(b, end) - max(a, start)
            joules += watts * overlap
            covered += overlap
    return joules, covered


def _inside(t: float, windows: Sequence[tuple[float, float]]) -> bool:
    """Whether `t` falls in one of `windows` (sorted, not overlapping)."""
    i = bisect.bisect_right(windows, (t, math.inf)) - 1
    return i >= 0 and windows[i][0] <= t <= windows[i][1]


def summarize(
    source: str | None,
    readings: Sequence[Reading],
    windows: Sequence[tuple[float, float]],
    images: int,
    missing: Sequence[str],
    interval_s: float,
    origin: float,
    power_source: str | None = None,
    low_power_mode: bool | None = None,
    energy_mode: str | None = None,
) -> Telemetry:
    """The telemetry of the timed steps `windows` (perf_counter seconds) holding `images`."""
    readings = sorted(readings, key=lambda r: r.t)
    windows = sorted(windows)
    timed = [r for r in readings if _inside(r.t, windows)]
    spans = interval_power(readings)
    joules, covered = energy_in(windows, spans)
    timed_s = sum(end - start for start, end in windows)
    # Energy needs readings around the timed steps: at least 90 % of their time covered.
    available = bool(spans) and timed_s > 0 and covered >= 0.9 * timed_s
    reasons = list(missing)
    if source is not None and not available and not any(m.startswith("energy") for m in missing):
        reasons.insert(0, "energy: too few readings during the timed steps (run more steps)")
    watts = [w for a, b, w in spans if any(a < end and b > start for start, end in windows)]
    powers = [r.power_w for r in timed if r.power_w is not None]
    clocks = [r.clock_mhz for r in timed if r.clock_mhz is not None]
    memory_clocks = [r.memory_clock_mhz for r in timed if r.memory_clock_mhz is not None]
    memory_used = [r.memory_bytes for r in timed if r.memory_bytes is not None]
    temperatures = [r.temperature_c for r in timed if r.temperature_c is not None]
    utilizations = [r.utilization_pct for r in timed if r.utilization_pct is not None]
    energy = joules * timed_s / covered if available else None
    return Telemetry(
        source=source,
        available=available,
        reason="; ".join(reasons) or None,
        interval_s=interval_s,
        samples=len(readings),
        energy_j=energy,
        mean_w=energy / timed_s if energy is not None else None,
        peak_w=max(powers + watts) if available else None,
        j_per_image=energy / images if energy is not None and images else None,
        images_per_kj=images / energy * 1000 if energy else None,
        clocks_mhz=_span(clocks),
        memory_clocks_mhz=_span(memory_clocks),
        temperature_c_max=max(temperatures) if temperatures else None,
        utilization_pct_median=statistics.median(utilizations) if utilizations else None,
        memory_used_bytes_max=max(memory_used) if memory_used else None,
        throttle=throttle(readings, windows) if timed else None,
        power_source=power_source,
        low_power_mode=low_power_mode,
        energy_mode=energy_mode,
        trace=trace(readings, origin) if readings else None,
    )


def _span(values: list[float]) -> Span | None:
    if not values:
        return None
    return Span(min=min(values), median=statistics.median(values), max=max(values))


def throttle(readings: Sequence[Reading], windows: Sequence[tuple[float, float]]) -> Throttle:
    """How often the readings inside the timed steps reported throttling, and why."""
    timed = [r for r in readings if _inside(r.t, windows)]
    events, before, reasons = 0, False, []
    for r in timed:
        if r.throttle and not before:
            events += 1
        before = bool(r.throttle)
        reasons += [why for why in r.throttle if why not in reasons]
    times = [r.t for r in readings]
    throttled_steps = 0
    for start, end in windows:
        # A step is throttled when a reading inside it, or the first one after it (readings
        # are 0.1 s apart; a step can be shorter), reports throttling.
        first = bisect.bisect_left(times, start)
        last = min(bisect.bisect_right(times, end) + 1, len(readings))
        if any(r.throttle for r in readings[first:last]):
            throttled_steps += 1
    return Throttle(
        events=events,
        fraction_of_timed_steps=throttled_steps / len(windows) if windows else 0.0,
        reasons=reasons,
    )


def trace(readings: Sequence[Reading], origin: float) -> Trace:
    """The readings as columns, times relative to `origin`, thinned to MAX_TRACE_POINTS."""
    step = max(1, math.ceil(len(readings) / MAX_TRACE_POINTS))
    kept = range(0, len(readings), step)
    return Trace(
        t_s=[round(readings[i].t - origin, 4) for i in kept],
        power_w=[_power(readings, i) for i in kept],
        clock_mhz=[readings[i].clock_mhz for i in kept],
        temperature_c=[readings[i].temperature_c for i in kept],
    )


def _power(readings: Sequence[Reading], i: int) -> float | None:
    """The power reading, else the energy counter's rate over the interval ending there (RAPL
    and powermetrics' sums have no instantaneous power)."""
    reading = readings[i]
    if reading.power_w is not None:
        return reading.power_w
    if i == 0 or reading.energy_j is None or readings[i - 1].energy_j is None:
        return None
    before = readings[i - 1]
    seconds = reading.t - before.t
    return (reading.energy_j - before.energy_j) / seconds if seconds > 0 else None
