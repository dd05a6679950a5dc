"""Telemetry sources against recorded formats: a fake sysfs tree (RAPL with a wrap-around,
cpufreq, hwmon, throttle counters), an NVML stand-in with nvidia-ml-py's call signatures,
and powermetrics plist output streamed by a real subprocess; then the summary over the timed
steps, and the sampler thread."""

import inspect
import subprocess
import sys
import time
import types
from dataclasses import replace
from pathlib import Path

import pynvml
import pytest

from segbench.measure.telemetry import Reading, Sampler, open_source, summarize
from segbench.measure.telemetry.linux import LinuxCpu
from segbench.measure.telemetry.macos import (
    COMMAND,
    Powermetrics,
    PowermetricsUnavailable,
    documents,
    powermetrics_command,
    reading,
)
from segbench.measure.telemetry.nvidia import NvmlUnavailable, open_nvml, visible_index
from segbench.measure.telemetry.summary import MAX_TRACE_POINTS, trace

DATA = Path(__file__).parent / "data"
POWERMETRICS_SAMPLE = DATA / "powermetrics-m1max.plist"


# --- Linux: RAPL, cpufreq, hwmon ---------------------------------------------------------


def _write(path: Path, text) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")


def fake_sysfs(root: Path, package_uj: int, dram_uj: int, range_uj: int = 1_000_000) -> Path:
    """The files a two-core Intel machine exposes under /sys, as the kernel lays them out."""
    rapl = root / "class" / "powercap"
    for folder, name, value in (
        ("intel-rapl:0", "package-0", package_uj),
        ("intel-rapl:0:0", "core", 5),  # overlaps the package: must not be added
        ("intel-rapl:0:1", "dram", dram_uj),
        ("intel-rapl:1", "psys", 7),  # the whole platform: overlaps too
    ):
        _write(rapl / folder / "name", name)
        _write(rapl / folder / "energy_uj", value)
        _write(rapl / folder / "max_energy_range_uj", range_uj - 1)
    cpus = root / "devices" / "system" / "cpu"
    for cpu, khz in (("cpu0", 2_400_000), ("cpu1", 2_000_000)):
        _write(cpus / cpu / "cpufreq" / "scaling_cur_freq", khz)
        _write(cpus / cpu / "thermal_throttle" / "core_throttle_count", 0)
        _write(cpus / cpu / "thermal_throttle" / "package_throttle_count", 0)
    _write(root / "class" / "hwmon" / "hwmon0" / "name", "acpitz")  # not the CPU
    _write(root / "class" / "hwmon" / "hwmon0" / "temp1_input", 99000)
    _write(root / "class" / "hwmon" / "hwmon1" / "name", "coretemp")
    _write(root / "class" / "hwmon" / "hwmon1" / "temp1_input", 61000)
    _write(root / "class" / "hwmon" / "hwmon1" / "temp2_input", 64000)
    return root


def set_energy(root: Path, package_uj: int, dram_uj: int) -> None:
    rapl = root / "class" / "powercap"
    _write(rapl / "intel-rapl:0" / "energy_uj", package_uj)
    _write(rapl / "intel-rapl:0:1" / "energy_uj", dram_uj)


def test_rapl_sums_package_and_dram_across_a_wrap_around(tmp_path):
    root = fake_sysfs(tmp_path, package_uj=900_000, dram_uj=100_000)
    cpu = LinuxCpu(root)
    assert cpu.usable and cpu.missing == []
    assert cpu.domains == ["package-0", "dram"]
    assert cpu.read().energy_j == 0.0
    # The package counter wraps at 1 J: 900,000 → 999,999 → 0 → 300,000 is 0.4 J.
    set_energy(root, package_uj=300_000, dram_uj=150_000)
    first = cpu.read()
    assert first.energy_j == pytest.approx(0.4 + 0.05)
    set_energy(root, package_uj=500_000, dram_uj=160_000)
    assert cpu.read().energy_j == pytest.approx(0.45 + 0.2 + 0.01)
    assert first.clock_mhz == 2200.0  # the mean of 2400 and 2000 MHz
    assert first.temperature_c == 64.0  # the hottest coretemp sensor, not acpitz's 99 °C


def test_cpu_throttle_counter_rising_is_reported(tmp_path):
    root = fake_sysfs(tmp_path, 0, 0)
    cpu = LinuxCpu(root)
    assert cpu.read().throttle == ()
    _write(root / "devices/system/cpu/cpu1/thermal_throttle/package_throttle_count", 3)
    assert cpu.read().throttle == ("thermal (CPU throttle count rose)",)
    assert cpu.read().throttle == ()  # no new events since


def test_a_machine_without_sysfs_telemetry_says_what_is_missing(tmp_path):
    cpu = LinuxCpu(tmp_path)
    assert not cpu.usable
    assert [m.split(":")[0] for m in cpu.missing] == ["energy", "clocks", "temperature"]
    assert "intel_rapl_common" in cpu.missing[0]


def test_open_source_on_this_linux_cpu_reports_unavailable_with_a_reason():
    if not sys.platform.startswith("linux"):
        pytest.skip("Linux sysfs")
    source, missing = open_source("cpu", "linux")
    if source is None:  # a VM like CI's: nothing readable, and each gap named
        assert missing and all(": " in m for m in missing)
    else:
        assert source.name == "rapl" and source.read() is not None


# --- NVIDIA: NVML ------------------------------------------------------------------------


class NVMLError(Exception):
    """pynvml.NVMLError's interface: the NVML return code in `value`."""

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return {3: "Not Supported", 9: "Driver Not Loaded"}.get(self.value, "Unknown Error")


def nvml_standin(energy=True, fail_init=False, reasons=0x0):
    """A module with nvidia-ml-py's functions, constants and return types; a simulated H100
    whose energy counter advances 70 J and whose power reads 700 W per call."""
    state = {"calls": 0, "handles": []}
    nvml = types.ModuleType("pynvml_standin")
    nvml.NVMLError = NVMLError
    nvml.NVML_CLOCK_SM, nvml.NVML_CLOCK_MEM, nvml.NVML_TEMPERATURE_GPU = 1, 2, 0

    def nvmlInit():
        if fail_init:
            raise NVMLError(9)

    def nvmlShutdown():
        state["shutdown"] = True

    def nvmlDeviceGetHandleByIndex(index):
        state["handles"].append(("index", index))
        return f"handle-{index}"

    def nvmlDeviceGetHandleByUUID(uuid):
        state["handles"].append(("uuid", uuid))
        return f"handle-{uuid}"

    def nvmlDeviceGetName(handle):
        return "NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetTotalEnergyConsumption(handle):
        if not energy:
            raise NVMLError(3)
        state["calls"] += 1
        return 1_000_000 + 70_000 * state["calls"]  # mJ

    def nvmlDeviceGetPowerUsage(handle):
        return 700_000  # mW

    def nvmlDeviceGetClockInfo(handle, type):
        return {1: 1980, 2: 2619}[type]

    def nvmlDeviceGetTemperature(handle, sensor):
        return 67

    def nvmlDeviceGetUtilizationRates(handle):
        return types.SimpleNamespace(gpu=98, memory=41)  # c_nvmlUtilization_t fields

    def nvmlDeviceGetMemoryInfo(handle, version=None):
        return types.SimpleNamespace(total=85_520_809_984, free=5_000_000_000, used=80_520_809_984)

    def nvmlDeviceGetCurrentClocksEventReasons(handle):
        return reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(handle):
        return reasons

    for function in list(locals().values()):
        if callable(function) and function.__name__.startswith("nvml"):
            setattr(nvml, function.__name__, function)
    nvml.state = state
    return nvml


def test_nvml_standin_has_the_call_signatures_of_nvidia_ml_py():
    standin = nvml_standin()
    names = [n for n in dir(standin) if n.startswith("nvml")]
    assert len(names) == 13
    for name in names:
        real = inspect.signature(getattr(pynvml, name)).parameters
        ours = inspect.signature(getattr(standin, name)).parameters
        assert list(ours) == list(real), name
    for constant in ("NVML_CLOCK_SM", "NVML_CLOCK_MEM", "NVML_TEMPERATURE_GPU"):
        assert getattr(standin, constant) == getattr(pynvml, constant)


def test_nvml_reading_converts_units_and_names_throttle_reasons():
    # 0x01 (idle) is not throttling; 0x04 power cap and 0x40 hardware thermal are.
    gpu = open_nvml(nvml_standin(reasons=0x01 | 0x04 | 0x40), index="0")
    first, second = gpu.read(), gpu.read()
    assert second.energy_j - first.energy_j == pytest.approx(70.0)
    assert first.power_w == 700.0 and first.clock_mhz == 1980.0
    assert first.memory_clock_mhz == 2619.0
    assert first.temperature_c == 67.0 and first.utilization_pct == 98.0
    assert first.memory_bytes == 80_520_809_984
    assert first.throttle == ("power cap", "thermal (hardware)")
    assert gpu.device_name == "NVIDIA H100 80GB HBM3" and gpu.missing == []
    gpu.close()
    assert gpu.nvml.state["shutdown"]


def test_nvml_readings_give_energy_clocks_and_memory_of_the_timed_steps():
    gpu = open_nvml(nvml_standin(), index="0")
    readings = [replace(gpu.read(), t=i * 0.1) for i in range(21)]  # +70 J every 0.1 s
    t = summarize("nvml", readings, [(0.5, 1.5)], 16, gpu.missing, 0.1, 0.0)
    assert t.available and t.energy_j == pytest.approx(700.0) and t.mean_w == pytest.approx(700.0)
    assert t.j_per_image == pytest.approx(43.75)
    assert (t.clocks_mhz.median, t.memory_clocks_mhz.median) == (1980.0, 2619.0)
    assert t.memory_used_bytes_max == 80_520_809_984 and t.utilization_pct_median == 98.0
    assert t.temperature_c_max == 67.0


def test_nvml_without_an_energy_counter_integrates_power():
    gpu = open_nvml(nvml_standin(energy=False), index="0")
    assert gpu.read().energy_j is None
    assert "power is integrated" in gpu.missing[0]
    readings = [Reading(t=float(t), power_w=700.0) for t in range(11)]
    summary = summarize("nvml", readings, [(2.0, 4.0)], 32, gpu.missing, 0.1, 0.0)
    assert summary.available and summary.energy_j == pytest.approx(1400.0)


def test_nvml_follows_cuda_visible_devices():
    assert visible_index({"CUDA_VISIBLE_DEVICES": "3,1"}) == "3"
    assert visible_index({}) == "0"
    standin = nvml_standin()
    uuid = "GPU-9f3c2b1a-0000-1111-2222-333344445555"
    open_nvml(standin, index=visible_index({"CUDA_VISIBLE_DEVICES": uuid}))
    open_nvml(standin, index="2")
    assert standin.state["handles"] == [("uuid", uuid), ("index", 2)]


def test_nvml_that_cannot_start_says_how_to_fix_it():
    with pytest.raises(NvmlUnavailable, match=r"Driver Not Loaded.*--gpus all"):
        open_nvml(nvml_standin(fail_init=True))


# --- macOS: powermetrics -----------------------------------------------------------------


def test_powermetrics_samples_give_power_energy_clock_and_pressure():
    samples = list(documents(POWERMETRICS_SAMPLE.read_bytes()))
    assert len(samples) == 3
    energy = 0.0
    readings = []
    for sample in samples:
        new, energy = reading(sample, energy)
        readings.append(new)
    first, _, last = readings
    assert first.power_w == pytest.approx((1843.0 + 38150.0) / 1000)
    assert first.energy_j == pytest.approx(39.993 * 0.102346)
    assert last.energy_j == pytest.approx(39.993 * 0.102346 + 40.81 * 0.100912 + 32.941 * 0.101455)
    assert first.clock_mhz == 1296.0  # the GPU's freq_hz is in MHz
    assert first.utilization_pct == pytest.approx(97.87)
    assert first.throttle == () and last.throttle == ("thermal pressure Moderate",)


def test_powermetrics_output_is_read_from_a_running_process():
    # `cat` stands in for powermetrics: the same bytes arrive through a real pipe.
    source = Powermetrics(["cat", str(POWERMETRICS_SAMPLE)])
    deadline = time.monotonic() + 10
    while source.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    source.thread.join(timeout=10)
    latest = source.read()
    assert latest is not None and latest.throttle == ("thermal pressure Moderate",)
    assert source.energy_j == pytest.approx(
        39.993 * 0.102346 + 40.81 * 0.100912 + 32.941 * 0.101455
    )
    assert source.read() is None  # nothing new since
    source.close()


def test_powermetrics_needs_root_or_passwordless_sudo():
    def which(name):
        return "/usr/bin/powermetrics"

    def sudo(result):
        return lambda *a, **k: subprocess.CompletedProcess(a, result)

    assert powermetrics_command(which, is_root=True)[0] == "/usr/bin/powermetrics"
    assert powermetrics_command(which, is_root=False, run=sudo(0))[:2] == ("sudo", "-n")
    with pytest.raises(PowermetricsUnavailable, match="NOPASSWD: /usr/bin/powermetrics"):
        powermetrics_command(which, is_root=False, run=sudo(1))
    with pytest.raises(PowermetricsUnavailable, match="not found"):
        powermetrics_command(lambda name: None, is_root=True)
    assert "--samplers" in COMMAND and "plist" in COMMAND


# --- Summary over the timed steps --------------------------------------------------------


def steady(watts=100.0, seconds=10, every=0.1, throttled=()):
    """Readings of a counter rising `watts` J/s; throttled during the (start, end) spans."""
    count = int(seconds / every) + 1
    return [
        Reading(
            t=i * every,
            energy_j=watts * i * every,
            clock_mhz=1500.0 + i % 3,
            temperature_c=50 + i * every,
            throttle=("power cap",) if any(a <= i * every <= b for a, b in throttled) else (),
        )
        for i in range(count)
    ]


def test_energy_counts_only_the_timed_steps():
    windows = [(1.0, 2.0), (3.0, 4.0)]  # 2 s of timed steps, 32 images
    t = summarize("rapl", steady(), windows, 32, [], 0.1, 0.0)
    assert t.available and t.reason is None
    assert t.energy_j == pytest.approx(200.0)
    assert t.mean_w == pytest.approx(100.0)
    assert t.j_per_image == pytest.approx(6.25) and t.images_per_kj == pytest.approx(160.0)
    assert (t.clocks_mhz.min, t.clocks_mhz.max) == (1500.0, 1502.0)
    assert t.temperature_c_max == pytest.approx(54.0)
    assert t.throttle.events == 0 and t.throttle.fraction_of_timed_steps == 0.0


def test_throttling_is_counted_per_timed_step_with_its_reason():
    windows = [(1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0)]
    readings = steady(throttled=[(3.2, 3.5), (7.5, 9.0)])
    t = summarize("nvml", readings, windows, 64, [], 0.1, 0.0)
    assert t.throttle.events == 2
    assert t.throttle.fraction_of_timed_steps == 0.5
    assert t.throttle.reasons == ["power cap"]


def test_too_few_readings_make_energy_unavailable_and_say_so():
    t = summarize("rapl", steady(seconds=1), [(0.5, 5.0)], 16, [], 0.1, 0.0)
    assert not t.available and t.energy_j is None and t.j_per_image is None
    assert t.reason.startswith("energy: too few readings")


def test_no_source_keeps_the_reasons():
    why = ["energy: no RAPL counters (…)"]
    t = summarize(None, [], [(0.0, 1.0)], 16, why, 0.1, 0.0)
    assert (t.source, t.available, t.samples, t.reason) == (None, False, 0, why[0])


def test_trace_is_thinned_evenly_and_relative_to_the_run_start():
    readings = steady(seconds=1000)  # 10,001 readings
    kept = trace(readings, origin=5.0)
    assert len(kept.t_s) <= MAX_TRACE_POINTS
    assert kept.t_s[0] == -5.0 and kept.t_s[-1] <= 995.0
    assert kept.power_w[0] is None and kept.power_w[1] == pytest.approx(100.0)


# --- The sampler thread ------------------------------------------------------------------


class Counting:
    name = "counting"

    def __init__(self, fail_after=None):
        self.missing = []
        self.n, self.fail_after, self.closed = 0, fail_after, False

    def read(self):
        self.n += 1
        if self.fail_after is not None and self.n > self.fail_after:
            raise OSError("device gone")
        return Reading(energy_j=float(self.n))

    def close(self):
        self.closed = True


def test_sampler_reads_in_the_background_until_stopped():
    source = Counting()
    with Sampler(source, interval_s=0.01) as sampler:
        time.sleep(0.2)
    count = len(sampler.readings)
    assert count >= 5 and source.closed
    times = [r.t for r in sampler.readings]
    assert times == sorted(times)
    time.sleep(0.05)
    assert len(sampler.readings) == count  # stopped
    assert sampler.read_s < 0.2


def test_a_failing_source_ends_sampling_without_stopping_the_run():
    with Sampler(Counting(fail_after=3), interval_s=0.01) as sampler:
        time.sleep(0.1)
    assert len(sampler.readings) == 3
    assert sampler.error == "counting failed during the run (OSError: device gone)"


def test_no_source_means_no_thread_and_no_readings():
    with Sampler(None) as sampler:
        pass
    assert sampler.readings == [] and sampler.error is None
