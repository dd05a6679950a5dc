"""The limits a container (or systemd slice) puts on this process: the cgroup's CPU quota,
cpuset and memory limit, read from cgroup v2 or v1. `docker run --cpus 1 --memory 1.5g` shows
the host's cores and RAM to os.cpu_count() and psutil; the kernel enforces these instead.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path("/sys/fs/cgroup")
UNLIMITED = 2**60  # v1 writes "no limit" as a number near 2**63


@dataclass(frozen=True)
class Limits:
    """What the cgroup allows: CPUs (the quota rounded up, or the cpuset's count, whichever is
    smaller), and memory in bytes with what the cgroup already uses; None where unlimited."""

    cpus: int | None = None
    cpu_quota: float | None = None  # CPUs' worth of time per period, e.g. 1.5
    cpuset: int | None = None
    memory_limit: int | None = None
    memory_used: int | None = None

    @property
    def usable_cpus(self) -> float | None:
        """CPUs' worth of time the cgroup allows (the quota, or the cpuset where smaller), or
        None without a limit below the host's CPUs."""
        if self.cpus is None:
            return None
        return min(x for x in (self.cpu_quota, self.cpuset) if x is not None)

    @property
    def memory_available(self) -> int | None:
        """Bytes the cgroup can still allocate before the kernel's OOM killer ends the run."""
        if self.memory_limit is None:
            return None
        return max(0, self.memory_limit - (self.memory_used or 0))

    def describe(self) -> str:
        """e.g. "container limits: 1 CPU (quota 1.0), 1.5 GiB memory"; "" without limits."""
        parts = []
        if self.cpus is not None:
            how = f"quota {self.cpu_quota:g}" if self.cpu_quota is not None else "cpuset"
            parts.append(f"{self.cpus} CPU{'s' if self.cpus != 1 else ''} ({how})")
        if self.memory_limit is not None:
            parts.append(f"{self.memory_limit / 2**30:.1f} GiB memory")
        return "container limits: " + ", ".join(parts) if parts else ""


def _in_use(usage: int | None, stat: Path) -> int | None:
    """The cgroup's memory in use without the page cache it can drop: its usage less the
    inactive file pages of memory.stat (`inactive_file`; v1: `total_inactive_file`), as
    `docker stats` counts it. A file just read fills the cache, not the need."""
    if usage is None:
        return None
    fields = dict(
        line.split(maxsplit=1) for line in (_read(stat) or "").splitlines() if " " in line
    )
    inactive = _number(fields.get("inactive_file") or fields.get("total_inactive_file"))
    return max(0, usage - (inactive or 0))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _number(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


def _cpuset_count(text: str | None) -> int | None:
    """CPUs in a cpuset list such as "0-3,8,10-11"; None when empty or unreadable."""
    if not text:
        return None
    count = 0
    for part in text.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or (high and not high.isdigit()):
            return None
        count += int(high or low) - int(low) + 1
    return count or None


MEMBERSHIP = Path("/proc/self/cgroup")


def _memberships(text: str | None) -> dict[str, str]:
    """This process's cgroup per controller, from /proc/self/cgroup ("4:memory:/a/b"; v2's
    unified one under "")."""
    found: dict[str, str] = {}
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _own_dirs(base: Path, relative: str | None) -> list[Path]:
    """The folders of this process's cgroup under `base` and of its parents up to `base`,
    innermost first: a limit set on any of them applies. Without a namespace the file names
    the cgroup from the host's root; a folder missing under `base` (a container sees its own
    cgroup as the root) is skipped."""
    current = base / relative.strip("/") if relative and relative.strip("/") else base
    dirs = []
    while True:
        if current.is_dir():
            dirs.append(current)
        if current == base or base not in current.parents:
            break
        current = current.parent
    return dirs or [base]


def _v2_quota(folder: Path) -> float | None:
    cpu_max = (_read(folder / "cpu.max") or "max").split()
    if cpu_max and cpu_max[0] != "max" and len(cpu_max) == 2 and cpu_max[1].isdigit():
        return int(cpu_max[0]) / int(cpu_max[1])
    return None


def _v1_quota(folder: Path) -> float | None:
    period = _number(_read(folder / "cpu.cfs_period_us"))
    raw = _read(folder / "cpu.cfs_quota_us")
    if raw and raw.lstrip("-").isdigit() and int(raw) > 0 and period:
        return int(raw) / period
    return None


def _smallest(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def read_limits(root: Path = ROOT, membership: Path = MEMBERSHIP) -> Limits:
    """The limits of this process's cgroup and its parents (v2's unified files, else v1's
    controllers), found through /proc/self/cgroup."""
    own = _memberships(_read(membership))
    if (root / "cgroup.controllers").exists():  # v2
        dirs = _own_dirs(root, own.get(""))
        quota = _smallest([_v2_quota(d) for d in dirs])
        cpuset = _cpuset_count(_read(dirs[0] / "cpuset.cpus.effective"))
        limits = [(_number(_read(d / "memory.max")), d) for d in dirs]
        usage, stat = "memory.current", "memory.stat"
    else:  # v1
        quota = _smallest([_v1_quota(d) for d in _own_dirs(root / "cpu", own.get("cpu"))])
        cpuset_dir = _own_dirs(root / "cpuset", own.get("cpuset"))[0]
        cpuset = _cpuset_count(_read(cpuset_dir / "cpuset.effective_cpus"))
        memory_dirs = _own_dirs(root / "memory", own.get("memory"))
        limits = [(_number(_read(d / "memory.limit_in_bytes")), d) for d in memory_dirs]
        usage, stat = "memory.usage_in_bytes", "memory.stat"
    # The tightest memory limit, and what its cgroup uses.
    limit, where = min(
        ((n, d) for n, d in limits if n is not None), default=(None, None), key=lambda x: x[0]
    )
    used = None if where is None else _in_use(_number(_read(where / usage)), where / stat)
    if limit is not None and limit >= UNLIMITED:
        limit = None
    host = os.cpu_count() or 1
    if cpuset is not None and cpuset >= host:
        cpuset = None  # every CPU: no limit
    if quota is not None and quota >= host:
        quota = None  # every CPU's time: no limit
    # A quota of 1.5 CPUs on 2 is a limit, though the threads to use are still 2.
    counts = [c for c in (math.ceil(quota) if quota else None, cpuset) if c is not None]
    cpus = min(min(counts), host) if counts else None
    return Limits(
        cpus=cpus,
        cpu_quota=quota if cpus is not None else None,
        cpuset=cpuset,
        memory_limit=limit,
        memory_used=used if limit is not None else None,
    )


CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")
# cpufreq drivers whose "powersave" governor still scales the clock up under load (the
# default of intel_pstate and amd-pstate); under acpi-cpufreq "powersave" pins the lowest.
DYNAMIC_POWERSAVE = ("intel_pstate", "amd-pstate", "amd-pstate-epp", "intel_cpufreq")


def read_cpufreq(folder: Path = CPUFREQ) -> dict[str, str | int] | None:
    """The first CPU's clock policy: governor, driver, and current, allowed and hardware
    maximum clocks in kHz; None where the kernel exposes no cpufreq (most VMs, macOS)."""
    governor = _read(folder / "scaling_governor")
    if governor is None:
        return None
    found: dict[str, str | int] = {"governor": governor}
    driver = _read(folder / "scaling_driver")
    if driver:
        found["driver"] = driver
    for key, name in (
        ("cur_khz", "scaling_cur_freq"),
        ("policy_max_khz", "scaling_max_freq"),
        ("max_khz", "cpuinfo_max_freq"),
    ):
        value = _number(_read(folder / name))
        if value:
            found[key] = value
    return found
