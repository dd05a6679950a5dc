"""Environment checks: gather facts once, then judge them with pure functions.

Each `check_*` function takes the facts it judges as plain data and returns a Check, so its
logic is tested without the machine it describes. `gather` reads this machine; `run_checks`
puts the two together. Nothing here prints.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from segbench.environment import (
    LOCK_FILE,
    PROJECT_ROOT,
    command_output,
    nvidia_smi,
    package_version,
)

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
SUPPORTED_PYTHON = ((3, 10), (3, 12))
# A version mismatch of these makes results incomparable; other packages only warn.
CRITICAL_PACKAGES = ("tensorflow", "keras", "tensorflow-metal")
# Installed beside any locked environment: segbench itself and the installer.
TOOLING = frozenset({"segbench", "pip", "setuptools", "wheel"})
# CUDA 12.x runs on drivers >= 525.60.13 (minor-version compatibility); CUDA 12.5 wants 555.42.
CUDA12_MIN_DRIVER = (525, 60, 13)
CUDA125_DRIVER = (555, 42)
# Peak resident memory of `segbench run` (GNU time's maximum RSS), TensorFlow 2.19.1 on the
# CPU of a 2-core x86_64 VM: smoke 2.1 GB, quick 12.7 GB. article stages the whole training
# and validation sets as well (+1.3 GB). The need asked for is the measurement plus 15 %.
HOST_MEMORY_NEED = {"smoke": 2.1e9 * 1.15, "quick": 12.7e9 * 1.15, "article": 14.0e9 * 1.15}
# Peak GPU memory reserved by PyTorch's allocator (torch.cuda.max_memory_reserved) running each
# preset through Keras's torch backend on an H100: smoke 0.18 GB, quick 15.3 GB, article 21.0 GB
# (it stages both splits). TensorFlow was not measured on a GPU, so a shortfall only warns.
GPU_MEMORY_NEED = {"smoke": 0.5e9, "quick": 15.3e9 * 1.15, "article": 21.0e9 * 1.15}
LISTED = 8  # names shown per kind of drift before "and N more"
DISK_NEED = 100e6  # the data set is 5 MB and a result file well under 1 MB


@dataclass(frozen=True)
class Check:
    """One verdict: what was found, what was expected, and the one-line fix."""

    id: str
    status: str
    found: str
    expected: str = ""
    fix: str = ""


@dataclass(frozen=True)
class Context:
    """What the coming run asks for, so the checks can judge against it."""

    preset: str = "quick"
    device: str = "auto"
    precision: str = "float32"
    xla: bool = False
    expect: str | None = None  # "gpu" | "cpu": a missing (or unexpected) GPU is then a FAIL
    folders: tuple[str, ...] = ()


@dataclass
class Facts:
    """Everything the checks judge, read from the machine once."""

    python: tuple[int, int, int]
    sys_platform: str
    machine: str
    backend: str
    installed: dict[str, str]
    import_errors: dict[str, str]
    export_path: str | None
    export_pins: dict[str, str] | None
    export_error: str | None
    gpus: list[str]
    nvidia: dict[str, str] | None
    computation: dict[str, Any]
    ram_total: int
    ram_available: int
    gpu_memory_free: int | None
    battery: dict[str, Any] | None
    low_power_mode: bool | None
    load_1min: float | None
    cpus: int
    thermal: str | None
    threads: dict[str, Any]
    onednn: bool | None
    xla_available: bool | None
    disk_free: dict[str, int] = field(default_factory=dict)
    lock_versions: dict[str, set[str]] = field(default_factory=dict)


# ---------------------------------------------------------------- the judges


def check_python(version: tuple[int, int, int]) -> Check:
    low, high = SUPPORTED_PYTHON
    found = ".".join(map(str, version))
    expected = f"{low[0]}.{low[1]}–{high[0]}.{high[1]}"
    if low <= version[:2] <= high:
        return Check("python", PASS, found, expected)
    return Check(
        "python",
        FAIL,
        found,
        expected,
        f"use Python {expected}: uv python install 3.11 && uv sync --python 3.11",
    )


def check_framework(
    name: str,
    installed: dict[str, str],
    pins: dict[str, str] | None,
    import_errors: dict[str, str],
    backend: str,
) -> Check:
    """tensorflow or keras: it imports, and its version is the locked one."""
    expected = pins.get(name, "") if pins else ""
    needed = name == "keras" or backend == "tensorflow"
    bad = FAIL if needed else WARN
    if name in import_errors:
        return Check(
            name,
            bad,
            f"import fails: {import_errors[name]}",
            expected or "importable",
            "reinstall the locked environment: uv sync --locked",
        )
    version = installed.get(name)
    if version is None:
        return Check(
            name,
            bad,
            "not installed",
            expected or "installed",
            "uv sync --locked" if needed else f"not needed by the {backend} backend",
        )
    if expected and version != expected:
        return Check(
            name,
            bad,
            version,
            expected,
            f"install the locked version: uv sync --locked (or pip install {name}=={expected})",
        )
    return Check(name, PASS, version, expected or "(no lock export to compare)")


def check_drift(
    installed: dict[str, str],
    pins: dict[str, str] | None,
    export_path: str | None,
    export_error: str | None,
    backend: str,
    also_locked: dict[str, set[str]] | None = None,
) -> Check:
    """Installed distributions against this platform's locked export.

    `also_locked` holds uv.lock's other versions (dev tools, optional extras such as `plot`):
    a package installed at one of those is locked, not extra.
    """
    if export_error:
        return Check(
            "packages",
            WARN,
            export_error,
            "a readable lock export",
            "restore the file: git checkout envs/ (or regenerate it: just lock)",
        )
    if pins is None:
        return Check(
            "packages",
            SKIP,
            "no lock export for this platform found",
            "envs/<target>/requirements.txt",
            "run from a segbench checkout or set SEGBENCH_LOCK_EXPORT to the export file",
        )
    drifted = {
        n: (installed[n], v) for n, v in pins.items() if n in installed and installed[n] != v
    }
    missing = sorted(n for n in pins if n not in installed)
    locked = also_locked or {}
    extra = sorted(
        n
        for n, v in installed.items()
        if n not in pins and n not in TOOLING and v not in locked.get(n, set())
    )
    if not (drifted or missing or extra):
        return Check("packages", PASS, f"{len(pins)} packages as locked", export_path or "")
    parts = []
    if drifted:
        parts.append(
            "drifted: "
            + _listed([f"{n} {a} (locked {b})" for n, (a, b) in sorted(drifted.items())])
        )
    if missing:
        parts.append("missing: " + _listed(missing))
    if extra:
        parts.append("extra: " + _listed(extra))
    critical = [n for n in CRITICAL_PACKAGES if n in drifted or n in missing]
    if backend != "tensorflow":
        critical = [n for n in critical if n != "tensorflow" and n != "tensorflow-metal"]
    status = FAIL if critical else WARN
    return Check(
        "packages",
        status,
        "; ".join(parts),
        f"exactly {export_path}",
        "uv sync --locked (or pip install --require-hashes -r the export in a fresh venv)",
    )


def _listed(items: list[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


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


def check_metal(
    sys_platform: str,
    machine: str,
    installed: dict[str, str],
    gpus: list[str],
    pins: dict[str, str] | None,
    backend: str,
) -> Check:
    if (sys_platform, machine) != ("darwin", "arm64"):
        return Check("metal", SKIP, "not macOS arm64")
    if "tensorflow-macos" in installed:
        return Check(
            "metal",
            FAIL,
            f"tensorflow-macos {installed['tensorflow-macos']} (legacy shim)",
            "plain tensorflow 2.19.1 + tensorflow-metal 1.2.0",
            "pip uninstall -y tensorflow-macos tensorflow && uv sync --locked",
        )
    expected = "tensorflow-metal " + ((pins or {}).get("tensorflow-metal") or "1.2.0")
    if "tensorflow-metal" not in installed:
        return Check("metal", FAIL, "tensorflow-metal not installed", expected, "uv sync --locked")
    if backend == "tensorflow" and not gpus:
        return Check(
            "metal",
            FAIL,
            f"tensorflow-metal {installed['tensorflow-metal']}, no GPU device",
            "the Metal GPU as GPU:0",
            "tensorflow-metal 1.2.0 loads only into tensorflow 2.19.1: uv sync --locked",
        )
    return Check(
        "metal",
        PASS,
        f"tensorflow-metal {installed['tensorflow-metal']}, {', '.join(gpus)}",
        expected,
    )


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text))


def check_nvidia(
    nvidia: dict[str, str] | None,
    gpus: list[str],
    installed: dict[str, str],
    backend: str,
    precision: str,
) -> Check:
    """A driver the backend should use; compute capability and tensor cores for --precision."""
    if not nvidia:
        return Check("nvidia", SKIP, "no NVIDIA driver (nvidia-smi not found or no GPU)")
    name, driver = nvidia.get("name", "?"), nvidia.get("driver_version", "?")
    cc = nvidia.get("compute_cap", "")
    major = _version_tuple(cc)[0] if cc else 0
    cores = (
        "fp16+bf16 tensor cores"
        if major >= 8
        else "fp16 tensor cores"
        if major >= 7
        else "no tensor cores"
    )
    found = f"{name}, driver {driver}, compute capability {cc or '?'} ({cores})"
    version = _version_tuple(driver) or (999,)  # an unreported driver is not judged too old
    if not gpus and backend == "tensorflow":
        if "nvidia-cudnn-cu12" not in installed:
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
    if precision == "mixed_bfloat16" and major < 8:
        return Check(
            "nvidia",
            WARN,
            found,
            "bf16 tensor cores (compute capability ≥ 8.0)",
            "use --precision mixed_float16 or float32 on this GPU",
        )
    if precision == "mixed_float16" and major < 7:
        return Check(
            "nvidia",
            WARN,
            found,
            "fp16 tensor cores (compute capability ≥ 7.0)",
            "use --precision float32 on this GPU",
        )
    if version[:2] < CUDA125_DRIVER:
        return Check(
            "nvidia",
            WARN,
            found,
            "driver ≥ 555.42 (CUDA 12.5)",
            "works through CUDA minor-version compatibility; update the driver for PTX JIT",
        )
    return Check("nvidia", PASS, found, "driver ≥ 555.42 (CUDA 12.5)")


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


def check_memory(preset: str, ram_available: int, gpu_free: int | None, on_gpu: bool) -> Check:
    host_need = HOST_MEMORY_NEED.get(preset, HOST_MEMORY_NEED["quick"])
    if on_gpu:
        need = GPU_MEMORY_NEED.get(preset, GPU_MEMORY_NEED["quick"])
        if gpu_free is None:
            return Check(
                "memory",
                SKIP,
                "GPU memory not reported by the driver",
                f"{need / 1e9:.1f} GB free on the GPU",
            )
        found = f"{gpu_free / 1e9:.1f} GB free on the GPU"
        if gpu_free < need:
            return Check(
                "memory",
                WARN,
                found,
                f"≥ {need / 1e9:.1f} GB for {preset}",
                "it may run out of memory: stop other GPU jobs or lower --batch-size",
            )
        return Check("memory", PASS, found, f"≥ {need / 1e9:.1f} GB for {preset}")
    found = f"{ram_available / 1e9:.1f} GB RAM available"
    if ram_available < host_need:
        return Check(
            "memory",
            FAIL,
            found,
            f"≥ {host_need / 1e9:.1f} GB for {preset}",
            "close other programs, or lower --batch-size / --width (e.g. --preset smoke)",
        )
    return Check("memory", PASS, found, f"≥ {host_need / 1e9:.1f} GB for {preset}")


def check_power(battery: dict[str, Any] | None, low_power_mode: bool | None) -> Check:
    if low_power_mode:
        return Check(
            "power",
            WARN,
            "macOS Low Power Mode is on",
            "Low Power Mode off",
            "turn it off: sudo pmset -a lowpowermode 0 (or System Settings → Battery)",
        )
    if battery is None:
        return Check("power", PASS, "no battery (mains power)", "mains power")
    if not battery.get("power_plugged"):
        return Check(
            "power",
            WARN,
            f"on battery ({battery.get('percent', '?')} %)",
            "mains power",
            "plug in the charger: on battery the OS may throttle the CPU and GPU",
        )
    return Check("power", PASS, "charger connected", "mains power")


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
    if omp not in (None, "unset") and str(omp) != str(os.cpu_count()):
        return Check(
            "threads-xla",
            WARN,
            found,
            f"all {os.cpu_count()} CPUs used",
            "unset OMP_NUM_THREADS unless you mean to limit the threads",
        )
    return Check("threads-xla", PASS, found, "default threading")


def check_disk(free: dict[str, int]) -> Check:
    if not free:
        return Check("disk", SKIP, "no folder to check")
    low = {p: b for p, b in free.items() if b < DISK_NEED}
    found = ", ".join(f"{p}: {b / 1e9:.1f} GB free" for p, b in free.items())
    if low:
        return Check(
            "disk",
            FAIL,
            found,
            f"≥ {DISK_NEED / 1e6:.0f} MB free",
            "free some space or choose other folders (--data, --out, SEGBENCH_CACHE)",
        )
    return Check("disk", PASS, found, f"≥ {DISK_NEED / 1e6:.0f} MB free")


def run_checks(facts: Facts, context: Context) -> list[Check]:
    """Judge every fact against what the coming run asks for."""
    pins = facts.export_pins
    on_gpu = bool(facts.gpus) and context.device != "cpu"
    is_metal = (facts.sys_platform, facts.machine) == (
        "darwin",
        "arm64",
    ) and "tensorflow-metal" in facts.installed
    return [
        check_python(facts.python),
        check_framework("tensorflow", facts.installed, pins, facts.import_errors, facts.backend),
        check_framework("keras", facts.installed, pins, facts.import_errors, facts.backend),
        check_drift(
            facts.installed,
            pins,
            facts.export_path,
            facts.export_error,
            facts.backend,
            facts.lock_versions,
        ),
        check_devices(facts.gpus, facts.backend, context.expect),
        check_metal(
            facts.sys_platform, facts.machine, facts.installed, facts.gpus, pins, facts.backend
        ),
        check_nvidia(facts.nvidia, facts.gpus, facts.installed, facts.backend, context.precision),
        check_computation(facts.computation, "gpu" if on_gpu else "cpu"),
        check_memory(context.preset, facts.ram_available, facts.gpu_memory_free, on_gpu),
        check_power(facts.battery, facts.low_power_mode),
        check_load(facts.load_1min, facts.cpus),
        check_thermal(facts.thermal),
        check_threads(
            facts.threads,
            facts.onednn,
            facts.xla_available,
            context.xla,
            is_metal and facts.backend == "tensorflow",
        ),
        check_disk(facts.disk_free),
    ]


def failed(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.status == FAIL]


def checks_to_dicts(checks: list[Check]) -> list[dict[str, str]]:
    return [asdict(c) for c in checks]


# ---------------------------------------------------------------- reading the machine


def target_name(sys_platform: str, machine: str, installed: dict[str, str]) -> str | None:
    """The envs/ target this interpreter corresponds to."""
    if sys_platform == "darwin" and machine == "arm64":
        return "macos-arm64-metal"
    if sys_platform == "linux" and machine in ("x86_64", "AMD64"):
        return "linux-x86_64-cuda" if "nvidia-cudnn-cu12" in installed else "linux-x86_64-cpu"
    if sys_platform == "linux" and machine in ("aarch64", "arm64"):
        return "linux-aarch64-cpu"
    return None


def read_export(path: Path) -> dict[str, str]:
    """name → version pins, for this interpreter, of a hash-locked export; ValueError if not one."""
    from packaging.markers import InvalidMarker, Marker

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: cannot read ({e.__class__.__name__})") from None
    pins = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", " ", "\t")):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9_.\-]*)==([^\s;\\]+)(?: ; ([^\\]+))?", line)
        if not match:
            raise ValueError(f"{path}: not a hash-locked export (line {line[:40]!r})")
        try:
            if match.group(3) and not Marker(match.group(3).strip()).evaluate():
                continue  # not for this interpreter or platform
        except InvalidMarker:
            raise ValueError(f"{path}: bad marker on {match.group(1)}") from None
        pins[_normalise(match.group(1))] = match.group(2)
    if not pins:
        raise ValueError(f"{path}: holds no pinned requirement")
    return pins


def lock_versions(path: Path) -> dict[str, set[str]]:
    """name → versions of every package in a uv.lock (empty when it cannot be read)."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, set[str]] = {}
    for name, version in re.findall(
        r'^\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text, re.M
    ):
        found.setdefault(_normalise(name), set()).add(version)
    return found


def _shown(path: Path) -> str:
    """A path relative to the checkout when it lies inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found[_normalise(name)] = dist.version
    return found


def _import_errors() -> dict[str, str]:
    errors = {}
    for module in ("tensorflow", "keras"):
        other_backend = os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"
        if module == "tensorflow" and other_backend and package_version("tensorflow") is None:
            continue  # not installed and not needed: check_framework reports it
        try:
            __import__(module)
        except Exception as e:  # noqa: BLE001 - any import failure is the finding
            errors[module] = f"{e.__class__.__name__}: {str(e).splitlines()[0][:120]}"
    return errors


def _computation(device: str) -> dict[str, Any]:
    """A 64×64 integer-valued matmul on the device; exact in float32, so checkable."""
    try:
        import keras
        import numpy as np

        from segbench import backend

        a = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) % 7
        b = np.arange(64 * 64, dtype=np.float32).reshape(64, 64).T % 5
        with keras.device(device):
            product = keras.ops.matmul(backend.to_device(a), backend.to_device(b))
            placed = backend.placement(product)
            value = keras.ops.convert_to_numpy(product)
        return {"placed_on": placed, "correct": bool(np.array_equal(value, a @ b))}
    except Exception as e:  # noqa: BLE001 - a failing computation is the finding
        return {"error": f"{e.__class__.__name__}: {str(e).splitlines()[0][:160]}"}


def _macos(argv: list[str]) -> str | None:
    return command_output(argv) if sys.platform == "darwin" else None


def _tensorflow_details() -> tuple[dict[str, Any], bool | None, bool | None]:
    threads: dict[str, Any] = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}
    if package_version("tensorflow") is None or os.environ.get("KERAS_BACKEND") not in (
        None,
        "tensorflow",
    ):
        return threads, None, None
    try:
        import tensorflow as tf
        from tensorflow.python.util import _pywrap_util_port  # oneDNN build flag

        threads["intra_op"] = tf.config.threading.get_intra_op_parallelism_threads() or "auto"
        threads["inter_op"] = tf.config.threading.get_inter_op_parallelism_threads() or "auto"
        onednn = (
            bool(_pywrap_util_port.IsMklEnabled())
            and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0"
        )
        from segbench.backend import stderr_silenced

        try:  # compiling a tiny function is the only sure test (it fails on Metal)
            with stderr_silenced():  # XLA logs its start-up straight to fd 2
                tf.function(lambda x: x * 2.0, jit_compile=True)(tf.constant([1.0])).numpy()
            xla = True
        except Exception:  # noqa: BLE001
            xla = False
        return threads, onednn, xla
    except Exception:  # noqa: BLE001 - reported as unknown
        return threads, None, None


def gather(context: Context) -> Facts:
    """Read everything the checks judge from this machine (seconds, TensorFlow import included)."""
    import psutil

    from segbench import backend

    installed = installed_distributions()
    import_errors = _import_errors()
    name = target_name(sys.platform, platform.machine(), installed)
    override = os.environ.get("SEGBENCH_LOCK_EXPORT")
    export = (
        Path(override)
        if override
        else (PROJECT_ROOT / "envs" / name / "requirements.txt" if name else None)
    )
    pins, export_error = None, None
    if export is not None and (override or export.exists()):
        try:
            pins = read_export(export)
        except ValueError as e:
            export_error = str(e)
    gpus = [] if "keras" in import_errors else backend.gpu_names()
    device = "gpu" if gpus and context.device != "cpu" else "cpu"
    nvidia = nvidia_smi()
    details = backend.gpu_details() if gpus else {}
    if nvidia is not None and "compute_cap" not in nvidia and "compute_cap" in details:
        nvidia["compute_cap"] = str(details["compute_cap"])
    gpu_free = details.get("memory_free")
    if gpu_free is None and nvidia and nvidia.get("memory_free_mib", "").isdigit():
        gpu_free = int(nvidia["memory_free_mib"]) * 2**20
    memory = psutil.virtual_memory()
    battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
    pmset = _macos(["pmset", "-g"])
    threads, onednn, xla = _tensorflow_details()
    folders = context.folders or (str(Path.cwd()),)
    disk_free = {}
    for folder in folders:
        probe = Path(folder)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        disk_free[folder] = shutil.disk_usage(probe).free
    return Facts(
        python=tuple(sys.version_info[:3]),
        sys_platform=sys.platform,
        machine=platform.machine(),
        backend=os.environ.get("KERAS_BACKEND", "tensorflow"),
        installed=installed,
        import_errors=import_errors,
        export_path=_shown(export) if export else None,
        export_pins=pins,
        export_error=export_error,
        gpus=gpus,
        nvidia=nvidia,
        computation=_computation(device)
        if "keras" not in import_errors
        else {"error": "keras does not import"},
        ram_total=memory.total,
        ram_available=memory.available,
        gpu_memory_free=gpu_free,
        battery={"percent": battery.percent, "power_plugged": battery.power_plugged}
        if battery
        else None,
        low_power_mode=bool(re.search(r"lowpowermode\s+1", pmset)) if pmset else None,
        load_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        cpus=os.cpu_count() or 1,
        thermal=_macos(["pmset", "-g", "therm"]),
        threads=threads,
        onednn=onednn,
        xla_available=xla,
        disk_free=disk_free,
        lock_versions=lock_versions(LOCK_FILE),
    )
