"""Linux CPU telemetry from sysfs: RAPL energy counters (package and DRAM domains), the cores'
current clock (cpufreq), temperatures (hwmon, thermal zones) and thermal-throttle counters.

Each figure is read where the kernel exposes it; what is absent or unreadable is named in
`missing` with the reason and the fix (virtual machines expose none of it)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

from segbench.measure.telemetry.sampler import Reading

CPU_SENSORS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "cpu-thermal")
CPU_ZONES = ("x86_pkg_temp", "cpu-thermal", "cpu_thermal", "soc_thermal")


class _Counter:
    """A RAPL energy_uj counter, its wrap-around (at max_energy_range_uj) handled."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / "energy_uj"
        self.range_uj = int((folder / "max_energy_range_uj").read_text())
        self.last = int(self.path.read_text())
        self.total_uj = 0

    def read(self) -> int:
        raw = int(self.path.read_text())
        delta = raw - self.last
        if delta < 0:  # the counter wrapped
            delta += self.range_uj + 1
        self.last = raw
        self.total_uj += delta
        return self.total_uj


def rapl_domains(root: Path) -> list[Path]:
    """Package domains (intel-rapl:N) and their DRAM subdomains; core/uncore/psys overlap them."""
    base = root / "class" / "powercap"
    found = []
    for folder in sorted(base.glob("intel-rapl:*")):
        name = _text(folder / "name") or ""
        package = re.fullmatch(r"intel-rapl:\d+", folder.name) and name.startswith("package")
        dram = re.fullmatch(r"intel-rapl:\d+:\d+", folder.name) and name == "dram"
        if package or dram:
            found.append(folder)
    return found


class LinuxCpu:
    """RAPL + cpufreq + hwmon/thermal under `root` (/sys; a fake tree in the tests)."""

    name = "rapl"

    def __init__(self, root: Path = Path("/sys")) -> None:
        self.root = root
        self.missing: list[str] = []
        self.counters: list[_Counter] = []
        self.domains: list[str] = []
        domains = rapl_domains(root)
        if not domains:
            self.missing.append(
                "energy: no RAPL counters (/sys/class/powercap/intel-rapl:* absent: a virtual "
                "machine, or the driver is not loaded: sudo modprobe intel_rapl_common)"
            )
        for folder in domains:
            try:
                self.counters.append(_Counter(folder))
                self.domains.append(_text(folder / "name") or folder.name)
            except PermissionError:
                self.missing.append(
                    "energy: the RAPL counters are readable by root only (Linux ≥ 5.10); run "
                    "as root or: sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj "
                    "/sys/class/powercap/intel-rapl:*:*/energy_uj"
                )
                self.counters = []
                break
            except (OSError, ValueError):
                continue
        cpus = root / "devices" / "system" / "cpu"
        self.clock_files = sorted(cpus.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"))
        if not self.clock_files:
            self.missing.append("clocks: no cpufreq (/sys/devices/system/cpu/cpu*/cpufreq absent)")
        self.temperature_files = _cpu_temperature_files(root)
        if not self.temperature_files:
            self.missing.append("temperature: no CPU sensor under /sys/class/hwmon or thermal")
        self.throttle_files = sorted(cpus.glob("cpu[0-9]*/thermal_throttle/*_throttle_count"))
        self.throttle_count = self._throttle_count()

    @property
    def usable(self) -> bool:
        return bool(self.counters or self.clock_files or self.temperature_files)

    def read(self) -> Reading:
        energy = sum(c.read() for c in self.counters) / 1e6 if self.counters else None
        clocks = [v / 1000 for v in map(_number, self.clock_files) if v is not None]
        temperatures = [v / 1000 for v in map(_number, self.temperature_files) if v is not None]
        count = self._throttle_count()
        throttle = ("thermal (CPU throttle count rose)",) if count > self.throttle_count else ()
        self.throttle_count = count
        return Reading(
            energy_j=energy,
            clock_mhz=statistics.fmean(clocks) if clocks else None,
            temperature_c=max(temperatures) if temperatures else None,
            throttle=throttle,
        )

    def _throttle_count(self) -> int:
        return int(sum(v for v in map(_number, self.throttle_files) if v is not None))

    def close(self) -> None:
        pass


def _cpu_temperature_files(root: Path) -> list[Path]:
    files = []
    for hwmon in sorted((root / "class" / "hwmon").glob("hwmon*")):
        if _text(hwmon / "name") in CPU_SENSORS:
            files += sorted(hwmon.glob("temp*_input"))
    if not files:
        for zone in sorted((root / "class" / "thermal").glob("thermal_zone*")):
            if _text(zone / "type") in CPU_ZONES:
                files.append(zone / "temp")
    return files


def _text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _number(path: Path) -> float | None:
    text = _text(path)
    try:
        return float(text) if text else None
    except ValueError:
        return None
