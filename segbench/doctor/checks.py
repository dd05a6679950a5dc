"""The table of checks: every judge, in the order shown, applied to the gathered facts."""

from __future__ import annotations

from segbench.doctor.cluster import check_distribution
from segbench.doctor.hardware import (
    batch_that_fits,
    check_computation,
    check_cpu_clock,
    check_devices,
    check_disk,
    check_load,
    check_memory,
    check_nvidia,
    check_power,
    check_precision,
    check_thermal,
    check_threads,
    memory_need,
)
from segbench.doctor.software import (
    check_cuda_libraries,
    check_drift,
    check_framework,
    check_import,
    check_metal,
    check_python,
    check_settings,
)
from segbench.doctor.types import FAIL, SKIP, Check, Context, Facts


def run_checks(facts: Facts, context: Context) -> list[Check]:
    """Judge every fact against what the coming run asks for."""
    on_gpu = bool(facts.gpus) and context.device != "cpu"
    is_metal = (facts.sys_platform, facts.machine) == (
        "darwin",
        "arm64",
    ) and "tensorflow-metal" in facts.installed
    return [
        *_software_checks(facts),
        *_device_checks(facts, context, on_gpu, is_metal),
        *_machine_checks(facts, context, is_metal),
        *(
            [check_distribution(facts.distribution, facts.gpus, context.gpus)]
            if facts.distribution is not None
            else []
        ),
    ]


def _software_checks(facts: Facts) -> list[Check]:
    """Python, the framework's import and versions, the settings and drift from the pins."""
    pins = facts.export_pins
    return [
        check_python(facts.python),
        check_import(facts.probe, facts.installed, pins, facts.settings, facts.fake_trainer),
        *(
            check_framework(
                name,
                facts.installed,
                pins,
                facts.import_errors,
                facts.backend,
                facts.probe.versions if facts.probe is not None else None,
                facts.owners,
            )
            for name in ("tensorflow", "keras")
        ),
        check_settings(facts.settings),
        check_drift(
            facts.installed,
            pins,
            facts.export_path,
            facts.export_error,
            facts.backend,
            facts.lock_versions,
            facts.shadowed,
        ),
    ]


def _device_checks(facts: Facts, context: Context, on_gpu: bool, is_metal: bool) -> list[Check]:
    """The devices the framework sees, their drivers, memory and precision, the CUDA libraries."""
    return [
        check_devices(facts.gpus, facts.backend, context.expect)
        if facts.probe is None or facts.probe.ok
        else Check("devices", SKIP, "not checked: the framework does not import"),
        check_metal(
            facts.sys_platform,
            facts.machine,
            facts.installed,
            facts.gpus,
            facts.export_pins,
            facts.backend,
            context.device,
        ),
        check_nvidia(
            facts.nvidia,
            facts.gpus,
            facts.installed,
            facts.backend,
            context.precision,
            facts.wsl,
        )
        if context.device != "cpu"
        else Check("nvidia", SKIP, "not judged: the run uses the CPU (--device cpu)"),
        check_computation(facts.computation, "gpu" if on_gpu else "cpu"),
        _memory_check(facts, context, on_gpu),
        check_precision(
            context.precision, facts.gpus, on_gpu, is_metal and facts.backend == "tensorflow"
        ),
        check_cuda_libraries(facts.installed, facts.built_with, facts.backend),
    ]


def _memory_check(facts: Facts, context: Context, on_gpu: bool) -> Check:
    """Whether CV-net at the run's width and batch fits the free memory (not for a --model)."""
    if context.model is not None:
        return Check(
            "memory",
            SKIP,
            f"not estimated for --model {context.model}: the estimate is CV-net's; a run that "
            "does not fit ends with an out-of-memory line",
        )
    return check_memory(
        f"width {context.width:g}, batch {context.batch_size}"
        + (f" per replica × {context.replicas}" if context.replicas > 1 else "")
        + (", epochs" if context.epochs else ""),
        memory_need(context.width, context.batch_size, context.epochs, on_gpu, context.replicas),
        facts.ram_available,
        facts.gpu_memory_free,
        on_gpu,
        batch_that_fits(
            context.width,
            context.epochs,
            on_gpu,
            (facts.gpu_memory_free or 0) if on_gpu else facts.ram_available,
            context.replicas,
        ),
        facts.container,
    )


def _machine_checks(facts: Facts, context: Context, is_metal: bool) -> list[Check]:
    """What else the machine is doing: power, load, heat, threads and free disk."""
    return [
        check_power(facts.battery, facts.low_power_mode, facts.energy_mode),
        check_load(facts.load_1min, facts.cpus),
        check_thermal(facts.thermal),
        check_cpu_clock(facts.cpufreq),
        check_threads(
            facts.threads,
            facts.onednn,
            facts.xla_available,
            context.xla,
            is_metal and facts.backend == "tensorflow",
            facts.cpus,
        ),
        check_disk(facts.disk_free),
    ]


def failed(checks: list[Check]) -> list[Check]:
    """The checks that FAILed."""
    return [c for c in checks if c.status == FAIL]
