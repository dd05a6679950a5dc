"""The environment fingerprint stored with every result: read-only facts about this machine."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from segbench.measure import settings
from segbench.results.schema import OPTIONAL, POSITIVE

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = PROJECT_ROOT / "uv.lock"


# The backends Keras 3 runs on (measure/backend.py: BACKENDS); a file's value is one of them.
KERAS_BACKENDS = ("tensorflow", "jax", "torch")


@dataclass(frozen=True, kw_only=True)
class OsInfo:
    system: str
    release: str
    platform: str
    machine: str


@dataclass(frozen=True, kw_only=True)
class CpuInfo:
    model: str
    logical_cores: int = field(metadata=POSITIVE)
    physical_cores: int | None = field(metadata=POSITIVE)
    # CPUs' worth the container's cgroup allows (its quota, e.g. 1.5, else its cpuset), where
    # fewer than the host's; absent without a limit (version 5).
    container_cpus: float | None = field(default=None, metadata={**POSITIVE, **OPTIONAL})


@dataclass(frozen=True, kw_only=True)
class Environment:
    """The machine and software fingerprint a result was made with."""

    os: OsInfo
    cpu: CpuInfo
    ram_bytes: int = field(metadata=POSITIVE)
    python: str
    packages: dict[str, str]  # distribution → version, for the frameworks that matter
    keras_backend: str = field(metadata={"enum": KERAS_BACKENDS})
    devices: list[str]
    gpu_stack: dict[str, str]  # CUDA/cuDNN, NVIDIA driver, tensorflow-metal where present
    uv_lock_sha256: str | None
    # The global settings the run computed with: Keras's (pinned, with what keras.json asked)
    # and every environment variable that changes the computation (settings.py); version 5.
    settings: dict[str, str] | None = field(default=None, metadata=OPTIONAL)
    # The container's cgroup memory limit in bytes, where there is one (version 5).
    memory_limit_bytes: int | None = field(default=None, metadata={**POSITIVE, **OPTIONAL})


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    """The CPU's marketing name, as the OS reports it."""
    if sys.platform == "darwin":
        out = command_output(["sysctl", "-n", "machdep.cpu.brand_string"])
        if out:
            return out
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def lock_sha256() -> str | None:
    """sha256 of the uv.lock this install came from: the project's file, or SEGBENCH_LOCK_SHA256."""
    if LOCK_FILE.is_file():
        return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    return os.environ.get("SEGBENCH_LOCK_SHA256")


def git_commit() -> str | None:
    """The commit segbench runs from, when known (a git checkout, or SEGBENCH_GIT_COMMIT)."""
    if (PROJECT_ROOT / ".git").exists():
        out = command_output(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"])
        if out:
            dirty = command_output(
                ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"]
            )
            return out + ("-dirty" if dirty else "")
    return os.environ.get("SEGBENCH_GIT_COMMIT")


def source_url() -> str | None:
    """Where the source of git_commit() is: the checkout's remote "origin" (without a user or
    token), else SEGBENCH_SOURCE_URL (an image or a wheel sets it); None when unknown."""
    if (PROJECT_ROOT / ".git").exists():
        out = command_output(["git", "-C", str(PROJECT_ROOT), "remote", "get-url", "origin"])
        if out:
            return re.sub(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", r"\1", out.strip())
    return os.environ.get("SEGBENCH_SOURCE_URL") or None


def command_line() -> list[str] | None:
    """The arguments segbench was started with, after the program name; None when it was not
    started as a program (a test's runner, an import)."""
    program = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if program is None:
        return None
    started = program.name == "segbench" or (
        program.name == "__main__.py" and program.parent.name == "segbench"
    )
    return list(sys.argv[1:]) if started else None


# Versions recorded in every result (tf-keras: the Keras 2 generation, `--keras 2`).
FINGERPRINT_PACKAGES = (
    "tensorflow",
    "keras",
    "tf-keras",
    "numpy",
    "tensorflow-metal",
    "jax",
    "torch",
)

# nvidia-smi --query-gpu field → key in the returned facts.
NVIDIA_FIELDS = {
    "name": "name",
    "driver_version": "driver_version",
    "compute_cap": "compute_cap",
    "memory.total": "memory_total_mib",
    "memory.free": "memory_free_mib",
}


# nvidia-smi's own errors that have a known cause, and what fixes them.
NVIDIA_SMI_ERRORS = (
    (
        "Failed to initialize NVML: Unknown Error",
        "the container lost its GPU devices (the host's systemd reloaded its cgroups, "
        "NVIDIA/nvidia-docker#1671)",
        "restart the container (docker restart); on the host, the NVIDIA Container Toolkit's "
        "systemd cgroup settings keep it from happening again",
    ),
    (
        "Driver/library version mismatch",
        "the NVIDIA driver was upgraded without a reboot: the loaded kernel module is the old one",
        "reboot, or unload and reload the nvidia kernel modules (rmmod nvidia_uvm nvidia_drm "
        "nvidia_modeset nvidia; then nvidia-smi)",
    ),
    (
        UNKNOWN_VISIBLE := "CUDA_VISIBLE_DEVICES names no GPU of this machine",
        "CUDA_VISIBLE_DEVICES names an index or UUID nvidia-smi does not list",
        "set CUDA_VISIBLE_DEVICES to one of the indices or UUIDs nvidia-smi -L lists, or unset it",
    ),
)


def _gpu_count(smi: str) -> int:
    """How many GPUs nvidia-smi lists (0 when it lists none)."""
    out = command_output([smi, "--query-gpu=name", "--format=csv,noheader"], timeout=60)
    return len([line for line in (out or "").splitlines() if line.strip()])


def nvidia_smi_problem(error: str) -> tuple[str, str]:
    """(likely cause, fix) of nvidia-smi's own error line."""
    for text, cause, fix in NVIDIA_SMI_ERRORS:
        if text.lower() in error.lower():
            return cause, fix
    return (
        "nvidia-smi fails",
        "run nvidia-smi to see why; reinstall the NVIDIA driver if it persists",
    )


def nvidia_smi() -> dict[str, str] | None:
    """The first NVIDIA GPU as nvidia-smi reports it (NVIDIA_FIELDS), or None without a driver;
    {"error": its first line} when nvidia-smi is there but fails (NVML, a driver mismatch).

    Fields a driver or virtual machine does not report are left out: one query per field
    then, because nvidia-smi fails a whole query for one unknown field. The first call after
    boot can take many seconds while the driver initialises, hence the long timeout.
    """
    smi = nvidia_smi_path()
    if smi is None:
        return None
    visible = visible_gpu()
    if visible == "none":
        return None  # CUDA_VISIBLE_DEVICES hides every GPU: the run uses none
    chosen = ["--id", visible] if visible else []

    def query(fields: tuple[str, ...]) -> list[str] | None:
        out = command_output(
            [smi, *chosen, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            timeout=60,
        )
        return [f.strip() for f in out.splitlines()[0].split(",")] if out else None

    values = query(tuple(NVIDIA_FIELDS))
    if values is None:
        error = _nvidia_smi_error()
        if error:
            return {"error": error}
        if visible:  # nvidia-smi runs, but not for the GPU CUDA_VISIBLE_DEVICES names
            return {"error": f"{UNKNOWN_VISIBLE} ({visible}: {_gpu_count(smi)} GPU(s) here)"}
    if values and len(values) == len(NVIDIA_FIELDS):
        return dict(zip(NVIDIA_FIELDS.values(), values, strict=True))
    found = {}
    for name, key in NVIDIA_FIELDS.items():
        value = query((name,))
        if value and value[0] and "N/A" not in value[0]:
            found[key] = value[0]
    return found or None


def gpu_stack(nvidia: dict[str, str] | None) -> dict[str, str]:
    """CUDA/cuDNN of the backend build, the NVIDIA driver (from `nvidia`, nvidia-smi's facts
    already read by doctor), and tensorflow-metal, if present."""
    import keras

    info: dict[str, str] = {}
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        build = tf.sysconfig.get_build_info()
        if build.get("is_cuda_build"):
            info["cuda_version"] = build.get("cuda_version")
            info["cudnn_version"] = build.get("cudnn_version")
    elif keras.backend.backend() == "torch":
        import torch

        info["cuda_version"] = torch.version.cuda
        if torch.backends.cudnn.is_available():
            info["cudnn_version"] = str(torch.backends.cudnn.version())
    if nvidia and "driver_version" in nvidia:
        info["nvidia_driver"] = nvidia["driver_version"]
    metal = package_version("tensorflow-metal")
    if metal:
        info["tensorflow_metal"] = metal
    return info


def installed_versions() -> dict[str, str]:
    """Every installed distribution's version, by its normalised name."""
    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            found.setdefault(name.lower().replace("_", "-").replace(".", "-"), dist.version)
    return found


def imported_versions(listed: dict[str, str]) -> dict[str, str]:
    """`listed` (the installed distributions' versions) with each framework's version as this
    process imported it: two distributions behind one import name can make them differ."""
    found = dict(listed)
    for name in ("tensorflow", "keras", "jax", "torch"):
        module = sys.modules.get(name) if name in found else None
        version = getattr(module, "__version__", None) if module is not None else None
        if isinstance(version, str) and version:
            found[name] = version
    return found


def fingerprint(device_names: list[str], keras_backend: str, stack: dict[str, str]) -> Environment:
    """Everything needed to tell what machine and software produced a result (`keras_backend`
    and the GPU `stack` as the run's trainer names them)."""
    import psutil

    from segbench.doctor.cgroup import read_limits

    limits = read_limits()
    return Environment(
        os=OsInfo(
            system=platform.system(),
            release=platform.release(),
            platform=platform.platform(),
            machine=platform.machine(),
        ),
        cpu=CpuInfo(
            model=cpu_model(),
            logical_cores=os.cpu_count() or 1,
            physical_cores=psutil.cpu_count(logical=False),
            container_cpus=limits.usable_cpus,
        ),
        ram_bytes=psutil.virtual_memory().total,
        memory_limit_bytes=limits.memory_limit,
        python=platform.python_version(),
        packages=imported_versions(
            {
                name: version
                for name in FINGERPRINT_PACKAGES
                if (version := package_version(name)) is not None
            }
        ),
        keras_backend=keras_backend,
        devices=device_names,
        gpu_stack=stack,
        uv_lock_sha256=lock_sha256(),
        settings=settings.survey().effective(),
    )


# WSL2 reaches the Windows driver through this folder (libcuda.so and nvidia-smi live there).
WSL_LIB = Path("/usr/lib/wsl/lib")


def is_wsl() -> bool:
    """Whether this is Linux under Windows' WSL (its kernel names Microsoft)."""
    try:
        return "microsoft" in Path("/proc/sys/kernel/osrelease").read_text().lower()
    except OSError:
        return False


def nvidia_smi_path() -> str | None:
    """nvidia-smi on PATH, else WSL2's copy beside the Windows driver's libraries."""
    found = shutil.which("nvidia-smi")
    if found is None and (WSL_LIB / "nvidia-smi").exists():
        return str(WSL_LIB / "nvidia-smi")
    return found


def visible_gpu() -> str | None:
    """The GPU the run will use as first, for nvidia-smi --id: the first entry of
    CUDA_VISIBLE_DEVICES (an index or a GPU-/MIG- UUID); "none" when it hides every GPU;
    None when it is not set (the first GPU)."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    first = value.split(",")[0].strip()
    if not first or first.startswith("-"):
        return "none"
    return first


def _nvidia_smi_error() -> str | None:
    """The first line nvidia-smi prints when it fails, or None when it runs."""
    try:
        done = subprocess.run(
            # "name" is a field every driver knows: a failure is the driver's, not the query's
            [nvidia_smi_path() or "nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as e:
        return f"nvidia-smi could not run ({e})"
    if done.returncode == 0:
        return None
    lines = [line.strip() for line in (done.stdout + "\n" + done.stderr).splitlines()]
    return next((line for line in lines if line), f"nvidia-smi exited with {done.returncode}")


def command_output(argv: list[str], timeout: float = 10) -> str | None:
    """A command's stripped stdout, or None when it is missing, fails or outlasts `timeout` s."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
