"""The table of checks: every judge, in the order shown, applied to the gathered facts."""

from __future__ import annotations

from segbench.doctor.cluster import check_distribution
from segbench.doctor.hardware import (
    batch_that_fits,
    check_computation,
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
    pins = facts.export_pins
    on_gpu = bool(facts.gpus) and context.device != "cpu"
    is_metal = (facts.sys_platform, facts.machine) == (
        "darwin",
        "arm64",
    ) and "tensorflow-metal" in facts.installed
    return [
        check_python(facts.python),
        check_import(facts.probe, facts.installed, pins, facts.settings),
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
        check_devices(facts.gpus, facts.backend, context.expect)
        if facts.probe is None or facts.probe.ok
        else Check("devices", SKIP, "not checked: the framework does not import"),
        check_metal(
            facts.sys_platform,
            facts.machine,
            facts.installed,
            facts.gpus,
            pins,
            facts.backend,
            context.device,
        ),
        check_nvidia(facts.nvidia, facts.gpus, facts.installed, facts.backend, context.precision)
        if context.device != "cpu"
        else Check("nvidia", SKIP, "not judged: the run uses the CPU (--device cpu)"),
        check_computation(facts.computation, "gpu" if on_gpu else "cpu"),
        Check(
            "memory",
            SKIP,
            f"not estimated for --model {context.model}: the estimate is CV-net's; a run that "
            "does not fit ends with an out-of-memory line",
        )
        if context.model is not None
        else check_memory(
            f"width {context.width:g}, batch {context.batch_size}"
            + (f" per replica × {context.replicas}" if context.replicas > 1 else "")
            + (", epochs" if context.epochs else ""),
            memory_need(
                context.width, context.batch_size, context.epochs, on_gpu, context.replicas
            ),
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
        ),
        check_precision(
            context.precision, facts.gpus, on_gpu, is_metal and facts.backend == "tensorflow"
        ),
        check_cuda_libraries(facts.installed, facts.built_with, facts.backend),
        check_power(facts.battery, facts.low_power_mode, facts.energy_mode),
        check_load(facts.load_1min, facts.cpus),
        check_thermal(facts.thermal),
        check_threads(
            facts.threads,
            facts.onednn,
            facts.xla_available,
            context.xla,
            is_metal and facts.backend == "tensorflow",
            facts.cpus,
        ),
        check_disk(facts.disk_free),
        *(
            [check_distribution(facts.distribution, facts.gpus, context.gpus)]
            if facts.distribution is not None
            else []
        ),
    ]


def failed(checks: list[Check]) -> list[Check]:
    """The checks that FAILed."""
    return [c for c in checks if c.status == FAIL]
