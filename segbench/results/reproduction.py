"""segbench reproduce's judgement: a result file beside its rerun on this machine — every fact
that changes speed or numerics, same or differing, and whether the number was reproduced.
Judges; never prints."""

from __future__ import annotations

import math
from dataclasses import dataclass

from segbench.benchmark.config import RunConfig
from segbench.results.caveats import power_state
from segbench.results.compare import device_label, ms_per_image_samples
from segbench.results.environment import Environment
from segbench.results.result import Result
from segbench.results.stats import Difference, difference, median_ci, timed_steps

REPRODUCED, NOT_REPRODUCED, NO_VERDICT = "reproduced", "not reproduced", "no verdict"
DEFAULT_TOLERANCE_PCT = 5.0


NOT_RECORDED = "not recorded"
# A fact of this machine known only once the framework has started (CUDA/cuDNN of its build).
AT_THE_RERUN = "read at the rerun"
# The variables that set the framework's CPU threads (recorded in `environment.settings`).
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


@dataclass(frozen=True)
class Fact:
    """One fact of the file beside the same fact here (this machine, or the rerun)."""

    name: str
    original: str
    here: str
    speed: bool  # a difference changes speed (else numerics only)

    @property
    def recorded(self) -> bool:
        """False where the file (an older segbench's) does not record it: cannot be checked."""
        return self.original != NOT_RECORDED

    @property
    def same(self) -> bool:
        return self.original == self.here

    @property
    def judgement(self) -> str:
        """`same`, `differs: …` with what a difference means, or `cannot be checked`."""
        if not self.recorded:
            return "cannot be checked: the file does not record it"
        if self.here == AT_THE_RERUN:
            return "checked after the rerun"
        if self.same:
            return "same"
        return "differs: " + ("speed may differ" if self.speed else "numerics may differ")


@dataclass(frozen=True)
class Side:
    """Every fact of one side: a result file's run, or this machine before its rerun."""

    segbench_version: str
    git_commit: str | None
    environment: Environment
    config: RunConfig
    device: str  # a readable device label (compare's)
    data_sha256: str | None  # None: an older file records none
    power: str | None  # "mains", "battery", "…, Low Power Mode"; None: not recorded


def side_of(result: Result) -> Side:
    """The facts a result file records."""
    return Side(
        segbench_version=result.segbench_version,
        git_commit=result.git_commit,
        environment=result.environment,
        config=result.config,
        device=device_label(result),
        data_sha256=result.data.sha256,
        power=power_state(result),
    )


def threads(environment: Environment) -> str | None:
    """The CPU threads the framework was asked for (TF_NUM_*_THREADS, OMP_NUM_THREADS), or
    "framework default"; None where the file records no settings (before version 5)."""
    if environment.settings is None:
        return None
    given = environment.settings
    asked = [f"{k}={given[k]}" for k in THREAD_VARIABLES if k in given]
    return ", ".join(asked) or "framework default"


def facts(original: Result | Side, here: Result | Side) -> list[Fact]:
    """Everything recorded that changes speed or numerics, in the file and here."""
    o = original if isinstance(original, Side) else side_of(original)
    h = here if isinstance(here, Side) else side_of(here)

    def text(value: object, *, recorded: bool = True) -> str:
        if not recorded:
            return NOT_RECORDED
        return "—" if value in (None, "", {}) else str(value)

    a, b = o.environment, h.environment
    rows = [
        ("segbench", o.segbench_version, h.segbench_version, True),
        ("commit", o.git_commit, h.git_commit, True),
        ("uv.lock", (a.uv_lock_sha256 or "")[:12], (b.uv_lock_sha256 or "")[:12], True),
        ("python", a.python, b.python, True),
        ("keras backend", a.keras_backend, b.keras_backend, True),
        ("keras generation", o.config.keras_generation, h.config.keras_generation, True),
    ]
    for package in sorted(set(_packages_used(o)) | set(_packages_used(h))):
        if package not in a.packages and package not in b.packages:
            continue
        rows.append((package, a.packages.get(package), b.packages.get(package), True))
    for key in sorted(set(a.gpu_stack) | set(b.gpu_stack)):
        rows.append((key, a.gpu_stack.get(key), b.gpu_stack.get(key), True))
    rows += [
        ("os", f"{a.os.system} {a.os.release}", f"{b.os.system} {b.os.release}", True),
        ("device", o.device, h.device, True),
        ("cpu", a.cpu.model, b.cpu.model, True),
        ("cores", a.cpu.logical_cores, b.cpu.logical_cores, True),
        ("memory", f"{a.ram_bytes / 2**30:.0f} GiB", f"{b.ram_bytes / 2**30:.0f} GiB", True),
        ("deterministic", o.config.deterministic, h.config.deterministic, True),
    ]
    found = [Fact(name, text(x), text(y), speed) for name, x, y, speed in rows]
    found.append(
        Fact(
            "data",
            text((o.data_sha256 or "")[:12], recorded=o.data_sha256 is not None),
            text((h.data_sha256 or "")[:12]),
            False,
        )
    )
    found.append(Fact("power", text(o.power, recorded=o.power is not None), text(h.power), True))
    found.append(
        Fact("threads", text(threads(a), recorded=a.settings is not None), text(threads(b)), True)
    )
    if a.settings is None:  # before version 5: keras.json pins and TF_/XLA_ variables unknown
        found.append(Fact("keras.json, TF_/XLA_ variables", NOT_RECORDED, "—", False))
    for key in sorted(set(a.settings or {}) | set(b.settings or {})):
        if a.settings is not None:
            found.append(
                Fact(key, text(a.settings.get(key)), text((b.settings or {}).get(key)), False)
            )
    return found


# The distributions a run computes with on each backend (an installed framework the run does
# not use, jax beside a TensorFlow run, is no difference).
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", "tensorflow-metal"),
    "jax": ("jax",),
    "torch": ("torch",),
}


def _packages_used(side: Side) -> list[str]:
    names = ["keras", "numpy", *BACKEND_PACKAGES.get(side.environment.keras_backend, ())]
    if side.config.keras_generation == 2:
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
