"""What the environment checks work with: statuses, a verdict, the run's needs, the facts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
STATUSES = (PASS, WARN, FAIL, SKIP)


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
    width: float = 1.0  # the model and batch whose memory need is checked
    batch_size: int = 16
    epochs: int = 0
    device: str = "auto"
    precision: str = "float32"
    xla: bool = False
    expect: str | None = None  # "gpu" | "cpu": a missing (or unexpected) GPU is then a FAIL
    folders: tuple[str, ...] = ()
    strategy: str = "none"  # --strategy: mirrored | multiworker get the distribution check
    gpus: int | None = None  # --gpus N
    replicas: int = 1  # copies of the model in this process (--cpu-replicas): each takes memory
    model: str | None = None  # --model: a user's model, whose memory need is not estimated


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
    disk_free: dict[str, int | str] = field(default_factory=dict)  # str: why it is unusable
    shadowed: dict[str, list[str]] = field(default_factory=dict)  # name → versions, imported first
    lock_versions: dict[str, set[str]] = field(default_factory=dict)
    distribution: Any = None  # distribution.Survey of a data-parallel run
    probe: Any = None  # probe.Probe: the frameworks imported in a child process first
    owners: dict[str, list[str]] = field(default_factory=dict)  # module → "name version"s
    settings: Any = None  # settings.Settings: keras.json and the variables that change a run
    built_with: dict[str, str] = field(default_factory=dict)  # CUDA wheels TensorFlow asks for
    energy_mode: str | None = None  # macOS: "automatic" | "low power" | "high power"
    # A container's (cgroup's) limits, e.g. "container limits: 1 CPU (quota 1), 1.5 GiB
    # memory": ram_available and cpus are already within them.
    container: str | None = None
    cpufreq: dict[str, Any] | None = None  # cgroup.read_cpufreq: the CPU's clock policy
    wsl: bool = False  # Linux under Windows' WSL2 (its GPU through /usr/lib/wsl/lib)
    fake_trainer: bool = False  # SEGBENCH_FAKE_TRAINER: no framework imported (fake_trainer.py)


def warning_lines(checks: list[Check]) -> list[str]:
    """One line per WARN of the environment checks: what was found and what to do."""
    return [
        f"warning: {c.id}: {c.found}" + (f"; {c.fix}" if c.fix else "")
        for c in checks
        if c.status == WARN
    ]
