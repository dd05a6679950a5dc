"""NVIDIA GPU telemetry through NVML (the nvidia-ml-py package, imported as pynvml): the
total-energy counter where the GPU has one (Volta and newer; else power is integrated over
time), power, SM clock, temperature, utilisation, memory used and the clock-event (throttle)
reasons of the GPU the run uses (memory clock and memory used too)."""

from __future__ import annotations

import contextlib
import os
from types import ModuleType

from segbench.measure.telemetry.sampler import Reading

# Clock-event reasons that mean the GPU slowed itself down (idle, application clocks, sync
# boost and display clocks are not throttling). Bits from nvml.h, the same in every version.
THROTTLE_BITS = {
    0x04: "power cap",
    0x08: "hardware slowdown",
    0x20: "thermal (software)",
    0x40: "thermal (hardware)",
    0x80: "power brake",
}


class NvmlUnavailable(Exception):
    """NVML cannot be used; the message says why and what to do."""


def visible_index(env: dict[str, str] | None = None) -> str:
    """The GPU the run uses, as CUDA_VISIBLE_DEVICES names it ("0", "GPU-…" uuid); NVML
    counts every GPU, so the first visible one is found by that name."""
    visible = (env if env is not None else os.environ).get("CUDA_VISIBLE_DEVICES", "")
    first = visible.split(",")[0].strip()
    return first or "0"


class Nvml:
    """Reads the GPU named by `index` through the NVML module `nvml` (pynvml or a stand-in)."""

    name = "nvml"

    def __init__(self, nvml: ModuleType, index: str = "0") -> None:
        self.nvml = nvml
        self.missing: list[str] = []
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as e:
            raise NvmlUnavailable(
                f"NVML cannot start ({e}): install the NVIDIA driver; in a container run with "
                "--gpus all (NVIDIA Container Toolkit)"
            ) from None
        try:
            if index.startswith(("GPU-", "MIG-")):
                self.handle = nvml.nvmlDeviceGetHandleByUUID(index)
            else:
                self.handle = nvml.nvmlDeviceGetHandleByIndex(int(index))
        except (nvml.NVMLError, ValueError) as e:
            nvml.nvmlShutdown()
            raise NvmlUnavailable(
                f"NVML does not find GPU {index!r} (CUDA_VISIBLE_DEVICES): {e}"
            ) from None
        self.device_name = _text(nvml.nvmlDeviceGetName(self.handle))
        self.has_energy = self._supported(nvml.nvmlDeviceGetTotalEnergyConsumption)
        if not self.has_energy:
            self.missing.append(
                "energy counter: this GPU has none (before Volta); power is integrated instead"
            )
        reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
        self.reasons = reasons or nvml.nvmlDeviceGetCurrentClocksThrottleReasons

    def _supported(self, function) -> bool:
        try:
            function(self.handle)
        except self.nvml.NVMLError:
            return False
        return True

    def _optional(self, function, *args):
        """`function(handle, *args)`, or None where this GPU does not support it."""
        try:
            return function(self.handle, *args)
        except self.nvml.NVMLError:
            return None

    def read(self) -> Reading:
        nvml = self.nvml
        energy_mj = (
            self._optional(nvml.nvmlDeviceGetTotalEnergyConsumption) if self.has_energy else None
        )
        power_mw = self._optional(nvml.nvmlDeviceGetPowerUsage)
        clock = self._optional(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_SM)
        memory_clock = self._optional(nvml.nvmlDeviceGetClockInfo, nvml.NVML_CLOCK_MEM)
        temperature = self._optional(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU)
        utilization = self._optional(nvml.nvmlDeviceGetUtilizationRates)
        memory = self._optional(nvml.nvmlDeviceGetMemoryInfo)
        bits = self._optional(self.reasons) or 0
        return Reading(
            energy_j=energy_mj / 1000 if energy_mj is not None else None,
            power_w=power_mw / 1000 if power_mw is not None else None,
            clock_mhz=float(clock) if clock is not None else None,
            memory_clock_mhz=float(memory_clock) if memory_clock is not None else None,
            temperature_c=float(temperature) if temperature is not None else None,
            utilization_pct=float(utilization.gpu) if utilization is not None else None,
            memory_bytes=int(memory.used) if memory is not None else None,
            throttle=tuple(name for bit, name in THROTTLE_BITS.items() if bits & bit),
        )

    def close(self) -> None:
        with contextlib.suppress(self.nvml.NVMLError):
            self.nvml.nvmlShutdown()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def open_nvml(nvml: ModuleType | None = None, index: str | None = None) -> Nvml:
    """NVML on the run's GPU; NvmlUnavailable with the reason and the fix."""
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            raise NvmlUnavailable(
                "nvidia-ml-py is not installed: uv sync --locked (it is a locked dependency "
                "on Linux), or pip install nvidia-ml-py"
            ) from None
    return Nvml(nvml, index if index is not None else visible_index())
