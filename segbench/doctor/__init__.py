"""`segbench doctor`: gather facts about this machine once, then judge them with pure checks.

types.py holds what the checks work with, gather.py reads the machine, software.py and
hardware.py judge, checks.py is the table that runs every judge, lockfiles.py parses the lock
exports. Nothing here prints.
"""

from segbench.doctor.checks import failed, run_checks
from segbench.doctor.gather import gather
from segbench.doctor.hardware import (
    batch_that_fits,
    check_computation,
    check_devices,
    check_disk,
    check_load,
    check_memory,
    check_nvidia,
    check_power,
    check_thermal,
    check_threads,
    memory_need,
)
from segbench.doctor.lockfiles import lock_versions, read_export, target_name
from segbench.doctor.software import (
    check_cuda_libraries,
    check_drift,
    check_framework,
    check_import,
    check_metal,
    check_python,
)
from segbench.doctor.types import FAIL, PASS, SKIP, STATUSES, WARN, Check, Context, Facts

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "STATUSES",
    "WARN",
    "Check",
    "Context",
    "Facts",
    "batch_that_fits",
    "check_computation",
    "check_cuda_libraries",
    "check_devices",
    "check_disk",
    "check_drift",
    "check_framework",
    "check_import",
    "check_load",
    "check_memory",
    "check_metal",
    "check_nvidia",
    "check_power",
    "check_python",
    "check_thermal",
    "check_threads",
    "failed",
    "gather",
    "lock_versions",
    "memory_need",
    "read_export",
    "run_checks",
    "target_name",
]
