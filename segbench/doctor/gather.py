"""Reading the machine: one small reader per group of facts, and `gather` that calls them.

Readers never raise: a fact that cannot be read is recorded as unknown, and the checks judge it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import shutil
import sys
from pathlib import Path
from typing import Any

from segbench.doctor import cgroup, diagnose
from segbench.doctor.lockfiles import lock_versions, normalise, read_export, target_name
from segbench.doctor.probe import Probe, modules_for, probe
from segbench.doctor.types import Context, Facts
from segbench.measure import backend, settings, trainer
from segbench.measure.parallel.distribution import NONE
from segbench.measure.parallel.peers import Survey
from segbench.measure.parallel.peers import survey as distribution_survey
from segbench.results.environment import (
    LOCK_FILE,
    PROJECT_ROOT,
    command_output,
    is_wsl,
    nvidia_smi,
    package_version,
)


def _shown(path: Path) -> str:
    """A path relative to the checkout when it lies inside it."""
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def installed_distributions() -> tuple[dict[str, str], dict[str, list[str]]]:
    """(name → the version Python imports, name → every version visible when there are several).

    Distributions are listed in sys.path order, so the first one found is the one imported.
    """
    from importlib import metadata

    found: dict[str, str] = {}
    every: dict[str, list[str]] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            key = normalise(name)
            found.setdefault(key, dist.version)
            every.setdefault(key, []).append(dist.version)
    return found, {name: versions for name, versions in every.items() if len(versions) > 1}


def import_owners(modules: tuple[str, ...] = ("tensorflow", "keras")) -> dict[str, list[str]]:
    """Import name → every installed distribution that provides it, as "name version"."""
    from importlib import metadata

    try:
        provided = metadata.packages_distributions()
    except Exception:  # noqa: BLE001 - unreadable metadata: nothing to judge
        return {}
    owners = {}
    for module in modules:
        names = sorted({normalise(n) for n in provided.get(module, [])})
        owners[module] = [f"{n} {package_version(n) or '?'}" for n in names]
    return owners


def _import_errors(probed: Probe | None) -> dict[str, str]:
    """Each framework module that fails to import: the child's finding (its failure may be a
    crash this process would not survive), else an import here once the child succeeded or
    when a module is missing altogether (ImportError, nothing to survive)."""
    if probed is not None and not probed.ok:
        return {probed.failed_module or "tensorflow": probed.error or "the import failed"}
    errors = {}
    # keras, and TensorFlow under it, without their chatter; each module's own import below
    # says what fails.
    with contextlib.suppress(Exception):
        backend.import_quietly()
    for module in ("tensorflow", "keras"):
        other_backend = os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"
        if module == "tensorflow" and other_backend and package_version("tensorflow") is None:
            continue  # not installed and not needed: check_framework reports it
        try:
            with backend.quietly():  # TensorFlow beside another backend: its chatter too
                __import__(module)
        except Exception as e:  # noqa: BLE001 - any import failure is the finding
            errors[module] = f"{e.__class__.__name__}: {str(e).splitlines()[0][:120]}"
    return errors


def _computation(device: str) -> dict[str, Any]:
    """A 64×64 integer-valued matmul on the device; exact in float32, so checkable."""
    try:
        import keras
        import numpy as np

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
        from segbench.measure.backend import stderr_silenced

        try:  # compiling a tiny function is the only sure test (it fails on Metal)
            with stderr_silenced():  # XLA logs its start-up straight to fd 2
                tf.function(lambda x: x * 2.0, jit_compile=True)(tf.constant([1.0])).numpy()
            xla = True
        except Exception:  # noqa: BLE001
            xla = False
        return threads, onednn, xla
    except Exception:  # noqa: BLE001 - reported as unknown
        return threads, None, None


def _lock_export(installed: dict[str, str]) -> tuple[str | None, dict | None, str | None]:
    """(path shown, pins, error) of the lock export for this interpreter: envs/ or an override."""
    name = target_name(sys.platform, platform.machine(), installed)
    override = os.environ.get("SEGBENCH_LOCK_EXPORT")
    if override:
        export = Path(override)
    elif name:
        export = PROJECT_ROOT / "envs" / name / "requirements.txt"
    else:
        return None, None, None
    if not override and not export.exists():
        return _shown(export), None, None
    try:
        return _shown(export), read_export(export), None
    except ValueError as e:
        return _shown(export), None, str(e)


def _gpu_facts(import_errors: dict[str, str]) -> tuple[list[str], dict | None, int | None]:
    """(GPU names the backend sees, nvidia-smi's report, free GPU memory in bytes)."""
    gpus = [] if "keras" in import_errors else backend.gpu_names()
    nvidia = nvidia_smi()
    details = backend.gpu_details() if gpus else {}
    if (
        nvidia
        and "error" not in nvidia
        and "compute_cap" not in nvidia
        and "compute_cap" in details
    ):
        nvidia["compute_cap"] = str(details["compute_cap"])
    gpu_free = details.get("memory_free")
    if gpu_free is None and nvidia and nvidia.get("memory_free_mib", "").isdigit():
        gpu_free = int(nvidia["memory_free_mib"]) * 2**20
    return gpus, nvidia, gpu_free


def power_facts() -> tuple[dict[str, Any] | None, bool | None, str | None, str | None]:
    """(battery, macOS Low Power Mode, macOS thermal report, macOS energy mode: "automatic",
    "low power", "high power"). Newer macOS lists `powermode`, older `lowpowermode`."""
    import psutil

    from segbench.doctor.hardware import energy_mode

    battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
    pmset = _macos(["pmset", "-g"])
    mode = energy_mode(pmset)
    return (
        {"percent": battery.percent, "power_plugged": battery.power_plugged} if battery else None,
        mode == "low power" if pmset else None,
        _macos(["pmset", "-g", "therm"]),
        mode,
    )


def _disk_free(folders: tuple[str, ...]) -> dict[str, int | str]:
    """Free bytes where each folder is (or would be created), or why it cannot be used."""
    free: dict[str, int | str] = {}
    for folder in folders or (str(Path.cwd()),):
        try:
            probe = Path(folder)
            while not probe.exists() and probe != probe.parent:
                probe = probe.parent
            if not probe.is_dir():
                free[folder] = f"{probe} is a file, not a folder"
                continue
            free[folder] = shutil.disk_usage(probe).free
        except OSError as e:
            free[folder] = f"cannot be read ({e.strerror or e.__class__.__name__})"
    return free


def gather(context: Context, survey: Survey | None = None) -> Facts:
    """Read everything the checks judge from this machine (seconds, TensorFlow import included).
    A data-parallel run passes the `survey` it took before its own server started."""
    import psutil

    if survey is None and context.strategy != NONE:
        survey = distribution_survey(context.strategy, os.environ.get("TF_CONFIG"), peers=True)
    installed, shadowed = installed_distributions()
    backend_name = os.environ.get("KERAS_BACKEND", "tensorflow")
    # The frameworks are imported in a child first: nothing below imports them in this
    # process unless the child survived its import.
    framework = trainer.active()
    probed = probe(backend_name) if _importable(backend_name) and not framework.fake else None
    safe = probed is None or probed.ok
    import_errors = {} if framework.fake else _import_errors(probed)
    export_path, pins, export_error = _lock_export(installed)
    if framework.fake:  # the framework's part as the fake trainer is told (fake_trainer.py)
        gpus, nvidia, gpu_free = [], nvidia_smi(), None
        threads, onednn, xla = {}, None, None
    elif safe and "keras" not in import_errors:
        gpus, nvidia, gpu_free = _gpu_facts(import_errors)
        threads, onednn, xla = _tensorflow_details()
    else:
        gpus, nvidia, gpu_free = [], nvidia_smi(), None
        threads = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset")}
        onednn = xla = None
    battery, low_power_mode, thermal, energy_mode = power_facts()
    limits = cgroup.read_limits()
    device = "gpu" if gpus and context.device != "cpu" else "cpu"
    facts = Facts(
        python=tuple(sys.version_info[:3]),
        sys_platform=sys.platform,
        machine=platform.machine(),
        backend=backend_name,
        installed=installed,
        shadowed=shadowed,
        import_errors=import_errors,
        export_path=export_path,
        export_pins=pins,
        export_error=export_error,
        gpus=gpus,
        nvidia=nvidia,
        computation=_computation(device)
        if safe and "keras" not in import_errors and not framework.fake
        else {"error": "not run: the framework does not import (see the import check)"},
        ram_available=_within(psutil.virtual_memory().available, limits.memory_available),
        gpu_memory_free=gpu_free,
        battery=battery,
        low_power_mode=low_power_mode,
        load_1min=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        cpus=limits.cpus or os.cpu_count() or 1,
        thermal=thermal,
        threads=threads,
        onednn=onednn,
        xla_available=xla,
        disk_free=_disk_free(context.folders),
        lock_versions=lock_versions(LOCK_FILE),
        distribution=survey,
        probe=probed,
        fake_trainer=framework.fake,
        owners=import_owners(),
        settings=settings.survey(),
        built_with=diagnose.built_with("tensorflow"),
        energy_mode=energy_mode,
        container=limits.describe() or None,
        cpufreq=cgroup.read_cpufreq(),
        wsl=is_wsl(),
    )
    if framework.fake:
        facts = dataclasses.replace(facts, **framework.doctor_facts(context.device))
    return facts


def _within(host: int, limit: int | None) -> int:
    """The host's free bytes, or what the container may still allocate when that is less."""
    return host if limit is None else min(host, limit)


def _importable(backend: str) -> bool:
    """Whether the backend's modules are installed at all (a missing one is reported by the
    framework checks, not by a child that would only fail to find it)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in modules_for(backend))
