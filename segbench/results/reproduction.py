"""segbench reproduce's judgement: a result file beside its rerun on this machine — every fact
that changes speed or numerics, same or differing, and whether the number was reproduced.
Judges; never prints."""

from __future__ import annotations

import math
from dataclasses import dataclass

from segbench.results.compare import device_label, ms_per_image_samples
from segbench.results.result import Result
from segbench.results.stats import Difference, difference, median_ci, timed_steps

REPRODUCED, NOT_REPRODUCED, NO_VERDICT = "reproduced", "not reproduced", "no verdict"
DEFAULT_TOLERANCE_PCT = 5.0


@dataclass(frozen=True)
class Fact:
    """One fact of the file beside the same fact of the rerun."""

    name: str
    original: str
    here: str
    speed: bool  # a difference changes speed (else numerics only)

    @property
    def same(self) -> bool:
        return self.original == self.here


def facts(original: Result, rerun: Result) -> list[Fact]:
    """Everything recorded that changes speed or numerics, in the file and in the rerun."""

    def text(value: object) -> str:
        return "—" if value in (None, "", {}) else str(value)

    a, b = original.environment, rerun.environment
    rows = [
        ("segbench", original.segbench_version, rerun.segbench_version, True),
        ("commit", original.git_commit, rerun.git_commit, True),
        ("uv.lock", (a.uv_lock_sha256 or "")[:12], (b.uv_lock_sha256 or "")[:12], True),
        ("python", a.python, b.python, True),
        ("keras backend", a.keras_backend, b.keras_backend, True),
        ("keras generation", original.config.keras_generation, rerun.config.keras_generation, True),
    ]
    for package in sorted(set(_packages_used(original)) | set(_packages_used(rerun))):
        if package not in a.packages and package not in b.packages:
            continue
        rows.append((package, a.packages.get(package), b.packages.get(package), True))
    for key in sorted(set(a.gpu_stack) | set(b.gpu_stack)):
        rows.append((key, a.gpu_stack.get(key), b.gpu_stack.get(key), True))
    rows += [
        ("os", f"{a.os.system} {a.os.release}", f"{b.os.system} {b.os.release}", True),
        ("device", device_label(original), device_label(rerun), True),
        ("cpu", a.cpu.model, b.cpu.model, True),
        ("cores", a.cpu.logical_cores, b.cpu.logical_cores, True),
        ("memory", f"{a.ram_bytes / 2**30:.0f} GiB", f"{b.ram_bytes / 2**30:.0f} GiB", True),
        ("data", original.data.sha256[:12], rerun.data.sha256[:12], False),
        ("deterministic", original.config.deterministic, rerun.config.deterministic, True),
    ]
    for key in sorted(set(a.settings or {}) | set(b.settings or {})):
        rows.append((key, (a.settings or {}).get(key), (b.settings or {}).get(key), False))
    return [Fact(name, text(x), text(y), speed) for name, x, y, speed in rows]


# The distributions a run computes with on each backend (an installed framework the run does
# not use, jax beside a TensorFlow run, is no difference).
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow-metal"),
    "jax": ("jax",),
    "torch": ("torch",),
}


def _packages_used(result: Result) -> list[str]:
    names = ["keras", "numpy", *BACKEND_PACKAGES.get(result.environment.keras_backend, ())]
    if result.config.keras_generation == 2:
        names.append("tf-keras")
    return sorted(set(names))


def same_hardware(original: Result, rerun: Result) -> bool:
    """The same GPU model, or (on the CPU) the same CPU model and count."""
    if original.device.kind != rerun.device.kind:
        return False
    if original.device.kind == "gpu":
        return original.device.description == rerun.device.description
    a, b = original.environment.cpu, rerun.environment.cpu
    return (a.model, a.logical_cores, a.container_cpus) == (
        b.model,
        b.logical_cores,
        b.container_cpus,
    )


def same_software(original: Result, rerun: Result) -> bool:
    """The same segbench commit, lock and framework versions."""
    a, b = original.environment, rerun.environment
    return (
        original.git_commit == rerun.git_commit
        and original.git_commit is not None
        and not original.git_commit.endswith("-dirty")
        and a.uv_lock_sha256 == b.uv_lock_sha256
        and a.packages == b.packages
        and a.keras_backend == b.keras_backend
    )


@dataclass(frozen=True)
class Verdict:
    speed: str  # REPRODUCED | NOT_REPRODUCED | NO_VERDICT
    speed_line: str
    numerics_line: str
    difference: Difference


def judge(original: Result, rerun: Result, tolerance_pct: float) -> Verdict:
    """The rerun against the file: speed (reproduced when the hardware is the same, the medians
    are within `tolerance_pct` % and their 95 % intervals overlap), and numerics."""
    a, b = ms_per_image_samples(original), ms_per_image_samples(rerun)
    d = difference(a, b)  # speedup > 1: the rerun is faster
    change = 100.0 * (1.0 / d.speedup - 1.0)  # > 0: the rerun is slower
    ci = d.ci95
    interval = "" if ci is None else f" (95 % CI {1 / ci[1]:.3f}–{1 / ci[0]:.3f}× the time)"
    if not same_hardware(original, rerun):
        speed = NO_VERDICT
        line = (
            f"other hardware ({device_label(original)} → {device_label(rerun)}): the rerun "
            f"is {d.speedup:.3g}× as fast{_ci_text(d)}; no reproduction verdict"
        )
    else:
        intervals = median_ci(a), median_ci(b)
        overlap = _overlap(*intervals)
        if None in intervals:
            speed = NO_VERDICT
            line = (
                f"{change:+.1f} % in time per image; no reproduction verdict: fewer than 2 "
                "timed steps on a side, so no interval to compare"
            )
        elif abs(change) <= tolerance_pct and overlap:
            speed = REPRODUCED
            line = f"reproduced: {change:+.1f} % in time per image{interval}"
        else:
            speed = NOT_REPRODUCED
            how = "slower" if change > 0 else "faster"
            why = "" if overlap else "; the medians' 95 % intervals do not overlap"
            line = (
                f"not reproduced: {abs(change):.1f} % {how}{interval}, beyond ±{tolerance_pct:g} %"
                f"{why}"
            )
    return Verdict(speed, line, numerics_line(original, rerun), d)


def _ci_text(d: Difference) -> str:
    return "" if d.ci95 is None else f" (95 % CI {d.ci95[0]:.3g}–{d.ci95[1]:.3g})"


def _overlap(x: tuple[float, float] | None, y: tuple[float, float] | None) -> bool:
    if x is None or y is None:
        return True  # too few steps for an interval: the medians alone decide
    return x[0] <= y[1] and y[0] <= x[1]


def numerics_line(original: Result, rerun: Result) -> str:
    """The loss trajectories: bit for bit where they must be equal (the same software on the
    CPU with --deterministic), else the numerics check's verdict."""
    if (
        same_software(original, rerun)
        and original.config.deterministic
        and original.device.kind == rerun.device.kind == "cpu"
    ):
        a = [s.loss for s in timed_steps(original.config, original.steps)]
        b = [s.loss for s in timed_steps(rerun.config, rerun.steps)]
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            if not (x == y or (math.isnan(x) and math.isnan(y))):
                return f"numerics: the losses first differ at timed step {i + 1}: {x!r} vs {y!r}"
        return f"numerics: identical losses, bit for bit ({min(len(a), len(b))} timed steps)"
    status = rerun.numerics.status if rerun.numerics else "not checked"
    return (
        f"numerics: {status} against the CPU reference (bit-for-bit equality needs the same "
        "software, the CPU and --deterministic)"
    )
