"""Checks of the machine: devices, driver, a computation, memory, power, load, threads, disk.

Each `check_*` takes the facts it judges as plain data and returns a Check, so its logic is
tested without the machine it describes. Nothing here reads the machine or prints.
"""

from __future__ import annotations

import re
from typing import Any

from segbench.doctor.cgroup import DYNAMIC_POWERSAVE
from segbench.doctor.types import FAIL, PASS, SKIP, WARN, Check
from segbench.measure import gpu_caps
from segbench.results.privacy import public_path

# CUDA 12.x runs on drivers >= 525.60.13 (minor-version compatibility); CUDA 12.5 wants 555.42.
CUDA12_MIN_DRIVER = (525, 60, 13)
CUDA125_DRIVER = (555, 42)
# Memory a run needs, as a fixed part plus a part per image of the batch that scales with the
# width (activations and their gradients), fitted to measurements of `segbench run`:
# - host (peak RSS from benchmarks/run_phases.py, TensorFlow 2.19.1 on the CPU of a 2-core
#   x86_64 VM, the data held as uint8): smoke (width 1/16, batch 2) 1.55 GB, quick (width 1,
#   batch 16) 12.33 GB, and the epoch protocol stages both splits as well (+1.3 GB);
# - GPU (torch.cuda.max_memory_reserved through Keras's torch backend on an H100): smoke
#   0.18 GB, quick 15.3 GB, article 21.0 GB. TensorFlow was not measured on a GPU;
# - logical CPU replicas (--cpu-replicas N, mirrored): each holds its batch's activations and
#   its copy of the model, plus ~0.08 GB (smoke: 1 replica 2.24 GB, 8 replicas 3.42 GB).
# The need asked for is the estimate plus 15 %.
HOST_MEMORY = {"fixed": 1.47e9, "per_image_at_width_1": 0.68e9, "epochs": 1.3e9, "replica": 0.08e9}
GPU_MEMORY = {"fixed": 0.15e9, "per_image_at_width_1": 0.95e9, "epochs": 5.7e9}
MEMORY_MARGIN = 1.15
DISK_NEED = 100e6  # the data set is 5 MB and a result file well under 1 MB


def check_devices(gpus: list[str], backend: str, expect: str | None) -> Check:
    found = f"{backend}: " + (", ".join(gpus) if gpus else "CPU only")
    if expect == "gpu" and not gpus:
        return Check(
            "devices",
            FAIL,
            found,
            "a GPU (--expect gpu)",
            "install the GPU build: uv sync --extra cuda (Linux) or tensorflow-metal (macOS)",
        )
    if expect == "cpu" and gpus:
        return Check(
            "devices",
            FAIL,
            found,
            "no GPU (--expect cpu)",
            "hide the GPU (CUDA_VISIBLE_DEVICES=) or run with --device cpu",
        )
    return Check("devices", PASS, found, expect or "")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def check_nvidia(
    nvidia: dict[str, str] | None,
    gpus: list[str],
    installed: dict[str, str],
    backend: str,
    precision: str,
    wsl: bool = False,
) -> Check:
    """A driver the backend should use; tensor cores (segbench.measure.gpu_caps) for --precision."""
    if not nvidia:
        return Check("nvidia", SKIP, "no NVIDIA driver (nvidia-smi not found or no GPU)")
    if "error" in nvidia:  # the driver is there, and broken: say why, not "no driver"
        from segbench.results.environment import nvidia_smi_problem

        cause, fix = nvidia_smi_problem(nvidia["error"])
        return Check(
            "nvidia", FAIL, f"nvidia-smi: {nvidia['error']} — likely cause: {cause}", fix=fix
        )
    name, driver = nvidia.get("name", "?"), nvidia.get("driver_version", "?")
    cc = nvidia.get("compute_cap", "")
    caps = gpu_caps.capabilities(name, cc)
    found = f"{name}, driver {driver}, compute capability {cc or '?'} ({gpu_caps.describe(caps)})"
    version = _version_tuple(driver) or (999,)  # an unreported driver is not judged too old
    if not gpus and backend == "tensorflow":
        if wsl and "nvidia-cudnn-cu12" in installed:
            fix = (
                "WSL2: TensorFlow finds the Windows driver's libcuda in /usr/lib/wsl/lib only "
                "when it is on the library path: export LD_LIBRARY_PATH=/usr/lib/wsl/lib:"
                "$LD_LIBRARY_PATH (tensorflow/tensorflow#63341)"
            )
        elif "nvidia-cudnn-cu12" not in installed:
            fix = "install the CUDA wheels: uv sync --extra cuda"
        elif version < CUDA12_MIN_DRIVER:
            fix = f"driver {driver} is too old for CUDA 12: install 555.42 or newer"
        else:
            fix = "check that LD_LIBRARY_PATH does not shadow the pip-installed CUDA libraries"
        return Check(
            "nvidia", FAIL, found + "; TensorFlow sees no GPU", "TensorFlow uses the GPU", fix
        )
    if version < CUDA12_MIN_DRIVER:
        return Check(
            "nvidia", FAIL, found, "driver ≥ 525.60.13 (CUDA 12)", "update the NVIDIA driver"
        )
    slow = nvidia_precision(caps, precision)
    if slow is not None:
        return Check("nvidia", WARN, found, *slow)
    if version[:2] < CUDA125_DRIVER:
        return Check(
            "nvidia",
            WARN,
            found,
            "driver ≥ 555.42 (CUDA 12.5)",
            "works through CUDA minor-version compatibility; update the driver for PTX JIT",
        )
    return Check("nvidia", PASS, found, "driver ≥ 555.42 (CUDA 12.5)")


def nvidia_precision(caps: gpu_caps.GpuCaps | None, precision: str) -> tuple[str, str] | None:
    """(expected, fix) when --precision has no tensor cores made for it on this GPU, else None
    (also for a GPU the table does not know: nothing is claimed then)."""
    if gpu_caps.fast_path(caps, precision) is not False:
        return None
    needed = gpu_caps.NEEDS[precision]
    usable = "mixed_float16 or float32" if gpu_caps.FP16 in caps.tensor_cores else "float32"
    named = caps.line or caps.architecture
    return (
        f"{needed} tensor cores for --precision {precision}",
        f"{precision} has no fast path on this GPU ({named}: no {needed} tensor cores) and can"
        f" train several times slower than float32: use --precision {usable}",
    )


def check_precision(precision: str, gpus: list[str], on_gpu: bool, is_metal: bool) -> Check:
    """Whether --precision has a fast path on an Apple GPU (tensorflow-metal); NVIDIA GPUs are
    judged by check_nvidia. CPUs are not judged: doctor does not read the CPU's flags
    (AVX512-FP16, AMX-BF16) that a mixed precision would need there."""
    if precision not in gpu_caps.NEEDS:
        return Check("precision", PASS, precision, "a precision with a fast path")
    if on_gpu and is_metal:
        return Check(
            "precision",
            WARN,
            f"{precision} on the Apple GPU ({', '.join(gpus) or 'Metal'})",
            "float32 on tensorflow-metal",
            f"{precision} has no fast path on tensorflow-metal (mixed float16 has trained slower"
            " than float32 there): use --precision float32",
        )
    if on_gpu:
        return Check("precision", PASS, f"{precision} on {', '.join(gpus)}", "see the nvidia check")
    return Check("precision", SKIP, f"{precision} on the CPU: not judged (CPU flags are not read)")


def check_computation(result: dict[str, Any], device: str) -> Check:
    """A small matrix product ran on the chosen device and gave the right answer."""
    if result.get("error"):
        return Check(
            "compute",
            FAIL,
            result["error"],
            f"a matmul on {device}",
            "the backend cannot compute on this device; see the devices check",
        )
    placed, ok = result.get("placed_on", "?"), result.get("correct", False)
    wanted = "gpu" if device == "gpu" else "cpu"
    if not ok:
        return Check(
            "compute",
            FAIL,
            f"wrong result on {placed}",
            "exact result",
            "the device computes wrong results: update its driver or plugin",
        )
    if wanted not in placed.lower() and not (wanted == "gpu" and "cuda" in placed.lower()):
        return Check(
            "compute",
            FAIL,
            f"ran on {placed}",
            f"placed on the {wanted.upper()}",
            "the backend placed work elsewhere: check the devices and metal/nvidia checks",
        )
    return Check("compute", PASS, f"64×64 matmul correct on {placed}", f"on the {wanted.upper()}")


def memory_need(
    width: float, batch_size: int, epochs: int, on_gpu: bool, replicas: int = 1
) -> float:
    """Bytes a run of this width and batch (per replica) is estimated to need (with the
    margin): on the host, `replicas` copies (--cpu-replicas); a GPU holds one replica."""
    model = GPU_MEMORY if on_gpu else HOST_MEMORY
    copies = 1 if on_gpu else max(1, replicas)
    need = model["fixed"] + copies * model["per_image_at_width_1"] * width * batch_size
    need += (copies - 1) * model.get("replica", 0.0)
    return MEMORY_MARGIN * (need + (model["epochs"] if epochs > 0 else 0.0))


def batch_that_fits(
    width: float, epochs: int, on_gpu: bool, available: float, replicas: int = 1
) -> int:
    """The largest batch size (per replica) whose memory_need fits in `available` bytes; 0
    when not even a batch of 1 does."""
    model = GPU_MEMORY if on_gpu else HOST_MEMORY
    copies = 1 if on_gpu else max(1, replicas)
    room = available / MEMORY_MARGIN - model["fixed"] - (model["epochs"] if epochs > 0 else 0.0)
    room -= (copies - 1) * model.get("replica", 0.0)
    return max(0, int(room // (copies * model["per_image_at_width_1"] * width)))


def check_memory(
    workload: str,
    need: float,
    ram_available: int,
    gpu_free: int | None,
    on_gpu: bool,
    fits: int | None = None,
    container: str | None = None,
) -> Check:
    """Free memory against `need` (memory_need, with its 15 % margin) for `workload`, e.g.
    "width 1, batch 16": FAIL below the estimate itself, WARN inside the margin; the fix names
    the batch size that fits (`fits`, batch_that_fits) or the smoke preset."""
    expected = f"≥ {need / 1e9:.1f} GB for {workload}"
    smaller = f"--batch-size {fits} fits (or --preset smoke)" if fits else "--preset smoke fits"
    if on_gpu:
        if gpu_free is None:
            return Check("memory", SKIP, "GPU memory not reported by the driver", expected)
        found = f"{gpu_free / 1e9:.1f} GB free on the GPU"
        if gpu_free < need:
            return Check(
                "memory",
                WARN,
                found,
                expected,
                f"it may run out of memory: stop other GPU jobs, or {smaller}",
            )
        return Check("memory", PASS, found, expected)
    found = f"{ram_available / 1e9:.1f} GB RAM available" + (f" ({container})" if container else "")
    # Inside a memory-limited container the kernel kills the run at the limit, whatever the
    # host has free: the limit is what to raise.
    free_up = (
        "raise the container's memory limit (docker run --memory)"
        if container and ("memory" in container)
        else "close other programs"
    )
    if ram_available < need / MEMORY_MARGIN:
        return Check("memory", FAIL, found, expected, f"{free_up}, or {smaller}")
    if ram_available < need:
        return Check(
            "memory",
            WARN,
            found,
            expected,
            f"within the estimate's 15 % margin: it may fit; {free_up}, or {smaller}",
        )
    return Check("memory", PASS, found, expected)


# macOS energy modes as `pmset -g` numbers them: `powermode` (macOS 12.x on Macs with High Power
# Mode, every Mac from macOS 14 or so) and `lowpowermode` (older systems) share the numbering.
ENERGY_MODES = {"0": "automatic", "1": "low power", "2": "high power"}


def energy_mode(pmset: str | None) -> str | None:
    """The energy mode in use, from `pmset -g` text: "automatic", "low power", "high power", or
    None when neither `powermode` nor `lowpowermode` is listed. The newer name wins when a
    system lists both."""
    for key in ("powermode", "lowpowermode"):
        found = re.search(rf"^\s*{key}\s+(\d)\b", pmset or "", re.M)
        if found:
            return ENERGY_MODES.get(found.group(1))
    return None


def check_power(
    battery: dict[str, Any] | None, low_power_mode: bool | None, mode: str | None = None
) -> Check:
    """Mains power and no Low Power Mode; `mode` is the macOS energy mode (energy_mode)."""
    if low_power_mode or mode == "low power":
        return Check(
            "power",
            WARN,
            "macOS energy mode is Low Power",
            "Automatic or High Power energy mode",
            "turn Low Power off: sudo pmset -a powermode 0 (older macOS: sudo pmset -a"
            " lowpowermode 0), or System Settings → Battery → Energy Mode",
        )
    shown = f"; macOS energy mode {mode}" if mode else ""
    if battery is None:
        return Check("power", PASS, "no battery (mains power)" + shown, "mains power")
    if not battery.get("power_plugged"):
        return Check(
            "power",
            WARN,
            f"on battery ({battery.get('percent', '?')} %)" + shown,
            "mains power",
            "plug in the charger: on battery the OS may throttle the CPU and GPU",
        )
    return Check("power", PASS, "charger connected" + shown, "mains power")


def check_load(load_1min: float | None, cpus: int) -> Check:
    if load_1min is None:
        return Check("load", SKIP, "load average not reported")
    found = f"1-minute load {load_1min:.2f} on {cpus} CPUs"
    if load_1min > 0.5 * cpus:
        return Check(
            "load",
            WARN,
            found,
            f"below {0.5 * cpus:.1f}",
            "other processes compete for the machine: stop them or wait (see top)",
        )
    return Check("load", PASS, found, f"below {0.5 * cpus:.1f}")


def check_cpu_clock(cpufreq: dict[str, Any] | None) -> Check:
    """The CPU's clock policy: a governor that pins the lowest clock (powersave under
    acpi-cpufreq, a low userspace speed) or an allowed maximum below the hardware's WARNs:
    a CPU held at 800 MHz of 3.5 GHz times a quarter of its speed."""
    if not cpufreq:
        return Check("cpu-clock", SKIP, "no cpufreq policy exposed here (a VM, or macOS)")
    governor, driver = cpufreq.get("governor", "?"), cpufreq.get("driver", "")
    found = f"governor {governor}" + (f" ({driver})" if driver else "")
    cur, cap, top = (cpufreq.get(k) for k in ("cur_khz", "policy_max_khz", "max_khz"))
    if cur and top:
        found += f", {cur / 1e6:.2f} of {top / 1e6:.2f} GHz"
    fix = (
        "set the performance (or schedutil) governor: sudo cpupower frequency-set -g "
        "performance; and lift a lowered maximum (cpupower frequency-set -u)"
    )
    expected = "the full clock available under load"
    if cap and top and cap < 0.9 * top:
        return Check("cpu-clock", WARN, f"{found}; capped at {cap / 1e6:.2f} GHz", expected, fix)
    pinned = governor == "powersave" and driver not in DYNAMIC_POWERSAVE
    if pinned or (governor == "userspace" and cur and top and cur < 0.9 * top):
        return Check("cpu-clock", WARN, f"{found}: the clock is held low", expected, fix)
    return Check("cpu-clock", PASS, found, expected)


def check_thermal(thermal: str | None) -> Check:
    if thermal is None:
        return Check("thermal", SKIP, "the OS reports no thermal pressure here")
    limit = re.search(r"CPU_Speed_Limit\s*=\s*(\d+)", thermal)
    if limit and int(limit.group(1)) < 100:
        return Check(
            "thermal",
            WARN,
            f"CPU speed limited to {limit.group(1)} %",
            "100 %",
            "let the machine cool down (raise --cooldown) and keep its vents free",
        )
    return Check("thermal", PASS, "no thermal throttling reported", "no throttling")


def check_threads(
    threads: dict[str, Any],
    onednn: bool | None,
    xla_available: bool | None,
    xla_requested: bool,
    is_metal: bool,
    cpus: int,
) -> Check:
    parts = [f"{k}={v}" for k, v in threads.items()]
    if onednn is not None:
        parts.append(f"oneDNN {'on' if onednn else 'off'}")
    if xla_available is not None:
        parts.append(f"XLA {'available' if xla_available else 'unavailable'}")
    found = ", ".join(parts)
    if xla_requested and is_metal:
        return Check(
            "threads-xla",
            FAIL,
            found + "; --xla on Metal",
            "--no-xla on Metal",
            "XLA (jit_compile) fails on tensorflow-metal: drop --xla",
        )
    if xla_requested and xla_available is False:
        return Check("threads-xla", FAIL, found, "XLA available for --xla", "drop --xla")
    omp = threads.get("OMP_NUM_THREADS")
    if omp not in (None, "unset") and str(omp) != str(cpus):
        return Check(
            "threads-xla",
            WARN,
            found,
            f"all {cpus} CPUs used",
            "unset OMP_NUM_THREADS unless you mean to limit the threads",
        )
    return Check("threads-xla", PASS, found, "default threading")


def check_disk(free: dict[str, int | str]) -> Check:
    """Free bytes in each folder the run writes to; a str is why the folder cannot be used.
    Folders under the home folder are named ~/… (the check is recorded in the result)."""
    if not free:
        return Check("disk", SKIP, "no folder to check")
    unusable = {p: why for p, why in free.items() if isinstance(why, str)}
    if unusable:
        return Check(
            "disk",
            FAIL,
            "; ".join(f"{public_path(p)}: {why}" for p, why in unusable.items()),
            "writable folders",
            "choose other folders (--data, --out, SEGBENCH_CACHE)",
        )
    low = {p: b for p, b in free.items() if b < DISK_NEED}
    found = ", ".join(f"{public_path(p)}: {b / 1e9:.1f} GB free" for p, b in free.items())
    if low:
        return Check(
            "disk",
            FAIL,
            found,
            f"≥ {DISK_NEED / 1e6:.0f} MB free",
            "free some space or choose other folders (--data, --out, SEGBENCH_CACHE)",
        )
    return Check("disk", PASS, found, f"≥ {DISK_NEED / 1e6:.0f} MB free")
