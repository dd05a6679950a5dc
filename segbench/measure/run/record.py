"""What a run's Result holds beside its step times: the framework's failure line, the memory
peaks, the telemetry summary, the matmul ceiling and the distribution record."""

from __future__ import annotations

from dataclasses import replace

from segbench.benchmark.config import RunConfig
from segbench.doctor import diagnose
from segbench.doctor.types import Facts
from segbench.errors import signal_name
from segbench.measure import backend, peak, telemetry, trainer
from segbench.measure.parallel import distribution
from segbench.measure.parallel.distribution import Distribution
from segbench.measure.parallel.strategies import Replication
from segbench.measure.profile.record import with_ceiling
from segbench.measure.run.display import Display
from segbench.measure.run.runner import Measurement
from segbench.results.result import Memory, Result
from segbench.results.stats import timed_steps


def failure_line(measurement: Measurement, facts: Facts) -> str | None:
    """Why the framework's error ended the run, with its likely cause and fix (None when none did:
    the measurement is kept as for Ctrl-C, with this line)."""
    if measurement.error is None:
        return None
    _, stack = trainer.active().backend_facts(facts.nvidia)  # the trainer's: no import here
    cause, fix = diagnose.explain(measurement.error, facts.installed, stack)
    phase = _phase_of(measurement)
    return (
        f"the framework failed {phase} ({diagnose.first_line(measurement.error)}) — "
        f"likely cause: {cause}; fix: {fix}"
    )


def _phase_of(measurement: Measurement) -> str:
    """Where a run stopped: "after 3 timed steps", "at the first step (compile)", ..."""
    timed = timed_steps(measurement.config, measurement.steps)
    if timed:
        return f"after {len(timed)} timed step(s)"
    if measurement.steps:
        done = len(measurement.steps)
        return f"after {done} untimed step(s) (compile and warm-up), before timing"
    return "at the first step (building and compiling the model)"


def memory(device_kind: str) -> Memory:
    """The host's and the device's peak memory of the run (or why the device's is unknown)."""
    device_peak, device_reason = trainer.active().device_peak_memory(device_kind)
    return Memory(
        host_peak_bytes=backend.host_peak_memory(),
        device_peak_bytes=device_peak,
        device_reason=device_reason,
    )


def telemetry_summary(
    measurement: Measurement,
    source: telemetry.Source | None,
    missing: list[str],
    sampler: telemetry.Sampler,
    interval_s: float,
    facts: Facts,
) -> telemetry.Telemetry:
    """The sampler's readings over the timed steps, with what could not be measured and the
    power state the doctor read."""
    timed = timed_steps(measurement.config, measurement.steps)
    return telemetry.summarize(
        source.name if source is not None else None,
        sampler.readings,
        measurement.windows(timed),
        sum(s.images for s in timed),
        [*missing, *([sampler.error] if sampler.error else [])],
        interval_s,
        measurement.origin,
        *_power_state(facts),
    )


def _power_state(facts: Facts) -> tuple[str | None, bool | None, str | None]:
    """Mains or battery (with its charge), Low Power Mode and the macOS energy mode
    ("automatic" | "low power" | "high power"), as the doctor read them."""
    if facts.battery is None:
        return "mains (no battery)", facts.low_power_mode, facts.energy_mode
    if facts.battery.get("power_plugged"):
        return "mains (battery charging or full)", facts.low_power_mode, facts.energy_mode
    percent = facts.battery.get("percent", "?")
    return f"battery ({percent} %)", facts.low_power_mode, facts.energy_mode


def matmul_peak(
    result: Result, measurement: Measurement, probe: bool, display: Display
) -> tuple[peak.Peak, str | None]:
    """The run's compute against the matmul probe's (run now, after the timed steps, unless
    not `probe` (--no-peak) or the run was interrupted) and the vendor's ceiling; and the
    signal that stopped the probe, if one did."""
    reasons = []
    measured = None
    stopped_by = None
    if not probe:
        reasons.append("measured ceiling: skipped (--no-peak)")
    elif result.status == "interrupted":
        reasons.append("measured ceiling: skipped (the run was interrupted)")
    else:
        device = measurement.device
        try:
            with display.status("measuring the device's matmul ceiling"):
                measured = trainer.active().measure_matmul(device, result.config.precision)
        except KeyboardInterrupt as stop:
            reasons.append("measured ceiling: interrupted")
            stopped_by = signal_name(stop)
        except Exception as e:  # noqa: BLE001 - the timed steps are whole: never lost for it
            reasons.append(f"measured ceiling: failed ({type(e).__name__}: {str(e)[:120]})")
            measured = None
        if measured is not None and not measured[0] > 0:
            reasons.append(f"measured ceiling: not a positive figure ({measured[0]!r})")
            measured = None
    cpu = result.environment.cpu
    row, why_not = peak.vendor_peak(
        measurement.device.kind, measurement.device.description, cpu.model, cpu.container_cpus
    )
    if why_not:
        reasons.append(why_not)
    return (
        peak.peak(result.summary.tflops, result.config.precision, measured, row, reasons),
        stopped_by,
    )


def with_peak(result: Result, found: peak.Peak) -> Result:
    """`result` with its peak, and its profile's kinds against the measured ceiling."""
    profile = result.profile and with_ceiling(result.profile, found.measured_tflops)
    return replace(result, peak=found, profile=profile)


def distribution_record(
    replication: Replication,
    config: RunConfig,
    images_per_s: float | None,
    one_replica: float | None,
) -> Distribution:
    """How the run was spread over replicas, with the job's images/s and, with --scaling, its
    efficiency against `one_replica` (images/s of one replica alone)."""
    record = replication.record(
        config.batch_size // replication.replicas,
        config.batch_size,
        "strong" if config.global_batch else "weak",
    )
    return distribution.with_throughput(record, images_per_s, one_replica)
