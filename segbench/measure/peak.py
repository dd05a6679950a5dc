"""How close a run came to the device's ceiling: a dense-matmul probe measures what the device
achieves here (same backend, device and precision as the run, its own warm-up), and the
vendor table gives what the device is sold at. Measures and returns data; never prints."""

from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segbench.measure import backend, vendor_peaks
from segbench.results.schema import OPTIONAL, OPTIONAL_POSITIVE

PROBE_SIZE = {"cpu": 2048, "gpu": 8192}  # n of the n×n matmul: 17 GFLOP and 1.1 TFLOP
PROBE_WARMUP = 2
PROBE_SECONDS = 1.0  # timed calls continue until this long has passed (at least 3 calls)
DTYPES = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


@dataclass(frozen=True, kw_only=True)
class Peak:
    """The run's achieved TFLOP/s against the measured and the published ceiling."""

    achieved_tflops: float = field(metadata={"positive": True})  # the summary's, from the median
    measured_tflops: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    method: str | None = field(default=None, metadata=OPTIONAL)  # how measured_tflops was made
    achieved_pct_of_measured: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    vendor_device: str | None = field(default=None, metadata=OPTIONAL)  # the table row matched
    vendor_tflops: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    vendor_basis: str | None = field(  # which published figure: FP32, TF32 or tensor FP16/BF16
        default=None, metadata={**OPTIONAL, "enum": ("fp32", "tf32", "fp16", "bf16")}
    )
    vendor_estimate: bool | None = field(default=None, metadata=OPTIONAL)  # computed, not quoted
    vendor_source: str | None = field(default=None, metadata=OPTIONAL)
    vendor_memory_gbps: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    achieved_pct_of_vendor: float | None = field(default=None, metadata=OPTIONAL_POSITIVE)
    reason: str | None = field(default=None, metadata=OPTIONAL)  # what is missing, and why


def measure_matmul(
    device_kind: str, precision: str, size: int | None = None, seconds: float = PROBE_SECONDS
) -> tuple[float, str]:
    """Achieved TFLOP/s of an n×n matmul on the current keras.device, and how it was measured."""
    from keras import ops

    n = size or PROBE_SIZE[device_kind]
    dtype = DTYPES[precision]
    rng = np.random.default_rng(0)
    a, b = (
        ops.cast(backend.to_device(rng.standard_normal((n, n), dtype=np.float32)), dtype)
        for _ in range(2)
    )
    backend.synchronize()
    for _ in range(PROBE_WARMUP):
        ops.matmul(a, b)
    backend.synchronize()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < 3 or time.perf_counter() - started < seconds:
        t0 = time.perf_counter()
        ops.matmul(a, b)
        backend.synchronize()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    method = (
        f"matmul {n}×{n} {dtype}, median of {len(times)} calls after {PROBE_WARMUP} warm-up, "
        f"{backend.backend_name()} on the {device_kind.upper()}"
    )
    return 2 * n**3 / median / 1e12, method


def vendor_peak(
    device_kind: str, device_description: str, cpu_model: str, container_cpus: float | None = None
):
    """The vendor table's row for this device, or (None, why not); a CPU's estimate counts the
    `container_cpus` a container allows where fewer than its cores."""
    if device_kind == "gpu" and sys.platform == "darwin":
        cores = vendor_peaks.apple_gpu_cores()
        if cores is None:
            return None, "vendor peak: the Apple GPU's core count is not readable (ioreg)"
        row = vendor_peaks.apple_peak(cpu_model, cores)
        return row, None if row else f"vendor peak: {cpu_model} is not in the table"
    if device_kind == "gpu":
        row = vendor_peaks.nvidia_peak(device_description)
        return row, None if row else f"vendor peak: {device_description} is not in the table"
    if sys.platform.startswith("linux"):
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None, "vendor peak: /proc/cpuinfo is not readable"
        max_khz = _read(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))
        cores, ghz, flags = vendor_peaks.linux_cpu_facts(cpuinfo, max_khz)
        row = vendor_peaks.cpu_peak(cpu_model, cores, ghz, flags, container_cpus)
        return row, None if row else "vendor peak: the CPU's clock or vector ISA is unknown"
    return None, "vendor peak: no CPU estimate on this platform (its clock is not reported)"


def peak(
    achieved_tflops: float,
    precision: str,
    measured: tuple[float, str] | None,
    row: vendor_peaks.VendorPeak | None,
    reasons: list[str],
) -> Peak:
    """The peak block from the achieved figure, the probe's (if run) and the table's row."""
    values: dict = {"achieved_tflops": achieved_tflops}
    if measured is not None:
        tflops, method = measured
        values |= {
            "measured_tflops": tflops,
            "method": method,
            "achieved_pct_of_measured": 100 * achieved_tflops / tflops,
        }
    if row is not None:
        tflops, basis = row.tflops(precision)
        values |= {
            "vendor_device": row.name,
            "vendor_tflops": tflops,
            "vendor_basis": basis,
            "vendor_estimate": row.source.startswith("estimate"),
            "vendor_source": row.source,
            "vendor_memory_gbps": row.memory_gbps or None,
            "achieved_pct_of_vendor": 100 * achieved_tflops / tflops,
        }
    return Peak(**values, reason="; ".join(reasons) or None)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
