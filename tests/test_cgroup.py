"""Container limits read from cgroup files (v2 and v1), laid out as the kernel writes them."""

import json
import os
from pathlib import Path

import pytest

from segbench.doctor import cgroup


def _v2(root: Path, cpu_max: str, cpuset: str, memory_max: str, current: str) -> Path:
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "cpu.max").write_text(cpu_max + "\n")
    (root / "cpuset.cpus.effective").write_text(cpuset + "\n")
    (root / "memory.max").write_text(memory_max + "\n")
    (root / "memory.current").write_text(current + "\n")
    return root


def _v1(root: Path, quota: str, period: str, cpuset: str, limit: str, usage: str) -> Path:
    for folder, name, value in [
        ("cpu", "cpu.cfs_quota_us", quota),
        ("cpu", "cpu.cfs_period_us", period),
        ("cpuset", "cpuset.effective_cpus", cpuset),
        ("memory", "memory.limit_in_bytes", limit),
        ("memory", "memory.usage_in_bytes", usage),
    ]:
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder / name).write_text(value + "\n")
    return root


HOST = os.cpu_count() or 1
ALL = f"0-{HOST - 1}" if HOST > 1 else "0"


@pytest.mark.parametrize(
    ("layout", "cpus", "memory"),
    [
        # docker run --cpus 1 --memory 1.5g (v2)
        (lambda r: _v2(r, "100000 100000", ALL, str(1536 * 2**20), str(200 * 2**20)), 1, 1336),
        # --cpus 0.5: a fraction of a CPU still needs one
        (lambda r: _v2(r, "50000 100000", ALL, "max", "0"), 1, None),
        # --cpuset-cpus 0 (v2), no quota
        (lambda r: _v2(r, "max 100000", "0", "max", "0"), 1 if HOST > 1 else None, None),
        # v1 with a quota of 1 CPU and 1 GiB
        (lambda r: _v1(r, "100000", "100000", ALL, str(2**30), str(2**28)), 1, 768),
        # v1 without limits: -1 quota, the "no limit" number
        (lambda r: _v1(r, "-1", "100000", ALL, "9223372036854771712", "5"), None, None),
    ],
    ids=["v2-cpus-memory", "v2-half-cpu", "v2-cpuset", "v1-quota-memory", "v1-unlimited"],
)
def test_container_limits_are_read_from_either_cgroup_version(tmp_path, layout, cpus, memory):
    if cpus == 1 and HOST == 1:
        cpus = None  # one CPU is all this machine has: no limit to report
    found = cgroup.read_limits(layout(tmp_path / "cg"))
    assert found.cpus == cpus
    available = found.memory_available
    assert (None if available is None else available // 2**20) == memory


def test_the_limits_of_this_processs_own_cgroup_and_its_parents_apply(tmp_path):
    """Without a cgroup namespace (systemd-run --scope -p MemoryMax=…, a host's slice) the
    limits are not at the root: /proc/self/cgroup names the cgroup, and a parent's limit
    binds too."""
    gib = 2**30
    root = _v2(tmp_path / "v2", "max 100000", ALL, "max", "0")
    parent = root / "work.slice"
    leaf = parent / "bench.scope"
    leaf.mkdir(parents=True)
    (parent / "memory.max").write_text(f"{3 * gib}\n")
    (parent / "memory.current").write_text(f"{gib}\n")
    (leaf / "memory.max").write_text("max\n")
    (leaf / "cpu.max").write_text("150000 100000\n")
    (leaf / "cpuset.cpus.effective").write_text(ALL + "\n")
    membership = tmp_path / "cgroup"
    membership.write_text("0::/work.slice/bench.scope\n")
    found = cgroup.read_limits(root, membership)
    assert (found.memory_limit, found.memory_used) == (3 * gib, gib)
    assert found.cpu_quota == (1.5 if HOST >= 2 else None)
    # v1: each controller's own path ("4:memory:/…"), as on a host without namespaces.
    v1 = _v1(tmp_path / "v1", "-1", "100000", ALL, "9223372036854771712", "0")
    nested = v1 / "memory" / "process_api" / "abc"
    nested.mkdir(parents=True)
    (nested / "memory.limit_in_bytes").write_text(f"{gib}\n")
    (nested / "memory.usage_in_bytes").write_text(f"{gib // 4}\n")
    membership.write_text("4:memory:/process_api/abc\n3:cpuset:/\n1:cpu,cpuacct:/\n")
    found = cgroup.read_limits(v1, membership)
    assert found.memory_available == gib - gib // 4
    # A container sees its own cgroup as the root: the host's path is not there, the root is.
    membership.write_text("4:memory:/docker/0123abcd\n")
    assert cgroup.read_limits(v1, membership).memory_limit is None


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_the_page_cache_a_container_can_drop_is_not_counted_as_used(tmp_path, layout):
    """A container that just read its data set shows it in memory.current (page cache): the
    memory still available counts it free, as `docker stats` does."""
    gib = 2**30
    if layout == "v2":
        root = _v2(tmp_path / "cg", "max 100000", ALL, str(2 * gib), str(gib + gib // 2))
        (root / "memory.stat").write_text(f"anon {gib // 2}\ninactive_file {gib}\n")
    else:
        root = _v1(tmp_path / "cg", "-1", "100000", ALL, str(2 * gib), str(gib + gib // 2))
        (root / "memory" / "memory.stat").write_text(f"cache {gib}\ntotal_inactive_file {gib}\n")
    limits = cgroup.read_limits(root)
    assert limits.memory_used == gib // 2
    assert limits.memory_available == gib + gib // 2


def test_a_fractional_quota_is_a_limit_the_result_and_the_vendor_peak_count(
    tmp_path, triangles_dir, monkeypatch
):
    """docker run --cpus 1.5 --memory 2g on a 2-CPU host: the result records 1.5 CPUs and
    the limit, compare's row says so, and the CPU's vendor peak counts 1.5 cores' worth."""
    from cli_helpers import cached_data, fake
    from typer.testing import CliRunner

    from segbench.cli import app
    from segbench.measure import vendor_peaks
    from segbench.results.compare import device_label
    from segbench.results.result import load_result

    root = _v2(tmp_path / "cg", "150000 100000", ALL, str(2 * 2**30), str(2**20))
    limits = cgroup.read_limits(root)
    if HOST < 2:
        assert limits.usable_cpus is None  # 1.5 CPUs' time on a 1-CPU host: no limit
        return
    assert (limits.cpus, limits.usable_cpus) == (2, 1.5)
    monkeypatch.setattr(cgroup.read_limits, "__defaults__", (root, cgroup.MEMBERSHIP))
    monkeypatch.setenv("SEGBENCH_CACHE", str(cached_data(tmp_path, triangles_dir)))
    done = CliRunner().invoke(
        app, ["run", "--preset", "smoke", "--out", str(tmp_path / "res")], env=fake()
    )
    assert done.exit_code == 0, done.output
    (path,) = (tmp_path / "res").glob("*.json")
    result = load_result(path)
    assert result.environment.cpu.container_cpus == 1.5
    assert result.environment.memory_limit_bytes == 2 * 2**30
    assert device_label(result).endswith(f"× {HOST} (container: 1.5)")
    row = vendor_peaks.cpu_peak("Test CPU", 2, 3.0, {"avx2"}, allowed=1.5)
    assert row.tflops("float32")[0] == pytest.approx(1.5 * 3.0 * 32 / 1000)
    assert "1.5 of 2 cores (the container's limit)" in row.name
    assert vendor_peaks.cpu_peak("Test CPU", 2, 3.0, {"avx2"}, allowed=4).name.startswith(
        "Test CPU (2 cores"
    )


def test_a_memory_limited_container_fails_the_memory_check_naming_the_limit(tmp_path, monkeypatch):
    """--memory 1.5g: the host's free RAM does not count, the limit does (the kernel's OOM
    killer ends the run there)."""
    from cli_helpers import fake
    from typer.testing import CliRunner

    from segbench.cli import app

    root = _v2(tmp_path / "cg", "100000 100000", ALL, str(1536 * 2**20), str(100 * 2**20))
    monkeypatch.setattr(cgroup, "ROOT", root)
    monkeypatch.setattr(cgroup.read_limits, "__defaults__", (root, cgroup.MEMBERSHIP))
    done = CliRunner().invoke(app, ["doctor", "--preset", "quick", "--json"], env=fake())
    checks = {c["id"]: c for c in json.loads(done.stdout)["checks"]}
    memory = checks["memory"]
    assert memory["status"] == "FAIL"
    assert memory["found"].startswith("1.5 GB RAM available (container limits: ")
    assert "1.5 GiB memory" in memory["found"]
    assert memory["fix"].startswith("raise the container's memory limit (docker run --memory)")
    if HOST > 1:  # the load is judged on the container's one CPU
        assert checks["load"]["found"].endswith("on 1 CPUs")


def _cpufreq(folder: Path, governor: str, driver: str, cur: int, cap: int, top: int) -> Path:
    folder.mkdir(parents=True)
    for name, value in [
        ("scaling_governor", governor),
        ("scaling_driver", driver),
        ("scaling_cur_freq", cur),
        ("scaling_max_freq", cap),
        ("cpuinfo_max_freq", top),
    ]:
        (folder / name).write_text(f"{value}\n")
    return folder


@pytest.mark.parametrize(
    ("policy", "status", "said"),
    [
        # acpi-cpufreq's powersave pins the lowest clock: 800 MHz of 3.5 GHz
        (("powersave", "acpi-cpufreq", 800000, 3500000, 3500000), "WARN", "held low"),
        # intel_pstate's powersave is its default dynamic policy: idle at 800 MHz is fine
        (("powersave", "intel_pstate", 800000, 3500000, 3500000), "PASS", "0.80 of 3.50 GHz"),
        # a lowered maximum (cpupower frequency-set -u 1.2GHz), whatever the governor
        (("performance", "acpi-cpufreq", 1200000, 1200000, 3500000), "WARN", "capped at 1.20"),
        (("userspace", "acpi-cpufreq", 1000000, 3500000, 3500000), "WARN", "held low"),
        (("schedutil", "amd-pstate", 2900000, 2900000, 3000000), "PASS", "2.90 of 3.00 GHz"),
    ],
)
def test_a_cpu_held_at_a_low_clock_warns_before_timing(tmp_path, policy, status, said):
    from segbench.doctor.hardware import check_cpu_clock

    found = cgroup.read_cpufreq(_cpufreq(tmp_path / "cpufreq", *policy))
    check = check_cpu_clock(found)
    assert check.status == status and said in check.found
    if status == "WARN":
        assert check.fix.startswith("set the performance (or schedutil) governor")
    assert check_cpu_clock(cgroup.read_cpufreq(tmp_path / "none")).status == "SKIP"


def test_the_clock_warning_reaches_the_run_and_its_file(tmp_path, triangles_dir, monkeypatch):
    from cli_helpers import cached_data, fake
    from typer.testing import CliRunner

    from segbench.cli import app
    from segbench.results.result import load_result

    folder = _cpufreq(tmp_path / "cpufreq", "powersave", "acpi-cpufreq", 800000, 3500000, 3500000)
    monkeypatch.setattr(cgroup.read_cpufreq, "__defaults__", (folder,))
    monkeypatch.setenv("SEGBENCH_CACHE", str(cached_data(tmp_path, triangles_dir)))
    done = CliRunner().invoke(
        app, ["run", "--preset", "smoke", "--out", str(tmp_path / "res")], env=fake()
    )
    assert done.exit_code == 0, done.output
    assert "warning: cpu-clock: governor powersave (acpi-cpufreq), 0.80 of 3.50 GHz" in done.output
    (path,) = (tmp_path / "res").glob("*.json")
    clock = next(c for c in load_result(path).doctor if c.id == "cpu-clock")
    assert clock.status == "WARN"
